package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.D;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.L;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

import dev.llamaj.gguf.GGMLType;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/// The single public entry point to compute: the matrix-vector product over weights in any supported GGUF encoding,
/// and the small float helpers of the Llama forward pass.
///
/// `matVec` dispatches once per call (one exhaustive `switch` on the weight type) to a per-format kernel that runs
/// over a contiguous range of rows; the rows are split across a [Parallel] pool. The kernels read weights straight
/// from the segment (no repacking) and are written with the Vector API for `F32`, `F16`, `BF16`, `Q8_0`, `Q4_0`,
/// `Q4_K` and `Q6_K`, the types of common model files; `Q4_1`, `Q5_0`, `Q5_1`, `Q2_K`, `Q3_K` and `Q5_K` use scalar
/// kernels for now. A warmed-up product allocates nothing.
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
        return switch (type) {
            case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> true;
            case Q8_1, Q8_K, IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, I8, I16, I32, I64, F64,
                 IQ1_M, TQ1_0, TQ2_0, MXFP4 -> false;
        };
    }

    /// `out[outOffset + r] = Σ_c w[r][c] · x[xOffset + c]` for every row `r` of `w`, rows split across `pool`.
    ///
    /// `x` and `out` must not overlap.
    ///
    /// @throws IllegalArgumentException  if `w.type()` is not supported (the message names it)
    /// @throws IndexOutOfBoundsException if `x` has fewer than `w.cols()` floats from `xOffset`, or `out` fewer than
    ///                                   `w.rows()` from `outOffset`
    public static void matVec(Parallel pool, Matrix w, float[] x, int xOffset, float[] out, int outOffset) {
        Objects.checkFromIndexSize(xOffset, w.cols(), x.length);
        Objects.checkFromIndexSize(outOffset, w.rows(), out.length);
        RowKernel kernel = switch (w.type()) {
            case F32 -> F32::matVec;
            case F16 -> F16::matVec;
            case BF16 -> BF16::matVec;
            case Q4_0 -> Q4_0::matVec;
            case Q4_1 -> Q4_1::matVec;
            case Q5_0 -> Q5_0::matVec;
            case Q5_1 -> Q5_1::matVec;
            case Q8_0 -> Q8_0::matVec;
            case Q2_K -> Q2_K::matVec;
            case Q3_K -> Q3_K::matVec;
            case Q4_K -> Q4_K::matVec;
            case Q5_K -> Q5_K::matVec;
            case Q6_K -> Q6_K::matVec;
            case Q8_1, Q8_K, IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, I8, I16, I32, I64, F64,
                 IQ1_M, TQ1_0, TQ2_0, MXFP4 -> throw unsupported(w.type());
        };
        MatVecTask task = pool.matVecTask;
        task.set(kernel, w, x, xOffset, out, outOffset);
        try {
            pool.forRange(w.rows(), ROW_GRAIN, task);
        } finally {
            task.clear();
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
            s0 = s0.add(sq.convertShape(VectorOperators.F2D, D, 0));
            s1 = s1.add(sq.convertShape(VectorOperators.F2D, D, 1));
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
                m = m.max(FloatVector.fromArray(F, x, off + i));
            }
            max = m.reduceLanes(VectorOperators.MAX); // exact in any order
        }
        for (; i < size; i++) {
            max = Math.max(max, x[off + i]);
        }
        DoubleVector s0 = DoubleVector.zero(D);
        DoubleVector s1 = DoubleVector.zero(D);
        for (i = 0; i < bound; i += L) {
            FloatVector e = Simd.exp(FloatVector.fromArray(F, x, off + i).sub(max));
            e.intoArray(x, off + i);
            s0 = s0.add(e.convertShape(VectorOperators.F2D, D, 0));
            s1 = s1.add(e.convertShape(VectorOperators.F2D, D, 1));
        }
        if (i < size) { // the tail, through a mask, so every element takes the same exp
            VectorMask<Float> m = F.indexInRange(i, size);
            FloatVector e = FloatVector.zero(F)
                    .blend(Simd.exp(FloatVector.fromArray(F, x, off + i, m).sub(max)), m);
            e.intoArray(x, off + i, m);
            s0 = s0.add(e.convertShape(VectorOperators.F2D, D, 0));
            s1 = s1.add(e.convertShape(VectorOperators.F2D, D, 1));
        }
        double sum = 0;
        DoubleVector s = s0.add(s1);
        for (int k = 0; k < D.length(); k++) {
            sum += s.lane(k);
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
        float sum = v.reduceLanes(VectorOperators.MAX);
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
        Objects.checkFromIndexSize(0, n, gate.length);
        Objects.checkFromIndexSize(0, n, up.length);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            FloatVector g = FloatVector.fromArray(F, gate, i);
            g.div(Simd.exp(g.neg()).add(1f)).mul(FloatVector.fromArray(F, up, i)).intoArray(gate, i);
        }
        if (i < n) {
            VectorMask<Float> m = F.indexInRange(i, n);
            FloatVector g = FloatVector.fromArray(F, gate, i, m);
            g.div(Simd.exp(g.neg()).add(1f)).mul(FloatVector.fromArray(F, up, i, m)).intoArray(gate, i, m);
        }
    }

    /// A per-format kernel over a range of rows: `out[outOffset + r] = row r · x` for `r ∈ [from, to)`.
    @FunctionalInterface
    interface RowKernel {
        void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                    float[] out, int outOffset, int from, int to);
    }

    /// The arguments of one `matVec`, held by the pool so a product allocates nothing.
    static final class MatVecTask implements Parallel.RangeTask {
        private RowKernel kernel;
        private MemorySegment data;
        private long rowBytes;
        private int cols;
        private float[] x;
        private int xOffset;
        private float[] out;
        private int outOffset;

        void set(RowKernel kernel, Matrix w, float[] x, int xOffset, float[] out, int outOffset) {
            this.kernel = kernel;
            this.data = w.data();
            this.rowBytes = w.rowBytes();
            this.cols = w.cols();
            this.x = x;
            this.xOffset = xOffset;
            this.out = out;
            this.outOffset = outOffset;
        }

        void clear() {
            kernel = null;
            data = null;
            x = null;
            out = null;
        }

        @Override
        public void run(int from, int to) {
            kernel.matVec(data, rowBytes, cols, x, xOffset, out, outOffset, from, to);
        }
    }
}
