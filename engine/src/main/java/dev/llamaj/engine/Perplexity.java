package dev.llamaj.engine;

import dev.llamaj.tokenizer.Tokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Consumer;

/// Perplexity of a model on a text, computed exactly as llama.cpp's `llama-perplexity` does, and optionally how
/// far the model's next-token distributions are from a reference model's (KL divergence, top-1 agreement,
/// perplexity ratio): the usual way to measure what a quantization costs.
///
/// The method (llama.cpp's `perplexity()`):
///
/// ```
/// tokens = [BOS] + encode(text)                 (BOS only if the vocabulary adds it; the text as it is)
/// chunks = floor(tokens / n_ctx)                (the rest is dropped; --chunks may lower it)
/// chunk k = tokens[k*n_ctx .. (k+1)*n_ctx), its first token replaced by BOS, evaluated from an empty context
///
///   position   0   1  ...  first-1 | first  first+1 ...  n_ctx-2 | n_ctx-1        first = n_ctx / 2
///   logits     not scored (context)| predict tokens first+1 .. n_ctx-1
///                                                      n_ctx - first - 1 scored tokens per chunk
///
/// nll_i  = -log softmax(logits_i)[token_{i+1}]  (in double, after subtracting the maximum logit)
/// PPL    = exp(mean nll over all scored tokens so far)       printed after every chunk
/// ± PPL * sqrt((mean(nll²) - mean(nll)²) / (count - 1))      the standard error, llama.cpp's "Final estimate"
/// ```
///
/// With a reference model (same vocabulary), both models see the same chunks and, at every scored position:
///
/// - KL divergence `KL(P_ref ‖ P_model) = Σ p_ref (log p_ref − log p_model)`, averaged, with its standard error;
/// - top-1 agreement: how often the two models' most likely tokens are the same;
/// - the perplexity ratio `PPL(model) / PPL(reference) = exp(mean(nll_model − nll_ref))`, whose error is computed
///   from the per-token differences (so it accounts for the correlation of the two models' losses, as
///   llama.cpp's `ln(PPL(Q)/PPL(base))` does).
///
/// The reference's logits are held for a block of positions at a time (at most about 64 MiB), so memory stays
/// bounded whatever the vocabulary and context.
public final class Perplexity {
    /// Floats of reference logits kept at once (16 M floats = 64 MiB).
    private static final int REFERENCE_BLOCK_FLOATS = 16 << 20;

    private Perplexity() {}

    /// The running estimate after a chunk.
    ///
    /// @param chunk        1-based number of the chunk just scored
    /// @param chunks       how many chunks the run scores
    /// @param scoredTokens tokens scored so far
    /// @param perplexity   perplexity over all tokens scored so far
    /// @param uncertainty  its standard error (NaN while fewer than two tokens are scored)
    /// @param comparison   the comparison with the reference so far, or `null` without one
    /// @param elapsedNanos time since the run started
    public record Chunk(int chunk, int chunks, long scoredTokens, double perplexity, double uncertainty,
                        Comparison comparison, long elapsedNanos) {}

    /// How the model compares with a reference model over the scored tokens.
    ///
    /// @param meanKl                 mean KL divergence of the model's distribution from the reference's (nats)
    /// @param klUncertainty          standard error of the mean
    /// @param maxKl                  the largest per-token KL divergence
    /// @param top1Agreement          fraction of positions where both models' most likely token is the same
    /// @param top1Uncertainty        standard error of that fraction
    /// @param referencePerplexity    the reference model's perplexity on the same tokens
    /// @param referenceUncertainty   its standard error
    /// @param perplexityRatio        `PPL(model) / PPL(reference)`
    /// @param perplexityRatioUncertainty standard error of the ratio
    public record Comparison(double meanKl, double klUncertainty, double maxKl, double top1Agreement,
                             double top1Uncertainty, double referencePerplexity, double referenceUncertainty,
                             double perplexityRatio, double perplexityRatioUncertainty) {}

    /// The final result.
    ///
    /// @param tokens        tokens in the text (BOS included)
    /// @param contextLength tokens per chunk
    /// @param chunks        chunks scored
    /// @param scoredTokens  tokens scored in all
    /// @param perplexity    the final estimate
    /// @param uncertainty   its standard error
    /// @param perChunk      the running perplexity after each chunk
    /// @param comparison    the comparison with the reference, or `null` without one
    /// @param nanos         time the run took
    public record Result(int tokens, int contextLength, int chunks, long scoredTokens, double perplexity,
                         double uncertainty, double[] perChunk, Comparison comparison, long nanos) {
        public Result {
            perChunk = perChunk.clone();
        }

        @Override
        public double[] perChunk() {
            return perChunk.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Result r && tokens == r.tokens && contextLength == r.contextLength
                    && chunks == r.chunks && scoredTokens == r.scoredTokens
                    && Double.compare(perplexity, r.perplexity) == 0
                    && Double.compare(uncertainty, r.uncertainty) == 0 && Arrays.equals(perChunk, r.perChunk)
                    && Objects.equals(comparison, r.comparison) && nanos == r.nanos;
        }

        @Override
        public int hashCode() {
            return Objects.hash(tokens, contextLength, chunks, scoredTokens, perplexity, Arrays.hashCode(perChunk));
        }

        @Override
        public String toString() {
            return "Result[tokens=" + tokens + ", contextLength=" + contextLength + ", chunks=" + chunks
                    + ", scoredTokens=" + scoredTokens + ", perplexity=" + perplexity + ", uncertainty="
                    + uncertainty + ", perChunk=" + Arrays.toString(perChunk) + ", comparison=" + comparison
                    + ", nanos=" + nanos + "]";
        }
    }

    /// The tokens perplexity is computed on: the whole text, BOS in front if the vocabulary adds it, control-token
    /// text left as ordinary text (llama.cpp's `common_tokenize(ctx, text, true)`).
    public static int[] tokenize(LlamaModel model, String text) {
        Tokenizer tokenizer = model.tokenizer();
        int[] tokens = tokenizer.encode(text);
        if (!tokenizer.vocabulary().addBos()) {
            return tokens;
        }
        int[] withBos = new int[tokens.length + 1];
        withBos[0] = tokenizer.vocabulary().bos();
        System.arraycopy(tokens, 0, withBos, 1, tokens.length);
        return withBos;
    }

    /// How many chunks a run over `tokens` tokens scores: `floor(tokens / contextLength)`, at most `maxChunks`
    /// (negative: no limit).
    public static int chunkCount(int tokens, int contextLength, int maxChunks) {
        int n = tokens / contextLength;
        return maxChunks < 0 ? n : Math.min(n, maxChunks);
    }

    /// Computes the perplexity of `model` on `text`; see the class description.
    ///
    /// @param contextLength tokens per chunk (llama.cpp's `-c`), 4 or more
    /// @param maxChunks     score at most this many chunks; negative for all
    /// @param reference     a model to compare with (same vocabulary), or `null`
    /// @param onChunk       receives the running estimate after each chunk (on the calling thread)
    /// @throws IllegalArgumentException if the context is too small, the text has fewer than
    ///         `2 * contextLength` tokens (llama.cpp's rule), `maxChunks` is 0, or the reference's vocabulary
    ///         differs
    public static Result compute(LlamaModel model, String text, int contextLength, int maxChunks,
                                 LlamaModel reference, Consumer<Chunk> onChunk) {
        return compute(model, tokenize(model, text), contextLength, maxChunks, reference, onChunk);
    }

    /// Computes the perplexity of `model` on already tokenized text (BOS included if wanted).
    ///
    /// @throws IllegalArgumentException as [#compute(LlamaModel, String, int, int, LlamaModel, Consumer)]
    public static Result compute(LlamaModel model, int[] tokens, int contextLength, int maxChunks,
                                 LlamaModel reference, Consumer<Chunk> onChunk) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(onChunk, "onChunk");
        if (contextLength < 4) {
            throw new IllegalArgumentException("the context must be 4 tokens or more for perplexity, got "
                    + contextLength);
        }
        if (maxChunks == 0) {
            throw new IllegalArgumentException("the number of chunks must be 1 or more (or negative for all)");
        }
        if (tokens.length < 2L * contextLength) {
            throw new ContextLengthException("the text is " + tokens.length + " tokens but perplexity with a context of "
                    + contextLength + " needs at least " + 2L * contextLength + " (or a longer text)",
                    ContextLengthException.Remedy.SHORTER);
        }
        if (reference != null) {
            checkSameVocabulary(model, reference);
        }
        int chunks = chunkCount(tokens.length, contextLength, maxChunks);
        int first = contextLength / 2;
        int vocab = model.config().vocabSize();
        int bos = model.tokenizer().vocabulary().addBos() ? model.tokenizer().vocabulary().bos() : -1;

        Stats stats = new Stats();
        double[] perChunk = new double[chunks];
        long start = System.nanoTime();
        try (Session session = model.newSession(contextLength);
             Session refSession = reference != null ? reference.newSession(contextLength) : null) {
            int[] chunk = new int[contextLength];
            int block = Math.max(1, Math.min(contextLength - first - 1, REFERENCE_BLOCK_FLOATS / vocab));
            float[][] refLogits = reference != null ? new float[block][] : null;
            for (int c = 0; c < chunks; c++) {
                System.arraycopy(tokens, c * contextLength, chunk, 0, contextLength);
                if (bos >= 0) {
                    chunk[0] = bos;
                }
                // positions 0 .. first-1 are context only; the last position's logits predict nothing
                int[] context = Arrays.copyOfRange(chunk, 0, first);
                session.reset();
                session.ingest(context);
                if (refSession == null) {
                    int[] scored = Arrays.copyOfRange(chunk, first, contextLength - 1);
                    session.ingest(scored, (i, logits) -> stats.add(logits, chunk[first + i + 1]));
                } else {
                    refSession.reset();
                    refSession.ingest(context);
                    for (int from = first; from < contextLength - 1; from += block) {
                        int to = Math.min(from + block, contextLength - 1);
                        int[] part = Arrays.copyOfRange(chunk, from, to);
                        refSession.ingest(part, (i, logits) -> {
                            if (refLogits[i] == null) {
                                refLogits[i] = new float[vocab];
                            }
                            System.arraycopy(logits, 0, refLogits[i], 0, vocab);
                        });
                        int offset = from;
                        session.ingest(part, (i, logits) ->
                                stats.add(logits, refLogits[i], chunk[offset + i + 1]));
                    }
                }
                perChunk[c] = stats.perplexity();
                onChunk.accept(new Chunk(c + 1, chunks, stats.count, perChunk[c], stats.uncertainty(),
                        reference != null ? stats.comparison() : null, System.nanoTime() - start));
            }
        }
        return new Result(tokens.length, contextLength, chunks, stats.count, stats.perplexity(), stats.uncertainty(),
                perChunk, reference != null ? stats.comparison() : null, System.nanoTime() - start);
    }

    private static void checkSameVocabulary(LlamaModel model, LlamaModel reference) {
        Vocabulary a = model.tokenizer().vocabulary();
        Vocabulary b = reference.tokenizer().vocabulary();
        if (a.size() != b.size()) {
            throw new IllegalArgumentException("the reference model's vocabulary has " + b.size()
                    + " tokens but the model's " + a.size() + " (they must be the same vocabulary)");
        }
        for (int t = 0; t < a.size(); t++) {
            if (!a.piece(t).equals(b.piece(t))) {
                throw new IllegalArgumentException("the reference model's vocabulary differs from the model's at token "
                        + t + " ('" + b.piece(t) + "' vs '" + a.piece(t) + "')");
            }
        }
        if (a.addBos() != b.addBos() || (a.addBos() && a.bos() != b.bos())) {
            throw new IllegalArgumentException("the reference model adds BOS differently from the model");
        }
    }

    /// Log-softmax of `logits` in double precision, after subtracting the maximum (as llama.cpp does); returns
    /// `log sum exp(logits - max)` and leaves the maximum in `max[0]`.
    static double logSumExp(float[] logits, float[] max) {
        float m = logits[0];
        for (int i = 1; i < logits.length; i++) {
            m = Math.max(m, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            sum += Math.exp(logits[i] - m);
        }
        max[0] = m;
        return Math.log(sum);
    }

    /// Running sums over the scored tokens.
    private static final class Stats {
        long count;
        double nll;
        double nll2;
        // with a reference
        double refNll;
        double refNll2;
        double diff;
        double diff2;
        double kl;
        double kl2;
        double maxKl;
        long sameTop;
        private final float[] max = new float[1];
        private final float[] refMax = new float[1];

        void add(float[] logits, int target) {
            double lse = logSumExp(logits, max);
            double v = -(logits[target] - max[0] - lse);
            count++;
            nll += v;
            nll2 += v * v;
        }

        void add(float[] logits, float[] ref, int target) {
            double lse = logSumExp(logits, max);
            double refLse = logSumExp(ref, refMax);
            double v = -(logits[target] - max[0] - lse);
            double r = -(ref[target] - refMax[0] - refLse);
            double k = 0;
            int top = 0;
            int refTop = 0;
            for (int i = 0; i < logits.length; i++) {
                double lp = ref[i] - refMax[0] - refLse;
                double lq = logits[i] - max[0] - lse;
                k += Math.exp(lp) * (lp - lq);
                if (logits[i] > logits[top]) {
                    top = i;
                }
                if (ref[i] > ref[refTop]) {
                    refTop = i;
                }
            }
            k = Math.max(k, 0); // rounding can leave a tiny negative sum for identical distributions
            count++;
            nll += v;
            nll2 += v * v;
            refNll += r;
            refNll2 += r * r;
            diff += v - r;
            diff2 += (v - r) * (v - r);
            kl += k;
            kl2 += k * k;
            maxKl = Math.max(maxKl, k);
            sameTop += top == refTop ? 1 : 0;
        }

        double perplexity() {
            return Math.exp(nll / count);
        }

        double uncertainty() {
            return perplexity() * standardError(nll, nll2, count);
        }

        Comparison comparison() {
            double refPpl = Math.exp(refNll / count);
            double ratio = Math.exp(diff / count);
            double agreement = (double) sameTop / count;
            double agreementError = count > 1 ? Math.sqrt(agreement * (1 - agreement) / (count - 1)) : Double.NaN;
            return new Comparison(kl / count, standardError(kl, kl2, count), maxKl, agreement, agreementError,
                    refPpl, refPpl * standardError(refNll, refNll2, count), ratio,
                    ratio * standardError(diff, diff2, count));
        }

        /// Standard error of a mean from its sums, llama.cpp's way: `sqrt((mean(x²) - mean(x)²) / (n - 1))`,
        /// 0 when the variance comes out negative by rounding.
        static double standardError(double sum, double sum2, long n) {
            if (n < 2) {
                return Double.NaN;
            }
            double mean = sum / n;
            double variance = sum2 / n - mean * mean;
            return variance > 0 ? Math.sqrt(variance / (n - 1)) : 0;
        }
    }
}
