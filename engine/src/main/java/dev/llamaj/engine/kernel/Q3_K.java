package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.INT_LE;
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

/// `Q3_K` weights (ggml: `block_q3_K`, `GGML_TYPE_Q3_K`): super-blocks of 256 weights in 110 bytes.
///
/// ```
/// byte  0               32                         96              108    110
///       +---------------+--------------------------+---------------+------+
///       | hmask[0..31]  |  qs[0..63]: 2-bit quants | scales[0..11] |  d   |
///       +---------------+--------------------------+---------------+------+
///                                                   16 × 6-bit       fp16 super-scale
/// 16 groups of 16 weights. Weight i = 128·h + 32·k + l (h ∈ 0..1, k ∈ 0..3, l ∈ 0..31):
///   q = ((qs[32·h + l] >> 2k) & 3) − (bit (4·h + k) of hmask[l] ? 0 : 4),   g = 8·h + 2·k + (l ≥ 16)
///   w = d × (scale_g − 32) × q
/// scale_g (6 bits): low 4 bits = (g < 8 ? low : high) nibble of scales[g % 8],
///                   high 2 bits = bits 2·(g / 4) and 2·(g / 4) + 1 of scales[8 + g % 4]
/// ```
///
/// Two kernels, as `Q2_K`'s: [#dot] (the GGUF layout, any vector width) in float, per 32 weights one 16-byte load of
/// `qs` and one of `hmask` per group, widened and combined into the 3-bit quants; with 512-bit vectors the loader
/// repacks the matrix ([#repackRow]) so that one int lane holds one group, and [#matVecLanes] multiplies in integers
/// against `x` rounded to 8 bits ([Input]).
final class Q3_K {
    static final int BLOCK = 256;
    static final int BYTES = 110;
    private static final int KMASK1 = 0x03030303;
    private static final int KMASK2 = 0x0f0f0f0f;

    private Q3_K() {
    }

    /// As ggml's `dequantize_row_q3_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float dAll = Float.float16ToFloat(w.get(SHORT_LE, o + 108));
            // ggml unpacks the 12 scale bytes as three u32 words into four words of 6-bit scales (aux[0..3])
            int a0 = w.get(INT_LE, o + 96);
            int a1 = w.get(INT_LE, o + 100);
            int tmp = w.get(INT_LE, o + 104);
            int s0 = (a0 & KMASK2) | ((tmp & KMASK1) << 4);
            int s1 = (a1 & KMASK2) | (((tmp >>> 2) & KMASK1) << 4);
            int s2 = ((a0 >>> 4) & KMASK2) | (((tmp >>> 4) & KMASK1) << 4);
            int s3 = ((a1 >>> 4) & KMASK2) | (((tmp >>> 6) & KMASK1) << 4);
            long q = o + 32;
            long hm = o;
            int m = 1;
            int is = 0;
            for (int h = 0; h < 2; h++) {
                int shift = 0;
                for (int k = 0; k < 4; k++) {
                    float dl = dAll * (scale(s0, s1, s2, s3, is++) - 32);
                    for (int l = 0; l < 16; l++) {
                        int ql = (w.get(ValueLayout.JAVA_BYTE, q + l) >>> shift) & 3;
                        int hb = (w.get(ValueLayout.JAVA_BYTE, hm + l) & m) != 0 ? 0 : 4;
                        out[y++] = dl * (ql - hb);
                    }
                    dl = dAll * (scale(s0, s1, s2, s3, is++) - 32);
                    for (int l = 0; l < 16; l++) {
                        int ql = (w.get(ValueLayout.JAVA_BYTE, q + 16 + l) >>> shift) & 3;
                        int hb = (w.get(ValueLayout.JAVA_BYTE, hm + 16 + l) & m) != 0 ? 0 : 4;
                        out[y++] = dl * (ql - hb);
                    }
                    shift += 2;
                    m <<= 1;
                }
                q += 32;
            }
        }
    }

    /// Scale `g` (0..63) from the four unpacked words: byte `g % 4` of word `g / 4`.
    private static int scale(int s0, int s1, int s2, int s3, int g) {
        int word = g < 4 ? s0 : g < 8 ? s1 : g < 12 ? s2 : s3;
        return (word >>> (8 * (g & 3))) & 0xFF;
    }

    /// The 6-bit scale of group `g` (0..15) from the 12 bytes at `scales`, as [#dequantize] unpacks them: the low
    /// nibble of byte `g % 8` (the high one for `g ≥ 8`), and bits `2·(g / 4)`, `2·(g / 4) + 1` of byte `8 + g % 4`.
    static int scale6(MemorySegment w, long scales, int g) {
        int lo = (w.get(ValueLayout.JAVA_BYTE, scales + (g & 7)) >>> 4 * (g >>> 3)) & 0xF;
        int hi = (w.get(ValueLayout.JAVA_BYTE, scales + 8 + (g & 3)) >>> 2 * (g >>> 2)) & 3;
        return lo | hi << 4;
    }

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]): 32-weight chunk `c` of a
    /// super-block is groups `2c` and `2c + 1`, the 16-byte halves of `qs[32·(c/4) ..]` shifted by `2·(c % 4)`,
    /// with bit `c` of the two halves of `hmask`.
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 108));
            ByteVector ha = ByteVector.fromMemorySegment(B, w, o, LE);
            ByteVector hb = ByteVector.fromMemorySegment(B, w, o + 16, LE);
            for (int c = 0; c < 8; c++) {
                FloatVector da = FloatVector.broadcast(F, d * (scale6(w, o + 96, 2 * c) - 32));
                FloatVector db = FloatVector.broadcast(F, d * (scale6(w, o + 96, 2 * c + 1) - 32));
                long q = o + 32 + 32 * (c >>> 2);
                int shift = 2 * (c & 3);
                ByteVector ba = ByteVector.fromMemorySegment(B, w, q, LE);
                ByteVector bb = ByteVector.fromMemorySegment(B, w, q + 16, LE);
                int y = outOffset + i * BLOCK + 32 * c;
                for (int p = 0; p < BYTE_PARTS; p++) {
                    int k = p * L;
                    IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector xa = (IntVector) ha.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector xb = (IntVector) hb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    // q = low | high bit << 2, minus 4: the high bit shifted to bit 2 as (h << 2) >>> c
                    ((FloatVector) qa.lanewise(VectorOperators.LSHR, shift).and(3)
                            .or(xa.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, c).and(4)).sub(4)
                            .convertShape(VectorOperators.I2F, F, 0)).mul(da).intoArray(out, y + k);
                    ((FloatVector) qb.lanewise(VectorOperators.LSHR, shift).and(3)
                            .or(xb.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, c).and(4)).sub(4)
                            .convertShape(VectorOperators.I2F, F, 0)).mul(db).intoArray(out, y + 16 + k);
                }
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`, in float: one flat loop
    /// over 32-weight chunks (as [#unpack]), each group's quants multiplied with `x`, then with `d·(scale − 32)` in
    /// the FMA into its accumulator.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int chunks = n / 32;
        for (int ch = 0; ch < chunks; ch++) {
            int c = ch & 7;
            long o = offset + (long) (ch >>> 3) * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 108));
            FloatVector da = FloatVector.broadcast(F, d * (scale6(w, o + 96, 2 * c) - 32));
            FloatVector db = FloatVector.broadcast(F, d * (scale6(w, o + 96, 2 * c + 1) - 32));
            long q = o + 32 + 32 * (c >>> 2);
            int shift = 2 * (c & 3);
            int xc = xOffset + 32 * ch;
            ByteVector ba = ByteVector.fromMemorySegment(B, w, q, LE);
            ByteVector bb = ByteVector.fromMemorySegment(B, w, q + 16, LE);
            ByteVector ha = ByteVector.fromMemorySegment(B, w, o, LE);
            ByteVector hb = ByteVector.fromMemorySegment(B, w, o + 16, LE);
            IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector xa = (IntVector) ha.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector xb = (IntVector) hb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            acc0 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, shift).and(3)
                    .or(xa.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, c).and(4)).sub(4)
                    .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc)).fma(da, acc0);
            acc1 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, shift).and(3)
                    .or(xb.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, c).and(4)).sub(4)
                    .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 16)).fma(db, acc1);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                int k = p * L;
                qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                xa = (IntVector) ha.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                xb = (IntVector) hb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                acc0 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, shift).and(3)
                        .or(xa.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, c).and(4)).sub(4)
                        .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + k))
                        .fma(da, acc0);
                acc1 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, shift).and(3)
                        .or(xb.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.LSHR, c).and(4)).sub(4)
                        .convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 16 + k))
                        .fma(db, acc1);
            }
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

    /// `out[outOffset + r] = dot(row r, x)` for rows `[from, to)` in the GGUF layout.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to, Input in) {
        for (int r = from; r < to; r++) {
            out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
        }
    }

    // ---- The lane layout ([Matrix.Layout#LANES]): super-blocks rearranged at load time for the integer kernel ----

    /// Bytes of a super-block in the lane layout.
    static final int LANE_BYTES = 116;

    /// Rewrites the `cols / 256` super-blocks of one row from GGUF bytes at `src + srcOffset` to the lane layout at
    /// `dst + dstOffset`:
    ///
    /// ```
    /// byte  0      4                20                     52                                      116
    ///       +------+----------------+----------------------+---------------------------------------+
    ///       |  d   | scale_g − 32   |  high bits           |  low 2 bits, in weight order          |
    ///       +------+----------------+----------------------+---------------------------------------+
    ///        f32    16 signed bytes  weight 16g + t: bit     weight k: byte 52 + k/4, bits 2·(k % 4)
    ///                                t % 8 of byte 20 + g (t < 8), of byte 36 + g (t ≥ 8)
    /// ```
    ///
    /// The low bits are `Q2_K`'s lane layout ([Q2_K#repackRow]): read as 16 int lanes, group `g` is lane `g`. The
    /// two 16-byte halves of the high bits widen to the same lanes, bits `t` and `16 + t` of lane `g` once one is
    /// shifted up by 16, which a shift by `t` then lines up with the low bits of extraction `t`. 6 bytes more than
    /// GGUF's 110 (+5.5%): the scales decoded to bytes, `d` as f32.
    static void repackRow(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int cols) {
        int nb = cols / BLOCK;
        byte[] in = new byte[BYTES];
        byte[] out = new byte[LANE_BYTES];
        for (int i = 0; i < nb; i++) {
            long s = srcOffset + (long) i * BYTES;
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, s, in, 0, BYTES);
            Q2_K.putFloat(out, 0, Float.float16ToFloat(src.get(SHORT_LE, s + 108)));
            for (int g = 0; g < 16; g++) {
                out[4 + g] = (byte) (scale6(src, s + 96, g) - 32);
                // weight 16g + t is GGUF's 128h + 32k + l with 4h + k = g / 2 and l = 16·(g % 2) + t: its high bit
                // is bit g / 2 of hmask[l]; the eight of a half gathered into one byte (bit j of byte j of the
                // masked word lands in bit 56 + j of the product: the partial products never overlap)
                for (int half = 0; half < 2; half++) {
                    int l = 16 * (g & 1) + 8 * half;
                    long word = 0;
                    for (int j = 7; j >= 0; j--) {
                        word = word << 8 | (in[l + j] & 0xFF);
                    }
                    out[20 + 16 * half + g] =
                            (byte) ((((word >>> (g >>> 1)) & 0x0101010101010101L) * 0x0102040810204080L) >>> 56);
                }
            }
            Q2_K.packCrumbs(in, 32, out, 52);
            MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, dstOffset + (long) i * LANE_BYTES, LANE_BYTES);
        }
    }

    /// The quant of weight `k` (0..255) of the lane-layout super-block at `t`, in −4..3.
    private static int laneQuant(MemorySegment w, long t, int k) {
        int low = (w.get(ValueLayout.JAVA_BYTE, t + 52 + k / 4) >>> 2 * (k % 4)) & 3;
        int tt = k % 16;
        int high = (w.get(ValueLayout.JAVA_BYTE, t + 20 + 16 * (tt >>> 3) + k / 16) >>> (tt & 7)) & 1;
        return low + 4 * high - 4;
    }

    /// [#dequantize] for the lane layout: the same values bit for bit (`(d·(scale − 32)) × q`).
    static void dequantizeLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(FLOAT_LE, t);
            for (int k = 0; k < BLOCK; k++) {
                float dl = d * w.get(ValueLayout.JAVA_BYTE, t + 4 + k / 16);
                out[outOffset + i * BLOCK + k] = dl * laneQuant(w, t, k);
            }
        }
    }

    /// [#dequantizeLanes] with vectors, bit for bit the same values (the panels of [MatMul]), 512-bit vectors only:
    /// a group's low bits are one int and its high bits 16, broadcast and shifted lane `i` by `2i` and by `i`.
    static void unpackLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(FLOAT_LE, t);
            for (int g = 0; g < 16; g++) {
                float dl = d * w.get(ValueLayout.JAVA_BYTE, t + 4 + g);
                int high = (w.get(ValueLayout.JAVA_BYTE, t + 20 + g) & 0xFF)
                        | (w.get(ValueLayout.JAVA_BYTE, t + 36 + g) & 0xFF) << 8;
                IntVector q = IntVector.broadcast(I, w.get(INT_LE, t + 52 + 4 * g))
                        .lanewise(VectorOperators.LSHR, Q2_K.CRUMB_SHIFTS).and(3)
                        .or(IntVector.broadcast(I, high << 2).lanewise(VectorOperators.LSHR, IOTA).and(4)).sub(4);
                ((FloatVector) q.convertShape(VectorOperators.I2F, F, 0)).mul(dl)
                        .intoArray(out, outOffset + i * BLOCK + 16 * g);
            }
        }
    }

    /// `out[outOffset + r] = row r · x` for rows `[from, to)` of a lane-layout matrix whose rows are `rowBytes`
    /// apart, in integers against `x` quantized to 8 bits ([Input]), 512-bit vectors only:
    ///
    /// `y = Σ_sb d·dx · Σ_g (scale_g − 32) · (Σ_{i∈g} (q_i + 4)·xq_i − 4 · Σ_{i∈g} xq_i)`.
    ///
    /// As `Q2_K`'s kernel ([Q2_K#matVecLanes]): one 64-byte load of the low bits, group `g` in lane `g`; the high
    /// bits (two 16-byte loads widened and merged once per super-block) are or-ed in above the low ones of each
    /// extraction, so each half of a lane holds `q + 4` in 0..7 (16 products of at most 7·127 per lane: within the
    /// ±2¹⁵ the pairing allows); eight multiplies with the packed pairs, one shift, the offset of 4 (the groups'
    /// sums of `xq`), one multiply by the signed scales, one conversion and one FMA with `d·dx`.
    static void matVecLanes(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                            float[] out, int outOffset, int from, int to, Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs2;
        int[] bs = in.sums16;
        float[] dx = in.scale;
        for (int r = from; r < to; r++) {
            long o = r * rowBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int i = 0; i < nb; i++) {
                long b = o + (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector v = IntVector.fromMemorySegment(I, w, b + 52, LE);
                // lane g: the high bits of weights 16g + t at bit 2 + t (t < 8) and 18 + (t − 8)
                IntVector h = ((IntVector) ByteVector.fromMemorySegment(B, w, b + 36, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).lanewise(VectorOperators.LSHL, 18)
                        .or(((IntVector) ByteVector.fromMemorySegment(B, w, b + 20, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0)).lanewise(VectorOperators.LSHL, 2));
                IntVector s = v.and(CRUMBS).or(h.and(HIGH)).mul(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 2).and(CRUMBS)
                                .or(h.lanewise(VectorOperators.LSHR, 1).and(HIGH))
                                .mul(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(CRUMBS)
                                .or(h.lanewise(VectorOperators.LSHR, 2).and(HIGH))
                                .mul(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 6).and(CRUMBS)
                                        .or(h.lanewise(VectorOperators.LSHR, 3).and(HIGH))
                                        .mul(IntVector.fromArray(I, xq, p + 48))))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(CRUMBS)
                                .or(h.lanewise(VectorOperators.LSHR, 4).and(HIGH))
                                .mul(IntVector.fromArray(I, xq, p + 64))
                                .add(v.lanewise(VectorOperators.LSHR, 10).and(CRUMBS)
                                        .or(h.lanewise(VectorOperators.LSHR, 5).and(HIGH))
                                        .mul(IntVector.fromArray(I, xq, p + 80)))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(CRUMBS)
                                        .or(h.lanewise(VectorOperators.LSHR, 6).and(HIGH))
                                        .mul(IntVector.fromArray(I, xq, p + 96))
                                        .add(v.lanewise(VectorOperators.LSHR, 14).and(CRUMBS)
                                                .or(h.lanewise(VectorOperators.LSHR, 7).and(HIGH))
                                                .mul(IntVector.fromArray(I, xq, p + 112))))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                IntVector sc = (IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0);
                s = s.sub(IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 2)).mul(sc);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dx[i]), acc);
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

    /// Bits 0-1 and 16-17 of each int lane: the low bits of one weight in each half.
    private static final int CRUMBS = 0x00030003;
    /// Bit 2 and 18 of each int lane: the high bit of one weight in each half.
    private static final int HIGH = 0x00040004;
}
