package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/// `Q8_0` weights (ggml: `block_q8_0`, `GGML_TYPE_Q8_0`): blocks of 32 weights in 34 bytes.
///
/// ```
/// byte  0      2                                  34
///       +------+----------------------------------+
///       |  d   |  qs[0..31]: int8                 |
///       +------+----------------------------------+
///       fp16 scale
/// w[j] = d × qs[j]
/// ```
///
/// The kernels load 16 quants at a time and widen them straight to float lanes (`B2F`), multiply-add them with `x`, and
/// scale each block's partial sum once by `d`. `matVec` runs four rows per pass so four independent accumulator
/// chains hide the FMA latency and each `x` vector is loaded once for four rows.
final class Q8_0 {
    static final int BLOCK = 32;
    static final int BYTES = 34;

    private Q8_0() {
    }

    /// As ggml's `dequantize_row_q8_0`: `n` weights (a multiple of 32) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            for (int j = 0; j < BLOCK; j++) {
                out[outOffset + i * BLOCK + j] = w.get(ValueLayout.JAVA_BYTE, o + 2 + j) * d;
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 32) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long o = offset + (long) b * BYTES;
            int xb = xOffset + b * BLOCK;
            ByteVector q0 = ByteVector.fromMemorySegment(B, w, o + 2, LE);
            ByteVector q1 = ByteVector.fromMemorySegment(B, w, o + 18, LE);
            FloatVector s = ((FloatVector) q0.convertShape(VectorOperators.B2F, F, 0))
                    .mul(FloatVector.fromArray(F, x, xb));
            s = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xb + 16), s);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of each 16 bytes (see Simd)
                s = ((FloatVector) q0.convertShape(VectorOperators.B2F, F, p))
                        .fma(FloatVector.fromArray(F, x, xb + p * L), s);
                s = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, p))
                        .fma(FloatVector.fromArray(F, x, xb + 16 + p * L), s);
            }
            acc = s.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, o))), acc);
        }
        FloatVector v = acc;
        // butterfly: fixed-order lane sum, then every lane holds it (see Simd)
        v = v.add(v.rearrange(Simd.SWAP_HALF));
        v = v.add(v.rearrange(Simd.SWAP_QUARTER));
        if (L >= 8) {
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
        }
        if (L >= 16) {
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
        }
        return v.reduceLanes(VectorOperators.MAX);
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

    /// `out[outOffset + r] = dot(row r, x)` for rows `[from, to)`, four rows per pass.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to) {
        int nb = cols / BLOCK;
        int r = from;
        for (; r + 4 <= to; r += 4) {
            long r0 = r * rowBytes;
            long r1 = r0 + rowBytes;
            long r2 = r1 + rowBytes;
            long r3 = r2 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = FloatVector.zero(F);
            FloatVector acc2 = FloatVector.zero(F);
            FloatVector acc3 = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = (long) b * BYTES;
                int xb = xOffset + b * BLOCK;
                // weights 0..15 then 16..31 of the block, as in dot
                FloatVector xa = FloatVector.fromArray(F, x, xb);
                FloatVector xc = FloatVector.fromArray(F, x, xb + 16);
                ByteVector a0 = ByteVector.fromMemorySegment(B, w, r0 + o + 2, LE);
                ByteVector a1 = ByteVector.fromMemorySegment(B, w, r1 + o + 2, LE);
                ByteVector a2 = ByteVector.fromMemorySegment(B, w, r2 + o + 2, LE);
                ByteVector a3 = ByteVector.fromMemorySegment(B, w, r3 + o + 2, LE);
                ByteVector c0 = ByteVector.fromMemorySegment(B, w, r0 + o + 18, LE);
                ByteVector c1 = ByteVector.fromMemorySegment(B, w, r1 + o + 18, LE);
                ByteVector c2 = ByteVector.fromMemorySegment(B, w, r2 + o + 18, LE);
                ByteVector c3 = ByteVector.fromMemorySegment(B, w, r3 + o + 18, LE);
                FloatVector s0 = ((FloatVector) a0.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s1 = ((FloatVector) a1.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s2 = ((FloatVector) a2.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s3 = ((FloatVector) a3.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                s0 = ((FloatVector) c0.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s0);
                s1 = ((FloatVector) c1.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s1);
                s2 = ((FloatVector) c2.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s2);
                s3 = ((FloatVector) c3.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s3);
                for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of each 16 bytes (see Simd)
                    xa = FloatVector.fromArray(F, x, xb + p * L);
                    xc = FloatVector.fromArray(F, x, xb + 16 + p * L);
                    s0 = ((FloatVector) a0.convertShape(VectorOperators.B2F, F, p)).fma(xa, s0);
                    s1 = ((FloatVector) a1.convertShape(VectorOperators.B2F, F, p)).fma(xa, s1);
                    s2 = ((FloatVector) a2.convertShape(VectorOperators.B2F, F, p)).fma(xa, s2);
                    s3 = ((FloatVector) a3.convertShape(VectorOperators.B2F, F, p)).fma(xa, s3);
                    s0 = ((FloatVector) c0.convertShape(VectorOperators.B2F, F, p)).fma(xc, s0);
                    s1 = ((FloatVector) c1.convertShape(VectorOperators.B2F, F, p)).fma(xc, s1);
                    s2 = ((FloatVector) c2.convertShape(VectorOperators.B2F, F, p)).fma(xc, s2);
                    s3 = ((FloatVector) c3.convertShape(VectorOperators.B2F, F, p)).fma(xc, s3);
                }
                acc0 = s0.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, r0 + o))), acc0);
                acc1 = s1.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, r1 + o))), acc1);
                acc2 = s2.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, r2 + o))), acc2);
                acc3 = s3.fma(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, r3 + o))), acc3);
            }
            // merged butterfly: each row's sum in the same fixed order as dot's, rows 0..3 in lanes 0, L/2, L/4, 3L/4
            FloatVector y01 = acc0.add(acc0.rearrange(Simd.SWAP_HALF))
                    .blend(acc1.add(acc1.rearrange(Simd.SWAP_HALF)), Simd.HALF_LANES);
            FloatVector y23 = acc2.add(acc2.rearrange(Simd.SWAP_HALF))
                    .blend(acc3.add(acc3.rearrange(Simd.SWAP_HALF)), Simd.HALF_LANES);
            FloatVector z = y01.add(y01.rearrange(Simd.SWAP_QUARTER))
                    .blend(y23.add(y23.rearrange(Simd.SWAP_QUARTER)), Simd.QUARTER_LANES);
            if (L >= 8) {
                z = z.add(z.rearrange(Simd.SWAP_EIGHTH));
            }
            if (L >= 16) {
                z = z.add(z.rearrange(Simd.SWAP_SIXTEENTH));
            }
            z.rearrange(Simd.GATHER4).intoArray(out, outOffset + r, Simd.FIRST4);
        }
        for (; r < to; r++) {
            out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
        }
    }
}
