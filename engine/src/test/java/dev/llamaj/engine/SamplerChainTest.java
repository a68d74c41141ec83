package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/// The stages added around the top-k/top-p/min-p chain: logit bias, presence and frequency penalties, the
/// constraint hook, and the log-probabilities of the distribution actually drawn from.
class SamplerChainTest {
    private static final Sampler.Settings GREEDY = Sampler.Settings.greedy();

    private static float[] randomLogits(long seed, int n) {
        Random r = new Random(seed);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) r.nextGaussian() * 3;
        }
        return l;
    }

    private static Sampler.Settings sampling(float temperature, int topK, float topP, float minP, long seed) {
        return new Sampler.Settings(temperature, topK, topP, minP, 1f, 64, seed);
    }

    @Test
    void logitBiasBansAndForces() {
        float[] l = {3f, 2f, 1f, 0f};
        assertThat(Sampler.create(GREEDY.withLogitBias(Map.of(0, -100f))).sample(l.clone())).isEqualTo(1);
        assertThat(Sampler.create(GREEDY.withLogitBias(Map.of(0, Float.NEGATIVE_INFINITY))).sample(l.clone()))
                .isEqualTo(1);
        assertThat(Sampler.create(GREEDY.withLogitBias(Map.of(3, 100f))).sample(l.clone())).isEqualTo(3);
        // a mild bias shifts, it does not ban: 3 - 1.5 = 1.5 < 2
        assertThat(Sampler.create(GREEDY.withLogitBias(Map.of(0, -1.5f))).sample(l.clone())).isEqualTo(1);
    }

    @Test
    void aBannedTokenIsNeverDrawn() {
        float[] l = {2f, 2f, 2f, 2f};
        Sampler s = Sampler.create(sampling(1f, 0, 1f, 0f, 5).withLogitBias(Map.of(1, -100f, 2, -100f)));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 500; i++) {
            seen.add(s.sample(l.clone()));
        }
        assertThat(seen).containsExactlyInAnyOrder(0, 3);
    }

    @Test
    void banningEveryTokenLeavesNothingToChoose() {
        Map<Integer, Float> all = Map.of(0, -100f, 1, -100f);
        assertThat(Sampler.create(GREEDY.withLogitBias(all)).sample(new float[] {1f, 2f})).isEqualTo(-1);
        assertThat(Sampler.create(sampling(1f, 0, 1f, 0f, 1).withLogitBias(all)).sample(new float[] {1f, 2f}))
                .isEqualTo(-1);
        assertThat(Sampler.create(sampling(1f, 5, 1f, 0f, 1).withLogitBias(all)).sample(new float[] {1f, 2f}))
                .isEqualTo(-1);
    }

    @Test
    void presencePenaltyCountsATokenOnceFrequencyEveryTime() {
        float[] l = {3f, 1.5f};
        // presence 1: token 0 drops to 2 once and stays above 1.5
        Sampler presence = Sampler.create(GREEDY.withPenalties(1f, 0f));
        assertThat(IntStream.range(0, 4).map(i -> presence.sample(l.clone())).toArray()).containsExactly(0, 0, 0, 0);
        // frequency 1: 3, then 2, then 1 < 1.5
        Sampler frequency = Sampler.create(GREEDY.withPenalties(0f, 1f));
        assertThat(IntStream.range(0, 3).map(i -> frequency.sample(l.clone())).toArray()).containsExactly(0, 0, 1);
        // negative penalties encourage repetition
        Sampler negative = Sampler.create(GREEDY.withPenalties(-2f, 0f));
        float[] close = {1f, 1.1f};
        assertThat(IntStream.range(0, 3).map(i -> negative.sample(close.clone())).toArray())
                .containsExactly(1, 1, 1);
    }

    @Test
    void penaltiesLookOnlyAtGeneratedTokens() {
        // accept() records prompt tokens for the repetition penalty; presence and frequency ignore them
        Sampler s = Sampler.create(GREEDY.withPenalties(2f, 2f));
        s.accept(0);
        s.accept(0);
        assertThat(s.sample(new float[] {3f, 1.5f})).isEqualTo(0);
        s.reset();
        assertThat(s.sample(new float[] {3f, 1.5f})).isEqualTo(0); // the reset forgot the generated token
    }

    @Test
    void theConstraintMasksAfterBiasAndPenaltiesAndSeesEveryChoice() {
        FixedSequence c = new FixedSequence(9, 4, 2, 7);
        // the bias would force token 5, but the constraint has the last word
        Sampler s = Sampler.create(sampling(1f, 0, 1f, 0f, 3).withLogitBias(Map.of(5, 100f)), c);
        int[] out = IntStream.range(0, 4).map(i -> s.sample(randomLogits(i, 16))).toArray();
        assertThat(out).containsExactly(4, 2, 7, 9);
        assertThat(c.masks).isEqualTo(4);
        assertThat(c.isComplete()).isTrue();
        assertThat(s.lastLogprob()).isEqualTo(0f); // the only token allowed is certain
    }

    @Test
    void greedyLogprobsAreTheSoftmaxOfTheProcessedLogits() {
        float[] l = randomLogits(11, 200);
        Sampler s = Sampler.create(GREEDY.withLogitBias(Map.of(17, 4f))).topLogprobs(5);
        int token = s.sample(l.clone());
        float[] processed = l.clone();
        processed[17] += 4f;
        double[] logSoftmax = logSoftmax(processed, 1f);
        assertThat(s.lastLogprob()).isCloseTo((float) logSoftmax[token], within(1e-5f));
        Integer[] byLogit = sortedDescending(processed);
        assertThat(s.lastTopCount()).isEqualTo(5);
        for (int i = 0; i < 5; i++) {
            assertThat(s.lastTopToken(i)).isEqualTo(byLogit[i]);
            assertThat(s.lastTopLogprob(i)).isCloseTo((float) logSoftmax[byLogit[i]], within(1e-5f));
        }
        assertThat(s.lastTopToken(0)).isEqualTo(token);
    }

    @Test
    void sampledLogprobsAreThoseOfTheTruncatedTemperedDistribution() {
        // reference: sort, top-p and min-p at temperature 1, then softmax at the temperature over what is left
        for (long seed = 0; seed < 30; seed++) {
            float[] l = randomLogits(seed, 3000);
            float temperature = 0.7f;
            float topP = 0.9f;
            float minP = 0.02f;
            Sampler s = Sampler.create(sampling(temperature, 0, topP, minP, seed)).topLogprobs(3);
            int token = s.sample(l.clone());
            Integer[] byLogit = sortedDescending(l);
            double[] p1 = softmax(l, 1f);
            int n = 0;
            double cumulative = 0;
            while (n < byLogit.length) {
                cumulative += p1[byLogit[n]];
                n++;
                if (cumulative >= topP) {
                    break;
                }
            }
            int kept = 1;
            while (kept < n && p1[byLogit[kept]] >= p1[byLogit[0]] * minP) {
                kept++;
            }
            float[] survivors = new float[kept];
            for (int i = 0; i < kept; i++) {
                survivors[i] = l[byLogit[i]];
            }
            double[] logQ = logSoftmax(survivors, temperature);
            int rank = Arrays.asList(byLogit).indexOf(token);
            assertThat(rank).as("seed %d", seed).isBetween(0, kept - 1);
            assertThat(s.lastLogprob()).isCloseTo((float) logQ[rank], within(1e-4f));
            for (int i = 0; i < Math.min(3, kept); i++) {
                assertThat(s.lastTopToken(i)).isEqualTo(byLogit[i]);
                assertThat(s.lastTopLogprob(i)).isCloseTo((float) logQ[i], within(1e-4f));
            }
        }
    }

    @Test
    void untruncatedSamplingReportsTheTemperedSoftmax() {
        // top-k 0, top-p 1, min-p 0: no sort, the whole vocabulary at the temperature
        for (long seed = 0; seed < 20; seed++) {
            float[] l = randomLogits(seed, 5000);
            l[7] = Float.NEGATIVE_INFINITY; // masked: never drawn
            Sampler s = Sampler.create(sampling(0.6f, 0, 1f, 0f, seed)).topLogprobs(4);
            int token = s.sample(l.clone());
            assertThat(token).isNotEqualTo(7);
            double[] logQ = logSoftmax(l, 0.6f);
            assertThat(s.lastLogprob()).isCloseTo((float) logQ[token], within(1e-4f));
            Integer[] byLogit = sortedDescending(l);
            assertThat(s.lastTopCount()).isEqualTo(4);
            for (int i = 0; i < 4; i++) {
                assertThat(s.lastTopToken(i)).isEqualTo(byLogit[i]);
                assertThat(s.lastTopLogprob(i)).isCloseTo((float) logQ[byLogit[i]], within(1e-4f));
            }
        }
        assertThat(Sampler.create(sampling(1f, 0, 1f, 0f, 1)).sample(new float[] {Float.NEGATIVE_INFINITY}))
                .isEqualTo(-1);
    }

    @Test
    void drawsFollowTheReportedProbabilities() {
        float[] l = {1f, 0.5f, 0f, -0.5f, -40f};
        Sampler s = Sampler.create(sampling(1.3f, 0, 1f, 0f, 21)).topLogprobs(4);
        int[] counts = new int[l.length];
        int draws = 20000;
        for (int i = 0; i < draws; i++) {
            counts[s.sample(l.clone())]++;
        }
        for (int i = 0; i < 4; i++) {
            double p = Math.exp(s.lastTopLogprob(i));
            assertThat(counts[s.lastTopToken(i)] / (double) draws).isCloseTo(p, within(0.015));
        }
    }

    @Test
    void largeTopKSortsLikeTheInsertionPath() {
        // top-k above the insertion limit sorts: the same tokens and probabilities as a reference sort
        float[] l = randomLogits(5, 5000);
        Sampler s = Sampler.create(sampling(1f, 200, 1f, 0f, 1)).topLogprobs(200);
        s.sample(l.clone());
        Integer[] byLogit = sortedDescending(l);
        float[] top = new float[200];
        for (int i = 0; i < 200; i++) {
            top[i] = l[byLogit[i]];
        }
        double[] logQ = logSoftmax(top, 1f);
        assertThat(s.lastTopCount()).isEqualTo(200);
        for (int i = 0; i < 200; i++) {
            assertThat(s.lastTopToken(i)).isEqualTo(byLogit[i]);
            assertThat(s.lastTopLogprob(i)).isCloseTo((float) logQ[i], within(1e-4f));
        }
    }

    @Test
    void fewerAlternativesThanAskedWhenFewTokensRemain() {
        Sampler s = Sampler.create(sampling(1f, 0, 1f, 0f, 1), new FixedSequence(0, 3)).topLogprobs(5);
        s.sample(new float[] {1f, 2f, 3f, 4f});
        assertThat(s.lastTopCount()).isEqualTo(1);
        assertThat(s.lastTopToken(0)).isEqualTo(3);
    }

    @Test
    void rejectsInvalidNewSettings() {
        assertThatThrownBy(() -> GREEDY.withPenalties(Float.NaN, 0)).hasMessageContaining("presence penalty");
        assertThatThrownBy(() -> GREEDY.withPenalties(0, Float.POSITIVE_INFINITY))
                .hasMessageContaining("frequency penalty");
        assertThatThrownBy(() -> GREEDY.withLogitBias(Map.of(-1, 1f))).hasMessageContaining("token id");
        assertThatThrownBy(() -> GREEDY.withLogitBias(Map.of(1, Float.NaN))).hasMessageContaining("token 1");
        assertThatThrownBy(() -> GREEDY.withLogitBias(Map.of(1, Float.POSITIVE_INFINITY)))
                .hasMessageContaining("token 1");
        assertThatThrownBy(() -> Sampler.greedy().topLogprobs(-1)).hasMessageContaining("0 or more");
        assertThatThrownBy(() -> Sampler.create(GREEDY.withLogitBias(Map.of(600, 1f))).checkVocabulary(512))
                .hasMessage("logit bias: token 600 is outside the vocabulary (size 512)");
    }

    @Test
    void aWarmSamplerAllocatesNothingPerToken() {
        // every stage on: bias, all three penalties, the full-vocabulary path (top-k 0) and top log-probabilities;
        // then greedy. Rounds until one allocates nothing (the JIT may still be compiling), for up to 30 s.
        float[] logits = randomLogits(1, 32000);
        float[] work = new float[logits.length];
        for (Sampler.Settings settings : List.of(
                new Sampler.Settings(0.8f, 0, 0.95f, 0.05f, 1.1f, 64, 1).withPenalties(0.5f, 0.5f)
                        .withLogitBias(Map.of(3, -100f, 7, 2f)),
                new Sampler.Settings(0.8f, 0, 1f, 0f, 1f, 64, 1),
                Sampler.Settings.defaults(2),
                GREEDY.withPenalties(0.2f, 0.2f))) {
            Sampler s = Sampler.create(settings).topLogprobs(5);
            com.sun.management.ThreadMXBean bean =
                    (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
            long deadline = System.nanoTime() + 30_000_000_000L;
            long allocated;
            do {
                for (int i = 0; i < 300; i++) {
                    System.arraycopy(logits, 0, work, 0, work.length);
                    s.accept(s.sample(work));
                }
                long before = bean.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 50; i++) {
                    System.arraycopy(logits, 0, work, 0, work.length);
                    s.accept(s.sample(work));
                }
                allocated = bean.getCurrentThreadAllocatedBytes() - before;
            } while (allocated != 0 && System.nanoTime() < deadline);
            assertThat(allocated).as("bytes allocated by 50 warm steps with %s", settings).isZero();
        }
    }

    @Test
    void theSortOrdersLikeArraysSort() {
        Random r = new Random(3);
        for (int n : new int[] {0, 1, 2, 24, 25, 100, 1000, 20000}) {
            for (int kind = 0; kind < 3; kind++) {
                long[] a = new long[n];
                for (int i = 0; i < n; i++) {
                    // random, ascending, descending: the shapes a quicksort can trip on
                    a[i] = kind == 0 ? r.nextLong() : kind == 1 ? i : n - i;
                }
                long[] expected = a.clone();
                Arrays.sort(expected);
                Sampler.sort(a, 0, n);
                assertThat(a).as("n %d kind %d", n, kind).isEqualTo(expected);
            }
        }
    }

    private static Integer[] sortedDescending(float[] l) {
        Integer[] idx = new Integer[l.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, Comparator.comparingDouble((Integer i) -> -l[i]));
        return idx;
    }

    private static double[] softmax(float[] l, float temperature) {
        double[] ls = logSoftmax(l, temperature);
        return Arrays.stream(ls).map(Math::exp).toArray();
    }

    private static double[] logSoftmax(float[] l, float temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : l) {
            max = Math.max(max, v / (double) temperature);
        }
        double sum = 0;
        for (float v : l) {
            sum += Math.exp(v / (double) temperature - max);
        }
        double log = Math.log(sum) + max;
        double[] out = new double[l.length];
        for (int i = 0; i < l.length; i++) {
            out[i] = l[i] / (double) temperature - log;
        }
        return out;
    }
}
