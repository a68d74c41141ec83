package dev.llamaj.cli;

import static dev.llamaj.cli.LlamaCommandTest.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `llama eval` on stories260K, whose greedy continuation of "Once upon a time" is
/// ", there was a little girl named Lily. She loved to play outside in the park. ...".
class EvalCommandTest {
    private static final String GOLDEN = """
            {"id": "contains", "prompt": "Once upon a time", "expected": "Lily", "match": "contains", "max_tokens": 20}
            {"id": "exact", "prompt": "Once upon a time", "expected": ", there was a little girl named Lily", "match": "exact", "stop": "."}

            {"id": "regex", "prompt": "Once upon a time", "expected": "girl named [A-Z][a-z]+\\\\.", "match": "regex", "max_tokens": 20}
            {"id": "case", "prompt": "Once upon a time", "expected": "LILY", "match": "contains", "ignore_case": true, "max_tokens": 20}
            {"id": "any-of", "prompt": "Once upon a time", "expected": ["Tom", "Lily"], "match": "contains", "max_tokens": 20}
            {"id": 6, "prompt": "Once upon a time", "expected": "dragon", "match": "contains", "max_tokens": 12}
            {"id": "chat", "messages": [{"role": "user", "content": "Tell me a story."}], "expected": "\\\\S", "match": "regex", "max_tokens": 10}
            """;

    @TempDir
    Path dir;

    static String model() {
        return SharedData.require("models/stories260K.gguf").toString();
    }

    @Test
    @SuppressWarnings("unchecked")
    void printsATableAndWritesAReport() throws Exception {
        Path golden = Files.writeString(dir.resolve("golden.jsonl"), GOLDEN);
        Path report = dir.resolve("report.json");
        LlamaCommandTest.Result r = run("eval", "--model", model(), "--golden", golden.toString(), "--output",
                report.toString(), "--cost-per-hour", "1.50", "--chat-template", "plain", "-t", "2");
        assertThat(r.code()).as(r.err()).isZero();

        List<String> lines = r.out().lines().toList();
        assertThat(lines.getFirst()).startsWith("ID").contains("RESULT").contains("ANSWER (on failure)");
        assertThat(row(lines, "contains")).contains(" pass ");
        assertThat(row(lines, "exact")).contains(" pass ");
        assertThat(row(lines, "regex")).contains(" pass ");
        assertThat(row(lines, "case")).contains(" pass ");
        assertThat(row(lines, "any-of")).contains(" pass ");
        assertThat(row(lines, "chat")).contains(" pass ");
        assertThat(row(lines, "6")).contains(" FAIL ")
                .contains("\", there was a little girl named Lily. She\"")
                .contains("(expected contains \"dragon\")");
        assertThat(r.out()).contains("accuracy: 6/7 = 85.7%")
                .containsPattern("speed: prompt \\d+ tokens, [0-9.]+ tokens/s \\| generation \\d+ tokens, [0-9.]+ tokens/s")
                .containsPattern("cost at \\$1.50/hour: \\$[0-9.]+ per million generated tokens, \\$[0-9.]+ per million "
                        + "prompt tokens");

        Map<String, Object> json = Json.parseObject(Files.readString(report));
        assertThat(json.get("total")).isEqualTo(7L);
        assertThat(json.get("passed")).isEqualTo(6L);
        assertThat(((Number) json.get("accuracy")).doubleValue()).isCloseTo(6 / 7.0, within(1e-12));
        double genTps = ((Number) json.get("generation_tokens_per_second")).doubleValue();
        double promptTps = ((Number) json.get("prompt_tokens_per_second")).doubleValue();
        assertThat(genTps).isPositive();
        assertThat(((Number) json.get("cost_per_million_generated_tokens")).doubleValue())
                .isCloseTo(1.5 / 3600 / genTps * 1e6, within(1e-9));
        assertThat(((Number) json.get("cost_per_million_prompt_tokens")).doubleValue())
                .isCloseTo(1.5 / 3600 / promptTps * 1e6, within(1e-9));
        List<Map<String, Object>> items = (List<Map<String, Object>>) json.get("items");
        assertThat(items).hasSize(7);
        Map<String, Object> exact = items.get(1);
        assertThat(exact.get("id")).isEqualTo("exact");
        assertThat(exact.get("line")).isEqualTo(2L);
        assertThat(exact.get("answer")).isEqualTo(", there was a little girl named Lily");
        assertThat(exact.get("stop_reason")).isEqualTo("stop_string");
        Map<String, Object> failed = items.get(5);
        assertThat(failed.get("id")).isEqualTo(6L);
        assertThat(failed.get("line")).isEqualTo(7L); // the blank line counts
        assertThat(failed.get("pass")).isEqualTo(false);
        assertThat(failed.get("generated_tokens")).isEqualTo(12L);
        assertThat(failed.get("stop_reason")).isEqualTo("max_tokens");
        assertThat((String) failed.get("answer")).startsWith(", there was a little girl");

        // greedy: the same answers every time
        Path again = dir.resolve("again.json");
        assertThat(run("eval", "-m", model(), "-g", golden.toString(), "-o", again.toString(),
                "--chat-template", "plain").code()).isZero();
        List<Object> answers = ((List<Map<String, Object>>) Json.parseObject(Files.readString(again)).get("items"))
                .stream().map(m -> m.get("answer")).toList();
        assertThat(answers).isEqualTo(items.stream().map(m -> m.get("answer")).toList());
    }

    private static String row(List<String> lines, String id) {
        return lines.stream().filter(l -> l.startsWith(id + " ")).findFirst()
                .orElseThrow(() -> new AssertionError("no row for " + id + " in " + lines));
    }

    @Test
    void minAccuracyIsAQualityGate() throws Exception {
        Path golden = Files.writeString(dir.resolve("golden.jsonl"), """
                {"id": "a", "prompt": "Once upon a time", "expected": "Lily", "match": "contains", "max_tokens": 12}
                {"id": "b", "prompt": "Once upon a time", "expected": "dragon", "match": "contains", "max_tokens": 4}
                """);
        LlamaCommandTest.Result pass = run("eval", "-m", model(), "-g", golden.toString(), "--min-accuracy", "50");
        assertThat(pass.code()).as(pass.err()).isZero();
        LlamaCommandTest.Result fail = run("eval", "-m", model(), "-g", golden.toString(), "--min-accuracy", "75");
        assertThat(fail.code()).isEqualTo(1);
        assertThat(fail.out()).contains("accuracy: 1/2 = 50.0%");
        assertThat(fail.err()).endsWith("llama: accuracy 50.0% is below --min-accuracy 75.0%\n");
    }

    @Test
    void aBadLineStopsTheRunWithItsNumber() throws Exception {
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\"}\n{\"id\": 2, \"prompt\": \"a\"}\n",
                "line 2: no \"expected\" answer");
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\", \"match\": \"fuzzy\"}\n",
                "line 1: \"match\" must be \"exact\", \"contains\" or \"regex\", got \"fuzzy\"");
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"(\", \"match\": \"regex\"}\n",
                "line 1: bad regular expression \"(\": Unclosed group");
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\"}\n{\"id\": 1, \"prompt\": \"c\", \"expected\": \"d\"}\n",
                "line 2: duplicate id 1 (first on line 1)");
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\",}\n",
                "line 1: not valid JSON: expected a string key but found '}' at line 1, column 42 (offset 41)");
        assertBadGolden("{\"id\": 1, \"expected\": \"b\"}\n", "line 1: no \"prompt\" or \"messages\"");
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\", \"max_tokens\": -3}\n",
                "line 1: \"max_tokens\" must be 0 or more");
        assertBadGolden("{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\", \"ignore_case\": \"yes\"}\n",
                "line 1: \"ignore_case\" must be true or false, got a string");
        assertBadGolden("\n\n", ": no items");
    }

    private void assertBadGolden(String content, String message) throws Exception {
        Path golden = Files.writeString(dir.resolve("bad.jsonl"), content);
        LlamaCommandTest.Result r = run("eval", "-m", model(), "-g", golden.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).startsWith("llama: " + golden + (message.startsWith(":") ? "" : " ") + message);
        assertThat(r.err().lines().count()).isEqualTo(1);
    }

    @Test
    void messagesNeedAChatTemplate() throws Exception {
        Path golden = Files.writeString(dir.resolve("chat.jsonl"),
                "{\"id\": 1, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"expected\": \"x\"}\n");
        LlamaCommandTest.Result r = run("eval", "-m", model(), "-g", golden.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("the model has no chat template");
        LlamaCommandTest.Result bad = run("eval", "-m", model(), "-g", golden.toString(), "--chat-template", "nope");
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.err()).contains("--chat-template nope: no such file or built-in template");
    }

    @Test
    void optionErrors() throws Exception {
        Path golden = Files.writeString(dir.resolve("g.jsonl"), "{\"id\": 1, \"prompt\": \"a\", \"expected\": \"b\"}\n");
        assertThat(run("eval", "-m", model(), "-g", golden.toString(), "--cost-per-hour", "0").err())
                .isEqualTo("llama: --cost-per-hour must be a positive number, got 0.0\n");
        assertThat(run("eval", "-m", model(), "-g", golden.toString(), "--min-accuracy", "101").err())
                .isEqualTo("llama: --min-accuracy must be a percentage from 0 to 100, got 101.0\n");
        assertThat(run("eval", "-m", model()).code()).isEqualTo(2);
        Path absent = dir.resolve("absent.jsonl");
        assertThat(run("eval", "-m", model(), "-g", absent.toString()).err())
                .isEqualTo("llama: " + absent + ": no such file\n");
    }

    @Test
    void itemsThatFailToRunAreReported() throws Exception {
        Path golden = Files.writeString(dir.resolve("g.jsonl"), """
                {"id": "long", "prompt": "Once upon a time there was a little girl named Lily who loved flowers", "expected": "x"}
                {"id": "ok", "prompt": "Once", "expected": "", "match": "contains", "max_tokens": 2}
                """);
        LlamaCommandTest.Result r = run("eval", "-m", model(), "-g", golden.toString(), "-c", "8");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).containsPattern("long\\s+ERROR\\s+-\\s+-\\s+error: prompt is \\d+ tokens but only 8 fit");
        assertThat(r.out()).contains("accuracy: 1/2 = 50.0%");
    }
}
