package dev.llamaj.cli.server;

import dev.llamaj.cli.Json;
import dev.llamaj.engine.Completion;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/// The parts of hybrid routing that look at content: whether a request asked for JSON and whether an answer is
/// JSON ([Fallback.Rule#SCHEMA_FAILURE]), whether an answer is confident enough ([Fallback.Rule#LOW_CONFIDENCE]),
/// and marking the fallback's answer with the route it took.
public final class Routing {
    private Routing() {}

    /// Whether the request asks for JSON: `response_format` `json_object` or `json_schema`, or llama.cpp's
    /// `json_schema` field. (A `grammar` may describe anything, so it does not count.)
    public static boolean asksForJson(Map<String, Object> body) {
        if (body == null) {
            return false;
        }
        if (body.get("response_format") instanceof Map<?, ?> format
                && ("json_object".equals(format.get("type")) || "json_schema".equals(format.get("type")))) {
            return true;
        }
        return body.get("json_schema") instanceof Map<?, ?>;
    }

    /// Whether `text` is one JSON value (an object or an array, as `response_format` asks for), surrounding
    /// whitespace allowed. An answer cut off by `max_tokens` is not.
    public static boolean isJson(String text) {
        try {
            Object v = Json.parse(text.strip());
            return v instanceof Map || v instanceof List;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /// Whether a local answer is below the confidence thresholds: the mean log-probability of its tokens below
    /// `minMean`, or one token's below `minToken` (the log-probabilities of the distribution each token was drawn
    /// from, see [Completion.Token#logprob()]). An answer without tokens is not judged.
    public static boolean lowConfidence(Completion c, double minMean, double minToken) {
        return c.generatedTokens() > 0 && (c.meanLogprob() < minMean || c.minLogprob() < minToken);
    }

    static boolean lowConfidence(Completion c, Fallback f) {
        return lowConfidence(c, f.minMeanLogprob(), f.minTokenLogprob());
    }

    /// The fallback's JSON answer with `usage.route = "fallback"` and `usage.escalation = reason` added, and what
    /// it says for the access log. Anything else (an error, a body that is not a JSON object) is passed on as it
    /// came.
    record Marked(byte[] bytes, int promptTokens, int completionTokens, String text) {}

    static Marked markRoute(byte[] body, String reason) {
        Object parsed;
        try {
            parsed = Json.parse(new String(body, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            return new Marked(body, -1, -1, null);
        }
        if (!(parsed instanceof Map<?, ?> raw) || !(raw.get("usage") instanceof Map<?, ?> rawUsage)) {
            return new Marked(body, -1, -1, null);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> answer = (Map<String, Object>) raw;
        @SuppressWarnings("unchecked")
        Map<String, Object> usage = (Map<String, Object>) rawUsage;
        usage.put("route", "fallback");
        usage.put("escalation", reason);
        String text = null;
        if (answer.get("choices") instanceof List<?> choices && !choices.isEmpty()
                && choices.getFirst() instanceof Map<?, ?> choice) {
            if (choice.get("message") instanceof Map<?, ?> message && message.get("content") instanceof String s) {
                text = s;
            } else if (choice.get("text") instanceof String s) {
                text = s;
            }
        }
        return new Marked(Json.write(answer).getBytes(StandardCharsets.UTF_8), count(usage.get("prompt_tokens")),
                count(usage.get("completion_tokens")), text);
    }

    private static int count(Object o) {
        return o instanceof Number n ? (int) Math.min(Integer.MAX_VALUE, Math.max(-1, n.longValue())) : -1;
    }
}
