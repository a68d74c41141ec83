package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.synth.SyntheticModel;
import dev.llamaj.gguf.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCommandTest {
    @TempDir
    static Path dir;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = dir.resolve("tiny-q4_0.gguf");
        SyntheticModel.of(SyntheticModel.Shape.TINY, SyntheticModel.Type.Q4_0).write(model);
    }

    @Test
    void printsALlamaBenchTable() {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "8", "-n", "4", "-r",
                "1", "-t", "2", "--bandwidth-mib", "16");
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(cells(lines.get(0))).containsExactly("model", "size", "params", "type", "threads", "test", "t/s");
        assertThat(lines.get(1)).matches("\\|[-:| ]+\\|");
        List<String> pp = cells(lines.get(2));
        assertThat(pp).startsWith("llama 1M", "797.13 KiB", "1.44 M", "Q4_0", "2", "pp8");
        assertThat(pp.get(6)).matches("\\d+\\.\\d\\d ± 0\\.00");
        assertThat(cells(lines.get(3)).get(5)).isEqualTo("tg4");
        assertThat(r.out()).contains("memory bandwidth (read): 1 thread ", "2 threads ", "16 MiB x 10")
                .containsPattern("warm-up \\(.*\\): pp8 \\d+ runs?; tg4 \\d+ runs?\n")
                .contains("generation tg4: ", "read per token", "of the 2-thread bandwidth (roofline ")
                .containsPattern("resident memory during generation: [\\d.]+ [KMG]iB = weights ");
    }

    @Test
    void printsOneJsonObject() {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "8", "-n", "4", "-r",
                "2", "-t", "1", "--bandwidth-mib", "8", "--output-format", "json", "--no-warmup");
        assertThat(r.code()).as(r.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(r.out().strip());
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) json.get("model");
        assertThat(m).containsEntry("type", "Q4_0").containsEntry("desc", "llama 1M")
                .containsEntry("n_params", 1_443_104.0).containsEntry("filename", model.toString());
        assertThat(json).containsEntry("n_threads", 1.0).containsEntry("repetitions", 2.0)
                .containsEntry("warmup", false);
        List<?> bandwidth = (List<?>) json.get("bandwidth");
        assertThat(bandwidth).hasSize(1);
        List<?> tests = (List<?>) json.get("tests");
        assertThat(tests).hasSize(2);
        Map<?, ?> pp = (Map<?, ?>) tests.get(0);
        Map<?, ?> tg = (Map<?, ?>) tests.get(1);
        assertThat(pp.get("name")).isEqualTo("pp8");
        assertThat(pp.get("warmup_runs")).isEqualTo(0.0);
        assertThat((List<?>) pp.get("samples_ns")).hasSize(2);
        assertThat((Double) pp.get("avg_ts")).isPositive();
        assertThat(tg.get("name")).isEqualTo("tg4");
        assertThat((Double) tg.get("bytes_per_token")).isGreaterThan((Double) tg.get("weight_bytes_per_token"));
        assertThat((Double) tg.get("roofline_fraction")).isPositive();
        Map<?, ?> memory = (Map<?, ?>) json.get("memory");
        assertThat((Double) memory.get("rss_bytes")).isPositive();
        assertThat((Double) memory.get("repack_ns")).isPositive(); // the Q4_0 matrices are repacked at load
        assertThat(memory.get("repacked_extra_bytes")).isInstanceOf(Double.class);
        // 2 layers of 128 half-precision keys and values per position; keys padded to a 64-position block
        assertThat((Double) memory.get("kv_cache_bytes")).isEqualTo((64.0 + 8) * 2 * 128 * 2);
    }

    @Test
    void runsTestsAtADepth() {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "3", "-n", "2", "-d",
                "5", "-r", "1", "--bandwidth-mib", "0", "--no-warmup", "-o", "json");
        assertThat(r.code()).as(r.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(r.out().strip());
        List<?> tests = (List<?>) json.get("tests");
        assertThat(((Map<?, ?>) tests.get(0)).get("name")).isEqualTo("pp3 @ d5");
        assertThat(((Map<?, ?>) tests.get(1)).get("name")).isEqualTo("tg2 @ d5");
        assertThat(((Map<?, ?>) tests.get(1)).get("n_depth")).isEqualTo(5.0);
        assertThat(SynthCommandTest.run("bench", "-m", model.toString(), "-d", "-1").err())
                .contains("--n-depth must be 0 or more");
    }

    @Test
    void skipsTestsAndBandwidthOnRequest() {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "0", "-n", "2", "-r",
                "1", "--bandwidth-mib", "0", "--no-warmup");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).doesNotContainPattern("\\| +pp").containsPattern("\\| +tg2 \\|")
                .contains("memory bandwidth: not measured");
    }

    @Test
    void badValuesAreOneLineErrors() throws Exception {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-m", model.toString(), "-r", "0");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).isEqualTo("llama: --repetitions must be 1 or more, got 0");
        r = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "0", "-n", "0");
        assertThat(r.err().strip()).isEqualTo("llama: nothing to measure: -p and -n are both 0");
        r = SynthCommandTest.run("bench", "-m", model.toString(), "-t", "0");
        assertThat(r.err().strip()).isEqualTo("llama: --threads must be 1 or more, got 0");
        Path missing = dir.resolve("missing.gguf");
        r = SynthCommandTest.run("bench", "-m", missing.toString());
        assertThat(r.err().strip()).isEqualTo("llama: " + missing + ": no such file");
        r = SynthCommandTest.run("bench", "-m", "builtin:nothing", "-p", "8");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).isEqualTo(
                "llama: --model builtin:nothing: no such built-in model (built-in: builtin:stories260K)");
        assertThat(Files.exists(model)).isTrue();
    }

    /// `--parallel`: the sweep's rows in the table and the JSON, an aggregate per level, and its bad values.
    @Test
    void concurrencySweep() {
        SynthCommandTest.Result r = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "4", "-n", "6", "-r",
                "1", "-t", "2", "--bandwidth-mib", "0", "--parallel", "1,3", "-o", "json");
        assertThat(r.code()).as(r.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(r.out().strip());
        List<?> tests = (List<?>) json.get("tests");
        assertThat(tests.stream().map(t -> (String) ((Map<?, ?>) t).get("name")).toList())
                .containsExactly("tg6", "pp4@1", "tg6@1", "pp4@3", "tg6@3");
        Map<?, ?> tg3 = (Map<?, ?>) tests.get(4);
        assertThat(tg3.get("n_gen")).isEqualTo(18.0);
        List<?> levels = (List<?>) json.get("parallel");
        assertThat(levels).hasSize(2);
        Map<?, ?> three = (Map<?, ?>) levels.get(1);
        assertThat(three.get("sequences")).isEqualTo(3.0);
        assertThat(three.get("tg_ts")).isEqualTo(tg3.get("avg_ts"));
        assertThat((Double) three.get("tg_per_stream_ts")).isPositive();
        assertThat((Double) three.get("tokens_per_step")).isGreaterThan(1.0);

        SynthCommandTest.Result text = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "0", "-n", "4",
                "-r", "1", "--bandwidth-mib", "0", "--parallel", "2", "--no-warmup");
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).contains("concurrency sweep (continuous batching; per sequence 0 prompt and 4 "
                + "generated tokens").containsPattern("\\|\\s+2 \\|\\s+NaN \\|");

        SynthCommandTest.Result interfered = SynthCommandTest.run("bench", "-m", model.toString(), "-p", "2", "-n",
                "5", "-r", "1", "--bandwidth-mib", "0", "--parallel", "2", "--long-prompt", "40", "--no-warmup", "-o",
                "json");
        assertThat(interfered.code()).as(interfered.err()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> level = (Map<String, Object>) ((List<?>) ((Map<?, ?>) Json.parse(interfered.out().strip()))
                .get("parallel")).getFirst();
        assertThat(level).containsEntry("long_prompt", 40.0).containsKeys("long_prompt_slowdown",
                "token_gap_with_long_prompt_ms", "token_gap_ms");
        assertThat((Double) level.get("long_prompt_s")).isPositive();

        SynthCommandTest.Result bad = SynthCommandTest.run("bench", "-m", model.toString(), "--parallel", "0");
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.err().strip()).isEqualTo("llama: --parallel takes sequence counts from 1 to 256, got 0");
        bad = SynthCommandTest.run("bench", "-m", model.toString(), "--parallel", "2", "-n", "0");
        assertThat(bad.err().strip()).isEqualTo("llama: --parallel measures generation: -n must be 1 or more");
        bad = SynthCommandTest.run("bench", "-m", model.toString(), "--long-prompt", "100");
        assertThat(bad.err().strip()).isEqualTo("llama: --long-prompt needs --parallel");
    }

    private static List<String> cells(String row) {
        String[] parts = row.split("\\|");
        return Arrays.stream(parts, 1, parts.length).map(String::strip).toList();
    }
}
