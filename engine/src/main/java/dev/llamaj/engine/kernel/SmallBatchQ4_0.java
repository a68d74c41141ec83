package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;

/// The small-batch product ([SmallBatch]) of `Q4_0` weights with 512-bit vectors, in integers: the weights are
/// decoded in registers, once per block for all the tokens of a pass, and multiplied with each token's activations
/// rounded to 8 bits per 32 values (as ggml's `block_q8_0`, [Input#quantizeBlock]), which is what the
/// matrix-vector kernel of this machine does too ([Q4_0#matVec4Int]).
///
/// **Why.** Dequantizing into a float panel cost ~2.7 matrix-vector products before the first multiply (JMH,
/// `Q4_0` 2048×8192, 2 threads): a nibble becomes a float with three or four vector operations, then is stored and
/// loaded again per token. Here a block of the four rows of a [Matrix.Layout#ROWS4] group is one 64-byte load, four
/// mask-and-shift extractions give its 128 nibbles (two per int lane), and each token then costs four multiplies
/// with packed activation pairs, the adds, one shift, one conversion and one FMA per block of 4 × 32 weights.
///
/// **Arithmetic** (the same bits in every execution mode, on any thread count, in any layout, whatever the other
/// tokens: see [SmallBatch]). Int lane `i` (0..15) serves row `i / 4` of the group and bytes `4·(i % 4) .. + 3` of
/// its 16 quant bytes: their low nibbles are weights `4·(i % 4) + j` and their high nibbles weights `16 + 4·(i % 4)
/// + j`. Per block `b`, the lane's integer `s = Σ nibble·q − 2·Σ_block q` is exact (the four lanes of a row together
/// subtract `8·Σq`, `Q4_0`'s offset); the packing of two products per 32-bit multiply is [Input]'s (`a0 + a1·2¹⁶`
/// times `b1 + b0·2¹⁶`, bias `2¹⁵`, arithmetic shift by 16), here with at most 8 products per shift. Then
/// `acc_i = fma(float(s), d_row·dx_b, acc_i)` over the blocks in order, and the row's result is `(acc_0 + acc_2) +
/// (acc_1 + acc_3)` over its four lanes. [#row] computes exactly that in scalar code: the partial last group of a
/// GGUF-layout matrix uses it, and the tests compare it with the vector kernel bit for bit.
final class SmallBatchQ4_0 {
    /// Weights per block.
    static final int BLOCK = Q4_0.BLOCK;
    /// Packed activation pairs per block and token: four extractions × 16 lanes.
    static final int PAIRS = 64;
    /// Tokens per pass of the middle microkernel ([#pass4]; [#pass8] takes twice as many).
    static final int TOKENS = 4;

    private SmallBatchQ4_0() {
    }

    /// Whether `format` has this kernel: `Q4_0` in either layout, with 512-bit vectors.
    static boolean applies(WeightFormat format) {
        return L == 16 && format.type() == dev.llamaj.gguf.GGMLType.Q4_0;
    }

    /// Activations of a product: for each token, per block, the scale, the 8-bit integers, the packed pairs and the
    /// bias. Reused from product to product (grown as needed).
    static final class Activations {
        float[] scale = new float[0];
        int[] q = new int[0];
        int[] pairs = new int[0];
        int[] bias = new int[0];
        int blocks;

        /// Quantizes `tokens` token-major rows of `cols` floats from `xs`.
        void prepare(float[] xs, int cols, int tokens) {
            int nb = cols / BLOCK;
            blocks = nb;
            if (q.length < tokens * cols) {
                q = new int[tokens * cols];
                scale = new float[tokens * nb];
                pairs = new int[tokens * nb * PAIRS];
                bias = new int[tokens * nb];
            }
            for (int tb = 0; tb < tokens * nb; tb++) { // token t's blocks are tb = t·nb ..: xs and q follow suit
                int at = tb * BLOCK;
                scale[tb] = Input.quantizeBlock(xs, at, q, at, BLOCK);
                int sum = 0;
                for (int j = 0; j < BLOCK; j++) {
                    sum += q[at + j];
                }
                bias[tb] = Input.PAIR_BIAS - 2 * sum * 65536;
                int p = tb * PAIRS;
                for (int e = 0; e < 4; e++) {
                    int high = 16 * (e >>> 1); // extractions 2, 3: high nibbles, weights 16..31
                    int k0 = e & 1;            // extractions 0, 2: bytes 0 and 2 of the lane; 1, 3: bytes 1 and 3
                    for (int i = 0; i < 16; i++) {
                        int w0 = at + 4 * (i & 3) + k0 + high;
                        pairs[p + 16 * e + i] = q[w0 + 2] + (q[w0] << 16);
                    }
                }
            }
        }
    }

    /// The nibbles of bytes 0 and 2 of each int lane.
    private static final int NIBBLES = 0x000F000F;
    /// Lane `i` takes float `i / 4`: the scale of row `i / 4` of the group.
    private static final VectorShuffle<Float> ROW_SCALES = L != 16 ? null : VectorShuffle.fromOp(F, i -> i / 4);
    /// Bytes of a block of a four-row group: four f32 scales, then the four rows' 16 quant bytes.
    private static final int GROUP_BYTES = Q4_0.GROUP_BYTES;

    /// Rows `r0 .. r0 + 3` for tokens `t0 ..`, eight at a time, then four, then one at a time, the group's blocks from byte `g`
    /// of `w` (the four-row layout); the results go to the tiled `out`.
    static void group(MemorySegment w, long g, Activations a, int tokens, float[] out, int outOffset, int rows,
                      int r0, float[] sums) {
        int t = 0;
        for (; t + 8 <= tokens; t += 8) {
            pass8(w, g, a, t, sums);
            store(sums, 8, out, outOffset, rows, r0, t);
        }
        for (; t + TOKENS <= tokens; t += TOKENS) {
            pass4(w, g, a, t, sums);
            store(sums, TOKENS, out, outOffset, rows, r0, t);
        }
        for (; t < tokens; t++) {
            pass1(w, g, a, t, sums);
            store(sums, 1, out, outOffset, rows, r0, t);
        }
    }

    /// Eight tokens from `t0`: [#pass4] with twice the tokens per decoded block (the decoding is a fifth of a
    /// token's work). The tokens' row sums go to `sums[16·k + 4·row]`.
    private static void pass8(MemorySegment w, long g, Activations a, int t0, float[] sums) {
        int nb = a.blocks;
        int[] xq = a.pairs;
        int[] bias = a.bias;
        float[] dx = a.scale;
        int s0 = t0 * nb;
        int s1 = s0 + nb;
        int s2 = s1 + nb;
        int s3 = s2 + nb;
        int s4 = s3 + nb;
        int s5 = s4 + nb;
        int s6 = s5 + nb;
        int s7 = s6 + nb;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = acc0;
        FloatVector acc2 = acc0;
        FloatVector acc3 = acc0;
        FloatVector acc4 = acc0;
        FloatVector acc5 = acc0;
        FloatVector acc6 = acc0;
        FloatVector acc7 = acc0;
        for (int b = 0; b < nb; b++) {
            long o = g + (long) b * GROUP_BYTES;
            IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
            IntVector n0 = v.and(NIBBLES);
            IntVector n1 = v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES);
            IntVector n2 = v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES);
            IntVector n3 = v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES);
            FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES);
            int p = (s0 + b) * PAIRS;
            IntVector s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s0 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s0 + b]), acc0);
            p = (s1 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s1 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s1 + b]), acc1);
            p = (s2 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s2 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s2 + b]), acc2);
            p = (s3 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s3 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s3 + b]), acc3);
            p = (s4 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s4 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc4 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s4 + b]), acc4);
            p = (s5 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s5 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc5 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s5 + b]), acc5);
            p = (s6 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s6 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc6 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s6 + b]), acc6);
            p = (s7 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s7 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc7 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s7 + b]), acc7);
        }
        // butterflies within each row's four lanes (see pass4)
        acc0 = acc0.add(acc0.rearrange(Simd.SWAP_EIGHTH));
        acc0 = acc0.add(acc0.rearrange(Simd.SWAP_SIXTEENTH));
        acc0.intoArray(sums, 0);
        acc1 = acc1.add(acc1.rearrange(Simd.SWAP_EIGHTH));
        acc1 = acc1.add(acc1.rearrange(Simd.SWAP_SIXTEENTH));
        acc1.intoArray(sums, 16);
        acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
        acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
        acc2.intoArray(sums, 32);
        acc3 = acc3.add(acc3.rearrange(Simd.SWAP_EIGHTH));
        acc3 = acc3.add(acc3.rearrange(Simd.SWAP_SIXTEENTH));
        acc3.intoArray(sums, 48);
        acc4 = acc4.add(acc4.rearrange(Simd.SWAP_EIGHTH));
        acc4 = acc4.add(acc4.rearrange(Simd.SWAP_SIXTEENTH));
        acc4.intoArray(sums, 64);
        acc5 = acc5.add(acc5.rearrange(Simd.SWAP_EIGHTH));
        acc5 = acc5.add(acc5.rearrange(Simd.SWAP_SIXTEENTH));
        acc5.intoArray(sums, 80);
        acc6 = acc6.add(acc6.rearrange(Simd.SWAP_EIGHTH));
        acc6 = acc6.add(acc6.rearrange(Simd.SWAP_SIXTEENTH));
        acc6.intoArray(sums, 96);
        acc7 = acc7.add(acc7.rearrange(Simd.SWAP_EIGHTH));
        acc7 = acc7.add(acc7.rearrange(Simd.SWAP_SIXTEENTH));
        acc7.intoArray(sums, 112);
    }

    /// Four tokens from `t0`: per block one load and four extractions, then per token four multiplies. The tokens'
    /// row sums go to `sums[16·k + 4·row]`.
    private static void pass4(MemorySegment w, long g, Activations a, int t0, float[] sums) {
        int nb = a.blocks;
        int[] xq = a.pairs;
        int[] bias = a.bias;
        float[] dx = a.scale;
        int s0 = t0 * nb;
        int s1 = s0 + nb;
        int s2 = s1 + nb;
        int s3 = s2 + nb;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = acc0;
        FloatVector acc2 = acc0;
        FloatVector acc3 = acc0;
        for (int b = 0; b < nb; b++) {
            long o = g + (long) b * GROUP_BYTES;
            IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
            IntVector n0 = v.and(NIBBLES);
            IntVector n1 = v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES);
            IntVector n2 = v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES);
            IntVector n3 = v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES);
            FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES);
            int p = (s0 + b) * PAIRS;
            IntVector s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s0 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s0 + b]), acc0);
            p = (s1 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s1 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s1 + b]), acc1);
            p = (s2 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s2 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s2 + b]), acc2);
            p = (s3 + b) * PAIRS;
            s = n0.mul(IntVector.fromArray(I, xq, p)).add(n1.mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(n2.mul(IntVector.fromArray(I, xq, p + 32)).add(n3.mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s3 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d.mul(dx[s3 + b]), acc3);
        }
        // butterfly within each row's four lanes (strides 2, 1): lane 4k then holds row k's sum. Written out, not a
        // helper taking a vector (see Simd).
        acc0 = acc0.add(acc0.rearrange(Simd.SWAP_EIGHTH));
        acc0 = acc0.add(acc0.rearrange(Simd.SWAP_SIXTEENTH));
        acc0.intoArray(sums, 0);
        acc1 = acc1.add(acc1.rearrange(Simd.SWAP_EIGHTH));
        acc1 = acc1.add(acc1.rearrange(Simd.SWAP_SIXTEENTH));
        acc1.intoArray(sums, 16);
        acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
        acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
        acc2.intoArray(sums, 32);
        acc3 = acc3.add(acc3.rearrange(Simd.SWAP_EIGHTH));
        acc3 = acc3.add(acc3.rearrange(Simd.SWAP_SIXTEENTH));
        acc3.intoArray(sums, 48);
    }

    /// One token: [#pass4]'s arithmetic for a single token (so the same bits).
    private static void pass1(MemorySegment w, long g, Activations a, int t, float[] sums) {
        int nb = a.blocks;
        int[] xq = a.pairs;
        int[] bias = a.bias;
        float[] dx = a.scale;
        int s0 = t * nb;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long o = g + (long) b * GROUP_BYTES;
            IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
            int p = (s0 + b) * PAIRS;
            IntVector s = v.and(NIBBLES).mul(IntVector.fromArray(I, xq, p))
                    .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 16)))
                    .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 32))
                            .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                    .mul(IntVector.fromArray(I, xq, p + 48)))
                            .add(bias[s0 + b]))
                    .lanewise(VectorOperators.ASHR, 16);
            FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dx[s0 + b]);
            acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
        }
        acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
        acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
        acc.intoArray(sums, 0);
    }

    /// Stores the row sums of `count` tokens from `t0` ([#pass4]'s `sums`) into the tiled `out`.
    private static void store(float[] sums, int count, float[] out, int outOffset, int rows, int r0, int t0) {
        for (int k = 0; k < count; k++) {
            for (int r = 0; r < 4; r++) {
                out[outOffset + Kernels.tiledIndex(rows, t0 + k, r0 + r)] = sums[16 * k + 4 * r];
            }
        }
    }

    /// One row of a GGUF-layout matrix (from byte `rowOffset`) for token `t`: the kernel's arithmetic in scalar code,
    /// lane by lane (see the class comment).
    static float row(MemorySegment w, long rowOffset, int cols, Activations a, int t) {
        int nb = cols / BLOCK;
        float[] acc = new float[4];
        for (int b = 0; b < nb; b++) {
            long o = rowOffset + (long) b * Q4_0.BYTES;
            int tb = t * nb + b;
            int at = tb * BLOCK;
            int sum = 0;
            for (int j = 0; j < BLOCK; j++) {
                sum += a.q[at + j];
            }
            float d = Float.float16ToFloat(w.get(SHORT_LE, o)) * a.scale[tb];
            for (int lane = 0; lane < 4; lane++) {
                int s = -2 * sum;
                for (int j = 4 * lane; j < 4 * lane + 4; j++) {
                    int qs = w.get(ValueLayout.JAVA_BYTE, o + 2 + j) & 0xFF;
                    s += (qs & 0x0F) * a.q[at + j] + (qs >>> 4) * a.q[at + 16 + j];
                }
                acc[lane] = Math.fma((float) s, d, acc[lane]);
            }
        }
        return (acc[0] + acc[2]) + (acc[1] + acc[3]);
    }

    /// Writes rows `4g .. 4g + 3` of the GGUF-layout `w` (`rowBytes` per row) into `scratch` as one group of the
    /// four-row layout, so that [#group] can run on it from byte 0: the same bits as on the repacked matrix.
    static void repack(MemorySegment w, long rowBytes, int cols, int g, MemorySegment scratch) {
        int nb = cols / BLOCK;
        for (int j = 0; j < 4; j++) {
            long row = (4L * g + j) * rowBytes;
            for (int b = 0; b < nb; b++) {
                long s = row + (long) b * Q4_0.BYTES;
                long o = (long) b * GROUP_BYTES;
                scratch.set(FLOAT_LE, o + 4L * j, Float.float16ToFloat(w.get(SHORT_LE, s)));
                MemorySegment.copy(w, s + 2, scratch, o + 16 + 16L * j, 16);
            }
        }
    }
}
