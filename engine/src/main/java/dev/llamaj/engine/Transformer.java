package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Kernels;
import dev.llamaj.engine.kernel.Parallel;

/// The Llama forward pass: one token in, the next token's logits out.
///
/// Per layer: RMSNorm → Q, K, V projections → RoPE → store K, V at the position → causal grouped-query attention
/// over the cache → output projection → residual; then RMSNorm → SwiGLU feed-forward → residual. A final RMSNorm
/// and the classifier give the logits. The numerics follow ggml's CPU operators where the order of rounding
/// matters for reproducing llama.cpp token for token: RMSNorm sums squares in double, softmax exponentiates in
/// float and sums in double, attention scales scores by `1/sqrt(headSize)` inside the softmax, and RoPE angles
/// come from repeated float multiplication by `base^(-2/n)` (see [#ropeTable]).
///
/// Stateless apart from its arguments: one instance serves every session of a model.
final class Transformer {
    private final LlamaConfig config;
    private final Weights weights;

    Transformer(LlamaConfig config, Weights weights) {
        this.config = config;
        this.weights = weights;
    }

    /// Scratch buffers of one session, allocated once.
    static final class State {
        final float[] x;
        final float[] xb;
        final float[] xb2;
        final float[] q;
        final float[] k;
        final float[] v;
        final float[] hb;
        final float[] hb2;
        final float[] att;
        final float[] logits;
        final float[] ropeCos;
        final float[] ropeSin;
        final KVCache cache;
        final Parallel pool;

        State(LlamaConfig c, Weights w, int contextLength, Parallel pool) {
            x = new float[c.embeddingLength()];
            xb = new float[c.embeddingLength()];
            xb2 = new float[c.qDim()];
            q = new float[c.qDim()];
            k = new float[c.kvDim()];
            v = new float[c.kvDim()];
            hb = new float[c.feedForwardLength()];
            hb2 = new float[c.feedForwardLength()];
            att = new float[c.headCount() * contextLength];
            logits = new float[c.vocabSize()];
            int pairs = c.ropeDimensionCount() / 2;
            ropeCos = new float[contextLength * pairs];
            ropeSin = new float[contextLength * pairs];
            ropeTable(c, w.ropeFreqFactors(), contextLength, ropeCos, ropeSin);
            cache = new KVCache(c, contextLength);
            this.pool = pool;
        }
    }

    /// cos/sin of every rotation angle, as ggml's `rope_cache_init` computes them for the `llama` (normal) RoPE:
    /// `theta = pos`, then `theta *= base^(-2/n)` per pair, in float, divided by the pair's frequency factor.
    static void ropeTable(LlamaConfig c, float[] freqFactors, int contextLength, float[] cos, float[] sin) {
        int pairs = c.ropeDimensionCount() / 2;
        float thetaScale = (float) Math.pow(c.ropeFreqBase(), -2.0f / c.ropeDimensionCount());
        for (int pos = 0; pos < contextLength; pos++) {
            float theta = pos;
            for (int i = 0; i < pairs; i++) {
                float t = freqFactors != null ? theta / freqFactors[i] : theta;
                cos[pos * pairs + i] = (float) Math.cos(t);
                sin[pos * pairs + i] = (float) Math.sin(t);
                theta *= thetaScale;
            }
        }
    }

    /// Runs `token` at `pos` (all earlier positions are in the cache) and, if `logits`, fills `s.logits`.
    void forward(State s, int token, int pos, boolean logits) {
        LlamaConfig c = config;
        int dim = c.embeddingLength();
        int headSize = c.headSize();
        int kvDim = c.kvDim();
        int group = c.headCount() / c.headCountKv();
        float scale = (float) (1.0 / Math.sqrt(headSize));
        weights.tokenEmbedding().dequantizeRow(token, s.x, 0);

        for (int l = 0; l < c.blockCount(); l++) {
            Weights.Layer w = weights.layers()[l];
            Kernels.rmsNorm(s.xb, 0, s.x, 0, w.attnNorm(), dim, c.rmsNormEpsilon());
            Kernels.matVec(s.pool, w.wq(), s.xb, 0, s.q, 0);
            Kernels.matVec(s.pool, w.wk(), s.xb, 0, s.k, 0);
            Kernels.matVec(s.pool, w.wv(), s.xb, 0, s.v, 0);
            rope(s, s.q, c.headCount(), pos);
            rope(s, s.k, c.headCountKv(), pos);
            float[] keys = s.cache.keys[l];
            float[] values = s.cache.values[l];
            for (int i = 0; i < kvDim; i++) {
                keys[pos * kvDim + i] = KVCache.round(s.k[i]);
                values[pos * kvDim + i] = KVCache.round(s.v[i]);
            }
            for (int i = 0; i < s.q.length; i++) {
                s.q[i] = KVCache.round(s.q[i]);
            }

            int ctx = s.cache.contextLength;
            s.pool.forRange(c.headCount(), 1, (from, to) -> {
                for (int h = from; h < to; h++) {
                    int kvOffset = (h / group) * headSize;
                    int attOffset = h * ctx;
                    for (int t = 0; t <= pos; t++) {
                        s.att[attOffset + t] = Kernels.dot(s.q, h * headSize, keys, t * kvDim + kvOffset, headSize) * scale;
                    }
                    Kernels.softmax(s.att, attOffset, pos + 1);
                    for (int t = 0; t <= pos; t++) {
                        s.att[attOffset + t] = KVCache.round(s.att[attOffset + t]);
                    }
                    java.util.Arrays.fill(s.xb2, h * headSize, (h + 1) * headSize, 0f);
                    for (int t = 0; t <= pos; t++) {
                        Kernels.axpy(s.att[attOffset + t], values, t * kvDim + kvOffset, s.xb2, h * headSize, headSize);
                    }
                }
            });
            Kernels.matVec(s.pool, w.wo(), s.xb2, 0, s.xb, 0);
            add(s.x, s.xb, dim);

            Kernels.rmsNorm(s.xb, 0, s.x, 0, w.ffnNorm(), dim, c.rmsNormEpsilon());
            Kernels.matVec(s.pool, w.ffnGate(), s.xb, 0, s.hb, 0);
            Kernels.matVec(s.pool, w.ffnUp(), s.xb, 0, s.hb2, 0);
            Kernels.swiGlu(s.hb, s.hb2, c.feedForwardLength());
            Kernels.matVec(s.pool, w.ffnDown(), s.hb, 0, s.xb, 0);
            add(s.x, s.xb, dim);
        }
        if (logits) {
            Kernels.rmsNorm(s.x, 0, s.x, 0, weights.outputNorm(), dim, c.rmsNormEpsilon());
            Kernels.matVec(s.pool, weights.output(), s.x, 0, s.logits, 0);
        }
    }

    /// Rotates each head's leading `ropeDimensionCount` values in adjacent pairs (ggml's normal RoPE mode, which
    /// the GGUF converter prepares Llama's Q and K weights for).
    private void rope(State s, float[] vec, int heads, int pos) {
        int headSize = config.headSize();
        int pairs = config.ropeDimensionCount() / 2;
        int base = pos * pairs;
        for (int h = 0; h < heads; h++) {
            int o = h * headSize;
            for (int i = 0; i < pairs; i++) {
                float cos = s.ropeCos[base + i];
                float sin = s.ropeSin[base + i];
                float x0 = vec[o + 2 * i];
                float x1 = vec[o + 2 * i + 1];
                vec[o + 2 * i] = x0 * cos - x1 * sin;
                vec[o + 2 * i + 1] = x0 * sin + x1 * cos;
            }
        }
    }

    private static void add(float[] x, float[] y, int n) {
        for (int i = 0; i < n; i++) {
            x[i] += y[i];
        }
    }
}
