package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/// `F32` weights: IEEE-754 binary32, little-endian, no blocks (ggml: `GGML_TYPE_F32`).
///
/// ```
/// w[i] = f32 at byte 4·i
/// ```
///
/// The dot product is bound by memory bandwidth (4 bytes per weight), so it only needs enough independent
/// accumulators (four) to keep the loads flowing.
final class F32 {
    private F32() {
    }

    /// Copies `n` weights starting at byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        MemorySegment.copy(w, FLOAT_LE, offset, out, outOffset, n);
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - 4 * L; i += 4 * L) {
            long o = offset + 4L * i;
            acc0 = FloatVector.fromMemorySegment(F, w, o, LE).fma(FloatVector.fromArray(F, x, xOffset + i), acc0);
            acc1 = FloatVector.fromMemorySegment(F, w, o + 4L * L, LE)
                    .fma(FloatVector.fromArray(F, x, xOffset + i + L), acc1);
            acc2 = FloatVector.fromMemorySegment(F, w, o + 8L * L, LE)
                    .fma(FloatVector.fromArray(F, x, xOffset + i + 2 * L), acc2);
            acc3 = FloatVector.fromMemorySegment(F, w, o + 12L * L, LE)
                    .fma(FloatVector.fromArray(F, x, xOffset + i + 3 * L), acc3);
        }
        for (; i <= n - L; i += L) {
            acc0 = FloatVector.fromMemorySegment(F, w, offset + 4L * i, LE)
                    .fma(FloatVector.fromArray(F, x, xOffset + i), acc0);
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
            sum += w.get(FLOAT_LE, offset + 4L * i) * x[xOffset + i];
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
