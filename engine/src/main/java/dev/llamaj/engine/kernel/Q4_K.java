package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
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
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

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

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            for (int c = 0; c < 4; c++) {
                int sm = scaleMin(w, o + 4, 2 * c);
                FloatVector d1 = FloatVector.broadcast(F, d * (sm & 0xFF));
                FloatVector m1 = FloatVector.broadcast(F, min * (sm >>> 8));
                sm = scaleMin(w, o + 4, 2 * c + 1);
                FloatVector d2 = FloatVector.broadcast(F, d * (sm & 0xFF));
                FloatVector m2 = FloatVector.broadcast(F, min * (sm >>> 8));
                long q = o + 16 + 32 * c;
                int y = outOffset + i * BLOCK + 64 * c;
                ByteVector ba = ByteVector.fromMemorySegment(B, w, q, LE);
                ByteVector bb = ByteVector.fromMemorySegment(B, w, q + 16, LE);
                for (int p = 0; p < BYTE_PARTS; p++) {
                    int k = p * L;
                    IntVector qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    IntVector qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    ((FloatVector) qa.and(0xF).convertShape(VectorOperators.I2F, F, 0)).mul(d1).sub(m1).intoArray(out, y + k);
                    ((FloatVector) qb.and(0xF).convertShape(VectorOperators.I2F, F, 0)).mul(d1).sub(m1)
                            .intoArray(out, y + 16 + k);
                    ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0)).mul(d2)
                            .sub(m2).intoArray(out, y + 32 + k);
                    ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0)).mul(d2)
                            .sub(m2).intoArray(out, y + 48 + k);
                }
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
            acc0 = ((FloatVector) qa.and(0xF).convertShape(VectorOperators.I2F, F, 0)).fma(vd0, vm0)
                    .fma(FloatVector.fromArray(F, x, xc), acc0);
            acc1 = ((FloatVector) qb.and(0xF).convertShape(VectorOperators.I2F, F, 0)).fma(vd0, vm0)
                    .fma(FloatVector.fromArray(F, x, xc + 16), acc1);
            acc2 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                    .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 32), acc2);
            acc3 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                    .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 48), acc3);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                int k = p * L;
                qa = (IntVector) ba.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                qb = (IntVector) bb.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                acc0 = ((FloatVector) qa.and(0xF).convertShape(VectorOperators.I2F, F, 0)).fma(vd0, vm0)
                        .fma(FloatVector.fromArray(F, x, xc + k), acc0);
                acc1 = ((FloatVector) qb.and(0xF).convertShape(VectorOperators.I2F, F, 0)).fma(vd0, vm0)
                        .fma(FloatVector.fromArray(F, x, xc + 16 + k), acc1);
                acc2 = ((FloatVector) qa.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .fma(vd1, vm1).fma(FloatVector.fromArray(F, x, xc + 32 + k), acc2);
                acc3 = ((FloatVector) qb.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
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

    // Lane constants of the 512-bit kernel (null on narrower machines, which use dot): the 16 bytes at the scales,
    // widened to int lanes, are rearranged so that lanes 0..7 compute the 8 scales and lanes 8..15 the 8 minimums.
    static final VectorShuffle<Integer> SCALE_LO = L != 16 ? null
            : VectorShuffle.fromValues(I, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
    static final VectorShuffle<Integer> SCALE_HI = L != 16 ? null
            : VectorShuffle.fromValues(I, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 4, 5, 6, 7);
    static final IntVector SCALE_SHIFT = L != 16 ? null
            : IntVector.fromArray(I, new int[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4}, 0);
    static final IntVector SCALE_MASK = L != 16 ? null
            : IntVector.fromArray(I, new int[] {63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15}, 0);
    static final IntVector SCALE_HIGH_MASK = L != 16 ? null
            : IntVector.fromArray(I, new int[] {0, 0, 0, 0, 48, 48, 48, 48, 0, 0, 0, 0, 48, 48, 48, 48}, 0);
    /// Lanes 8..15: the minimums.
    static final VectorMask<Float> MIN_LANES = L != 16 ? null : VectorMask.fromLong(F, 0xFF00L);
    /// `LANE_g` broadcasts lane `g`. Separate constants, not an array: an array element is no compile-time
    /// constant, so a shuffle read from one has a type C2 only knows from the profile, and where the profile
    /// is polluted (many kernels through the Vector API's shared code) the rearrange is not intrinsified and boxes.
    static final VectorShuffle<Float> LANE_0 = lane(0);
    static final VectorShuffle<Float> LANE_1 = lane(1);
    static final VectorShuffle<Float> LANE_2 = lane(2);
    static final VectorShuffle<Float> LANE_3 = lane(3);
    static final VectorShuffle<Float> LANE_4 = lane(4);
    static final VectorShuffle<Float> LANE_5 = lane(5);
    static final VectorShuffle<Float> LANE_6 = lane(6);
    static final VectorShuffle<Float> LANE_7 = lane(7);

    private static VectorShuffle<Float> lane(int g) {
        return VectorShuffle.fromOp(F, i -> g % L);
    }

    /// `out[outOffset + r] = row r · x` for rows `[from, to)` in the GGUF layout (the repacked [#matVecLanes] is
    /// faster); `in.groupSums` holds, per super-block, 16 floats: zeros, then the 8 group sums of `x`.
    ///
    /// `y = Σ_g d·scale_g · Σ_{i∈g} q_i·x_i − dmin · Σ_g min_g · sum_g`. Per super-block, one vector holds the 8
    /// scales times `d` and the 8 minimums times `−dmin` ([#scales]); the minimums' term is then one FMA with the
    /// super-block's group sums (zeros against the scale lanes), and each group's scale is a lane broadcast. The
    /// four 64-weight chunks are written out (a loop over them was 1.4x slower); nibbles widen to int lanes. One row
    /// per pass: a multi-row body exceeds C2's inlining budget once the Vector API's profiles are shared with other
    /// kernels, and then boxes vectors (the allocation test catches it). 512-bit vectors only; narrower machines
    /// use [#dot].
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
                // the 8 scales (lanes 0..7, times d) and minimums (lanes 8..15, times -dmin), ggml's get_scale_min_k4
                // for all 16 at once; written out, not a helper: a helper returning a vector is not always inlined
                // (once compiled on its own it counts as "already compiled into a big method") and then boxes
                IntVector s16 = (IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector sc = ((FloatVector) s16.rearrange(SCALE_LO).lanewise(VectorOperators.LSHR, SCALE_SHIFT)
                        .and(SCALE_MASK).or(s16.rearrange(SCALE_HI).lanewise(VectorOperators.LSHR, 6)
                                .lanewise(VectorOperators.LSHL, 4).and(SCALE_HIGH_MASK))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .mul(FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, b)))
                                .blend(-Float.float16ToFloat(w.get(SHORT_LE, b + 2)), MIN_LANES));
                accH = sc.fma(FloatVector.fromArray(F, in.groupSums, 16 * i), accH);
                int xc = xOffset + i * BLOCK;
                long q = b + 16;
                IntVector p;
                IntVector n;
                FloatVector lo;
                FloatVector hi;
                p = (IntVector) ByteVector.fromMemorySegment(B, w, q + 0, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                n = (IntVector) ByteVector.fromMemorySegment(B, w, q + 16, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                lo = ((FloatVector) p.and(0xF).convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 0));
                lo = ((FloatVector) n.and(0xF).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 16), lo);
                hi = ((FloatVector) p.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .mul(FloatVector.fromArray(F, x, xc + 32));
                hi = ((FloatVector) n.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 48), hi);
                accL = lo.fma(sc.rearrange(LANE_0), accL);
                accH = hi.fma(sc.rearrange(LANE_1), accH);
                p = (IntVector) ByteVector.fromMemorySegment(B, w, q + 32, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                n = (IntVector) ByteVector.fromMemorySegment(B, w, q + 48, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                lo = ((FloatVector) p.and(0xF).convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 64));
                lo = ((FloatVector) n.and(0xF).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 80), lo);
                hi = ((FloatVector) p.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .mul(FloatVector.fromArray(F, x, xc + 96));
                hi = ((FloatVector) n.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 112), hi);
                accL = lo.fma(sc.rearrange(LANE_2), accL);
                accH = hi.fma(sc.rearrange(LANE_3), accH);
                p = (IntVector) ByteVector.fromMemorySegment(B, w, q + 64, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                n = (IntVector) ByteVector.fromMemorySegment(B, w, q + 80, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                lo = ((FloatVector) p.and(0xF).convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 128));
                lo = ((FloatVector) n.and(0xF).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 144), lo);
                hi = ((FloatVector) p.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .mul(FloatVector.fromArray(F, x, xc + 160));
                hi = ((FloatVector) n.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 176), hi);
                accL = lo.fma(sc.rearrange(LANE_4), accL);
                accH = hi.fma(sc.rearrange(LANE_5), accH);
                p = (IntVector) ByteVector.fromMemorySegment(B, w, q + 96, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                n = (IntVector) ByteVector.fromMemorySegment(B, w, q + 112, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                lo = ((FloatVector) p.and(0xF).convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xc + 192));
                lo = ((FloatVector) n.and(0xF).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 208), lo);
                hi = ((FloatVector) p.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .mul(FloatVector.fromArray(F, x, xc + 224));
                hi = ((FloatVector) n.lanewise(VectorOperators.LSHR, 4).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xc + 240), hi);
                accL = lo.fma(sc.rearrange(LANE_6), accL);
                accH = hi.fma(sc.rearrange(LANE_7), accH);
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

    // ---- The lane layout ([Matrix.Layout#LANES]): super-blocks rearranged at load time for the integer kernel ----

    /// Bytes of a super-block in the lane layout.
    static final int LANE_BYTES = 152;

    /// Rewrites the `cols / 256` super-blocks of one row from GGUF bytes at `src + srcOffset` to the lane layout at
    /// `dst + dstOffset`:
    ///
    /// ```
    /// byte  0      4       8                                  24                                         152
    ///       +------+-------+----------------------------------+-------------------------------------------+
    ///       |  d   | −dmin | sc0 m0 sc1 m1 ... sc7 m7 (bytes) |  quants: 2 × 64 bytes, 4-bit              |
    ///       +------+-------+----------------------------------+-------------------------------------------+
    ///        f32    f32     the 6-bit scales and minimums, decoded
    /// quant byte 64h + 8g + j (h ∈ 0..1, group g ∈ 0..7, j ∈ 0..7): low nibble = weight 32g + 16h + j,
    ///                                                               high nibble = weight 32g + 16h + 8 + j
    /// ```
    ///
    /// Read as 16 int lanes, each 64-byte half then holds group `g` in lanes `2g` and `2g + 1`, in both halves and
    /// for all four nibble extractions, so the kernel sums every product of a super-block before one shift and
    /// scales the groups with one multiply, lane by lane, against the decoded scales; `d` and `−dmin` read as one
    /// 64-bit broadcast give the alternating lanes the scales and minimums need. 8 bytes more than GGUF's 144 (+5.6%).
    static void repackRow(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int cols) {
        int nb = cols / BLOCK;
        byte[] in = new byte[BYTES];
        byte[] out = new byte[LANE_BYTES];
        for (int i = 0; i < nb; i++) {
            long s = srcOffset + (long) i * BYTES;
            // the block's fields through the mapped segment, its quants through one bulk copy (heap segments here
            // would make the segment accesses the kernels share polymorphic, and C2 then boxed their vectors)
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, s, in, 0, BYTES);
            putFloat(out, 0, Float.float16ToFloat(src.get(SHORT_LE, s)));
            putFloat(out, 4, -Float.float16ToFloat(src.get(SHORT_LE, s + 2)));
            for (int g = 0; g < 8; g++) {
                int sm = scaleMin(src, s + 4, g);
                out[8 + 2 * g] = (byte) (sm & 0xFF);
                out[9 + 2 * g] = (byte) (sm >>> 8);
            }
            java.util.Arrays.fill(out, 24, LANE_BYTES, (byte) 0);
            // GGUF byte 32c + l holds weights 64c + l (low nibble) and 64c + 32 + l (high)
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    int b = in[16 + 32 * c + l] & 0xFF;
                    place(out, 64 * c + l, b & 0xF);
                    place(out, 64 * c + 32 + l, b >>> 4);
                }
            }
            MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, dstOffset + (long) i * LANE_BYTES, LANE_BYTES);
        }
    }

    private static void putFloat(byte[] out, int at, float v) {
        int bits = Float.floatToRawIntBits(v);
        for (int k = 0; k < 4; k++) {
            out[at + k] = (byte) (bits >>> 8 * k);
        }
    }

    /// Puts quant `q` of weight `k` (0..255) into its nibble of the lane layout's quants (from byte 24 of `out`):
    /// group `g = k/32`, `j = k%32`: byte `64·(j/16) + 8g + j%8`, the high nibble when `j/8` is odd ([#laneWeight]
    /// inverted).
    private static void place(byte[] out, int k, int q) {
        int g = k >>> 5;
        int j = k & 31;
        int at = 24 + 64 * (j >>> 4) + 8 * g + (j & 7);
        out[at] |= (byte) (((j >>> 3) & 1) == 0 ? q : q << 4);
    }

    /// The weight (0..255) of the low (`high = 0`) or high nibble of lane-layout quant byte `p` (0..127): what
    /// [Input] pairs activations by.
    static int laneWeight(int p, int high) {
        int h = p >>> 6;
        int g = (p >>> 3) & 7;
        int j = p & 7;
        return 32 * g + 16 * h + 8 * high + j;
    }

    /// [#dequantize] for the lane layout: the same values bit for bit (`d·scale·q − dmin·min`, each product rounded
    /// as there).
    static void dequantizeLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(Simd.FLOAT_LE, t);
            float dmin = -w.get(Simd.FLOAT_LE, t + 4);
            for (int p = 0; p < 128; p++) {
                int b = w.get(ValueLayout.JAVA_BYTE, t + 24 + p) & 0xFF;
                for (int high = 0; high < 2; high++) {
                    int k = laneWeight(p, high);
                    int g = k >>> 5;
                    float sc = d * (w.get(ValueLayout.JAVA_BYTE, t + 8 + 2 * g) & 0xFF);
                    float mn = dmin * (w.get(ValueLayout.JAVA_BYTE, t + 9 + 2 * g) & 0xFF);
                    out[outOffset + i * BLOCK + k] = sc * (high == 0 ? b & 0xF : b >>> 4) - mn;
                }
            }
        }
    }

    /// [#dequantizeLanes] with vectors, bit for bit the same values (the panels of [MatMul]). 512-bit vectors only,
    /// as the layout: 16 quant bytes widen to groups `g` (lanes 0..7) and `g + 1` (lanes 8..15), each lane's byte
    /// holding two of a group's 16 consecutive weights; a rearrangement and a multiply by 16 or 1 line up the low
    /// nibbles of one group and then its high nibbles for one shift and mask. (Only the species the other kernels
    /// use: a narrower one here made call sites shared with them polymorphic, and their vectors were boxed.)
    static void unpackLanes(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long t = offset + (long) i * LANE_BYTES;
            float d = w.get(Simd.FLOAT_LE, t);
            float dmin = -w.get(Simd.FLOAT_LE, t + 4);
            for (int g = 0; g < 8; g += 2) {
                FloatVector sc0 = FloatVector.broadcast(F, d * (w.get(ValueLayout.JAVA_BYTE, t + 8 + 2 * g) & 0xFF));
                FloatVector mn0 = FloatVector.broadcast(F, dmin * (w.get(ValueLayout.JAVA_BYTE, t + 9 + 2 * g) & 0xFF));
                FloatVector sc1 = FloatVector.broadcast(F, d * (w.get(ValueLayout.JAVA_BYTE, t + 10 + 2 * g) & 0xFF));
                FloatVector mn1 = FloatVector.broadcast(F,
                        dmin * (w.get(ValueLayout.JAVA_BYTE, t + 11 + 2 * g) & 0xFF));
                for (int h = 0; h < 2; h++) {
                    IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, t + 24 + 64 * h + 8 * g, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector a = q.rearrange(FIRST_GROUP).mul(NIBBLE_ALIGN).lanewise(VectorOperators.LSHR, 4).and(0xF);
                    IntVector c = q.rearrange(SECOND_GROUP).mul(NIBBLE_ALIGN).lanewise(VectorOperators.LSHR, 4)
                            .and(0xF);
                    int y = outOffset + i * BLOCK + 32 * g + 16 * h;
                    ((FloatVector) a.convertShape(VectorOperators.I2F, F, 0)).mul(sc0).sub(mn0).intoArray(out, y);
                    ((FloatVector) c.convertShape(VectorOperators.I2F, F, 0)).mul(sc1).sub(mn1).intoArray(out, y + 32);
                }
            }
        }
    }

    /// Lanes 0..7, twice (lanes 8..15, twice).
    private static final VectorShuffle<Integer> FIRST_GROUP = L != 16 ? null : VectorShuffle.fromOp(I, i -> i & 7);
    private static final VectorShuffle<Integer> SECOND_GROUP = L != 16 ? null
            : VectorShuffle.fromOp(I, i -> 8 + (i & 7));
    /// 16 in lanes 0..7, 1 in lanes 8..15: after a shift right by 4, the low nibble, then the high one.
    private static final IntVector NIBBLE_ALIGN = L != 16 ? null
            : IntVector.broadcast(I, 16).sub(IOTA.lanewise(VectorOperators.LSHR, 3).and(1).mul(15));

    /// `out[outOffset + r] = row r · x` for rows `[from, to)` of a lane-layout matrix whose rows are `rowBytes`
    /// apart, in integers against `x` quantized to 8 bits ([Input]), 512-bit vectors only:
    ///
    /// `y = Σ_sb dx · (d · Σ_g scale_g · Σ_{i∈g} q_i·xq_i − dmin · Σ_g min_g · Σ_{i∈g} xq_i)`.
    ///
    /// Per super-block, two 64-byte loads hold its 256 nibbles; four mask-and-shift extractions of each put two
    /// weights in every int lane (`a0 + a1·2¹⁶`), and one multiply with [Input]'s packed activation pairs per
    /// extraction yields two products per lane. All eight are summed, then one arithmetic shift recovers the sums
    /// (16 products of at most 15·127 per lane: within the ±2¹⁵ the pairing allows). Lanes `2g`, `2g + 1` are
    /// group `g`: adding the neighbouring lane leaves each group's sum in the even lanes, the odd lanes take the
    /// groups' sums of `xq`, and one multiply with the stored `sc0 m0 sc1 m1 ..` gives both terms; they are
    /// converted once and scaled by `(d, −dmin)·dx` in float. One row per pass (a multi-row body exceeds C2's
    /// inlining budget, and then boxes vectors: the allocation test catches it).
    ///
    /// `(d, −dmin)` reach their lanes as one broadcast 64-bit lane; before, two float broadcasts were multiplied by
    /// 1/0 masks and added: 30.6 → 27.8 cycles per super-block from the caches, 11.5 → 12.9 GB/s from DRAM (one
    /// thread, thread CPU time, `Q4KLab` in the bench module, same run). Measured and not kept: two and four rows
    /// per pass in a method of their own (more DRAM streams, which made `Q4_0` twice as fast) gave 9.4 and 11.9 GB/s
    /// from DRAM: this loop is bound by its arithmetic (about 2 vector integer operations per cycle), not by cache
    /// lines in flight; the top nibble shifted as 16-bit lanes (no mask) was no faster (32.6 cycles).
    static void matVecLanes(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                            float[] out, int outOffset, int from, int to, Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r++) {
            long o = r * rowBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int i = 0; i < nb; i++) {
                long b = o + (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                IntVector u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                // a balanced sum: the chain from the loads to the accumulator is what bounds this loop
                IntVector s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                // even lanes: the group's sum; odd lanes: the group's sum of xq (masking and adding: a blend with
                // a constant mask measured several times slower here)
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(IntVector.fromArray(I, bs, 16 * i));
                IntVector sm = (IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                float dxi = dx[i];
                // (d, −dmin) as one 64-bit lane, broadcast: d in the even float lanes, −dmin in the odd ones
                FloatVector dm = ((FloatVector) LongVector.broadcast(SCALE_PAIRS, w.get(LONG_LE, b))
                        .reinterpretAsFloats()).mul(dxi);
                acc = ((FloatVector) s.mul(sm).convertShape(VectorOperators.I2F, F, 0)).fma(dm, acc);
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

    /// The low nibble of bytes 0 and 2 of each int lane.
    private static final int NIBBLES = 0x000F000F;
    /// Lane `i ↔ i ^ 1`.
    private static final VectorShuffle<Integer> NEIGHBOUR = L != 16 ? null : VectorShuffle.fromOp(I, i -> i ^ 1);
    /// −1 in the even lanes, 0 in the odd ones.
    private static final IntVector EVEN_LANES = L != 16 ? null : IOTA.and(1).sub(1);
    /// 64-bit lanes of the float shape: one holds a super-block's `d` and `−dmin`.
    private static final VectorSpecies<Long> SCALE_PAIRS = L != 16 ? null
            : VectorSpecies.of(long.class, F.vectorShape());
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
}
