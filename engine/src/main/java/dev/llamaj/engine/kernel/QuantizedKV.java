package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.BYTE_PARTS;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.L;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/// The quantized key/value cache: ggml's `Q8_0` and `Q4_0` blocks, written when a position is stored and read
/// directly by attention.
///
/// **Layout.** One row of `kvDim` elements per position (`[position][kvHead][headSize]`, as llama.cpp's cache
/// rows), cut into blocks of 32: a block is its half-precision scale `d` (little-endian) followed by its quants.
/// `Q8_0`: 32 signed bytes, value `q · d`. `Q4_0`: 16 bytes, element `j < 16` in the low nibble of byte `j` and
/// element `j + 16` in its high nibble, value `(q - 8) · d`. A head's slice of a row is `headSize` elements from
/// `kvHead · headSize`; the caller guarantees that it never straddles two blocks (head size a multiple of 32, or a
/// divisor of 32 with rows a multiple of 32), so a slice is whole blocks or one part of one block.
///
/// **Store** follows ggml's reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`), rounding
/// included: C's `roundf` (halves away from zero) for `Q8_0`, truncation of `x / d + 8.5` for `Q4_0`. (llama.cpp's
/// own x86 path for `Q8_0` rounds halves to even and scales by `127 / max` instead of `1 / d`: a quant can then
/// differ by one step on values at or within a rounding error of a tie.)
///
/// **Attend** reads the blocks in place: a score is, per block, the scale times the dot product of the float
/// query with the block's integers (llama.cpp rounds the query to `Q8_0` for that product; the float query is
/// kept here); a weighted value sum adds, per position and block, `(weight · d) · q` to the output, with the
/// softmax weights in float (llama.cpp rounds them to F16 only against an F16 value cache). Nothing is
/// dequantized into a temporary row. Heads of a multiple of 32 (every real model) run Vector API kernels: a block's
/// 16-byte halves are widened straight to float lanes (`B2F`), scaled, and multiply-added with four query heads
/// at a time (the group of a key/value head; a remainder one by one), one accumulator per score reduced at the end
/// with [Simd]'s fixed butterfly (the same bits in every execution mode); values are multiply-added into the four
/// output rows. Smaller heads (toy models) take scalar loops.
public final class QuantizedKV {
    /// Elements per block.
    public static final int QK = 32;
    /// Bytes of a `Q8_0` block: the scale and 32 quants.
    public static final int Q8_0_BYTES = 34;
    /// Bytes of a `Q4_0` block: the scale and 16 bytes of nibbles.
    public static final int Q4_0_BYTES = 18;

    private QuantizedKV() {
    }

    // ---- store -------------------------------------------------------------------------------------------

    /// Quantizes `n` elements `x[xOff + i · stride]` (`n` a multiple of 32) to `Q8_0` blocks at `dst[off ..]`.
    public static void storeQ8_0(float[] x, int xOff, int stride, int n, byte[] dst, int off) {
        for (int b = 0; b < n / QK; b++) {
            int x0 = xOff + b * QK * stride;
            float amax = 0f;
            for (int j = 0; j < QK; j++) {
                amax = Math.max(amax, Math.abs(x[x0 + j * stride]));
            }
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            int o = off + b * Q8_0_BYTES;
            putHalf(dst, o, d);
            for (int j = 0; j < QK; j++) {
                dst[o + 2 + j] = (byte) roundHalfAway(x[x0 + j * stride] * id);
            }
        }
    }

    /// Quantizes `n` elements `x[xOff + i · stride]` (`n` a multiple of 32) to `Q4_0` blocks at `dst[off ..]`.
    public static void storeQ4_0(float[] x, int xOff, int stride, int n, byte[] dst, int off) {
        for (int b = 0; b < n / QK; b++) {
            int x0 = xOff + b * QK * stride;
            float amax = 0f;
            float max = 0f; // the element of largest magnitude, with its sign: it maps to -8 exactly
            for (int j = 0; j < QK; j++) {
                float v = x[x0 + j * stride];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8f;
            float id = d != 0f ? 1f / d : 0f;
            int o = off + b * Q4_0_BYTES;
            putHalf(dst, o, d);
            for (int j = 0; j < QK / 2; j++) {
                // C's float-to-integer conversion truncates; the sum is at least 0.5, so truncation is floor
                int lo = Math.min(15, (int) (x[x0 + j * stride] * id + 8.5f));
                int hi = Math.min(15, (int) (x[x0 + (j + QK / 2) * stride] * id + 8.5f));
                dst[o + 2 + j] = (byte) (lo | hi << 4);
            }
        }
    }

    /// C's `roundf`: to the nearest integer, halves away from zero (Java's `Math.round` rounds them up).
    static int roundHalfAway(float x) {
        float a = Math.abs(x);
        float f = (float) Math.floor(a);
        int r = (int) f + (a - f >= 0.5f ? 1 : 0); // a - f is exact
        return x < 0 ? -r : r;
    }

    private static void putHalf(byte[] dst, int o, float d) {
        short h = Float.floatToFloat16(d);
        dst[o] = (byte) h;
        dst[o + 1] = (byte) (h >> 8);
    }

    private static float half(byte[] src, int o) {
        return Float.float16ToFloat((short) ((src[o] & 0xFF) | src[o + 1] << 8));
    }

    /// The values of `n` elements from element `e0` of the row at `src[off ..]` (`Q8_0` when `q8`, else `Q4_0`),
    /// into `out[outOff ..]`: the plain dequantization, for tests and references.
    public static void dequantize(boolean q8, byte[] src, int off, int e0, int n, float[] out, int outOff) {
        for (int i = 0; i < n; i++) {
            int e = e0 + i;
            int j = e % QK;
            if (q8) {
                int o = off + e / QK * Q8_0_BYTES;
                out[outOff + i] = src[o + 2 + j] * half(src, o);
            } else {
                int o = off + e / QK * Q4_0_BYTES;
                int b = src[o + 2 + j % 16];
                int q = j < 16 ? b & 15 : b >> 4 & 15;
                out[outOff + i] = (q - 8) * half(src, o);
            }
        }
    }

    // ---- attend: scores ----------------------------------------------------------------------------------

    /// Scores of `group` query heads (`q[qOff ..]`, `group × hs`) against the keys of positions (slots)
    /// `[from, n)`, rows of `rowBytes` at `keys[p · rowBytes]`, head slice from element `e0`; score `p` of head
    /// `h` goes to `att[attOff + h · stride + p]`, times `scale`.
    public static void scoresQ8_0(float[] q, int qOff, int group, int hs, byte[] keys, int rowBytes, int e0,
                                  int from, int n, float scale, float[] att, int attOff, int stride) {
        if (hs % QK == 0) {
            int h = 0;
            for (; h + 4 <= group; h += 4) {
                scoresQ8_0Four(q, qOff + h * hs, hs, keys, rowBytes, e0, from, n, scale, att, attOff + h * stride,
                        stride);
            }
            if (h < group) {
                scoresQ8_0Vector(q, qOff + h * hs, group - h, hs, keys, rowBytes, e0, from, n, scale, att,
                        attOff + h * stride, stride);
            }
            return;
        }
        int seg = Math.min(hs, QK);
        for (int p = from; p < n; p++) {
            int row = p * rowBytes;
            for (int h = 0; h < group; h++) {
                int qh = qOff + h * hs;
                float s = 0f;
                for (int i = 0; i < hs; i += seg) {
                    int e = e0 + i;
                    int o = row + e / QK * Q8_0_BYTES;
                    int qs = o + 2 + e % QK;
                    float dot = 0f;
                    for (int j = 0; j < seg; j++) {
                        dot = Math.fma(q[qh + i + j], keys[qs + j], dot);
                    }
                    s = Math.fma(half(keys, o), dot, s);
                }
                att[attOff + h * stride + p] = s * scale;
            }
        }
    }

    /// [#scoresQ8_0] over `Q4_0` keys.
    public static void scoresQ4_0(float[] q, int qOff, int group, int hs, byte[] keys, int rowBytes, int e0,
                                  int from, int n, float scale, float[] att, int attOff, int stride) {
        if (hs % QK == 0) {
            int h = 0;
            for (; h + 4 <= group; h += 4) {
                scoresQ4_0Four(q, qOff + h * hs, hs, keys, rowBytes, e0, from, n, scale, att, attOff + h * stride,
                        stride);
            }
            if (h < group) {
                scoresQ4_0Vector(q, qOff + h * hs, group - h, hs, keys, rowBytes, e0, from, n, scale, att,
                        attOff + h * stride, stride);
            }
            return;
        }
        int seg = Math.min(hs, QK);
        for (int p = from; p < n; p++) {
            int row = p * rowBytes;
            for (int h = 0; h < group; h++) {
                int qh = qOff + h * hs;
                float s = 0f;
                for (int i = 0; i < hs; i += seg) {
                    int e = e0 + i;
                    int o = row + e / QK * Q4_0_BYTES + 2;
                    int j0 = e % QK;
                    int j1 = j0 + seg;
                    int qi = qh + i - j0; // query element of block element j: q[qi + j]
                    float dot = 0f;
                    for (int j = j0; j < Math.min(j1, 16); j++) { // low nibbles: elements 0..15
                        dot = Math.fma(q[qi + j], (keys[o + j] & 15) - 8, dot);
                    }
                    for (int j = Math.max(j0, 16); j < j1; j++) { // high nibbles: elements 16..31
                        dot = Math.fma(q[qi + j], (keys[o + j - 16] >> 4 & 15) - 8, dot);
                    }
                    s = Math.fma(half(keys, o - 2), dot, s);
                }
                att[attOff + h * stride + p] = s * scale;
            }
        }
    }

    // ---- attend: weighted values -------------------------------------------------------------------------

    /// Weighted sums of the values of positions `[from, n)` (rows of `rowBytes` at `values[p · rowBytes]`, head
    /// slice from element `e0`) for `group` heads, weights `att[attOff + h · stride + p]`; `group × hs` outputs to
    /// `out[outOff ..]`.
    public static void valuesQ8_0(float[] att, int attOff, int stride, int group, byte[] values, int rowBytes,
                                  int e0, int from, int n, int hs, float[] out, int outOff) {
        java.util.Arrays.fill(out, outOff, outOff + group * hs, 0f);
        if (hs % QK == 0) {
            int h = 0;
            for (; h + 4 <= group; h += 4) {
                valuesQ8_0Four(att, attOff + h * stride, stride, values, rowBytes, e0, from, n, hs, out,
                        outOff + h * hs);
            }
            if (h < group) {
                valuesQ8_0Vector(att, attOff + h * stride, stride, group - h, values, rowBytes, e0, from, n, hs,
                        out, outOff + h * hs);
            }
            return;
        }
        int seg = Math.min(hs, QK);
        for (int p = from; p < n; p++) {
            int row = p * rowBytes;
            for (int h = 0; h < group; h++) {
                float w = att[attOff + h * stride + p];
                int oh = outOff + h * hs;
                for (int i = 0; i < hs; i += seg) {
                    int e = e0 + i;
                    int o = row + e / QK * Q8_0_BYTES;
                    int qs = o + 2 + e % QK;
                    float wd = w * half(values, o);
                    for (int j = 0; j < seg; j++) {
                        out[oh + i + j] = Math.fma(wd, values[qs + j], out[oh + i + j]);
                    }
                }
            }
        }
    }

    /// [#valuesQ8_0] over `Q4_0` values.
    public static void valuesQ4_0(float[] att, int attOff, int stride, int group, byte[] values, int rowBytes,
                                  int e0, int from, int n, int hs, float[] out, int outOff) {
        java.util.Arrays.fill(out, outOff, outOff + group * hs, 0f);
        if (hs % QK == 0) {
            int h = 0;
            for (; h + 4 <= group; h += 4) {
                valuesQ4_0Four(att, attOff + h * stride, stride, values, rowBytes, e0, from, n, hs, out,
                        outOff + h * hs);
            }
            if (h < group) {
                valuesQ4_0Vector(att, attOff + h * stride, stride, group - h, values, rowBytes, e0, from, n, hs,
                        out, outOff + h * hs);
            }
            return;
        }
        int seg = Math.min(hs, QK);
        for (int p = from; p < n; p++) {
            int row = p * rowBytes;
            for (int h = 0; h < group; h++) {
                float w = att[attOff + h * stride + p];
                for (int i = 0; i < hs; i += seg) {
                    int e = e0 + i;
                    int o = row + e / QK * Q4_0_BYTES + 2;
                    int j0 = e % QK;
                    int j1 = j0 + seg;
                    int oi = outOff + h * hs + i - j0; // output element of block element j: out[oi + j]
                    float wd = w * half(values, o - 2);
                    for (int j = j0; j < Math.min(j1, 16); j++) {
                        out[oi + j] = Math.fma(wd, (values[o + j] & 15) - 8, out[oi + j]);
                    }
                    for (int j = Math.max(j0, 16); j < j1; j++) {
                        out[oi + j] = Math.fma(wd, (values[o + j - 16] >> 4 & 15) - 8, out[oi + j]);
                    }
                }
            }
        }
    }

    // ---- attend: the vector kernels, heads of a multiple of 32 ---------------------------------------------

    /// Scores of four heads at once over `Q8_0` keys: each block is widened once for the four queries.
    private static void scoresQ8_0Four(float[] q, int qOff, int hs, byte[] keys, int rowBytes, int e0, int from,
                                       int n, float scale, float[] att, int attOff, int stride) {
        int firstBlock = e0 / QK * Q8_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            for (int i = 0; i < hs; i += QK) {
                int o = row + i / QK * Q8_0_BYTES;
                FloatVector d = FloatVector.broadcast(F, half(keys, o));
                ByteVector lo = ByteVector.fromArray(B, keys, o + 2);
                ByteVector hi = ByteVector.fromArray(B, keys, o + 18);
                for (int part = 0; part < BYTE_PARTS; part++) {
                    int x = qOff + i + part * L;
                    FloatVector k = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part)).mul(d);
                    a0 = k.fma(FloatVector.fromArray(F, q, x), a0);
                    a1 = k.fma(FloatVector.fromArray(F, q, x + hs), a1);
                    a2 = k.fma(FloatVector.fromArray(F, q, x + 2 * hs), a2);
                    a3 = k.fma(FloatVector.fromArray(F, q, x + 3 * hs), a3);
                    k = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part)).mul(d);
                    x += 16;
                    a0 = k.fma(FloatVector.fromArray(F, q, x), a0);
                    a1 = k.fma(FloatVector.fromArray(F, q, x + hs), a1);
                    a2 = k.fma(FloatVector.fromArray(F, q, x + 2 * hs), a2);
                    a3 = k.fma(FloatVector.fromArray(F, q, x + 3 * hs), a3);
                }
            }
            // the butterfly of Simd, written out, once per head
            a0 = a0.add(a0.rearrange(Simd.SWAP_HALF));
            a1 = a1.add(a1.rearrange(Simd.SWAP_HALF));
            a2 = a2.add(a2.rearrange(Simd.SWAP_HALF));
            a3 = a3.add(a3.rearrange(Simd.SWAP_HALF));
            a0 = a0.add(a0.rearrange(Simd.SWAP_QUARTER));
            a1 = a1.add(a1.rearrange(Simd.SWAP_QUARTER));
            a2 = a2.add(a2.rearrange(Simd.SWAP_QUARTER));
            a3 = a3.add(a3.rearrange(Simd.SWAP_QUARTER));
            if (L >= 8) {
                a0 = a0.add(a0.rearrange(Simd.SWAP_EIGHTH));
                a1 = a1.add(a1.rearrange(Simd.SWAP_EIGHTH));
                a2 = a2.add(a2.rearrange(Simd.SWAP_EIGHTH));
                a3 = a3.add(a3.rearrange(Simd.SWAP_EIGHTH));
            }
            if (L >= 16) {
                a0 = a0.add(a0.rearrange(Simd.SWAP_SIXTEENTH));
                a1 = a1.add(a1.rearrange(Simd.SWAP_SIXTEENTH));
                a2 = a2.add(a2.rearrange(Simd.SWAP_SIXTEENTH));
                a3 = a3.add(a3.rearrange(Simd.SWAP_SIXTEENTH));
            }
            int y = attOff + p;
            att[y] = a0.lane(0) * scale;
            att[y + stride] = a1.lane(0) * scale;
            att[y + 2 * stride] = a2.lane(0) * scale;
            att[y + 3 * stride] = a3.lane(0) * scale;
        }
    }

    private static void scoresQ8_0Vector(float[] q, int qOff, int group, int hs, byte[] keys, int rowBytes, int e0,
                                         int from, int n, float scale, float[] att, int attOff, int stride) {
        int firstBlock = e0 / QK * Q8_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            for (int h = 0; h < group; h++) {
                int qh = qOff + h * hs;
                FloatVector acc = FloatVector.zero(F);
                for (int i = 0; i < hs; i += QK) {
                    int o = row + i / QK * Q8_0_BYTES;
                    FloatVector d = FloatVector.broadcast(F, half(keys, o));
                    ByteVector lo = ByteVector.fromArray(B, keys, o + 2);
                    ByteVector hi = ByteVector.fromArray(B, keys, o + 18);
                    int x = qh + i;
                    acc = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0)).mul(d)
                            .fma(FloatVector.fromArray(F, q, x), acc);
                    acc = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0)).mul(d)
                            .fma(FloatVector.fromArray(F, q, x + 16), acc);
                    for (int part = 1; part < BYTE_PARTS; part++) {
                        acc = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part)).mul(d)
                                .fma(FloatVector.fromArray(F, q, x + part * L), acc);
                        acc = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part)).mul(d)
                                .fma(FloatVector.fromArray(F, q, x + 16 + part * L), acc);
                    }
                }
                // the butterfly of Simd, written out (a helper taking a vector can box it)
                acc = acc.add(acc.rearrange(Simd.SWAP_HALF));
                acc = acc.add(acc.rearrange(Simd.SWAP_QUARTER));
                if (L >= 8) {
                    acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
                }
                if (L >= 16) {
                    acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
                }
                att[attOff + h * stride + p] = acc.lane(0) * scale;
            }
        }
    }

    /// Scores of four heads at once over `Q4_0` keys: each block is widened once for the four queries.
    private static void scoresQ4_0Four(float[] q, int qOff, int hs, byte[] keys, int rowBytes, int e0, int from,
                                       int n, float scale, float[] att, int attOff, int stride) {
        int firstBlock = e0 / QK * Q4_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            for (int i = 0; i < hs; i += QK) {
                int o = row + i / QK * Q4_0_BYTES;
                FloatVector d = FloatVector.broadcast(F, half(keys, o));
                ByteVector b = ByteVector.fromArray(B, keys, o + 2);
                ByteVector lo = b.and((byte) 15).sub((byte) 8);
                ByteVector hi = b.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8);
                for (int part = 0; part < BYTE_PARTS; part++) {
                    int x = qOff + i + part * L;
                    FloatVector k = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part)).mul(d);
                    a0 = k.fma(FloatVector.fromArray(F, q, x), a0);
                    a1 = k.fma(FloatVector.fromArray(F, q, x + hs), a1);
                    a2 = k.fma(FloatVector.fromArray(F, q, x + 2 * hs), a2);
                    a3 = k.fma(FloatVector.fromArray(F, q, x + 3 * hs), a3);
                    k = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part)).mul(d);
                    x += 16;
                    a0 = k.fma(FloatVector.fromArray(F, q, x), a0);
                    a1 = k.fma(FloatVector.fromArray(F, q, x + hs), a1);
                    a2 = k.fma(FloatVector.fromArray(F, q, x + 2 * hs), a2);
                    a3 = k.fma(FloatVector.fromArray(F, q, x + 3 * hs), a3);
                }
            }
            // the butterfly of Simd, written out, once per head
            a0 = a0.add(a0.rearrange(Simd.SWAP_HALF));
            a1 = a1.add(a1.rearrange(Simd.SWAP_HALF));
            a2 = a2.add(a2.rearrange(Simd.SWAP_HALF));
            a3 = a3.add(a3.rearrange(Simd.SWAP_HALF));
            a0 = a0.add(a0.rearrange(Simd.SWAP_QUARTER));
            a1 = a1.add(a1.rearrange(Simd.SWAP_QUARTER));
            a2 = a2.add(a2.rearrange(Simd.SWAP_QUARTER));
            a3 = a3.add(a3.rearrange(Simd.SWAP_QUARTER));
            if (L >= 8) {
                a0 = a0.add(a0.rearrange(Simd.SWAP_EIGHTH));
                a1 = a1.add(a1.rearrange(Simd.SWAP_EIGHTH));
                a2 = a2.add(a2.rearrange(Simd.SWAP_EIGHTH));
                a3 = a3.add(a3.rearrange(Simd.SWAP_EIGHTH));
            }
            if (L >= 16) {
                a0 = a0.add(a0.rearrange(Simd.SWAP_SIXTEENTH));
                a1 = a1.add(a1.rearrange(Simd.SWAP_SIXTEENTH));
                a2 = a2.add(a2.rearrange(Simd.SWAP_SIXTEENTH));
                a3 = a3.add(a3.rearrange(Simd.SWAP_SIXTEENTH));
            }
            int y = attOff + p;
            att[y] = a0.lane(0) * scale;
            att[y + stride] = a1.lane(0) * scale;
            att[y + 2 * stride] = a2.lane(0) * scale;
            att[y + 3 * stride] = a3.lane(0) * scale;
        }
    }

    private static void scoresQ4_0Vector(float[] q, int qOff, int group, int hs, byte[] keys, int rowBytes, int e0,
                                         int from, int n, float scale, float[] att, int attOff, int stride) {
        int firstBlock = e0 / QK * Q4_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            for (int h = 0; h < group; h++) {
                int qh = qOff + h * hs;
                FloatVector acc = FloatVector.zero(F);
                for (int i = 0; i < hs; i += QK) {
                    int o = row + i / QK * Q4_0_BYTES;
                    FloatVector d = FloatVector.broadcast(F, half(keys, o));
                    ByteVector b = ByteVector.fromArray(B, keys, o + 2);
                    ByteVector lo = b.and((byte) 15).sub((byte) 8); // elements 0..15
                    ByteVector hi = b.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8); // 16..31
                    int x = qh + i;
                    acc = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0)).mul(d)
                            .fma(FloatVector.fromArray(F, q, x), acc);
                    acc = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0)).mul(d)
                            .fma(FloatVector.fromArray(F, q, x + 16), acc);
                    for (int part = 1; part < BYTE_PARTS; part++) {
                        acc = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part)).mul(d)
                                .fma(FloatVector.fromArray(F, q, x + part * L), acc);
                        acc = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part)).mul(d)
                                .fma(FloatVector.fromArray(F, q, x + 16 + part * L), acc);
                    }
                }
                // the butterfly of Simd, written out (a helper taking a vector can box it)
                acc = acc.add(acc.rearrange(Simd.SWAP_HALF));
                acc = acc.add(acc.rearrange(Simd.SWAP_QUARTER));
                if (L >= 8) {
                    acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
                }
                if (L >= 16) {
                    acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
                }
                att[attOff + h * stride + p] = acc.lane(0) * scale;
            }
        }
    }

    /// Output rows accumulate in memory: per position, the `hs / L` vectors of a head are independent chains.
    /// Weighted values of four heads at once over `Q8_0` values: each block is widened once for the four
    /// output rows (the weights carry the block's scale).
    private static void valuesQ8_0Four(float[] att, int attOff, int stride, byte[] values, int rowBytes, int e0,
                                       int from, int n, int hs, float[] out, int outOff) {
        int firstBlock = e0 / QK * Q8_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            int a = attOff + p;
            float w0 = att[a];
            float w1 = att[a + stride];
            float w2 = att[a + 2 * stride];
            float w3 = att[a + 3 * stride];
            for (int i = 0; i < hs; i += QK) {
                int o = row + i / QK * Q8_0_BYTES;
                float d = half(values, o);
                FloatVector d0 = FloatVector.broadcast(F, w0 * d);
                FloatVector d1 = FloatVector.broadcast(F, w1 * d);
                FloatVector d2 = FloatVector.broadcast(F, w2 * d);
                FloatVector d3 = FloatVector.broadcast(F, w3 * d);
                ByteVector lo = ByteVector.fromArray(B, values, o + 2);
                ByteVector hi = ByteVector.fromArray(B, values, o + 18);
                for (int part = 0; part < BYTE_PARTS; part++) {
                    int y = outOff + i + part * L;
                    FloatVector v = (FloatVector) lo.convertShape(VectorOperators.B2F, F, part);
                    v.fma(d0, FloatVector.fromArray(F, out, y)).intoArray(out, y);
                    v.fma(d1, FloatVector.fromArray(F, out, y + hs)).intoArray(out, y + hs);
                    v.fma(d2, FloatVector.fromArray(F, out, y + 2 * hs)).intoArray(out, y + 2 * hs);
                    v.fma(d3, FloatVector.fromArray(F, out, y + 3 * hs)).intoArray(out, y + 3 * hs);
                    v = (FloatVector) hi.convertShape(VectorOperators.B2F, F, part);
                    y += 16;
                    v.fma(d0, FloatVector.fromArray(F, out, y)).intoArray(out, y);
                    v.fma(d1, FloatVector.fromArray(F, out, y + hs)).intoArray(out, y + hs);
                    v.fma(d2, FloatVector.fromArray(F, out, y + 2 * hs)).intoArray(out, y + 2 * hs);
                    v.fma(d3, FloatVector.fromArray(F, out, y + 3 * hs)).intoArray(out, y + 3 * hs);
                }
            }
        }
    }

    private static void valuesQ8_0Vector(float[] att, int attOff, int stride, int group, byte[] values,
                                         int rowBytes, int e0, int from, int n, int hs, float[] out, int outOff) {
        int firstBlock = e0 / QK * Q8_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            for (int h = 0; h < group; h++) {
                float w = att[attOff + h * stride + p];
                int oh = outOff + h * hs;
                for (int i = 0; i < hs; i += QK) {
                    int o = row + i / QK * Q8_0_BYTES;
                    FloatVector wd = FloatVector.broadcast(F, w * half(values, o));
                    ByteVector lo = ByteVector.fromArray(B, values, o + 2);
                    ByteVector hi = ByteVector.fromArray(B, values, o + 18);
                    int y = oh + i;
                    ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0))
                            .fma(wd, FloatVector.fromArray(F, out, y)).intoArray(out, y);
                    ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0))
                            .fma(wd, FloatVector.fromArray(F, out, y + 16)).intoArray(out, y + 16);
                    for (int part = 1; part < BYTE_PARTS; part++) {
                        int yp = y + part * L;
                        ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part))
                                .fma(wd, FloatVector.fromArray(F, out, yp)).intoArray(out, yp);
                        ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part))
                                .fma(wd, FloatVector.fromArray(F, out, yp + 16)).intoArray(out, yp + 16);
                    }
                }
            }
        }
    }

    /// Weighted values of four heads at once over `Q4_0` values: each block is widened once for the four
    /// output rows (the weights carry the block's scale).
    private static void valuesQ4_0Four(float[] att, int attOff, int stride, byte[] values, int rowBytes, int e0,
                                       int from, int n, int hs, float[] out, int outOff) {
        int firstBlock = e0 / QK * Q4_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            int a = attOff + p;
            float w0 = att[a];
            float w1 = att[a + stride];
            float w2 = att[a + 2 * stride];
            float w3 = att[a + 3 * stride];
            for (int i = 0; i < hs; i += QK) {
                int o = row + i / QK * Q4_0_BYTES;
                float d = half(values, o);
                FloatVector d0 = FloatVector.broadcast(F, w0 * d);
                FloatVector d1 = FloatVector.broadcast(F, w1 * d);
                FloatVector d2 = FloatVector.broadcast(F, w2 * d);
                FloatVector d3 = FloatVector.broadcast(F, w3 * d);
                ByteVector b = ByteVector.fromArray(B, values, o + 2);
                ByteVector lo = b.and((byte) 15).sub((byte) 8);
                ByteVector hi = b.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8);
                for (int part = 0; part < BYTE_PARTS; part++) {
                    int y = outOff + i + part * L;
                    FloatVector v = (FloatVector) lo.convertShape(VectorOperators.B2F, F, part);
                    v.fma(d0, FloatVector.fromArray(F, out, y)).intoArray(out, y);
                    v.fma(d1, FloatVector.fromArray(F, out, y + hs)).intoArray(out, y + hs);
                    v.fma(d2, FloatVector.fromArray(F, out, y + 2 * hs)).intoArray(out, y + 2 * hs);
                    v.fma(d3, FloatVector.fromArray(F, out, y + 3 * hs)).intoArray(out, y + 3 * hs);
                    v = (FloatVector) hi.convertShape(VectorOperators.B2F, F, part);
                    y += 16;
                    v.fma(d0, FloatVector.fromArray(F, out, y)).intoArray(out, y);
                    v.fma(d1, FloatVector.fromArray(F, out, y + hs)).intoArray(out, y + hs);
                    v.fma(d2, FloatVector.fromArray(F, out, y + 2 * hs)).intoArray(out, y + 2 * hs);
                    v.fma(d3, FloatVector.fromArray(F, out, y + 3 * hs)).intoArray(out, y + 3 * hs);
                }
            }
        }
    }

    private static void valuesQ4_0Vector(float[] att, int attOff, int stride, int group, byte[] values,
                                         int rowBytes, int e0, int from, int n, int hs, float[] out, int outOff) {
        int firstBlock = e0 / QK * Q4_0_BYTES;
        for (int p = from; p < n; p++) {
            int row = p * rowBytes + firstBlock;
            for (int h = 0; h < group; h++) {
                float w = att[attOff + h * stride + p];
                int oh = outOff + h * hs;
                for (int i = 0; i < hs; i += QK) {
                    int o = row + i / QK * Q4_0_BYTES;
                    FloatVector wd = FloatVector.broadcast(F, w * half(values, o));
                    ByteVector b = ByteVector.fromArray(B, values, o + 2);
                    ByteVector lo = b.and((byte) 15).sub((byte) 8);
                    ByteVector hi = b.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8);
                    int y = oh + i;
                    ((FloatVector) lo.convertShape(VectorOperators.B2F, F, 0))
                            .fma(wd, FloatVector.fromArray(F, out, y)).intoArray(out, y);
                    ((FloatVector) hi.convertShape(VectorOperators.B2F, F, 0))
                            .fma(wd, FloatVector.fromArray(F, out, y + 16)).intoArray(out, y + 16);
                    for (int part = 1; part < BYTE_PARTS; part++) {
                        int yp = y + part * L;
                        ((FloatVector) lo.convertShape(VectorOperators.B2F, F, part))
                                .fma(wd, FloatVector.fromArray(F, out, yp)).intoArray(out, yp);
                        ((FloatVector) hi.convertShape(VectorOperators.B2F, F, part))
                                .fma(wd, FloatVector.fromArray(F, out, yp + 16)).intoArray(out, yp + 16);
                    }
                }
            }
        }
    }
}
