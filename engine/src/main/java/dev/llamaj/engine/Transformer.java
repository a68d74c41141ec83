package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Attention;
import dev.llamaj.engine.kernel.Kernels;
import dev.llamaj.engine.kernel.Matrix;
import dev.llamaj.engine.kernel.Parallel;
import java.util.Arrays;

/// The forward pass of every supported family, one token at a time ([#forward], generation) or a batch of tokens
/// at once ([#forwardBatch], prompt processing).
///
/// **One recipe.** [#layer] is the whole layer, written once against [Step], whose two implementations run each
/// operation on one token's vectors ([OneToken]: matrix-vector products) or on a tiled batch ([Batched]:
/// matrix-matrix products over activations in the tiled layout, `Kernels.TILE` tokens per tile, feature-major
/// inside a tile). Per layer: an optional RMSNorm → Q, K, V projections (+ biases) → optional Q/K RMSNorms (per head,
/// or over all heads) → RoPE (NORM or NEOX pairing, partial, per-layer tables; none on some layers) → store K, V in
/// the cache → causal grouped-query attention (a sliding window on local layers, optional soft-capped scores) →
/// output projection → optional post-norm → scaled residual add; then the same around the gated feed-forward
/// network (SiLU or GELU). What a family has is data ([Architecture], [ModelConfig], null tensors in
/// [Weights.Layer]), so a feature is written here once for both paths.
///
/// **Numerics** follow ggml's CPU operators where the order of rounding matters for reproducing llama.cpp token for
/// token: RMSNorm sums squares in double, softmax exponentiates in float and sums in double, keys, values, the
/// query and the softmax weights go through half precision as llama.cpp's default F16 cache (see [Attention]),
/// RoPE angles come from repeated float multiplication ([Rope]), GELU reads ggml's half-precision table. Results are
/// independent of the thread count; a batch's rounding differs slightly from token-at-a-time processing (another
/// summation order).
///
/// Stateless apart from its arguments: one instance serves every session of a model.
final class Transformer {
    private final ModelConfig config;
    private final Weights weights;
    /// Most tokens per batch (a multiple of the tile).
    final int maxBatch;
    private final int minBatch;
    /// Whether the query takes the attention scale (Gemma, Phi-3) rather than the scores.
    private final float queryScale;
    private final float scoreScale;
    /// Tokens the tokenizer knows: logits from here to the classifier's last row (padding) are never chosen.
    private final int tokens;
    /// How the sessions' key/value caches store keys and values.
    final KVCacheType cacheTypeK;
    final KVCacheType cacheTypeV;
    final boolean cacheRotation;

    Transformer(ModelConfig config, Weights weights, LoadOptions options, int tokens) {
        this.config = config;
        this.cacheTypeK = options.cacheTypeK();
        this.cacheTypeV = options.cacheTypeV();
        this.cacheRotation = options.cacheRotation();
        this.weights = weights;
        this.tokens = tokens;
        this.maxBatch = Math.max(Kernels.TILE, options.batchSize() / Kernels.TILE * Kernels.TILE);
        this.minBatch = options.minBatch() > 0 ? options.minBatch() : minBatch(weights);
        boolean prescale = config.architecture().has(Architecture.Feature.QUERY_PRESCALE);
        this.queryScale = prescale ? config.scales().attention() : 1f;
        this.scoreScale = prescale ? 1f : config.scales().attention();
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
            for (Matrix m : l.matrices()) {
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

    /// Runs `token` at `pos` (all earlier positions are in the cache) and, if `logits`, fills `s.logits`.
    void forward(State s, int token, int pos, boolean logits) {
        OneToken step = s.token;
        step.pos = pos;
        weights.tokenEmbedding().dequantizeRow(token, step.x, 0);
        scaleInPlace(step.x, config.embeddingLength(), config.scales().embedding());
        for (int l = 0; l < config.blockCount(); l++) {
            layer(step, l);
        }
        if (logits) {
            int dim = config.embeddingLength();
            Kernels.rmsNorm(step.x, 0, step.x, 0, weights.outputNorm(), dim, config.rmsNormEpsilon());
            Kernels.matVec(s.pool, weights.output(), step.x, 0, s.logits, 0);
            finishLogits(s.logits);
        }
    }

    /// Runs `tokens[off .. off + n)` at positions `pos0 ..` (all earlier positions are in the cache), `n` at most
    /// the batch capacity. With `each` non-null, computes the logits of every token into `s.logits` and passes its
    /// index (`0 .. n-1`) to `each`; otherwise, if `last`, leaves the logits of the last token in `s.logits`.
    void forwardBatch(State s, int[] tokens, int off, int n, int pos0, boolean last, TokenLogits each) {
        Batched b = layers(s, tokens, off, n, pos0);
        int dim = config.embeddingLength();
        int tiles = b.tiles;
        float eps = config.rmsNormEpsilon();
        if (each != null) {
            Kernels.rmsNormTiled(b.xb, b.x, weights.outputNorm(), dim, tiles, eps);
            int vocab = config.vocabSize();
            if (b.logitsTile == null) {
                b.logitsTile = new float[Kernels.tiledSize(vocab, 1)];
            }
            for (int tile = 0; tile < tiles; tile++) {
                int count = Math.min(Kernels.TILE, n - tile * Kernels.TILE);
                Kernels.matMul(s.pool, weights.output(), b.xb, tile * dim * Kernels.TILE, b.logitsTile, 0, count);
                for (int j = 0; j < count; j++) {
                    gather(b.logitsTile, vocab, j, s.logits, 0);
                    finishLogits(s.logits);
                    each.accept(tile * Kernels.TILE + j);
                }
            }
        } else if (last) {
            float[] x = s.token.x;
            gather(b.x, dim, n - 1, x, 0);
            Kernels.rmsNorm(x, 0, x, 0, weights.outputNorm(), dim, eps);
            Kernels.matVec(s.pool, weights.output(), x, 0, s.logits, 0);
            finishLogits(s.logits);
        }
    }

    /// Receives the final hidden state of one token of a batch: `embeddingLength` values after the output norm,
    /// what the classifier would read (a reused array: copy or fold what you keep).
    @FunctionalInterface
    interface TokenHidden {
        void accept(int index, float[] hidden);
    }

    /// Runs a batch as [#forwardBatch] does but stops before the classifier: passes each token's hidden state
    /// (index `0 .. n-1`) to `each`. For embeddings, which need every token's normed state (mean pooling) and no
    /// logits: the classifier, the largest matrix of small models (a third of the weights of Llama 3.2 1B), is
    /// not run even for the last token.
    void hiddenBatch(State s, int[] tokens, int off, int n, int pos0, TokenHidden each) {
        Batched b = layers(s, tokens, off, n, pos0);
        int dim = config.embeddingLength();
        Kernels.rmsNormTiled(b.xb, b.x, weights.outputNorm(), dim, b.tiles, config.rmsNormEpsilon());
        float[] hidden = s.token.x;
        for (int t = 0; t < n; t++) {
            gather(b.xb, dim, t, hidden, 0);
            each.accept(t, hidden);
        }
    }

    /// The embeddings and every layer of a batch: the residual stream of `tokens[off .. off + n)` ends in `b.x`.
    private Batched layers(State s, int[] tokens, int off, int n, int pos0) {
        Batched b = s.batch();
        if (n < 1 || n > b.capacity) {
            throw new IllegalArgumentException("batch of " + n + " tokens, capacity " + b.capacity);
        }
        b.start(s, n, pos0);
        run(b, tokens, off);
        return b;
    }

    /// The embeddings and every layer of the batch `b` (started), whose tokens are `tokens[off .. off + b.n)`.
    private void run(Batched b, int[] tokens, int off) {
        int n = b.n;
        int dim = config.embeddingLength();
        int tiles = b.tiles;
        // embeddings, and zeros in the padding tokens of the last tile
        Matrix embedding = weights.tokenEmbedding();
        for (int t = 0; t < tiles * Kernels.TILE; t++) {
            if (t < n) {
                embedding.dequantizeRow(tokens[off + t], b.row, 0);
            } else {
                Arrays.fill(b.row, 0, dim, 0f);
            }
            scatter(b.row, b.x, dim, t);
        }
        scaleInPlace(b.x, tiles * dim * Kernels.TILE, config.scales().embedding());

        for (int l = 0; l < config.blockCount(); l++) {
            layer(b, l);
        }
    }

    /// One step of several sequences decoded together (continuous batching): token `t < n` is `tokens[t]` of the
    /// sequence whose buffers are `states[t]`, at `positions[t]` (a sequence may have several consecutive tokens in a
    /// step: a chunk of its prompt). For each `t` with `wanted[t]`, in order, fills `states[t].logits` with the
    /// logits after that token and calls `each.accept(t)`.
    ///
    /// Every product runs through the small-batch kernel, whose result for a token depends neither on the other
    /// tokens nor on their number ([Kernels#matMulFew]), and every other operation is per token: so a sequence's
    /// logits are bit for bit the same whichever sequences share its steps. `b` is the scratch of the caller
    /// ([#newMixedBatch]); its capacity bounds `n`.
    void forwardMixed(Batched b, int[] tokens, int n, State[] states, int[] positions, boolean[] wanted,
                      TokenLogits each) {
        if (n < 1 || n > b.capacity) {
            throw new IllegalArgumentException("batch of " + n + " tokens, capacity " + b.capacity);
        }
        System.arraycopy(positions, 0, b.positions, 0, n);
        b.startMixed(states, n);
        try {
            run(b, tokens, 0);
            int m = 0;
            for (int t = 0; t < n; t++) {
                m += wanted[t] ? 1 : 0;
            }
            if (m == 0) {
                return;
            }
            int dim = config.embeddingLength();
            int vocab = config.vocabSize();
            Kernels.rmsNormTiled(b.xb, b.x, weights.outputNorm(), dim, b.tiles, config.rmsNormEpsilon());
            if (b.hidden == null) {
                b.hidden = new float[Kernels.tiledSize(dim, b.capacity)];
                b.logitsFew = new float[Kernels.tiledSize(vocab, b.capacity)];
            }
            for (int t = 0, j = 0; t < n; t++) {
                if (wanted[t]) {
                    gather(b.xb, dim, t, b.row, 0);
                    scatter(b.row, b.hidden, dim, j++);
                }
            }
            Kernels.matMulFew(b.pool, weights.output(), b.hidden, 0, b.logitsFew, 0, m);
            for (int t = 0, j = 0; t < n; t++) {
                if (wanted[t]) {
                    float[] logits = states[t].logits;
                    gather(b.logitsFew, vocab, j++, logits, 0);
                    finishLogits(logits);
                    each.accept(t);
                }
            }
        } finally {
            b.clear();
        }
    }

    /// Most tokens of a [#forwardFew] call.
    static final int FEW_CAPACITY = Kernels.TILE;

    /// Runs `tokens[0 .. n)` of the sequence of `s` at positions `pos0 ..` (all earlier ones in the cache) through
    /// the small-batch kernel, and for each token in order fills `s.logits` and calls `each.accept(index)`: the
    /// verification pass of speculative decoding, where a handful of tokens costs little more than one token
    /// ([Kernels#matMulFew]) while the tiled batch computes whole tiles and token-at-a-time passes cost a token
    /// each. Rounds like an executor's steps, not like [#forward].
    void forwardFew(State s, int[] tokens, int n, int pos0, TokenLogits each) {
        if (n < 1 || n > FEW_CAPACITY) {
            throw new IllegalArgumentException("batch of " + n + " tokens, capacity " + FEW_CAPACITY);
        }
        if (s.few == null) {
            s.few = new Batched(config, s.pool, s.attention, FEW_CAPACITY);
            s.fewStates = new State[FEW_CAPACITY];
            s.fewPositions = new int[FEW_CAPACITY];
            s.fewWanted = new boolean[FEW_CAPACITY];
        }
        for (int t = 0; t < n; t++) {
            s.fewStates[t] = s;
            s.fewPositions[t] = pos0 + t;
            s.fewWanted[t] = true;
        }
        try {
            forwardMixed(s.few, tokens, n, s.fewStates, s.fewPositions, s.fewWanted, each);
        } finally {
            java.util.Arrays.fill(s.fewStates, null);
        }
    }

    /// Scratch for [#forwardMixed] steps of up to `capacity` tokens, computed on `pool`.
    Batched newMixedBatch(int capacity, Parallel pool) {
        return new Batched(config, pool, new AttentionTask(config, pool.threads()), capacity);
    }

    /// One transformer layer, for one token or a batch: the recipe every family shares.
    private void layer(Step s, int l) {
        ModelConfig c = config;
        Weights.Layer w = weights.layers()[l];
        int dim = c.embeddingLength();
        float residual = c.scales().residual();

        // attention block
        float[] in = s.x;
        if (w.attnNorm() != null) {
            s.norm(s.xb, s.x, w.attnNorm());
            in = s.xb;
        }
        s.projectQkv(w, in);
        if (w.qBias() != null) {
            s.addBias(s.q, w.qBias());
            s.addBias(s.k, w.kBias());
            s.addBias(s.v, w.vBias());
        }
        if (w.qNorm() != null) {
            s.groupNorm(s.q, c.qDim(), w.qNorm());
            s.groupNorm(s.k, c.kvDim(), w.kNorm());
        }
        s.rope(l, s.q, c.qDim(), c.headCount());
        s.rope(l, s.k, c.kvDim(), c.headCountKv());
        s.attention(l, c.window(l));
        s.project(w.wo(), s.xb2, s.xb);
        if (w.postAttnNorm() != null) {
            s.norm(s.xb, s.xb, w.postAttnNorm());
        }
        s.residual(s.x, s.xb, dim, residual);

        // feed-forward block
        in = s.x;
        if (w.ffnNorm() != null) {
            s.norm(s.xb, s.x, w.ffnNorm());
            in = s.xb;
        }
        s.gatedFeedForward(w, in, c.architecture().activation);
        s.project(w.ffnDown(), s.hb, s.xb);
        if (w.postFfnNorm() != null) {
            s.norm(s.xb, s.xb, w.postFfnNorm());
        }
        s.residual(s.x, s.xb, dim, residual);
        // A damaged file (NaN or infinite weights, or values that overflow) would otherwise give garbage tokens
        // with no error; checking the residual stream once per layer costs a few microseconds per token.
        if (!s.finite()) {
            throw new NonFiniteException("layer " + l + " (blk." + l + ".*) produced a non-finite value (NaN or "
                    + "infinity): the model's weights are damaged or out of range");
        }
    }

    /// The forward pass met a NaN or an infinity: the weights (or the input) cannot be computed with.
    static final class NonFiniteException extends IllegalStateException {
        NonFiniteException(String message) {
            super(message);
        }
    }

    /// The query multiplier of Llama 4's temperature tuning at `position` (1 without it).
    private float temperature(int position) {
        return config.scales().queryTemperature(position);
    }

    /// The logit scale (Granite) and soft-cap (Gemma 2), in ggml's order: scale, then `cap · tanh(l / cap)`;
    /// padding rows of the classifier get `-∞`.
    private void finishLogits(float[] logits) {
        int vocab = config.vocabSize();
        Arrays.fill(logits, tokens, vocab, Float.NEGATIVE_INFINITY);
        scaleInPlace(logits, vocab, config.scales().logit());
        float cap = config.scales().finalSoftcap();
        if (cap > 0) {
            float inv = 1f / cap;
            for (int i = 0; i < vocab; i++) {
                logits[i] = (float) Math.tanh(logits[i] * inv) * cap;
            }
        }
    }

    private static void scaleInPlace(float[] x, int n, float factor) {
        if (factor != 1f) {
            for (int i = 0; i < n; i++) {
                x[i] *= factor;
            }
        }
    }

    /// The activations of the tokens of one forward step, and the operations of [#layer] on them. Each buffer
    /// holds its width per token: `x`, `xb` the embedding; `xb2`, `q` all query heads; `k`, `v` all key/value
    /// heads; `hb`, `hb2` the feed-forward width.
    private abstract static sealed class Step permits OneToken, Batched {
        final ModelConfig config;
        final Parallel pool;
        final AttentionTask attention;
        final float eps;
        float[] x;
        float[] xb;
        float[] xb2;
        float[] q;
        float[] k;
        float[] v;
        float[] hb;
        float[] hb2;

        Step(ModelConfig config, Parallel pool, AttentionTask attention) {
            this.config = config;
            this.pool = pool;
            this.attention = attention;
            this.eps = config.rmsNormEpsilon();
        }

        /// `out = rmsNorm(in) · weight` per token, over `weight.length` features (`out` may be `in`).
        abstract void norm(float[] out, float[] in, float[] weight);

        /// RMSNorm in place of each group of `weight.length` features of a `width`-feature buffer (per-head Q/K
        /// norms; one group of all heads for full-width norms).
        abstract void groupNorm(float[] x, int width, float[] weight);

        /// `out = w · in` per token.
        abstract void project(Matrix w, float[] in, float[] out);

        /// `q`, `k`, `v` from `in`.
        abstract void projectQkv(Weights.Layer w, float[] in);

        /// `hb = act(gate · in) · (up · in)` per token.
        abstract void gatedFeedForward(Weights.Layer w, float[] in, Architecture.Activation act);

        /// `x += bias` per token.
        abstract void addBias(float[] x, float[] bias);

        /// RoPE of `heads` heads of a `width`-feature buffer, at each token's position, with layer `layer`'s
        /// tables (none on layers without RoPE).
        abstract void rope(int layer, float[] x, int width, int heads);

        /// Stores `k`, `v` in the cache and writes the attention of `q` to `xb2`; `window` positions at most.
        abstract void attention(int layer, int window);

        /// `x += scale · y` over `width` features per token (`y` scaled in place first, as ggml does).
        abstract void residual(float[] x, float[] y, int width, float scale);

        /// Whether the residual stream of every token is finite.
        abstract boolean finite();
    }

    /// One token at `pos`: matrix-vector products over the session's vectors.
    private final class OneToken extends Step {
        final State state;
        int pos;

        OneToken(State s) {
            super(s.config, s.pool, s.attention);
            this.state = s;
            ModelConfig c = s.config;
            x = new float[c.embeddingLength()];
            xb = new float[c.embeddingLength()];
            xb2 = new float[c.qDim()];
            q = new float[c.qDim()];
            k = new float[c.kvDim()];
            v = new float[c.kvDim()];
            hb = new float[c.feedForwardLength()];
            hb2 = new float[c.feedForwardLength()];
        }

        @Override
        void norm(float[] out, float[] in, float[] weight) {
            Kernels.rmsNorm(out, 0, in, 0, weight, weight.length, eps);
        }

        @Override
        void groupNorm(float[] x, int width, float[] weight) {
            for (int o = 0; o < width; o += weight.length) {
                Kernels.rmsNorm(x, o, x, o, weight, weight.length, eps);
            }
        }

        @Override
        void project(Matrix w, float[] in, float[] out) {
            Kernels.matVec(pool, w, in, 0, out, 0);
        }

        @Override
        void projectQkv(Weights.Layer w, float[] in) {
            Kernels.matVec3(pool, w.wq(), w.wk(), w.wv(), in, 0, q, 0, k, 0, v, 0);
        }

        @Override
        void gatedFeedForward(Weights.Layer w, float[] in, Architecture.Activation act) {
            switch (act) {
                case SILU -> Kernels.matVecSwiGlu(pool, w.ffnGate(), w.ffnUp(), in, 0, hb, hb2);
                case GELU -> {
                    Kernels.matVec2(pool, w.ffnGate(), w.ffnUp(), in, 0, hb, hb2);
                    Kernels.geGlu(hb, hb2, hb.length);
                }
            }
        }

        @Override
        void addBias(float[] x, float[] bias) {
            Kernels.add(x, bias, bias.length);
        }

        @Override
        void rope(int layer, float[] x, int width, int heads) {
            Rope rope = state.ropes[layer];
            if (rope != null) {
                rope.apply(x, heads, pos);
            }
        }

        @Override
        void attention(int layer, int window) {
            state.cache.store(layer, pos, k, 0, v, 0, 1);
            // the query at half precision, as llama.cpp converts it for its F16 cache (see Attention)
            float scale = queryScale * temperature(pos);
            for (int i = 0; i < q.length; i++) {
                q[i] = Attention.half(q[i] * scale);
            }
            attention.decode(this, layer, pos, window);
        }

        @Override
        void residual(float[] x, float[] y, int width, float scale) {
            scaleInPlace(y, width, scale);
            Kernels.add(x, y, width);
        }

        @Override
        boolean finite() {
            return Kernels.allFinite(x, x.length);
        }
    }

    /// The tokens `0 .. n-1` of a batch, in the tiled layout: matrix-matrix products. Token `t` is at
    /// `positions[t]` in the cache `caches[t]` with the RoPE tables `ropes[t]`: one sequence's consecutive tokens
    /// (prompt processing: `uniform`), or the tokens of several sequences decoded together (see [#forwardMixed]).
    final class Batched extends Step {
        final int capacity;
        final float[] row;
        final int[] positions;
        final KVCache[] caches;
        final Rope[][] ropes;
        float[] logitsTile;
        /// The normed hidden states of the tokens whose logits a mixed step computes (tiled), and their logits.
        float[] hidden;
        float[] logitsFew;
        int n;
        int pos0;
        int tiles;
        /// All tokens belong to one sequence, at positions `pos0 ..`.
        boolean uniform;
        /// Products through the small-batch kernel ([Kernels#matMulFew]) rather than the tiled one.
        boolean few;

        Batched(ModelConfig c, Parallel pool, AttentionTask attention, int capacity) {
            super(c, pool, attention);
            this.capacity = capacity;
            positions = new int[capacity];
            caches = new KVCache[capacity];
            ropes = new Rope[capacity][];
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

        /// Tokens `0 .. n-1` of the sequence of `s`, at positions `pos0 ..`.
        void start(State s, int n, int pos0) {
            this.n = n;
            this.pos0 = pos0;
            this.tiles = (n + Kernels.TILE - 1) / Kernels.TILE;
            this.uniform = true;
            this.few = false;
            for (int t = 0; t < n; t++) {
                positions[t] = pos0 + t;
                caches[t] = s.cache;
                ropes[t] = s.ropes;
            }
        }

        /// Token `t` of sequence `states[t]` at `positions[t]`, for `t < n` (the positions already set).
        void startMixed(State[] states, int n) {
            this.n = n;
            this.pos0 = -1;
            this.tiles = (n + Kernels.TILE - 1) / Kernels.TILE;
            this.uniform = false;
            this.few = true;
            for (int t = 0; t < n; t++) {
                caches[t] = states[t].cache;
                ropes[t] = states[t].ropes;
            }
        }

        /// Forgets the sequences of the last step (so that closed sessions' caches can be collected).
        void clear() {
            Arrays.fill(caches, null);
            Arrays.fill(ropes, null);
        }

        @Override
        void norm(float[] out, float[] in, float[] weight) {
            Kernels.rmsNormTiled(out, in, weight, weight.length, tiles, eps);
        }

        @Override
        void groupNorm(float[] x, int width, float[] weight) {
            int g = weight.length;
            for (int tile = 0; tile < tiles; tile++) {
                for (int f = 0; f < width; f += g) {
                    int base = (tile * width + f) * Kernels.TILE;
                    Kernels.rmsNormTile(x, x, base, weight, g, eps);
                }
            }
        }

        @Override
        void project(Matrix w, float[] in, float[] out) {
            if (few) {
                Kernels.matMulFew(pool, w, in, 0, out, 0, n);
            } else {
                Kernels.matMul(pool, w, in, 0, out, 0, n);
            }
        }

        @Override
        void projectQkv(Weights.Layer w, float[] in) {
            project(w.wq(), in, q);
            project(w.wk(), in, k);
            project(w.wv(), in, v);
        }

        @Override
        void gatedFeedForward(Weights.Layer w, float[] in, Architecture.Activation act) {
            project(w.ffnGate(), in, hb);
            project(w.ffnUp(), in, hb2);
            int size = tiles * w.ffnGate().rows() * Kernels.TILE;
            switch (act) {
                case SILU -> Kernels.swiGlu(hb, hb2, size);
                case GELU -> Kernels.geGlu(hb, hb2, size);
            }
        }

        @Override
        void addBias(float[] x, float[] bias) {
            int width = bias.length;
            for (int tile = 0; tile < tiles; tile++) {
                for (int f = 0; f < width; f++) {
                    int o = (tile * width + f) * Kernels.TILE;
                    float b = bias[f];
                    for (int t = 0; t < Kernels.TILE; t++) {
                        x[o + t] += b;
                    }
                }
            }
        }

        @Override
        void rope(int layer, float[] x, int width, int heads) {
            if (uniform) {
                Rope rope = ropes[0][layer];
                if (rope != null) {
                    rope.applyTiled(x, width, heads, tiles, pos0);
                }
            } else {
                for (int t = 0; t < n; t++) {
                    Rope rope = ropes[t][layer];
                    if (rope != null) {
                        rope.applyTiledToken(x, width, heads, t, positions[t]);
                    }
                }
            }
        }

        @Override
        void attention(int layer, int window) {
            int kvDim = config.kvDim();
            for (int t = 0; t < n; t++) {
                int o = Kernels.tiledIndex(kvDim, t, 0);
                caches[t].store(layer, positions[t], k, o, v, o, Kernels.TILE);
            }
            attention.batch(this, layer, window);
        }

        @Override
        void residual(float[] x, float[] y, int width, float scale) {
            int size = tiles * width * Kernels.TILE;
            scaleInPlace(y, size, scale);
            Kernels.add(x, y, size);
        }

        @Override
        boolean finite() {
            return Kernels.allFinite(x, tiles * config.embeddingLength() * Kernels.TILE);
        }
    }

    /// Scratch buffers of one session, allocated once (the batch buffers on first use).
    final class State {
        final ModelConfig config;
        final float[] logits;
        final float[] att;
        /// The RoPE tables of each layer (shared between layers with the same angles), null where a layer has none.
        final Rope[] ropes;
        final KVCache cache;
        final Parallel pool;
        final AttentionTask attention;
        final OneToken token;
        private Batched batch;
        // the scratch of [#forwardFew], on first use
        private Batched few;
        private State[] fewStates;
        private int[] fewPositions;
        private boolean[] fewWanted;

        State(int contextLength, Parallel pool) {
            ModelConfig c = Transformer.this.config;
            this.config = c;
            this.pool = pool;
            cache = new KVCache(c, contextLength, batchCapacity(contextLength), cacheTypeK, cacheTypeV,
                    cacheRotation);
            logits = new float[c.vocabSize()];
            att = new float[c.headCount() * cache.paddedLength];
            ropes = ropes(c, weights, contextLength);
            attention = new AttentionTask(c, pool.threads());
            token = new OneToken(this);
        }

        Batched batch() {
            if (batch == null) {
                batch = new Batched(config, pool, attention, batchCapacity(cache.contextLength));
            }
            return batch;
        }
    }

    /// Most tokens of a batch in a session of `contextLength` tokens.
    int batchCapacity(int contextLength) {
        return Math.min(maxBatch, roundUp(contextLength, Kernels.TILE));
    }

    /// A new session's buffers, for a cache of `contextLength` tokens.
    State newState(int contextLength, Parallel pool) {
        return new State(contextLength, pool);
    }

    /// The RoPE tables of a session: the global one, the local layers' one where it differs (Gemma 3: base
    /// 10000, unscaled), none on the layers without RoPE (SmolLM3). LongRoPE's factors (Phi-3) are chosen by the
    /// session's context, as llama.cpp chooses them: the long set beyond the original context.
    static Rope[] ropes(ModelConfig c, Weights w, int contextLength) {
        int positions = contextLength + Kernels.TILE;
        float[] factors = w.ropeFreqFactors();
        if (w.ropeFactorsLong() != null && w.ropeFactorsShort() != null) {
            factors = contextLength > c.ropeScaling().originalContext() && c.ropeScaling().originalContext() > 0
                    ? w.ropeFactorsLong() : w.ropeFactorsShort();
        }
        Rope.Style style = c.architecture().ropeStyle;
        Rope global = new Rope(style, c.ropeDimensionCount(), c.headSize(), c.ropeFreqBase(),
                c.ropeScaling().angles(), factors, positions);
        Rope local = global;
        boolean anyLocal = false;
        for (int l = 0; l < c.blockCount(); l++) {
            anyLocal |= c.window(l) != Integer.MAX_VALUE;
        }
        if (anyLocal && c.architecture().has(Architecture.Feature.LOCAL_ROPE_UNSCALED)) {
            local = new Rope(style, c.ropeDimensionCount(), c.headSize(), c.ropeFreqBaseLocal(), Rope.Scaling.NONE,
                    factors, positions);
        }
        Rope[] ropes = new Rope[c.blockCount()];
        for (int l = 0; l < ropes.length; l++) {
            if (c.architecture().hasRope(l) && c.ropeDimensionCount() > 0) {
                ropes[l] = c.window(l) != Integer.MAX_VALUE ? local : global;
            }
        }
        return ropes;
    }

    static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
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

    /// The attention of a layer as one parallel region: over key/value heads for one token, over (token, key/value
    /// head) pairs for a batch. Reused, so a forward pass allocates nothing.
    final class AttentionTask implements Parallel.RangeTask {
        private final int group;
        private final int headSize;
        private final int kvHeads;
        private final int qDim;
        private final float softcap;
        private final float[][] att;
        private final float[][] qs;
        private final float[][] os;
        private final Parallel.RangeTask batchTask = this::runBatch;
        // the region in flight
        private State s;
        private Batched b;
        private int layer;
        private int pos;
        private int window;

        AttentionTask(ModelConfig c, int threads) {
            group = c.headCount() / c.headCountKv();
            headSize = c.headSize();
            kvHeads = c.headCountKv();
            qDim = c.qDim();
            softcap = c.scales().attentionSoftcap();
            att = new float[threads][];
            qs = new float[threads][];
            os = new float[threads][];
        }

        /// First position a query at `pos` sees.
        private int firstVisible(int pos) {
            return window == Integer.MAX_VALUE ? 0 : Math.max(0, pos - window + 1);
        }

        /// One token at `pos`: `t.q` → `t.xb2`.
        void decode(OneToken t, int layer, int pos, int window) {
            this.s = t.state;
            this.layer = layer;
            this.pos = pos;
            this.window = window;
            try {
                s.pool.forRange(kvHeads, 1, this);
            } finally {
                this.s = null;
            }
        }

        @Override
        public void run(int from, int to) {
            OneToken t = s.token;
            int padded = s.cache.paddedLength;
            for (int h = from; h < to; h++) {
                int q0 = h * group * headSize;
                s.cache.attend(layer, t.q, q0, group, h, firstVisible(pos), pos + 1, scoreScale, softcap, s.att,
                        h * group * padded, t.xb2, q0);
            }
        }

        /// Every token of the batch `b`: `b.q` → `b.xb2`, each against its own cache.
        void batch(Batched b, int layer, int window) {
            this.b = b;
            this.layer = layer;
            this.window = window;
            try {
                b.pool.forRange(b.n * kvHeads, 1, batchTask);
            } finally {
                this.b = null;
            }
        }

        private void runBatch(int from, int to) {
            int thread = b.pool.threadIndex();
            if (qs[thread] == null) {
                qs[thread] = new float[group * headSize];
                os[thread] = new float[group * headSize];
            }
            float[] qv = qs[thread];
            float[] ov = os[thread];
            for (int u = from; u < to; u++) {
                // the longest first: better balance at the end of the region (in a prompt, the last tokens)
                int t = b.uniform ? b.n - 1 - u / kvHeads : u / kvHeads;
                int h = u % kvHeads;
                KVCache cache = b.caches[t];
                float[] a = att[thread];
                if (a == null || a.length < group * cache.paddedLength) {
                    a = att[thread] = new float[group * cache.paddedLength];
                }
                int q0 = h * group * headSize;
                int base = Kernels.tiledIndex(qDim, t, q0);
                int p = b.positions[t];
                float scale = queryScale * temperature(p);
                for (int i = 0; i < group * headSize; i++) {
                    qv[i] = Attention.half(b.q[base + i * Kernels.TILE] * scale);
                }
                cache.attend(layer, qv, 0, group, h, firstVisible(p), p + 1, scoreScale, softcap, a, 0, ov, 0);
                for (int i = 0; i < group * headSize; i++) {
                    b.xb2[base + i * Kernels.TILE] = ov[i];
                }
            }
        }
    }
}
