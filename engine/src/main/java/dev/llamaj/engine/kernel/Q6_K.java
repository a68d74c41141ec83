package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
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

/// `Q6_K` weights (ggml: `block_q6_K`, `GGML_TYPE_Q6_K`): super-blocks of 256 weights in 210 bytes.
///
/// ```
/// byte  0                          128                  192              208    210
///       +--------------------------+--------------------+----------------+------+
///       |  ql[0..127]: low 4 bits  |  qh[0..63]: 2 bits |  scales[0..15] |  d   |
///       +--------------------------+--------------------+----------------+------+
///                                                         int8 per 16      fp16 super-scale
/// Weight i = 128·h + 32·k + l (h ∈ 0..1, k ∈ 0..3, l ∈ 0..31):
///   b = ql[64·h + 32·(k & 1) + l],   low = k < 2 ? b & 0xF : b >> 4,   high = (qh[32·h + l] >> 2k) & 3
///   q = (low | high << 4) − 32 ∈ −32..31,   w = d × scales[8·h + 2·k + l / 16] × q
/// ```
/// (ggml's `dequantize_row_q6_K` names the four k `q1..q4`.)
///
/// `dot` widens 16 bytes of `ql` (twice) and `qh` to int lanes, assembles the four 6-bit quants with shifts and masks,
/// subtracts 32 in the int domain and scales each 16-weight group by `d·scale`; the four `k` streams use four
/// accumulators. Q4_K_M model files hold their most sensitive matrices (output, half of `ffn_down`, `attn_v`) in
/// this format.
final class Q6_K {
    static final int BLOCK = 256;
    static final int BYTES = 210;

    private Q6_K() {
    }

    /// As ggml's `dequantize_row_q6_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 208));
            long ql = o;
            long qh = o + 128;
            long sc = o + 192;
            int y = outOffset + i * BLOCK;
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int a = w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF;
                    int b = w.get(ValueLayout.JAVA_BYTE, ql + l + 32) & 0xFF;
                    int hb = w.get(ValueLayout.JAVA_BYTE, qh + l) & 0xFF;
                    int q1 = ((a & 0xF) | ((hb & 3) << 4)) - 32;
                    int q2 = ((b & 0xF) | (((hb >>> 2) & 3) << 4)) - 32;
                    int q3 = ((a >>> 4) | (((hb >>> 4) & 3) << 4)) - 32;
                    int q4 = ((b >>> 4) | (((hb >>> 6) & 3) << 4)) - 32;
                    out[y + l] = d * w.get(ValueLayout.JAVA_BYTE, sc + is) * q1;
                    out[y + l + 32] = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2) * q2;
                    out[y + l + 64] = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4) * q3;
                    out[y + l + 96] = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6) * q4;
                }
                y += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
    }

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 208));
            for (int h = 0; h < 2; h++) {
                long ql = o + 64 * h;
                long qh = o + 128 + 32 * h;
                long sc = o + 192 + 8 * h;
                int y = outOffset + i * BLOCK + 128 * h;
                for (int l = 0; l < 32; l += 16) {
                    int is = l >>> 4;
                    FloatVector s1 = FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is));
                    FloatVector s2 = FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2));
                    FloatVector s3 = FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4));
                    FloatVector s4 = FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6));
                    ByteVector ba = ByteVector.fromMemorySegment(B, w, ql + l, LE);
                    ByteVector bb = ByteVector.fromMemorySegment(B, w, ql + 32 + l, LE);
                    ByteVector bh = ByteVector.fromMemorySegment(B, w, qh + l, LE);
                    for (int p = 0; p < BYTE_PARTS; p++) {
                        int k = l + p * L;
                        IntVector a = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                        IntVector b = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                        IntVector hb = (IntVector) bh.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                        IntVector q1 = a.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30)).sub(32);
                        IntVector q2 = b.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30)).sub(32);
                        IntVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32);
                        IntVector q4 = b.lanewise(VectorOperators.LSHR, 4)
                                .or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32);
                        ((FloatVector) q1.convert(VectorOperators.I2F, 0)).mul(s1).intoArray(out, y + k);
                        ((FloatVector) q2.convert(VectorOperators.I2F, 0)).mul(s2).intoArray(out, y + 32 + k);
                        ((FloatVector) q3.convert(VectorOperators.I2F, 0)).mul(s3).intoArray(out, y + 64 + k);
                        ((FloatVector) q4.convert(VectorOperators.I2F, 0)).mul(s4).intoArray(out, y + 96 + k);
                    }
                }
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 208));
            for (int h = 0; h < 2; h++) {
                long ql = o + 64 * h;
                long qh = o + 128 + 32 * h;
                long sc = o + 192 + 8 * h;
                int xh = xOffset + i * BLOCK + 128 * h;
                for (int l = 0; l < 32; l += 16) {
                    ByteVector ba = ByteVector.fromMemorySegment(B, w, ql + l, LE);
                    ByteVector bb = ByteVector.fromMemorySegment(B, w, ql + 32 + l, LE);
                    ByteVector bh = ByteVector.fromMemorySegment(B, w, qh + l, LE);
                    { // part 0: all 16 bytes on 512-bit machines
                        int k = l;
                        int is = k >>> 4;
                        IntVector a = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        IntVector b = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        IntVector hb = (IntVector) bh.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        IntVector q1 = a.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30)).sub(32);
                        IntVector q2 = b.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30)).sub(32);
                        IntVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32);
                        IntVector q4 = b.lanewise(VectorOperators.LSHR, 4)
                                .or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32);
                        float s1 = d * w.get(ValueLayout.JAVA_BYTE, sc + is);
                        float s2 = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2);
                        float s3 = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4);
                        float s4 = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6);
                        acc0 = ((FloatVector) q1.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + k)).fma(FloatVector.broadcast(F, s1), acc0);
                        acc1 = ((FloatVector) q2.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 32 + k)).fma(FloatVector.broadcast(F, s2), acc1);
                        acc2 = ((FloatVector) q3.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 64 + k)).fma(FloatVector.broadcast(F, s3), acc2);
                        acc3 = ((FloatVector) q4.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 96 + k)).fma(FloatVector.broadcast(F, s4), acc3);
                    }
                    for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                        int k = l + p * L;
                        int is = k >>> 4;
                        IntVector a = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                        IntVector b = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                        IntVector hb = (IntVector) bh.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                        IntVector q1 = a.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 4).and(0x30)).sub(32);
                        IntVector q2 = b.and(0xF).or(hb.lanewise(VectorOperators.LSHL, 2).and(0x30)).sub(32);
                        IntVector q3 = a.lanewise(VectorOperators.LSHR, 4).or(hb.and(0x30)).sub(32);
                        IntVector q4 = b.lanewise(VectorOperators.LSHR, 4)
                                .or(hb.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32);
                        float s1 = d * w.get(ValueLayout.JAVA_BYTE, sc + is);
                        float s2 = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2);
                        float s3 = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4);
                        float s4 = d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6);
                        acc0 = ((FloatVector) q1.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + k)).fma(FloatVector.broadcast(F, s1), acc0);
                        acc1 = ((FloatVector) q2.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 32 + k)).fma(FloatVector.broadcast(F, s2), acc1);
                        acc2 = ((FloatVector) q3.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 64 + k)).fma(FloatVector.broadcast(F, s3), acc2);
                        acc3 = ((FloatVector) q4.convert(VectorOperators.I2F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 96 + k)).fma(FloatVector.broadcast(F, s4), acc3);
                    }
                }
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

    /// `out[outOffset + r] = row r · x` for rows `[from, to)`.
    ///
    /// Per step, 16 bytes each of `ql` (twice) and `qh` widen to int lanes and assemble four 6-bit quants per lane as
    /// [#dot] does; each 16-weight group is multiplied with `x` and accumulated scaled by `d·scale`, into two
    /// accumulators. One row per pass (see `Q4_K.matVec` for why); 512-bit vectors only, narrower machines use
    /// [#dot].
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to, float[] sums) {
        if (BYTE_PARTS != 1) { // narrower vectors than 512 bits: one row at a time (keeps this body small)
            for (int r = from; r < to; r++) {
                out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
            }
            return;
        }
        int nb = cols / BLOCK;
        for (int r = from; r < to; r++) {
            long o0 = (r + 0) * rowBytes;
            FloatVector accA0 = FloatVector.zero(F);
            FloatVector accB0 = accA0;
            for (int i = 0; i < nb; i++) {
                long b0 = o0 + (long) i * BYTES;
                float d0 = Float.float16ToFloat(w.get(SHORT_LE, b0 + 208));
                for (int h = 0; h < 2; h++) {
                    int xh = xOffset + i * BLOCK + 128 * h;
                    for (int l = 0; l < 32; l += 16) {
                        long ql = 64 * h + l;
                        long qh = 128 + 32 * h + l;
                        long sc = 192 + 8 * h + (l >>> 4);
                        FloatVector x1 = FloatVector.fromArray(F, x, xh + l);
                        FloatVector x2 = FloatVector.fromArray(F, x, xh + 32 + l);
                        FloatVector x3 = FloatVector.fromArray(F, x, xh + 64 + l);
                        FloatVector x4 = FloatVector.fromArray(F, x, xh + 96 + l);
                        ByteVector ba0 = ByteVector.fromMemorySegment(B, w, b0 + ql, LE);
                        ByteVector bb0 = ByteVector.fromMemorySegment(B, w, b0 + ql + 32, LE);
                        ByteVector bh0 = ByteVector.fromMemorySegment(B, w, b0 + qh, LE);
                        IntVector a0 = (IntVector) ba0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        IntVector c0 = (IntVector) bb0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        IntVector e0 = (IntVector) bh0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        FloatVector s10 = ((FloatVector) a0.and(0xF).or(e0.lanewise(VectorOperators.LSHL, 4)
                                .and(0x30)).sub(32).convert(VectorOperators.I2F, 0)).mul(x1);
                        FloatVector s20 = ((FloatVector) c0.and(0xF).or(e0.lanewise(VectorOperators.LSHL, 2)
                                .and(0x30)).sub(32).convert(VectorOperators.I2F, 0)).mul(x2);
                        FloatVector s30 = ((FloatVector) a0.lanewise(VectorOperators.LSHR, 4).or(e0.and(0x30))
                                .sub(32).convert(VectorOperators.I2F, 0)).mul(x3);
                        FloatVector s40 = ((FloatVector) c0.lanewise(VectorOperators.LSHR, 4)
                                .or(e0.lanewise(VectorOperators.LSHR, 2).and(0x30))
                                .sub(32).convert(VectorOperators.I2F, 0)).mul(x4);
                        accA0 = s10.fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, b0 + sc)), accA0);
                        accB0 = s20.fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, b0 + sc + 2)),
                                accB0);
                        accA0 = s30.fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, b0 + sc + 4)),
                                accA0);
                        accB0 = s40.fma(FloatVector.broadcast(F, d0 * w.get(ValueLayout.JAVA_BYTE, b0 + sc + 6)),
                                accB0);
                    }
                }
            }
            // butterfly: fixed-order lane sum, then every lane holds it (see Simd)
            FloatVector v;
            v = accA0.add(accB0);
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            if (L >= 8) {
                v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            }
            if (L >= 16) {
                v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            }
            out[outOffset + r] = v.reduceLanes(VectorOperators.MAX);
        }
    }
}
