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

/// `F16` weights: IEEE-754 binary16, little-endian, no blocks (ggml: `GGML_TYPE_F16`).
///
/// ```
/// w[i] = fp16 at byte 2·i           bits: s | eeeee | mmmmmmmmmm
/// ```
///
/// The Vector API has no half-to-float conversion, so `dot` widens the 16-bit patterns to int lanes and rebuilds the
/// float: `((h & 0x7fff) << 13)` read as a float is the value times 2^-112 (the exponent bias drops from 127 to 15),
/// so one multiply by 2^112 fixes it, and the sign bit is or-ed back. This is exact for normal and subnormal halves;
/// infinities and NaNs come out as finite garbage, which weight files do not contain. The scalar `dequantize` uses
/// `Float.float16ToFloat`, exact for everything.
final class F16 {
    private static final float TWO_POW_112 = 0x1p112f;

    private F16() {
    }

    /// Converts `n` halves starting at byte `offset` into `out[outOffset ..]` (as ggml's `ggml_fp16_to_fp32_row`).
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = Float.float16ToFloat(w.get(SHORT_LE, offset + 2L * i));
        }
    }

    /// [#dequantize] with vectors, bit for bit the same values for finite weights (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, offset + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            FloatVector m = ((FloatVector) h.lanewise(VectorOperators.LSHL, 13).and(0x0fffe000).reinterpretShape(F, 0))
                    .mul(TWO_POW_112);
            ((FloatVector) ((IntVector) m.reinterpretShape(I, 0)).or(h.and(0x80000000)).reinterpretShape(F, 0))
                    .intoArray(out, outOffset + i);
        }
        for (; i < n; i++) {
            out[outOffset + i] = Float.float16ToFloat(w.get(SHORT_LE, offset + 2L * i));
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - 2 * L; i += 2 * L) {
            long o = offset + 2L * i;
            // S2I sign-extends, so bit 31 is the sign and bits 13..27 after the shift are exponent and mantissa.
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(S, w, o, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(S, w, o + 2L * L, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            FloatVector m0 = ((FloatVector) h0.lanewise(VectorOperators.LSHL, 13).and(0x0fffe000)
                    .reinterpretShape(F, 0)).mul(TWO_POW_112);
            FloatVector m1 = ((FloatVector) h1.lanewise(VectorOperators.LSHL, 13).and(0x0fffe000)
                    .reinterpretShape(F, 0)).mul(TWO_POW_112);
            FloatVector f0 = (FloatVector) ((IntVector) m0.reinterpretShape(I, 0)).or(h0.and(0x80000000))
                    .reinterpretShape(F, 0);
            FloatVector f1 = (FloatVector) ((IntVector) m1.reinterpretShape(I, 0)).or(h1.and(0x80000000))
                    .reinterpretShape(F, 0);
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
            sum += Float.float16ToFloat(w.get(SHORT_LE, offset + 2L * i)) * x[xOffset + i];
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
