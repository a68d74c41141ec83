package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Json;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.tools.Tool;
import dev.llamaj.engine.tools.ToolCalling;
import dev.llamaj.engine.tools.ToolChoice;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// The streamed shapes of tool calls, from an answer fed in pieces: chat completion deltas ([ToolDeltas]) and
/// Responses events ([ResponsesApi]), with Qwen 2.5's template (Hermes format).
class ToolStreamingTest {
    static ChatFormat qwen;
    static final Tool WEATHER = Tool.of("get_weather", "Weather", "{\"type\": \"object\", \"properties\": {\"city\":"
            + " {\"type\": \"string\"}}}");
    static final String ANSWER = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":"
            + " \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}"
            + "\n</tool_call>";

    @BeforeAll
    static void load() throws Exception {
        try (GGUFFile vocab = GGUFFile.open(SharedData.require("tokenizer/qwen2.gguf"))) {
            qwen = ChatFormat.of(Tokenizer.from(vocab.metadata()),
                    Files.readString(SharedData.require("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja")));
        }
    }

    static ToolCalling tools(boolean parallel) {
        return ToolCalling.of(qwen, List.of(WEATHER), ToolChoice.AUTO, parallel, 3L);
    }

    static List<String> pieces(String text, int size) {
        List<String> pieces = new ArrayList<>();
        for (int i = 0; i < text.length(); i += size) {
            pieces.add(text.substring(i, Math.min(text.length(), i + size)));
        }
        return pieces;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }

    @Test
    void chatDeltas() {
        ToolDeltas deltas = new ToolDeltas(tools(true));
        List<Map<String, Object>> all = new ArrayList<>();
        for (String piece : pieces(ANSWER, 3)) {
            all.addAll(deltas.feed(piece));
        }
        all.addAll(deltas.finish());
        assertThat(deltas.called()).isTrue();
        StringBuilder content = new StringBuilder();
        Map<Long, StringBuilder> arguments = new LinkedHashMap<>();
        List<Map<String, Object>> starts = new ArrayList<>();
        for (Map<String, Object> delta : all) {
            // every delta goes through JSON as the client sees it
            Map<String, Object> d = Json.parseObject(Json.write(delta));
            if (d.containsKey("content")) {
                content.append(d.get("content"));
                continue;
            }
            Map<String, Object> call = map(((List<?>) d.get("tool_calls")).getFirst());
            long index = (Long) call.get("index");
            if (call.containsKey("id")) {
                assertThat(call).containsOnlyKeys("index", "id", "type", "function");
                assertThat(map(call.get("function"))).containsEntry("arguments", "");
                starts.add(call);
                arguments.put(index, new StringBuilder());
            } else {
                assertThat(call).containsOnlyKeys("index", "function");
                arguments.get(index).append(map(call.get("function")).get("arguments"));
            }
        }
        assertThat(content.toString()).isEqualTo("Checking.\n");
        assertThat(starts).extracting(c -> c.get("index")).containsExactly(0L, 1L);
        assertThat(starts).extracting(c -> map(c.get("function")).get("name")).containsOnly("get_weather");
        assertThat(starts).extracting(c -> (String) c.get("id")).allMatch(id -> id.matches("call_[A-Za-z0-9]{24}"))
                .doesNotHaveDuplicates();
        assertThat(arguments.values()).extracting(StringBuilder::toString)
                .containsExactly("{\"city\": \"Paris\"}", "{\"city\": \"Rome\"}");
        // the same ids as the non-streaming answer, for the same seed
        assertThat(tools(true).parse(ANSWER).calls()).extracting(c -> c.id())
                .containsExactly(starts.stream().map(c -> (String) c.get("id")).toArray(String[]::new));
    }

    @Test
    void responsesEvents() {
        GenerationRequest request = new GenerationRequest(true, new int[] {1}, 100, Sampler.Settings.defaults(1),
                List.of(), true, false, 1, -1, null, tools(true));
        ResponsesApi api = new ResponsesApi(Map.of("input", "x"), "m", request);
        List<Map<String, Object>> events = new ArrayList<>(api.start());
        for (String piece : pieces(ANSWER, 5)) {
            events.addAll(api.text(piece));
        }
        Completion c = new Completion(ANSWER, 1, 40, Completion.StopReason.END_OF_GENERATION, 1, 1);
        events.addAll(api.finish(new SlotPool.Job.Finished(c, 1, 0)));
        List<Object> types = new ArrayList<>();
        for (Map<String, Object> e : events) {
            if (!e.get("type").toString().endsWith(".delta")) {
                types.add(e.get("type"));
            }
        }
        assertThat(types).containsExactly("response.created", "response.in_progress",
                "response.output_item.added", "response.content_part.added", "response.output_text.done",
                "response.content_part.done", "response.output_item.done",
                "response.output_item.added", "response.function_call_arguments.done", "response.output_item.done",
                "response.output_item.added", "response.function_call_arguments.done", "response.output_item.done",
                "response.completed");
        Map<String, Object> done = map(events.getLast().get("response"));
        List<?> output = (List<?>) done.get("output");
        assertThat(output).hasSize(3);
        assertThat(map(output.get(1))).containsEntry("type", "function_call").containsEntry("name", "get_weather")
                .containsEntry("arguments", "{\"city\": \"Paris\"}").containsEntry("status", "completed");
        assertThat(map(output.get(2))).containsEntry("arguments", "{\"city\": \"Rome\"}");
        StringBuilder args = new StringBuilder();
        for (Map<String, Object> e : events) {
            if (e.get("type").equals("response.function_call_arguments.delta")
                    && e.get("output_index").equals(1)) {
                args.append(e.get("delta"));
            }
        }
        assertThat(args.toString()).isEqualTo("{\"city\": \"Paris\"}");
        // and whole: the same items
        Map<String, Object> whole = new ResponsesApi(Map.of("input", "x"), "m", new GenerationRequest(true,
                new int[] {1}, 100, Sampler.Settings.defaults(1), List.of(), false, false, 1, -1, null, tools(true)))
                .complete(new SlotPool.Job.Finished(c, 1, 0));
        assertThat((List<?>) whole.get("output")).extracting(o -> map(o).get("type"))
                .containsExactly("message", "function_call", "function_call");
        assertThat(whole).containsEntry("status", "completed");
    }
}
