package dev.llamaj.cli;

import static dev.llamaj.cli.LlamaCommandTest.run;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `llama batch` on stories260K: results, resuming, malformed lines, parallel sessions.
class BatchCommandTest {
    @TempDir
    Path dir;

    static String model() {
        return SharedData.require("models/stories260K.gguf").toString();
    }

    static List<Map<String, Object>> results(Path output) throws Exception {
        List<Map<String, Object>> list = new ArrayList<>();
        for (String line : Files.readAllLines(output)) {
            list.add(Json.parseObject(line));
        }
        return list;
    }

    static Map<Object, Map<String, Object>> byId(Path output) throws Exception {
        Map<Object, Map<String, Object>> map = new HashMap<>();
        for (Map<String, Object> r : results(output)) {
            assertThat(map.put(r.get("id"), r)).as("id %s twice", r.get("id")).isNull();
        }
        return map;
    }

    static LlamaCommandTest.Result batch(Path in, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("batch", "--model", model(), "--input", in.toString(),
                "--output", out.toString(), "--threads", "2"));
        args.addAll(List.of(more));
        return run(args.toArray(String[]::new));
    }

    @Test
    void writesOneResultPerLine() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"id": "a", "prompt": "Once upon a time", "max_tokens": 10}
                {"id": 2, "prompt": "Lily and Tom", "max_tokens": 5, "stop": "xyz"}
                {"id": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}
                {"id": "stop", "prompt": "Once upon a time", "stop": ["."], "temperature": 0}
                {"id": "sampled", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 1.0, "seed": 7}
                """);
        Path out = dir.resolve("out.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "--temperature", "0", "--chat-template", "plain");
        assertThat(r.code()).as(r.err()).isZero();
        Map<Object, Map<String, Object>> results = byId(out);
        assertThat(results).hasSize(5);

        Map<String, Object> a = results.get("a");
        assertThat(a.keySet()).containsExactly("id", "text", "stop_reason", "prompt_tokens", "generated_tokens");
        assertThat((String) a.get("text")).startsWith(", there was a little girl");
        assertThat(a.get("stop_reason")).isEqualTo("max_tokens");
        assertThat(a.get("generated_tokens")).isEqualTo(10L);
        assertThat(a.get("prompt_tokens")).isEqualTo(5L);
        assertThat(results.get(2L).get("generated_tokens")).isEqualTo(5L);
        assertThat(results.get("chat").get("generated_tokens")).isEqualTo(4L);
        assertThat(results.get("stop").get("text")).isEqualTo(", there was a little girl named Lily");
        assertThat(results.get("stop").get("stop_reason")).isEqualTo("stop_string");
        assertThat(results.get("sampled").get("seed")).isEqualTo(7L);
        assertThat(r.err()).contains("llama: batch 5/5 (100%)").contains("llama: 5 lines written to " + out);
        assertThat(Files.readString(out)).endsWith("}\n").doesNotContain("\n\n");

        // a line's own seed makes sampling reproducible
        Path out2 = dir.resolve("out2.jsonl");
        assertThat(batch(in, out2, "--temperature", "0", "--chat-template", "plain").code()).isZero();
        assertThat(byId(out2).get("sampled").get("text")).isEqualTo(results.get("sampled").get("text"));
    }

    @Test
    void randomSeedsAreRecordedSoALineCanBeReproduced() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": 1, \"prompt\": \"Once upon a time\", \"max_tokens\": 30}\n");
        Path out = dir.resolve("out.jsonl");
        assertThat(batch(in, out).code()).isZero();
        Map<String, Object> first = results(out).getFirst();
        long seed = (Long) first.get("seed");
        Path in2 = Files.writeString(dir.resolve("in2.jsonl"),
                "{\"id\": 1, \"prompt\": \"Once upon a time\", \"max_tokens\": 30, \"seed\": " + seed + "}\n");
        Path out2 = dir.resolve("out2.jsonl");
        assertThat(batch(in2, out2).code()).isZero();
        assertThat(results(out2).getFirst().get("text")).isEqualTo(first.get("text"));
        Path out3 = dir.resolve("out3.jsonl");
        assertThat(batch(in, out3, "--seed", String.valueOf(seed)).code()).isZero();
        assertThat(results(out3).getFirst().get("text")).isEqualTo(first.get("text"));
    }

    @Test
    void resumesWhereItStopped() throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, lines(0, 3));
        Path out = dir.resolve("out.jsonl");
        assertThat(batch(in, out, "--temperature", "0").code()).isZero();
        assertThat(results(out)).hasSize(3);
        String before = Files.readString(out);

        Files.writeString(in, lines(0, 5)); // two more lines
        LlamaCommandTest.Result r = batch(in, out, "--temperature", "0");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("resuming: 3 lines already in " + out + ", 2 to do");
        assertThat(Files.readString(out)).startsWith(before);
        assertThat(byId(out).keySet()).containsExactlyInAnyOrder("line-0", "line-1", "line-2", "line-3", "line-4");

        LlamaCommandTest.Result again = batch(in, out, "--temperature", "0");
        assertThat(again.code()).isZero();
        assertThat(again.err()).contains("nothing to do: 5 of 5 valid lines are already in " + out);
        assertThat(results(out)).hasSize(5);
    }

    @Test
    void anIncompleteLastLineFromACrashIsRedone() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), lines(0, 3));
        Path out = dir.resolve("out.jsonl");
        Files.writeString(out, "{\"id\":\"line-0\",\"text\":\"done\",\"stop_reason\":\"max_tokens\","
                + "\"prompt_tokens\":4,\"generated_tokens\":6}\n{\"id\":\"line-1\",\"text\":\"cut sh");
        LlamaCommandTest.Result r = batch(in, out, "--temperature", "0");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("removing its incomplete last line (line 2, cut short by an interrupted run)");
        Map<Object, Map<String, Object>> results = byId(out);
        assertThat(results.keySet()).containsExactlyInAnyOrder("line-0", "line-1", "line-2");
        assertThat(results.get("line-0").get("text")).isEqualTo("done");

        // a complete last line without its newline is kept, and the next result starts on a new line
        Path out2 = Files.writeString(dir.resolve("out2.jsonl"), "{\"id\":\"line-0\",\"text\":\"kept\"}");
        assertThat(batch(in, out2, "--temperature", "0").code()).isZero();
        assertThat(byId(out2).keySet()).containsExactlyInAnyOrder("line-0", "line-1", "line-2");
        assertThat(byId(out2).get("line-0").get("text")).isEqualTo("kept");
    }

    @Test
    void anOutputThatIsNotOursIsRefused() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), lines(0, 2));
        Path out = Files.writeString(dir.resolve("out.jsonl"), "hello\n{\"id\": 1}\n");
        LlamaCommandTest.Result r = batch(in, out);
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).startsWith("llama: " + out + " line 1 is not a result line (not valid JSON: ");
        assertThat(Files.readString(out)).isEqualTo("hello\n{\"id\": 1}\n");
        assertThat(batch(in, in).err()).isEqualTo("llama: --input and --output are the same file\n");
    }

    @Test
    void malformedLinesAreReportedAndSkipped() throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.write(in, List.of(
                "{\"id\": \"ok-1\", \"prompt\": \"Once\", \"max_tokens\": 3}",
                "{\"id\": \"broken\", \"prompt\": ",
                "",
                "{\"prompt\": \"no id\"}",
                "{\"id\": \"ok-1\", \"prompt\": \"duplicate\"}",
                "{\"id\": \"bad-setting\", \"prompt\": \"x\", \"temperature\": \"hot\"}",
                "{\"id\": \"ok-2\", \"prompt\": \"Lily\", \"max_tokens\": 3}"), StandardCharsets.UTF_8);
        Files.write(in, new byte[] {'{', (byte) 0xff, '}', '\n'}, java.nio.file.StandardOpenOption.APPEND);
        Path out = dir.resolve("out.jsonl");
        LlamaCommandTest.Result r = batch(in, out);
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("llama: " + in + " line 2: not valid JSON: expected a JSON value but found end of "
                        + "input at line 1, column 28 (offset 27) (skipped)")
                .contains("llama: " + in + " line 4: no \"id\" (skipped)")
                .contains("llama: " + in + " line 5: duplicate id \"ok-1\" (first on line 1) (skipped)")
                .contains("llama: " + in + " line 6: \"temperature\" must be a number, got a string (skipped)")
                .contains("llama: " + in + " line 8: not valid UTF-8 (skipped)")
                .doesNotContain("line 3");
        assertThat(r.err().lines().toList().getLast())
                .isEqualTo("llama: 5 malformed input lines were skipped (see the messages above)");
        assertThat(byId(out).keySet()).containsExactlyInAnyOrder("ok-1", "ok-2");

        // --strict: the first bad line stops the run before anything is generated
        Path strictOut = dir.resolve("strict.jsonl");
        LlamaCommandTest.Result strict = batch(in, strictOut, "--strict");
        assertThat(strict.code()).isEqualTo(1);
        assertThat(strict.err()).startsWith("llama: " + in + " line 2: not valid JSON").doesNotContain("line 4");
        assertThat(strict.err().lines().count()).isEqualTo(1);
        assertThat(strictOut).doesNotExist();
    }

    @Test
    void linesThatFailToGenerateAreReported() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"id": "long", "prompt": "Once upon a time there was a little girl named Lily who loved"}
                {"id": "short", "prompt": "Once", "max_tokens": 2}
                {"id": "long too", "prompt": "Once upon a time there was a little girl named Lily who loved"}
                """);
        Path out = dir.resolve("out.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "-c", "8");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).containsPattern("line 1 \\(id \"long\"\\): prompt is \\d+ tokens but only 8 fit in the "
                        + "context \\(raise --context\\) \\(skipped\\)")
                .contains("line 3 (id \"long too\"): prompt is")
                .contains("llama: 2 lines failed (see the messages above)");
        assertThat(byId(out).keySet()).containsExactly("short");

        // lines with messages and no chat template: the run stops before it starts
        Path chat = Files.writeString(dir.resolve("chat.jsonl"), """
                {"id": "short", "prompt": "Once", "max_tokens": 2}
                {"id": "chat", "messages": [{"role": "user", "content": "hi"}]}
                """);
        Path chatOut = dir.resolve("chat-out.jsonl");
        LlamaCommandTest.Result noTemplate = batch(chat, chatOut);
        assertThat(noTemplate.code()).isEqualTo(1);
        assertThat(noTemplate.err()).isEqualTo("llama: " + model() + ": the model has no chat template (give one with "
                + "--chat-template FILE)\n");
        assertThat(chatOut).doesNotExist();

        LlamaCommandTest.Result strict = batch(in, dir.resolve("strict.jsonl"), "-c", "8", "--strict");
        assertThat(strict.code()).isEqualTo(1);
        assertThat(strict.err()).contains("llama: " + in + " line 1 (id \"long\"): prompt is");
    }

    /// A prompt far longer than the context is refused by its length in characters, before it is tokenized (a
    /// 50 MB line took 22 s and 3.7 GB to tokenize only to be refused).
    @Test
    void aPromptTooLongForTheContextIsRefusedBeforeTokenizing() throws Exception {
        String huge = "Once upon a time. ".repeat(200_000); // 3.6 million characters
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": \"huge\", \"prompt\": \"" + huge + "\"}\n"
                + "{\"id\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"" + huge + "\"}]}\n"
                + "{\"id\": \"short\", \"prompt\": \"Once\", \"max_tokens\": 2}\n");
        Path out = dir.resolve("out.jsonl");
        LlamaCommandTest.Result r = batch(in, out, "-c", "64", "--chat-template", "plain");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).containsPattern("line 1 \\(id \"huge\"\\): prompt is " + huge.length()
                        + " characters but at most \\d+ can fit in the context of 64 tokens \\(raise --context\\)"
                        + " \\(skipped\\)")
                .containsPattern("line 2 \\(id \"chat\"\\): prompt is " + huge.length() + " characters");
        assertThat(byId(out).keySet()).containsExactly("short");
    }

    @Test
    void parallelSessionsGiveTheSameResults() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), lines(0, 8));
        Path serial = dir.resolve("serial.jsonl");
        Path parallel = dir.resolve("parallel.jsonl");
        assertThat(batch(in, serial, "--temperature", "0").code()).isZero();
        // sessions of their own: the same kernels as one session
        LlamaCommandTest.Result r = batch(in, parallel, "--temperature", "0", "--parallel", "3", "--no-batching",
                "--verbose");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("3 session(s) of 1 threads");
        assertSameResults(serial, parallel);
        // batched steps: a line's result does not depend on which lines share its steps
        Path batched3 = dir.resolve("batched3.jsonl");
        Path batched2 = dir.resolve("batched2.jsonl");
        r = batch(in, batched3, "--temperature", "0", "--parallel", "3", "--verbose");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("3 session(s) batched together on 2 threads");
        assertThat(batch(in, batched2, "--temperature", "0", "--parallel", "2").code()).isZero();
        assertSameResults(batched3, batched2);
    }

    @Test
    void progress() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), lines(0, 3));
        LlamaCommandTest.Result bar = batch(in, dir.resolve("a.jsonl"), "--progress", "bar", "--temperature", "0");
        assertThat(bar.code()).isZero();
        assertThat(bar.err()).contains("\rbatch [").contains("3/3 (100%)").contains("lines/s");
        LlamaCommandTest.Result lines = batch(in, dir.resolve("b.jsonl"), "--progress", "lines",
                "--progress-interval", "0", "--temperature", "0");
        assertThat(lines.err()).contains("llama: batch 1/3 (33%)").contains("llama: batch 3/3 (100%)")
                .contains("ETA ").doesNotContain("\r");
        LlamaCommandTest.Result off = batch(in, dir.resolve("c.jsonl"), "--progress", "off", "--temperature", "0");
        assertThat(off.err()).doesNotContain("llama: batch ").contains("3 lines written");
    }

    @Test
    void optionErrors() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), lines(0, 1));
        Path out = dir.resolve("out.jsonl");
        assertThat(batch(in, out, "--parallel", "0").err()).isEqualTo("llama: --parallel must be 1 or more, got 0\n");
        assertThat(batch(in, out, "--max-tokens", "-2").err())
                .isEqualTo("llama: --max-tokens must be -1 or more, got -2\n");
        assertThat(run("batch", "--model", model(), "--input", in.toString()).code()).isEqualTo(2);
        Path absent = dir.resolve("absent.jsonl");
        assertThat(batch(absent, out).err()).isEqualTo("llama: " + absent + ": no such file\n");
        Path empty = Files.writeString(dir.resolve("empty.jsonl"), "\n");
        assertThat(batch(empty, out).err()).isEqualTo("llama: " + empty + ": no requests (one JSON object per line)\n");
        assertThat(out).doesNotExist();
    }

    /// Rows that share a long instruction: with the prefix cache it is computed for the first row only (the
    /// counters say so), and the results are those of a run without the cache.
    @Test
    void rowsSharingALongInstructionComputeItOnce() throws Exception {
        String instruction = "Read the story and tell what happens next. ".repeat(3)
                + "Once upon a time there was a little girl named Lily who loved to play in the park with her dog. "
                .repeat(6);
        int rows = 12;
        StringBuilder sb = new StringBuilder();
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
            String prompt = instruction + "Story " + i + ": Tom had a red ball number " + i + ".";
            prompts.add(prompt);
            sb.append("{\"id\": ").append(i).append(", \"prompt\": ").append(Json.write(prompt))
                    .append(", \"max_tokens\": 3}\n");
        }
        Path in = Files.writeString(dir.resolve("in.jsonl"), sb.toString());
        Path cached = dir.resolve("cached.jsonl");
        LlamaCommandTest.Result r = batch(in, cached, "--temperature", "0", "-c", "400");
        assertThat(r.code()).as(r.err()).isZero();
        Path plain = dir.resolve("plain.jsonl");
        LlamaCommandTest.Result off = batch(in, plain, "--temperature", "0", "-c", "400", "--cache-budget", "0");
        assertThat(off.code()).as(off.err()).isZero();
        assertThat(byId(cached)).isEqualTo(byId(plain));

        // the prompts' common tokens, and what the cache can lend of them: whole blocks of 64
        int[][] tokens;
        try (dev.llamaj.engine.LlamaModel m = dev.llamaj.engine.LlamaModel.load(Path.of(model()));
             dev.llamaj.engine.Session s = m.newSession(512)) {
            tokens = prompts.stream().map(s::encode).toArray(int[][]::new);
        }
        int common = tokens[0].length;
        long submitted = 0;
        for (int[] t : tokens) {
            submitted += t.length;
            int k = 0;
            while (k < common && t[k] == tokens[0][k]) {
                k++;
            }
            common = k;
        }
        int lent = common / 64 * 64;
        assertThat(lent).as("the instruction spans several blocks").isGreaterThanOrEqualTo(3 * 64);
        java.util.regex.Matcher m = java.util.regex.Pattern
                .compile("prompt tokens: (\\d+) submitted, (\\d+) computed, (\\d+) \\([\\d.]+%\\) copied from the "
                        + "prefix cache")
                .matcher(r.err());
        assertThat(m.find()).as(r.err()).isTrue();
        assertThat(Long.parseLong(m.group(1))).isEqualTo(submitted);
        long computed = Long.parseLong(m.group(2));
        // the first row computes everything; every other row at most its own tail and one block more
        assertThat(computed).isLessThanOrEqualTo(tokens[0].length + (submitted - tokens[0].length)
                - (long) (rows - 1) * (lent - 64));
        assertThat(Long.parseLong(m.group(3))).isEqualTo(submitted - computed);
        assertThat(off.err()).contains("prompt tokens: " + submitted + " submitted, " + submitted
                + " computed (no prefix cache)");

        // parallel sessions batched in one executor share the cache too, with the results they give without it
        Path parallelCached = dir.resolve("parallel-cached.jsonl");
        LlamaCommandTest.Result p = batch(in, parallelCached, "--temperature", "0", "-c", "400", "--parallel", "2");
        assertThat(p.code()).as(p.err()).isZero();
        Path parallelPlain = dir.resolve("parallel-plain.jsonl");
        assertThat(batch(in, parallelPlain, "--temperature", "0", "-c", "400", "--parallel", "2",
                "--cache-budget", "0").code()).isZero();
        assertThat(byId(parallelCached)).isEqualTo(byId(parallelPlain));
        java.util.regex.Matcher pm = java.util.regex.Pattern.compile("prompt tokens: \\d+ submitted, (\\d+) computed")
                .matcher(p.err());
        assertThat(pm.find()).as(p.err()).isTrue();
        // the first two lines start together and both compute the instruction; the others copy it
        assertThat(Long.parseLong(pm.group(1))).isLessThanOrEqualTo(computed + tokens[1].length);
    }

    @Test
    void cacheBudgetErrors() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), lines(0, 1));
        Path out = dir.resolve("out.jsonl");
        for (String bad : new String[] {"abc", "-5", "12X", "", "1.5G", "99999999999999G"}) {
            LlamaCommandTest.Result r = batch(in, out, "--cache-budget", bad);
            assertThat(r.code()).as(bad).isEqualTo(1);
            assertThat(r.err()).as(bad).isEqualTo("llama: --cache-budget must be a size such as 512M, 2G or 0 (off), "
                    + "got '" + bad + "'\n");
        }
        LlamaCommandTest.Result huge = batch(in, out, "--cache-budget", "900G");
        assertThat(huge.err()).startsWith("llama: --cache-budget 900G is more than the ").endsWith("-Xmx)\n");
        assertThat(out).doesNotExist();
        assertThat(CacheBudget.parse("x", "512M")).isEqualTo(512L << 20);
        assertThat(CacheBudget.parse("x", "2GiB")).isEqualTo(2L << 30);
        assertThat(CacheBudget.parse("x", "64kb")).isEqualTo(64L << 10);
        assertThat(CacheBudget.parse("x", "1000")).isEqualTo(1000L);
    }

    private static String lines(int from, int to) {
        StringBuilder sb = new StringBuilder();
        String[] prompts = {"Once upon a time", "Lily", "The dog", "Tom was", "One day"};
        IntStream.range(from, to).forEach(i -> sb.append("{\"id\": \"line-").append(i).append("\", \"prompt\": \"")
                .append(prompts[i % prompts.length]).append("\", \"max_tokens\": ").append(6 + i).append("}\n"));
        return sb.toString();
    }

    private static void assertSameResults(Path expected, Path actual) throws Exception {
        Map<Object, Map<String, Object>> a = byId(expected);
        Map<Object, Map<String, Object>> b = byId(actual);
        assertThat(b).hasSize(a.size());
        for (Object id : a.keySet()) {
            Map<String, Object> x = new java.util.HashMap<>(a.get(id));
            Map<String, Object> y = new java.util.HashMap<>(b.get(id));
            assertThat(y).as("id %s", id).isEqualTo(x);
        }
    }
}
