package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.SharedData;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// Continuous batching on the real stories260K model: a sequence's tokens do not depend on which sequences share
/// its steps, nor on how its prompt is chunked; the steps really are shared; the results agree with a session of
/// its own to rounding.
class BatchExecutorTest {
    private static final String[] PROMPTS = {
        "Once upon a time", "The little dog", "Lily wanted to play with her", "One day, a big red ball",
        "Tom and Sue went to the park. They saw a bird", "The sun was hot and"
    };
    private static LlamaModel model;

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"),
                LoadOptions.defaults().withThreads(2).withWarmUp(false));
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    /// What each prompt gives when it runs in the executor alone: greedy and sampled with a seed.
    private static List<Completion> alone(BatchExecutor executor, boolean sampled) {
        List<Completion> out = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
            try (Session s = executor.newSession(256)) {
                out.add(s.generate(PROMPTS[i], 80, sampler(sampled, i), text -> { }));
            }
        }
        return out;
    }

    private static Sampler sampler(boolean sampled, int i) {
        return sampled ? Sampler.create(Sampler.Settings.defaults(1000 + i)) : Sampler.greedy();
    }

    /// Every prompt on its own thread at once, all starting together.
    private static List<Completion> together(BatchExecutor executor, boolean sampled) throws Exception {
        ExecutorService threads = Executors.newFixedThreadPool(PROMPTS.length);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Completion>> futures = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                int k = i;
                futures.add(threads.submit(() -> {
                    try (Session s = executor.newSession(256)) {
                        start.await();
                        return s.generate(PROMPTS[k], 80, sampler(sampled, k), text -> { });
                    }
                }));
            }
            start.countDown();
            List<Completion> out = new ArrayList<>();
            for (Future<Completion> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    void sequencesGiveTheSameTokensAloneAndTogether() throws Exception {
        for (boolean sampled : new boolean[] {false, true}) {
            try (BatchExecutor executor = model.newBatchExecutor()) {
                List<Completion> one = alone(executor, sampled);
                BatchExecutor.Stats before = executor.stats();
                List<Completion> all = together(executor, sampled);
                BatchExecutor.Stats after = executor.stats();
                for (int i = 0; i < PROMPTS.length; i++) {
                    assertThat(all.get(i).text()).as("prompt %d, sampled %s", i, sampled)
                            .isEqualTo(one.get(i).text());
                    assertThat(all.get(i).generatedTokens()).isEqualTo(one.get(i).generatedTokens());
                    assertThat(all.get(i).logprobSum()).isEqualTo(one.get(i).logprobSum());
                }
                // the steps were shared: far fewer steps than tokens
                long steps = after.steps() - before.steps();
                long decoded = after.decodeTokens() - before.decodeTokens();
                assertThat(decoded).isGreaterThan(PROMPTS.length * 40L);
                assertThat((double) decoded / steps).as("decode tokens per step").isGreaterThan(2.5);
            }
        }
    }

    /// A long prompt arriving while others generate is processed in chunks between their tokens: the results
    /// of every sequence, its own included, are those of each alone; chunk sizes do not matter either.
    @Test
    void aLongPromptInChunksChangesNothing() throws Exception {
        StringBuilder longPrompt = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            longPrompt.append("Once upon a time there was a little girl named Lily. ");
        }
        String[] prompts = {"The little dog", "Tom had a red ball", longPrompt.toString()};
        List<String> expected = new ArrayList<>();
        try (BatchExecutor executor = model.newBatchExecutor(64, 0)) {
            for (String p : prompts) {
                try (Session s = executor.newSession(512)) {
                    expected.add(s.generate(p, 60, Sampler.greedy(), t -> { }).text());
                }
            }
        }
        assertThat(model.tokenizer().encode(prompts[2]).length).isGreaterThan(150);
        try (BatchExecutor executor = model.newBatchExecutor(12, 3)) {
            ExecutorService threads = Executors.newFixedThreadPool(3);
            try {
                List<Future<String>> futures = new ArrayList<>();
                for (int i = 0; i < prompts.length; i++) {
                    int k = i;
                    futures.add(threads.submit(() -> {
                        if (k == 2) {
                            Thread.sleep(30); // arrives while the others generate
                        }
                        try (Session s = executor.newSession(512)) {
                            return s.generate(prompts[k], 60, Sampler.greedy(), t -> { }).text();
                        }
                    }));
                }
                for (int i = 0; i < prompts.length; i++) {
                    assertThat(futures.get(i).get()).as("prompt %d", i).isEqualTo(expected.get(i));
                }
            } finally {
                threads.shutdownNow();
            }
            assertThat(executor.stats().steps()).as("the long prompt took several steps")
                    .isGreaterThan(150 / 12);
        }
    }

    /// The logits after every token (a perplexity run) are those of a session of its own, to rounding; and the
    /// executor's own are the same alone and next to a generating session.
    @Test
    void everyPositionsLogitsMatchASessionOfItsOwn() throws Exception {
        int[] tokens = model.tokenizer().encode("Once upon a time there was a little girl. She liked to play.");
        int vocab = model.config().vocabSize();
        float[][] plain = new float[tokens.length][];
        try (Session s = model.newSession(128)) {
            s.ingest(tokens, (i, logits) -> plain[i] = logits.clone());
        }
        float[][] batched = new float[tokens.length][];
        float[][] batchedBusy = new float[tokens.length][];
        try (BatchExecutor executor = model.newBatchExecutor(8, 4)) {
            try (Session s = executor.newSession(128)) {
                s.ingest(tokens, (i, logits) -> batched[i] = logits.clone());
            }
            Thread other = Thread.ofPlatform().start(() -> {
                try (Session s = executor.newSession(256)) {
                    s.generate("The little dog", 100, Sampler.greedy(), t -> { });
                }
            });
            try (Session s = executor.newSession(128)) {
                s.ingest(tokens, (i, logits) -> batchedBusy[i] = logits.clone());
            }
            other.join();
        }
        for (int i = 0; i < tokens.length; i++) {
            assertThat(batchedBusy[i]).as("position %d", i).isEqualTo(batched[i]);
            for (int v = 0; v < vocab; v++) {
                // other kernels, other summation orders: measured up to 0.0023 on logits of magnitude ~1-10
                assertThat(batched[i][v]).as("position %d token %d", i, v).isCloseTo(plain[i][v], within(1e-2f));
            }
        }
    }

    /// A continuation with no new prompt tokens (the context already holds them) has nothing to submit first.
    @Test
    void generatingWithoutNewPromptTokensContinuesTheContext() {
        int[] prompt = model.tokenizer().encode("Once upon a time");
        String plainGreedy;
        try (BatchExecutor executor = model.newBatchExecutor()) {
            try (Session s = executor.newSession(128)) {
                plainGreedy = s.generate(prompt, 20, Sampler.greedy(), t -> { }).text();
            }
            try (Session s = executor.newSession(128)) {
                s.ingest(prompt);
                assertThat(s.generate(new int[0], 20, Sampler.greedy(), List.of(), t -> { }, null).text())
                        .isEqualTo(plainGreedy);
            }
        }
    }

    @Test
    void aClosedExecutorRefusesWork() {
        BatchExecutor executor = model.newBatchExecutor();
        Session s = executor.newSession(64);
        executor.close();
        assertThatThrownBy(() -> executor.newSession(64)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThatThrownBy(() -> s.ingest(1, 2, 3)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        s.close();
        assertThatThrownBy(() -> model.newBatchExecutor(0, 4)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> model.newBatchExecutor(8, -1)).isInstanceOf(IllegalArgumentException.class);
    }
}
