package dev.llamaj.cli.server;

import dev.llamaj.engine.Completion;
import dev.llamaj.engine.tools.ToolCall;
import dev.llamaj.engine.tools.ToolCallParser;
import dev.llamaj.engine.tools.ToolCalling;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/// OpenAI's Responses API (`POST /v1/responses`), which current OpenAI SDKs and the Vercel AI SDK use by default,
/// on top of the chat machinery.
///
/// A request is checked field by field (400 naming the `input[i]...` or other field) and translated into a chat
/// completion request: `instructions` become the system message, `input` (a string, or message,
/// `function_call` and `function_call_output` items) the messages, `max_output_tokens` the token limit, the flat
/// `{"type": "function", "name", ...}` tools the chat ones. The answer is the `output` list: a `message` item with
/// the `output_text`, and a `function_call` item per call; streaming sends the API's typed events
/// (`response.created`, `response.output_text.delta`, `response.function_call_arguments.delta`,
/// `response.completed`...).
///
/// The server keeps no state: `previous_response_id`, `conversation` and item references are refused (send the
/// whole conversation in `input`), and `store` is answered as `false`.
final class ResponsesApi {
    private final Map<String, Object> request;
    private final String modelId;
    private final GenerationRequest generation;
    private final String id = "resp_" + random(24);
    private final long createdAt = System.currentTimeMillis() / 1000;

    /// Streaming state: the output items so far, and the one open (a message or a call being written).
    private final List<Map<String, Object>> output = new ArrayList<>();
    private Map<String, Object> open;
    private final StringBuilder openText = new StringBuilder();
    private int sequence;
    private final ToolCallParser parser;
    private final List<Map<String, Object>> pending = new ArrayList<>();

    /// @param request    the Responses request body as received (for the fields the response repeats)
    /// @param generation the translated request
    ResponsesApi(Map<String, Object> request, String modelId, GenerationRequest generation) {
        this.request = request;
        this.modelId = modelId;
        this.generation = generation;
        ToolCalling tools = generation.tools();
        this.parser = tools == null ? null : tools.parser(new ToolCallParser.Listener() {
            @Override
            public void content(String text) {
                textDelta(text);
            }

            @Override
            public void callStarted(int index, String callId, String name) {
                callStart(callId, name);
            }

            @Override
            public void arguments(int index, String fragment) {
                argumentsDelta(fragment);
            }
        });
    }

    // ---------------------------------------------------------------- the request

    /// The chat completion request that a Responses request asks for.
    ///
    /// @throws ApiException naming the Responses field that is wrong
    static Map<String, Object> toChatBody(Map<String, Object> body) throws ApiException {
        RequestParser.Fields f = new RequestParser.Fields(body, "");
        for (String stateful : List.of("previous_response_id", "conversation")) {
            if (body.get(stateful) != null) {
                throw ApiException.unsupported(stateful, "'" + stateful + "' is not supported: this server keeps"
                        + " no responses; send the whole conversation in 'input'.");
            }
        }
        if (Boolean.TRUE.equals(f.bool("background"))) {
            throw ApiException.unsupported("background", "Background responses are not supported by this server.");
        }
        f.bool("store");
        f.object("metadata");
        Map<String, Object> chat = new HashMap<>();
        for (String same : List.of("model", "temperature", "top_p", "stream", "seed", "user", "top_k", "min_p",
                "repeat_penalty", "parallel_tool_calls")) {
            if (body.containsKey(same)) {
                chat.put(same, body.get(same));
            }
        }
        Long max = f.integer("max_output_tokens");
        if (max != null) {
            if (max < 1) {
                throw ApiException.invalid("max_output_tokens", "'max_output_tokens' must be at least 1, got " + max
                        + ".");
            }
            chat.put("max_tokens", max);
        }
        Map<String, Object> text = f.object("text");
        if (text != null) {
            // the chat request's response_format, in its shape: what the chat endpoint supports, this one does
            RequestParser.Fields t = new RequestParser.Fields(text, "text.");
            Map<String, Object> format = t.object("format");
            if (format != null) {
                String type = new RequestParser.Fields(format, "text.format.").string("type");
                if ("json_schema".equals(type)) {
                    Map<String, Object> schema = new LinkedHashMap<>();
                    for (String k : List.of("name", "schema", "strict", "description")) {
                        if (format.containsKey(k)) {
                            schema.put(k, format.get(k));
                        }
                    }
                    chat.put("response_format", Map.of("type", "json_schema", "json_schema", schema));
                } else if (type != null) {
                    chat.put("response_format", Map.of("type", type));
                }
            }
        }
        chat.put("messages", messages(f));
        List<Object> tools = f.array("tools");
        if (tools != null) {
            chat.put("tools", tools(tools));
        }
        Object choice = body.get("tool_choice");
        if (choice instanceof Map<?, ?> raw) {
            @SuppressWarnings("unchecked")
            RequestParser.Fields c = new RequestParser.Fields((Map<String, Object>) raw, "tool_choice.");
            if (!"function".equals(c.string("type"))) {
                throw ApiException.invalid("tool_choice.type", "invalid_value", "Invalid value for 'tool_choice.type':"
                        + " only 'function' tools are supported.");
            }
            String name = c.string("name");
            if (name == null) {
                throw ApiException.invalid("tool_choice.name", "Missing required parameter: 'tool_choice.name'.");
            }
            chat.put("tool_choice", Map.of("type", "function", "function", Map.of("name", name)));
        } else if (choice != null) {
            chat.put("tool_choice", choice);
        }
        return chat;
    }

    /// An error about the translated chat request, with its `param` named as in the Responses request
    /// (`tools[0].function.parameters` is `tools[0].parameters` there, `max_tokens` is `max_output_tokens`, and
    /// the messages are `input`).
    static ApiException inResponsesTerms(ApiException e) {
        String p = e.param;
        if (p == null) {
            return e;
        }
        String mapped = p.replaceFirst("^(tools\\[\\d+\\])\\.function\\.", "$1.")
                .replaceFirst("^tool_choice\\.function\\.name$", "tool_choice.name")
                .replaceFirst("^max_tokens$", "max_output_tokens")
                .replaceFirst("^response_format\\.json_schema\\.", "text.format.")
                .replaceFirst("^response_format(\\.type)?$", "text.format$1")
                .replaceFirst("^messages.*", "input");
        return mapped.equals(p) ? e : new ApiException(e.status, e.type, mapped, e.code, e.getMessage()
                .replace("'" + p + "'", "'" + mapped + "'"));
    }

    /// Flat function tools to chat tools.
    private static List<Object> tools(List<Object> tools) throws ApiException {
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < tools.size(); i++) {
            String where = "tools[" + i + "]";
            if (!(tools.get(i) instanceof Map<?, ?> raw)) {
                throw ApiException.wrongType(where, "an object", tools.get(i));
            }
            @SuppressWarnings("unchecked")
            RequestParser.Fields t = new RequestParser.Fields((Map<String, Object>) raw, where + ".");
            String type = t.string("type");
            if (!"function".equals(type)) {
                throw ApiException.unsupported(where + ".type", "Only 'function' tools are supported by this server"
                        + (type == null ? "." : ", got '" + type + "'."));
            }
            String name = t.string("name");
            if (name == null) {
                throw ApiException.invalid(where + ".name", "Missing required parameter: '" + where + ".name'.");
            }
            if (!dev.llamaj.engine.tools.Tool.isValidName(name)) {
                throw ApiException.invalid(where + ".name", "invalid_value", "Invalid value for '" + where
                        + ".name': a function name must be 1 to 64 letters, digits, underscores or dashes.");
            }
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", name);
            String description = t.string("description");
            if (description != null) {
                function.put("description", description);
            }
            Map<String, Object> parameters = t.object("parameters");
            if (parameters != null) {
                function.put("parameters", parameters);
            }
            t.bool("strict");
            out.add(Map.of("type", "function", "function", function));
        }
        return out;
    }

    /// `instructions` and `input` as chat messages.
    private static List<Object> messages(RequestParser.Fields f) throws ApiException {
        List<Object> messages = new ArrayList<>();
        String instructions = f.string("instructions");
        if (instructions != null) {
            messages.add(message("system", instructions));
        }
        Object input = f.get("input");
        if (input == null) {
            throw ApiException.invalid("input", "Missing required parameter: 'input'.");
        }
        if (input instanceof String s) {
            messages.add(message("user", s));
            return messages;
        }
        if (!(input instanceof List<?> items)) {
            throw ApiException.wrongType("input", "a string or an array of input items", input);
        }
        if (items.isEmpty()) {
            throw ApiException.invalid("input", "'input' must contain at least one item.");
        }
        Map<String, String> callNames = new HashMap<>();
        for (int i = 0; i < items.size(); i++) {
            String where = "input[" + i + "]";
            if (!(items.get(i) instanceof Map<?, ?> raw)) {
                throw ApiException.wrongType(where, "an object", items.get(i));
            }
            @SuppressWarnings("unchecked")
            RequestParser.Fields item = new RequestParser.Fields((Map<String, Object>) raw, where + ".");
            String type = item.string("type");
            if (type == null || type.equals("message")) {
                String role = item.string("role");
                if (role == null) {
                    throw ApiException.invalid(where + ".role", "Missing required parameter: '" + where + ".role'.");
                }
                if (!List.of("user", "assistant", "system", "developer").contains(role)) {
                    throw ApiException.invalid(where + ".role", "invalid_value", "Invalid value for '" + where
                            + ".role': expected 'user', 'assistant', 'system' or 'developer', got '" + role + "'.");
                }
                messages.add(message(role, content(item, where)));
            } else if (type.equals("function_call")) {
                String callId = required(item, where, "call_id");
                String name = required(item, where, "name");
                String arguments = item.string("arguments");
                arguments = arguments == null || arguments.isBlank() ? "{}" : arguments;
                try {
                    new ToolCall(callId, name, arguments).parsedArguments();
                } catch (IllegalArgumentException e) {
                    throw ApiException.invalid(where + ".arguments", "invalid_value", "Invalid value for '" + where
                            + ".arguments': not valid JSON (" + e.getMessage() + ").");
                }
                callNames.put(callId, name);
                Map<String, Object> call = Map.of("id", callId, "type", "function", "function",
                        Map.of("name", name, "arguments", arguments));
                // the calls of one turn (and the text before them) make one assistant message
                Map<String, Object> last = messages.isEmpty() ? null : asMap(messages.getLast());
                if (last != null && "assistant".equals(last.get("role"))) {
                    @SuppressWarnings("unchecked")
                    List<Object> calls = (List<Object>) last.computeIfAbsent("tool_calls", k -> new ArrayList<>());
                    calls.add(call);
                } else {
                    Map<String, Object> m = new HashMap<>();
                    m.put("role", "assistant");
                    m.put("content", null);
                    m.put("tool_calls", new ArrayList<>(List.of(call)));
                    messages.add(m);
                }
            } else if (type.equals("function_call_output")) {
                String callId = required(item, where, "call_id");
                Object out = item.get("output");
                String text;
                if (out instanceof String s) {
                    text = s;
                } else if (out instanceof List<?>) {
                    text = content(new RequestParser.Fields(Map.of("content", out), where + "."), where, "output");
                } else {
                    throw ApiException.wrongType(where + ".output", "a string", out);
                }
                Map<String, Object> m = new HashMap<>();
                m.put("role", "tool");
                m.put("tool_call_id", callId);
                m.put("content", text);
                if (callNames.containsKey(callId)) {
                    m.put("name", callNames.get(callId));
                }
                messages.add(m);
            } else if (type.equals("reasoning")) {
                // a reasoning summary sent back by a client: this server writes none and does not need it
            } else {
                throw ApiException.unsupported(where + ".type", "Input items of type '" + type + "' are not supported"
                        + " by this server (only message, function_call and function_call_output).");
            }
        }
        return messages;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object o) {
        return (Map<String, Object>) o;
    }

    private static Map<String, Object> message(String role, String content) {
        Map<String, Object> m = new HashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    private static String required(RequestParser.Fields item, String where, String key) throws ApiException {
        String v = item.string(key);
        if (v == null) {
            throw ApiException.invalid(where + "." + key, "Missing required parameter: '" + where + "." + key + "'.");
        }
        return v;
    }

    private static String content(RequestParser.Fields item, String where) throws ApiException {
        return content(item, where, "content");
    }

    /// A string, or parts of type `input_text`, `output_text` or `text`, joined by newlines.
    private static String content(RequestParser.Fields item, String where, String key) throws ApiException {
        Object c = item.get(key);
        if (c instanceof String s) {
            return s;
        }
        if (!(c instanceof List<?> parts)) {
            throw ApiException.wrongType(where + "." + key, "a string or an array of content parts", c);
        }
        StringBuilder sb = new StringBuilder();
        for (int j = 0; j < parts.size(); j++) {
            String at = where + "." + key + "[" + j + "]";
            if (!(parts.get(j) instanceof Map<?, ?> part)) {
                throw ApiException.wrongType(at, "an object", parts.get(j));
            }
            Object type = part.get("type");
            if (!List.of("input_text", "output_text", "text").contains(type)) {
                throw ApiException.unsupported(at + ".type", "Only text content parts are supported by this server,"
                        + " got " + (type instanceof String s ? "'" + s + "'" : ApiException.describe(type)) + ".");
            }
            if (!(part.get("text") instanceof String s)) {
                throw ApiException.wrongType(at + ".text", "a string", part.get("text"));
            }
            if (!sb.isEmpty()) {
                sb.append('\n');
            }
            sb.append(s);
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- the response

    /// The response object: `status` `in_progress` (no output yet) or final.
    private Map<String, Object> response(String status, Completion c, SlotPool.Job.Finished f) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("id", id);
        r.put("object", "response");
        r.put("created_at", createdAt);
        r.put("status", status);
        r.put("background", false);
        r.put("error", null);
        r.put("incomplete_details", status.equals("incomplete") ? Map.of("reason", "max_output_tokens") : null);
        r.put("instructions", request.get("instructions"));
        r.put("max_output_tokens", request.get("max_output_tokens"));
        r.put("model", modelId);
        r.put("output", List.copyOf(output));
        r.put("parallel_tool_calls", !Boolean.FALSE.equals(request.get("parallel_tool_calls")));
        r.put("previous_response_id", null);
        r.put("store", false);
        r.put("temperature", decimal(generation.settings().temperature()));
        r.put("text", request.get("text") instanceof Map<?, ?> t && t.get("format") != null ? t
                : Map.of("format", Map.of("type", "text")));
        r.put("tool_choice", request.getOrDefault("tool_choice", "auto"));
        r.put("tools", request.getOrDefault("tools", List.of()));
        r.put("top_p", decimal(generation.settings().topP()));
        r.put("truncation", "disabled");
        r.put("usage", f == null ? null : usage(f));
        r.put("user", request.get("user"));
        r.put("metadata", request.getOrDefault("metadata", Map.of()));
        return r;
    }

    /// A setting as it was given (0.8, not the float's 0.800000011920929).
    private static java.math.BigDecimal decimal(float f) {
        return new java.math.BigDecimal(Float.toString(f));
    }

    private static Map<String, Object> usage(SlotPool.Job.Finished f) {
        Map<String, Object> u = new LinkedHashMap<>();
        u.put("input_tokens", f.promptTokens());
        u.put("input_tokens_details", Map.of("cached_tokens", f.cachedTokens()));
        u.put("output_tokens", f.completion().generatedTokens());
        u.put("output_tokens_details", Map.of("reasoning_tokens", 0));
        u.put("total_tokens", f.promptTokens() + f.completion().generatedTokens());
        return u;
    }

    /// For the log: the answer's status and its calls, once it is complete.
    String outcome(SlotPool.Job.Finished f) {
        long calls = output.stream().filter(item -> "function_call".equals(item.get("type"))).count();
        return status(f.completion()) + (calls == 0 ? "" : ", " + calls + " function call" + (calls > 1 ? "s" : ""));
    }

    private static String status(Completion c) {
        return switch (c.stopReason()) {
            case MAX_TOKENS, CONTEXT_FULL -> "incomplete";
            default -> "completed";
        };
    }

    /// The whole answer at once.
    Map<String, Object> complete(SlotPool.Job.Finished f) {
        Completion c = f.completion();
        ToolCalling tools = generation.tools();
        ToolCalling.Result answer = tools == null ? new ToolCalling.Result(c.text(), List.of()) : tools.parse(c.text());
        if (answer.content() != null && !answer.content().isEmpty()) {
            Map<String, Object> m = messageItem("completed");
            m.put("content", List.of(textPart(answer.content())));
            output.add(m);
        }
        for (ToolCall call : answer.calls()) {
            Map<String, Object> item = callItem(call.id(), call.name(), "completed");
            item.put("arguments", call.arguments());
            output.add(item);
        }
        if (output.isEmpty()) {
            // an empty answer is still a message, as OpenAI's
            Map<String, Object> m = messageItem("completed");
            m.put("content", List.of(textPart("")));
            output.add(m);
        }
        return response(status(c), c, f);
    }

    private static Map<String, Object> messageItem(String status) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", "msg_" + random(24));
        m.put("type", "message");
        m.put("status", status);
        m.put("role", "assistant");
        m.put("content", List.of());
        return m;
    }

    private static Map<String, Object> callItem(String callId, String name, String status) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", "fc_" + random(24));
        m.put("type", "function_call");
        m.put("status", status);
        m.put("arguments", "");
        m.put("call_id", callId);
        m.put("name", name);
        return m;
    }

    private static Map<String, Object> textPart(String text) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("type", "output_text");
        p.put("text", text);
        p.put("annotations", List.of());
        return p;
    }

    // ---------------------------------------------------------------- streaming

    private Map<String, Object> event(String type) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("type", type);
        e.put("sequence_number", sequence++);
        pending.add(e);
        return e;
    }

    private List<Map<String, Object>> drain() {
        List<Map<String, Object>> events = List.copyOf(pending);
        pending.clear();
        return events;
    }

    /// `response.created` and `response.in_progress`.
    List<Map<String, Object>> start() {
        event("response.created").put("response", response("in_progress", null, null));
        event("response.in_progress").put("response", response("in_progress", null, null));
        return drain();
    }

    /// The events for the next piece of text.
    List<Map<String, Object>> text(String piece) {
        if (parser != null) {
            parser.feed(piece);
        } else {
            textDelta(piece);
        }
        return drain();
    }

    /// The last events: what was held back, the open item's end, and `response.completed` (or
    /// `response.incomplete` when the token limit or the context stopped the answer).
    List<Map<String, Object>> finish(SlotPool.Job.Finished f) {
        if (parser != null) {
            parser.finish();
        }
        if (output.isEmpty() && open == null) {
            textDelta("");
        }
        close();
        Completion c = f.completion();
        String status = status(c);
        event(status.equals("completed") ? "response.completed" : "response.incomplete")
                .put("response", response(status, c, f));
        return drain();
    }

    private int outputIndex() {
        return output.size();
    }

    private void textDelta(String text) {
        if (open != null && !"message".equals(open.get("type"))) {
            close();
        }
        if (open == null) {
            open = messageItem("in_progress");
            openText.setLength(0);
            Map<String, Object> added = event("response.output_item.added");
            added.put("output_index", outputIndex());
            added.put("item", new LinkedHashMap<>(open));
            Map<String, Object> part = event("response.content_part.added");
            part.put("item_id", open.get("id"));
            part.put("output_index", outputIndex());
            part.put("content_index", 0);
            part.put("part", textPart(""));
        }
        if (text.isEmpty()) {
            return;
        }
        openText.append(text);
        Map<String, Object> delta = event("response.output_text.delta");
        delta.put("item_id", open.get("id"));
        delta.put("output_index", outputIndex());
        delta.put("content_index", 0);
        delta.put("delta", text);
        delta.put("logprobs", List.of());
    }

    private void callStart(String callId, String name) {
        close();
        open = callItem(callId, name, "in_progress");
        openText.setLength(0);
        Map<String, Object> added = event("response.output_item.added");
        added.put("output_index", outputIndex());
        added.put("item", new LinkedHashMap<>(open));
    }

    private void argumentsDelta(String fragment) {
        openText.append(fragment);
        Map<String, Object> delta = event("response.function_call_arguments.delta");
        delta.put("item_id", open.get("id"));
        delta.put("output_index", outputIndex());
        delta.put("delta", fragment);
    }

    /// Ends the open item with its `.done` events.
    private void close() {
        if (open == null) {
            return;
        }
        String text = openText.toString();
        if ("message".equals(open.get("type"))) {
            Map<String, Object> done = event("response.output_text.done");
            done.put("item_id", open.get("id"));
            done.put("output_index", outputIndex());
            done.put("content_index", 0);
            done.put("text", text);
            done.put("logprobs", List.of());
            Map<String, Object> part = event("response.content_part.done");
            part.put("item_id", open.get("id"));
            part.put("output_index", outputIndex());
            part.put("content_index", 0);
            part.put("part", textPart(text));
            open.put("content", List.of(textPart(text)));
        } else {
            Map<String, Object> done = event("response.function_call_arguments.done");
            done.put("item_id", open.get("id"));
            done.put("output_index", outputIndex());
            done.put("name", open.get("name"));
            done.put("arguments", text);
            open.put("arguments", text);
        }
        open.put("status", "completed");
        Map<String, Object> itemDone = event("response.output_item.done");
        itemDone.put("output_index", outputIndex());
        itemDone.put("item", open);
        output.add(open);
        open = null;
    }

    /// An `error` event, for a stream that fails after it started.
    Map<String, Object> error(ApiException e) {
        Map<String, Object> ev = new LinkedHashMap<>();
        ev.put("type", "error");
        ev.put("sequence_number", sequence++);
        ev.put("code", e.code);
        ev.put("message", e.getMessage());
        ev.put("param", e.param);
        return ev;
    }

    private static String random(int n) {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        ThreadLocalRandom random = ThreadLocalRandom.current();
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return sb.toString();
    }
}
