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
final class ParallelSweep {
    private ParallelSweep() {
    }

    /// One concurrency level's timed runs.
    ///
    /// @param promptNanos   per run: wall time of the N prompts, together
    /// @param genNanos      per run: wall time of the N generations, together
    /// @param perStreamTs   mean over runs and sequences of a sequence's own generation tokens/s
    /// @param meanBatch     tokens per batched step during the runs, on average
    record Row(int sequences, int prompt, int generate, long[] promptNanos, long[] genNanos, double perStreamTs,
               double meanBatch) {
    }

    /// Measures `sequences` concurrent sequences: `warmUp` untimed runs, then `repetitions` timed ones.
    static Row run(LlamaModel model, int sequences, int prompt, int generate, int repetitions, int warmUp,
                   SplittableRandom random) throws Exception {
        int context = prompt + generate + 1;
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
            Sampler.Settings settings = Sampler.Settings.greedy().withLogitBias(noEnd(model));
            long[] promptNanos = new long[repetitions];
            long[] genNanos = new long[repetitions];
            double perStream = 0;
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
                for (int i = 0; i < sequences; i++) {
                    Session s = sessions.get(i);
                    int[] p = prompts[i];
                    futures.add(threads.submit(() -> {
                        s.reset();
                        barrier.await();
                        s.ingest(p);
                        barrier.await();
                        barrier.await();
                        Completion c = s.generate(new int[0], generate, Sampler.create(settings), List.of(),
                                text -> { }, null);
                        barrier.await();
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
                }
            }
            BatchExecutor.Stats after = executor.stats();
            double meanBatch = (double) (after.tokens() - before.tokens()) / Math.max(1, after.steps() - before.steps());
            return new Row(sequences, prompt, generate, promptNanos, genNanos, perStream, meanBatch);
        } finally {
            for (Session s : sessions) {
                s.close();
            }
            threads.shutdownNow();
        }
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
