package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/// `Q4_0` weights (ggml: `block_q4_0`, `GGML_TYPE_Q4_0`): blocks of 32 weights in 18 bytes.
///
/// ```
/// byte  0      2                       18
///       +------+-----------------------+
///       |  d   |  qs[0..15]            |    qs[j] = (q[j+16] << 4) | q[j]
///       +------+-----------------------+
///       fp16 scale
/// w[j] = d × (q[j] − 8),   q[j] ∈ 0..15
/// ```
///
/// The low nibbles hold weights 0..15 and the high nibbles weights 16..31. x86 has no byte shift, so the kernels
/// widen the 16 bytes to int lanes first (`ZERO_EXTEND_B2I`), then split nibbles, subtract 8 and convert to float.
/// `matVec` runs four rows per pass, as `Q8_0` does.
final class Q4_0 {
    static final int BLOCK = 32;
    static final int BYTES = 18;

    private Q4_0() {
    }

    /// As ggml's `dequantize_row_q4_0`: `n` weights (a multiple of 32) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            int y = outOffset + i * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int qs = w.get(ValueLayout.JAVA_BYTE, o + 2 + j) & 0xFF;
                int x0 = (qs & 0x0F) - 8;
                int x1 = (qs >>> 4) - 8;
                out[y + j] = x0 * d;
                out[y + j + BLOCK / 2] = x1 * d;
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
            ByteVector qs = ByteVector.fromMemorySegment(B, w, o + 2, LE);
            IntVector q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            FloatVector s = ((FloatVector) q.and(0x0F).sub(8).convert(VectorOperators.I2F, 0))
                    .mul(FloatVector.fromArray(F, x, xb));
            s = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.fromArray(F, x, xb + BLOCK / 2), s);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                s = ((FloatVector) q.and(0x0F).sub(8).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromArray(F, x, xb + p * L), s);
                s = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.fromArray(F, x, xb + BLOCK / 2 + p * L), s);
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
                // low nibbles (weights 0..15) then high nibbles (16..31), as in dot
                FloatVector xlo = FloatVector.fromArray(F, x, xb);
                FloatVector xhi = FloatVector.fromArray(F, x, xb + BLOCK / 2);
                ByteVector b0 = ByteVector.fromMemorySegment(B, w, r0 + o + 2, LE);
                ByteVector b1 = ByteVector.fromMemorySegment(B, w, r1 + o + 2, LE);
                ByteVector b2 = ByteVector.fromMemorySegment(B, w, r2 + o + 2, LE);
                ByteVector b3 = ByteVector.fromMemorySegment(B, w, r3 + o + 2, LE);
                IntVector q0 = (IntVector) b0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector q1 = (IntVector) b1.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector q2 = (IntVector) b2.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector q3 = (IntVector) b3.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector s0 = ((FloatVector) q0.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(xlo);
                FloatVector s1 = ((FloatVector) q1.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(xlo);
                FloatVector s2 = ((FloatVector) q2.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(xlo);
                FloatVector s3 = ((FloatVector) q3.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).mul(xlo);
                s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                        .fma(xhi, s0);
                s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                        .fma(xhi, s1);
                s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                        .fma(xhi, s2);
                s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                        .fma(xhi, s3);
                for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                    xlo = FloatVector.fromArray(F, x, xb + p * L);
                    xhi = FloatVector.fromArray(F, x, xb + BLOCK / 2 + p * L);
                    q0 = (IntVector) b0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q1 = (IntVector) b1.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q2 = (IntVector) b2.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q3 = (IntVector) b3.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    s0 = ((FloatVector) q0.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).fma(xlo, s0);
                    s1 = ((FloatVector) q1.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).fma(xlo, s1);
                    s2 = ((FloatVector) q2.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).fma(xlo, s2);
                    s3 = ((FloatVector) q3.and(0x0F).sub(8).convert(VectorOperators.I2F, 0)).fma(xlo, s3);
                    s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                            .fma(xhi, s0);
                    s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                            .fma(xhi, s1);
                    s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                            .fma(xhi, s2);
                    s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).sub(8).convert(VectorOperators.I2F, 0))
                            .fma(xhi, s3);
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
