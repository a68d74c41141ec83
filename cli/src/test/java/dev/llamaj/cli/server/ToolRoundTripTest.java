package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.OpenAiServerTest.body;
import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Json;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// A whole tool round trip over HTTP with a model that knows nothing of tools (stories260K): `tool_choice`
/// `required` or a named function makes the constraint hold from the first token, so the answer is a call whose
/// arguments follow the schema, whatever the model; the call and its result then go back for the answer. Also
/// streamed, and through `/v1/responses`. One server has a template that renders tools the Hermes way
/// (`<tool_call>`), the other the test template, which knows nothing of tools (the generic format).
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ToolRoundTripTest {
    /// A template that shows the tools by name and writes calls as Hermes' `<tool_call>{...}</tool_call>`.
    static final String HERMES_TEMPLATE = """
            {% if tools %}tools:{% for t in tools %} {{ t.function.name }}{% endfor %}
            {% endif %}{% for m in messages %}{{ m.role }}: {% if m.tool_calls %}{% for c in m.tool_calls %}\
            <tool_call>{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}</tool_call>\
            {% endfor %}{% else %}{{ m.content }}{% endif %}
            {% endfor %}{% if add_generation_prompt %}assistant:{% endif %}""";

    static TestServer t;
    static TestServer generic;

    static final Map<String, Object> FORECAST = Map.of("type", "function", "function", Map.of("name",
            "get_forecast", "description", "Weather forecast for a city", "parameters", Map.of("type", "object",
                    "properties", new LinkedHashMap<>(Map.of(
                            "city", Map.of("type", "string", "enum", List.of("Paris", "Rome", "Oslo")))),
                    "required", List.of("city"), "additionalProperties", false)));
    static final Map<String, Object> TIME = Map.of("type", "function", "function", Map.of("name", "get_time",
            "parameters", Map.of("type", "object", "properties", Map.of("hours", Map.of("type", "integer",
                    "minimum", 0, "maximum", 23)), "required", List.of("hours"), "additionalProperties", false)));

    @BeforeAll
    static void start() throws Exception {
        t = TestServer.start(TestServer.config().parallel(1).queueLimit(8).contextLength(512).build(),
                HERMES_TEMPLATE);
        generic = TestServer.start(TestServer.config().parallel(1).queueLimit(8).contextLength(512).build());
    }

    @AfterAll
    static void stop() {
        if (t != null) {
            t.close();
        }
        if (generic != null) {
            generic.close();
        }
    }

    static Map<String, Object> chat(Object... keyValues) throws Exception {
        HttpResponse<String> r = t.post("/v1/chat/completions", body(keyValues));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return json(r);
    }

    static Map<String, Object> choice(Map<String, Object> response) {
        return map(list(response.get("choices")).getFirst());
    }

    @Test
    void requiredCallThenAnswer() throws Exception {
        List<Object> messages = new ArrayList<>(List.of(Map.of("role", "user", "content", "Will it rain in Rome?")));
        for (long seed = 1; seed <= 5; seed++) {
            // one call per answer: stories260K never ends an answer by itself, so with parallel calls it would
            // write calls until max_tokens cut one off
            Map<String, Object> c = choice(chat("messages", messages, "tools", List.of(FORECAST, TIME),
                    "tool_choice", "required", "seed", seed, "max_tokens", 200, "parallel_tool_calls", false));
            assertThat(c.get("finish_reason")).as("seed %d: %s", seed, c).isEqualTo("tool_calls");
            Map<String, Object> message = map(c.get("message"));
            assertThat(message.get("content")).isNull();
            for (Object o : list(message.get("tool_calls"))) {
                Map<String, Object> call = map(o);
                assertThat(call.get("id").toString()).matches("call_[A-Za-z0-9]{24}");
                Map<String, Object> function = map(call.get("function"));
                Map<String, Object> args = Json.parseObject((String) function.get("arguments"));
                if (function.get("name").equals("get_forecast")) {
                    assertThat(args.keySet()).containsExactly("city");
                    assertThat(args.get("city")).isIn("Paris", "Rome", "Oslo");
                } else {
                    assertThat(function.get("name")).isEqualTo("get_time");
                    assertThat(args.keySet()).containsExactly("hours");
                    assertThat(((Number) args.get("hours")).longValue()).isBetween(0L, 23L);
                }
            }
        }
        // the round trip: the call and its result go back, and the model answers in text
        Map<String, Object> c = choice(chat("messages", messages, "tools", List.of(FORECAST),
                "tool_choice", "required", "seed", 7, "max_tokens", 200, "parallel_tool_calls", false));
        Map<String, Object> call = map(list(map(c.get("message")).get("tool_calls")).getFirst());
        messages.add(map(c.get("message")));
        messages.add(Map.of("role", "tool", "tool_call_id", call.get("id"), "content", "{\"rain\": false}"));
        Map<String, Object> answer = choice(chat("messages", messages, "tools", List.of(FORECAST), "seed", 7,
                "max_tokens", 8));
        assertThat(map(answer.get("message")).get("content")).isInstanceOf(String.class);
        assertThat(answer.get("finish_reason")).isIn("stop", "length");
    }

    @Test
    void namedFunction() throws Exception {
        Map<String, Object> c = choice(chat("messages", List.of(Map.of("role", "user", "content", "Time?")),
                "tools", List.of(FORECAST, TIME), "tool_choice", Map.of("type", "function", "function",
                        Map.of("name", "get_time")), "seed", 3, "max_tokens", 200, "parallel_tool_calls", false));
        assertThat(c.get("finish_reason")).isEqualTo("tool_calls");
        List<Object> calls = list(map(c.get("message")).get("tool_calls"));
        assertThat(calls).hasSize(1);
        assertThat(map(map(calls.getFirst()).get("function"))).containsEntry("name", "get_time");
    }

    @Test
    void streamedDeltasMatchTheWholeAnswer() throws Exception {
        Object[] request = {"messages", List.of(Map.of("role", "user", "content", "Weather?")), "tools",
                List.of(FORECAST, TIME), "tool_choice", "required", "seed", 11, "max_tokens", 200,
                "parallel_tool_calls", false};
        Map<String, Object> whole = map(choice(chat(request)).get("message"));
        Map<String, Object> streaming = body(request);
        streaming.put("stream", true);
        HttpResponse<String> r = t.post("/v1/chat/completions", streaming);
        assertThat(r.statusCode()).isEqualTo(200);
        List<String> events = TestServer.events(r.body());
        assertThat(events.getLast()).isEqualTo("[DONE]");
        Map<Long, Map<String, Object>> calls = new LinkedHashMap<>();
        Map<Long, StringBuilder> args = new LinkedHashMap<>();
        String finish = null;
        for (String e : events.subList(0, events.size() - 1)) {
            Map<String, Object> c = map(list(Json.parseObject(e).get("choices")).getFirst());
            if (c.get("finish_reason") != null) {
                finish = (String) c.get("finish_reason");
            }
            Map<String, Object> delta = map(c.get("delta"));
            if (!delta.containsKey("tool_calls")) {
                assertThat(delta.getOrDefault("content", "")).isEqualTo("");
                continue;
            }
            Map<String, Object> call = map(list(delta.get("tool_calls")).getFirst());
            long index = (Long) call.get("index");
            if (call.containsKey("id")) {
                assertThat(map(call.get("function"))).containsEntry("arguments", "");
                calls.put(index, call);
                args.put(index, new StringBuilder());
            } else {
                args.get(index).append(map(call.get("function")).get("arguments"));
            }
        }
        assertThat(finish).isEqualTo("tool_calls");
        List<Object> expected = list(whole.get("tool_calls"));
        assertThat(calls).hasSize(expected.size());
        for (int i = 0; i < expected.size(); i++) {
            Map<String, Object> e = map(expected.get(i));
            assertThat(calls.get((long) i).get("id")).isEqualTo(e.get("id"));
            assertThat(map(calls.get((long) i).get("function")).get("name")).isEqualTo(map(e.get("function")).get("name"));
            assertThat(args.get((long) i).toString()).isEqualTo(map(e.get("function")).get("arguments"));
        }
    }

    /// The generic format (the tools in a system message written by the server), through `/v1/responses`.
    @Test
    void genericFormatThroughResponses() throws Exception {
        Map<String, Object> tool = Map.of("type", "function", "name", "rain", "parameters", Map.of("type", "object",
                "properties", Map.of("city", Map.of("enum", List.of("Oslo", "Rome"))), "required", List.of("city"),
                "additionalProperties", false));
        HttpResponse<String> r = generic.post("/v1/responses", body("input", "Rain in Oslo?", "tools", List.of(tool),
                "tool_choice", "required", "max_output_tokens", 200, "seed", 5, "parallel_tool_calls", false));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        Map<String, Object> response = json(r);
        assertThat(response).as(r.body()).containsEntry("status", "completed");
        List<Object> output = list(response.get("output"));
        Map<String, Object> call = map(output.getLast());
        assertThat(call).containsEntry("type", "function_call").containsEntry("name", "rain");
        assertThat(Json.parseObject((String) call.get("arguments")).get("city")).isIn("Oslo", "Rome");
        // and its output goes back as input
        HttpResponse<String> next = generic.post("/v1/responses", body("input", List.of(
                Map.of("role", "user", "content", "Rain in Oslo?"), call,
                Map.of("type", "function_call_output", "call_id", call.get("call_id"), "output", "no")),
                "tools", List.of(tool), "max_output_tokens", 5));
        assertThat(next.statusCode()).as(next.body()).isEqualTo(200);
        assertThat(list(json(next).get("output"))).extracting(o -> map(o).get("type")).containsExactly("message");
    }
}
