package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Attention;
import dev.llamaj.engine.kernel.Kernels;
import dev.llamaj.engine.kernel.Matrix;
import dev.llamaj.engine.kernel.Parallel;

/// The Llama forward pass, one token at a time ([#forward], generation) or a batch of tokens at once
/// ([#forwardBatch], prompt processing).
///
/// Per layer: RMSNorm → Q, K, V projections → RoPE → store K, V at the position (rounded to half precision, as
/// llama.cpp's default F16 cache; the query and the softmax weights too, see [Attention]) → causal grouped-query
/// attention over the cache → output projection → residual; then RMSNorm → SwiGLU feed-forward → residual. A final RMSNorm
/// and the classifier give the logits. The numerics follow ggml's CPU operators where the order of rounding
/// matters for reproducing llama.cpp token for token: RMSNorm sums squares in double, softmax exponentiates in
/// float and sums in double, attention scales scores by `1/sqrt(headSize)` inside the softmax, and RoPE angles
/// come from repeated float multiplication by `base^(-2/n)` (see [#ropeTable]).
///
/// A batch runs the same steps with matrix-matrix products ([Kernels#matMul]) over activations in the tiled
/// layout (`Kernels.TILE` tokens per tile, feature-major inside a tile); the keys and values of every position
/// of the batch are stored before attention, which is causal inside the batch. Results are independent of the
/// thread count; a batch's rounding differs slightly from token-at-a-time processing (another summation order).
///
/// Stateless apart from its arguments: one instance serves every session of a model.
final class Transformer {
    /// Most tokens per batch (a multiple of the tile; more tokens are processed in several batches).
    static final int MAX_BATCH = Math.max(Kernels.TILE,
            Integer.getInteger("llamaj.batch", 512) / Kernels.TILE * Kernels.TILE);
    private final LlamaConfig config;
    private final Weights weights;
    private final int minBatch;

    Transformer(LlamaConfig config, Weights weights) {
        this.config = config;
        this.weights = weights;
        Integer forced = Integer.getInteger("llamaj.minBatch");
        this.minBatch = forced != null ? Math.max(1, forced) : minBatch(weights);
    }

    /// Fewest tokens worth a batch. A batch costs about the same from 1 to 16 tokens (every weight is dequantized
    /// once per product: ~0.3 s for a 1B model), one token at a time costs the bytes of the weights over the memory
    /// bandwidth per token: so the break-even is inversely proportional to the bytes per weight. Measured on the
    /// 2-core test machine, 1B shapes: ~10 tokens for `Q4_0`, ~8 for `Q8_0`, ~7 for `Q4_K_M`, 3-4 for `F16`/`BF16`;
    /// `7 / bytes per weight` follows that.
    static int minBatch(Weights w) {
        long params = 0;
        long bytes = 0;
        for (Weights.Layer l : w.layers()) {
            for (dev.llamaj.engine.kernel.Matrix m : java.util.List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.ffnGate(),
                    l.ffnUp(), l.ffnDown())) {
                params += (long) m.rows() * m.cols();
                bytes += m.rowBytes() * m.rows();
            }
        }
        double perWeight = params == 0 ? 1 : (double) bytes / params;
        return (int) Math.max(2, Math.min(16, Math.round(7 / perWeight)));
    }

    /// Fewest tokens that [#forwardBatch] processes faster than [#forward] one at a time.
    int minBatch() {
        return minBatch;
    }

    /// Receives the logits of one token of a batch (in the session's `logits` array).
    @FunctionalInterface
    interface TokenLogits {
        void accept(int index);
    }

    /// Scratch buffers of one session, allocated once (the batch buffers on first use).
    static final class State {
        final LlamaConfig config;
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
        /// cos/sin of RoPE angle for pair `i` at position `p`: `[i · ropeStride + p]`.
        final float[] ropeCos;
        final float[] ropeSin;
        final int ropeStride;
        final KVCache cache;
        final Parallel pool;
        final AttentionTask attention;
        Batch batch;

        State(LlamaConfig c, Weights w, int contextLength, Parallel pool) {
            this.config = c;
            cache = new KVCache(c, contextLength);
            x = new float[c.embeddingLength()];
            xb = new float[c.embeddingLength()];
            xb2 = new float[c.qDim()];
            q = new float[c.qDim()];
            k = new float[c.kvDim()];
            v = new float[c.kvDim()];
            hb = new float[c.feedForwardLength()];
            hb2 = new float[c.feedForwardLength()];
            att = new float[c.headCount() * cache.paddedLength];
            logits = new float[c.vocabSize()];
            int pairs = c.ropeDimensionCount() / 2;
            ropeStride = contextLength + Kernels.TILE;
            ropeCos = new float[Math.max(1, pairs) * ropeStride];
            ropeSin = new float[Math.max(1, pairs) * ropeStride];
            ropeTable(c, w.ropeFreqFactors(), ropeStride, ropeCos, ropeSin);
            this.pool = pool;
            this.attention = new AttentionTask(c, cache, pool.threads());
        }

        Batch batch() {
            if (batch == null) {
                batch = new Batch(config, Math.min(MAX_BATCH, roundUp(cache.contextLength, Kernels.TILE)));
            }
            return batch;
        }
    }

    /// The activations of a batch, in the tiled layout.
    static final class Batch {
        final int capacity;
        final float[] x;
        final float[] xb;
        final float[] xb2;
        final float[] q;
        final float[] k;
        final float[] v;
        final float[] hb;
        final float[] hb2;
        final float[] row;
        float[] logitsTile;

        Batch(LlamaConfig c, int capacity) {
            this.capacity = capacity;
            x = new float[Kernels.tiledSize(c.embeddingLength(), capacity)];
            xb = new float[Kernels.tiledSize(c.embeddingLength(), capacity)];
            xb2 = new float[Kernels.tiledSize(c.qDim(), capacity)];
            q = new float[Kernels.tiledSize(c.qDim(), capacity)];
            k = new float[Kernels.tiledSize(c.kvDim(), capacity)];
            v = new float[Kernels.tiledSize(c.kvDim(), capacity)];
            hb = new float[Kernels.tiledSize(c.feedForwardLength(), capacity)];
            hb2 = new float[Kernels.tiledSize(c.feedForwardLength(), capacity)];
            row = new float[Math.max(c.embeddingLength(), c.qDim())];
        }
    }

    static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    /// cos/sin of every rotation angle, as ggml's `rope_cache_init` computes them for the `llama` (normal) RoPE:
    /// `theta = pos`, then `theta *= base^(-2/n)` per pair, in float, divided by the pair's frequency factor.
    /// Stored pair-major: `[i · positions + pos]`.
    static void ropeTable(LlamaConfig c, float[] freqFactors, int positions, float[] cos, float[] sin) {
        int pairs = c.ropeDimensionCount() / 2;
        float thetaScale = (float) Math.pow(c.ropeFreqBase(), -2.0f / c.ropeDimensionCount());
        for (int pos = 0; pos < positions; pos++) {
            float theta = pos;
            for (int i = 0; i < pairs; i++) {
                float t = freqFactors != null ? theta / freqFactors[i] : theta;
                cos[i * positions + pos] = (float) Math.cos(t);
                sin[i * positions + pos] = (float) Math.sin(t);
                theta *= thetaScale;
            }
        }
    }

    /// Runs `token` at `pos` (all earlier positions are in the cache) and, if `logits`, fills `s.logits`.
    void forward(State s, int token, int pos, boolean logits) {
        LlamaConfig c = config;
        int dim = c.embeddingLength();
        int kvDim = c.kvDim();
        int headSize = c.headSize();
        KVCache cache = s.cache;
        weights.tokenEmbedding().dequantizeRow(token, s.x, 0);

        for (int l = 0; l < c.blockCount(); l++) {
            Weights.Layer w = weights.layers()[l];
            Kernels.rmsNorm(s.xb, 0, s.x, 0, w.attnNorm(), dim, c.rmsNormEpsilon());
            Kernels.matVec3(s.pool, w.wq(), w.wk(), w.wv(), s.xb, 0, s.q, 0, s.k, 0, s.v, 0);
            rope(s, s.q, c.headCount(), pos);
            rope(s, s.k, c.headCountKv(), pos);
            // keys, values and the query at half precision, as llama.cpp's default F16 cache (see Attention)
            short[] keys = cache.keys[l];
            for (int h = 0; h < c.headCountKv(); h++) {
                Attention.storeKey(keys, h, pos, headSize, cache.paddedLength, s.k, h * headSize, 1);
            }
            Attention.storeValues(cache.values[l], pos * kvDim, s.v, 0, 1, kvDim);
            for (int i = 0; i < s.q.length; i++) {
                s.q[i] = Attention.half(s.q[i]);
            }

            s.attention.decode(s, l, pos);
            Kernels.matVec(s.pool, w.wo(), s.xb2, 0, s.xb, 0);
            Kernels.add(s.x, s.xb, dim);

            Kernels.rmsNorm(s.xb, 0, s.x, 0, w.ffnNorm(), dim, c.rmsNormEpsilon());
            Kernels.matVecSwiGlu(s.pool, w.ffnGate(), w.ffnUp(), s.xb, 0, s.hb, s.hb2);
            Kernels.matVec(s.pool, w.ffnDown(), s.hb, 0, s.xb, 0);
            Kernels.add(s.x, s.xb, dim);
        }
        if (logits) {
            Kernels.rmsNorm(s.x, 0, s.x, 0, weights.outputNorm(), dim, c.rmsNormEpsilon());
            Kernels.matVec(s.pool, weights.output(), s.x, 0, s.logits, 0);
        }
    }

    /// Runs `tokens[off .. off + n)` at positions `pos0 ..` (all earlier positions are in the cache), `n` at most
    /// the batch capacity. With `each` non-null, computes the logits of every token into `s.logits` and passes its
    /// index (`0 .. n-1`) to `each`; otherwise, if `last`, leaves the logits of the last token in `s.logits`.
    void forwardBatch(State s, int[] tokens, int off, int n, int pos0, boolean last, TokenLogits each) {
        LlamaConfig c = config;
        Batch b = s.batch();
        if (n < 1 || n > b.capacity) {
            throw new IllegalArgumentException("batch of " + n + " tokens, capacity " + b.capacity);
        }
        int dim = c.embeddingLength();
        int kvDim = c.kvDim();
        int qDim = c.qDim();
        int ff = c.feedForwardLength();
        int headSize = c.headSize();
        int tiles = (n + Kernels.TILE - 1) / Kernels.TILE;
        int pairs = c.ropeDimensionCount() / 2;
        float eps = c.rmsNormEpsilon();
        KVCache cache = s.cache;
        Parallel pool = s.pool;

        // embeddings, and zeros in the padding tokens of the last tile
        Matrix embedding = weights.tokenEmbedding();
        for (int t = 0; t < tiles * Kernels.TILE; t++) {
            if (t < n) {
                embedding.dequantizeRow(tokens[off + t], b.row, 0);
            } else {
                java.util.Arrays.fill(b.row, 0, dim, 0f);
            }
            scatter(b.row, b.x, dim, t);
        }

        for (int l = 0; l < c.blockCount(); l++) {
            Weights.Layer w = weights.layers()[l];
            Kernels.rmsNormTiled(b.xb, b.x, w.attnNorm(), dim, tiles, eps);
            Kernels.matMul(pool, w.wq(), b.xb, 0, b.q, 0, n);
            Kernels.matMul(pool, w.wk(), b.xb, 0, b.k, 0, n);
            Kernels.matMul(pool, w.wv(), b.xb, 0, b.v, 0, n);
            if (pairs > 0) {
                Kernels.ropeTiled(b.q, qDim, c.headCount(), headSize, pairs, tiles, s.ropeCos, s.ropeSin,
                        s.ropeStride, pos0);
                Kernels.ropeTiled(b.k, kvDim, c.headCountKv(), headSize, pairs, tiles, s.ropeCos, s.ropeSin,
                        s.ropeStride, pos0);
            }
            short[] keys = cache.keys[l];
            short[] values = cache.values[l];
            for (int t = 0; t < n; t++) {
                int kBase = Kernels.tiledIndex(kvDim, t, 0);
                for (int h = 0; h < c.headCountKv(); h++) {
                    Attention.storeKey(keys, h, pos0 + t, headSize, cache.paddedLength, b.k,
                            kBase + h * headSize * Kernels.TILE, Kernels.TILE);
                }
                Attention.storeValues(values, (pos0 + t) * kvDim, b.v, Kernels.tiledIndex(kvDim, t, 0), Kernels.TILE,
                        kvDim);
            }

            s.attention.batch(s, l, pos0, n);
            Kernels.matMul(pool, w.wo(), b.xb2, 0, b.xb, 0, n);
            Kernels.add(b.x, b.xb, tiles * dim * Kernels.TILE);

            Kernels.rmsNormTiled(b.xb, b.x, w.ffnNorm(), dim, tiles, eps);
            Kernels.matMul(pool, w.ffnGate(), b.xb, 0, b.hb, 0, n);
            Kernels.matMul(pool, w.ffnUp(), b.xb, 0, b.hb2, 0, n);
            Kernels.swiGlu(b.hb, b.hb2, tiles * ff * Kernels.TILE);
            Kernels.matMul(pool, w.ffnDown(), b.hb, 0, b.xb, 0, n);
            Kernels.add(b.x, b.xb, tiles * dim * Kernels.TILE);
        }
        if (each != null) {
            Kernels.rmsNormTiled(b.xb, b.x, weights.outputNorm(), dim, tiles, eps);
            int vocab = c.vocabSize();
            if (b.logitsTile == null) {
                b.logitsTile = new float[Kernels.tiledSize(vocab, 1)];
            }
            for (int tile = 0; tile < tiles; tile++) {
                int count = Math.min(Kernels.TILE, n - tile * Kernels.TILE);
                Kernels.matMul(pool, weights.output(), b.xb, tile * dim * Kernels.TILE, b.logitsTile, 0, count);
                for (int j = 0; j < count; j++) {
                    gather(b.logitsTile, vocab, j, s.logits, 0);
                    each.accept(tile * Kernels.TILE + j);
                }
            }
        } else if (last) {
            gather(b.x, dim, n - 1, s.x, 0);
            Kernels.rmsNorm(s.x, 0, s.x, 0, weights.outputNorm(), dim, eps);
            Kernels.matVec(pool, weights.output(), s.x, 0, s.logits, 0);
        }
    }

    /// Writes `row[0 .. width)` as token `t` of the tiled batch `tiled`.
    static void scatter(float[] row, float[] tiled, int width, int t) {
        int o = Kernels.tiledIndex(width, t, 0);
        for (int f = 0; f < width; f++) {
            tiled[o + f * Kernels.TILE] = row[f];
        }
    }

    /// Reads token `t` of the tiled batch `tiled` into `out[outOff .. outOff + width)`.
    static void gather(float[] tiled, int width, int t, float[] out, int outOff) {
        int o = Kernels.tiledIndex(width, t, 0);
        for (int f = 0; f < width; f++) {
            out[outOff + f] = tiled[o + f * Kernels.TILE];
        }
    }

    /// Rotates each head's leading `ropeDimensionCount` values in adjacent pairs (ggml's normal RoPE mode, which
    /// the GGUF converter prepares Llama's Q and K weights for).
    private void rope(State s, float[] vec, int heads, int pos) {
        int headSize = config.headSize();
        int pairs = config.ropeDimensionCount() / 2;
        int stride = s.ropeStride;
        for (int h = 0; h < heads; h++) {
            int o = h * headSize;
            for (int i = 0; i < pairs; i++) {
                float cos = s.ropeCos[i * stride + pos];
                float sin = s.ropeSin[i * stride + pos];
                float x0 = vec[o + 2 * i];
                float x1 = vec[o + 2 * i + 1];
                vec[o + 2 * i] = x0 * cos - x1 * sin;
                vec[o + 2 * i + 1] = x0 * sin + x1 * cos;
            }
        }
    }

    /// The attention of a layer as one parallel region: over key/value heads for one token, over (token, key/value
    /// head) pairs for a batch. Reused, so a forward pass allocates nothing.
    static final class AttentionTask implements Parallel.RangeTask {
        private final int group;
        private final int headSize;
        private final int kvHeads;
        private final int qDim;
        private final int kvDim;
        private final float scale;
        private final float[][] att;
        private final float[][] qs;
        private final float[][] os;
        private final Parallel.RangeTask batchTask = this::runBatch;
        // the region in flight
        private State s;
        private int layer;
        private int pos;
        private int n;

        AttentionTask(LlamaConfig c, KVCache cache, int threads) {
            group = c.headCount() / c.headCountKv();
            headSize = c.headSize();
            kvHeads = c.headCountKv();
            qDim = c.qDim();
            kvDim = c.kvDim();
            scale = (float) (1.0 / Math.sqrt(headSize));
            att = new float[threads][];
            qs = new float[threads][];
            os = new float[threads][];
        }

        /// One token at `pos`: `s.q` → `s.xb2`.
        void decode(State s, int layer, int pos) {
            this.s = s;
            this.layer = layer;
            this.pos = pos;
            try {
                s.pool.forRange(kvHeads, 1, this);
            } finally {
                this.s = null;
            }
        }

        @Override
        public void run(int from, int to) {
            KVCache cache = s.cache;
            int padded = cache.paddedLength;
            for (int h = from; h < to; h++) {
                int q0 = h * group * headSize;
                Attention.attend(s.q, q0, group, headSize, cache.keys[layer], h, padded, cache.values[layer],
                        h * headSize, kvDim, pos + 1, scale, s.att, h * group * padded, s.xb2, q0);
            }
        }

        /// Tokens `0 .. n-1` of the batch at positions `pos0 ..`: `batch.q` → `batch.xb2`.
        void batch(State s, int layer, int pos0, int n) {
            this.s = s;
            this.layer = layer;
            this.pos = pos0;
            this.n = n;
            try {
                s.pool.forRange(n * kvHeads, 1, batchTask);
            } finally {
                this.s = null;
            }
        }

        private void runBatch(int from, int to) {
            int thread = s.pool.threadIndex();
            KVCache cache = s.cache;
            int padded = cache.paddedLength;
            float[] a = att[thread];
            if (a == null || a.length < group * padded) {
                a = att[thread] = new float[group * padded];
                qs[thread] = new float[group * headSize];
                os[thread] = new float[group * headSize];
            }
            float[] qv = qs[thread];
            float[] ov = os[thread];
            Batch b = s.batch;
            for (int u = from; u < to; u++) {
                int t = n - 1 - u / kvHeads; // the longest first: better balance at the end of the region
                int h = u % kvHeads;
                int q0 = h * group * headSize;
                int base = Kernels.tiledIndex(qDim, t, q0);
                for (int i = 0; i < group * headSize; i++) {
                    qv[i] = Attention.half(b.q[base + i * Kernels.TILE]);
                }
                Attention.attend(qv, 0, group, headSize, cache.keys[layer], h, padded, cache.values[layer],
                        h * headSize, kvDim, pos + t + 1, scale, a, 0, ov, 0);
                for (int i = 0; i < group * headSize; i++) {
                    b.xb2[base + i * Kernels.TILE] = ov[i];
                }
            }
        }
    }
}
