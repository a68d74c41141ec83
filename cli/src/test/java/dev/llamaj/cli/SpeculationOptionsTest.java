package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.Speculation;
import dev.llamaj.engine.synth.SyntheticModel;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import dev.llamaj.gguf.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `--draft-model`, `--lookup` and their settings on the built-in model (which needs no shared data): greedy output
/// is the plain output, the counters are reported, and every bad value is one line.
class SpeculationOptionsTest {
    @TempDir
    Path dir;

    private static final String PROMPT = "Lily and Tom went to the park. Lily said";

    private static LlamaCommandTest.Result run(String... args) {
        return LlamaCommandTest.run(args);
    }

    private static String[] greedy(String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("--model", "builtin:stories260K", "--prompt", PROMPT,
                "-n", "80", "--temperature", "0", "--threads", "1"));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    @Test
    void greedyOutputIsThePlainOutput() {
        LlamaCommandTest.Result plain = run(greedy());
        assertThat(plain.code()).as(plain.err()).isZero();
        for (String[] options : List.of(new String[] {"--lookup"}, new String[] {"--lookup-ngram", "1"},
                new String[] {"--lookup", "--draft-max", "2", "--draft-exact"},
                new String[] {"--draft-model", "builtin:stories260K", "--draft-max", "5"})) {
            LlamaCommandTest.Result r = run(greedy(options));
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).as(String.join(" ", options)).isEqualTo(plain.out());
            assertThat(r.err()).containsPattern("llama: speculation: [\\d,]+ of [\\d,]+ proposed tokens accepted "
                    + "\\([\\d.]+%\\), [\\d.]+ tokens per pass");
        }
        // stories260K drafting for itself: every proposal is accepted
        assertThat(run(greedy("--draft-model", "builtin:stories260K")).err()).contains("accepted (100.0%)");
    }

    @Test
    void chatAnswersAreThePlainAnswers() throws Exception {
        String turns = "Tell me about Lily.\nAnd Tom?\n/exit\n";
        try (LlamaModel model = LlamaModel.load(BuiltinModel.resolve("builtin:stories260K"), 1);
             LlamaModel draftModel = LlamaModel.load(BuiltinModel.resolve("builtin:stories260K"), 1);
             Session draft = draftModel.newSession(512)) {
            List<String> transcripts = new java.util.ArrayList<>();
            for (Speculation speculation : new Speculation[] {null, Speculation.promptLookup(3, 8),
                    Speculation.draftModel(draft, 4)}) {
                try (Session session = model.newSession(512)) {
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    new ChatRepl(session, ChatFormat.of(model, ChatFormat.builtin("chatml").orElseThrow()),
                            Sampler.greedy(), 40, List.of(), null, new PrintStream(out, true, StandardCharsets.UTF_8),
                            new PrintStream(OutputStream.nullOutputStream())).speculate(speculation)
                            .run(new BufferedReader(new StringReader(turns)));
                    transcripts.add(out.toString(StandardCharsets.UTF_8));
                    if (speculation != null) {
                        assertThat(speculation.drafted()).isPositive();
                    }
                }
            }
            assertThat(transcripts.getFirst()).isNotBlank();
            assertThat(transcripts).containsOnly(transcripts.getFirst());
        }
    }

    @Test
    void jsonOutputCarriesTheCounters() {
        LlamaCommandTest.Result r = run(greedy("--lookup", "--output-format", "json"));
        assertThat(r.code()).as(r.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(r.out().strip());
        Map<?, ?> s = (Map<?, ?>) json.get("speculation");
        assertThat((Double) s.get("proposed")).isPositive();
        assertThat((Double) s.get("passes")).isPositive();
        assertThat((Double) s.get("acceptance_rate"))
                .isEqualTo((Double) s.get("accepted") / (Double) s.get("proposed"));
    }

    @Test
    void badValuesAreOneLine() throws Exception {
        String missing = dir.resolve("missing.gguf").toString();
        Path other = dir.resolve("other-vocabulary.gguf");
        SyntheticModel.of(SyntheticModel.Shape.TINY, SyntheticModel.Type.F32).withSeed(3).write(other);
        Path notGguf = Files.writeString(dir.resolve("notes.txt"), "not a model\n");
        Object[][] cases = {
            {new String[] {"--lookup-ngram", "0"}, "--lookup-ngram must be 1 or more, got 0"},
            {new String[] {"--lookup", "--draft-max", "0"}, "--draft-max must be 1 or more, got 0"},
            {new String[] {"--lookup", "--draft-max", "-3"}, "--draft-max must be 1 or more, got -3"},
            {new String[] {"--draft-max", "4"}, "--draft-max needs --draft-model FILE or --lookup"},
            {new String[] {"--draft-exact"}, "--draft-exact needs --draft-model FILE or --lookup"},
            {new String[] {"--lookup", "--draft-model", missing}, "give either --draft-model or --lookup, not both"},
            {new String[] {"--draft-model", missing}, "--draft-model " + missing + ": no such file"},
            {new String[] {"--draft-model", dir.toString()}, "--draft-model " + dir + ": is a directory"},
            {new String[] {"--draft-model", notGguf.toString()}, "--draft-model: " + notGguf + ": not a GGUF file"},
            {new String[] {"--draft-model", other.toString()}, "--draft-model " + other + ": the draft model's token "},
        };
        for (Object[] c : cases) {
            String[] options = (String[]) c[0];
            LlamaCommandTest.Result r = run(greedy(options));
            assertThat(r.code()).as(String.join(" ", options) + ": " + r.err()).isEqualTo(1);
            assertThat(r.err().lines().filter(l -> !l.startsWith("WARNING")).toList())
                    .as(String.join(" ", options)).hasSize(1).first().asString()
                    .startsWith("llama: " + c[1]);
        }
        // serve refuses them before it listens
        LlamaCommandTest.Result serve = run("serve", "--port", "0", "--draft-model", missing);
        assertThat(serve.code()).isEqualTo(1);
        assertThat(serve.err()).contains("llama: --draft-model " + missing + ": no such file")
                .doesNotContain("serving");
        assertThat(run("serve", "--port", "0", "--lookup", "--draft-max", "0").err())
                .contains("llama: --draft-max must be 1 or more, got 0");
        LlamaCommandTest.Result r = run(greedy("--draft-max", "x", "--lookup"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--draft-max").doesNotContain("\tat ");
    }

    @Test
    void benchComparesGenerationWithAndWithoutSpeculation() {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-p", "0", "-n", "24", "-r", "2", "-t", "1",
                "--bandwidth-mib", "0", "--no-warmup", "--lookup", "--spec-prompt", PROMPT);
        assertThat(r.code()).as(r.err()).isZero();
        List<String> rows = r.out().lines().filter(l -> l.startsWith("| llama")).toList();
        assertThat(rows).hasSize(3);
        assertThat(rows.get(1)).containsPattern("\\|\\s+sg24 \\|");
        assertThat(rows.get(2)).containsPattern("\\|\\s+sg24 \\+lookup \\|");
        assertThat(r.out()).containsPattern("speculation sg24 \\+lookup \\(prompt lookup \\(n-grams up to 3\\), up "
                + "to 8 tokens a pass; greedy, after a \\d+-token prompt\\): [\\d,]+ of [\\d,]+ proposed tokens "
                + "accepted \\([\\d.]+%\\), [\\d.]+ tokens per verification pass; [\\d.]+ -> [\\d.]+ t/s, speed-up "
                + "[\\d.]+x; output identical to plain generation");

        SynthCommandTest.Result j = SynthCommandTest.run("bench", "-p", "0", "-n", "16", "-r", "1", "-t", "1",
                "--bandwidth-mib", "0", "--no-warmup", "--draft-model", "builtin:stories260K", "--draft-max", "3",
                "-o", "json");
        assertThat(j.code()).as(j.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(j.out().strip());
        Map<?, ?> s = (Map<?, ?>) json.get("speculation");
        assertThat(s.get("n_gen")).isEqualTo(16.0);
        assertThat(s.get("acceptance_rate")).isEqualTo(1.0);
        assertThat(s.get("identical_output")).isEqualTo(true);
        assertThat((Double) s.get("speedup")).isPositive();
        // 15 tokens after the first, at most 4 a pass
        assertThat((Double) s.get("passes")).isBetween(4.0, 5.0);

        // in a batch executor the speculative output is the executor's plain output exactly
        SynthCommandTest.Result e = SynthCommandTest.run("bench", "-p", "0", "-n", "40", "-r", "1", "-t", "1",
                "--bandwidth-mib", "0", "--no-warmup", "--lookup", "--spec-executor", "--spec-prompt", PROMPT);
        assertThat(e.code()).as(e.err()).isZero();
        assertThat(e.out()).contains("up to 8 tokens a pass, in a batch executor; greedy",
                "output identical to plain generation");

        assertThat(SynthCommandTest.run("bench", "--spec-executor").err())
                .contains("--spec-executor needs --draft-model FILE or --lookup");
        assertThat(SynthCommandTest.run("bench", "-n", "0", "-p", "8", "--lookup").err())
                .contains("the speculation test generates -n tokens: -n must be 1 or more");
        assertThat(SynthCommandTest.run("bench", "--spec-prompt-file", "x.txt").err())
                .contains("--spec-prompt-file needs --draft-model FILE or --lookup");
    }
}
