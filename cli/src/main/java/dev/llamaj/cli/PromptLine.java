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
/// @param fields   the whole parsed line (for an OpenAI Batch line, its `body`)
/// @param url      for an OpenAI Batch line, its `url` (`/v1/chat/completions` or `/v1/completions`); else null
record PromptLine(Object id, String prompt, List<Message> messages, Map<String, Object> fields, String url) {
    static final String CHAT_URL = "/v1/chat/completions";
    static final String COMPLETIONS_URL = "/v1/completions";

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
        return validated(new PromptLine(id, prompt, messages, map, null));
    }

    /// Parses one line of the OpenAI Batch input format: `{"custom_id", "method": "POST", "url", "body"}` where
    /// `url` is `/v1/chat/completions` (the body has `messages`) or `/v1/completions` (a string `prompt`), and the
    /// body's settings are those of the OpenAI API that this command has (`max_tokens`, or
    /// `max_completion_tokens` for chat, `temperature`, `top_p`, `stop`, `seed`, plus this project's `top_k`,
    /// `min_p`, `repeat_penalty`); other body fields (`model`...) are kept for the fallback file and ignored here.
    ///
    /// @throws Malformed if the line is not of that form
    static PromptLine parseOpenAi(String line) {
        Map<String, Object> map;
        try {
            map = Json.parseObject(line);
        } catch (Json.JsonException e) {
            throw new Malformed("not valid JSON: " + e.getMessage());
        }
        if (!(map.get("custom_id") instanceof String id) || id.isEmpty()) {
            throw new Malformed(map.containsKey("custom_id") ? "\"custom_id\" must be a non-empty string"
                    : "no \"custom_id\" (an OpenAI Batch line is {\"custom_id\", \"method\", \"url\", \"body\"})");
        }
        if (!"POST".equals(map.get("method"))) {
            throw new Malformed("\"method\" must be \"POST\", got " + describe(map.get("method")));
        }
        Object url = map.get("url");
        if (!CHAT_URL.equals(url) && !COMPLETIONS_URL.equals(url)) {
            throw new Malformed("\"url\" must be \"" + CHAT_URL + "\" or \"" + COMPLETIONS_URL + "\", got "
                    + describe(url));
        }
        if (!(map.get("body") instanceof Map<?, ?> rawBody)) {
            throw new Malformed("\"body\" must be an object, got " + Json.typeName(map.get("body")));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> body = (Map<String, Object>) rawBody; // kept as it came, for --fallback-output
        boolean chat = url.equals(CHAT_URL);
        if (body.get("n") instanceof Long n && n != 1) {
            throw new Malformed("body.n must be 1 (one answer per line), got " + n);
        }
        String prompt = null;
        List<Message> messages = null;
        if (chat) {
            if (body.containsKey("prompt")) {
                throw new Malformed("a " + CHAT_URL + " body has \"messages\", not \"prompt\"");
            }
            messages = messages(body.get("messages"));
        } else {
            if (!(body.get("prompt") instanceof String p)) {
                throw new Malformed("a " + COMPLETIONS_URL + " body needs a string \"prompt\", got "
                        + Json.typeName(body.get("prompt")));
            }
            prompt = p;
        }
        return validated(new PromptLine(id, prompt, messages, body, (String) url));
    }

    private static String describe(Object v) {
        return v instanceof String s ? "\"" + s + "\"" : Json.typeName(v);
    }

    /// Checks the settings now, so that a bad value is reported with its line before any generation.
    private static PromptLine validated(PromptLine result) {
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
            messages.add(new Message(role, content(m.get("content"), i)));
        }
        return messages;
    }

    /// A message's content: a string, or (as OpenAI allows) an array of `{"type": "text", "text"}` parts, joined
    /// with line feeds.
    private static String content(Object c, int i) {
        if (c instanceof String s) {
            return s;
        }
        if (c instanceof List<?> parts && !parts.isEmpty()) {
            StringBuilder sb = new StringBuilder();
            for (Object part : parts) {
                if (!(part instanceof Map<?, ?> p) || !"text".equals(p.get("type"))
                        || !(p.get("text") instanceof String text)) {
                    throw new Malformed("messages[" + i + "].content: only text parts ({\"type\": \"text\","
                            + " \"text\"}) are supported");
                }
                if (!sb.isEmpty()) {
                    sb.append('\n');
                }
                sb.append(text);
            }
            return sb.toString();
        }
        throw new Malformed("messages[" + i + "] needs a string \"content\"");
    }

    /// Whether this is an OpenAI Batch line.
    boolean openAi() {
        return url != null;
    }

    /// The `id` as it appears in JSON, the key for resuming (`"a"` and `1` are different ids).
    String idKey() {
        return Json.write(id);
    }

    /// `max_tokens` (or, in an OpenAI chat body, `max_completion_tokens`), or `fallback` when the line has none.
    int maxTokens(int fallback) {
        // an OpenAI chat body may say max_completion_tokens, the newer name, which wins
        String key = CHAT_URL.equals(url) && fields.get("max_completion_tokens") != null ? "max_completion_tokens"
                : "max_tokens";
        Long v = integer(key, 0, Integer.MAX_VALUE);
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
