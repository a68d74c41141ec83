package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.gguf.SharedData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/// The prefix cache against sessions that compute every prompt themselves: the logits after each prompt and the
/// greedy continuation are the same bits; shared instructions are computed once; the byte budget holds; many
/// threads share one cache; colliding hashes never lend a wrong block; a budget of 0 and sliding-window rings turn
/// it off.
class PrefixCacheTest {
    private static final int CONTEXT = 512;
    private static final int BLOCK = PrefixCache.BLOCK_TOKENS;

    private static LoadOptions options() {
        return LoadOptions.defaults().withThreads(1).withWarmUp(false);
    }

    /// `count` prompts that share their first `shared` tokens, then differ in `tail`, `tail + 7`, ... tokens
    /// (lengths that end inside blocks, on a block boundary, and just after one).
    private static List<int[]> prompts(int vocab, int shared, int tail, int count, long seed) {
        Random r = new Random(seed);
        int[] instruction = r.ints(shared, 3, vocab).toArray();
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] p = java.util.Arrays.copyOf(instruction, shared + tail + 7 * i);
            for (int j = shared; j < p.length; j++) {
                p[j] = 3 + r.nextInt(vocab - 3);
            }
            out.add(p);
        }
        return out;
    }

    /// Logits after `prompt` and the tokens of a greedy continuation.
    private record Run(float[] logits, int[] tokens, int restored) {}

    private static Run run(Session s, int[] prompt, int generate) {
        s.reset();
        s.generate(prompt, 0, Sampler.greedy(), _ -> { });
        float[] logits = s.logits().clone();
        int restored = s.restoredTokens();
        s.generate(new int[0], generate, Sampler.greedy(), _ -> { });
        return new Run(logits, s.tokens(), restored);
    }

    private static void assertSame(Run cached, Run fresh, String what) {
        assertThat(cached.logits()).as("logits after %s", what).containsExactly(fresh.logits());
        assertThat(cached.tokens()).as("tokens of %s", what).containsExactly(fresh.tokens());
    }

    /// Every prompt with the cache gives the fresh session's bits, and the shared part is copied, not computed,
    /// from the second prompt on. Batch sizes of 32 and 512 and minimum batches of 2 and 16 move the boundaries
    /// between batches and the one-token-at-a-time tail across the blocks.
    @ParameterizedTest(name = "{0} batch {1} min {2} K {3} V {4}")
    @CsvSource({
            "models/stories260K.gguf, 512, 0, F16, F16",
            "models/stories260K.gguf, 32, 16, F16, F16",
            "models/stories260K.gguf, 96, 2, Q8_0, Q4_0",
            "archs/models/qwen3-q8_0.gguf, 512, 0, F16, F16",
            "archs/models/gemma3-f32.gguf, 512, 16, F16, F16",
            "archs/models/phi3-partial-q8_0.gguf, 512, 0, Q8_0, F16"})
    void givesTheFreshSessionsBits(String file, int batch, int minBatch, KVCacheType k, KVCacheType v)
            throws Exception {
        Path path = SharedData.require(file);
        LoadOptions o = options().withBatchSize(batch).withMinBatch(minBatch).withCacheTypeK(k).withCacheTypeV(v);
        try (LlamaModel m = LlamaModel.load(path, o);
             Session fresh = m.newSession(CONTEXT);
             Session cached = m.newSession(CONTEXT)) {
            PrefixCache cache = new PrefixCache(m, 64L << 20);
            assertThat(cached.usePrefixCache(cache)).isTrue();
            int submitted = 0;
            int restored = 0;
            List<int[]> prompts = prompts(m.config().vocabSize(), 200, 1, 6, 1);
            prompts.add(prompts.get(3).clone()); // the same prompt again
            prompts.add(java.util.Arrays.copyOf(prompts.get(0), 2 * BLOCK)); // ends on a block boundary
            // a few tokens after cached blocks: a fresh ingest batches them with the rest, so the cache must not
            // leave them to be computed one at a time
            prompts.add(java.util.Arrays.copyOf(prompts.get(0), 3 * BLOCK + 1));
            prompts.add(java.util.Arrays.copyOf(prompts.get(0), 3 * BLOCK + 3));
            for (int i = 0; i < prompts.size(); i++) {
                int[] p = prompts.get(i);
                Run c = run(cached, p, 12);
                assertSame(c, run(fresh, p, 12), "prompt " + i + " (" + p.length + " tokens)");
                assertThat(c.restored() % BLOCK).isZero();
                assertThat(c.restored()).isLessThan(p.length);
                if (i > 0 && p.length > 3 * BLOCK + 16) {
                    assertThat(c.restored()).as("prompt %d", i).isGreaterThanOrEqualTo(2 * BLOCK);
                }
                submitted += p.length;
                restored += c.restored();
            }
            assertThat(cache.stats().restoredTokens()).isEqualTo(restored);
            assertThat(restored).as("of %d tokens submitted", submitted).isGreaterThan(submitted / 2);
            assertThat(cache.stats().bytes()).isLessThanOrEqualTo(cache.budget());
        }
    }

    /// With room for three blocks, the oldest chains are evicted from their ends, the budget is never exceeded, and
    /// results stay exact; a prompt whose blocks were evicted is computed again and cached again.
    @Test
    void evictsTheLeastRecentlyUsedBlocksUnderTheBudget() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel m = LlamaModel.load(path, options());
             Session fresh = m.newSession(CONTEXT);
             Session cached = m.newSession(CONTEXT)) {
            PrefixCache cache = new PrefixCache(m, 3 * new PrefixCache(m, 0).blockBytes());
            cached.usePrefixCache(cache);
            int vocab = m.config().vocabSize();
            int[] a = prompts(vocab, 2 * BLOCK + 10, 0, 1, 2).getFirst(); // two whole blocks
            int[] b = prompts(vocab, 2 * BLOCK + 10, 0, 1, 3).getFirst();
            assertSame(run(cached, a, 4), run(fresh, a, 4), "a");
            assertThat(cache.stats().blocks()).isEqualTo(2);
            Run b1 = run(cached, b, 4);
            assertSame(b1, run(fresh, b, 4), "b");
            // b's second block needed a's second block (the least recent leaf) evicted; a's first stays
            assertThat(cache.stats().blocks()).isEqualTo(3);
            assertThat(cache.stats().evictedBlocks()).isEqualTo(1);
            assertThat(cache.cachedLength(a, false)).isEqualTo(BLOCK);
            Run a2 = run(cached, a, 4);
            assertThat(a2.restored()).isEqualTo(BLOCK);
            assertSame(a2, run(fresh, a, 4), "a again");
            assertThat(cache.stats().bytes()).isLessThanOrEqualTo(cache.budget());
            assertThat(cache.stats().blocks()).isEqualTo(3);
            Run b2 = run(cached, b, 4);
            assertSame(b2, run(fresh, b, 4), "b again");
            assertThat(cache.stats().bytes()).isLessThanOrEqualTo(cache.budget());
        }
    }

    /// Four threads, each with its own session, share one small cache (evicting while others copy) over prompts
    /// built on two instructions; every result matches the fresh session's, computed beforehand on one thread.
    @Test
    void sessionsOnManyThreadsShareOneCache() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel m = LlamaModel.load(path, options())) {
            int vocab = m.config().vocabSize();
            List<int[]> prompts = new ArrayList<>(prompts(vocab, 3 * BLOCK, 5, 6, 4));
            prompts.addAll(prompts(vocab, 2 * BLOCK + 30, 9, 6, 5));
            List<Run> expected = new ArrayList<>();
            try (Session fresh = m.newSession(CONTEXT)) {
                for (int[] p : prompts) {
                    expected.add(run(fresh, p, 6));
                }
            }
            PrefixCache cache = new PrefixCache(m, 5 * new PrefixCache(m, 0).blockBytes());
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    int seed = t;
                    done.add(pool.submit(() -> {
                        Random r = new Random(seed);
                        try (Session s = m.newSession(CONTEXT)) {
                            s.usePrefixCache(cache);
                            for (int k = 0; k < 15; k++) {
                                int i = r.nextInt(prompts.size());
                                assertSame(run(s, prompts.get(i), 6), expected.get(i), "prompt " + i);
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get();
                }
            } finally {
                pool.shutdown();
            }
            PrefixCache.Stats stats = cache.stats();
            assertThat(stats.restoredTokens()).isPositive();
            assertThat(stats.bytes()).isLessThanOrEqualTo(cache.budget());
        }
    }

    /// Sessions of a batch executor share blocks among themselves, with their own results to the bit, and are not
    /// lent the blocks of sessions that compute for themselves (the two paths agree only to rounding), nor the
    /// reverse.
    @Test
    void sessionsOfABatchExecutorShareOnlyTheirOwnBlocks() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel m = LlamaModel.load(path, options());
             BatchExecutor executor = m.newBatchExecutor();
             Session plain = m.newSession(CONTEXT);
             Session fresh = executor.newSession(CONTEXT);
             Session cached = executor.newSession(CONTEXT)) {
            PrefixCache cache = new PrefixCache(m, 64L << 20);
            plain.usePrefixCache(cache);
            assertThat(cached.usePrefixCache(cache)).isTrue();
            List<int[]> prompts = prompts(m.config().vocabSize(), 3 * BLOCK + 5, 9, 3, 10);
            run(plain, prompts.getFirst(), 2); // blocks of a plain session
            assertThat(cached.cachedPrefixLength(prompts.get(1))).isZero();
            assertThat(plain.cachedPrefixLength(prompts.get(1))).isEqualTo(3 * BLOCK);
            // one token after the blocks: an executor computes it alike however the prompt is split, so nothing is
            // given up (a plain session gives up a block rather than compute it alone)
            prompts.add(java.util.Arrays.copyOf(prompts.getFirst(), 3 * BLOCK + 1));
            for (int i = 0; i < prompts.size(); i++) {
                Run c = run(cached, prompts.get(i), 8);
                assertThat(c.restored()).as("prompt %d", i).isEqualTo(i == 0 ? 0 : 3 * BLOCK);
                assertSame(c, run(fresh, prompts.get(i), 8), "prompt " + i);
            }
            assertThat(run(plain, prompts.getLast(), 2).restored()).isEqualTo(2 * BLOCK);
        }
    }

    /// With a hash that sends every block to the same key (or ignores the tokens), lookups still verify tokens and
    /// parents: a different prompt is never given another's blocks, and results are exact.
    @Test
    void collidingHashesNeverLendAWrongBlock() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel m = LlamaModel.load(path, options());
             Session fresh = m.newSession(CONTEXT);
             Session cached = m.newSession(CONTEXT)) {
            int vocab = m.config().vocabSize();
            List<int[]> prompts = prompts(vocab, 3 * BLOCK, 10, 2, 6);
            prompts.addAll(prompts(vocab, 3 * BLOCK, 10, 2, 7));
            PrefixCache.Hash[] hashes = {(parent, t, from, to) -> 42, (parent, t, from, to) -> parent + 1};
            for (PrefixCache.Hash hash : hashes) {
                PrefixCache cache = new PrefixCache(m, 64L << 20, hash);
                cached.usePrefixCache(cache);
                for (int[] p : prompts) {
                    assertSame(run(cached, p, 6), run(fresh, p, 6), p.length + " tokens");
                }
                // the first prompt's blocks own the keys; the second family of prompts found only mismatches
                assertThat(cache.cachedLength(prompts.get(2), false)).isZero();
                assertThat(cache.cachedLength(prompts.getFirst(), false)).isPositive();
            }
        }
    }

    /// A budget of 0 (or less than a block) turns sharing off; a negative budget and another model's cache are
    /// refused; a sliding-window ring does not share but still computes correctly.
    @Test
    void aZeroBudgetOrARingTurnsItOff() throws Exception {
        Path path = SharedData.require("models/stories260K.gguf");
        try (LlamaModel m = LlamaModel.load(path, options()); Session s = m.newSession(CONTEXT)) {
            PrefixCache off = new PrefixCache(m, 0);
            assertThat(s.usePrefixCache(off)).isFalse();
            assertThat(s.usePrefixCache(new PrefixCache(m, off.blockBytes() - 1))).isFalse();
            int[] p = prompts(m.config().vocabSize(), 3 * BLOCK, 3, 1, 8).getFirst();
            assertThat(run(s, p, 2).restored()).isZero();
            assertThat(run(s, p, 2).restored()).isZero();
            assertThat(off.stats().blocks()).isZero();
            assertThatThrownBy(() -> new PrefixCache(m, -1)).hasMessageContaining("0 or more bytes");
            try (LlamaModel other = LlamaModel.load(path, options())) {
                assertThatThrownBy(() -> s.usePrefixCache(new PrefixCache(other, 1 << 20)))
                        .hasMessageContaining("another model");
            }
        }
        Path gemma = SharedData.require("archs/models/gemma2-f32.gguf");
        // batches of 32 and a window of 8: the local layers keep a ring of 40 slots in a context of 512
        try (LlamaModel m = LlamaModel.load(gemma, options().withBatchSize(32));
             Session ring = m.newSession(CONTEXT);
             Session fresh = m.newSession(CONTEXT)) {
            PrefixCache cache = new PrefixCache(m, 64L << 20);
            assertThat(ring.usePrefixCache(cache)).isFalse();
            int[] p = prompts(m.config().vocabSize(), 3 * BLOCK, 3, 1, 9).getFirst();
            run(ring, p, 2);
            Run again = run(ring, p, 2);
            assertThat(again.restored()).isZero();
            assertSame(again, run(fresh, p, 2), "the ring");
            assertThat(cache.stats().blocks()).isZero();
        }
    }
}
