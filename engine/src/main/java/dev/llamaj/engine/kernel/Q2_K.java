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

/// `Q2_K` weights (ggml: `block_q2_K`, `GGML_TYPE_Q2_K`): super-blocks of 256 weights in 84 bytes.
///
/// ```
/// byte  0              16                               80     82     84
///       +--------------+--------------------------------+------+------+
///       | scales[0..15]|  qs[0..63]: 2-bit quants       |  d   | dmin |
///       +--------------+--------------------------------+------+------+
///       scales[g] = (min_g << 4) | scale_g (4 bits each)   fp16 super-scales
/// 16 groups of 16 weights. Weight i = 128·h + 32·k + l (h ∈ 0..1, k ∈ 0..3, l ∈ 0..31):
///   q = (qs[32·h + l] >> 2k) & 3,   g = 8·h + 2·k + (l ≥ 16)
///   w = d·scale_g × q − dmin·min_g
/// ```
///
/// Two kernels. [#dot] (the GGUF layout, any vector width) works in float: per 32 weights, one 16-byte load of `qs`
/// per group, widened, shifted and masked to the quants, dequantized with one FMA and multiplied with `x`. With
/// 512-bit vectors the loader repacks the matrix ([#repackRow]) so that one int lane holds one group, and
/// [#matVecLanes] multiplies in integers against `x` rounded to 8 bits ([Input]), as llama.cpp does.
final class Q2_K {
    static final int BLOCK = 256;
    static final int BYTES = 84;

    private Q2_K() {
    }

    /// As ggml's `dequantize_row_q2_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 80));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 82));
            long q = o + 16;
            int is = 0;
            for (int h = 0; h < 2; h++) {
                int shift = 0;
                for (int k = 0; k < 4; k++) {
                    int sc = w.get(ValueLayout.JAVA_BYTE, o + is++) & 0xFF;
                    float dl = d * (sc & 0xF);
                    float ml = min * (sc >>> 4);
                    for (int l = 0; l < 16; l++) {
                        out[y++] = dl * ((w.get(ValueLayout.JAVA_BYTE, q + l) >>> shift) & 3) - ml;
                    }
                    sc = w.get(ValueLayout.JAVA_BYTE, o + is++) & 0xFF;
                    dl = d * (sc & 0xF);
                    ml = min * (sc >>> 4);
                    for (int l = 0; l < 16; l++) {
                        out[y++] = dl * ((w.get(ValueLayout.JAVA_BYTE, q + 16 + l) >>> shift) & 3) - ml;
                    }
                    shift += 2;
                }
                q += 32;
            }
        }
    }

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]): 32-weight chunk `c` of a
    /// super-block is groups `2c` and `2c + 1`, the 16-byte halves of `qs[32·(c/4) ..]` shifted by `2·(c % 4)`.
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 80));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 82));
            for (int c = 0; c < 8; c++) {
                int sa = w.get(ValueLayout.JAVA_BYTE, o + 2 * c) & 0xFF;
                int sb = w.get(ValueLayout.JAVA_BYTE, o + 2 * c + 1) & 0xFF;
                FloatVector da = FloatVector.broadcast(F, d * (sa & 0xF));
                FloatVector ma = FloatVector.broadcast(F, min * (sa >>> 4));
                FloatVector db = FloatVector.broadcast(F, d * (sb & 0xF));
                FloatVector mb = FloatVector.broadcast(F, min * (sb >>> 4));
                long q = o + 16 + 32 * (c >>> 2);
                int shift = 2 * (c & 3);
                ByteVector ba = ByteVector.fromMemorySegment(B, w, q, LE);
                ByteVector bb = ByteVector.fromMemorySegment(B, w, q + 16, LE);
                int y = outOffset + i * BLOCK + 32 * c;
                for (int p = 0; p < BYTE_PARTS; p++) {
                    int k = p * L;
                    IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    ((FloatVector) qa.lanewise(VectorOperators.LSHR, shift).and(3)
                            .convertShape(VectorOperators.I2F, F, 0)).mul(da).sub(ma).intoArray(out, y + k);
                    ((FloatVector) qb.lanewise(VectorOperators.LSHR, shift).and(3)
                            .convertShape(VectorOperators.I2F, F, 0)).mul(db).sub(mb).intoArray(out, y + 16 + k);
                }
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`, in float: one flat loop
    /// over 32-weight chunks (as [#unpack]; the super-block's scales re-read per chunk from L1), each group
    /// dequantized with one FMA (`q·d·scale − dmin·min`) before the multiply-add with `x`, one accumulator per group
    /// of the chunk.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int chunks = n / 32;
        for (int ch = 0; ch < chunks; ch++) {
            int c = ch & 7;
            long o = offset + (long) (ch >>> 3) * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 80));
            float dmin = Float.float16ToFloat(w.get(SHORT_LE, o + 82));
            int sa = w.get(ValueLayout.JAVA_BYTE, o + 2 * c) & 0xFF;
            int sb = w.get(ValueLayout.JAVA_BYTE, o + 2 * c + 1) & 0xFF;
            FloatVector da = FloatVector.broadcast(F, d * (sa & 0xF));
            FloatVector ma = FloatVector.broadcast(F, -(dmin * (sa >>> 4)));
            FloatVector db = FloatVector.broadcast(F, d * (sb & 0xF));
            FloatVector mb = FloatVector.broadcast(F, -(dmin * (sb >>> 4)));
            long q = o + 16 + 32 * (c >>> 2);
            int shift = 2 * (c & 3);
            int xc = xOffset + 32 * ch;
            ByteVector ba = ByteVector.fromMemorySegment(B, w, q, LE);
            ByteVector bb = ByteVector.fromMemorySegment(B, w, q + 16, LE);
            IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            acc0 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, shift).and(3)
                    .convertShape(VectorOperators.I2F, F, 0)).fma(da, ma).fma(FloatVector.fromArray(F, x, xc), acc0);
            acc1 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, shift).and(3)
                    .convertShape(VectorOperators.I2F, F, 0)).fma(db, mb)
                    .fma(FloatVector.fromArray(F, x, xc + 16), acc1);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                int k = p * L;
                qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                acc0 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, shift).and(3)
                        .convertShape(VectorOperators.I2F, F, 0)).fma(da, ma)
                        .fma(FloatVector.fromArray(F, x, xc + k), acc0);
                acc1 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, shift).and(3)
                        .convertShape(VectorOperators.I2F, F, 0)).fma(db, mb)
                        .fma(FloatVector.fromArray(F, x, xc + 16 + k), acc1);
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
    static final int LANE_BYTES = 88;

    /// Rewrites the `cols / 256` super-blocks of one row from GGUF bytes at `src + srcOffset` to the lane layout at
    /// `dst + dstOffset`:
    ///
    /// ```
    /// byte  0      4      8                24                                          88
    ///       +------+------+----------------+-------------------------------------------+
    ///       |  d   | dmin | scales[0..15]  |  quants: 2 bits each, in weight order     |
    ///       +------+------+----------------+-------------------------------------------+
    ///        f32    f32    as in GGUF       weight k: byte 24 + k/4, bits 2·(k % 4)
    /// ```
    ///
    /// Read as 16 int lanes, the 64 bytes of quants put group `g` (weights `16g .. 16g + 15`) in lane `g`, so
    /// every product of a super-block adds up lane by lane before one shift, and the groups are scaled with one
    /// multiply against their 16 scale bytes, in lane order too. 4 bytes more than GGUF's 84 (+4.8%): `d` and
    /// `dmin` as f32.
    static void repackRow(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int cols) {
        int nb = cols / BLOCK;
        byte[] in = new byte[BYTES];
        byte[] out = new byte[LANE_BYTES];
        for (int i = 0; i < nb; i++) {
            long s = srcOffset + (long) i * BYTES;
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, s, in, 0, BYTES);
            putFloat(out, 0, Float.float16ToFloat(src.get(SHORT_LE, s + 80)));
            putFloat(out, 4, Float.float16ToFloat(src.get(SHORT_LE, s + 82)));
            System.arraycopy(in, 0, out, 8, 16);
            packCrumbs(in, 16, out, 24);
            MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, dstOffset + (long) i * LANE_BYTES, LANE_BYTES);
        }
    }

    /// The 64 bytes of GGUF 2-bit quants at `in[qs ..]` (weight `128h + 32k + l` in bits `2k`, `2k + 1` of byte
    /// `32h + l`) in weight order at `out[at ..]` (weight `w` in bits `2·(w % 4)` of byte `w / 4`). Output byte
    /// `32h + 8k + m` holds weights `128h + 32k + 4m .. + 3`: field `k` of the four GGUF bytes `32h + 4m .. + 3`,
    /// read as one little-endian int, masked and folded into one byte by two shift-or steps. (Shared with `Q3_K`,
    /// whose low bits are laid out the same way.)
    static void packCrumbs(byte[] in, int qs, byte[] out, int at) {
        for (int h = 0; h < 2; h++) {
            for (int m = 0; m < 8; m++) {
                int b = qs + 32 * h + 4 * m;
                int word = (in[b] & 0xFF) | (in[b + 1] & 0xFF) << 8 | (in[b + 2] & 0xFF) << 16 | (in[b + 3] & 0xFF) << 24;
                for (int k = 0; k < 4; k++) {
                    int v = (word >>> 2 * k) & 0x03030303;     // weight j of the four in bits 8j, 8j + 1
                    v = (v | v >>> 6) & 0x000F000F;             // weights 0, 1 in bits 0..3; 2, 3 in bits 16..19
                    out[at + 32 * h + 8 * k + m] = (byte) (v | v >>> 12);
                }
            }
        }
    }

    /// Little-endian float `v` into `out[at .. at + 4)`.
    static void putFloat(byte[] out, int at, float v) {
        int bits = Float.floatToRawIntBits(v);
        for (int k = 0; k < 4; k++) {
            out[at + k] = (byte) (bits >>> 8 * k);
        }
    }

    /// [#dequantize] for the lane layout: the same values bit for bit (`d·scale × q − dmin·min`, each product
    /// rounded as there).
    static void dequantizeLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(FLOAT_LE, t);
            float min = w.get(FLOAT_LE, t + 4);
            for (int k = 0; k < BLOCK; k++) {
                int sc = w.get(ValueLayout.JAVA_BYTE, t + 8 + k / 16) & 0xFF;
                int q = (w.get(ValueLayout.JAVA_BYTE, t + 24 + k / 4) >>> 2 * (k % 4)) & 3;
                out[outOffset + i * BLOCK + k] = d * (sc & 0xF) * q - min * (sc >>> 4);
            }
        }
    }

    /// [#dequantizeLanes] with vectors, bit for bit the same values (the panels of [MatMul]), 512-bit vectors only
    /// (the lane layout exists only there): a group's 16 quants are one int, broadcast and shifted lane `i` by `2i`.
    static void unpackLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(FLOAT_LE, t);
            float min = w.get(FLOAT_LE, t + 4);
            for (int g = 0; g < 16; g++) {
                int sc = w.get(ValueLayout.JAVA_BYTE, t + 8 + g) & 0xFF;
                IntVector q = IntVector.broadcast(I, w.get(Simd.INT_LE, t + 24 + 4 * g))
                        .lanewise(VectorOperators.LSHR, CRUMB_SHIFTS).and(3);
                ((FloatVector) q.convertShape(VectorOperators.I2F, F, 0)).mul(d * (sc & 0xF)).sub(min * (sc >>> 4))
                        .intoArray(out, outOffset + i * BLOCK + 16 * g);
            }
        }
    }

    /// `2i` in lane `i`: the shift that brings weight `i` of a group's int to the bottom.
    static final IntVector CRUMB_SHIFTS = L != 16 ? null : IOTA.lanewise(VectorOperators.LSHL, 1);

    /// `out[outOffset + r] = row r · x` for rows `[from, to)` of a lane-layout matrix whose rows are `rowBytes`
    /// apart, in integers against `x` quantized to 8 bits ([Input]), 512-bit vectors only:
    ///
    /// `y = Σ_sb dx · (d · Σ_g scale_g · Σ_{i∈g} q_i·xq_i − dmin · Σ_g min_g · Σ_{i∈g} xq_i)`.
    ///
    /// Per super-block one 64-byte load holds its 256 quants, group `g` in int lane `g` (weight `16g + t` in bits
    /// `2t`, `2t + 1`); extraction `t` (0..7: a shift by `2t` and a mask) puts weights `t` and `8 + t` of every
    /// group in the two halves of its lane, and one multiply with [Input]'s packed activation pairs yields both
    /// products. All eight are summed, then one arithmetic shift recovers each group's dot product (16 products of
    /// at most 3·127 per lane: far within the ±2¹⁵ the pairing allows). One multiply with the scales and one with
    /// the minimums against the groups' sums of `xq` ([Input]'s `sums16`), two conversions and two FMAs with
    /// `d·dx` and `−dmin·dx` finish the super-block. One row per pass (as `Q4_K`'s kernel).
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
                IntVector v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                // a balanced sum: the chain from the loads to the accumulator is what bounds this loop
                IntVector s = v.and(CRUMBS).mul(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 2).and(CRUMBS).mul(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(CRUMBS).mul(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 6).and(CRUMBS)
                                        .mul(IntVector.fromArray(I, xq, p + 48))))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(CRUMBS).mul(IntVector.fromArray(I, xq, p + 64))
                                .add(v.lanewise(VectorOperators.LSHR, 10).and(CRUMBS)
                                        .mul(IntVector.fromArray(I, xq, p + 80)))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(CRUMBS)
                                        .mul(IntVector.fromArray(I, xq, p + 96))
                                        .add(v.lanewise(VectorOperators.LSHR, 14).and(CRUMBS)
                                                .mul(IntVector.fromArray(I, xq, p + 112))))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                IntVector sm = (IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector scaled = s.mul(sm.and(0xF));
                IntVector mins = IntVector.fromArray(I, bs, 16 * i).mul(sm.lanewise(VectorOperators.LSHR, 4));
                float dxi = dx[i];
                FloatVector m = ((FloatVector) mins.convertShape(VectorOperators.I2F, F, 0))
                        .mul(-(w.get(FLOAT_LE, b + 4) * dxi));
                acc = ((FloatVector) scaled.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), m).add(acc);
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

    /// Bits 0-1 and 16-17 of each int lane: one weight in each half.
    private static final int CRUMBS = 0x00030003;
}
