package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.D;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.L;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

import dev.llamaj.gguf.GGMLType;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/// The single public entry point to compute: the matrix-vector product over weights in any supported GGUF encoding
/// (one matrix, three sharing their input ([#matVec3]: Q, K, V), or the SwiGLU pair ([#matVecSwiGlu]), each one
/// parallel region), the matrix-matrix product of prompt batches ([#matMul], see [MatMul]), and the small float
/// helpers of the Llama forward pass, per token and per tiled batch.
///
/// `matVec` picks a per-format row kernel once per call (by type and [Matrix.Layout]) that runs over a contiguous
/// range of rows; the rows are split across a [Parallel] pool in 16-row-aligned chunks, so results are the same on
/// any thread count. The kernels are written with the Vector API for every type:
/// four rows per pass for `Q8_0` and `Q4_0` (in the GGUF layout or repacked, see [Repack]), one row per pass with
/// several accumulators for the others (`Q5_K` folds its minimums into per-group sums of `x`, decodes the scales as
/// one vector and has its 64-weight chunks written out). With 512-bit vectors, `Q2_K`, `Q3_K`, `Q4_K` (repacked)
/// and `Q6_K` multiply in integers with `x` rounded to 8 bits, as llama.cpp does ([Input]). A warmed-up product allocates
/// nothing (`AllocationTest`).
///
/// The helpers take arrays with explicit offsets and check their bounds once per call.
public final class Kernels {
    /// Rows per chunk boundary when splitting a product: a multiple of the four-row kernel groups, and 16 outputs
    /// are one 64-byte cache line, so two threads never write the same line.
    static final int ROW_GRAIN = 16;

    private Kernels() {
    }

    /// Whether `matVec` and [Matrix#dequantizeRow] can compute with weights of type `type`.
    public static boolean supports(GGMLType type) {
        return WeightFormat.supports(type);
    }

    /// `out[outOffset + r] = Σ_c w[r][c] · x[xOffset + c]` for every row `r` of `w`, rows split across `pool`.
    ///
    /// `x` and `out` must not overlap.
    ///
    /// @throws IllegalArgumentException  if `w.type()` is not supported (the message names it)
    /// @throws IndexOutOfBoundsException if `x` has fewer than `w.cols()` floats from `xOffset`, or `out` fewer than
    ///                                   `w.rows()` from `outOffset`
    public static void matVec(Parallel pool, Matrix w, float[] x, int xOffset, float[] out, int outOffset) {
        MatVecTask task = pool.matVecTask;
        task.begin(x, xOffset);
        try {
            task.add(w, out, outOffset);
            task.run(pool, false);
        } finally {
            task.clear();
        }
    }

    /// Three products of the same vector in one parallel region (the Q, K and V projections): `outA = a · x`,
    /// `outB = b · x`, `outC = c · x`, each exactly as [#matVec] computes it.
    ///
    /// @throws IllegalArgumentException  if the matrices do not all have `x`'s length of columns, or a type is
    ///                                   not supported
    /// @throws IndexOutOfBoundsException if a vector is too short
    public static void matVec3(Parallel pool, Matrix a, Matrix b, Matrix c, float[] x, int xOffset,
                               float[] outA, int offA, float[] outB, int offB, float[] outC, int offC) {
        if (b.cols() != a.cols() || c.cols() != a.cols()) {
            throw new IllegalArgumentException("matrices of " + a.cols() + ", " + b.cols() + " and " + c.cols()
                    + " columns cannot multiply one vector");
        }
        MatVecTask task = pool.matVecTask;
        task.begin(x, xOffset);
        try {
            task.add(a, outA, offA);
            task.add(b, outB, offB);
            task.add(c, outC, offC);
            task.run(pool, false);
        } finally {
            task.clear();
        }
    }

    /// Two products of the same vector in one parallel region: `outA = a · x`, `outB = b · x`, each exactly as
    /// [#matVec] computes it.
    public static void matVec2(Parallel pool, Matrix a, Matrix b, float[] x, int xOffset, float[] outA, float[] outB) {
        if (b.cols() != a.cols()) {
            throw new IllegalArgumentException("matrices of " + a.cols() + " and " + b.cols()
                    + " columns cannot multiply one vector");
        }
        pair(pool, a, b, x, xOffset, outA, outB, false);
    }

    /// The SwiGLU feed-forward's first half in one parallel region: `out[i] = silu(gate · x)[i] · (up · x)[i]`
    /// (as [#matVec] twice then [#swiGlu]), `scratch` receiving `up · x`.
    ///
    /// @throws IllegalArgumentException  if the shapes differ or a type is not supported
    /// @throws IndexOutOfBoundsException if a vector is too short
    public static void matVecSwiGlu(Parallel pool, Matrix gate, Matrix up, float[] x, int xOffset, float[] out,
                                    float[] scratch) {
        if (gate.rows() != up.rows() || gate.cols() != up.cols()) {
            throw new IllegalArgumentException("gate and up matrices differ in shape");
        }
        pair(pool, gate, up, x, xOffset, out, scratch, true);
    }

    private static void pair(Parallel pool, Matrix a, Matrix b, float[] x, int xOffset, float[] outA, float[] outB,
                             boolean swiGlu) {
        MatVecTask task = pool.matVecTask;
        task.begin(x, xOffset);
        try {
            task.add(a, outA, 0);
            task.add(b, outB, 0);
            task.run(pool, swiGlu);
        } finally {
            task.clear();
        }
    }

    /// The row kernel for `w`'s type and layout.
    static RowKernel rowKernel(Matrix w) {
        return WeightFormat.of(w).matVec();
    }

    static RowKernel rowKernel(GGMLType type) {
        return WeightFormat.of(type, Matrix.Layout.GGUF).matVec();
    }

    /// Per 256-weight super-block of `x[xOffset .. xOffset + n)`, 16 floats: 8 zeros, then the 8 [#groupSums] of its
    /// 32-weight groups (the layout the `Q4_K` and `Q5_K` kernels multiply their minimums with).
    static void superBlockSums(float[] x, int xOffset, int n, float[] sums) {
        int blocks = n / 256;
        for (int i = 0; i < blocks; i++) {
            java.util.Arrays.fill(sums, 16 * i, 16 * i + 8, 0f);
            groupSums(x, xOffset + 256 * i, 256, sums, 16 * i + 8);
        }
    }

    /// `sums[g] = Σ x[xOffset + 32g .. xOffset + 32g + 32)` for `g < n / 32`, each summed in a fixed order (two vectors
    /// added lane by lane, then the butterfly of [Simd]), identical in every execution mode.
    static void groupSums(float[] x, int xOffset, int n, float[] sums) {
        groupSums(x, xOffset, n, sums, 0);
    }

    /// [#groupSums] into `sums[sumsOffset ..]`.
    static void groupSums(float[] x, int xOffset, int n, float[] sums, int sumsOffset) {
        int groups = n / 32;
        for (int g = 0; g < groups; g++) {
            int o = xOffset + 32 * g;
            FloatVector v = FloatVector.fromArray(F, x, o);
            for (int i = L; i < 32; i += L) {
                v = FloatVector.fromArray(F, x, o + i).add(v);
            }
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            if (L >= 8) {
                v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            }
            if (L >= 16) {
                v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            }
            sums[sumsOffset + g] = v.lane(0);
        }
    }

    /// Tokens per tile of the tiled activation layout of [#matMul] (two float vectors: 32 with AVX-512).
    public static final int TILE = MatMul.TILE;

    /// Floats that `tokens` tokens of `width` features take in the tiled layout (whole tiles).
    public static int tiledSize(int width, int tokens) {
        return Math.toIntExact(MatMul.tiledSize(width, tokens));
    }

    /// Index of token `t`, feature `f` in a tiled batch of `width` features.
    public static int tiledIndex(int width, int t, int f) {
        return (t / TILE * width + f) * TILE + t % TILE;
    }

    /// `out = w · x` for a batch of `tokens` tokens, rows split across `pool`: the matrix-matrix product of prompt
    /// processing. `x` holds `w.cols()` features per token from `xOffset`, `out` gets `w.rows()` per token from
    /// `outOffset`, both in the tiled layout ([#tiledIndex]; the padding tokens of the last tile are computed too).
    /// Each result is the same whatever the thread count and the batch (see [MatMul]).
    ///
    /// @throws IllegalArgumentException  if `w.type()` is not supported
    /// @throws IndexOutOfBoundsException if `x` or `out` is too short for the tiles
    public static void matMul(Parallel pool, Matrix w, float[] x, int xOffset, float[] out, int outOffset,
                              int tokens) {
        if (!supports(w.type())) {
            throw unsupported(w.type());
        }
        if (tokens < 1) {
            throw new IllegalArgumentException("tokens must be 1 or more, got " + tokens);
        }
        Objects.checkFromIndexSize(xOffset, tiledSize(w.cols(), tokens), x.length);
        Objects.checkFromIndexSize(outOffset, tiledSize(w.rows(), tokens), out.length);
        pool.matMulTask().run(w, x, xOffset, out, outOffset, tokens);
    }

    /// `out = w · x` for a few tokens, in the same tiled layout as [#matMul] (the real tokens are computed, and
    /// up to two padding tokens of the last tile may get zeros, see [SmallBatch#padded]): the product of a decode step that runs several sequences
    /// together. Cheaper than [#matMul] below about a tile of tokens, and each result is the same whatever the
    /// thread count, the other tokens and their number (see [SmallBatch]).
    ///
    /// @throws IllegalArgumentException  if `w.type()` is not supported
    /// @throws IndexOutOfBoundsException if `x` or `out` is too short for the tiles
    public static void matMulFew(Parallel pool, Matrix w, float[] x, int xOffset, float[] out, int outOffset,
                                 int tokens) {
        if (!supports(w.type())) {
            throw unsupported(w.type());
        }
        if (tokens < 1) {
            throw new IllegalArgumentException("tokens must be 1 or more, got " + tokens);
        }
        Objects.checkFromIndexSize(xOffset, tiledSize(w.cols(), tokens), x.length);
        Objects.checkFromIndexSize(outOffset, tiledSize(w.rows(), tokens), out.length);
        pool.smallBatchTask().run(w, x, xOffset, out, outOffset, tokens);
    }

    /// [#rmsNorm] of every token of a tiled batch of `width` features: `out` and `x` (may be the same array) in the
    /// tiled layout, `tiles` whole tiles. Each token's squares are summed in double in feature order.
    public static void rmsNormTiled(float[] out, float[] x, float[] weight, int width, int tiles, float eps) {
        for (int tile = 0; tile < tiles; tile++) {
            rmsNormTile(out, x, tile * width * TILE, weight, width, eps);
        }
    }

    /// [#rmsNorm] of each of the `TILE` tokens of one tile of `width` features at `x[base ..]` (`out` at the same
    /// offset; may be `x`). A tile's features `[f0, f0 + g)` are themselves one tile of width `g` at
    /// `base + f0 · TILE`: that is how per-head norms run on a batch.
    public static void rmsNormTile(float[] out, float[] x, int base, float[] weight, int width, float eps) {
        Objects.checkFromIndexSize(base, width * TILE, out.length);
        Objects.checkFromIndexSize(base, width * TILE, x.length);
        Objects.checkFromIndexSize(0, width, weight.length);
        DoubleVector s00 = DoubleVector.zero(D);
        DoubleVector s01 = s00;
        DoubleVector s10 = s00;
        DoubleVector s11 = s00;
        for (int f = 0; f < width; f++) {
            FloatVector v0 = FloatVector.fromArray(F, x, base + f * TILE);
            FloatVector v1 = FloatVector.fromArray(F, x, base + f * TILE + L);
            FloatVector q0 = v0.mul(v0);
            FloatVector q1 = v1.mul(v1);
            s00 = ((DoubleVector) q0.convertShape(VectorOperators.F2D, D, 0)).add(s00);
            s01 = ((DoubleVector) q0.convertShape(VectorOperators.F2D, D, 1)).add(s01);
            s10 = ((DoubleVector) q1.convertShape(VectorOperators.F2D, D, 0)).add(s10);
            s11 = ((DoubleVector) q1.convertShape(VectorOperators.F2D, D, 1)).add(s11);
        }
        // per token, as rmsNorm: mean = (float) (sum / width); scale = 1 / (float) sqrt(mean + eps)
        double n = width;
        FloatVector m0 = ((FloatVector) s00.div(n).convertShape(VectorOperators.D2F, F, 0))
                .add((FloatVector) s01.div(n).convertShape(VectorOperators.D2F, F, -1));
        FloatVector m1 = ((FloatVector) s10.div(n).convertShape(VectorOperators.D2F, F, 0))
                .add((FloatVector) s11.div(n).convertShape(VectorOperators.D2F, F, -1));
        FloatVector one = FloatVector.broadcast(F, 1f);
        FloatVector scale0 = one.div(m0.add(eps).sqrt());
        FloatVector scale1 = one.div(m1.add(eps).sqrt());
        for (int f = 0; f < width; f++) {
            int o = base + f * TILE;
            float wf = weight[f];
            FloatVector.fromArray(F, x, o).mul(scale0).mul(wf).intoArray(out, o);
            FloatVector.fromArray(F, x, o + L).mul(scale1).mul(wf).intoArray(out, o + L);
        }
    }

    /// RoPE of every token of a tiled batch: `heads` heads of `headSize` in `width` features per token, the first
    /// `pairs` pairs of each head rotated. Pair `i` of a head is its dimensions `i · step` and `i · step + second`:
    /// `step = 2, second = 1` for ggml's normal mode (adjacent pairs), `step = 1, second = pairs` for NEOX. Token `t`
    /// is at position `pos0 + t`, whose angles are `cos[i · stride + pos]`, `sin[i · stride + pos]` for pair `i` (the
    /// tables hold at least `pos0 + tiles · TILE` positions per pair).
    public static void ropeTiled(float[] x, int width, int heads, int headSize, int pairs, int step, int second,
                                 int tiles, float[] cos, float[] sin, int stride, int pos0) {
        Objects.checkFromIndexSize(0, tiles * width * TILE, x.length);
        Objects.checkFromIndexSize(0, (pairs - 1) * stride + pos0 + tiles * TILE, cos.length);
        Objects.checkFromIndexSize(0, (pairs - 1) * stride + pos0 + tiles * TILE, sin.length);
        if ((pairs - 1) * step + second >= headSize || heads * headSize > width) {
            throw new IllegalArgumentException("RoPE pairs beyond the head: " + pairs + " pairs, step " + step
                    + ", second " + second + ", head size " + headSize);
        }
        for (int tile = 0; tile < tiles; tile++) {
            int p = pos0 + tile * TILE;
            for (int h = 0; h < heads; h++) {
                int base = (tile * width + h * headSize) * TILE;
                for (int i = 0; i < pairs; i++) {
                    int o0 = base + i * step * TILE;
                    int o1 = o0 + second * TILE;
                    int c = i * stride + p;
                    for (int part = 0; part < TILE; part += L) {
                        FloatVector cv = FloatVector.fromArray(F, cos, c + part);
                        FloatVector sv = FloatVector.fromArray(F, sin, c + part);
                        FloatVector x0 = FloatVector.fromArray(F, x, o0 + part);
                        FloatVector x1 = FloatVector.fromArray(F, x, o1 + part);
                        x0.mul(cv).sub(x1.mul(sv)).intoArray(x, o0 + part);
                        x0.mul(sv).add(x1.mul(cv)).intoArray(x, o1 + part);
                    }
                }
            }
        }
    }

    /// Whether `x[0 .. n)` holds no NaN and no infinity: `0 · x` is 0 for every finite `x` and NaN otherwise,
    /// so one vector sum answers for all of them.
    public static boolean allFinite(float[] x, int n) {
        Objects.checkFromIndexSize(0, n, x.length);
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            acc = FloatVector.fromArray(F, x, i).mul(0f).add(acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += x[i] * 0f;
        }
        return sum == 0f;
    }

    /// `x[i] += y[i]` for `i < n`.
    public static void add(float[] x, float[] y, int n) {
        Objects.checkFromIndexSize(0, n, x.length);
        Objects.checkFromIndexSize(0, n, y.length);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector.fromArray(F, x, i).add(FloatVector.fromArray(F, y, i)).intoArray(x, i);
        }
        for (; i < n; i++) {
            x[i] += y[i];
        }
    }

    /// Decodes one row of `w` with the scalar reference dequantization; see [Matrix#dequantizeRow].
    public static void dequantizeRow(Matrix w, int row, float[] out, int outOffset) {
        w.dequantizeRow(row, out, outOffset);
    }

    static IllegalArgumentException unsupported(GGMLType type) {
        return new IllegalArgumentException("llamaj has no kernels for " + type + " weights");
    }

    /// RMS normalisation, as llama.cpp's `ggml_rms_norm` followed by the multiplication with the norm weight:
    /// `out[outOff + i] = (x[xOff + i] · scale) · weight[i]` with `scale = 1 / sqrt(mean(x²) + eps)`.
    ///
    /// As in ggml, each square is a float product summed in double, and `mean` and `scale` are floats; the sum runs
    /// over vector lanes in parallel rather than left to right, which can differ from ggml's order only in the
    /// rounding of the double sum. `out` may be `x` (same offset).
    public static void rmsNorm(float[] out, int outOff, float[] x, int xOff, float[] weight, int size, float eps) {
        Objects.checkFromIndexSize(outOff, size, out.length);
        Objects.checkFromIndexSize(xOff, size, x.length);
        Objects.checkFromIndexSize(0, size, weight.length);
        DoubleVector s0 = DoubleVector.zero(D);
        DoubleVector s1 = DoubleVector.zero(D);
        int i = 0;
        for (int bound = F.loopBound(size); i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(F, x, xOff + i);
            FloatVector sq = v.mul(v);
            s0 = ((DoubleVector) sq.convertShape(VectorOperators.F2D, D, 0)).add(s0);
            s1 = ((DoubleVector) sq.convertShape(VectorOperators.F2D, D, 1)).add(s1);
        }
        double sum = 0;
        DoubleVector s = s0.add(s1);
        for (int k = 0; k < D.length(); k++) { // in lane order: reduceLanes' order is unspecified
            sum += s.lane(k);
        }
        for (; i < size; i++) {
            float v = x[xOff + i];
            sum += v * v;
        }
        float mean = (float) (sum / size);
        float scale = 1.0f / (float) Math.sqrt(mean + eps);
        i = 0;
        for (int bound = F.loopBound(size); i < bound; i += L) {
            FloatVector.fromArray(F, x, xOff + i).mul(scale).mul(FloatVector.fromArray(F, weight, i))
                    .intoArray(out, outOff + i);
        }
        for (; i < size; i++) {
            out[outOff + i] = (x[xOff + i] * scale) * weight[i];
        }
    }

    /// In-place softmax of `x[off .. off + size)`: `exp(x − max) / Σ exp(x − max)`, the sum kept in double and the
    /// normalisation a multiplication by its float reciprocal, as ggml's `ggml_vec_soft_max_f32`. `exp` is
    /// [Simd#exp] (within about 2 ulp of the true value, like ggml's `expf` but not bit-identical to it).
    public static void softmax(float[] x, int off, int size) {
        Objects.checkFromIndexSize(off, size, x.length);
        if (size == 0) {
            return;
        }
        int bound = F.loopBound(size);
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (bound > 0) {
            FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i < bound; i += L) {
                m = FloatVector.fromArray(F, x, off + i).max(m);
            }
            max = m.reduceLanes(VectorOperators.MAX); // exact in any order
        }
        for (; i < size; i++) {
            max = Math.max(max, x[off + i]);
        }
        DoubleVector s0 = DoubleVector.zero(D);
        DoubleVector s1 = DoubleVector.zero(D);
        for (i = 0; i < bound; i += L) {
            FloatVector.fromArray(F, x, off + i).sub(max).intoArray(x, off + i);
        }
        Simd.expInPlace(x, off, off + bound);
        for (i = 0; i < bound; i += L) {
            FloatVector e = FloatVector.fromArray(F, x, off + i);
            s0 = ((DoubleVector) e.convertShape(VectorOperators.F2D, D, 0)).add(s0);
            s1 = ((DoubleVector) e.convertShape(VectorOperators.F2D, D, 1)).add(s1);
        }
        double sum = 0;
        DoubleVector s = s0.add(s1);
        for (int k = 0; k < D.length(); k++) {
            sum += s.lane(k);
        }
        for (; i < size; i++) { // the tail with the scalar twin of the vector exp: the same value for every element
            float e = Simd.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (i = 0; i < bound; i += L) {
            FloatVector.fromArray(F, x, off + i).mul(inv).intoArray(x, off + i);
        }
        for (; i < size; i++) {
            x[off + i] *= inv;
        }
    }

    /// `Σ a[aOff + i] · b[bOff + i]` for `i < n`, in float with several vector accumulators.
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        Objects.checkFromIndexSize(aOff, n, a.length);
        Objects.checkFromIndexSize(bOff, n, b.length);
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - 4 * L; i += 4 * L) {
            acc0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc0);
            acc1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), acc1);
            acc2 = FloatVector.fromArray(F, a, aOff + i + 2 * L)
                    .fma(FloatVector.fromArray(F, b, bOff + i + 2 * L), acc2);
            acc3 = FloatVector.fromArray(F, a, aOff + i + 3 * L)
                    .fma(FloatVector.fromArray(F, b, bOff + i + 3 * L), acc3);
        }
        for (; i <= n - L; i += L) {
            acc0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc0);
        }
        FloatVector v = acc0.add(acc1).add(acc2.add(acc3));
        // butterfly: fixed-order lane sum, then every lane holds it (see Simd)
        v = v.add(v.rearrange(Simd.SWAP_HALF));
        v = v.add(v.rearrange(Simd.SWAP_QUARTER));
        if (L >= 8) {
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
        }
        if (L >= 16) {
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
        }
        float sum = v.lane(0);
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    /// `y[yOff + i] += a · x[xOff + i]` for `i < n` (one FMA per element).
    public static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        Objects.checkFromIndexSize(xOff, n, x.length);
        Objects.checkFromIndexSize(yOff, n, y.length);
        FloatVector va = FloatVector.broadcast(F, a);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector.fromArray(F, x, xOff + i).fma(va, FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] = Math.fma(a, x[xOff + i], y[yOff + i]);
        }
    }

    /// SwiGLU, in place: `gate[i] = silu(gate[i]) · up[i]` for `i < n`, with `silu(g) = g / (1 + exp(−g))` as ggml
    /// (`exp` is [Simd#exp]).
    public static void swiGlu(float[] gate, float[] up, int n) {
        swiGlu(gate, up, 0, n);
    }

    /// [#swiGlu] of `[from, from + n)`.
    static void swiGlu(float[] gate, float[] up, int from, int n) {
        Objects.checkFromIndexSize(from, n, gate.length);
        Objects.checkFromIndexSize(from, n, up.length);
        n += from;
        int vectors = from + (n - from) / L * L;
        Simd.siluInPlace(gate, from, vectors);
        int i = from;
        for (; i < vectors; i += L) {
            FloatVector.fromArray(F, gate, i).mul(FloatVector.fromArray(F, up, i)).intoArray(gate, i);
        }
        for (; i < n; i++) { // the scalar twin of the vector exp: the same value for every element
            float g = gate[i];
            gate[i] = g / (Simd.exp(-g) + 1f) * up[i];
        }
    }

    /// GeGLU, in place: `gate[i] = gelu(gate[i]) · up[i]` for `i < n`, with the tanh approximation of GELU as
    /// llama.cpp's CPU backend computes it: the input rounded to half precision indexes a table of half-precision
    /// results (`ggml_table_gelu_f16`), below -10 the result is 0 and from 10 on the input itself. Matching that
    /// rounding is what makes Gemma's tokens agree with llama.cpp's.
    public static void geGlu(float[] gate, float[] up, int n) {
        Objects.checkFromIndexSize(0, n, gate.length);
        Objects.checkFromIndexSize(0, n, up.length);
        float[] table = GeluTable.TABLE;
        for (int i = 0; i < n; i++) {
            float g = gate[i];
            float a = g <= -10f ? 0f : g >= 10f ? g : table[Float.floatToFloat16(g) & 0xFFFF];
            gate[i] = a * up[i];
        }
    }

    /// `gelu(x) = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` in float, as ggml's `ggml_gelu_f32`.
    static float gelu(float x) {
        return 0.5f * x * (1.0f + (float) Math.tanh(0.7978845608028654f * x * (1.0f + 0.044715f * x * x)));
    }

    /// The GELU of every half-precision value, rounded to half precision (built on first use: 256 KiB).
    private static final class GeluTable {
        static final float[] TABLE = new float[1 << 16];

        static {
            for (int i = 0; i < TABLE.length; i++) {
                TABLE[i] = Float.float16ToFloat(Float.floatToFloat16(gelu(Float.float16ToFloat((short) i))));
            }
        }
    }

    /// A per-format kernel over a range of rows: `out[outOffset + r] = row r · x` for `r ∈ [from, to)`. `in` holds
    /// what [Input#prepare] computed from `x` (from `xOffset`) for the type.
    @FunctionalInterface
    interface RowKernel {
        void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                    float[] out, int outOffset, int from, int to, Input in);
    }

    /// The arguments of one parallel region of matrix-vector products sharing `x`, held by the pool so a product
    /// allocates nothing. The region's index space is the matrices' rows one after the other, each matrix's share
    /// rounded up to whole [#ROW_GRAIN]s so that a chunk never straddles a row group; or, for the SwiGLU pair, the
    /// rows once, each chunk computing both matrices' rows and then the activation.
    static final class MatVecTask implements Parallel.RangeTask {
        private static final int MAX = 3;
        private final RowKernel[] kernels = new RowKernel[MAX];
        private final MemorySegment[] data = new MemorySegment[MAX];
        private final long[] rowBytes = new long[MAX];
        private final int[] rows = new int[MAX];
        private final int[] start = new int[MAX + 1];
        private final float[][] outs = new float[MAX][];
        private final int[] outOffsets = new int[MAX];
        private int count;
        private int cols;
        private float[] x;
        private int xOffset;
        private boolean swiGlu;
        private final Input input = new Input();

        void begin(float[] x, int xOffset) {
            this.x = x;
            this.xOffset = xOffset;
            this.count = 0;
            input.begin(x, xOffset);
            this.start[0] = 0;
        }

        void add(Matrix w, float[] out, int outOffset) {
            if (count > 0 && w.cols() != cols) {
                throw new IllegalArgumentException("matrices of " + cols + " and " + w.cols() + " columns");
            }
            Objects.checkFromIndexSize(xOffset, w.cols(), x.length);
            Objects.checkFromIndexSize(outOffset, w.rows(), out.length);
            RowKernel k = rowKernel(w);
            int i = count++;
            cols = w.cols();
            kernels[i] = k;
            data[i] = w.data();
            rowBytes[i] = w.stride();
            rows[i] = w.rows();
            outs[i] = out;
            outOffsets[i] = outOffset;
            start[i + 1] = start[i] + (w.rows() + ROW_GRAIN - 1) / ROW_GRAIN * ROW_GRAIN;
            input.prepare(w.type(), w.layout(), cols);
        }

        void run(Parallel pool, boolean swiGlu) {
            this.swiGlu = swiGlu;
            pool.forRange(swiGlu ? rows[0] : start[count], ROW_GRAIN, this);
        }

        void clear() {
            for (int i = 0; i < MAX; i++) {
                kernels[i] = null;
                data[i] = null;
                outs[i] = null;
            }
            x = null;
            input.clear();
        }

        @Override
        public void run(int from, int to) {
            if (swiGlu) {
                kernels[0].matVec(data[0], rowBytes[0], cols, x, xOffset, outs[0], outOffsets[0], from, to, input);
                kernels[1].matVec(data[1], rowBytes[1], cols, x, xOffset, outs[1], outOffsets[1], from, to, input);
                swiGlu(outs[0], outs[1], from, to - from);
                return;
            }
            for (int i = 0; i < count; i++) {
                int a = Math.max(from, start[i]) - start[i];
                int b = Math.min(Math.min(to, start[i + 1]) - start[i], rows[i]);
                if (a < b) {
                    kernels[i].matVec(data[i], rowBytes[i], cols, x, xOffset, outs[i], outOffsets[i], a, b, input);
                }
            }
        }
    }
}
