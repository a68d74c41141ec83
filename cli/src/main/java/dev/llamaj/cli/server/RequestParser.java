package dev.llamaj.cli.server;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.engine.grammar.GrammarException;
import dev.llamaj.engine.tools.ChatMessage;
import dev.llamaj.engine.tools.Tool;
import dev.llamaj.engine.tools.ToolCall;
import dev.llamaj.engine.tools.ToolCalling;
import dev.llamaj.engine.tools.ToolChoice;
import dev.llamaj.template.Message;
import dev.llamaj.tokenizer.Tokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;

/// Validates the JSON body of `/v1/chat/completions` and `/v1/completions` and turns it into a
/// [GenerationRequest].
///
/// Known fields with the wrong JSON type or an out-of-range value are a 400 naming the field. Fields that ask for
/// something this server cannot do (`functions`, `echo`, `suffix`...) are a 400 saying so, rather than being
/// silently ignored. Unknown fields are ignored, as SDKs send fields of newer API versions. Tools and tool turns
/// become a [ToolCalling] (rendering, the answer's parsing, the constraint on calls).
final class RequestParser {
    /// Stop strings per request at most, and characters per stop string.
    static final int MAX_STOPS = 16;
    static final int MAX_STOP_CHARS = 1000;
    /// Choices per request (`n`) at most: they run one after another in one slot.
    static final int MAX_CHOICES = 8;
    /// Alternatives per token (`top_logprobs`, the legacy `logprobs`) at most, as OpenAI's chat API.
    static final int MAX_TOP_LOGPROBS = 20;
    /// Tokens in `logit_bias` at most.
    static final int MAX_LOGIT_BIAS = 1024;

    private final Tokenizer tokenizer;
    private final ChatFormat chatFormat;
    private final int contextLength;
    /// More characters than this cannot fit in the context whatever they are (the context times the longest
    /// piece in the vocabulary): such a prompt is refused before it is tokenized, which takes a second per
    /// megabyte.
    private final long maxPromptChars;

    RequestParser(Tokenizer tokenizer, ChatFormat chatFormat, int contextLength) {
        this.tokenizer = tokenizer;
        this.chatFormat = chatFormat;
        this.contextLength = contextLength;
        this.maxPromptChars = dev.llamaj.cli.PromptBound.maxChars(tokenizer.vocabulary(), contextLength);
    }

    private ApiException tooLong(boolean chat, String size) {
        return ApiException.invalid(chat ? "messages" : "prompt", "context_length_exceeded",
                "This model's maximum context length is " + contextLength + " tokens. However, your "
                        + (chat ? "messages" : "prompt") + " resulted in " + size
                        + ", which leaves no room for the answer. Shorten it (or start the server"
                        + " with a larger --context).");
    }

    GenerationRequest parse(boolean chat, Map<String, Object> body) throws ApiException {
        Fields f = new Fields(body, "");
        f.string("model");
        f.string("user");

        Long n = f.integer("n");
        if (n != null && (n < 1 || n > MAX_CHOICES)) {
            throw ApiException.invalid("n", "invalid_value", "Invalid value for 'n': " + n + " is not between 1 and "
                    + MAX_CHOICES + ".");
        }
        int logprobs = logprobs(f, chat);
        boolean stream = Boolean.TRUE.equals(f.bool("stream"));
        boolean includeUsage = false;
        Map<String, Object> streamOptions = f.object("stream_options");
        if (streamOptions != null) {
            if (!stream) {
                throw ApiException.invalid("stream_options",
                        "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
            }
            includeUsage = Boolean.TRUE.equals(new Fields(streamOptions, "stream_options.").bool("include_usage"));
        }

        Sampler.Settings defaults = Sampler.Settings.defaults(0);
        double temperature = f.number("temperature", 0, 2, defaults.temperature());
        double topP = f.number("top_p", 0, 1, defaults.topP());
        double minP = f.number("min_p", 0, 1, defaults.minP());
        double repeatPenalty = f.number("repeat_penalty", 0, 10, defaults.repeatPenalty());
        if (repeatPenalty == 0) {
            throw ApiException.invalid("repeat_penalty", "'repeat_penalty' must be greater than 0.");
        }
        Long topK = f.integer("top_k");
        if (topK != null && topK < 0) {
            throw ApiException.invalid("top_k", "'top_k' must be 0 (off) or more, got " + topK + ".");
        }
        Long seed = f.integer("seed");
        Sampler.Settings settings = new Sampler.Settings((float) temperature,
                topK == null ? defaults.topK() : (int) Math.min(topK, Integer.MAX_VALUE),
                (float) Math.max(topP, 1e-6), (float) minP, (float) repeatPenalty, defaults.repeatLastN(),
                seed != null ? seed : ThreadLocalRandom.current().nextLong())
                .withPenalties((float) f.number("presence_penalty", -2, 2, 0),
                        (float) f.number("frequency_penalty", -2, 2, 0))
                .withLogitBias(logitBias(f));

        String maxField = "max_tokens";
        Long maxTokens = f.integer("max_tokens");
        if (chat) {
            Long maxCompletion = f.integer("max_completion_tokens");
            if (maxCompletion != null) {
                maxField = "max_completion_tokens";
                maxTokens = maxCompletion;
            }
        }
        if (maxTokens != null && maxTokens < 1) {
            throw ApiException.invalid(maxField, "'" + maxField + "' must be at least 1, got " + maxTokens + ".");
        }
        // OpenAI's defaults: 16 tokens for the legacy completions, as many as fit for chat
        int limit = maxTokens != null ? (int) Math.min(maxTokens, Integer.MAX_VALUE) : chat ? Integer.MAX_VALUE : 16;

        List<String> stops = stops(f);
        rejectUnsupported(f, chat);
        Supplier<TokenConstraint> constraint = constraint(f);

        ToolCalling tools = chat ? tools(f, seed) : null;
        if (tools != null && tools.active() && constraint != null) {
            // a grammar for the text and one for the calls would have to be one grammar: not done
            throw ApiException.unsupported(f.get("grammar") != null ? "grammar" : f.get("json_schema") != null
                    ? "json_schema" : "response_format",
                    "A structured output format together with tools is not supported by this server: send the"
                            + " tools with tool_choice 'none', or no tools.");
        }
        int[] prompt = chat ? chatPrompt(f, tools) : textPrompt(f);
        if (prompt.length >= contextLength) {
            throw tooLong(chat, prompt.length + " tokens");
        }
        return new GenerationRequest(chat, prompt, limit, settings, stops, stream, includeUsage,
                n == null ? 1 : (int) (long) n, logprobs, constraint != null ? constraint : toolConstraint(tools),
                tools != null && tools.active() ? tools : null);
    }

    /// How many alternatives to report per token, or -1 for no log-probabilities. Chat: `logprobs` (a boolean)
    /// and `top_logprobs`; completions: the legacy `logprobs` (an integer, the number of alternatives).
    private static int logprobs(Fields f, boolean chat) throws ApiException {
        if (chat) {
            boolean on = Boolean.TRUE.equals(f.bool("logprobs"));
            Long top = f.integer("top_logprobs");
            if (top == null) {
                return on ? 0 : -1;
            }
            if (top < 0 || top > MAX_TOP_LOGPROBS) {
                throw ApiException.invalid("top_logprobs", "invalid_value", "Invalid value for 'top_logprobs': "
                        + top + " is not between 0 and " + MAX_TOP_LOGPROBS + ".");
            }
            if (!on) {
                throw ApiException.invalid("top_logprobs", "invalid_value",
                        "'top_logprobs' requires 'logprobs' to be true.");
            }
            return (int) (long) top;
        }
        Object v = f.get("logprobs");
        if (v instanceof Boolean) { // a chat-style boolean sent to the legacy endpoint: say what it takes
            throw ApiException.wrongType("logprobs", "an integer (the number of alternatives per token)", v);
        }
        Long top = f.integer("logprobs");
        if (top == null) {
            return -1;
        }
        if (top < 0 || top > MAX_TOP_LOGPROBS) {
            throw ApiException.invalid("logprobs", "invalid_value", "Invalid value for 'logprobs': " + top
                    + " is not between 0 and " + MAX_TOP_LOGPROBS + ".");
        }
        return (int) (long) top;
    }

    /// The grammar the output is held to: `response_format`, or llama.cpp's extensions `grammar` (GBNF text) and
    /// `json_schema` (a schema object); at most one of them.
    private Supplier<TokenConstraint> constraint(Fields f) throws ApiException {
        Supplier<TokenConstraint> format = responseFormat(f);
        String gbnf = f.string("grammar");
        Object schema = f.get("json_schema");
        int given = (format != null ? 1 : 0) + (gbnf != null ? 1 : 0) + (schema != null ? 1 : 0);
        if (given > 1) {
            throw ApiException.invalid(gbnf != null ? "grammar" : "json_schema", "Give one of 'response_format'"
                    + " (json_object or json_schema), 'grammar' and 'json_schema', not several.");
        }
        Grammar grammar = null;
        if (gbnf != null) {
            try {
                grammar = Grammar.parse(gbnf);
            } catch (GrammarException e) {
                throw ApiException.invalid("grammar", "invalid_value", "Invalid 'grammar': " + e.getMessage() + ".");
            }
        } else if (schema != null) {
            grammar = schemaGrammar(schema, "json_schema");
        }
        if (grammar == null) {
            return format;
        }
        Grammar g = grammar;
        return () -> g.newConstraint(tokenizer);
    }

    /// `response_format`: `text` (no constraint), `json_object` (any JSON object) or `json_schema` (JSON valid
    /// against `json_schema.schema`). The output is held to the grammar whatever `strict` says: a schema this
    /// server cannot enforce is refused (400 naming the keyword) rather than followed loosely.
    private Supplier<TokenConstraint> responseFormat(Fields f) throws ApiException {
        Map<String, Object> format = f.object("response_format");
        if (format == null) {
            return null;
        }
        Fields rf = new Fields(format, "response_format.");
        String type = rf.string("type");
        if (type == null) {
            throw ApiException.invalid("response_format.type", "Missing required parameter: 'response_format.type'.");
        }
        Grammar grammar = switch (type) {
            case "text" -> null;
            case "json_object" -> AnyJsonObject.GRAMMAR;
            case "json_schema" -> jsonSchema(rf);
            default -> throw ApiException.invalid("response_format.type", "invalid_value", "Invalid value for"
                    + " 'response_format.type': '" + clip(type) + "'; supported: 'text', 'json_object',"
                    + " 'json_schema'.");
        };
        return grammar == null ? null : () -> grammar.newConstraint(tokenizer);
    }

    private static Grammar jsonSchema(Fields rf) throws ApiException {
        Map<String, Object> spec = rf.object("json_schema");
        if (spec == null) {
            throw ApiException.invalid("response_format.json_schema",
                    "Missing required parameter: 'response_format.json_schema'.");
        }
        Fields js = new Fields(spec, "response_format.json_schema.");
        js.string("name");
        js.string("description");
        js.bool("strict");
        Object schema = js.get("schema");
        if (schema == null) {
            throw ApiException.invalid("response_format.json_schema.schema",
                    "Missing required parameter: 'response_format.json_schema.schema'.");
        }
        return schemaGrammar(schema, "response_format.json_schema.schema");
    }

    /// The grammar of a JSON Schema given in field `param`.
    private static Grammar schemaGrammar(Object schema, String param) throws ApiException {
        if (!(schema instanceof Map) && !(schema instanceof Boolean)) {
            throw ApiException.wrongType(param, "an object", schema);
        }
        try {
            return Grammar.fromJsonSchema(schema);
        } catch (GrammarException e) {
            throw ApiException.invalid(param, "invalid_value", "Invalid '" + param + "': " + e.getMessage() + ".");
        }
    }

    /// The grammar of `json_object`, compiled once.
    private static final class AnyJsonObject {
        static final Grammar GRAMMAR = Grammar.anyJsonObject();
    }

    /// `logit_bias`: an object from token ids (as strings) to biases in [-100, 100].
    private Map<Integer, Float> logitBias(Fields f) throws ApiException {
        Map<String, Object> bias = f.object("logit_bias");
        if (bias == null || bias.isEmpty()) {
            return Map.of();
        }
        if (bias.size() > MAX_LOGIT_BIAS) {
            throw ApiException.invalid("logit_bias", "invalid_value", "'logit_bias' may hold at most "
                    + MAX_LOGIT_BIAS + " tokens, got " + bias.size() + ".");
        }
        int vocab = tokenizer.vocabulary().size();
        Map<Integer, Float> out = new java.util.HashMap<>();
        for (Map.Entry<String, Object> e : bias.entrySet()) {
            String key = e.getKey();
            int token;
            try {
                token = Integer.parseInt(key.strip());
            } catch (NumberFormatException ex) {
                throw ApiException.invalid("logit_bias", "invalid_value", "Invalid key in 'logit_bias': '"
                        + clip(key) + "' is not a token id (keys are token ids as strings, such as \"50256\").");
            }
            if (token < 0 || token >= vocab) {
                throw ApiException.invalid("logit_bias", "invalid_value", "Invalid key in 'logit_bias': token id "
                        + token + " is outside the vocabulary (0 to " + (vocab - 1) + ").");
            }
            if (!(e.getValue() instanceof Number num)) {
                throw ApiException.wrongType("logit_bias." + clip(key), "a number", e.getValue());
            }
            double b = num.doubleValue();
            if (!(b >= -100 && b <= 100)) {
                throw ApiException.invalid("logit_bias", "invalid_value", "Invalid value in 'logit_bias' for token "
                        + token + ": " + num + " is not between -100 and 100.");
            }
            out.put(token, (float) b);
        }
        return out;
    }

    private static String clip(String s) {
        return s.length() > 40 ? s.substring(0, 40) + "..." : s;
    }

    private static List<String> stops(Fields f) throws ApiException {
        Object v = f.get("stop");
        List<String> stops = new ArrayList<>();
        if (v == null) {
            return stops;
        }
        if (v instanceof String s) {
            if (!s.isEmpty()) {
                stops.add(s);
            }
        } else if (v instanceof List<?> list) {
            if (list.size() > MAX_STOPS) {
                throw ApiException.invalid("stop", "'stop' may hold at most " + MAX_STOPS + " strings, got "
                        + list.size() + ".");
            }
            for (int i = 0; i < list.size(); i++) {
                if (!(list.get(i) instanceof String s)) {
                    throw ApiException.wrongType("stop[" + i + "]", "a string", list.get(i));
                }
                if (!s.isEmpty()) {
                    stops.add(s);
                }
            }
        } else {
            throw ApiException.wrongType("stop", "a string or an array of strings", v);
        }
        for (String s : stops) {
            if (s.length() > MAX_STOP_CHARS) {
                throw ApiException.invalid("stop", "A stop string may be at most " + MAX_STOP_CHARS
                        + " characters long.");
            }
        }
        return List.copyOf(stops);
    }

    /// Fields whose non-default values this server cannot honour.
    private static void rejectUnsupported(Fields f, boolean chat) throws ApiException {
        if (chat) {
            List<Object> functions = f.array("functions");
            if (functions != null && !functions.isEmpty()) {
                throw ApiException.unsupported("functions", "The deprecated 'functions' parameter is not supported"
                        + " by this server; use 'tools'.");
            }
        } else {
            if (Boolean.TRUE.equals(f.bool("echo"))) {
                throw ApiException.unsupported("echo", "'echo' is not supported by this server.");
            }
            Long bestOf = f.integer("best_of");
            if (bestOf != null && bestOf != 1) {
                throw ApiException.unsupported("best_of", "Only best_of = 1 is supported by this server.");
            }
            String suffix = f.string("suffix");
            if (suffix != null && !suffix.isEmpty()) {
                throw ApiException.unsupported("suffix", "'suffix' (insertion) is not supported by this server.");
            }
        }
    }

    /// `tools`, `tool_choice` and `parallel_tool_calls`; null when the request has no tools and no tool choice.
    private ToolCalling tools(Fields f, Long seed) throws ApiException {
        List<Object> list = f.array("tools");
        Object choiceValue = f.get("tool_choice");
        Boolean parallel = f.bool("parallel_tool_calls");
        if ((list == null || list.isEmpty()) && choiceValue == null) {
            return null;
        }
        List<Tool> tools = new ArrayList<>();
        java.util.Set<String> names = new java.util.HashSet<>();
        for (int i = 0; list != null && i < list.size(); i++) {
            String where = "tools[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> raw)) {
                throw ApiException.wrongType(where, "an object", list.get(i));
            }
            @SuppressWarnings("unchecked")
            Fields t = new Fields((Map<String, Object>) raw, where + ".");
            String type = t.string("type");
            if (type == null) {
                throw ApiException.invalid(where + ".type", "Missing required parameter: '" + where + ".type'.");
            }
            if (!type.equals("function")) {
                throw ApiException.invalid(where + ".type", "invalid_value", "Invalid value for '" + where
                        + ".type': only 'function' tools are supported, got '" + type + "'.");
            }
            Map<String, Object> function = t.object("function");
            if (function == null) {
                throw ApiException.invalid(where + ".function", "Missing required parameter: '" + where
                        + ".function'.");
            }
            Fields fn = new Fields(function, where + ".function.");
            String name = fn.string("name");
            if (name == null) {
                throw ApiException.invalid(where + ".function.name", "Missing required parameter: '" + where
                        + ".function.name'.");
            }
            if (!Tool.isValidName(name)) {
                throw ApiException.invalid(where + ".function.name", "invalid_value", "Invalid value for '" + where
                        + ".function.name': a function name must be 1 to 64 letters, digits, underscores or"
                        + " dashes.");
            }
            if (!names.add(name)) {
                throw ApiException.invalid(where + ".function.name", "invalid_value", "Invalid value for '" + where
                        + ".function.name': another tool is already named '" + name + "'.");
            }
            String description = fn.string("description");
            Map<String, Object> parameters = fn.object("parameters");
            fn.bool("strict");
            tools.add(new Tool(name, description, parameters));
        }
        // a schema the grammar engine cannot express would leave the arguments unconstrained: refused instead
        Map.Entry<Integer, String> unusable = ToolCalling.checkSchemas(tools);
        if (unusable != null) {
            throw ApiException.invalid("tools[" + unusable.getKey() + "].function.parameters", "invalid_value",
                    "Invalid schema for function '" + tools.get(unusable.getKey()).name() + "': "
                            + unusable.getValue() + ".");
        }
        ToolChoice choice = toolChoice(choiceValue, names);
        if (choice.forced() && tools.isEmpty()) {
            throw ApiException.invalid("tool_choice", "invalid_value", "'tool_choice' requires a tool call, but"
                    + " no 'tools' were given.");
        }
        if (chatFormat == null) {
            return null; // refused with the messages, below
        }
        return ToolCalling.of(chatFormat, tools, choice, parallel == null || parallel, seed);
    }

    /// Each choice's constraint over its tool calls (a call's arguments follow its function's schema), or null.
    private java.util.function.Supplier<dev.llamaj.engine.TokenConstraint> toolConstraint(ToolCalling tools) {
        if (tools == null || !tools.constrainable()) {
            return null;
        }
        return () -> tools.constraint(tokenizer);
    }

    private static ToolChoice toolChoice(Object v, java.util.Set<String> names) throws ApiException {
        if (v == null) {
            return ToolChoice.AUTO;
        }
        if (v instanceof String s) {
            return switch (s) {
                case "auto" -> ToolChoice.AUTO;
                case "none" -> ToolChoice.NONE;
                case "required" -> ToolChoice.REQUIRED;
                default -> throw ApiException.invalid("tool_choice", "invalid_value", "Invalid value for"
                        + " 'tool_choice': expected 'auto', 'none', 'required' or a function, got '" + s + "'.");
            };
        }
        if (!(v instanceof Map<?, ?> raw)) {
            throw ApiException.wrongType("tool_choice", "a string or an object", v);
        }
        @SuppressWarnings("unchecked")
        Fields c = new Fields((Map<String, Object>) raw, "tool_choice.");
        String type = c.string("type");
        if (!"function".equals(type)) {
            throw ApiException.invalid("tool_choice.type", "invalid_value", "Invalid value for 'tool_choice.type':"
                    + " expected 'function'.");
        }
        Map<String, Object> function = c.object("function");
        String name = function == null ? null : new Fields(function, "tool_choice.function.").string("name");
        if (name == null) {
            throw ApiException.invalid("tool_choice.function.name", "Missing required parameter:"
                    + " 'tool_choice.function.name'.");
        }
        if (!names.contains(name)) {
            throw ApiException.invalid("tool_choice.function.name", "invalid_value", "Invalid value for"
                    + " 'tool_choice.function.name': no tool is named '" + name + "'.");
        }
        return ToolChoice.function(name);
    }

    private int[] chatPrompt(Fields f, ToolCalling tools) throws ApiException {
        Object v = f.get("messages");
        if (v == null) {
            throw ApiException.invalid("messages", "Missing required parameter: 'messages'.");
        }
        if (!(v instanceof List<?> list)) {
            throw ApiException.wrongType("messages", "an array", v);
        }
        if (list.isEmpty()) {
            throw ApiException.invalid("messages", "'messages' must contain at least one message.");
        }
        List<ChatMessage> messages = new ArrayList<>(list.size());
        boolean toolTurns = false;
        long chars = 0;
        for (int i = 0; i < list.size(); i++) {
            String where = "messages[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> raw)) {
                throw ApiException.wrongType(where, "an object", list.get(i));
            }
            @SuppressWarnings("unchecked")
            Fields m = new Fields((Map<String, Object>) raw, where + ".");
            String role = m.string("role");
            if (role == null) {
                throw ApiException.invalid(where + ".role", "Missing required parameter: '" + where + ".role'.");
            }
            if (role.equals("developer")) {
                role = "system"; // OpenAI's newer name for the system message; templates know "system"
            }
            String content = content(m, where);
            List<ToolCall> calls = toolCalls(m, where);
            String callId = m.string("tool_call_id");
            if (role.equals("tool") && callId == null) {
                throw ApiException.invalid(where + ".tool_call_id", "Missing required parameter: '" + where
                        + ".tool_call_id' (a tool message answers a call).");
            }
            String name = m.string("name");
            if (!calls.isEmpty() && m.get("content") == null) {
                content = null; // a turn that only calls
            }
            toolTurns |= !calls.isEmpty() || role.equals("tool");
            chars += content == null ? 0 : content.length();
            for (ToolCall c : calls) {
                chars += c.arguments().length() + c.name().length();
            }
            messages.add(new ChatMessage(role, content, calls, role.equals("tool") ? callId : null,
                    role.equals("tool") ? name : null));
        }
        if (chars > maxPromptChars) {
            throw tooLong(true, chars + " characters");
        }
        if (chatFormat == null) {
            throw new ApiException(400, "invalid_request_error", "messages", "chat_template_missing",
                    "This model has no chat template, so /v1/chat/completions is unavailable; use /v1/completions,"
                            + " or start the server with --chat-template.");
        }
        if (tools == null && toolTurns) {
            // an earlier call and its result, with no tools offered now: rendered the tool way all the same
            tools = ToolCalling.of(chatFormat, List.of(), ToolChoice.AUTO, true, null);
        }
        try {
            // the template comes from the model file and may write far more than the messages (a hostile one
            // wrote megabytes for a one-word message, which took seconds to tokenize): the rendered text gets the
            // same cheap bound before it is tokenized. Rendering is bounded by the template engine (4 million
            // characters, a million loop iterations); it runs twice for a prompt that fits, as ChatFormat renders
            // and tokenizes in one call
            if (tools == null) {
                List<Message> plain = messages.stream().map(m -> new Message(m.role(), m.content())).toList();
                long rendered = chatFormat.renderText(plain, true).length();
                if (rendered > maxPromptChars) {
                    throw tooLong(true, rendered + " characters once the chat template was applied");
                }
                return chatFormat.render(plain, true);
            }
            long rendered = tools.renderText(messages).length();
            if (rendered > maxPromptChars) {
                throw tooLong(true, rendered + " characters once the chat template was applied");
            }
            return tools.render(messages);
        } catch (ChatFormat.InvalidMessageException e) {
            throw ApiException.invalid("messages[" + e.index() + "]." + e.field(), "invalid_value", e.getMessage());
        } catch (IllegalArgumentException e) {
            // the template refused the conversation (raise_exception) or failed: its message is about the input
            throw ApiException.invalid("messages", "invalid_prompt", String.valueOf(e.getMessage()));
        }
    }

    /// An assistant message's `tool_calls`: `[{"id", "type": "function", "function": {"name", "arguments"}}]`,
    /// the arguments a string of JSON (as OpenAI sends them back) or an object.
    private static List<ToolCall> toolCalls(Fields m, String where) throws ApiException {
        List<Object> list = m.array("tool_calls");
        if (list == null) {
            return List.of();
        }
        List<ToolCall> calls = new ArrayList<>();
        for (int j = 0; j < list.size(); j++) {
            String at = where + ".tool_calls[" + j + "]";
            if (!(list.get(j) instanceof Map<?, ?> raw)) {
                throw ApiException.wrongType(at, "an object", list.get(j));
            }
            @SuppressWarnings("unchecked")
            Fields c = new Fields((Map<String, Object>) raw, at + ".");
            String id = c.string("id");
            if (id == null) {
                throw ApiException.invalid(at + ".id", "Missing required parameter: '" + at + ".id'.");
            }
            String type = c.string("type");
            if (type != null && !type.equals("function")) {
                throw ApiException.invalid(at + ".type", "invalid_value", "Invalid value for '" + at
                        + ".type': expected 'function'.");
            }
            Map<String, Object> function = c.object("function");
            if (function == null) {
                throw ApiException.invalid(at + ".function", "Missing required parameter: '" + at + ".function'.");
            }
            Fields fn = new Fields(function, at + ".function.");
            String name = fn.string("name");
            if (name == null) {
                throw ApiException.invalid(at + ".function.name", "Missing required parameter: '" + at
                        + ".function.name'.");
            }
            Object args = fn.get("arguments");
            String json;
            if (args instanceof String s) {
                json = s.isBlank() ? "{}" : s;
                try {
                    new ToolCall(id, name, json).parsedArguments();
                } catch (IllegalArgumentException e) {
                    throw ApiException.invalid(at + ".function.arguments", "invalid_value", "Invalid value for '" + at
                            + ".function.arguments': not valid JSON (" + e.getMessage() + ").");
                }
            } else if (args instanceof Map<?, ?> || args == null) {
                json = args == null ? "{}" : dev.llamaj.cli.Json.write(args);
            } else {
                throw ApiException.wrongType(at + ".function.arguments", "a string of JSON", args);
            }
            calls.add(new ToolCall(id, name, json));
        }
        return calls;
    }

    /// A message's content: a string, null, or an array of parts of which only `text` parts are supported.
    private static String content(Fields m, String where) throws ApiException {
        Object c = m.get("content");
        if (c == null) {
            return "";
        }
        if (c instanceof String s) {
            return s;
        }
        if (!(c instanceof List<?> parts)) {
            throw ApiException.wrongType(where + ".content", "a string or an array of content parts", c);
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < parts.size(); i++) {
            String partWhere = where + ".content[" + i + "]";
            if (!(parts.get(i) instanceof Map<?, ?> part)) {
                throw ApiException.wrongType(partWhere, "an object", parts.get(i));
            }
            Object type = part.get("type");
            if (!"text".equals(type)) {
                throw ApiException.unsupported(partWhere + ".type", "Only text content parts are supported by this"
                        + " server, got " + (type instanceof String s ? "'" + s + "'" : ApiException.describe(type))
                        + ".");
            }
            if (!(part.get("text") instanceof String text)) {
                throw ApiException.wrongType(partWhere + ".text", "a string", part.get("text"));
            }
            if (!sb.isEmpty()) {
                sb.append('\n');
            }
            sb.append(text);
        }
        return sb.toString();
    }

    /// `prompt`: a string, an array of one string, or token ids (an array of integers, or an array of one).
    private int[] textPrompt(Fields f) throws ApiException {
        Object v = f.get("prompt");
        if (v == null) {
            throw ApiException.invalid("prompt", "Missing required parameter: 'prompt'.");
        }
        if (v instanceof String s) {
            return encode(s);
        }
        if (!(v instanceof List<?> list)) {
            throw ApiException.wrongType("prompt", "a string, an array of strings or an array of token ids", v);
        }
        if (list.isEmpty()) {
            throw ApiException.invalid("prompt", "'prompt' must not be an empty array.");
        }
        Object first = list.getFirst();
        if (first instanceof String || first instanceof List<?>) {
            if (list.size() > 1) {
                throw ApiException.unsupported("prompt", "Batches of prompts are not supported by this server:"
                        + " send one prompt per request.");
            }
            if (first instanceof String s) {
                return encode(s);
            }
            return tokenIds((List<?>) first, "prompt[0]");
        }
        return tokenIds(list, "prompt");
    }

    private int[] tokenIds(List<?> list, String where) throws ApiException {
        if (list.isEmpty()) {
            throw ApiException.invalid(where, "'" + where + "' must not be an empty array.");
        }
        int vocab = tokenizer.vocabulary().size();
        int[] ids = new int[list.size()];
        for (int i = 0; i < ids.length; i++) {
            Object o = list.get(i);
            if (!(o instanceof Long id)) {
                throw ApiException.wrongType(where + "[" + i + "]", "a token id (an integer)", o);
            }
            if (id < 0 || id >= vocab) {
                throw ApiException.invalid(where + "[" + i + "]", "Token id " + id
                        + " is outside the vocabulary (0 to " + (vocab - 1) + ").");
            }
            ids[i] = (int) (long) id;
        }
        return ids;
    }

    /// Text to tokens as the CLI does: control-token text is ordinary text, BOS first if the vocabulary wants it.
    private int[] encode(String text) throws ApiException {
        if (text.length() > maxPromptChars) {
            throw tooLong(false, text.length() + " characters");
        }
        int[] tokens = tokenizer.encode(text);
        Vocabulary v = tokenizer.vocabulary();
        if (v.addBos() && v.bos() >= 0) {
            int[] withBos = new int[tokens.length + 1];
            withBos[0] = v.bos();
            System.arraycopy(tokens, 0, withBos, 1, tokens.length);
            tokens = withBos;
        }
        if (tokens.length == 0) {
            throw ApiException.invalid("prompt", "The prompt is empty.");
        }
        return tokens;
    }

    /// Typed access to the fields of one JSON object; `prefix` names nested objects in messages.
    static final class Fields {
        private final Map<String, Object> map;
        private final String prefix;

        Fields(Map<String, Object> map, String prefix) {
            this.map = map;
            this.prefix = prefix;
        }

        Object get(String key) {
            return map.get(key);
        }

        String string(String key) throws ApiException {
            Object v = map.get(key);
            if (v == null || v instanceof String) {
                return (String) v;
            }
            throw ApiException.wrongType(prefix + key, "a string", v);
        }

        Boolean bool(String key) throws ApiException {
            Object v = map.get(key);
            if (v == null || v instanceof Boolean) {
                return (Boolean) v;
            }
            throw ApiException.wrongType(prefix + key, "a boolean", v);
        }

        /// An integer (a JSON number without a fractional part that fits in a long), or null.
        Long integer(String key) throws ApiException {
            Object v = map.get(key);
            if (v == null || v instanceof Long) {
                return (Long) v;
            }
            if (v instanceof BigDecimal d) {
                try {
                    return d.longValueExact();
                } catch (ArithmeticException e) {
                    // a fraction, or too large
                }
            }
            if (v instanceof Number) {
                throw ApiException.invalid(prefix + key, "invalid_type", "Invalid value for '" + prefix + key
                        + "': expected an integer, got " + v + ".");
            }
            throw ApiException.wrongType(prefix + key, "an integer", v);
        }

        /// A number in `[min, max]`, or `otherwise` when absent or null.
        double number(String key, double min, double max, double otherwise) throws ApiException {
            Object v = map.get(key);
            if (v == null) {
                return otherwise;
            }
            if (!(v instanceof Number num)) {
                throw ApiException.wrongType(prefix + key, "a number", v);
            }
            double d = num.doubleValue();
            if (!(d >= min && d <= max)) {
                throw ApiException.invalid(prefix + key, "invalid_value", "Invalid value for '" + prefix + key
                        + "': " + v + " is not between " + fmt(min) + " and " + fmt(max) + ".");
            }
            return d;
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> object(String key) throws ApiException {
            Object v = map.get(key);
            if (v == null || v instanceof Map) {
                return (Map<String, Object>) v;
            }
            throw ApiException.wrongType(prefix + key, "an object", v);
        }

        @SuppressWarnings("unchecked")
        List<Object> array(String key) throws ApiException {
            Object v = map.get(key);
            if (v == null || v instanceof List) {
                return (List<Object>) v;
            }
            throw ApiException.wrongType(prefix + key, "an array", v);
        }

        private static String fmt(double d) {
            return d == Math.rint(d) ? String.valueOf((long) d) : String.valueOf(d);
        }
    }
}
