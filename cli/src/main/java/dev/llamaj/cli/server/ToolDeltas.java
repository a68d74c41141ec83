package dev.llamaj.cli.server;

import dev.llamaj.engine.tools.ToolCall;
import dev.llamaj.engine.tools.ToolCallParser;
import dev.llamaj.engine.tools.ToolCalling;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/// Turns a streamed answer into OpenAI's chat deltas when the request has tools: `{"content": ...}` for text, and
/// for each call a first `{"tool_calls": [{"index", "id", "type": "function", "function": {"name", "arguments":
/// ""}}]}` then `{"tool_calls": [{"index", "function": {"arguments": fragment}}]}` as the arguments arrive. Text
/// that could be the start of a call is held back until that is decided (see [ToolCallParser]).
final class ToolDeltas {
    private final ToolCallParser parser;
    private final List<Map<String, Object>> out = new ArrayList<>();

    ToolDeltas(ToolCalling tools) {
        this.parser = tools.parser(new ToolCallParser.Listener() {
            @Override
            public void content(String text) {
                // consecutive text in one delta
                if (!out.isEmpty() && out.getLast().get("content") instanceof String before) {
                    out.getLast().put("content", before + text);
                } else {
                    Map<String, Object> delta = new LinkedHashMap<>();
                    delta.put("content", text);
                    out.add(delta);
                }
            }

            @Override
            public void callStarted(int index, String id, String name) {
                Map<String, Object> function = new LinkedHashMap<>();
                function.put("name", name);
                function.put("arguments", "");
                Map<String, Object> call = new LinkedHashMap<>();
                call.put("index", index);
                call.put("id", id);
                call.put("type", "function");
                call.put("function", function);
                out.add(toolCalls(call));
            }

            @Override
            public void arguments(int index, String fragment) {
                Map<String, Object> call = new LinkedHashMap<>();
                call.put("index", index);
                call.put("function", Map.of("arguments", fragment));
                out.add(toolCalls(call));
            }
        });
    }

    private static Map<String, Object> toolCalls(Map<String, Object> call) {
        Map<String, Object> delta = new LinkedHashMap<>();
        delta.put("tool_calls", List.of(call));
        return delta;
    }

    /// The deltas for the next piece of text.
    List<Map<String, Object>> feed(String text) {
        parser.feed(text);
        return drain();
    }

    /// The deltas for what was held back at the end.
    List<Map<String, Object>> finish() {
        parser.finish();
        return drain();
    }

    /// Whether the answer made calls (complete ones: an answer cut off inside a call ends as `length`).
    boolean called() {
        return parser.calls() > 0 && !parser.incomplete();
    }

    private List<Map<String, Object>> drain() {
        List<Map<String, Object>> deltas = List.copyOf(out);
        out.clear();
        return deltas;
    }

    /// Calls as the `tool_calls` of a chat message.
    static List<Map<String, Object>> calls(List<ToolCall> calls) {
        List<Map<String, Object>> list = new ArrayList<>();
        for (ToolCall c : calls) {
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", c.name());
            function.put("arguments", c.arguments());
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("id", c.id());
            call.put("type", "function");
            call.put("function", function);
            list.add(call);
        }
        return list;
    }
}
