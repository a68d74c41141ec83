package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.S;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/// `BF16` weights: bfloat16, the upper half of a binary32, little-endian, no blocks (ggml: `GGML_TYPE_BF16`).
///
/// ```
/// w[i] = float with bits (u16 at byte 2·i) << 16      bits: s | eeeeeeee | mmmmmmm
/// ```
///
/// Widening is exact for every value, NaN and infinity included (ggml: `GGML_BF16_TO_FP32`).
final class BF16 {
    private BF16() {
    }

    /// Converts `n` bfloat16 values starting at byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = Float.intBitsToFloat(w.get(SHORT_LE, offset + 2L * i) << 16);
        }
    }

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            ((FloatVector) ((IntVector) ShortVector.fromMemorySegment(S, w, offset + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretShape(F, 0))
                    .intoArray(out, outOffset + i);
        }
        for (; i < n; i++) {
            out[outOffset + i] = Float.intBitsToFloat(w.get(SHORT_LE, offset + 2L * i) << 16);
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - 2 * L; i += 2 * L) {
            long o = offset + 2L * i;
            FloatVector f0 = (FloatVector) ((IntVector) ShortVector.fromMemorySegment(S, w, o, LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretShape(F, 0);
            FloatVector f1 = (FloatVector) ((IntVector) ShortVector.fromMemorySegment(S, w, o + 2L * L, LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretShape(F, 0);
            acc0 = f0.fma(FloatVector.fromArray(F, x, xOffset + i), acc0);
            acc1 = f1.fma(FloatVector.fromArray(F, x, xOffset + i + L), acc1);
        }
        FloatVector v = acc0.add(acc1);
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
            sum += Float.intBitsToFloat(w.get(SHORT_LE, offset + 2L * i) << 16) * x[xOffset + i];
        }
        return sum;
    }

    /// Scalar reference for tests: dequantize, then a dot product accumulated in double.
    static double dotReference(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        float[] v = new float[n];
        dequantize(w, offset, v, 0, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += (double) v[i] * x[xOffset + i];
        }
        return sum;
    }

    /// `out[outOffset + r] = dot(row r, x)` for rows `[from, to)`.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to, Input in) {
        for (int r = from; r < to; r++) {
            out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
        }
    }
}
