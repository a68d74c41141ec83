package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.INT_LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/// `Q5_1` weights (ggml: `block_q5_1`, `GGML_TYPE_Q5_1`): blocks of 32 weights in 24 bytes.
///
/// ```
/// byte  0      2      4             8                       24
///       +------+------+-------------+-----------------------+
///       |  d   |  m   |  qh: u32 LE |  qs[0..15]            |   qs[j] = (low4(q[j+16]) << 4) | low4(q[j])
///       +------+------+-------------+-----------------------+   bit j of qh = bit 4 of q[j]
///       fp16 scale, fp16 minimum
/// w[j] = d × q[j] + m,   q[j] ∈ 0..31
/// ```
///
/// `dot` is vectorized one row at a time (a rare format: no multi-row kernel).
final class Q5_1 {
    static final int BLOCK = 32;
    static final int BYTES = 24;

    private Q5_1() {
    }

    /// As ggml's `dequantize_row_q5_1`: `n` weights (a multiple of 32) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float m = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            int qh = w.get(INT_LE, o + 4);
            int y = outOffset + i * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int qs = w.get(ValueLayout.JAVA_BYTE, o + 8 + j) & 0xFF;
                int xh0 = ((qh >>> j) << 4) & 0x10;
                int xh1 = (qh >>> (j + 12)) & 0x10;
                int x0 = (qs & 0x0F) | xh0;
                int x1 = (qs >>> 4) | xh1;
                out[y + j] = x0 * d + m;
                out[y + j + BLOCK / 2] = x1 * d + m;
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 32) starting at byte `offset`: `d·Σ q·x + m·Σ x`, the
    /// fifth bits as in `Q5_0`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long o = offset + (long) b * BYTES;
            int xb = xOffset + b * BLOCK;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float m = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            ByteVector qs = ByteVector.fromMemorySegment(B, w, o + 8, LE);
            IntVector qh = IntVector.broadcast(I, w.get(INT_LE, o + 4));
            FloatVector x0 = FloatVector.fromArray(F, x, xb);
            FloatVector x1 = FloatVector.fromArray(F, x, xb + 16);
            IntVector q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector lo = q.and(0x0F).or(qh.lanewise(VectorOperators.LSHR, Simd.IOTA.add(0)).and(1)
                    .lanewise(VectorOperators.LSHL, 4));
            IntVector hi = q.lanewise(VectorOperators.LSHR, 4).or(qh.lanewise(VectorOperators.LSHR, Simd.IOTA.add(16))
                    .and(1).lanewise(VectorOperators.LSHL, 4));
            FloatVector s = ((FloatVector) lo.convertShape(VectorOperators.I2F, F, 0)).mul(x0);
            s = ((FloatVector) hi.convertShape(VectorOperators.I2F, F, 0)).fma(x1, s);
            FloatVector xs = x0.add(x1);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                x0 = FloatVector.fromArray(F, x, xb + p * L);
                x1 = FloatVector.fromArray(F, x, xb + 16 + p * L);
                q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                lo = q.and(0x0F).or(qh.lanewise(VectorOperators.LSHR, Simd.IOTA.add(p * L)).and(1)
                        .lanewise(VectorOperators.LSHL, 4));
                hi = q.lanewise(VectorOperators.LSHR, 4).or(qh.lanewise(VectorOperators.LSHR, Simd.IOTA.add(16 + p * L))
                        .and(1).lanewise(VectorOperators.LSHL, 4));
                s = ((FloatVector) lo.convertShape(VectorOperators.I2F, F, 0)).fma(x0, s);
                s = ((FloatVector) hi.convertShape(VectorOperators.I2F, F, 0)).fma(x1, s);
                xs = x0.add(x1).add(xs);
            }
            acc = s.fma(FloatVector.broadcast(F, d), acc);
            acc = xs.fma(FloatVector.broadcast(F, m), acc);
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
        return v.lane(0);
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
