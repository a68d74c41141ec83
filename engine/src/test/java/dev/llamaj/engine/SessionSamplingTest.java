package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.SharedData;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// A session with the sampler's constraint, log-probabilities and shared prompts, on stories260K.
class SessionSamplingTest {
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
    void aConstraintForcesTheTextAndEndsTheGeneration() {
        int[] forced = model.tokenizer().encode(" The cat sat on a red hat.");
        int eos = model.tokenizer().vocabulary().eos();
        try (Session s = model.newSession(256)) {
            Sampler sampler = Sampler.create(Sampler.Settings.defaults(3), new FixedSequence(eos, forced));
            Completion c = s.generate(s.encode("Once upon a time"), 100, sampler, List.of(), _ -> {}, null);
            // the tokenizer's space prefix is part of the forced tokens' text
            assertThat(c.text()).isEqualTo(new String(concatBytes(forced), java.nio.charset.StandardCharsets.UTF_8))
                    .endsWith(" The cat sat on a red hat.");
            assertThat(c.generatedTokens()).isEqualTo(forced.length);
            assertThat(c.stopReason()).isEqualTo(Completion.StopReason.END_OF_GENERATION);
            assertThat(c.minLogprob()).isEqualTo(0f); // each forced token was the only one allowed
        }
    }

    @Test
    void listenerSeesEveryTokenWithItsLogprobBeforeItsText() {
        try (Session s = model.newSession(256)) {
            List<Completion.Token> tokens = new ArrayList<>();
            StringBuilder text = new StringBuilder();
            List<Integer> tokensBeforeText = new ArrayList<>();
            Sampler sampler = Sampler.create(Sampler.Settings.defaults(8)).topLogprobs(3);
            Completion c = s.generate(s.encode("Lily liked"), 30, sampler, List.of(), piece -> {
                text.append(piece);
                tokensBeforeText.add(tokens.size());
            }, tokens::add);
            assertThat(tokens).hasSize(c.generatedTokens());
            int[] ids = tokens.stream().mapToInt(Completion.Token::id).toArray();
            assertThat(text.toString()).isEqualTo(c.text());
            assertThat(new String(concatBytes(ids), java.nio.charset.StandardCharsets.UTF_8)).isEqualTo(c.text());
            assertThat(tokensBeforeText.getFirst()).isPositive();
            double sum = 0;
            float min = 0;
            for (Completion.Token t : tokens) {
                assertThat(t.logprob()).isLessThanOrEqualTo(0f);
                assertThat(t.top()).isNotEmpty().hasSizeLessThanOrEqualTo(3);
                assertThat(t.top().getFirst().logprob()).isGreaterThanOrEqualTo(t.logprob());
                sum += t.logprob();
                min = Math.min(min, t.logprob());
            }
            assertThat(c.logprobSum()).isCloseTo(sum, within(1e-9));
            assertThat(c.minLogprob()).isEqualTo(min);
            assertThat(c.meanLogprob()).isCloseTo(sum / tokens.size(), within(1e-9));
            assertThat(c.meanLogprob()).isNegative();
        }
    }

    @Test
    void greedyLogprobsMatchTheLogitsOfAFreshSession() {
        // the logprob of each greedy token is log softmax of the model's logits at that position
        int[] prompt;
        List<Completion.Token> tokens = new ArrayList<>();
        try (Session s = model.newSession(128)) {
            prompt = s.encode("Tom saw a bird");
            s.generate(prompt, 8, Sampler.greedy(), List.of(), _ -> {}, tokens::add);
        }
        try (Session s = model.newSession(128)) {
            s.ingest(prompt);
            for (Completion.Token t : tokens) {
                float[] l = s.logits();
                double max = Double.NEGATIVE_INFINITY;
                for (float v : l) {
                    max = Math.max(max, v);
                }
                double sum = 0;
                for (float v : l) {
                    sum += Math.exp(v - max);
                }
                assertThat(t.logprob()).isCloseTo((float) (l[t.id()] - max - Math.log(sum)), within(1e-5f));
                s.ingest(t.id());
            }
        }
    }

    @Test
    void aCopiedSessionContinuesExactlyAsTheOriginal() {
        try (Session a = model.newSession(256); Session b = model.newSession(300)) {
            int[] prompt = a.encode("Once upon a time, there was a little dog named Max. Max liked");
            a.ingest(prompt);
            b.copyFrom(a);
            assertThat(b.tokens()).isEqualTo(a.tokens());
            String fromA = a.generate(new int[0], 40, Sampler.greedy(), _ -> {}).text();
            String fromB = b.generate(new int[0], 40, Sampler.greedy(), _ -> {}).text();
            assertThat(fromB).isEqualTo(fromA).isNotEmpty();
            // copying after a generation carries the pending token too
            b.copyFrom(a);
            assertThat(b.tokens()).isEqualTo(a.tokens());
            assertThat(b.generate(new int[0], 10, Sampler.greedy(), _ -> {}).text())
                    .isEqualTo(a.generate(new int[0], 10, Sampler.greedy(), _ -> {}).text());
        }
    }

    @Test
    void copyingRefusesWhatCannotFit() {
        try (Session big = model.newSession(64); Session small = model.newSession(8)) {
            big.ingest(big.encode("Once upon a time there was a girl named Lily"));
            assertThatThrownBy(() -> small.copyFrom(big)).isInstanceOf(ContextLengthException.class)
                    .hasMessageContaining("only 8 fit");
        }
    }

    @Test
    void aBiasOutsideTheVocabularyIsRefusedBeforeAnythingRuns() {
        try (Session s = model.newSession(64)) {
            Sampler sampler = Sampler.create(Sampler.Settings.greedy().withLogitBias(java.util.Map.of(512, 1f)));
            assertThatThrownBy(() -> s.generate("Hi", 5, sampler, _ -> {}))
                    .hasMessageContaining("token 512 is outside the vocabulary");
            assertThat(s.position()).isZero();
        }
    }

    private static byte[] concatBytes(int[] ids) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int id : ids) {
            out.writeBytes(model.tokenizer().bytes(id));
        }
        return out.toByteArray();
    }
}
