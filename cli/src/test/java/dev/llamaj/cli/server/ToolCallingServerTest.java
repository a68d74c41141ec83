package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.OpenAiServerTest.assertError;
import static dev.llamaj.cli.server.OpenAiServerTest.body;
import static dev.llamaj.cli.server.OpenAiServerTest.user;
import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static dev.llamaj.cli.server.TestServer.number;
import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// `tools`, `tool_choice`, `parallel_tool_calls` and tool turns on `/v1/chat/completions`, over real HTTP with
/// stories260K (whose test template knows nothing of tools, so the generic format applies).
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ToolCallingServerTest {
    static TestServer t;

    static final Map<String, Object> WEATHER = Map.of("type", "function", "function", Map.of("name", "get_weather",
            "description", "Current weather of a city", "parameters", Map.of("type", "object", "properties",
                    Map.of("city", Map.of("type", "string")), "required", List.of("city"))));

    @BeforeAll
    static void start() throws Exception {
        t = TestServer.start(TestServer.config().parallel(1).queueLimit(8).contextLength(512).build());
    }

    @AfterAll
    static void stop() {
        if (t != null) {
            t.close();
        }
    }

    static String param(HttpResponse<String> r) {
        return (String) map(assertError(r, 400, null)).get("param");
    }

    static HttpResponse<String> chat(Object... keyValues) throws Exception {
        return t.post("/v1/chat/completions", body(keyValues));
    }

    @Test
    void badToolFields() throws Exception {
        assertThat(param(chat("messages", user("hi"), "tools", "x"))).isEqualTo("tools");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(5)))).isEqualTo("tools[0]");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(Map.of("function", Map.of("name", "f"))))))
                .isEqualTo("tools[0].type");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(Map.of("type", "retrieval")))))
                .isEqualTo("tools[0].type");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER, Map.of("type", "function",
                "function", Map.of("description", "x")))))).isEqualTo("tools[1].function.name");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(Map.of("type", "function", "function",
                Map.of("name", "no spaces")))))).isEqualTo("tools[0].function.name");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(Map.of("type", "function", "function",
                Map.of("name", "f", "parameters", "{}")))))).isEqualTo("tools[0].function.parameters");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(Map.of("type", "function", "function",
                Map.of("name", "f", "description", 3)))))).isEqualTo("tools[0].function.description");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER, WEATHER))))
                .isEqualTo("tools[1].function.name");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "tool_choice", "sometimes")))
                .isEqualTo("tool_choice");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "tool_choice", 1)))
                .isEqualTo("tool_choice");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "tool_choice",
                Map.of("type", "function", "function", Map.of("name", "nope"))))).isEqualTo("tool_choice.function.name");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "tool_choice",
                Map.of("type", "function")))).isEqualTo("tool_choice.function.name");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "tool_choice",
                Map.of("type", "tool", "function", Map.of("name", "get_weather"))))).isEqualTo("tool_choice.type");
        assertThat(param(chat("messages", user("hi"), "tool_choice", "required"))).isEqualTo("tool_choice");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "parallel_tool_calls", "yes")))
                .isEqualTo("parallel_tool_calls");
        assertThat(param(chat("messages", user("hi"), "functions", List.of(Map.of("name", "f")))))
                .isEqualTo("functions");
        // a structured output format and tools together would need one grammar for both: refused
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "response_format",
                Map.of("type", "json_object")))).isEqualTo("response_format");
        assertThat(param(chat("messages", user("hi"), "tools", List.of(WEATHER), "grammar", "root ::= \"a\"")))
                .isEqualTo("grammar");
        // with tool_choice none the tools are not used, and the format holds
        assertThat(chat("messages", user("hi"), "tools", List.of(WEATHER), "tool_choice", "none", "response_format",
                Map.of("type", "json_object"), "max_tokens", 2).statusCode()).isEqualTo(200);
        // a schema the grammar engine cannot express would leave the arguments unconstrained: refused
        HttpResponse<String> r = chat("messages", user("hi"), "tools", List.of(WEATHER, Map.of("type", "function",
                "function", Map.of("name", "f", "parameters", Map.of("type", "object", "properties",
                        Map.of("a", Map.of("not", Map.of("type", "string"))))))));
        assertThat(param(r)).isEqualTo("tools[1].function.parameters");
        assertThat(r.body()).contains("not");
    }

    @Test
    void badToolTurns() throws Exception {
        Map<String, Object> call = Map.of("id", "call_1", "type", "function", "function",
                Map.of("name", "get_weather", "arguments", "{\"city\": \"Paris\"}"));
        assertThat(param(chat("messages", List.of(Map.of("role", "assistant", "tool_calls", "x")))))
                .isEqualTo("messages[0].tool_calls");
        assertThat(param(chat("messages", List.of(Map.of("role", "assistant", "tool_calls", List.of(Map.of(
                "type", "function", "function", Map.of("name", "f", "arguments", "{}"))))))))
                .isEqualTo("messages[0].tool_calls[0].id");
        assertThat(param(chat("messages", List.of(Map.of("role", "assistant", "tool_calls", List.of(Map.of(
                "id", "c", "function", Map.of("arguments", "{}")))))))).isEqualTo("messages[0].tool_calls[0].function.name");
        assertThat(param(chat("messages", List.of(Map.of("role", "assistant", "tool_calls", List.of(Map.of(
                "id", "c", "function", Map.of("name", "f", "arguments", "{city: Paris}"))))))))
                .isEqualTo("messages[0].tool_calls[0].function.arguments");
        assertThat(param(chat("messages", List.of(Map.of("role", "assistant", "tool_calls", List.of(Map.of(
                "id", "c", "function", Map.of("name", "f", "arguments", 5)))))))).isEqualTo(
                "messages[0].tool_calls[0].function.arguments");
        assertThat(param(chat("messages", List.of(Map.of("role", "assistant", "tool_calls", List.of(Map.of(
                "id", "c", "type", "code", "function", Map.of("name", "f"))))))))
                .isEqualTo("messages[0].tool_calls[0].type");
        assertThat(param(chat("messages", List.of(Map.of("role", "user", "content", "hi"),
                Map.of("role", "assistant", "tool_calls", List.of(call)), Map.of("role", "tool", "content", "21")))))
                .isEqualTo("messages[2].tool_call_id");
        assertThat(param(chat("messages", List.of(Map.of("role", "tool", "content", "21", "tool_call_id", 5)))))
                .isEqualTo("messages[0].tool_call_id");
    }

    /// A conversation with a call and its result is rendered with both (the generic format writes them as turns).
    @Test
    void toolTurnsReachThePrompt() throws Exception {
        Map<String, Object> call = Map.of("id", "call_1", "type", "function", "function",
                Map.of("name", "get_weather", "arguments", "{\"city\": \"Paris\"}"));
        List<Map<String, Object>> withResult = List.of(Map.of("role", "user", "content", "Weather in Paris?"),
                Map.of("role", "assistant", "tool_calls", List.of(call)),
                Map.of("role", "tool", "tool_call_id", "call_1", "content", "sunny and 21 degrees"));
        HttpResponse<String> r = chat("messages", withResult, "tools", List.of(WEATHER), "max_tokens", 3,
                "temperature", 0);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        long withTools = number(map(json(r).get("usage")).get("prompt_tokens"));
        HttpResponse<String> without = chat("messages", user("Weather in Paris?"), "max_tokens", 3, "temperature", 0);
        long plain = number(map(json(without).get("usage")).get("prompt_tokens"));
        // the tool list, the call and the result are all in the prompt
        assertThat(withTools).isGreaterThan(plain + 60);
        // tool_choice none: no tool list, and the answer is text
        HttpResponse<String> none = chat("messages", user("Weather in Paris?"), "tools", List.of(WEATHER),
                "tool_choice", "none", "max_tokens", 3, "temperature", 0);
        assertThat(number(map(json(none).get("usage")).get("prompt_tokens"))).isEqualTo(plain);
        Map<String, Object> choice = map(list(json(none).get("choices")).getFirst());
        assertThat(map(choice.get("message"))).doesNotContainKey("tool_calls");
        assertThat(choice.get("finish_reason")).isEqualTo("length");
    }
}
