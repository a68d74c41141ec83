package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.INT_LE;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/// `Q4_K` weights (ggml: `block_q4_K`, `GGML_TYPE_Q4_K`): super-blocks of 256 weights in 144 bytes.
///
/// ```
/// byte  0      2      4               16                                   144
///       +------+------+---------------+------------------------------------+
///       |  d   | dmin | scales[0..11] |  qs[0..127]: 4-bit quants          |
///       +------+------+---------------+------------------------------------+
///       fp16 super-scales  8 × (6-bit scale, 6-bit min)
/// 8 groups of 32 weights. Weight i = 64·c + 32·hi + l (c ∈ 0..3, hi ∈ 0..1, l ∈ 0..31):
///   q = hi ? qs[32·c + l] >> 4 : qs[32·c + l] & 0xF,   g = 2·c + hi
///   w = d·scale_g × q − dmin·min_g
/// group g < 4:  scale = scales[g] & 63                               min = scales[g + 4] & 63
///       g ≥ 4:  scale = (scales[g + 4] & 0xF) | (scales[g − 4] >> 6) << 4
///               min   = (scales[g + 4] >> 4) | (scales[g] >> 6) << 4
/// ```
///
/// `dot` decodes a pair of (scale, min) per 64 weights in scalar code (ggml's `get_scale_min_k4`, from three int
/// reads), widens 16 nibble bytes at a time to int lanes, and dequantizes with one FMA (`q·d·scale − dmin·min`)
/// before the multiply-add with `x`; four accumulators (low/high nibbles × two halves) keep the FMA chains
/// independent. Q4_K_M model files hold
/// most matrices in this format, the rest in `Q6_K`.
final class Q4_K {
    static final int BLOCK = 256;
    static final int BYTES = 144;

    private Q4_K() {
    }

    /// ggml's `get_scale_min_k4`: the 6-bit scale (bits 0..7) and min (bits 8..15) of group `g` from the 12 bytes at
    /// `scales`. Shared with `Q5_K`, which packs them the same way.
    static int scaleMin(MemorySegment w, long scales, int g) {
        int sc;
        int m;
        if (g < 4) {
            sc = w.get(ValueLayout.JAVA_BYTE, scales + g) & 63;
            m = w.get(ValueLayout.JAVA_BYTE, scales + g + 4) & 63;
        } else {
            int lo = w.get(ValueLayout.JAVA_BYTE, scales + g + 4) & 0xFF;
            sc = (lo & 0xF) | (((w.get(ValueLayout.JAVA_BYTE, scales + g - 4) & 0xFF) >>> 6) << 4);
            m = (lo >>> 4) | (((w.get(ValueLayout.JAVA_BYTE, scales + g) & 0xFF) >>> 6) << 4);
        }
        return sc | m << 8;
    }

    /// As ggml's `dequantize_row_q4_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            long q = o + 16;
            for (int g = 0; g < 8; g += 2) {
                int sm = scaleMin(w, o + 4, g);
                float d1 = d * (sm & 0xFF);
                float m1 = min * (sm >>> 8);
                sm = scaleMin(w, o + 4, g + 1);
                float d2 = d * (sm & 0xFF);
                float m2 = min * (sm >>> 8);
                for (int l = 0; l < 32; l++) {
                    out[y++] = d1 * (w.get(ValueLayout.JAVA_BYTE, q + l) & 0xF) - m1;
                }
                for (int l = 0; l < 32; l++) {
                    out[y++] = d2 * ((w.get(ValueLayout.JAVA_BYTE, q + l) & 0xFF) >>> 4) - m2;
                }
                q += 32;
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        // One flat loop over 64-weight chunks (4 per super-block), re-reading the super-block's scales per chunk from
        // L1: measured faster than a chunk loop nested in a super-block loop, which C2 unrolls worse.
        int chunks = n / 64;
        for (int ch = 0; ch < chunks; ch++) {
            int c = ch & 3;
            long o = offset + (long) (ch >>> 2) * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float dmin = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            // get_scale_min_k4 for groups 2c and 2c + 1: bytes of sc03/sc47 are scales 0..3/4..7, likewise the mins
            int a0 = w.get(INT_LE, o + 4);
            int a1 = w.get(INT_LE, o + 8);
            int scw;
            int mw;
            if (c < 2) {
                scw = a0 & 0x3f3f3f3f;
                mw = a1 & 0x3f3f3f3f;
            } else {
                int a2 = w.get(INT_LE, o + 12);
                scw = (a2 & 0x0f0f0f0f) | ((a0 >>> 2) & 0x30303030);
                mw = ((a2 >>> 4) & 0x0f0f0f0f) | ((a1 >>> 2) & 0x30303030);
            }
            int shift = 16 * (c & 1);
            FloatVector vd0 = FloatVector.broadcast(F, d * ((scw >>> shift) & 0xFF));
            FloatVector vm0 = FloatVector.broadcast(F, -(dmin * ((mw >>> shift) & 0xFF)));
            FloatVector vd1 = FloatVector.broadcast(F, d * ((scw >>> (shift + 8)) & 0xFF));
            FloatVector vm1 = FloatVector.broadcast(F, -(dmin * ((mw >>> (shift + 8)) & 0xFF)));
            long qo = o + 16 + 32 * c;
            int xc = xOffset + 64 * ch;
            // 16 bytes of each half: weights 0..15 (low nibbles) and 32..47 (high) of this 64, then 16..31, 48..63
            ByteVector ba = ByteVector.fromMemorySegment(B, w, qo, LE);
            ByteVector bb = ByteVector.fromMemorySegment(B, w, qo + 16, LE);
            IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            acc0 = ((FloatVector) qa.and(0xF).convert(VectorOperators.I2F, 0)).fma(vd0, vm0)
                    .fma(FloatVector.fromArray(F, x, xc), acc0);
            acc1 = ((FloatVector) qb.and(0xF).convert(VectorOperators.I2F, 0)).fma(vd0, vm0)
                    .fma(FloatVector.fromArray(F, x, xc + 16), acc1);
            acc2 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                    .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 32), acc2);
            acc3 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                    .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 48), acc3);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                int k = p * L;
                qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                acc0 = ((FloatVector) qa.and(0xF).convert(VectorOperators.I2F, 0)).fma(vd0, vm0)
                        .fma(FloatVector.fromArray(F, x, xc + k), acc0);
                acc1 = ((FloatVector) qb.and(0xF).convert(VectorOperators.I2F, 0)).fma(vd0, vm0)
                        .fma(FloatVector.fromArray(F, x, xc + 16 + k), acc1);
                acc2 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                        .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 32 + k), acc2);
                acc3 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                        .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 48 + k), acc3);
            }
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

    /// `out[outOffset + r] = dot(row r, x)` for rows `[from, to)`.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to) {
        for (int r = from; r < to; r++) {
            out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
        }
    }
}
