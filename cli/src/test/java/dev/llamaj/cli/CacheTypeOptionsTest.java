package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import org.junit.jupiter.api.Test;

/// `--cache-type-k` and `--cache-type-v`: quantized caches generate, bad values and unsuitable heads are one line.
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
}
