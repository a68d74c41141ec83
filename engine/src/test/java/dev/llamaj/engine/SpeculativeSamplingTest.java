package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/// The acceptance rule of sampled speculation: whatever the draft's distribution q, the tokens that come out of
/// [Sampler#verify] follow the sampler's own distribution p. Checked by a chi-square goodness-of-fit test against p
/// computed here independently of the sampler (softmax at the temperature, top-k cut), over enough draws that a
/// wrong rule is far outside the threshold; the seeds are fixed, so the test cannot flake. A rule that accepts
/// every draft, or forgets to remove q from the residual, is shown to fail the same check.
class SpeculativeSamplingTest {
    private static final int DRAWS = 200_000;
    /// The 99.9th percentile of chi-square with 5 degrees of freedom (6 tokens).
    private static final double CHI2_5_999 = 20.515;

    private static final float[] LOGITS = {2.0f, 1.2f, 0.3f, -0.5f, 1.7f, -1.5f};

    /// Softmax of `logits / temperature` over the `topK` highest (0: all).
    private static double[] expected(float temperature, int topK) {
        int n = LOGITS.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Float.compare(LOGITS[b], LOGITS[a]));
        int kept = topK == 0 ? n : topK;
        double max = LOGITS[order[0]];
        double sum = 0;
        double[] p = new double[n];
        for (int i = 0; i < kept; i++) {
            p[order[i]] = Math.exp((LOGITS[order[i]] - max) / temperature);
            sum += p[order[i]];
        }
        for (int i = 0; i < n; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /// Pearson's chi-square of `counts` against `p` over the tokens with p > 0; a count where p = 0 is infinite.
    private static double chiSquare(long[] counts, double[] p) {
        long total = 0;
        for (long c : counts) {
            total += c;
        }
        double chi = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) {
                if (counts[i] > 0) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            double e = p[i] * total;
            chi += (counts[i] - e) * (counts[i] - e) / e;
        }
        return chi;
    }

    /// A draft distribution quite unlike p: it favours the tokens p does not.
    private static final float[] Q = {0.05f, 0.05f, 0.3f, 0.3f, 0.1f, 0.2f};

    private static int drawFrom(float[] q, SplittableRandom random) {
        double r = random.nextDouble();
        double c = 0;
        for (int i = 0; i < q.length; i++) {
            c += q[i];
            if (r < c) {
                return i;
            }
        }
        return q.length - 1;
    }

    /// Token counts of `DRAWS` verifications of drafts from `q` (null: the deterministic draft `fixed`).
    private static long[] verifyCounts(Sampler.Settings settings, float[] q, int fixed) {
        Sampler sampler = Sampler.create(settings);
        SplittableRandom draftRandom = new SplittableRandom(99);
        long[] counts = new long[LOGITS.length];
        float[] logits = new float[LOGITS.length];
        float[] p = new float[LOGITS.length];
        for (int i = 0; i < DRAWS; i++) {
            System.arraycopy(LOGITS, 0, logits, 0, logits.length);
            int draft = q == null ? fixed : drawFrom(q, draftRandom);
            counts[sampler.verify(logits, draft, q, p)]++;
        }
        return counts;
    }

    @Test
    void verifiedDraftsFromAnotherDistributionFollowTheSamplersDistribution() {
        for (float temperature : new float[] {1f, 0.7f}) {
            Sampler.Settings untruncated = new Sampler.Settings(temperature, 0, 1f, 0f, 1f, 0, 7);
            assertThat(chiSquare(verifyCounts(untruncated, Q, -1), expected(temperature, 0)))
                    .as("temperature %s", temperature).isLessThan(CHI2_5_999);
            Sampler.Settings topK = new Sampler.Settings(temperature, 3, 1f, 0f, 1f, 0, 8);
            assertThat(chiSquare(verifyCounts(topK, Q, -1), expected(temperature, 3)))
                    .as("temperature %s, top-k 3", temperature).isLessThan(CHI2_5_999);
        }
    }

    @Test
    void verifiedDeterministicGuessesFollowTheSamplersDistribution() {
        // prompt lookup: q is one-hot on the guess, whether the guess is likely, unlikely or cut by top-k
        for (int guess : new int[] {0, 3, 5}) {
            Sampler.Settings settings = new Sampler.Settings(0.9f, 4, 1f, 0f, 1f, 0, 11 + guess);
            assertThat(chiSquare(verifyCounts(settings, null, guess), expected(0.9f, 4)))
                    .as("guess %d", guess).isLessThan(CHI2_5_999);
        }
    }

    @Test
    void theCheckRejectsWrongAcceptanceRules() {
        // accepting every draft gives q; a residual that forgets to subtract q over-weights the draft's favourites
        SplittableRandom random = new SplittableRandom(5);
        double[] p = expected(1f, 0);
        long[] alwaysAccept = new long[LOGITS.length];
        long[] plainResidual = new long[LOGITS.length];
        for (int i = 0; i < DRAWS; i++) {
            int x = drawFrom(Q, random);
            alwaysAccept[x]++;
            if (random.nextDouble() < Math.min(1, p[x] / Q[x])) {
                plainResidual[x]++;
            } else {
                float[] pf = new float[p.length];
                for (int t = 0; t < p.length; t++) {
                    pf[t] = (float) p[t];
                }
                plainResidual[drawFrom(pf, random)]++; // wrong: p instead of normalize(max(0, p - q))
            }
        }
        assertThat(chiSquare(alwaysAccept, p)).isGreaterThan(100 * CHI2_5_999);
        assertThat(chiSquare(plainResidual, p)).isGreaterThan(10 * CHI2_5_999);
    }

    @Test
    void greedyVerificationAcceptsExactlyTheArgmax() {
        Sampler sampler = Sampler.greedy();
        float[] p = new float[LOGITS.length];
        for (int draft = 0; draft < LOGITS.length; draft++) {
            float[] logits = LOGITS.clone();
            assertThat(sampler.verify(logits, draft, null, p)).isEqualTo(0);
        }
    }

    /// End to end on stories260K: the second generated token (the first one a round decides) of sampled
    /// speculative generation with a random-weight draft, over many seeds, against plain sampled generation's.
    /// A two-sample chi-square over the tokens seen at least 10 times in either, the rest pooled.
    @Test
    void sampledSpeculativeGenerationFollowsPlainSampling() throws Exception {
        int seeds = 3000;
        try (LlamaModel model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
             LlamaModel random = LlamaModel.load(SharedData.require("archs/models/qwen2-f32.gguf"), 1);
             Session s = model.newSession(64); Session draft = random.newSession(64)) {
            int vocab = model.config().vocabSize();
            long[][] counts = new long[2][vocab];
            Speculation[] sources = {null, Speculation.draftModel(draft, 2)};
            int[] prompt = s.encode("Lily wanted to");
            for (int k = 0; k < 2; k++) {
                for (int seed = 0; seed < seeds; seed++) {
                    s.reset();
                    // top-k 0: the draft's guesses fall anywhere, so the residual is exercised
                    Sampler sampler = Sampler.create(new Sampler.Settings(1f, 0, 1f, 0f, 1f, 0, 1000L * k + seed));
                    int[] second = {-1};
                    int[] index = {0};
                    s.generate(prompt, 3, sampler, List.of(), _ -> {}, t -> {
                        if (index[0]++ == 1) {
                            second[0] = t.id();
                        }
                    }, sources[k]);
                    if (second[0] >= 0) {
                        counts[k][second[0]]++;
                    }
                }
            }
            assertThat(sources[1].drafted()).isPositive();
            assertThat(sources[1].acceptanceRate()).isLessThan(0.5); // the residual decided most tokens
            // two-sample chi-square, pooled categories
            double chi = 0;
            int df = -1;
            long restA = 0;
            long restB = 0;
            long na = 0;
            long nb = 0;
            for (int t = 0; t < vocab; t++) {
                na += counts[0][t];
                nb += counts[1][t];
            }
            for (int t = 0; t < vocab; t++) {
                long a = counts[0][t];
                long b = counts[1][t];
                if (a + b < 20) {
                    restA += a;
                    restB += b;
                    continue;
                }
                chi += twoSample(a, b, na, nb);
                df++;
            }
            if (restA + restB > 0) {
                chi += twoSample(restA, restB, na, nb);
                df++;
            }
            assertThat(df).isGreaterThan(3);
            // 99.9th percentile of chi-square: Wilson-Hilferty approximation
            double z = 3.09;
            double h = 2.0 / (9 * df);
            double threshold = df * Math.pow(1 - h + z * Math.sqrt(h), 3);
            assertThat(chi).as("chi-square with %d degrees of freedom", df).isLessThan(threshold);
        }
    }

    private static double twoSample(long a, long b, long na, long nb) {
        double k1 = Math.sqrt((double) nb / na);
        double k2 = Math.sqrt((double) na / nb);
        double d = k1 * a - k2 * b;
        return d * d / (a + b);
    }
}
