package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.IOTA;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;

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
                        ((FloatVector) q1.convertShape(VectorOperators.I2F, F, 0)).mul(s1).intoArray(out, y + k);
                        ((FloatVector) q2.convertShape(VectorOperators.I2F, F, 0)).mul(s2).intoArray(out, y + 32 + k);
                        ((FloatVector) q3.convertShape(VectorOperators.I2F, F, 0)).mul(s3).intoArray(out, y + 64 + k);
                        ((FloatVector) q4.convertShape(VectorOperators.I2F, F, 0)).mul(s4).intoArray(out, y + 96 + k);
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
                        acc0 = ((FloatVector) q1.convertShape(VectorOperators.I2F, F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + k)).fma(FloatVector.broadcast(F, s1), acc0);
                        acc1 = ((FloatVector) q2.convertShape(VectorOperators.I2F, F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 32 + k)).fma(FloatVector.broadcast(F, s2), acc1);
                        acc2 = ((FloatVector) q3.convertShape(VectorOperators.I2F, F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 64 + k)).fma(FloatVector.broadcast(F, s3), acc2);
                        acc3 = ((FloatVector) q4.convertShape(VectorOperators.I2F, F, 0))
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
                        acc0 = ((FloatVector) q1.convertShape(VectorOperators.I2F, F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + k)).fma(FloatVector.broadcast(F, s1), acc0);
                        acc1 = ((FloatVector) q2.convertShape(VectorOperators.I2F, F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 32 + k)).fma(FloatVector.broadcast(F, s2), acc1);
                        acc2 = ((FloatVector) q3.convertShape(VectorOperators.I2F, F, 0))
                                .mul(FloatVector.fromArray(F, x, xh + 64 + k)).fma(FloatVector.broadcast(F, s3), acc2);
                        acc3 = ((FloatVector) q4.convertShape(VectorOperators.I2F, F, 0))
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

    /// `out[outOffset + r] = row r · x` for rows `[from, to)`.
    ///
    /// With 512-bit vectors, in integers against `x` quantized to 8 bits ([Input]), straight from the GGUF layout:
    /// `y = Σ_sb d·dx · Σ_g scale_g · (Σ_{i∈g} q_i·xq_i − 32 · Σ_{i∈g} xq_i)` with `q = ql | qh << 4` in 0..63.
    /// Per 64-byte half of `ql`, four mask-and-shift extractions put two 4-bit halves in each int lane
    /// (`a0 + a1·2¹⁶`), and the matching 2-bit fields of `qh` (its 32 bytes duplicated into both lane halves and
    /// shifted by 0 or 2) are or-ed in above them; a multiply with [Input]'s packed activation pairs per extraction
    /// yields two products per lane, and one arithmetic shift per two extractions recovers their sum (6-bit weights
    /// allow no more). Lanes `4j .. 4j + 3` of a half are one 16-weight group, so the sums are scaled by rearranged
    /// sign-extended scales, the offset of 32 is one multiply with the groups' sums of `xq`, and the super-block's
    /// integer total is converted once and scaled by `d·dx`. One row per pass; narrower machines use [#dot] row by
    /// row, in float.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to, Input in) {
        if (L != 16) { // narrower vectors than 512 bits: one row at a time (keeps this body small)
            for (int r = from; r < to; r++) {
                out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
            }
            return;
        }
        int nb = cols / BLOCK;
        int[] xq = in.pairs6;
        int[] bs = in.sums16;
        float[] dx = in.scale;
        for (int r = from; r < to; r++) {
            long o = r * rowBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int i = 0; i < nb; i++) {
                long b = o + (long) i * BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector qh = IntVector.fromMemorySegment(I, w, b + 128, LE);
                IntVector sc = (IntVector) ByteVector.fromMemorySegment(B, w, b + 192, LE)
                        .convertShape(VectorOperators.B2I, I, 0);
                // first half: ql[0..63], qh[0..31]
                IntVector v = IntVector.fromMemorySegment(I, w, b, LE);
                IntVector h = qh.rearrange(QH_FIRST).mul(QH_SCALE);
                IntVector lo = v.and(NIBBLES).or(h.lanewise(VectorOperators.LSHL, 2).and(HIGH_BITS)).mul(x0)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES)
                                .or(h.lanewise(VectorOperators.LSHR, 6).and(HIGH_BITS)).mul(x1))
                        .add(Input.PAIR_BIAS).lanewise(VectorOperators.ASHR, 16);
                IntVector hi = v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES)
                        .or(h.lanewise(VectorOperators.LSHR, 2).and(HIGH_BITS)).mul(x2)
                        .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                .or(h.lanewise(VectorOperators.LSHR, 10).and(HIGH_BITS)).mul(x3))
                        .add(Input.PAIR_BIAS).lanewise(VectorOperators.ASHR, 16);
                IntVector s = lo.mul(sc.rearrange(GROUPS_0)).add(hi.mul(sc.rearrange(GROUPS_1)));
                // second half: ql[64..127], qh[32..63]
                v = IntVector.fromMemorySegment(I, w, b + 64, LE);
                h = qh.rearrange(QH_SECOND).mul(QH_SCALE);
                lo = v.and(NIBBLES).or(h.lanewise(VectorOperators.LSHL, 2).and(HIGH_BITS)).mul(x4)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES)
                                .or(h.lanewise(VectorOperators.LSHR, 6).and(HIGH_BITS)).mul(x5))
                        .add(Input.PAIR_BIAS).lanewise(VectorOperators.ASHR, 16);
                hi = v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES)
                        .or(h.lanewise(VectorOperators.LSHR, 2).and(HIGH_BITS)).mul(x6)
                        .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                .or(h.lanewise(VectorOperators.LSHR, 10).and(HIGH_BITS)).mul(x7))
                        .add(Input.PAIR_BIAS).lanewise(VectorOperators.ASHR, 16);
                s = s.add(lo.mul(sc.rearrange(GROUPS_2)).add(hi.mul(sc.rearrange(GROUPS_3))))
                        .sub(sc.mul(IntVector.fromArray(I, bs, 16 * i)).lanewise(VectorOperators.LSHL, 5));
                float d = Float.float16ToFloat(w.get(SHORT_LE, b + 208)) * dx[i];
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.broadcast(F, d), acc);
            }
            // butterfly: fixed-order lane sum, then every lane holds it (see Simd)
            FloatVector v = acc;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
        }
    }

    /// The low nibbles of bytes 0 and 2 of each int lane, and the two bits above them.
    private static final int NIBBLES = 0x000F000F;
    private static final int HIGH_BITS = 0x00300030;
    // qh's 32 bytes of a half, in both lane halves: lanes 0..7 serve ql bytes 0..31 (qh bits 0-1 and 4-5), lanes
    // 8..15 ql bytes 32..63 (bits 2-3 and 6-7); multiplying lanes 0..7 by 4 aligns both to bits 2-3 and 6-7, and the
    // extractions shift from there (a shift by a vector of counts fell out of C2's intrinsics here and allocated)
    private static final VectorShuffle<Integer> QH_FIRST = L != 16 ? null : VectorShuffle.fromOp(I, i -> i & 7);
    private static final VectorShuffle<Integer> QH_SECOND = L != 16 ? null
            : VectorShuffle.fromOp(I, i -> 8 + (i & 7));
    private static final IntVector QH_SCALE = L != 16 ? null
            : IntVector.broadcast(I, 4).sub(IOTA.lanewise(VectorOperators.LSHR, 3).and(1).mul(3));
    // GROUPS_k: lane i takes scale 4k + i/4 (k = 0: the first half's low nibbles, 1: its high nibbles, 2, 3: the
    // second half's)
    private static final VectorShuffle<Integer> GROUPS_0 = L != 16 ? null : VectorShuffle.fromOp(I, i -> i / 4);
    private static final VectorShuffle<Integer> GROUPS_1 = L != 16 ? null : VectorShuffle.fromOp(I, i -> 4 + i / 4);
    private static final VectorShuffle<Integer> GROUPS_2 = L != 16 ? null : VectorShuffle.fromOp(I, i -> 8 + i / 4);
    private static final VectorShuffle<Integer> GROUPS_3 = L != 16 ? null : VectorShuffle.fromOp(I, i -> 12 + i / 4);

    // ---- The lane layout ([Matrix.Layout#LANES]): one byte per weight, for the integer kernel ----

    /// Bytes of a super-block in the lane layout.
    static final int LANE_BYTES = 276;

    /// Rewrites the `cols / 256` super-blocks of one row from GGUF bytes at `src + srcOffset` to the lane layout at
    /// `dst + dstOffset`:
    ///
    /// ```
    /// byte  0      4                     20                                                           276
    ///       +------+---------------------+------------------------------------------------------------+
    ///       |  d   |  scales[0..15] int8 |  q: the 6-bit quants 0..63, one byte each, in lane order    |
    ///       +------+---------------------+------------------------------------------------------------+
    ///        f32
    /// ```
    ///
    /// Lane order: the quants are four 64-byte vectors of sixteen 4-byte int lanes, and lane `j` of vector `h` holds
    /// weights `16j + 4h .. 16j + 4h + 3`, so lane `j` of every vector belongs to 16-weight group `j` (byte `64h + 4j
    /// + m` is weight `16j + 4h + m`). The kernel can then add the four vectors' products lane by lane and multiply
    /// by the group scales once per super-block, without rearranging them.
    ///
    /// The 6-bit quants cost the GGUF kernel most of its work (two nibble planes and a 2-bit plane merged per
    /// weight); as bytes, one mask (and a shift) puts two weights of a lane in place. 66 bytes more than GGUF's 210
    /// (+31%); measured faster in decode all the same (the `Q6_K` kernels are compute-bound).
    static void repackRow(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int cols) {
        int nb = cols / BLOCK;
        byte[] in = new byte[BYTES];
        byte[] out = new byte[LANE_BYTES];
        for (int i = 0; i < nb; i++) {
            long s = srcOffset + (long) i * BYTES;
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, s, in, 0, BYTES);
            int bits = Float.floatToRawIntBits(Float.float16ToFloat(src.get(SHORT_LE, s + 208)));
            for (int k = 0; k < 4; k++) {
                out[k] = (byte) (bits >>> 8 * k);
            }
            System.arraycopy(in, 192, out, 4, 16);
            // weight 128h + 32k + l: ql[64h + 32(k & 1) + l], low nibble for k < 2; qh[32h + l] bits 2k, 2k + 1
            for (int h = 0; h < 2; h++) {
                for (int k = 0; k < 4; k++) {
                    for (int l = 0; l < 32; l++) {
                        int b = in[64 * h + 32 * (k & 1) + l] & 0xFF;
                        int low = k < 2 ? b & 0xF : b >>> 4;
                        int high = ((in[128 + 32 * h + l] & 0xFF) >>> 2 * k) & 3;
                        out[20 + laneByte(128 * h + 32 * k + l)] = (byte) (low | high << 4);
                    }
                }
            }
            MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, dstOffset + (long) i * LANE_BYTES, LANE_BYTES);
        }
    }

    /// The byte (after the scales) of weight `k` of a super-block in the lane layout.
    static int laneByte(int k) {
        return 64 * ((k >>> 2) & 3) + 4 * (k >>> 4) + (k & 3);
    }

    /// The weight of byte `b` (after the scales) of a super-block in the lane layout: the inverse of [#laneByte].
    static int laneWeight(int b) {
        return 16 * ((b >>> 2) & 15) + 4 * (b >>> 6) + (b & 3);
    }

    /// [#dequantize] for the lane layout: the same values bit for bit (`(d·scale)·(q − 32)`).
    static void dequantizeLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(FLOAT_LE, t);
            for (int k = 0; k < BLOCK; k++) {
                int q = w.get(ValueLayout.JAVA_BYTE, t + 20 + laneByte(k)) - 32;
                out[outOffset + i * BLOCK + k] = d * w.get(ValueLayout.JAVA_BYTE, t + 4 + k / 16) * q;
            }
        }
    }

    /// [#dequantizeLanes] with vectors, bit for bit the same values (the panels of [MatMul]), 512-bit vectors only
    /// (the lane layout exists only there). The 16 bytes at `64h + 16a` are weights `64a + 16q + 4h + m` (lane `4q
    /// + m`), so the four vectors `h = 0..3` of one `a` hold the 64 weights from `64a` as a 4×4 grid of 4-weight
    /// chunks, transposed; two rounds of two-vector selections put it back in order.
    static void unpackLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            FloatVector sc = ((FloatVector) ByteVector.fromMemorySegment(B, w, t + 4, LE)
                    .convertShape(VectorOperators.B2F, F, 0)).mul(w.get(FLOAT_LE, t));
            for (int a = 0; a < 4; a++) {
                // one constant shuffle per a, never an array element (see Q4_K.LANE_0)
                FloatVector scale = sc.rearrange(a == 0 ? QUARTER_0 : a == 1 ? QUARTER_1 : a == 2 ? QUARTER_2
                        : QUARTER_3);
                long q = t + 20 + 16 * a;
                FloatVector x0 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B, w, q, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).sub(32)
                        .convertShape(VectorOperators.I2F, F, 0)).mul(scale);
                FloatVector x1 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B, w, q + 64, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).sub(32)
                        .convertShape(VectorOperators.I2F, F, 0)).mul(scale);
                FloatVector x2 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B, w, q + 128, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).sub(32)
                        .convertShape(VectorOperators.I2F, F, 0)).mul(scale);
                FloatVector x3 = ((FloatVector) ((IntVector) ByteVector.fromMemorySegment(B, w, q + 192, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).sub(32)
                        .convertShape(VectorOperators.I2F, F, 0)).mul(scale);
                // chunk c of a vector is lanes 4c .. 4c + 3; p0 = (x0.c0 x1.c0 x0.c1 x1.c1), p1 = (x0.c2 x1.c2 ...)
                FloatVector p0 = INTERLEAVE_LOW.selectFrom(x0, x1);
                FloatVector p1 = INTERLEAVE_HIGH.selectFrom(x0, x1);
                FloatVector p2 = INTERLEAVE_LOW.selectFrom(x2, x3);
                FloatVector p3 = INTERLEAVE_HIGH.selectFrom(x2, x3);
                int o = outOffset + i * BLOCK + 64 * a;
                HALVES_LOW.selectFrom(p0, p2).intoArray(out, o);
                HALVES_HIGH.selectFrom(p0, p2).intoArray(out, o + 16);
                HALVES_LOW.selectFrom(p1, p3).intoArray(out, o + 32);
                HALVES_HIGH.selectFrom(p1, p3).intoArray(out, o + 48);
            }
        }
    }

    /// Scales of groups `4a .. 4a + 3`, each over four lanes.
    private static final VectorShuffle<Float> QUARTER_0 = quarter(0);
    private static final VectorShuffle<Float> QUARTER_1 = quarter(1);
    private static final VectorShuffle<Float> QUARTER_2 = quarter(2);
    private static final VectorShuffle<Float> QUARTER_3 = quarter(3);
    /// Index vectors of `selectFrom(u, v)` (indexes 16.. pick from `v`), by 4-lane chunks: `(u.c0 v.c0 u.c1 v.c1)`,
    /// `(u.c2 v.c2 u.c3 v.c3)`, `(u.c0 u.c1 v.c0 v.c1)`, `(u.c2 u.c3 v.c2 v.c3)`.
    private static final FloatVector INTERLEAVE_LOW = chunks(0, 16 + 0, 4, 16 + 4);
    private static final FloatVector INTERLEAVE_HIGH = chunks(8, 16 + 8, 12, 16 + 12);
    private static final FloatVector HALVES_LOW = chunks(0, 4, 16 + 0, 16 + 4);
    private static final FloatVector HALVES_HIGH = chunks(8, 12, 16 + 8, 16 + 12);

    private static VectorShuffle<Float> quarter(int a) {
        return L != 16 ? null : VectorShuffle.fromOp(F, i -> 4 * a + i / 4);
    }

    private static FloatVector chunks(int c0, int c1, int c2, int c3) {
        if (L != 16) {
            return null;
        }
        float[] index = new float[16];
        int[] from = {c0, c1, c2, c3};
        for (int i = 0; i < 16; i++) {
            index[i] = from[i / 4] + i % 4;
        }
        return FloatVector.fromArray(F, index, 0);
    }

    /// `out[outOffset + r] = row r · x` for rows `[from, to)` of a lane-layout matrix whose rows are `rowBytes`
    /// apart, in integers against `x` quantized to 8 bits ([Input]), 512-bit vectors only. Each 64-byte load holds
    /// four weights of every 16-weight group (lane `j`: group `j`); two mask-and-shift extractions put two in each
    /// int lane, a multiply with the packed activation pairs and one arithmetic shift per load give each lane's four
    /// products, and the four loads add up lane by lane to the groups' integer dot products. Then the offset of 32
    /// (the groups' sums of `xq`, times 32), one multiply by the group scales, and one conversion, scaled by
    /// `d·dx`, per super-block.
    ///
    /// **Three rows per pass.** Each row is a sequential stream from DRAM, and this loop needs little arithmetic per
    /// byte (~29 cycles per 276-byte super-block from the caches: 32 GB/s on one core), so how many cache lines are
    /// in flight bounds it: one thread read from DRAM 12.8 GB/s with two rows per pass, 14.3 with three, 15.2 with
    /// four and 17.8 with eight (2048x8192, thread CPU time, `Q6KLab` in the bench module, same run, load average
    /// 13). The four- and eight-row bodies are too large for C1 ("out of virtual registers", as the eight-group
    /// [Q4_0#matVec4Int]): the method then stayed in unoptimised code that boxed vectors (94 MB per 100 calls of a
    /// 36-row matrix). Three rows, in a method of their own, compile; a chunk's remaining rows take two and one at
    /// a time. Per row the operations and their order are the same in every loop, so results do not depend on the
    /// split.
    static void matVecLanes(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                            float[] out, int outOffset, int from, int to, Input in) {
        int whole = from + (to - from) / 3 * 3; // whole passes of three rows
        if (whole > from) {
            matVecLanes3(w, rowBytes, cols, out, outOffset, from, whole, in);
        }
        if (whole < to) {
            matVecLanesFew(w, rowBytes, cols, out, outOffset, whole, to, in);
        }
    }

    /// [#matVecLanes] three rows per pass (`to − from` a multiple of 3).
    private static void matVecLanes3(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from,
                                     int to, Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs6Lanes;
        int[] bs = in.sums16;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 3) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            long o2 = o1 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector offset = IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 5);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector s;
                IntVector u;
                // row 0, then rows 1 and 2 alike, written out (see Simd: no helper taking vectors)
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc1);
                b = o2 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc2);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
            v = acc1;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 1] = v.lane(0);
            v = acc2;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 2] = v.lane(0);
        }
    }

    /// [#matVecLanes] two rows, then one, at a time: the rows a chunk has beyond its multiple of 3.
    private static void matVecLanesFew(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from,
                                       int to, Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs6Lanes;
        int[] bs = in.sums16;
        float[] dx = in.scale;
        int r = from;
        for (; r + 2 <= to; r += 2) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            for (int i = 0; i < nb; i++) {
                long b0 = o0 + (long) i * LANE_BYTES;
                long b1 = o1 + (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector xa = IntVector.fromArray(I, xq, p);
                IntVector xb = IntVector.fromArray(I, xq, p + 16);
                IntVector v = IntVector.fromMemorySegment(I, w, b0 + 20, LE);
                IntVector s0 = v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b1 + 20, LE);
                IntVector s1 = v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16);
                xa = IntVector.fromArray(I, xq, p + 32);
                xb = IntVector.fromArray(I, xq, p + 48);
                v = IntVector.fromMemorySegment(I, w, b0 + 84, LE);
                IntVector t0 = v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b1 + 84, LE);
                IntVector t1 = v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16);
                xa = IntVector.fromArray(I, xq, p + 64);
                xb = IntVector.fromArray(I, xq, p + 80);
                v = IntVector.fromMemorySegment(I, w, b0 + 148, LE);
                s0 = s0.add(v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16));
                v = IntVector.fromMemorySegment(I, w, b1 + 148, LE);
                s1 = s1.add(v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16));
                xa = IntVector.fromArray(I, xq, p + 96);
                xb = IntVector.fromArray(I, xq, p + 112);
                v = IntVector.fromMemorySegment(I, w, b0 + 212, LE);
                t0 = t0.add(v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16));
                v = IntVector.fromMemorySegment(I, w, b1 + 212, LE);
                t1 = t1.add(v.and(BYTES_0_2).mul(xa).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(xb))
                        .lanewise(VectorOperators.ASHR, 16));
                IntVector offset = IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 5);
                IntVector sc0 = (IntVector) ByteVector.fromMemorySegment(B, w, b0 + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0);
                IntVector sc1 = (IntVector) ByteVector.fromMemorySegment(B, w, b1 + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0);
                s0 = s0.add(t0).sub(offset).mul(sc0);
                s1 = s1.add(t1).sub(offset).mul(sc1);
                acc0 = ((FloatVector) s0.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b0) * dx[i]), acc0);
                acc1 = ((FloatVector) s1.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b1) * dx[i]), acc1);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
            v = acc1;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 1] = v.lane(0);
        }
        for (; r < to; r++) {
            long o = r * rowBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int i = 0; i < nb; i++) {
                long b = o + (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector s = IntVector.zero(I);
                for (int h = 0; h < 4; h++) {
                    IntVector v = IntVector.fromMemorySegment(I, w, b + 20 + 64 * h, LE);
                    s = v.and(BYTES_0_2).mul(IntVector.fromArray(I, xq, p + 32 * h)).add(Input.PAIR_BIAS)
                            .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2)
                                    .mul(IntVector.fromArray(I, xq, p + 32 * h + 16)))
                            .lanewise(VectorOperators.ASHR, 16).add(s); // s carried: the argument (see Simd)
                }
                IntVector sc = (IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0);
                s = s.sub(IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 5)).mul(sc);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dx[i]), acc);
            }
            FloatVector v = acc;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
        }
    }

    /// Bytes 0 and 2 of each int lane.
    private static final int BYTES_0_2 = 0x00FF00FF;
}
