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
import jdk.incubator.vector.VectorShuffle;

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

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int b = 0; b < nb; b++) {
            long o = offset + (long) b * BYTES;
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, o)));
            ByteVector qs = ByteVector.fromMemorySegment(B, w, o + 2, LE);
            int y = outOffset + b * BLOCK;
            IntVector q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            ((FloatVector) q.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(d).intoArray(out, y);
            ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(d)
                    .intoArray(out, y + 16);
            for (int p = 1; p < BYTE_PARTS; p++) {
                q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                ((FloatVector) q.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(d).intoArray(out, y + p * L);
                ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(d)
                        .intoArray(out, y + 16 + p * L);
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
            FloatVector s = ((FloatVector) q.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0))
                    .mul(FloatVector.fromArray(F, x, xb));
            s = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                    .fma(FloatVector.fromArray(F, x, xb + BLOCK / 2), s);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                q = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                s = ((FloatVector) q.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromArray(F, x, xb + p * L), s);
                s = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
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

    /// `out[outOffset + r] = dot(row r, x)` for rows `[from, to)`, four rows per pass.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to, Input in) {
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
                FloatVector s0 = ((FloatVector) q0.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                FloatVector s1 = ((FloatVector) q1.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                FloatVector s2 = ((FloatVector) q2.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                FloatVector s3 = ((FloatVector) q3.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s0);
                s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s1);
                s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s2);
                s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s3);
                for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                    xlo = FloatVector.fromArray(F, x, xb + p * L);
                    xhi = FloatVector.fromArray(F, x, xb + BLOCK / 2 + p * L);
                    q0 = (IntVector) b0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q1 = (IntVector) b1.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q2 = (IntVector) b2.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q3 = (IntVector) b3.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    s0 = ((FloatVector) q0.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s0);
                    s1 = ((FloatVector) q1.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s1);
                    s2 = ((FloatVector) q2.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s2);
                    s3 = ((FloatVector) q3.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s3);
                    s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s0);
                    s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s1);
                    s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s2);
                    s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
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

    // ---- the four-row layout of Repack: per block of a group, 4 f32 scales then 4 × 16 bytes of nibbles ----

    /// Bytes of one block of a four-row group.
    static final int GROUP_BYTES = 16 + 4 * 16;

    /// [#matVec] over the [Matrix.Layout#ROWS4] layout (`from`, `to` multiples of 4): the same operations in the same
    /// order, so bit for bit the same results, but each thread reads one sequential stream and each scale is one
    /// f32 load.
    static void matVec4(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                        float[] out, int outOffset, int from, int to, Input in) {
        if (L == 16) {
            matVec4Int(w, cols, out, outOffset, from, to, in);
            return;
        }
        int nb = cols / BLOCK;
        long groupBytes = (long) nb * GROUP_BYTES;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * GROUP_BYTES;
                int xb = xOffset + b * BLOCK;
                FloatVector xlo = FloatVector.fromArray(F, x, xb);
                FloatVector xhi = FloatVector.fromArray(F, x, xb + BLOCK / 2);
                ByteVector b0 = ByteVector.fromMemorySegment(B, w, o + 16, LE);
                ByteVector b1 = ByteVector.fromMemorySegment(B, w, o + 32, LE);
                ByteVector b2 = ByteVector.fromMemorySegment(B, w, o + 48, LE);
                ByteVector b3 = ByteVector.fromMemorySegment(B, w, o + 64, LE);
                IntVector q0 = (IntVector) b0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector q1 = (IntVector) b1.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector q2 = (IntVector) b2.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector q3 = (IntVector) b3.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector s0 = ((FloatVector) q0.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                FloatVector s1 = ((FloatVector) q1.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                FloatVector s2 = ((FloatVector) q2.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                FloatVector s3 = ((FloatVector) q3.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(xlo);
                s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s0);
                s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s1);
                s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s2);
                s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                        .fma(xhi, s3);
                for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of the 16 bytes (see Simd)
                    xlo = FloatVector.fromArray(F, x, xb + p * L);
                    xhi = FloatVector.fromArray(F, x, xb + BLOCK / 2 + p * L);
                    q0 = (IntVector) b0.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q1 = (IntVector) b1.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q2 = (IntVector) b2.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    q3 = (IntVector) b3.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    s0 = ((FloatVector) q0.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s0);
                    s1 = ((FloatVector) q1.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s1);
                    s2 = ((FloatVector) q2.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s2);
                    s3 = ((FloatVector) q3.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).fma(xlo, s3);
                    s0 = ((FloatVector) q0.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s0);
                    s1 = ((FloatVector) q1.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s1);
                    s2 = ((FloatVector) q2.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s2);
                    s3 = ((FloatVector) q3.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0))
                            .fma(xhi, s3);
                }
                acc0 = s0.fma(FloatVector.broadcast(F, w.get(FLOAT_LE, o)), acc0);
                acc1 = s1.fma(FloatVector.broadcast(F, w.get(FLOAT_LE, o + 4)), acc1);
                acc2 = s2.fma(FloatVector.broadcast(F, w.get(FLOAT_LE, o + 8)), acc2);
                acc3 = s3.fma(FloatVector.broadcast(F, w.get(FLOAT_LE, o + 12)), acc3);
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
    }

    /// [#matVec4] with 512-bit vectors, in integers against `x` quantized to 8 bits per 32 values ([Input]):
    /// `y_r = Σ_b d_r,b·dx_b · (Σ_j q_j·xq_j − 8·Σ_j xq_j)`. A block's quants of the group's four rows are one
    /// 64-byte load, row `k` in int lanes `4k .. 4k + 3`; four mask-and-shift extractions put two nibbles in each
    /// lane (`a0 + a1·2¹⁶`), one multiply per extraction with [Input]'s activation pairs gives two products per lane,
    /// and one arithmetic shift recovers the sum of all eight (the bias also subtracts the offset's share). The
    /// four f32 scales spread over their rows' lanes with one rearrangement; the sums are converted and scaled once
    /// per block. At the end, a butterfly within each row's four lanes, and the four sums stored at once.
    ///
    /// **Four groups per pass.** The loop runs at ~11 cycles per block of a group (80 bytes) when its weights are
    /// in the caches, fast enough for 25 GB/s on one core, yet streaming one group after the other from DRAM it
    /// read only 9 GB/s: each block is ~25 instructions, so the out-of-order window reaches only ~20 blocks (1.5 KiB)
    /// ahead of the oldest miss, too few lines in flight to cover DRAM latency, and the hardware prefetcher did not
    /// make up for it on one stream. Four groups at a time (16 rows, the thread split's grain) read four streams,
    /// `groupBytes` apart, and reached 17.8 GB/s on one thread (2048x8192; repacked bytes, thread CPU time, `Q40Lab`
    /// in the bench module). Eight groups reached 20.8 GB/s, but C1 gives up on a method that large ("out of
    /// virtual registers"), and without a profiled tier C2 never compiled it in a short run: it stayed in
    /// unoptimised code that boxed every vector (78 MB per 100 calls in `RepackTest`). Rows of a chunk beyond its
    /// multiple of 16 take the one-group loop. Per group the operations and their order are the same in both
    /// loops, so results do not depend on the thread split.
    ///
    /// Variants measured in the same runs (one thread; in cache: 256x2048; DRAM: copies of 2048x8192 cycled):
    /// one group 11.3 cycles/block in cache, 9.2 GB/s from DRAM; two groups 11.6, 13.2 GB/s; four groups 10.8,
    /// 17.8 GB/s; eight groups 10.7, 20.8 GB/s; 16-bit lanes (`ShortVector.mul`, `vpmullw`, one nibble per lane and
    /// a widening add of short pairs) 13.7 in cache, 9.0 GB/s (the widening costs more than `vpmulld` saves: on this
    /// Zen 5 replacing the four multiplies by adds changed nothing, 11.4); a scalar touch 512..4096 bytes ahead
    /// (software prefetch: Java has no prefetch instruction, and a load occupies the window until it retires)
    /// 12.8..13.4 in cache, no gain from DRAM; the activation pairs read from a 64-byte-aligned native segment
    /// rather than the `int[]` (whose vectors may straddle cache lines) 10.7 and 17.6 GB/s, no gain. Without the
    /// per-block float work (an ablation) 8.6 cycles: the conversion and scaling are a quarter of the loop, and the
    /// rest runs at about two vector integer operations per cycle.
    static void matVec4Int(MemorySegment w, int cols, float[] out, int outOffset, int from, int to, Input in) {
        int whole = from + (to - from) / 16 * 16;
        if (whole > from) {
            matVec16Int(w, cols, out, outOffset, from, whole, in);
        }
        if (whole < to) {
            matVec4IntOne(w, cols, out, outOffset, whole, to, in);
        }
    }

    /// [#matVec4Int] four groups per pass (`to − from` a multiple of 16), in a method of its own so that each loop
    /// is compiled on its own budget.
    private static void matVec16Int(MemorySegment w, int cols, float[] out, int outOffset, int from, int to,
                                    Input in) {
        int nb = cols / BLOCK;
        long groupBytes = (long) nb * GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 16) {
            long g0 = (r >>> 2) * groupBytes;
            long g1 = g0 + groupBytes;
            long g2 = g1 + groupBytes;
            long g3 = g2 + groupBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int b = 0; b < nb; b++) {
                long o = (long) b * GROUP_BYTES;
                int p = 64 * b;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                int bb = bias[b];
                float dxb = dx[b];
                IntVector v;
                IntVector s;
                // the same steps for each group, written out (see Simd: no helper taking vectors)
                v = IntVector.fromMemorySegment(I, w, g0 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g0 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc0);
                v = IntVector.fromMemorySegment(I, w, g1 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g1 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc1);
                v = IntVector.fromMemorySegment(I, w, g2 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g2 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc2);
                v = IntVector.fromMemorySegment(I, w, g3 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g3 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc3);
            }
            // butterfly within each row's four lanes (strides 2, 1), then lanes 0, 4, 8, 12 to lanes 0..3
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_EIGHTH));
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_SIXTEENTH));
            acc0.rearrange(ROW_SUMS).intoArray(out, outOffset + r + 0, Simd.FIRST4);
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_EIGHTH));
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_SIXTEENTH));
            acc1.rearrange(ROW_SUMS).intoArray(out, outOffset + r + 4, Simd.FIRST4);
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
            acc2.rearrange(ROW_SUMS).intoArray(out, outOffset + r + 8, Simd.FIRST4);
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_EIGHTH));
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_SIXTEENTH));
            acc3.rearrange(ROW_SUMS).intoArray(out, outOffset + r + 12, Simd.FIRST4);
        }
    }

    /// [#matVec4Int] one group at a time: the rows a chunk has beyond its multiple of 16.
    private static void matVec4IntOne(MemorySegment w, int cols, float[] out, int outOffset, int from, int to,
                                      Input in) {
        int nb = cols / BLOCK;
        long groupBytes = (long) nb * GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * GROUP_BYTES;
                int p = 64 * b;
                IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
                IntVector s = v.and(NIBBLES).mul(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                        .mul(IntVector.fromArray(I, xq, p + 48)))
                                .add(bias[b]))
                        .lanewise(VectorOperators.ASHR, 16);
                FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dx[b]);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
            }
            acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
            acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
            acc.rearrange(ROW_SUMS).intoArray(out, outOffset + r, Simd.FIRST4);
        }
    }

    /// The low nibbles of bytes 0 and 2 of each int lane.
    private static final int NIBBLES = 0x000F000F;
    /// Lane `i` takes float `i / 4`: the scale of row `i / 4` of the group.
    private static final VectorShuffle<Float> ROW_SCALES = L != 16 ? null : VectorShuffle.fromOp(F, i -> i / 4);
    /// Lane `k < 4` takes lane `4k`.
    private static final VectorShuffle<Float> ROW_SUMS = L != 16 ? null : VectorShuffle.fromOp(F, i -> 4 * (i & 3));

    /// Weights `[col, col + n)` of `row` of a [Matrix.Layout#ROWS4] matrix of `cols` columns (whole blocks) into
    /// `out[outOffset ..]`: bit for bit [#dequantize]'s values. `vector` picks the vector path (the panels of
    /// [MatMul]) over the scalar reference.
    static void dequantize4(MemorySegment w, int cols, int row, int col, int n, float[] out, int outOffset,
                            boolean vector) {
        long groupBytes = (long) (cols / BLOCK) * GROUP_BYTES;
        long g = (row >>> 2) * groupBytes;
        int j = row & 3;
        for (int b = col / BLOCK, y = outOffset; y < outOffset + n; b++, y += BLOCK) {
            long o = g + (long) b * GROUP_BYTES;
            float d = w.get(FLOAT_LE, o + 4L * j);
            long q = o + 16 + 16L * j;
            if (vector) {
                FloatVector vd = FloatVector.broadcast(F, d);
                ByteVector qs = ByteVector.fromMemorySegment(B, w, q, LE);
                for (int p = 0; p < BYTE_PARTS; p++) {
                    IntVector v = (IntVector) qs.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, p);
                    ((FloatVector) v.and(0x0F).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(vd).intoArray(out, y + p * L);
                    ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).sub(8).convertShape(VectorOperators.I2F, F, 0)).mul(vd)
                            .intoArray(out, y + 16 + p * L);
                }
            } else {
                for (int k = 0; k < BLOCK / 2; k++) {
                    int qs = w.get(ValueLayout.JAVA_BYTE, q + k) & 0xFF;
                    out[y + k] = ((qs & 0x0F) - 8) * d;
                    out[y + k + BLOCK / 2] = ((qs >>> 4) - 8) * d;
                }
            }
        }
    }

    /// Writes rows `4g .. 4g+3` of the GGUF-layout `src` as group `g` of the four-row layout in `dst`.
    static void repackGroup(MemorySegment src, long rowBytes, int cols, int g, MemorySegment dst) {
        int nb = cols / BLOCK;
        long base = (long) g * nb * GROUP_BYTES;
        for (int j = 0; j < 4; j++) {
            long row = (4L * g + j) * rowBytes;
            for (int b = 0; b < nb; b++) {
                long s = row + (long) b * BYTES;
                long o = base + (long) b * GROUP_BYTES;
                dst.set(FLOAT_LE, o + 4L * j, Float.float16ToFloat(src.get(SHORT_LE, s)));
                MemorySegment.copy(src, s + 2, dst, o + 16 + 16L * j, 16);
            }
        }
    }
}
