package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SynthCommandTest {
    @TempDir
    Path dir;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void writesATinyModel() throws Exception {
        Path file = dir.resolve("tiny.gguf");
        Result r = run("synth", "--shape", "tiny", "--type", "q4_k_m", "--seed", "9", "-o", file.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith(file + ": tiny Q4_K_M, 1.44 M parameters, 22 tensors, ")
                .contains("vocabulary generated (512 tokens), seed 9, written in");
        assertThat(dir.resolve("tiny.gguf.part")).doesNotExist();
        try (GGUFFile f = GGUFFile.open(file)) {
            assertThat(f.metadata().integer("general.file_type")).isEqualTo(15);
            assertThat(f.tensor("output.weight").type()).isEqualTo(GGMLType.Q6_K);
            assertThat(f.tensor("blk.1.attn_q.weight").type()).isEqualTo(GGMLType.Q4_K);
        }
    }

    @Test
    void unknownShapeOrTypeIsAOneLineUsageError() {
        Path file = dir.resolve("x.gguf");
        Result shape = run("synth", "--shape", "llama-9b", "--type", "Q4_0", "-o", file.toString());
        assertThat(shape.code()).isEqualTo(2);
        assertThat(shape.err().lines().findFirst().orElse("")).isEqualTo("llama: Invalid value for option '--shape': "
                + "unknown shape 'llama-9b' (known: tiny, llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, tinyllama-1.1b, "
                + "qwen2.5-7b, qwen3-8b, gemma-3-4b, phi-4-mini, mistral-nemo-12b, granite-3-8b)");
        Result arch = run("synth", "--shape", "tiny", "--arch", "mamba", "--type", "Q4_0", "-o", file.toString());
        assertThat(arch.code()).isEqualTo(2);
        assertThat(arch.err().lines().findFirst().orElse("")).isEqualTo("llama: --arch: unknown architecture 'mamba' "
                + "(known: llama, qwen2, qwen3, gemma2, gemma3, phi3, granite, olmo2, mistral3, smollm3)");
        Result type = run("synth", "--shape", "tiny", "--type", "Q4_K_X", "-o", file.toString());
        assertThat(type.code()).isEqualTo(2);
        assertThat(type.err().lines().findFirst().orElse(""))
                .startsWith("llama: Invalid value for option '--type': unknown type 'Q4_K_X' (known: F32, F16, BF16");
        Result missing = run("synth", "--shape", "tiny", "--type", "Q4_0");
        assertThat(missing.code()).isEqualTo(2);
        assertThat(missing.err()).startsWith("llama: Missing required option: '--output=FILE'");
        for (Result r : new Result[] {shape, arch, type, missing}) {
            assertThat(r.err().lines().count()).isEqualTo(2); // the message and the "Try ... --help" hint
            assertThat(r.err()).doesNotContain("\tat ");
        }
        assertThat(file).doesNotExist();
    }

    @Test
    void aMissingVocabularyFileIsAOneLineError() {
        Path file = dir.resolve("x.gguf");
        Result r = run("synth", "--shape", "tiny", "--type", "F16", "--vocab", dir.resolve("nope.gguf").toString(),
                "-o", file.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).isEqualTo("llama: " + dir.resolve("nope.gguf") + ": no such file");
        assertThat(file).doesNotExist();
    }

    @Test
    void writesIntoAnExistingFileOnlyWhenDone() throws Exception {
        Path file = Files.writeString(dir.resolve("old.gguf"), "old");
        assertThat(run("synth", "--shape", "tiny", "--type", "Q8_0", "-o", file.toString()).code()).isZero();
        assertThat(Files.size(file)).isGreaterThan(100_000);
    }
}
