package dev.llamaj.cli;

import static dev.llamaj.cli.BatchCommandTest.batch;
import static dev.llamaj.cli.BatchCommandTest.results;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `llama batch` with the OpenAI Batch format (input `custom_id`, `method`, `url`, `body`; output `id`,
/// `custom_id`, `response`, `error`), and the fallback file the routing rules write instead of sending anything.
class BatchOpenAiTest {
    @TempDir
    Path dir;

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }

    static Map<String, Map<String, Object>> byCustomId(Path file) throws Exception {
        Map<String, Map<String, Object>> m = new HashMap<>();
        for (Map<String, Object> line : results(file)) {
            assertThat(m.put((String) line.get("custom_id"), line)).isNull();
        }
        return m;
    }

    @Test
    void readsAndWritesTheOpenAiBatchFormat() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"custom_id": "c1", "method": "POST", "url": "/v1/completions", "body": {"model": "x", "prompt": "Once upon a time", "max_tokens": 10, "temperature": 0}}
                {"custom_id": "c2", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "x", "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}], "max_completion_tokens": 4}}
                {"custom_id": "c3", "method": "GET", "url": "/v1/completions", "body": {"prompt": "x"}}
                {"custom_id": "c4", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}}
                {"custom_id": "c5", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "n": 3}}
                {"id": "c6", "prompt": "not this format"}
                """);
        Path out = dir.resolve("out.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "--chat-template", "plain");
        assertThat(r.code()).as("the malformed lines make it fail").isEqualTo(1);
        assertThat(r.err()).contains("line 3: \"method\" must be \"POST\", got \"GET\" (skipped)")
                .contains("line 4: \"url\" must be \"/v1/chat/completions\" or \"/v1/completions\", got"
                        + " \"/v1/embeddings\" (skipped)")
                .contains("line 5: body.n must be 1").contains("line 6: no \"custom_id\"")
                .contains("4 malformed input lines were skipped");
        Map<String, Map<String, Object>> results = byCustomId(out);
        assertThat(results).containsOnlyKeys("c1", "c2");

        Map<String, Object> c1 = results.get("c1");
        assertThat(c1.keySet()).containsExactly("id", "custom_id", "response", "error");
        assertThat((String) c1.get("id")).startsWith("batch_req_");
        assertThat(c1.get("error")).isNull();
        Map<String, Object> response = map(c1.get("response"));
        assertThat(response).containsEntry("status_code", 200L);
        assertThat((String) response.get("request_id")).startsWith("req_");
        Map<String, Object> body = map(response.get("body"));
        assertThat(body).containsEntry("object", "text_completion").containsEntry("model", "stories260K");
        Map<String, Object> choice = map(((List<?>) body.get("choices")).getFirst());
        assertThat((String) choice.get("text")).startsWith(", there was a little girl");
        assertThat(choice).containsEntry("finish_reason", "length");
        assertThat(map(body.get("usage"))).containsEntry("completion_tokens", 10L).containsEntry("prompt_tokens", 5L)
                .containsEntry("total_tokens", 15L);

        Map<String, Object> c2 = map(map(results.get("c2").get("response")).get("body"));
        assertThat(c2).containsEntry("object", "chat.completion");
        assertThat(map(map(((List<?>) c2.get("choices")).getFirst()).get("message"))).containsEntry("role",
                "assistant");
        assertThat(map(c2.get("usage"))).containsEntry("completion_tokens", 4L);

        // resuming: the custom_ids in the output are done
        LlamaCommandTest.Result again = batch(in, out, "--chat-template", "plain");
        assertThat(again.err()).contains("nothing to do: 2 of 2 valid lines are already in");
        assertThat(results(out)).hasSize(2);
    }

    @Test
    void theFormatCanBeForced() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"id": "a", "prompt": "Once upon a time", "max_tokens": 3}
                """);
        LlamaCommandTest.Result r = batch(in, dir.resolve("out.jsonl"), "--format", "openai", "--strict");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("line 1: no \"custom_id\"");
        LlamaCommandTest.Result bad = batch(in, dir.resolve("out.jsonl"), "--format", "csv");
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.err()).startsWith("llama: --format must be auto, llamaj or openai, got 'csv'");
    }

    @Test
    void linesTooLongForTheContextGoToTheFallbackFile() throws Exception {
        String longPrompt = "Once upon a time there was a little dog. ".repeat(30);
        Path in = Files.writeString(dir.resolve("in.jsonl"), String.join("\n",
                "{\"custom_id\": \"short\", \"method\": \"POST\", \"url\": \"/v1/completions\", \"body\": {\"model\": \"m\","
                        + " \"prompt\": \"Once upon a time\", \"max_tokens\": 4}}",
                "{\"custom_id\": \"long\", \"method\": \"POST\", \"url\": \"/v1/chat/completions\", \"body\": {\"model\":"
                        + " \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"" + longPrompt + "\"}],"
                        + " \"max_completion_tokens\": 4, \"temperature\": 0.2}}") + "\n");
        Path out = dir.resolve("out.jsonl");
        Path fallback = dir.resolve("fallback.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "-c", "64", "--chat-template", "plain", "--fallback-output",
                fallback.toString(), "--fallback-model", "gpt-4o-mini");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(byCustomId(out)).containsOnlyKeys("short");
        List<Map<String, Object>> escalated = results(fallback);
        assertThat(escalated).hasSize(1);
        Map<String, Object> request = escalated.getFirst();
        assertThat(request.keySet()).containsExactly("custom_id", "method", "url", "body");
        assertThat(request).containsEntry("custom_id", "long").containsEntry("method", "POST")
                .containsEntry("url", "/v1/chat/completions");
        // the body as it came, but for the model
        assertThat(map(request.get("body"))).containsOnlyKeys("model", "messages", "max_completion_tokens",
                "temperature").containsEntry("model", "gpt-4o-mini").containsEntry("max_completion_tokens", 4L)
                .containsEntry("messages", List.of(Map.of("role", "user", "content", longPrompt)));
        assertThat(r.err()).contains("1 lines for the fallback API written to " + fallback + " (too-long 1)");

        // a rerun does neither line again
        LlamaCommandTest.Result again = batch(in, out, "-c", "64", "--chat-template", "plain",
                "--fallback-output", fallback.toString());
        assertThat(again.err()).contains("nothing to do");
        assertThat(results(fallback)).hasSize(1);
    }

    @Test
    void llamajLinesBecomeOpenAiRequestsInTheFallbackFile() throws Exception {
        String longPrompt = "Lily and Tom went to the park to play. ".repeat(30);
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"id": 7, "prompt": "%s", "max_tokens": 5, "top_k": 3, "stop": ["."]}
                {"id": "ok", "prompt": "Once", "max_tokens": 2}
                """.formatted(longPrompt));
        Path out = dir.resolve("out.jsonl");
        Path fallback = dir.resolve("fallback.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "-c", "64", "--fallback-output", fallback.toString(),
                "--fallback-on", "too-long");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(results(out)).hasSize(1);
        Map<String, Object> request = results(fallback).getFirst();
        assertThat(request).containsEntry("custom_id", "7").containsEntry("url", "/v1/completions");
        // OpenAI's fields only: top_k is this project's
        assertThat(map(request.get("body"))).containsOnlyKeys("prompt", "max_tokens", "stop")
                .containsEntry("prompt", longPrompt);
        // the integer id 7 counts as done on a rerun
        assertThat(batch(in, out, "-c", "64", "--fallback-output", fallback.toString()).err()).contains(
                "nothing to do");
    }

    @Test
    void answersThatAreNotTheJsonAskedForGoToTheFallbackFile() throws Exception {
        // stories260K writes stories, never JSON: the line that asks for JSON is escalated, the other one is not
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"custom_id": "json", "method": "POST", "url": "/v1/completions", "body": {"prompt": "Once", "max_tokens": 6, "response_format": {"type": "json_object"}}}
                {"custom_id": "text", "method": "POST", "url": "/v1/completions", "body": {"prompt": "Once", "max_tokens": 6}}
                """);
        Path out = dir.resolve("out.jsonl");
        Path fallback = dir.resolve("fallback.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "--fallback-output", fallback.toString(), "--fallback-on",
                "too-long,schema-failure");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(byCustomId(out)).containsOnlyKeys("text");
        assertThat(byCustomId(fallback)).containsOnlyKeys("json");
        assertThat(map(byCustomId(fallback).get("json").get("body"))).containsEntry("response_format",
                Map.of("type", "json_object"));
        assertThat(r.err()).contains("(schema-failure 1)");
    }

    @Test
    void linesBelowTheConfidenceThresholdGoToTheFallbackFile() throws Exception {
        // the answers' mean log-probabilities, from the engine itself (greedy: the model's softmax)
        Map<String, Double> means = new HashMap<>();
        try (dev.llamaj.engine.LlamaModel model = dev.llamaj.engine.LlamaModel.load(
                Path.of(BatchCommandTest.model()), 1);
             dev.llamaj.engine.Session session = model.newSession(256)) {
            for (String prompt : List.of("Once upon a time", "Tom and Lily")) {
                session.reset();
                means.put(prompt, session.generate(prompt, 8, dev.llamaj.engine.Sampler.greedy(), _ -> {})
                        .meanLogprob());
            }
        }
        assertThat(means.get("Once upon a time")).isNotEqualTo(means.get("Tom and Lily"));
        double between = (means.get("Once upon a time") + means.get("Tom and Lily")) / 2;
        String surer = means.get("Once upon a time") > between ? "once" : "tom";
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"id": "once", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}
                {"id": "tom", "prompt": "Tom and Lily", "max_tokens": 8, "temperature": 0}
                """);
        Path out = dir.resolve("out.jsonl");
        Path fallback = dir.resolve("fallback.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "--fallback-output", fallback.toString(), "--fallback-on",
                "low-confidence", "--min-mean-logprob", Double.toString(between));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(results(out)).extracting(l -> l.get("id")).containsExactly(surer);
        assertThat(results(fallback)).extracting(l -> l.get("custom_id"))
                .containsExactly(surer.equals("once") ? "tom" : "once");
        assertThat(r.err()).contains("(low-confidence 1)");
    }

    @Test
    void withoutTheRuleATooLongLineIsSkippedAsBefore() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": 1, \"prompt\": \""
                + "word ".repeat(200) + "\"}\n");
        Path fallback = dir.resolve("fallback.jsonl");
        LlamaCommandTest.Result r = batch(in, dir.resolve("out.jsonl"), "-c", "64", "--fallback-output",
                fallback.toString(), "--fallback-on", "schema-failure");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("fit in the context").contains("1 line failed");
        assertThat(fallback).isEmptyFile();
    }

    @Test
    void badRoutingOptions() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": 1, \"prompt\": \"x\"}\n");
        Path out = dir.resolve("out.jsonl");
        String fb = dir.resolve("fb.jsonl").toString();
        Map<List<String>, String> cases = Map.of(
                List.of("--fallback-on", "too-long"), "need --fallback-output",
                List.of("--fallback-output", fb, "--fallback-on", "queue-full"), "batch has no queue",
                List.of("--fallback-output", fb, "--fallback-on", "maybe"), "unknown rule 'maybe'",
                List.of("--fallback-output", fb, "--fallback-on", "low-confidence"), "needs --min-mean-logprob",
                List.of("--fallback-output", fb, "--min-mean-logprob", "-1"), "need --fallback-on low-confidence",
                List.of("--fallback-output", fb, "--fallback-on", "low-confidence", "--min-mean-logprob", "1"),
                "must be 0 or below",
                List.of("--fallback-output", out.toString()), "another file than --input and --output",
                List.of("--fallback-output", dir.toString()), "is a directory");
        Files.writeString(out, "");
        for (Map.Entry<List<String>, String> c : cases.entrySet()) {
            LlamaCommandTest.Result r = batch(in, out, c.getKey().toArray(String[]::new));
            assertThat(r.code()).as(c.getKey().toString()).isEqualTo(1);
            assertThat(r.err()).as(c.getKey().toString()).startsWith("llama: ").contains(c.getValue())
                    .doesNotContain("\tat ");
        }
    }
}
