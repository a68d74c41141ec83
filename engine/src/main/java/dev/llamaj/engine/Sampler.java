package dev.llamaj.engine;

import java.util.Arrays;
import java.util.SplittableRandom;

/// Chooses the next token from the logits.
///
/// The chain is llama.cpp's default order: repetition penalty over the last `repeatLastN` accepted tokens, then
/// top-k, top-p (nucleus) and min-p on the distribution at temperature 1, then temperature, then a draw from a
/// seeded generator, so the same seed and prompt give the same text. With temperature 0 the chain ends in
/// `argmax` after the penalty (greedy decoding). A sampler is stateful (its history and random generator) and
/// belongs to one session; it is not thread-safe.
public final class Sampler {

    /// Sampling settings; a value of 0 (or 1 for the penalty, top-p) disables a stage.
    ///
    /// @param temperature   0 for greedy; otherwise logits are divided by it
    /// @param topK          keep the k most likely tokens (0: all)
    /// @param topP          keep the smallest set whose probability reaches p (1: all)
    /// @param minP          drop tokens less likely than `minP` times the most likely one (0: none)
    /// @param repeatPenalty divide positive (multiply negative) logits of recent tokens by it (1: off)
    /// @param repeatLastN   how many recent tokens the penalty looks at
    /// @param seed          seed of the random generator
    public record Settings(float temperature, int topK, float topP, float minP, float repeatPenalty,
                           int repeatLastN, long seed) {
        public Settings {
            if (!(temperature >= 0) || !Float.isFinite(temperature)) {
                throw new IllegalArgumentException("temperature must be 0 or more, got " + temperature);
            }
            if (topK < 0) {
                throw new IllegalArgumentException("top-k must be 0 or more, got " + topK);
            }
            if (!(topP > 0 && topP <= 1)) {
                throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
            }
            if (!(minP >= 0 && minP <= 1)) {
                throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
            }
            if (!(repeatPenalty > 0) || !Float.isFinite(repeatPenalty)) {
                throw new IllegalArgumentException("repeat penalty must be positive, got " + repeatPenalty);
            }
            if (repeatLastN < 0) {
                throw new IllegalArgumentException("repeat-last-n must be 0 or more, got " + repeatLastN);
            }
        }

        /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repetition penalty.
        public static Settings defaults(long seed) {
            return new Settings(0.8f, 40, 0.95f, 0.05f, 1.0f, 64, seed);
        }

        public static Settings greedy() {
            return new Settings(0f, 0, 1f, 0f, 1f, 64, 0);
        }
    }

    private final Settings settings;
    private final SplittableRandom random;
    private final int[] history;
    private int historyCount;
    private int[] order = new int[0];
    private float[] probs = new float[0];

    private Sampler(Settings settings) {
        this.settings = settings;
        this.random = new SplittableRandom(settings.seed());
        this.history = new int[settings.repeatLastN()];
    }

    public static Sampler create(Settings settings) {
        return new Sampler(settings);
    }

    /// Always the most likely token.
    public static Sampler greedy() {
        return new Sampler(Settings.greedy());
    }

    public Settings settings() {
        return settings;
    }

    /// Records a token that became part of the text (prompt or generated), for the repetition penalty.
    public void accept(int token) {
        if (history.length == 0) {
            return;
        }
        if (historyCount < history.length) {
            history[historyCount++] = token;
        } else {
            System.arraycopy(history, 1, history, 0, history.length - 1);
            history[history.length - 1] = token;
        }
    }

    /// Forgets the accepted tokens (the random generator keeps its state).
    public void reset() {
        historyCount = 0;
    }

    /// Picks a token; `logits` may be modified (penalties are applied in place).
    public int sample(float[] logits) {
        applyPenalty(logits);
        if (settings.temperature() == 0) {
            return argmax(logits);
        }
        int n = candidates(logits);
        // probabilities at temperature 1 for top-p and min-p, as llama.cpp orders its chain
        softmax(logits, n, 1f);
        n = nucleus(n);
        softmax(logits, n, settings.temperature());
        double r = random.nextDouble();
        double cumulative = 0;
        for (int i = 0; i < n; i++) {
            cumulative += probs[i];
            if (r < cumulative) {
                return order[i];
            }
        }
        return order[n - 1];
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    private void applyPenalty(float[] logits) {
        float p = settings.repeatPenalty();
        if (p == 1f || historyCount == 0) {
            return;
        }
        // each distinct token is penalised once, however often it occurs
        int[] seen = Arrays.copyOf(history, historyCount);
        Arrays.sort(seen);
        for (int i = 0; i < seen.length; i++) {
            int t = seen[i];
            if ((i > 0 && seen[i - 1] == t) || t < 0 || t >= logits.length) {
                continue;
            }
            logits[t] = logits[t] > 0 ? logits[t] / p : logits[t] * p;
        }
    }

    /// Fills `order` with the candidate tokens sorted by descending logit (only the top k when top-k is set).
    private int candidates(float[] logits) {
        int vocab = logits.length;
        if (order.length < vocab) {
            order = new int[vocab];
            probs = new float[vocab];
        }
        int k = settings.topK() == 0 ? vocab : Math.min(settings.topK(), vocab);
        if (k == vocab) {
            Integer[] boxed = new Integer[vocab];
            for (int i = 0; i < vocab; i++) {
                boxed[i] = i;
            }
            Arrays.sort(boxed, (a, b) -> Float.compare(logits[b], logits[a]));
            for (int i = 0; i < vocab; i++) {
                order[i] = boxed[i];
            }
        } else {
            // insertion into a small sorted prefix: k is tens, the vocabulary is up to 10^5
            int count = 0;
            for (int t = 0; t < vocab; t++) {
                float v = logits[t];
                if (count == k && v <= logits[order[k - 1]]) {
                    continue;
                }
                int j = count < k ? count++ : k - 1;
                while (j > 0 && logits[order[j - 1]] < v) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = t;
            }
        }
        return k;
    }

    /// Top-p then min-p over the sorted probabilities; returns how many candidates remain.
    private int nucleus(int n) {
        if (settings.topP() < 1f) {
            double cumulative = 0;
            for (int i = 0; i < n; i++) {
                cumulative += probs[i];
                if (cumulative >= settings.topP()) {
                    n = i + 1;
                    break;
                }
            }
        }
        if (settings.minP() > 0f) {
            float threshold = probs[0] * settings.minP();
            int kept = 1;
            while (kept < n && probs[kept] >= threshold) {
                kept++;
            }
            n = kept;
        }
        return n;
    }

    /// Softmax of the first `n` candidates' logits at `temperature`, into `probs`.
    private void softmax(float[] logits, int n, float temperature) {
        float max = logits[order[0]];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double e = Math.exp((logits[order[i]] - max) / temperature);
            probs[i] = (float) e;
            sum += e;
        }
        for (int i = 0; i < n; i++) {
            probs[i] = (float) (probs[i] / sum);
        }
    }
}
