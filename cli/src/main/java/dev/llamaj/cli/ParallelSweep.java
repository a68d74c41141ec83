package dev.llamaj.cli;

import dev.llamaj.engine.BatchExecutor;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.tokenizer.Vocabulary;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/// `bench --parallel`: N sequences at once through one [BatchExecutor], as llama.cpp's `llama-batched-bench`
/// measures its server's continuous batching.
///
/// Each of N threads owns a session of one executor. A run: every session is emptied, then all N ingest their
/// prompt (`-p` random tokens, BOS first) at the same instant (timed together: the aggregate prompt speed), then
/// all N generate `-n` tokens at the same instant (greedy, end-of-generation tokens banned so that every sequence
/// generates exactly `-n`). The aggregate generation speed is `N · n` over the time until the last sequence
/// finishes; the per-stream speed is the mean of each sequence's own `n / time`, what one user of a server sees.
///
/// With a long prompt (`--long-prompt L`), each timed run has a second generation phase during which one more
/// session ingests `L` random tokens, starting with the generations: the mean time between two tokens of a
/// generating sequence in that phase, over the same without the prompt, is what a long prompt arriving costs the
/// users already generating (the executor ingests it in chunks between their tokens).
final class ParallelSweep {
    private ParallelSweep() {
    }

    /// One concurrency level's timed runs.
    ///
    /// @param promptNanos   per run: wall time of the N prompts, together
    /// @param genNanos      per run: wall time of the N generations, together
    /// @param perStreamTs   mean over runs and sequences of a sequence's own generation tokens/s
    /// @param meanBatch     tokens per batched step during the runs, on average
    /// @param tokenGapNanos mean time between two tokens of a sequence, without a long prompt alongside
    /// @param longPrompt    tokens of the long prompt ingested alongside the second phase (0: none)
    /// @param tokenGapWithPromptNanos the same with the long prompt being ingested (0 without one)
    /// @param longPromptNanos mean time the long prompt took (0 without one)
    record Row(int sequences, int prompt, int generate, long[] promptNanos, long[] genNanos, double perStreamTs,
               double meanBatch, double tokenGapNanos, int longPrompt, double tokenGapWithPromptNanos,
               double longPromptNanos) {
        /// How much longer a step takes while the long prompt is ingested.
        double slowdown() {
            return tokenGapWithPromptNanos / tokenGapNanos;
        }
    }

    /// Measures `sequences` concurrent sequences: `warmUp` untimed runs, then `repetitions` timed ones.
    static Row run(LlamaModel model, int sequences, int prompt, int generate, int repetitions, int warmUp,
                   int longPrompt, SplittableRandom random) throws Exception {
        int context = 2 * (prompt + generate) + 1;
        List<Session> sessions = new ArrayList<>();
        ExecutorService threads = Executors.newFixedThreadPool(sequences, r -> {
            Thread t = new Thread(r, "bench-sequence");
            t.setDaemon(true);
            return t;
        });
        try (BatchExecutor executor = model.newBatchExecutor()) {
            for (int i = 0; i < sequences; i++) {
                sessions.add(executor.newSession(context));
            }
            Session longSession = longPrompt > 0 ? executor.newSession(longPrompt) : null;
            if (longSession != null) {
                sessions.add(longSession);
            }
            Sampler.Settings settings = Sampler.Settings.greedy().withLogitBias(noEnd(model));
            long[] promptNanos = new long[repetitions];
            long[] genNanos = new long[repetitions];
            double perStream = 0;
            double gap = 0;
            double gapWithPrompt = 0;
            double longNanos = 0;
            BatchExecutor.Stats before = null;
            for (int run = -warmUp; run < repetitions; run++) {
                if (run == 0) {
                    before = executor.stats();
                }
                int[][] prompts = new int[sequences][];
                for (int i = 0; i < sequences; i++) {
                    prompts[i] = randomTokens(model, Math.max(1, prompt), random);
                }
                CyclicBarrier barrier = new CyclicBarrier(sequences + 1);
                List<Future<Completion>> futures = new ArrayList<>();
                long[][] gaps = new long[sequences][2];
                for (int i = 0; i < sequences; i++) {
                    Session s = sessions.get(i);
                    int[] p = prompts[i];
                    long[] g = gaps[i];
                    futures.add(threads.submit(() -> {
                        s.reset();
                        barrier.await();
                        s.ingest(p);
                        barrier.await();
                        barrier.await();
                        Completion c = generate(s, settings, generate, g, 0);
                        barrier.await();
                        if (longSession != null) {
                            barrier.await();
                            generate(s, settings, generate, g, 1);
                            barrier.await();
                        }
                        return c;
                    }));
                }
                barrier.await(); // all reset
                long t0 = System.nanoTime();
                barrier.await(); // all prompts in
                long t1 = System.nanoTime();
                barrier.await(); // generation starts
                long t2 = System.nanoTime();
                barrier.await(); // all generated
                long t3 = System.nanoTime();
                long longTook = 0;
                if (longSession != null) { // the same again, with a long prompt arriving as they start
                    int[] tokens = randomTokens(model, longPrompt, random);
                    longSession.reset();
                    barrier.await();
                    long l0 = System.nanoTime();
                    longSession.ingest(tokens);
                    longTook = System.nanoTime() - l0;
                    barrier.await();
                }
                double streams = 0;
                for (Future<Completion> f : futures) {
                    Completion c = f.get();
                    if (c.generatedTokens() != generate) {
                        throw new IllegalStateException("a sequence generated " + c.generatedTokens() + " tokens, not "
                                + generate + " (" + c.stopReason() + ")");
                    }
                    streams += generate * 1e9 / c.generationNanos();
                }
                if (run >= 0) {
                    promptNanos[run] = t1 - t0;
                    genNanos[run] = t3 - t2;
                    perStream += streams / sequences / repetitions;
                    longNanos += (double) longTook / repetitions;
                    for (long[] g : gaps) {
                        gap += (double) g[0] / Math.max(1, generate - 1) / sequences / repetitions;
                        gapWithPrompt += (double) g[1] / Math.max(1, generate - 1) / sequences / repetitions;
                    }
                }
            }
            BatchExecutor.Stats after = executor.stats();
            double meanBatch = (double) (after.tokens() - before.tokens()) / Math.max(1, after.steps() - before.steps());
            return new Row(sequences, prompt, generate, promptNanos, genNanos, perStream, meanBatch, gap,
                    longPrompt, gapWithPrompt, longNanos);
        } finally {
            for (Session s : sessions) {
                s.close();
            }
            threads.shutdownNow();
        }
    }

    /// Generates `n` tokens after what `s` holds (then forgets them), recording in `gaps[phase]` the time from its
    /// first token to its last.
    private static Completion generate(Session s, Sampler.Settings settings, int n, long[] gaps, int phase) {
        int start = s.position();
        long[] first = {0};
        long[] last = {0};
        Completion c = s.generate(new int[0], n, Sampler.create(settings), List.of(), text -> { }, token -> {
            long now = System.nanoTime();
            if (first[0] == 0) {
                first[0] = now;
            }
            last[0] = now;
        });
        gaps[phase] = last[0] - first[0];
        s.rewind(start);
        return c;
    }

    /// A bias that bans every end-of-generation token.
    private static Map<Integer, Float> noEnd(LlamaModel model) {
        Vocabulary v = model.tokenizer().vocabulary();
        Map<Integer, Float> bias = new HashMap<>();
        for (int t = 0; t < v.size(); t++) {
            if (v.isEndOfGeneration(t)) {
                bias.put(t, Sampler.BAN);
            }
        }
        return bias;
    }

    private static int[] randomTokens(LlamaModel model, int n, SplittableRandom random) {
        Vocabulary v = model.tokenizer().vocabulary();
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = i == 0 && v.addBos() ? v.bos() : random.nextInt(v.size());
        }
        return tokens;
    }
}
