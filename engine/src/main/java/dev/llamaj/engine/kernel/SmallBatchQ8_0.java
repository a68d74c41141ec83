package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/// The small-batch product ([SmallBatch]) of `Q8_0` weights in the four-row layout ([Matrix.Layout#ROWS4]) with
/// 512-bit vectors: [SmallBatchQ4_0]'s scheme (each row's block decoded into two registers and multiplied at once
/// with the tokens of the pass, no panel) for `Q8_0`'s blocks, whose 32 signed bytes widen straight to floats.
///
/// **The same bits as the panel:** a weight is `q·d`, as the panel's, and the accumulators run the same FMA chains.
final class SmallBatchQ8_0 {
    private static final int BLOCK = Q8_0.BLOCK;
    private static final int GROUP_BYTES = Q8_0.GROUP_BYTES;

    private SmallBatchQ8_0() {
    }

    /// Whether `format` has this kernel: `Q8_0` in the four-row layout, with 512-bit vectors (16 quant bytes widen to
    /// exactly one float vector).
    static boolean applies(WeightFormat format) {
        return L == 16 && format.type() == dev.llamaj.gguf.GGMLType.Q8_0 && format.layout() == Matrix.Layout.ROWS4;
    }

    /// Rows `r0 .. r0 + 3` (a whole group, from byte `g` of `w`) times `tokens` token-major rows of `xs`, finished
    /// into the tiled `out` by [SmallBatch]'s `finish` (no columns beyond the last whole vector: `cols` is a
    /// multiple of 32).
    static void group(MemorySegment w, long g, int cols, float[] xs, int tokens, float[] out, int outOffset,
                      int rows, int r0, float[] sums) {
        int nb = cols / BLOCK;
        int t = 0;
        for (; t + 8 <= tokens; t += 8) {
            rows2x8(w, g, nb, 0, xs, cols, t, sums);
            SmallBatch.finish(sums, 2, 8, null, cols, xs, t * cols, cols, out, outOffset, rows, r0, 2, t);
            rows2x8(w, g, nb, 2, xs, cols, t, sums);
            SmallBatch.finish(sums, 2, 8, null, cols, xs, t * cols, cols, out, outOffset, rows, r0 + 2, 2, t);
        }
        for (; t + 4 <= tokens; t += 4) {
            rows4x4(w, g, nb, 0, xs, cols, t, sums);
            SmallBatch.finish(sums, 4, 4, null, cols, xs, t * cols, cols, out, outOffset, rows, r0, 4, t);
        }
        for (; t < tokens; t++) {
            rows4x1(w, g, nb, 0, xs, cols, t, sums);
            SmallBatch.finish(sums, 4, 1, null, cols, xs, t * cols, cols, out, outOffset, rows, r0, 4, t);
        }
    }

    /// Rows `j0`, `j0 + 1` of the group at byte `g` times tokens `t0 .. t0 + 7` (token-major `x`, `cols` apart):
    /// lane vectors into `sums` (row by row, the tokens within, as [SmallBatch]'s `finish` reads them). Written out:
    /// a helper taking vectors would box them (see Simd).
    private static void rows2x8(MemorySegment w, long g, int nb, int j0, float[] x, int cols, int t0, float[] sums) {
        FloatVector c00 = FloatVector.zero(F);
        FloatVector c01 = c00;
        FloatVector c02 = c00;
        FloatVector c03 = c00;
        FloatVector c04 = c00;
        FloatVector c05 = c00;
        FloatVector c06 = c00;
        FloatVector c07 = c00;
        FloatVector c10 = c00;
        FloatVector c11 = c00;
        FloatVector c12 = c00;
        FloatVector c13 = c00;
        FloatVector c14 = c00;
        FloatVector c15 = c00;
        FloatVector c16 = c00;
        FloatVector c17 = c00;
        int x0 = t0 * cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        int x4 = x3 + cols;
        int x5 = x4 + cols;
        int x6 = x5 + cols;
        int x7 = x6 + cols;
        for (int b = 0; b < nb; b++) {
            long o = g + (long) b * GROUP_BYTES;
            int k = b * BLOCK;
            FloatVector d0 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 0)));
            long q0 = o + 16 + 32L * (j0 + 0);
            FloatVector w0l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q0, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d0);
            FloatVector w0h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q0 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d0);
            FloatVector d1 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 1)));
            long q1 = o + 16 + 32L * (j0 + 1);
            FloatVector w1l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q1, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d1);
            FloatVector w1h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q1 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d1);
            FloatVector lo = FloatVector.fromArray(F, x, x0 + k);
            FloatVector hi = FloatVector.fromArray(F, x, x0 + k + 16);
            c00 = w0h.fma(hi, w0l.fma(lo, c00));
            c10 = w1h.fma(hi, w1l.fma(lo, c10));
            lo = FloatVector.fromArray(F, x, x1 + k);
            hi = FloatVector.fromArray(F, x, x1 + k + 16);
            c01 = w0h.fma(hi, w0l.fma(lo, c01));
            c11 = w1h.fma(hi, w1l.fma(lo, c11));
            lo = FloatVector.fromArray(F, x, x2 + k);
            hi = FloatVector.fromArray(F, x, x2 + k + 16);
            c02 = w0h.fma(hi, w0l.fma(lo, c02));
            c12 = w1h.fma(hi, w1l.fma(lo, c12));
            lo = FloatVector.fromArray(F, x, x3 + k);
            hi = FloatVector.fromArray(F, x, x3 + k + 16);
            c03 = w0h.fma(hi, w0l.fma(lo, c03));
            c13 = w1h.fma(hi, w1l.fma(lo, c13));
            lo = FloatVector.fromArray(F, x, x4 + k);
            hi = FloatVector.fromArray(F, x, x4 + k + 16);
            c04 = w0h.fma(hi, w0l.fma(lo, c04));
            c14 = w1h.fma(hi, w1l.fma(lo, c14));
            lo = FloatVector.fromArray(F, x, x5 + k);
            hi = FloatVector.fromArray(F, x, x5 + k + 16);
            c05 = w0h.fma(hi, w0l.fma(lo, c05));
            c15 = w1h.fma(hi, w1l.fma(lo, c15));
            lo = FloatVector.fromArray(F, x, x6 + k);
            hi = FloatVector.fromArray(F, x, x6 + k + 16);
            c06 = w0h.fma(hi, w0l.fma(lo, c06));
            c16 = w1h.fma(hi, w1l.fma(lo, c16));
            lo = FloatVector.fromArray(F, x, x7 + k);
            hi = FloatVector.fromArray(F, x, x7 + k + 16);
            c07 = w0h.fma(hi, w0l.fma(lo, c07));
            c17 = w1h.fma(hi, w1l.fma(lo, c17));
        }
        // lane vectors row by row, tokens within a row, summed by finish outside the vector code
        c00.intoArray(sums, 0);
        c10.intoArray(sums, 8 * L);
        c01.intoArray(sums, L);
        c11.intoArray(sums, 9 * L);
        c02.intoArray(sums, 2 * L);
        c12.intoArray(sums, 10 * L);
        c03.intoArray(sums, 3 * L);
        c13.intoArray(sums, 11 * L);
        c04.intoArray(sums, 4 * L);
        c14.intoArray(sums, 12 * L);
        c05.intoArray(sums, 5 * L);
        c15.intoArray(sums, 13 * L);
        c06.intoArray(sums, 6 * L);
        c16.intoArray(sums, 14 * L);
        c07.intoArray(sums, 7 * L);
        c17.intoArray(sums, 15 * L);
    }
    /// [#rows2x8] for the group's four rows and four tokens.
    private static void rows4x4(MemorySegment w, long g, int nb, int j0, float[] x, int cols, int t0, float[] sums) {
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
        int x0 = t0 * cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        for (int b = 0; b < nb; b++) {
            long o = g + (long) b * GROUP_BYTES;
            int k = b * BLOCK;
            FloatVector d0 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 0)));
            long q0 = o + 16 + 32L * (j0 + 0);
            FloatVector w0l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q0, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d0);
            FloatVector w0h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q0 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d0);
            FloatVector d1 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 1)));
            long q1 = o + 16 + 32L * (j0 + 1);
            FloatVector w1l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q1, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d1);
            FloatVector w1h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q1 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d1);
            FloatVector d2 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 2)));
            long q2 = o + 16 + 32L * (j0 + 2);
            FloatVector w2l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q2, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d2);
            FloatVector w2h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q2 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d2);
            FloatVector d3 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 3)));
            long q3 = o + 16 + 32L * (j0 + 3);
            FloatVector w3l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q3, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d3);
            FloatVector w3h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q3 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d3);
            FloatVector lo = FloatVector.fromArray(F, x, x0 + k);
            FloatVector hi = FloatVector.fromArray(F, x, x0 + k + 16);
            c00 = w0h.fma(hi, w0l.fma(lo, c00));
            c10 = w1h.fma(hi, w1l.fma(lo, c10));
            c20 = w2h.fma(hi, w2l.fma(lo, c20));
            c30 = w3h.fma(hi, w3l.fma(lo, c30));
            lo = FloatVector.fromArray(F, x, x1 + k);
            hi = FloatVector.fromArray(F, x, x1 + k + 16);
            c01 = w0h.fma(hi, w0l.fma(lo, c01));
            c11 = w1h.fma(hi, w1l.fma(lo, c11));
            c21 = w2h.fma(hi, w2l.fma(lo, c21));
            c31 = w3h.fma(hi, w3l.fma(lo, c31));
            lo = FloatVector.fromArray(F, x, x2 + k);
            hi = FloatVector.fromArray(F, x, x2 + k + 16);
            c02 = w0h.fma(hi, w0l.fma(lo, c02));
            c12 = w1h.fma(hi, w1l.fma(lo, c12));
            c22 = w2h.fma(hi, w2l.fma(lo, c22));
            c32 = w3h.fma(hi, w3l.fma(lo, c32));
            lo = FloatVector.fromArray(F, x, x3 + k);
            hi = FloatVector.fromArray(F, x, x3 + k + 16);
            c03 = w0h.fma(hi, w0l.fma(lo, c03));
            c13 = w1h.fma(hi, w1l.fma(lo, c13));
            c23 = w2h.fma(hi, w2l.fma(lo, c23));
            c33 = w3h.fma(hi, w3l.fma(lo, c33));
        }
        // lane vectors row by row, tokens within a row, summed by finish outside the vector code
        c00.intoArray(sums, 0);
        c10.intoArray(sums, 4 * L);
        c20.intoArray(sums, 8 * L);
        c30.intoArray(sums, 12 * L);
        c01.intoArray(sums, L);
        c11.intoArray(sums, 5 * L);
        c21.intoArray(sums, 9 * L);
        c31.intoArray(sums, 13 * L);
        c02.intoArray(sums, 2 * L);
        c12.intoArray(sums, 6 * L);
        c22.intoArray(sums, 10 * L);
        c32.intoArray(sums, 14 * L);
        c03.intoArray(sums, 3 * L);
        c13.intoArray(sums, 7 * L);
        c23.intoArray(sums, 11 * L);
        c33.intoArray(sums, 15 * L);
    }
    /// [#rows2x8] for the group's four rows and one token.
    private static void rows4x1(MemorySegment w, long g, int nb, int j0, float[] x, int cols, int t0, float[] sums) {
        FloatVector c00 = FloatVector.zero(F);
        FloatVector c10 = c00;
        FloatVector c20 = c00;
        FloatVector c30 = c00;
        int x0 = t0 * cols;
        for (int b = 0; b < nb; b++) {
            long o = g + (long) b * GROUP_BYTES;
            int k = b * BLOCK;
            FloatVector d0 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 0)));
            long q0 = o + 16 + 32L * (j0 + 0);
            FloatVector w0l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q0, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d0);
            FloatVector w0h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q0 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d0);
            FloatVector d1 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 1)));
            long q1 = o + 16 + 32L * (j0 + 1);
            FloatVector w1l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q1, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d1);
            FloatVector w1h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q1 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d1);
            FloatVector d2 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 2)));
            long q2 = o + 16 + 32L * (j0 + 2);
            FloatVector w2l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q2, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d2);
            FloatVector w2h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q2 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d2);
            FloatVector d3 = FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4L * (j0 + 3)));
            long q3 = o + 16 + 32L * (j0 + 3);
            FloatVector w3l = ((FloatVector) ByteVector.fromMemorySegment(B, w, q3, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d3);
            FloatVector w3h = ((FloatVector) ByteVector.fromMemorySegment(B, w, q3 + 16, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(d3);
            FloatVector lo = FloatVector.fromArray(F, x, x0 + k);
            FloatVector hi = FloatVector.fromArray(F, x, x0 + k + 16);
            c00 = w0h.fma(hi, w0l.fma(lo, c00));
            c10 = w1h.fma(hi, w1l.fma(lo, c10));
            c20 = w2h.fma(hi, w2l.fma(lo, c20));
            c30 = w3h.fma(hi, w3l.fma(lo, c30));
        }
        // lane vectors row by row, tokens within a row, summed by finish outside the vector code
        c00.intoArray(sums, 0);
        c10.intoArray(sums, L);
        c20.intoArray(sums, 2 * L);
        c30.intoArray(sums, 3 * L);
    }
}
