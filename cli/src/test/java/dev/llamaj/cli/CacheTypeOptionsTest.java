package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import org.junit.jupiter.api.Test;

/// `--cache-type-k` and `--cache-type-v`: quantized caches generate, bad values and unsuitable heads are one line;
/// `--no-cache-rotation` turns the rotation of a quantized cache off where it applies (heads of a multiple of 64).
class CacheTypeOptionsTest {
    private static final String STORIES = "models/stories260K.gguf";

    @Test
    void quantizedCachesGenerate() {
        String model = SharedData.require(STORIES).toString();
        LlamaCommandTest.Result f16 = LlamaCommandTest.run("-m", model, "-p", "Once upon a time", "--temperature", "0",
                "-n", "12", "-t", "2");
        LlamaCommandTest.Result q8 = LlamaCommandTest.run("-m", model, "-p", "Once upon a time", "--temperature", "0",
                "-n", "12", "-t", "2", "--cache-type-k", "q8_0", "--cache-type-v", "Q8_0");
        assertThat(q8.code()).as(q8.err()).isZero();
        assertThat(q8.out()).isNotBlank().isEqualTo(f16.out());
    }

    @Test
    void badValuesAreOneLine() {
        String model = SharedData.require(STORIES).toString();
        for (String option : new String[] {"--cache-type-k", "--cache-type-v"}) {
            for (String bad : new String[] {"q4_1", "f32", ""}) {
                LlamaCommandTest.Result r = LlamaCommandTest.run("-m", model, "-p", "a", option, bad);
                assertThat(r.code()).isEqualTo(1);
                assertThat(r.err().strip()).isEqualTo("llama: " + option + ": unknown cache type '" + bad
                        + "' (expected f16, q8_0 or q4_0)");
            }
        }
    }

    @Test
    void headsThatStraddleBlocksAreRefusedInOneLine() {
        String model = SharedData.require("archs/models/llama-hd48-f32.gguf").toString();
        LlamaCommandTest.Result r = LlamaCommandTest.run("-m", model, "-p", "a", "--cache-type-k", "q8_0");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().lines().count()).as(r.err()).isEqualTo(1);
        assertThat(r.err()).startsWith("llama: ").contains("a q8_0 key cache needs a head size that is a multiple "
                + "of 32, but this model's heads have 48 elements (use f16)");
    }

    /// Qwen3's tiny model has heads of 64: a quantized cache is rotated by default and `--verbose` says so;
    /// `--no-cache-rotation` stores the plain blocks (another greedy text on these random weights). stories260K's
    /// heads of 8 are never rotated, so there the option changes nothing.
    @Test
    void noCacheRotationTurnsTheRotationOff() {
        String qwen3 = SharedData.require("archs/models/qwen3-f32.gguf").toString();
        String[] args = {"-m", qwen3, "-p", "Once upon a time", "--temperature", "0", "-n", "24", "-t", "2",
                "--cache-type-k", "q4_0", "--cache-type-v", "q8_0", "--verbose"};
        LlamaCommandTest.Result rotated = LlamaCommandTest.run(args);
        LlamaCommandTest.Result plain = LlamaCommandTest.run(append(args, "--no-cache-rotation"));
        assertThat(rotated.code()).as(rotated.err()).isZero();
        assertThat(plain.code()).as(plain.err()).isZero();
        assertThat(rotated.err()).contains("key/value cache q4_0/q8_0 rotated: keys by 64, values by 64");
        assertThat(plain.err()).contains("key/value cache q4_0/q8_0 not rotated");
        assertThat(plain.out()).isNotBlank().isNotEqualTo(rotated.out());

        String stories = SharedData.require(STORIES).toString();
        String[] small = {"-m", stories, "-p", "Once upon a time", "--temperature", "0", "-n", "24", "-t", "2",
                "--cache-type-k", "q4_0", "--cache-type-v", "q4_0", "--verbose"};
        LlamaCommandTest.Result a = LlamaCommandTest.run(small);
        LlamaCommandTest.Result b = LlamaCommandTest.run(append(small, "--no-cache-rotation"));
        assertThat(a.err()).contains("key/value cache q4_0/q4_0 not rotated");
        assertThat(b.out()).isNotBlank().isEqualTo(a.out());
    }

    /// `perplexity` says on stderr how the cache is stored, as llama.cpp's log does, so a figure carries its setting.
    @Test
    void perplexitySaysWhetherTheCacheIsRotated() throws Exception {
        String qwen3 = SharedData.require("archs/models/qwen3-f32.gguf").toString();
        java.nio.file.Path text = java.nio.file.Files.createTempFile("kvrot", ".txt");
        try {
            java.nio.file.Files.writeString(text, "Once upon a time there was a little cat. ".repeat(20));
            String[] args = {"perplexity", "-m", qwen3, "-f", text.toString(), "-c", "32", "--chunks", "1", "-t", "2",
                    "--cache-type-k", "q8_0"};
            LlamaCommandTest.Result rotated = LlamaCommandTest.run(args);
            LlamaCommandTest.Result plain = LlamaCommandTest.run(append(args, "--no-cache-rotation"));
            assertThat(rotated.code()).as(rotated.err()).isZero();
            assertThat(rotated.err()).contains("per chunk), key/value cache q8_0/f16 rotated: keys by 64, values no");
            assertThat(plain.err()).contains("per chunk), key/value cache q8_0/f16 not rotated");
        } finally {
            java.nio.file.Files.delete(text);
        }
    }

    @Test
    void noCacheRotationTakesNoValue() {
        String model = SharedData.require(STORIES).toString();
        LlamaCommandTest.Result r = LlamaCommandTest.run("-m", model, "-p", "a", "--no-cache-rotation=yes");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).startsWith("llama: ").contains("--no-cache-rotation").doesNotContain("Exception");
    }

    private static String[] append(String[] args, String arg) {
        String[] all = java.util.Arrays.copyOf(args, args.length + 1);
        all[args.length] = arg;
        return all;
    }
}
