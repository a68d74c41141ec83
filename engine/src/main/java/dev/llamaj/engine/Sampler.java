package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Kernels;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/// Chooses the next token from the logits.
///
/// The chain, in order:
/// 1. **logit bias**: the caller's per-token additions (a bias of -100 or less bans the token);
/// 2. **penalties**: the repetition penalty over the last `repeatLastN` accepted tokens (prompt and generated, as
///    llama.cpp), then OpenAI's presence and frequency penalties over the tokens generated so far;
/// 3. **constraint**: an optional [TokenConstraint] (a grammar) masks the tokens that cannot come next;
/// 4. top-k, top-p (nucleus) and min-p on the distribution at temperature 1, then temperature, as llama.cpp
///    orders its default chain;
/// 5. a draw from a seeded generator, so the same seed and prompt give the same text. With temperature 0 the
///    chain ends in `argmax` after the mask (greedy decoding).
///
/// After each choice the sampler records the token as generated (for the presence and frequency penalties) and
/// passes it to the constraint, and it keeps the token's log-probability (and, if asked, the most likely
/// alternatives) for [Completion.Token]. Those log-probabilities are the ones of the distribution actually drawn
/// from: after bias, penalties, mask, top-k/top-p/min-p and temperature, renormalised over the tokens that
/// remained (the others have probability 0). For greedy decoding, which draws nothing, they are the softmax at
/// temperature 1 of the logits after bias, penalties and mask.
///
/// A sampler is stateful (its history, counts, constraint and random generator) and belongs to one generation
/// on one thread; it is not thread-safe. Per token it allocates nothing once its buffers have the vocabulary's
/// size.
public final class Sampler {

    /// A bias at or below this bans the token, as in OpenAI's API, where -100 "should result in a ban".
    public static final float BAN = -100f;

    /// The lowest log-probability reported: OpenAI's stand-in for a probability too small to represent.
    public static final float MIN_LOGPROB = -9999f;

    /// Sampling settings; a value of 0 (or 1 for the repetition penalty, top-p) disables a stage.
    ///
    /// @param temperature     0 for greedy; otherwise logits are divided by it
    /// @param topK            keep the k most likely tokens (0: all)
    /// @param topP            keep the smallest set whose probability reaches p (1: all)
    /// @param minP            drop tokens less likely than `minP` times the most likely one (0: none)
    /// @param repeatPenalty   divide positive (multiply negative) logits of recent tokens by it (1: off)
    /// @param repeatLastN     how many recent tokens the repetition penalty looks at
    /// @param seed            seed of the random generator
    /// @param presencePenalty subtracted once from the logit of every token generated so far (0: off)
    /// @param frequencyPenalty subtracted from the logit of a generated token once per time it was generated
    ///                        (0: off)
    /// @param logitBias       added to the logits of the given token ids before anything else; [#BAN] or less
    ///                        bans the token
    public record Settings(float temperature, int topK, float topP, float minP, float repeatPenalty,
                           int repeatLastN, long seed, float presencePenalty, float frequencyPenalty,
                           Map<Integer, Float> logitBias) {
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
            if (!Float.isFinite(presencePenalty)) {
                throw new IllegalArgumentException("presence penalty must be a finite number, got " + presencePenalty);
            }
            if (!Float.isFinite(frequencyPenalty)) {
                throw new IllegalArgumentException("frequency penalty must be a finite number, got "
                        + frequencyPenalty);
            }
            // sorted by token id, so that the order of the caller's map never changes the result
            TreeMap<Integer, Float> bias = new TreeMap<>();
            for (Map.Entry<Integer, Float> e : (logitBias == null ? Map.<Integer, Float>of() : logitBias).entrySet()) {
                Integer token = e.getKey();
                Float b = e.getValue();
                if (token == null || token < 0) {
                    throw new IllegalArgumentException("logit bias: token id must be 0 or more, got " + token);
                }
                if (b == null || Float.isNaN(b) || b == Float.POSITIVE_INFINITY) {
                    throw new IllegalArgumentException("logit bias of token " + token
                            + " must be a number or -infinity, got " + b);
                }
                bias.put(token, b);
            }
            logitBias = java.util.Collections.unmodifiableSortedMap(bias);
        }

        /// Settings without presence or frequency penalty and without logit bias.
        public Settings(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN,
                        long seed) {
            this(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, 0f, 0f, Map.of());
        }

        /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repetition penalty.
        public static Settings defaults(long seed) {
            return new Settings(0.8f, 40, 0.95f, 0.05f, 1.0f, 64, seed);
        }

        public static Settings greedy() {
            return new Settings(0f, 0, 1f, 0f, 1f, 64, 0);
        }

        /// These settings with OpenAI's presence and frequency penalties.
        public Settings withPenalties(float presence, float frequency) {
            return new Settings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, presence, frequency,
                    logitBias);
        }

        /// These settings with `bias` (token id to bias) in place of any earlier logit bias.
        public Settings withLogitBias(Map<Integer, Float> bias) {
            return new Settings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, presencePenalty,
                    frequencyPenalty, bias);
        }

        /// These settings with another seed (choice `i` of a request with several uses `seed + i`).
        public Settings withSeed(long newSeed) {
            return new Settings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, newSeed, presencePenalty,
                    frequencyPenalty, logitBias);
        }
    }

    /// Above this many candidates top-k sorts instead of inserting into a sorted prefix.
    private static final int INSERTION_LIMIT = 64;

    private final Settings settings;
    private final SplittableRandom random;
    private final TokenConstraint constraint;
    private final int[] biasTokens;
    private final float[] biasValues;
    private final boolean penalisesPresence;

    /// The last `repeatLastN` accepted tokens, oldest first.
    private final int[] history;
    private int historyCount;
    /// Per token: the step at which the repetition penalty last touched it, so each is penalised once per step.
    private int[] penalisedAt = new int[0];
    private int step;

    /// Per token: how often it was generated; `generatedDistinct` lists the tokens with a count, in first order.
    private int[] generatedCount = new int[0];
    private int[] generatedDistinct = new int[0];
    private int distinctCount;

    private int[] order = new int[0];
    private float[] probs = new float[0];
    private long[] sortKeys = new long[0];
    /// The whole vocabulary's softmax at temperature 1, when a stage needs it.
    private float[] distribution = new float[0];

    private int topLogprobs;
    private float lastLogprob = Float.NaN;
    private int lastTopCount;
    private int[] lastTopTokens = new int[0];
    private float[] lastTopLogprobs = new float[0];

    private Sampler(Settings settings, TokenConstraint constraint) {
        this.settings = settings;
        this.constraint = constraint;
        this.random = new SplittableRandom(settings.seed());
        this.history = new int[settings.repeatLastN()];
        this.biasTokens = new int[settings.logitBias().size()];
        this.biasValues = new float[biasTokens.length];
        int i = 0;
        for (Map.Entry<Integer, Float> e : settings.logitBias().entrySet()) {
            biasTokens[i] = e.getKey();
            biasValues[i++] = e.getValue() <= BAN ? Float.NEGATIVE_INFINITY : e.getValue();
        }
        this.penalisesPresence = settings.presencePenalty() != 0 || settings.frequencyPenalty() != 0;
    }

    public static Sampler create(Settings settings) {
        return new Sampler(settings, null);
    }

    /// A sampler whose choices `constraint` restricts (null: none). The constraint must be fresh: it follows this
    /// sampler's choices from now on.
    public static Sampler create(Settings settings, TokenConstraint constraint) {
        return new Sampler(settings, constraint);
    }

    /// Always the most likely token.
    public static Sampler greedy() {
        return new Sampler(Settings.greedy(), null);
    }

    public Settings settings() {
        return settings;
    }

    /// The constraint, or null.
    public TokenConstraint constraint() {
        return constraint;
    }

    /// Also keeps the `n` most likely alternatives of each choice (0, the default: only the chosen token's
    /// log-probability), for [#lastTopCount()] and [Completion.Token#top()].
    ///
    /// @return this sampler
    public Sampler topLogprobs(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("top log-probabilities must be 0 or more, got " + n);
        }
        this.topLogprobs = n;
        return this;
    }

    public int topLogprobs() {
        return topLogprobs;
    }

    /// Fails unless every token of the logit bias is below `vocabSize`.
    ///
    /// @throws IllegalArgumentException naming the first token id outside the vocabulary
    public void checkVocabulary(int vocabSize) {
        for (int t : biasTokens) {
            if (t >= vocabSize) {
                throw new IllegalArgumentException("logit bias: token " + t + " is outside the vocabulary (size "
                        + vocabSize + ")");
            }
        }
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

    /// Forgets the accepted and generated tokens (the random generator and the constraint keep their state).
    public void reset() {
        historyCount = 0;
        for (int i = 0; i < distinctCount; i++) {
            generatedCount[generatedDistinct[i]] = 0;
        }
        distinctCount = 0;
    }

    /// Picks a token, records it as generated and passes it to the constraint; returns -1 when no token may come
    /// next (the bias or the constraint ruled out every one). `logits` is modified (the chain works in place).
    public int sample(float[] logits) {
        prepare(logits.length);
        applyBias(logits);
        applyRepeatPenalty(logits);
        applyPresenceAndFrequency(logits);
        if (constraint != null) {
            constraint.mask(logits);
        }
        int token = settings.temperature() == 0 ? greedy(logits) : draw(logits);
        if (token >= 0) {
            generated(token);
        }
        return token;
    }

    // ---- speculative decoding ([Speculation]) ----
    //
    // A draft proposes a token x drawn from its distribution q; the target's distribution p (this chain's, the one
    // plain sampling draws from) accepts x with probability min(1, p(x) / q(x)) and otherwise draws from
    // normalize(max(0, p - q)). Whatever q is, the token that comes out follows p exactly (Leviathan et al. 2023,
    // "Fast Inference from Transformers via Speculative Decoding", appendix A.1). Greedy decoding is the limit
    // where p is one-hot on the argmax: the draft is accepted when it is the argmax.

    /// The distribution this chain would draw from after `logits` (bias, penalties, constraint, truncation,
    /// temperature), into `p` (every token of the vocabulary; 0 for the tokens cut), without drawing or
    /// recording anything; greedy settings give the one-hot distribution of the argmax. For a draft's proposal
    /// distribution. Returns the most likely token, or -1 when no token is possible (then `p` is all 0).
    /// `logits` is modified.
    int distribution(float[] logits, float[] p) {
        int vocab = logits.length;
        prepare(vocab);
        applyBias(logits);
        applyRepeatPenalty(logits);
        applyPresenceAndFrequency(logits);
        if (constraint != null) {
            constraint.mask(logits);
        }
        return finalDistribution(logits, p);
    }

    /// Draws a token from `p` (as [#distribution] filled it) with this sampler's generator and records it as
    /// generated; -1 if `p` is all 0.
    int draw(float[] p, int vocab) {
        int token = drawFrom(p, vocab, random.nextDouble());
        if (token >= 0) {
            generated(token);
        }
        return token;
    }

    /// The verifier's choice at one position: `draft` is the token proposed there, `q` the distribution it was
    /// drawn from (null: the proposal was deterministic, q one-hot on `draft`). Runs the chain on `logits` as
    /// [#sample] does; returns `draft` if accepted, otherwise a token drawn from the residual distribution (never
    /// `draft`), or -1 when no token is possible. Records the token, its log-probability and alternatives as
    /// [#sample] does, in the target distribution p. `p` is scratch of the vocabulary's size; `logits` is
    /// modified.
    int verify(float[] logits, int draft, float[] q, float[] p) {
        int vocab = logits.length;
        prepare(vocab);
        applyBias(logits);
        applyRepeatPenalty(logits);
        applyPresenceAndFrequency(logits);
        if (constraint != null) {
            constraint.mask(logits);
        }
        if (settings.temperature() == 0) { // p one-hot on the argmax: accepted if and only if it is the draft
            int token = greedy(logits);
            if (token >= 0) {
                generated(token);
            }
            return token;
        }
        if (finalDistribution(logits, p) < 0) {
            return -1;
        }
        float px = p[draft];
        float qx = q == null ? 1f : q[draft];
        int token;
        if (px > 0 && (px >= qx || random.nextDouble() * qx < px)) {
            token = draft;
        } else {
            // residual max(0, p - q): q is one-hot or a distribution; p(draft) < q(draft), so draft drops out
            double sum = 0;
            for (int t = 0; t < vocab; t++) {
                float r = p[t] - (q == null ? (t == draft ? 1f : 0f) : q[t]);
                r = r > 0 ? r : 0f;
                sum += r;
            }
            token = -1;
            if (sum > 0) {
                double target = random.nextDouble() * sum;
                double cumulative = 0;
                for (int t = 0; t < vocab; t++) {
                    float r = p[t] - (q == null ? (t == draft ? 1f : 0f) : q[t]);
                    if (r > 0 && t != draft) {
                        token = t; // the last possible token, should rounding leave the sum below the target
                        cumulative += r;
                        if (target < cumulative) {
                            break;
                        }
                    }
                }
            }
            if (token < 0) { // p equals q up to rounding: any draw from p is a draw from the residual's limit
                token = drawFrom(p, vocab, random.nextDouble());
            }
        }
        lastLogprob = log(p[token]);
        generated(token);
        return token;
    }

    /// The distribution drawn from, over the whole vocabulary into `p`, after the chain up to the mask has run on
    /// `logits`; also keeps the alternatives asked for. Returns the most likely token or -1 if none is possible.
    private int finalDistribution(float[] logits, float[] p) {
        int vocab = logits.length;
        Arrays.fill(p, 0, vocab, 0f);
        if (settings.temperature() == 0) {
            int best = greedy(logits);
            if (best >= 0) {
                p[best] = 1f;
            }
            return best;
        }
        if ((settings.topK() == 0 || settings.topK() >= vocab) && settings.topP() >= 1f && settings.minP() == 0f) {
            float inverse = 1f / settings.temperature();
            boolean any = false;
            for (int t = 0; t < vocab; t++) {
                p[t] = logits[t] * inverse;
                any |= logits[t] != Float.NEGATIVE_INFINITY;
            }
            if (!any) {
                Arrays.fill(p, 0, vocab, 0f);
                return -1;
            }
            Kernels.softmax(p, 0, vocab);
            int top = topByInsertion(logits, Math.max(1, Math.min(topLogprobs, vocab)));
            for (int i = 0; i < Math.min(top, topLogprobs); i++) {
                lastTopTokens[i] = order[i];
                lastTopLogprobs[i] = log(p[order[i]]);
            }
            lastTopCount = Math.min(top, topLogprobs);
            return order[0];
        }
        int n = candidates(logits);
        if (n == 0) {
            return -1;
        }
        n = nucleus(n);
        softmax(logits, n, settings.temperature());
        for (int i = 0; i < n; i++) {
            p[order[i]] = probs[i];
        }
        int top = Math.min(topLogprobs, n);
        for (int i = 0; i < top; i++) {
            lastTopTokens[i] = order[i];
            lastTopLogprobs[i] = log(probs[i]);
        }
        lastTopCount = top;
        return order[0];
    }

    /// The token at which the cumulative sum of `p` in token order passes `r` (in [0, 1)); -1 if `p` is all 0.
    private static int drawFrom(float[] p, int vocab, double r) {
        double cumulative = 0;
        int chosen = -1;
        for (int t = 0; t < vocab; t++) {
            if (p[t] > 0) {
                chosen = t; // the last possible token, should rounding leave the sum below r
                cumulative += p[t];
                if (r < cumulative) {
                    break;
                }
            }
        }
        return chosen;
    }

    /// The log-probability (natural logarithm) of the last token chosen, in the distribution drawn from (see the
    /// class comment); NaN before the first choice.
    public float lastLogprob() {
        return lastLogprob;
    }

    /// How many alternatives the last choice kept: [#topLogprobs(int)], or fewer when fewer tokens had a
    /// probability above 0.
    public int lastTopCount() {
        return lastTopCount;
    }

    /// The `i`-th most likely token of the last choice.
    public int lastTopToken(int i) {
        return lastTopTokens[i];
    }

    /// The log-probability of [#lastTopToken(int)].
    public float lastTopLogprob(int i) {
        return lastTopLogprobs[i];
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

    /// Sizes the per-token buffers to the vocabulary, once.
    private void prepare(int vocab) {
        if (order.length < vocab) {
            order = new int[vocab];
            probs = new float[vocab];
            sortKeys = new long[vocab];
            distribution = new float[vocab];
            if (settings.repeatPenalty() != 1f) {
                penalisedAt = new int[vocab];
            }
            if (penalisesPresence) {
                generatedCount = Arrays.copyOf(generatedCount, vocab);
                generatedDistinct = Arrays.copyOf(generatedDistinct, vocab);
            }
        }
        if (lastTopTokens.length < topLogprobs) {
            lastTopTokens = new int[topLogprobs];
            lastTopLogprobs = new float[topLogprobs];
        }
    }

    private void applyBias(float[] logits) {
        for (int i = 0; i < biasTokens.length; i++) {
            logits[biasTokens[i]] += biasValues[i];
        }
    }

    private void applyRepeatPenalty(float[] logits) {
        float p = settings.repeatPenalty();
        if (p == 1f || historyCount == 0) {
            return;
        }
        // each distinct token is penalised once, however often it occurs
        if (++step == 0) { // after 2^32 steps: forget the old marks
            Arrays.fill(penalisedAt, 0);
            step = 1;
        }
        for (int i = 0; i < historyCount; i++) {
            int t = history[i];
            if (t < 0 || t >= logits.length || penalisedAt[t] == step) {
                continue;
            }
            penalisedAt[t] = step;
            logits[t] = logits[t] > 0 ? logits[t] / p : logits[t] * p;
        }
    }

    /// OpenAI's definition: `logit -= count · frequency_penalty + (count > 0) · presence_penalty`.
    private void applyPresenceAndFrequency(float[] logits) {
        float presence = settings.presencePenalty();
        float frequency = settings.frequencyPenalty();
        for (int i = 0; i < distinctCount; i++) {
            int t = generatedDistinct[i];
            logits[t] -= generatedCount[t] * frequency + presence;
        }
    }

    private void generated(int token) {
        if (penalisesPresence && token < generatedCount.length) {
            if (generatedCount[token]++ == 0) {
                generatedDistinct[distinctCount++] = token;
            }
        }
        if (constraint != null) {
            constraint.accept(token);
        }
    }

    /// Greedy choice; the log-probabilities come from the softmax at temperature 1 over the whole vocabulary
    /// (the vectorised kernel: a scalar `Math.exp` per token tripled the cost of a greedy step on a 128K
    /// vocabulary).
    private int greedy(float[] logits) {
        int best = argmax(logits);
        float max = logits[best];
        if (max == Float.NEGATIVE_INFINITY || Float.isNaN(max)) {
            return -1;
        }
        System.arraycopy(logits, 0, distribution, 0, logits.length);
        Kernels.softmax(distribution, 0, logits.length); // masked tokens: exp(-inf) = 0
        lastLogprob = log(distribution[best]);
        int n = Math.min(topLogprobs, logits.length);
        if (n > 0) {
            n = topByInsertion(logits, n);
            for (int i = 0; i < n; i++) {
                lastTopTokens[i] = order[i];
                lastTopLogprobs[i] = log(distribution[order[i]]);
            }
        }
        lastTopCount = n;
        return best;
    }

    private static float log(double p) {
        return (float) Math.max(Math.log(p), MIN_LOGPROB);
    }

    /// Top-k, top-p, min-p, temperature, then a draw.
    private int draw(float[] logits) {
        if ((settings.topK() == 0 || settings.topK() >= logits.length) && settings.topP() >= 1f
                && settings.minP() == 0f) {
            return drawUntruncated(logits);
        }
        int n = candidates(logits);
        if (n == 0) {
            return -1;
        }
        n = nucleus(n);
        softmax(logits, n, settings.temperature());
        double r = random.nextDouble();
        double cumulative = 0;
        int chosen = n - 1;
        for (int i = 0; i < n; i++) {
            cumulative += probs[i];
            if (r < cumulative) {
                chosen = i;
                break;
            }
        }
        lastLogprob = log(probs[chosen]);
        int top = Math.min(topLogprobs, n);
        for (int i = 0; i < top; i++) {
            lastTopTokens[i] = order[i];
            lastTopLogprobs[i] = log(probs[i]);
        }
        lastTopCount = top;
        return order[chosen];
    }

    /// Nothing truncates the distribution (top-k 0, top-p 1, min-p 0): the draw walks the tempered softmax of the
    /// whole vocabulary in token order, which needs no sort (sorting 128K tokens cost 36 ms a step, more than a
    /// 1B model's forward pass); only the alternatives asked for are selected, by insertion.
    private int drawUntruncated(float[] logits) {
        int vocab = logits.length;
        float inverse = 1f / settings.temperature();
        boolean any = false;
        for (int t = 0; t < vocab; t++) {
            distribution[t] = logits[t] * inverse; // -inf stays -inf, and becomes probability 0
            any |= logits[t] != Float.NEGATIVE_INFINITY;
        }
        if (!any) {
            return -1;
        }
        Kernels.softmax(distribution, 0, vocab);
        double r = random.nextDouble();
        double cumulative = 0;
        int chosen = 0; // the best token has probability 1 / sum > 0, so some token is chosen below
        for (int t = 0; t < vocab; t++) {
            float p = distribution[t];
            if (p > 0) {
                chosen = t; // the last possible token, should rounding leave the sum below r
                cumulative += p;
                if (r < cumulative) {
                    break;
                }
            }
        }
        lastLogprob = log(distribution[chosen]);
        int top = topByInsertion(logits, Math.min(topLogprobs, vocab));
        for (int i = 0; i < top; i++) {
            lastTopTokens[i] = order[i];
            lastTopLogprobs[i] = log(distribution[order[i]]);
        }
        lastTopCount = top;
        return chosen;
    }

    /// Fills `order` with the candidates sorted by descending logit (masked tokens never among them) and `probs`
    /// with their probabilities at temperature 1; returns how many there are.
    ///
    /// Without top-k, sorting the whole vocabulary (10^5 tokens) would cost more than the rest of the chain: as
    /// min-p keeps only tokens within `ln(min-p)` of the best logit, the others are dropped before sorting, and
    /// the probabilities are normalised over the whole vocabulary so that top-p cuts where it would have on the
    /// full sort.
    private int candidates(float[] logits) {
        int vocab = logits.length;
        int k = settings.topK() == 0 ? vocab : Math.min(settings.topK(), vocab);
        if (k <= INSERTION_LIMIT && k < vocab) {
            int n = topByInsertion(logits, k);
            softmax(logits, n, 1f);
            return n;
        }
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        if (max == Float.NEGATIVE_INFINITY) {
            return 0;
        }
        float floor = k == vocab && settings.minP() > 0 ? max + (float) Math.log(settings.minP())
                : Float.NEGATIVE_INFINITY;
        int m = 0;
        for (int t = 0; t < vocab; t++) {
            float l = logits[t];
            if (l != Float.NEGATIVE_INFINITY && l >= floor) {
                sortKeys[m++] = sortKey(l, t);
            }
        }
        sort(sortKeys, 0, m);
        int n = Math.min(k, m);
        for (int i = 0; i < n; i++) {
            order[i] = (int) sortKeys[i];
        }
        if (k < vocab) {
            softmax(logits, n, 1f); // top-k renormalises over the k kept
        } else {
            System.arraycopy(logits, 0, distribution, 0, vocab);
            Kernels.softmax(distribution, 0, vocab);
            for (int i = 0; i < n; i++) {
                probs[i] = distribution[order[i]];
            }
        }
        return n;
    }

    /// Sorts `a[from, to)` ascending. `Arrays.sort` allocates on some sizes (hundreds of elements: measured 48
    /// to 384 bytes a call on JDK 25), this quicksort never does. Keys are distinct (each holds its token id),
    /// and the median of three keeps sorted runs from going quadratic; the recursion takes the smaller side, so
    /// the stack stays logarithmic.
    static void sort(long[] a, int from, int to) {
        while (to - from > 24) {
            int mid = (from + to) >>> 1;
            // median of three at a[mid], the smallest at a[from], the largest at a[to - 1]
            if (a[mid] < a[from]) {
                swap(a, mid, from);
            }
            if (a[to - 1] < a[from]) {
                swap(a, to - 1, from);
            }
            if (a[to - 1] < a[mid]) {
                swap(a, to - 1, mid);
            }
            long pivot = a[mid];
            int i = from;
            int j = to - 1;
            while (i <= j) {
                while (a[i] < pivot) {
                    i++;
                }
                while (a[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    swap(a, i++, j--);
                }
            }
            if (j - from < to - i) {
                sort(a, from, j + 1);
                from = i;
            } else {
                sort(a, i, to);
                to = j + 1;
            }
        }
        for (int i = from + 1; i < to; i++) {
            long v = a[i];
            int j = i - 1;
            while (j >= from && a[j] > v) {
                a[j + 1] = a[j];
                j--;
            }
            a[j + 1] = v;
        }
    }

    private static void swap(long[] a, int i, int j) {
        long t = a[i];
        a[i] = a[j];
        a[j] = t;
    }

    /// A long whose ascending order is descending `logit`, then ascending `token`.
    private static long sortKey(float logit, int token) {
        int bits = Float.floatToRawIntBits(logit);
        int ascending = bits ^ ((bits >> 31) & 0x7fffffff); // as an int, orders like the float
        return ((long) ~ascending << 32) | token;
    }

    /// The `k` highest finite logits into `order[0, n)`, highest first, by insertion into a sorted prefix (k is
    /// tens, the vocabulary up to 10^5); returns `n`, less than `k` when fewer tokens are not masked.
    private int topByInsertion(float[] logits, int k) {
        if (k == 0) {
            return 0;
        }
        int count = 0;
        for (int t = 0; t < logits.length; t++) {
            float v = logits[t];
            if (v == Float.NEGATIVE_INFINITY || (count == k && v <= logits[order[k - 1]])) {
                continue;
            }
            int j = count < k ? count++ : k - 1;
            while (j > 0 && logits[order[j - 1]] < v) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = t;
        }
        return count;
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
