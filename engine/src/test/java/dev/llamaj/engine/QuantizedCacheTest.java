package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.SharedData;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/// Quantized key/value caches in whole models: stories260K generates with each setting (its heads of 8 share
/// blocks of 32, four heads to a row), the ring of sliding-window layers gives the plain layout's results, sessions
/// copy and rewind, the memory is what the layout says, and unsuitable heads or types are refused clearly.
class QuantizedCacheTest {
    private static final String PROMPT = "Once upon a time, there was a little girl named Lily.";

    private static LoadOptions options(KVCacheType k, KVCacheType v) {
        return LoadOptions.defaults().withThreads(2).withWarmUp(false).withCacheTypeK(k).withCacheTypeV(v);
    }

    private static String greedy(Path path, LoadOptions options, int tokens) throws Exception {
        try (LlamaModel m = LlamaModel.load(path, options); Session s = m.newSession(512)) {
            return s.generate(PROMPT, tokens, Sampler.greedy(), t -> { }).text();
        }
    }

    /// Greedy text with a quantized cache starts as the half-precision cache's does (the first `same` characters)
    /// and stays story-like: words of letters and punctuation, no control bytes or replacement characters.
    @ParameterizedTest(name = "K {0}, V {1}")
    @CsvSource({"Q8_0, Q8_0, 150", "Q8_0, F16, 150", "F16, Q8_0, 150", "Q4_0, Q4_0, 15", "Q8_0, Q4_0, 100"})
    void storiesGenerateWithEverySetting(KVCacheType k, KVCacheType v, int same) throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        String f16 = greedy(path, options(KVCacheType.F16, KVCacheType.F16), 100);
        String quantized = greedy(path, options(k, v), 100);
        int common = 0;
        while (common < Math.min(f16.length(), quantized.length()) && f16.charAt(common) == quantized.charAt(common)) {
            common++;
        }
        assertThat(common).as("characters in common with the F16 cache's text").isGreaterThanOrEqualTo(same);
        assertThat(quantized).matches("[A-Za-z ,.!?'\"\\n-]+");
    }

    /// The ring of sliding-window layers (Gemma 2 and 3 tiny models, window 8) with quantized rows: batches of 32
    /// keep 40 slots, and 100 greedy steps give the logits of a session whose batches are as large as its context
    /// (plain layout), with the same types. Rewinding past the ring starts over and continues as a fresh session.
    @ParameterizedTest
    @ValueSource(strings = {"gemma2-emb02-f32.gguf", "gemma3-emb02-f32.gguf"})
    void theRingWorksWithQuantizedRows(String file) throws Exception {
        Path path = SharedData.require("archs/models/" + file);
        int context = 256;
        LoadOptions o = options(KVCacheType.Q8_0, KVCacheType.Q4_0).withMinBatch(1);
        try (LlamaModel ringed = LlamaModel.load(path, o.withBatchSize(32));
             LlamaModel plain = LlamaModel.load(path, o.withBatchSize(context));
             Session a = ringed.newSession(context);
             Session b = plain.newSession(context)) {
            assertThat(ringed.kvCacheBytes(context)).isLessThan(plain.kvCacheBytes(context));
            int[] prompt = new int[70];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 3 + (i * 37) % 500;
            }
            a.ingest(prompt);
            b.ingest(prompt);
            for (int step = 0; step < 100; step++) {
                float[] la = a.logits();
                float[] lb = b.logits();
                int best = Sampler.argmax(lb);
                assertThat(Sampler.argmax(la)).as("step %d", step).isEqualTo(best);
                for (int i = 0; i < la.length; i++) {
                    assertThat(la[i]).as("step %d logit %d", step, i).isCloseTo(lb[i], within(2e-3f));
                }
                a.ingest(best);
                b.ingest(best);
            }
            int[] history = a.tokens();
            a.rewind(10);
            assertThat(a.position()).isZero();
            int[] again = java.util.Arrays.copyOf(history, 12);
            a.ingest(again);
            try (Session fresh = ringed.newSession(context)) {
                fresh.ingest(again);
                assertThat(a.logits()).containsExactly(fresh.logits());
            }
        }
    }

    /// A copied session continues exactly as its source, and a rewound one exactly as a fresh session fed the
    /// same tokens, with quantized keys and values.
    @Test
    void sessionsCopyAndRewind() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel m = LlamaModel.load(path, options(KVCacheType.Q4_0, KVCacheType.Q8_0));
             Session a = m.newSession(256);
             Session b = m.newSession(256);
             Session fresh = m.newSession(256)) {
            int[] prompt = a.encode(PROMPT);
            a.ingest(prompt);
            b.copyFrom(a);
            a.ingest(42, 43, 44);
            b.ingest(42, 43, 44);
            assertThat(b.logits()).containsExactly(a.logits());

            a.rewind(prompt.length - 2);
            a.ingest(100, 101);
            int[] same = java.util.Arrays.copyOf(prompt, prompt.length);
            same[prompt.length - 2] = 100;
            same[prompt.length - 1] = 101;
            fresh.ingest(same);
            assertThat(a.logits()).containsExactly(fresh.logits());
        }
    }

    /// Memory per position and per session follow the layout: stories260K has 5 layers and rows of 32 elements
    /// (one block), so a position takes 5 × (34 + 18) bytes with Q8_0 keys and Q4_0 values; half-precision keys
    /// are padded to blocks of 64 positions.
    @Test
    void memoryFollowsTheLayout() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel q = LlamaModel.load(path, options(KVCacheType.Q8_0, KVCacheType.Q4_0));
             LlamaModel h = LlamaModel.load(path, options(KVCacheType.F16, KVCacheType.Q8_0))) {
            assertThat(q.kvBytesPerPosition()).isEqualTo(5 * (34 + 18));
            assertThat(q.kvCacheBytes(100)).isEqualTo(100L * 5 * (34 + 18));
            assertThat(h.kvCacheBytes(100)).isEqualTo(5 * (128L * 32 * 2 + 100 * 34));
        }
    }

    /// Heads of 48 elements straddle blocks of 32: refused at load with one line naming the type and the size.
    @Test
    void refusesHeadsThatStraddleBlocks() throws Exception {
        Path path = SharedData.require("archs/models/llama-hd48-f32.gguf");
        assertThatThrownBy(() -> LlamaModel.load(path, options(KVCacheType.F16, KVCacheType.Q4_0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("a q4_0 value cache needs a head size that is a multiple of 32")
                .hasMessageContaining("48");
        try (LlamaModel m = LlamaModel.load(path, options(KVCacheType.F16, KVCacheType.F16))) {
            assertThat(m.kvBytesPerPosition()).isPositive();
        }
    }

    @Test
    void typesParseByLlamaCppsNamesAndRefuseOthers() {
        assertThat(KVCacheType.parse("q8_0")).isEqualTo(KVCacheType.Q8_0);
        assertThat(KVCacheType.parse("Q4_0")).isEqualTo(KVCacheType.Q4_0);
        assertThat(KVCacheType.parse("f16")).isEqualTo(KVCacheType.F16);
        for (String bad : new String[] {"q4_1", "f32", "", "q8"}) {
            assertThatThrownBy(() -> KVCacheType.parse(bad)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("unknown cache type '" + bad + "' (expected f16, q8_0 or q4_0)");
        }
        assertThatThrownBy(() -> LoadOptions.defaults().withCacheTypeK(null)).isInstanceOf(NullPointerException.class);
    }
}
