package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.OpenAiServerTest.assertError;
import static dev.llamaj.cli.server.OpenAiServerTest.body;
import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static dev.llamaj.cli.server.TestServer.number;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Json;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// `/v1/responses` over real HTTP with stories260K: the answer matches the chat endpoint's for the same
/// conversation, whole and as the Responses event stream, input items are translated, and every field's bad
/// values are a 400 naming it.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ResponsesApiTest {
    static TestServer t;

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

    static HttpResponse<String> responses(Object... keyValues) throws Exception {
        return t.post("/v1/responses", body(keyValues));
    }

    static String chatText(List<Map<String, Object>> messages, int maxTokens) throws Exception {
        HttpResponse<String> r = t.post("/v1/chat/completions", body("messages", messages, "max_tokens", maxTokens,
                "temperature", 0));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return (String) map(map(list(json(r).get("choices")).getFirst()).get("message")).get("content");
    }

    static String outputText(Map<String, Object> response) {
        StringBuilder sb = new StringBuilder();
        for (Object item : list(response.get("output"))) {
            if ("message".equals(map(item).get("type"))) {
                for (Object part : list(map(item).get("content"))) {
                    sb.append(map(part).get("text"));
                }
            }
        }
        return sb.toString();
    }

    @Test
    void textAnswerMatchesTheChatEndpoint() throws Exception {
        String expected = chatText(List.of(Map.of("role", "system", "content", "Be kind."),
                Map.of("role", "user", "content", "Tell me a story")), 12);
        HttpResponse<String> r = responses("model", "stories260K", "instructions", "Be kind.", "input",
                "Tell me a story", "max_output_tokens", 12, "temperature", 0, "metadata", Map.of("k", "v"));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        Map<String, Object> body = json(r);
        assertThat(body.get("id").toString()).startsWith("resp_");
        assertThat(body).containsEntry("object", "response").containsEntry("status", "incomplete")
                .containsEntry("model", "stories260K").containsEntry("instructions", "Be kind.")
                .containsEntry("store", false).containsEntry("metadata", Map.of("k", "v"));
        assertThat(body.get("temperature").toString()).isEqualTo("0.0");
        assertThat(body.get("top_p").toString()).isEqualTo("0.95");
        assertThat(map(body.get("incomplete_details"))).containsEntry("reason", "max_output_tokens");
        List<Object> output = list(body.get("output"));
        assertThat(output).hasSize(1);
        Map<String, Object> message = map(output.getFirst());
        assertThat(message).containsEntry("type", "message").containsEntry("role", "assistant")
                .containsEntry("status", "completed");
        assertThat(message.get("id").toString()).startsWith("msg_");
        assertThat(map(list(message.get("content")).getFirst())).containsEntry("type", "output_text")
                .containsEntry("annotations", List.of());
        assertThat(outputText(body)).isEqualTo(expected).isNotEmpty();
        Map<String, Object> usage = map(body.get("usage"));
        assertThat(number(usage.get("output_tokens"))).isEqualTo(12);
        assertThat(number(usage.get("total_tokens"))).isEqualTo(number(usage.get("input_tokens")) + 12);
    }

    /// `event: TYPE` / `data: {...}` blocks.
    static List<Map<String, Object>> events(String body) {
        List<Map<String, Object>> events = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            if (block.isBlank()) {
                continue;
            }
            String[] lines = block.split("\n");
            assertThat(lines).hasSize(2);
            assertThat(lines[0]).startsWith("event: ");
            assertThat(lines[1]).startsWith("data: ");
            Map<String, Object> event = Json.parseObject(lines[1].substring(6));
            assertThat(event).containsEntry("type", lines[0].substring(7));
            events.add(event);
        }
        return events;
    }

    @Test
    void streamingEvents() throws Exception {
        String expected = outputText(json(responses("input", List.of(Map.of("role", "user", "content",
                List.of(Map.of("type", "input_text", "text", "Tell me a story")))), "max_output_tokens", 10,
                "temperature", 0)));
        HttpResponse<String> r = responses("input", List.of(Map.of("type", "message", "role", "user", "content",
                "Tell me a story")), "max_output_tokens", 10, "temperature", 0, "stream", true);
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/event-stream");
        assertThat(r.body()).doesNotContain("[DONE]");
        List<Map<String, Object>> events = events(r.body());
        List<Object> types = events.stream().map(e -> e.get("type")).toList();
        assertThat(types.subList(0, 4)).containsExactly("response.created", "response.in_progress",
                "response.output_item.added", "response.content_part.added");
        assertThat(types.subList(types.size() - 4, types.size())).containsExactly("response.output_text.done",
                "response.content_part.done", "response.output_item.done", "response.incomplete");
        for (int i = 0; i < events.size(); i++) {
            assertThat(number(events.get(i).get("sequence_number"))).isEqualTo(i);
        }
        assertThat(map(map(events.getFirst().get("response"))).get("status")).isEqualTo("in_progress");
        StringBuilder deltas = new StringBuilder();
        String itemId = (String) map(events.get(2).get("item")).get("id");
        for (Map<String, Object> e : events) {
            if (e.get("type").equals("response.output_text.delta")) {
                assertThat(e).containsEntry("item_id", itemId).containsEntry("output_index", 0L);
                deltas.append(e.get("delta"));
            }
        }
        assertThat(deltas.toString()).isEqualTo(expected);
        assertThat(events.get(events.size() - 4)).containsEntry("text", expected);
        Map<String, Object> last = map(events.getLast().get("response"));
        assertThat(last).containsEntry("status", "incomplete");
        assertThat(outputText(last)).isEqualTo(expected);
        assertThat(number(map(last.get("usage")).get("output_tokens"))).isEqualTo(10);
    }

    /// A function call and its output in the input reach the prompt (the test template has no tool support, so
    /// the generic format writes them as turns).
    @Test
    void functionCallItemsReachThePrompt() throws Exception {
        Map<String, Object> tool = Map.of("type", "function", "name", "get_weather", "description", "Weather",
                "parameters", Map.of("type", "object", "properties", Map.of("city", Map.of("type", "string"))));
        HttpResponse<String> plain = responses("input", "Weather in Paris?", "max_output_tokens", 2);
        HttpResponse<String> r = responses("input", List.of(Map.of("role", "user", "content", "Weather in Paris?"),
                Map.of("type", "function_call", "call_id", "call_1", "name", "get_weather", "arguments",
                        "{\"city\": \"Paris\"}"),
                Map.of("type", "function_call_output", "call_id", "call_1", "output", "sunny, 21 degrees"),
                Map.of("type", "reasoning", "summary", List.of())),
                "tools", List.of(tool), "tool_choice", "auto", "max_output_tokens", 2);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(number(map(json(r).get("usage")).get("input_tokens")))
                .isGreaterThan(number(map(json(plain).get("usage")).get("input_tokens")) + 40);
        assertThat(json(r).get("tools")).isEqualTo(List.of(tool));
    }

    /// `text.format` is the chat request's `response_format`: a JSON schema holds the answer.
    @Test
    void jsonSchemaFormat() throws Exception {
        Map<String, Object> format = Map.of("type", "json_schema", "name", "answer", "strict", true, "schema",
                Map.of("type", "object", "properties", Map.of("answer", Map.of("enum", List.of("yes", "no"))),
                        "required", List.of("answer"), "additionalProperties", false));
        HttpResponse<String> r = responses("input", "Is water wet?", "text", Map.of("format", format),
                "max_output_tokens", 100, "seed", 3);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        Map<String, Object> body = json(r);
        assertThat(body).containsEntry("status", "completed").containsEntry("text", Map.of("format", format));
        assertThat(Json.parseObject(outputText(body)).get("answer")).isIn("yes", "no");
        // a keyword the grammar cannot enforce is named as the Responses field
        Map<String, Object> bad = Map.of("type", "json_schema", "name", "x", "schema", Map.of("type", "array",
                "uniqueItems", true));
        assertThat(param(responses("input", "hi", "text", Map.of("format", bad)), null)).isEqualTo("text.format.schema");
        assertThat(param(responses("input", "hi", "text", Map.of("format", Map.of("type", "yaml"))), null))
                .isEqualTo("text.format.type");
    }

    static String param(HttpResponse<String> r, String code) {
        return (String) assertError(r, 400, code).get("param");
    }

    @Test
    void badValues() throws Exception {
        assertThat(param(responses("max_output_tokens", 5), null)).isEqualTo("input");
        assertThat(param(responses("input", 5), "invalid_type")).isEqualTo("input");
        assertThat(param(responses("input", List.of()), null)).isEqualTo("input");
        assertThat(param(responses("input", List.of("hi")), "invalid_type")).isEqualTo("input[0]");
        assertThat(param(responses("input", List.of(Map.of("content", "hi"))), null)).isEqualTo("input[0].role");
        assertThat(param(responses("input", List.of(Map.of("role", "robot", "content", "hi"))), "invalid_value"))
                .isEqualTo("input[0].role");
        assertThat(param(responses("input", List.of(Map.of("role", "user", "content", 5))), "invalid_type"))
                .isEqualTo("input[0].content");
        assertThat(param(responses("input", List.of(Map.of("role", "user", "content", List.of(Map.of("type",
                "input_image", "image_url", "x"))))), "unsupported_parameter")).isEqualTo("input[0].content[0].type");
        assertThat(param(responses("input", List.of(Map.of("type", "function_call", "name", "f", "arguments", "{}"))),
                null)).isEqualTo("input[0].call_id");
        assertThat(param(responses("input", List.of(Map.of("type", "function_call", "call_id", "c", "arguments",
                "{}"))), null)).isEqualTo("input[0].name");
        assertThat(param(responses("input", List.of(Map.of("type", "function_call", "call_id", "c", "name", "f",
                "arguments", "{oops"))), "invalid_value")).isEqualTo("input[0].arguments");
        assertThat(param(responses("input", List.of(Map.of("type", "function_call_output", "output", "x"))), null))
                .isEqualTo("input[0].call_id");
        assertThat(param(responses("input", List.of(Map.of("type", "function_call_output", "call_id", "c",
                "output", 5))), "invalid_type")).isEqualTo("input[0].output");
        assertThat(param(responses("input", List.of(Map.of("type", "item_reference", "id", "x"))),
                "unsupported_parameter")).isEqualTo("input[0].type");
        assertThat(param(responses("input", "hi", "instructions", 5), "invalid_type")).isEqualTo("instructions");
        assertThat(param(responses("input", "hi", "max_output_tokens", 0), null)).isEqualTo("max_output_tokens");
        assertThat(param(responses("input", "hi", "max_output_tokens", "many"), "invalid_type"))
                .isEqualTo("max_output_tokens");
        assertThat(param(responses("input", "hi", "temperature", 5), "invalid_value")).isEqualTo("temperature");
        assertThat(param(responses("input", "hi", "top_p", "x"), "invalid_type")).isEqualTo("top_p");
        assertThat(param(responses("input", "hi", "stream", "x"), "invalid_type")).isEqualTo("stream");
        assertThat(param(responses("input", "hi", "previous_response_id", "resp_1"), "unsupported_parameter"))
                .isEqualTo("previous_response_id");
        assertThat(param(responses("input", "hi", "background", true), "unsupported_parameter"))
                .isEqualTo("background");
        assertThat(param(responses("input", "hi", "text", Map.of("format", Map.of("type", 5))), "invalid_type"))
                .isEqualTo("text.format.type");
        assertThat(param(responses("input", "hi", "text", "json"), "invalid_type")).isEqualTo("text");
        assertThat(responses("input", "hi", "max_output_tokens", 2, "text", Map.of("format", Map.of("type",
                "text"))).statusCode()).isEqualTo(200);
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "web_search"))),
                "unsupported_parameter")).isEqualTo("tools[0].type");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function"))), null))
                .isEqualTo("tools[0].name");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function", "name", "a b"))),
                "invalid_value")).isEqualTo("tools[0].name");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function", "name", "f",
                "parameters", 3))), "invalid_type")).isEqualTo("tools[0].parameters");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function", "name", "f")),
                "tool_choice", Map.of("type", "function")), null)).isEqualTo("tool_choice.name");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function", "name", "f",
                "parameters", Map.of("type", "object", "properties", Map.of("a", Map.of("not", Map.of()))))),
                "tool_choice", "auto"), "invalid_value")).isEqualTo("tools[0].parameters");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function", "name", "f")),
                "tool_choice", Map.of("type", "function", "name", "g")), "invalid_value"))
                .isEqualTo("tool_choice.name");
        assertThat(param(responses("input", "hi", "tools", List.of(Map.of("type", "function", "name", "f")),
                "tool_choice", "sometimes"), "invalid_value")).isEqualTo("tool_choice");
        assertThat(t.client.send(t.request("/v1/responses").GET().build(), HttpResponse.BodyHandlers.ofString())
                .statusCode()).isEqualTo(405);
    }
}
