package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.SharedData;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// The ring cache of sliding-window layers (Gemma 2 and 3, window 8 in the tiny models) against the plain layout:
/// with batches of 32 the window layers keep 40 slots instead of the context, and 150 greedy steps (the ring wraps
/// several times, in batches and one token at a time) give the same tokens and logits as a session whose batches
/// are as large as its context (plain layout everywhere). Rewinding past what the ring holds starts over, and
/// continues exactly as a fresh session would.
class SlidingWindowCacheTest {
    private static final int CONTEXT = 256;

    @ParameterizedTest
    @ValueSource(strings = {"gemma2-emb02-f32.gguf", "gemma3-emb02-f32.gguf"})
    void theRingGivesThePlainLayoutsResults(String file) throws Exception {
        Path path = SharedData.require("archs/models/" + file);
        LoadOptions plainOptions = LoadOptions.defaults().withThreads(2).withWarmUp(false).withMinBatch(1);
        try (LlamaModel ringed = LlamaModel.load(path, plainOptions.withBatchSize(32));
             LlamaModel plain = LlamaModel.load(path, plainOptions.withBatchSize(CONTEXT));
             Session a = ringed.newSession(CONTEXT);
             Session b = plain.newSession(CONTEXT)) {
            assertThat(ringed.kvCacheBytes(CONTEXT)).isLessThan(plain.kvCacheBytes(CONTEXT));
            int[] prompt = new int[70]; // two batches of 32 and one of 6 in the ringed session
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 3 + (i * 37) % 500;
            }
            a.ingest(prompt);
            b.ingest(prompt);
            for (int step = 0; step < 150; step++) {
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

            // back to 10 tokens: the window layers no longer hold positions 3..9, so the session starts over
            int[] history = a.tokens();
            a.rewind(10);
            assertThat(a.position()).isZero();
            int[] again = java.util.Arrays.copyOf(history, 12);
            a.ingest(again);
            try (Session fresh = ringed.newSession(CONTEXT)) {
                fresh.ingest(again);
                assertThat(a.logits()).containsExactly(fresh.logits());
            }
            // a short step back stays possible
            a.rewind(11);
            assertThat(a.position()).isEqualTo(11);
        }
    }
}
