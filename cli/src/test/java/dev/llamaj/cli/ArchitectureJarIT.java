package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/// Every family's tiny model in `../shared/archs` through the built `llama.jar`, in a process of its own, as a user
/// would run it: `java -jar llama.jar --model F --prompt P -n 16 --temperature 0 --output-format json`. The prompt must tokenize to llama.cpp's ids and the
/// generated ids must be llama.cpp's greedy ones, up to the end-of-generation token where the CLI stops (the
/// engine-level comparison, every step and both code paths, is `ArchitectureReferenceTest`).
class ArchitectureJarIT {

    static Stream<Arguments> files() throws Exception {
        Path p = SharedData.require("archs/references.json");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> all = (List<Map<String, Object>>) Json.parse(Files.readString(p));
        Map<String, Map<String, Object>> longPrompt = new LinkedHashMap<>();
        for (Map<String, Object> r : all) {
            // the long prompt (past Gemma's window), F32 files: the Q8_0 twins give the same ids and run in the
            // engine-level test; each run here starts a JVM and loads a model
            if (((String) r.get("prompt")).length() > 20 && ((String) r.get("file")).contains("-f32")) {
                longPrompt.putIfAbsent((String) r.get("file"), r);
            }
        }
        return longPrompt.values().stream().map(r -> Arguments.of(r.get("file"), r));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("files")
    void theJarReproducesLlamaCpp(String file, Map<String, Object> ref) throws Exception {
        Path model = SharedData.require("archs/" + file);
        Process p = new ProcessBuilder(QualityCommandsIT.java("--model", model.toString(), "--prompt",
                (String) ref.get("prompt"), "-n", "16", "--temperature", "0", "--output-format", "json", "-t", "2"))
                .redirectErrorStream(false).start();
        p.getOutputStream().close();
        String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String stderr = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(stderr).isZero();
        Map<String, Object> out = Json.parseObject(stdout.strip());
        assertThat(ints(out.get("prompt_ids"))).isEqualTo(ints(ref.get("ids_prompt")));
        List<Integer> expected = ints(ref.get("ids_generated"));
        List<Integer> got = ints(out.get("generated_ids"));
        if (out.get("stop_reason").equals("end_of_generation")) {
            assertThat(expected.get(got.size())).as("llama.cpp generated an end-of-generation token there")
                    .isIn(2, 0);
            expected = expected.subList(0, got.size());
        }
        assertThat(got).isEqualTo(expected);
    }

    private static List<Integer> ints(Object list) {
        return ((List<?>) list).stream().map(o -> ((Number) o).intValue()).toList();
    }
}
