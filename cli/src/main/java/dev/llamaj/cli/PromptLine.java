package dev.llamaj.cli;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.template.Message;
import java.io.IOException;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/// One JSONL input line of `batch` or `eval`: an id, a `prompt` or chat `messages`, and optional per-line
/// generation settings, validated when the line is read so that a bad line is reported with its number before
/// any work starts.
///
/// ```json
/// {"id": "q1", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": ["\n"]}
/// {"id": 7, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
/// ```
///
/// Settings a line leaves out come from the command line. Keys the line has but this class does not know are
/// kept in [#fields] (`eval` reads `expected` and `match` from there) and otherwise ignored.
///
/// @param id       the line's `id` as written (a string or an integer), echoed in results
/// @param prompt   the prompt text, or `null` when the line has `messages`
/// @param messages the conversation, or `null` when the line has `prompt`
/// @param fields   the whole parsed line
record PromptLine(Object id, String prompt, List<Message> messages, Map<String, Object> fields) {

    /// A line that is not a valid request; the message says why, without the line number.
    static final class Malformed extends IllegalArgumentException {
        Malformed(String message) {
            super(message);
        }
    }

    /// Parses one line.
    ///
    /// @throws Malformed if it is not a JSON object with an `id` and exactly one of `prompt` and `messages`, or
    ///         a setting has the wrong type or range
    static PromptLine parse(String line) {
        Map<String, Object> map;
        try {
            map = Json.parseObject(line);
        } catch (Json.JsonException e) {
            throw new Malformed("not valid JSON: " + e.getMessage());
        }
        Object id = map.get("id");
        if (!(id instanceof String) && !(id instanceof Long)) {
            throw new Malformed(map.containsKey("id") ? "\"id\" must be a string or an integer, got " + Json.typeName(id)
                    : "no \"id\"");
        }
        boolean hasPrompt = map.containsKey("prompt");
        boolean hasMessages = map.containsKey("messages");
        if (hasPrompt == hasMessages) {
            throw new Malformed(hasPrompt ? "give either \"prompt\" or \"messages\", not both"
                    : "no \"prompt\" or \"messages\"");
        }
        String prompt = null;
        List<Message> messages = null;
        if (hasPrompt) {
            if (!(map.get("prompt") instanceof String p)) {
                throw new Malformed("\"prompt\" must be a string, got " + Json.typeName(map.get("prompt")));
            }
            prompt = p;
        } else {
            messages = messages(map.get("messages"));
        }
        PromptLine result = new PromptLine(id, prompt, messages, map);
        // validate the settings now, so a bad value is reported with its line before any generation
        result.maxTokens(0);
        result.settings(Sampler.Settings.greedy());
        result.stops();
        return result;
    }

    private static List<Message> messages(Object value) {
        if (!(value instanceof List<?> list) || list.isEmpty()) {
            throw new Malformed("\"messages\" must be a non-empty array of {\"role\", \"content\"} objects");
        }
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof Map<?, ?> m)) {
                throw new Malformed("messages[" + i + "] must be an object, got " + Json.typeName(list.get(i)));
            }
            if (!(m.get("role") instanceof String role)) {
                throw new Malformed("messages[" + i + "] needs a string \"role\"");
            }
            if (!(m.get("content") instanceof String content)) {
                throw new Malformed("messages[" + i + "] needs a string \"content\"");
            }
            messages.add(new Message(role, content));
        }
        return messages;
    }

    /// The `id` as it appears in JSON, the key for resuming (`"a"` and `1` are different ids).
    String idKey() {
        return Json.write(id);
    }

    /// `max_tokens`, or `fallback` when the line has none.
    int maxTokens(int fallback) {
        Long v = integer("max_tokens", 0, Integer.MAX_VALUE);
        return v != null ? v.intValue() : fallback;
    }

    /// The sampling settings: the line's `temperature`, `top_k`, `top_p`, `min_p`, `repeat_penalty`,
    /// `repeat_last_n` and `seed` over `defaults`.
    Sampler.Settings settings(Sampler.Settings defaults) {
        Double temperature = number("temperature");
        Long topK = integer("top_k", 0, Integer.MAX_VALUE);
        Double topP = number("top_p");
        Double minP = number("min_p");
        Double repeatPenalty = number("repeat_penalty");
        Long repeatLastN = integer("repeat_last_n", 0, 1 << 20);
        Long seed = integer("seed", Long.MIN_VALUE, Long.MAX_VALUE);
        try {
            return new Sampler.Settings(
                    temperature != null ? temperature.floatValue() : defaults.temperature(),
                    topK != null ? topK.intValue() : defaults.topK(),
                    topP != null ? topP.floatValue() : defaults.topP(),
                    minP != null ? minP.floatValue() : defaults.minP(),
                    repeatPenalty != null ? repeatPenalty.floatValue() : defaults.repeatPenalty(),
                    repeatLastN != null ? repeatLastN.intValue() : defaults.repeatLastN(),
                    seed != null ? seed : defaults.seed())
                    .withPenalties(defaults.presencePenalty(), defaults.frequencyPenalty())
                    .withLogitBias(defaults.logitBias());
        } catch (IllegalArgumentException e) {
            throw new Malformed(e.getMessage());
        }
    }

    /// Whether the line sets its own `seed`.
    boolean hasSeed() {
        return fields.get("seed") != null;
    }

    /// `stop`: a string or an array of strings; none when absent.
    List<String> stops() {
        Object v = fields.get("stop");
        if (v == null) {
            return List.of();
        }
        List<String> stops = new ArrayList<>();
        if (v instanceof String s) {
            stops.add(s);
        } else if (v instanceof List<?> list) {
            for (Object o : list) {
                if (!(o instanceof String s)) {
                    throw new Malformed("\"stop\" must be a string or an array of strings");
                }
                stops.add(s);
            }
        } else {
            throw new Malformed("\"stop\" must be a string or an array of strings, got " + Json.typeName(v));
        }
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new Malformed("\"stop\" has an empty string");
            }
        }
        return stops;
    }

    /// The prompt tokens for a fresh `session`: the prompt with BOS as the vocabulary wants, or the messages
    /// rendered with the chat template and a generation prompt (an assistant header) at the end.
    ///
    /// @param chat the chat template, needed only when the line has `messages`
    /// @throws IllegalArgumentException if the text is certainly too long for the session's context, before it
    ///         is tokenized (see [PromptBound])
    int[] tokens(Session session, ChatTemplates chat) {
        PromptBound.check(characters(), session.model().tokenizer().vocabulary(), session.contextLength());
        if (prompt != null) {
            return session.encode(prompt);
        }
        return chat.format().render(messages, true);
    }

    /// Characters of the prompt, or of the messages' contents.
    long characters() {
        if (prompt != null) {
            return prompt.length();
        }
        long chars = 0;
        for (Message m : messages) {
            chars += m.content().length();
        }
        return chars;
    }

    private Double number(String key) {
        Object v = fields.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Long l) {
            return l.doubleValue();
        }
        if (v instanceof BigDecimal b) {
            return b.doubleValue();
        }
        throw new Malformed("\"" + key + "\" must be a number, got " + Json.typeName(v));
    }

    private Long integer(String key, long min, long max) {
        Object v = fields.get(key);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Long l)) {
            throw new Malformed("\"" + key + "\" must be an integer, got " + (v instanceof BigDecimal b
                    ? b.toPlainString() : Json.typeName(v)));
        }
        if (l < min || l > max) {
            throw new Malformed("\"" + key + "\" must be " + min + " or more" + (max < Long.MAX_VALUE ? " and at most "
                    + max : "") + ", got " + l);
        }
        return l;
    }

    /// The chat template for lines with `messages`, loaded on first use: the model's own, or the one
    /// `--chat-template` names (a file, or a built-in name). Thread-safe.
    static final class ChatTemplates {
        private final LlamaModel model;
        private final String option;
        private ChatFormat format;

        ChatTemplates(LlamaModel model, String option) {
            this.model = model;
            this.option = option;
        }

        synchronized ChatFormat format() {
            if (format == null) {
                format = load();
            }
            return format;
        }

        private ChatFormat load() {
            try {
                return LlamaCommand.chatFormat(model, option);
            } catch (IOException e) {
                throw new IllegalArgumentException("--chat-template " + option + ": " + e.getMessage());
            }
        }
    }
}
