package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.gguf.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class SessionTest {
    private static LlamaModel model;

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    @Test
    void promptLongerThanTheContextIsAClearError() {
        try (Session s = model.newSession(8)) {
            assertThatThrownBy(() -> s.generate("Once upon a time there was a little girl named Lily", 10,
                    Sampler.greedy(), _ -> {}))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageMatching("prompt is \\d+ tokens but only 8 fit in the context");
            assertThat(s.position()).isZero();
        }
    }

    @Test
    void stopsWhenTheContextIsFull() {
        try (Session s = model.newSession(16)) {
            Completion c = s.generate("Once upon a time", 100, Sampler.greedy(), _ -> {});
            assertThat(c.stopReason()).isEqualTo(Completion.StopReason.CONTEXT_FULL);
            assertThat(s.position()).isEqualTo(16);
            assertThat(c.promptTokens() + c.generatedTokens()).isEqualTo(16);
        }
    }

    @Test
    void continuingASessionEqualsOneLongGeneration() {
        String whole;
        try (Session s = model.newSession()) {
            whole = s.generate("The little dog", 40, Sampler.greedy(), _ -> {}).text();
        }
        try (Session s = model.newSession()) {
            String first = s.generate("The little dog", 15, Sampler.greedy(), _ -> {}).text();
            String rest = s.generate(new int[0], 25, Sampler.greedy(), _ -> {}).text();
            assertThat(first + rest).isEqualTo(whole);
            int promptWithBos = model.tokenizer().encode("The little dog").length + 1;
            assertThat(s.position()).isEqualTo(promptWithBos + 40);
        }
    }

    @Test
    void resetStartsOver() {
        try (Session s = model.newSession()) {
            String a = s.generate("Tom and Lily", 20, Sampler.greedy(), _ -> {}).text();
            s.reset();
            assertThat(s.position()).isZero();
            String b = s.generate("Tom and Lily", 20, Sampler.greedy(), _ -> {}).text();
            assertThat(b).isEqualTo(a);
        }
    }

    @Test
    void seededSamplingIsReproducible() {
        Sampler.Settings settings = Sampler.Settings.defaults(42);
        String a;
        String b;
        try (Session s = model.newSession()) {
            a = s.generate("Once upon a time", 50, Sampler.create(settings), _ -> {}).text();
        }
        try (Session s = model.newSession()) {
            b = s.generate("Once upon a time", 50, Sampler.create(settings), _ -> {}).text();
        }
        assertThat(a).isEqualTo(b).isNotEmpty();
    }

    @Test
    void cancelStopsGeneration() {
        try (Session s = model.newSession()) {
            Completion c = s.generate("Once upon a time", 100, Sampler.greedy(), _ -> s.cancel());
            assertThat(c.stopReason()).isEqualTo(Completion.StopReason.CANCELLED);
            assertThat(c.generatedTokens()).isLessThan(5);
        }
    }

    @Test
    void stopsAtAStopString() {
        try (Session s = model.newSession()) {
            StringBuilder streamed = new StringBuilder();
            Completion c = s.generate(s.encode("Once upon a time"), 100, Sampler.greedy(), java.util.List.of("Lily"),
                    streamed::append);
            assertThat(c.stopReason()).isEqualTo(Completion.StopReason.STOP_STRING);
            assertThat(c.text()).isEqualTo(", there was a little girl named ").isEqualTo(streamed.toString());
        }
    }

    @Test
    void tokensAndRewindLetACallerReuseAPrefix() {
        try (Session s = model.newSession()) {
            s.generate("Once upon a time", 10, Sampler.greedy(), _ -> {});
            int[] all = s.tokens();
            assertThat(all).hasSize(s.position());
            s.rewind(3);
            assertThat(s.tokens()).containsExactly(java.util.Arrays.copyOf(all, 3));
            assertThatThrownBy(() -> s.rewind(4)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void sessionsOnSeveralThreadsMatchSequentialResults() throws Exception {
        String[] prompts = {"Once upon a time", "Tom and Lily", "The little dog", "One day"};
        String[] sequential = new String[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            try (Session s = model.newSession()) {
                sequential[i] = s.generate(prompts[i], 40, Sampler.create(Sampler.Settings.defaults(i)), _ -> {}).text();
            }
        }
        String[] parallel = new String[prompts.length];
        Thread[] threads = new Thread[prompts.length];
        Throwable[] failures = new Throwable[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            int k = i;
            threads[i] = Thread.ofPlatform().start(() -> {
                try (Session s = model.newSession()) {
                    for (int round = 0; round < 3; round++) {
                        s.reset();
                        parallel[k] = s.generate(prompts[k], 40, Sampler.create(Sampler.Settings.defaults(k)), _ -> {})
                                .text();
                    }
                } catch (Throwable t) {
                    failures[k] = t;
                }
            });
        }
        for (Thread t : threads) {
            t.join();
        }
        assertThat(failures).containsOnlyNulls();
        assertThat(parallel).containsExactly(sequential);
    }

    @Test
    void closedSessionRefusesWork() {
        Session s = model.newSession();
        s.close();
        assertThatThrownBy(() -> s.generate("x", 1, Sampler.greedy(), _ -> {}))
                .isInstanceOf(IllegalStateException.class).hasMessage("the session is closed");
    }

    @Test
    void rejectsBadArguments() {
        assertThatThrownBy(() -> model.newSession(0)).isInstanceOf(IllegalArgumentException.class);
        try (Session s = model.newSession()) {
            assertThatThrownBy(() -> s.ingest(100_000)).hasMessageContaining("outside the vocabulary");
            assertThatThrownBy(() -> s.generate(new int[0], 5, Sampler.greedy(), _ -> {}))
                    .hasMessage("the prompt is empty");
        }
    }
}
