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

/// `Q5_K` weights (ggml: `block_q5_K`, `GGML_TYPE_Q5_K`): super-blocks of 256 weights in 176 bytes.
///
/// ```
/// byte  0      2      4               16                 48                          176
///       +------+------+---------------+------------------+---------------------------+
///       |  d   | dmin | scales[0..11] |  qh[0..31]       |  qs[0..127]: low 4 bits   |
///       +------+------+---------------+------------------+---------------------------+
///       fp16 super-scales  8 × (6-bit scale, 6-bit min), packed as in Q4_K
/// 8 groups of 32 weights. Weight i = 64·c + 32·hi + l (c ∈ 0..3, hi ∈ 0..1, l ∈ 0..31), g = 2·c + hi:
///   q = (hi ? qs[32·c + l] >> 4 : qs[32·c + l] & 0xF) + 16 × bit g of qh[l]
///   w = d·scale_g × q − dmin·min_g
/// ```
///
/// `dot` is scalar: per group it sums `q·x` and `x`.
final class Q5_K {
    static final int BLOCK = 256;
    static final int BYTES = 176;

    private Q5_K() {
    }

    /// As ggml's `dequantize_row_q5_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            long qh = o + 16;
            long ql = o + 48;
            int u1 = 1;
            int u2 = 2;
            for (int g = 0; g < 8; g += 2) {
                int sm = Q4_K.scaleMin(w, o + 4, g);
                float d1 = d * (sm & 0xFF);
                float m1 = min * (sm >>> 8);
                sm = Q4_K.scaleMin(w, o + 4, g + 1);
                float d2 = d * (sm & 0xFF);
                float m2 = min * (sm >>> 8);
                for (int l = 0; l < 32; l++) {
                    int q = (w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xF)
                            + ((w.get(ValueLayout.JAVA_BYTE, qh + l) & u1) != 0 ? 16 : 0);
                    out[y++] = d1 * q - m1;
                }
                for (int l = 0; l < 32; l++) {
                    int q = ((w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF) >>> 4)
                            + ((w.get(ValueLayout.JAVA_BYTE, qh + l) & u2) != 0 ? 16 : 0);
                    out[y++] = d2 * q - m2;
                }
                ql += 32;
                u1 <<= 2;
                u2 <<= 2;
            }
        }
    }

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            ByteVector ha = ByteVector.fromMemorySegment(B, w, o + 16, LE);
            ByteVector hb = ByteVector.fromMemorySegment(B, w, o + 32, LE);
            for (int c = 0; c < 4; c++) {
                int sm = Q4_K.scaleMin(w, o + 4, 2 * c);
                FloatVector d1 = FloatVector.broadcast(F, d * (sm & 0xFF));
                FloatVector m1 = FloatVector.broadcast(F, min * (sm >>> 8));
                sm = Q4_K.scaleMin(w, o + 4, 2 * c + 1);
                FloatVector d2 = FloatVector.broadcast(F, d * (sm & 0xFF));
                FloatVector m2 = FloatVector.broadcast(F, min * (sm >>> 8));
                long q = o + 48 + 32 * c;
                int y = outOffset + i * BLOCK + 64 * c;
                ByteVector ba = ByteVector.fromMemorySegment(B, w, q, LE);
                ByteVector bb = ByteVector.fromMemorySegment(B, w, q + 16, LE);
                for (int p = 0; p < BYTE_PARTS; p++) {
                    int k = p * L;
                    IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector xa = (IntVector) ha.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector xb = (IntVector) hb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector la = xa.lanewise(VectorOperators.LSHR, 2 * c).and(1).lanewise(VectorOperators.LSHL, 4);
                    IntVector lb = xb.lanewise(VectorOperators.LSHR, 2 * c).and(1).lanewise(VectorOperators.LSHL, 4);
                    IntVector ua = xa.lanewise(VectorOperators.LSHR, 2 * c + 1).and(1)
                            .lanewise(VectorOperators.LSHL, 4);
                    IntVector ub = xb.lanewise(VectorOperators.LSHR, 2 * c + 1).and(1)
                            .lanewise(VectorOperators.LSHL, 4);
                    ((FloatVector) qa.and(0xF).add(la).convertShape(VectorOperators.I2F, F, 0)).mul(d1).sub(m1)
                            .intoArray(out, y + k);
                    ((FloatVector) qb.and(0xF).add(lb).convertShape(VectorOperators.I2F, F, 0)).mul(d1).sub(m1)
                            .intoArray(out, y + 16 + k);
                    ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).add(ua).convertShape(VectorOperators.I2F, F, 0))
                            .mul(d2).sub(m2).intoArray(out, y + 32 + k);
                    ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).add(ub).convertShape(VectorOperators.I2F, F, 0))
                            .mul(d2).sub(m2).intoArray(out, y + 48 + k);
                }
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        float sum = 0;
        int xi = xOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float blockScaled = 0;
            float blockMins = 0;
            for (int g = 0; g < 8; g++) {
                long ql = o + 48 + 32 * (g >>> 1);
                int shift = 4 * (g & 1);
                float qx = 0;
                float xs = 0;
                for (int l = 0; l < 32; l++) {
                    int q = (((w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF) >>> shift) & 0xF)
                            | (((w.get(ValueLayout.JAVA_BYTE, o + 16 + l) >>> g) & 1) << 4);
                    float xv = x[xi + l];
                    qx += q * xv;
                    xs += xv;
                }
                int sm = Q4_K.scaleMin(w, o + 4, g);
                blockScaled += (sm & 0xFF) * qx;
                blockMins += (sm >>> 8) * xs;
                xi += 32;
            }
            sum += Float.float16ToFloat(w.get(SHORT_LE, o)) * blockScaled
                    - Float.float16ToFloat(w.get(SHORT_LE, o + 2)) * blockMins;
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

    /// `out[outOffset + r] = row r · x` for rows `[from, to)`; `sums` holds, per super-block, 16 floats: zeros, then
    /// the 8 group sums of `x` ([Kernels#superBlockSums]). As `Q4_K`'s kernel (scales and minimums decoded as one
    /// vector, minimums folded into the group sums, two chunks written out per loop step), with the fifth bit of each quant
    /// from `qh` (bit `g` of `qh[l]` for group `g`: both 16-byte halves of `qh` widened once per super-block and
    /// shifted down two bits per chunk). One row per pass; 512-bit vectors only, narrower machines use [#dot].
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to, Input in) {
        if (L != 16) { // narrower vectors than 512 bits: one row at a time (keeps this body small)
            for (int r = from; r < to; r++) {
                out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
            }
            return;
        }
        int nb = cols / BLOCK;
        for (int r = from; r < to; r++) {
            long o = r * rowBytes;
            FloatVector accL = FloatVector.zero(F);
            FloatVector accH = accL;
            for (int i = 0; i < nb; i++) {
                long b = o + (long) i * BYTES;
                // the 8 scales (lanes 0..7, times d) and minimums (lanes 8..15, times -dmin), as Q4_K's (written
                // out for the same reason)
                IntVector s16 = (IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector sc = ((FloatVector) s16.rearrange(Q4_K.SCALE_LO).lanewise(VectorOperators.LSHR, Q4_K.SCALE_SHIFT)
                        .and(Q4_K.SCALE_MASK).or(s16.rearrange(Q4_K.SCALE_HI).lanewise(VectorOperators.LSHR, 6)
                                .lanewise(VectorOperators.LSHL, 4).and(Q4_K.SCALE_HIGH_MASK))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .mul(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, b)))
                                .blend(-Float.float16ToFloat(w.get(SHORT_LE, b + 2)), Q4_K.MIN_LANES));
                accH = sc.fma(FloatVector.fromArray(F, in.groupSums, 16 * i), accH);
                IntVector hp = (IntVector) ByteVector.fromMemorySegment(B, w, b + 16, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector hn = (IntVector) ByteVector.fromMemorySegment(B, w, b + 32, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                for (int h = 0; h < 2; h++) { // two chunks per iteration: four written out exceed C2's budget
                    int xc = xOffset + i * BLOCK + 128 * h;
                    long q = b + 48 + 64 * h;
                    // shifted from the block's bits each time, not carried from the last chunk (see Simd)
                    IntVector hpc = hp.lanewise(VectorOperators.LSHR, 4 * h);
                    IntVector hnc = hn.lanewise(VectorOperators.LSHR, 4 * h);
                    IntVector p;
                    IntVector n;
                    FloatVector lo;
                    FloatVector hi;
                    p = (IntVector) ByteVector.fromMemorySegment(B, w, q + 0, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    n = (IntVector) ByteVector.fromMemorySegment(B, w, q + 16, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    lo = ((FloatVector) p.and(0xF).or(hpc.lanewise(VectorOperators.LSHL, 4).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 0));
                    lo = ((FloatVector) n.and(0xF).or(hnc.lanewise(VectorOperators.LSHL, 4).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 16), lo);
                    hi = ((FloatVector) p.lanewise(VectorOperators.LSHR, 4)
                            .or(hpc.lanewise(VectorOperators.LSHL, 3).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 32));
                    hi = ((FloatVector) n.lanewise(VectorOperators.LSHR, 4)
                            .or(hnc.lanewise(VectorOperators.LSHL, 3).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 48), hi);
                    accL = lo.fma(sc.rearrange(h == 0 ? Q4_K.LANE_0 : Q4_K.LANE_4), accL);
                    accH = hi.fma(sc.rearrange(h == 0 ? Q4_K.LANE_1 : Q4_K.LANE_5), accH);
                    hpc = hp.lanewise(VectorOperators.LSHR, 4 * h + 2);
                    hnc = hn.lanewise(VectorOperators.LSHR, 4 * h + 2);
                    p = (IntVector) ByteVector.fromMemorySegment(B, w, q + 32, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    n = (IntVector) ByteVector.fromMemorySegment(B, w, q + 48, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    lo = ((FloatVector) p.and(0xF).or(hpc.lanewise(VectorOperators.LSHL, 4).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 64));
                    lo = ((FloatVector) n.and(0xF).or(hnc.lanewise(VectorOperators.LSHL, 4).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 80), lo);
                    hi = ((FloatVector) p.lanewise(VectorOperators.LSHR, 4)
                            .or(hpc.lanewise(VectorOperators.LSHL, 3).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 96));
                    hi = ((FloatVector) n.lanewise(VectorOperators.LSHR, 4)
                            .or(hnc.lanewise(VectorOperators.LSHL, 3).and(0x10))
                            .convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 112), hi);
                    accL = lo.fma(sc.rearrange(h == 0 ? Q4_K.LANE_2 : Q4_K.LANE_6), accL);
                    accH = hi.fma(sc.rearrange(h == 0 ? Q4_K.LANE_3 : Q4_K.LANE_7), accH);
                }
            }
            FloatVector v = accL.add(accH);
            // butterfly: fixed-order lane sum, then every lane holds it (see Simd)
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
        }
    }
}
