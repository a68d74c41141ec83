package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.L;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;

/// Matrix products for a handful of tokens: the decode steps of several sequences run as one batch
/// ([Kernels#matMulFew]).
///
/// **Why not [MatMul].** The tiled product puts tokens along the vector lanes, so it computes a whole tile (or
/// half of one) whatever the number of real tokens: at eight tokens, half to three quarters of its arithmetic is
/// padding, and a step of eight sequences costs as much as one of sixteen or thirty-two. Here the lanes run along
/// the columns instead (dot products), so the arithmetic is exactly that of the real tokens.
///
/// **Scheme.** Each thread takes groups of [#ROWS] rows, dequantizes a group once into a float panel (its own,
/// `ROWS × cols` floats: L2-resident), and computes the dot products of those rows with the tokens, [#TOKENS] at a
/// time: 16 vector accumulators, per vector of columns four weight loads, four activation loads and sixteen FMAs.
/// The panel is reused for every group of tokens, so each weight is read from memory and dequantized once per
/// product, whatever the number of tokens; reading and dequantizing is then shared by all the sequences of the step,
/// which is where batching gains on a memory-bound machine. The activations arrive in the tiled layout
/// ([Kernels#tiledIndex]) and are copied once per product into token-major rows, which vector loads can read.
///
/// **No panel for `Q4_0` and `Q8_0`** in the four-row layout with 512-bit vectors (what the engine loads them into
/// on such machines): storing and reloading the panel cost more than the multiplies of eight tokens, so
/// [SmallBatchQ4_0] and [SmallBatchQ8_0] decode each row's block into registers and multiply it at once, with the
/// panel's exact values and FMA order (the same bits, so the GGUF layout and a partial last group keep the panel).
///
/// **Numerics.** Each output is one FMA chain per lane over the columns in order, the lanes then summed in order
/// (in scalar code: the same in the interpreter and in compiled code), plus the columns beyond the last whole
/// vector in order: the result for a token depends neither on the other
/// tokens of the product, nor on their number, nor on the thread count. That is what lets a sequence decoded
/// together with others produce exactly the tokens it produces alone. It differs in rounding from `matVec` and
/// from [MatMul] (other summation orders).
final class SmallBatch {
    /// Rows per panel.
    static final int ROWS = 4;
    /// Tokens per pass of the widest microkernel.
    static final int TOKENS = 4;

    private SmallBatch() {
    }

    /// The per-pool state of products: per-thread panels, the token-major copy of the activations, and the
    /// arguments of the product in flight.
    static final class Task implements Parallel.RangeTask {
        private final Parallel pool;
        private final float[][] panels;
        private final float[][] sums;
        private float[] xs = new float[0];
        // one product
        private Matrix w;
        private WeightFormat format;
        private float[] out;
        private int outOffset;
        private int tokens;

        Task(Parallel pool) {
            this.pool = pool;
            this.panels = new float[pool.threads()][];
            this.sums = new float[pool.threads()][];
        }

        void run(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int tokens) {
            int cols = w.cols();
            int padded = padded(tokens);
            if (xs.length < padded * cols) {
                xs = new float[padded * cols];
            }
            for (int t = 0; t < tokens; t++) { // tiled → token-major
                int from = xOffset + Kernels.tiledIndex(cols, t, 0);
                int to = t * cols;
                for (int f = 0; f < cols; f++) {
                    xs[to + f] = x[from + f * MatMul.TILE];
                }
            }
            Arrays.fill(xs, tokens * cols, padded * cols, 0f);
            this.w = w;
            this.format = WeightFormat.of(w);
            this.out = out;
            this.outOffset = outOffset;
            this.tokens = padded;
            try {
                pool.forRange((w.rows() + ROWS - 1) / ROWS, 1, this);
            } finally {
                this.w = null;
                this.out = null;
            }
        }

        @Override
        public void run(int from, int to) {
            int t = pool.threadIndex();
            int cols = w.cols();
            float[] panel = panels[t];
            if (panel == null || panel.length < ROWS * cols) {
                panel = panels[t] = new float[ROWS * cols];
                sums[t] = new float[ROWS * TOKENS * L];
            }
            for (int g = from; g < to; g++) {
                group(w, format, g * ROWS, panel, sums[t], xs, tokens, out, outOffset);
            }
        }
    }

    /// Tokens a product of `tokens` tokens computes: a remainder of 2 or 3 after the groups of 8 is rounded up to
    /// 4, one of 6 or 7 up to 8, with zero activations. The microkernels run 8, 4 or 1 tokens per pass over the
    /// weights, and a pass decodes the weights again: 2 tokens as two one-token passes cost more than one pass of
    /// 4 (and 7 as 4 + 1 + 1 + 1 more than one of 8). The extra outputs land in the tile's padding tokens (zeros),
    /// and a token's result does not depend on the microkernel that computes it.
    static int padded(int tokens) {
        int r = tokens % 8;
        return r == 2 || r == 3 ? tokens - r + 4 : r >= 6 ? tokens - r + 8 : tokens;
    }

    /// Rows `r0 .. r0 + ROWS − 1` of `out = w · x` for `tokens` token-major rows of `xs`.
    static void group(Matrix w, WeightFormat format, int r0, float[] panel, float[] sums, float[] xs, int tokens,
                      float[] out, int outOffset) {
        int rows = w.rows();
        int cols = w.cols();
        int valid = Math.min(ROWS, rows - r0);
        // whole four-row groups of Q4_0 and Q8_0 are decoded in registers instead, with the same bits
        if (valid == ROWS && SmallBatchQ4_0.applies(format)) {
            long groupBytes = (long) (cols / Q4_0.BLOCK) * Q4_0.GROUP_BYTES;
            SmallBatchQ4_0.group(w.data(), (r0 / ROWS) * groupBytes, cols, xs, tokens, out, outOffset, rows, r0, sums);
            return;
        }
        if (valid == ROWS && SmallBatchQ8_0.applies(format)) {
            long groupBytes = (long) (cols / Q8_0.BLOCK) * Q8_0.GROUP_BYTES;
            SmallBatchQ8_0.group(w.data(), (r0 / ROWS) * groupBytes, cols, xs, tokens, out, outOffset, rows, r0, sums);
            return;
        }
        dequantize(w, format, r0, valid, panel);
        if (valid < ROWS) {
            Arrays.fill(panel, valid * cols, ROWS * cols, 0f);
        }
        int t = 0;
        for (; t + TOKENS <= tokens; t += TOKENS) {
            dot4x4(panel, cols, xs, t * cols, out, outOffset, rows, r0, valid, t, sums);
        }
        for (; t < tokens; t++) {
            dot4x1(panel, cols, xs, t * cols, out, outOffset, rows, r0, valid, t, sums);
        }
    }

    /// Rows `r0 .. r0 + n − 1` of `w` as floats, `cols` apart in `panel`: bit for bit the scalar reference's values.
    static void dequantize(Matrix w, WeightFormat format, int r0, int n, float[] panel) {
        int cols = w.cols();
        MemorySegment data = w.data();
        for (int r = 0; r < n; r++) {
            if (format.rows4() != null) {
                format.rows4().decode(data, cols, r0 + r, 0, cols, panel, r * cols, true);
            } else {
                format.unpack().dequantize(data, (r0 + r) * w.stride(), panel, r * cols, cols);
            }
        }
    }

    /// Four panel rows times four tokens (token-major from `x0`): sixteen dot products.
    private static void dot4x4(float[] a, int cols, float[] x, int x0, float[] out, int outOffset, int rows, int r0,
                               int valid, int t0, float[] sums) {
        FloatVector c00 = FloatVector.zero(F);
        FloatVector c01 = c00;
        FloatVector c02 = c00;
        FloatVector c03 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c12 = c00;
        FloatVector c13 = c00;
        FloatVector c20 = c00;
        FloatVector c21 = c00;
        FloatVector c22 = c00;
        FloatVector c23 = c00;
        FloatVector c30 = c00;
        FloatVector c31 = c00;
        FloatVector c32 = c00;
        FloatVector c33 = c00;
        int bound = cols - cols % L;
        for (int k = 0; k < bound; k += L) {
            FloatVector w0 = FloatVector.fromArray(F, a, k);
            FloatVector w1 = FloatVector.fromArray(F, a, cols + k);
            FloatVector w2 = FloatVector.fromArray(F, a, 2 * cols + k);
            FloatVector w3 = FloatVector.fromArray(F, a, 3 * cols + k);
            FloatVector v = FloatVector.fromArray(F, x, x0 + k);
            c00 = w0.fma(v, c00);
            c10 = w1.fma(v, c10);
            c20 = w2.fma(v, c20);
            c30 = w3.fma(v, c30);
            v = FloatVector.fromArray(F, x, x0 + cols + k);
            c01 = w0.fma(v, c01);
            c11 = w1.fma(v, c11);
            c21 = w2.fma(v, c21);
            c31 = w3.fma(v, c31);
            v = FloatVector.fromArray(F, x, x0 + 2 * cols + k);
            c02 = w0.fma(v, c02);
            c12 = w1.fma(v, c12);
            c22 = w2.fma(v, c22);
            c32 = w3.fma(v, c32);
            v = FloatVector.fromArray(F, x, x0 + 3 * cols + k);
            c03 = w0.fma(v, c03);
            c13 = w1.fma(v, c13);
            c23 = w2.fma(v, c23);
            c33 = w3.fma(v, c33);
        }
        // Reduced outside the vector code: a helper taking vectors, called sixteen times, would exceed C2's
        // inlining budget and box them (see the package notes).
        c00.intoArray(sums, 0);
        c01.intoArray(sums, L);
        c02.intoArray(sums, 2 * L);
        c03.intoArray(sums, 3 * L);
        c10.intoArray(sums, 4 * L);
        c11.intoArray(sums, 5 * L);
        c12.intoArray(sums, 6 * L);
        c13.intoArray(sums, 7 * L);
        c20.intoArray(sums, 8 * L);
        c21.intoArray(sums, 9 * L);
        c22.intoArray(sums, 10 * L);
        c23.intoArray(sums, 11 * L);
        c30.intoArray(sums, 12 * L);
        c31.intoArray(sums, 13 * L);
        c32.intoArray(sums, 14 * L);
        c33.intoArray(sums, 15 * L);
        finish(sums, 4, 4, a, cols, x, x0, bound, out, outOffset, rows, r0, valid, t0);
    }

    /// Four panel rows times one token.
    private static void dot4x1(float[] a, int cols, float[] x, int x0, float[] out, int outOffset, int rows, int r0,
                               int valid, int t, float[] sums) {
        FloatVector c0 = FloatVector.zero(F);
        FloatVector c1 = c0;
        FloatVector c2 = c0;
        FloatVector c3 = c0;
        int bound = cols - cols % L;
        for (int k = 0; k < bound; k += L) {
            FloatVector v = FloatVector.fromArray(F, x, x0 + k);
            c0 = FloatVector.fromArray(F, a, k).fma(v, c0);
            c1 = FloatVector.fromArray(F, a, cols + k).fma(v, c1);
            c2 = FloatVector.fromArray(F, a, 2 * cols + k).fma(v, c2);
            c3 = FloatVector.fromArray(F, a, 3 * cols + k).fma(v, c3);
        }
        c0.intoArray(sums, 0);
        c1.intoArray(sums, L);
        c2.intoArray(sums, 2 * L);
        c3.intoArray(sums, 3 * L);
        finish(sums, 4, 1, a, cols, x, x0, bound, out, outOffset, rows, r0, valid, t);
    }

    /// Finishes `rowCount × tokenCount` dot products whose lane vectors are in `sums` (row-major, `L` floats each):
    /// the lanes summed in order, then the columns beyond the last whole vector in order, stored
    /// as rows `r0 ..` (the valid ones) of tokens `t0 ..` in the tiled `out`.
    static void finish(float[] sums, int rowCount, int tokenCount, float[] a, int cols, float[] x, int x0,
                               int bound, float[] out, int outOffset, int rows, int r0, int valid, int t0) {
        for (int r = 0; r < Math.min(rowCount, valid); r++) {
            for (int t = 0; t < tokenCount; t++) {
                float s = lanes(sums, (r * tokenCount + t) * L, L);
                int xt = x0 + t * cols;
                for (int k = bound; k < cols; k++) {
                    s = Math.fma(a[r * cols + k], x[xt + k], s);
                }
                out[outOffset + Kernels.tiledIndex(rows, t0 + t, r0 + r)] = s;
            }
        }
    }

    /// `v[from .. from + n)` summed in order.
    private static float lanes(float[] v, int from, int n) {
        float s = 0;
        for (int i = from; i < from + n; i++) {
            s += v[i];
        }
        return s;
    }
}
