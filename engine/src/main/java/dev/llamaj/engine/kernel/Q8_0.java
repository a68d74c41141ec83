package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/// `Q8_0` weights (ggml: `block_q8_0`, `GGML_TYPE_Q8_0`): blocks of 32 weights in 34 bytes.
///
/// ```
/// byte  0      2                                  34
///       +------+----------------------------------+
///       |  d   |  qs[0..31]: int8                 |
///       +------+----------------------------------+
///       fp16 scale
/// w[j] = d × qs[j]
/// ```
///
/// The kernels load 16 quants at a time and widen them straight to float lanes (`B2F`), multiply-add them with `x`, and
/// scale each block's partial sum once by `d`. `matVec` runs four rows per pass so four independent accumulator
/// chains hide the FMA latency and each `x` vector is loaded once for four rows.
final class Q8_0 {
    static final int BLOCK = 32;
    static final int BYTES = 34;

    private Q8_0() {
    }

    /// As ggml's `dequantize_row_q8_0`: `n` weights (a multiple of 32) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            for (int j = 0; j < BLOCK; j++) {
                out[outOffset + i * BLOCK + j] = w.get(ValueLayout.JAVA_BYTE, o + 2 + j) * d;
            }
        }
    }

    /// [#dequantize] with vectors, bit for bit the same values (the panels of [MatMul]).
    static void unpack(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        int nb = n / BLOCK;
        for (int b = 0; b < nb; b++) {
            long o = offset + (long) b * BYTES;
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(SHORT_LE, o)));
            ByteVector q0 = ByteVector.fromMemorySegment(B, w, o + 2, LE);
            ByteVector q1 = ByteVector.fromMemorySegment(B, w, o + 18, LE);
            int y = outOffset + b * BLOCK;
            ((FloatVector) q0.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, y);
            ((FloatVector) q1.convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, y + 16);
            for (int p = 1; p < BYTE_PARTS; p++) {
                ((FloatVector) q0.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, y + p * L);
                ((FloatVector) q1.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, y + 16 + p * L);
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
            ByteVector q0 = ByteVector.fromMemorySegment(B, w, o + 2, LE);
            ByteVector q1 = ByteVector.fromMemorySegment(B, w, o + 18, LE);
            FloatVector s = ((FloatVector) q0.convertShape(VectorOperators.B2F, F, 0))
                    .mul(FloatVector.fromArray(F, x, xb));
            s = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xb + 16), s);
            for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of each 16 bytes (see Simd)
                s = ((FloatVector) q0.convertShape(VectorOperators.B2F, F, p))
                        .fma(FloatVector.fromArray(F, x, xb + p * L), s);
                s = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, p))
                        .fma(FloatVector.fromArray(F, x, xb + 16 + p * L), s);
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
                // weights 0..15 then 16..31 of the block, as in dot
                FloatVector xa = FloatVector.fromArray(F, x, xb);
                FloatVector xc = FloatVector.fromArray(F, x, xb + 16);
                ByteVector a0 = ByteVector.fromMemorySegment(B, w, r0 + o + 2, LE);
                ByteVector a1 = ByteVector.fromMemorySegment(B, w, r1 + o + 2, LE);
                ByteVector a2 = ByteVector.fromMemorySegment(B, w, r2 + o + 2, LE);
                ByteVector a3 = ByteVector.fromMemorySegment(B, w, r3 + o + 2, LE);
                ByteVector c0 = ByteVector.fromMemorySegment(B, w, r0 + o + 18, LE);
                ByteVector c1 = ByteVector.fromMemorySegment(B, w, r1 + o + 18, LE);
                ByteVector c2 = ByteVector.fromMemorySegment(B, w, r2 + o + 18, LE);
                ByteVector c3 = ByteVector.fromMemorySegment(B, w, r3 + o + 18, LE);
                FloatVector s0 = ((FloatVector) a0.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s1 = ((FloatVector) a1.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s2 = ((FloatVector) a2.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s3 = ((FloatVector) a3.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                s0 = ((FloatVector) c0.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s0);
                s1 = ((FloatVector) c1.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s1);
                s2 = ((FloatVector) c2.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s2);
                s3 = ((FloatVector) c3.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s3);
                for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of each 16 bytes (see Simd)
                    xa = FloatVector.fromArray(F, x, xb + p * L);
                    xc = FloatVector.fromArray(F, x, xb + 16 + p * L);
                    s0 = ((FloatVector) a0.convertShape(VectorOperators.B2F, F, p)).fma(xa, s0);
                    s1 = ((FloatVector) a1.convertShape(VectorOperators.B2F, F, p)).fma(xa, s1);
                    s2 = ((FloatVector) a2.convertShape(VectorOperators.B2F, F, p)).fma(xa, s2);
                    s3 = ((FloatVector) a3.convertShape(VectorOperators.B2F, F, p)).fma(xa, s3);
                    s0 = ((FloatVector) c0.convertShape(VectorOperators.B2F, F, p)).fma(xc, s0);
                    s1 = ((FloatVector) c1.convertShape(VectorOperators.B2F, F, p)).fma(xc, s1);
                    s2 = ((FloatVector) c2.convertShape(VectorOperators.B2F, F, p)).fma(xc, s2);
                    s3 = ((FloatVector) c3.convertShape(VectorOperators.B2F, F, p)).fma(xc, s3);
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

    // ---- the four-row layout of Repack: per block of a group, 4 f32 scales then 4 × 32 quants ----

    /// Bytes of one block of a four-row group.
    static final int GROUP_BYTES = 16 + 4 * 32;

    /// [#matVec] over the [Matrix.Layout#ROWS4] layout (`from`, `to` multiples of 4): the same operations in the same
    /// order, so bit for bit the same results, but each thread reads one sequential stream and each scale is one
    /// f32 load.
    static void matVec4(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                        float[] out, int outOffset, int from, int to, Input in) {
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
                FloatVector xa = FloatVector.fromArray(F, x, xb);
                FloatVector xc = FloatVector.fromArray(F, x, xb + 16);
                ByteVector a0 = ByteVector.fromMemorySegment(B, w, o + 16, LE);
                ByteVector a1 = ByteVector.fromMemorySegment(B, w, o + 48, LE);
                ByteVector a2 = ByteVector.fromMemorySegment(B, w, o + 80, LE);
                ByteVector a3 = ByteVector.fromMemorySegment(B, w, o + 112, LE);
                ByteVector c0 = ByteVector.fromMemorySegment(B, w, o + 32, LE);
                ByteVector c1 = ByteVector.fromMemorySegment(B, w, o + 64, LE);
                ByteVector c2 = ByteVector.fromMemorySegment(B, w, o + 96, LE);
                ByteVector c3 = ByteVector.fromMemorySegment(B, w, o + 128, LE);
                FloatVector s0 = ((FloatVector) a0.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s1 = ((FloatVector) a1.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s2 = ((FloatVector) a2.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                FloatVector s3 = ((FloatVector) a3.convertShape(VectorOperators.B2F, F, 0)).mul(xa);
                s0 = ((FloatVector) c0.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s0);
                s1 = ((FloatVector) c1.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s1);
                s2 = ((FloatVector) c2.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s2);
                s3 = ((FloatVector) c3.convertShape(VectorOperators.B2F, F, 0)).fma(xc, s3);
                for (int p = 1; p < BYTE_PARTS; p++) { // narrower vectors: the rest of each 16 bytes (see Simd)
                    xa = FloatVector.fromArray(F, x, xb + p * L);
                    xc = FloatVector.fromArray(F, x, xb + 16 + p * L);
                    s0 = ((FloatVector) a0.convertShape(VectorOperators.B2F, F, p)).fma(xa, s0);
                    s1 = ((FloatVector) a1.convertShape(VectorOperators.B2F, F, p)).fma(xa, s1);
                    s2 = ((FloatVector) a2.convertShape(VectorOperators.B2F, F, p)).fma(xa, s2);
                    s3 = ((FloatVector) a3.convertShape(VectorOperators.B2F, F, p)).fma(xa, s3);
                    s0 = ((FloatVector) c0.convertShape(VectorOperators.B2F, F, p)).fma(xc, s0);
                    s1 = ((FloatVector) c1.convertShape(VectorOperators.B2F, F, p)).fma(xc, s1);
                    s2 = ((FloatVector) c2.convertShape(VectorOperators.B2F, F, p)).fma(xc, s2);
                    s3 = ((FloatVector) c3.convertShape(VectorOperators.B2F, F, p)).fma(xc, s3);
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
            long q = o + 16 + 32L * j;
            if (vector) {
                FloatVector vd = FloatVector.broadcast(F, d);
                ByteVector q0 = ByteVector.fromMemorySegment(B, w, q, LE);
                ByteVector q1 = ByteVector.fromMemorySegment(B, w, q + 16, LE);
                for (int p = 0; p < BYTE_PARTS; p++) {
                    ((FloatVector) q0.convertShape(VectorOperators.B2F, F, p)).mul(vd).intoArray(out, y + p * L);
                    ((FloatVector) q1.convertShape(VectorOperators.B2F, F, p)).mul(vd).intoArray(out, y + 16 + p * L);
                }
            } else {
                for (int k = 0; k < BLOCK; k++) {
                    out[y + k] = w.get(ValueLayout.JAVA_BYTE, q + k) * d;
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
                MemorySegment.copy(src, s + 2, dst, o + 16 + 32L * j, 32);
            }
        }
    }
}
