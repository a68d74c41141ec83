package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.L;
import static dev.llamaj.engine.kernel.Simd.S;

import java.util.Objects;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/// Causal grouped-query attention of one query position against the key/value cache of one key/value head.
///
/// **Cache layout.** Keys are stored transposed in blocks of [#BLOCK] positions: for key/value head `h`, position
/// `p`, dimension `d`, the key is at `((h · blocks + p / BLOCK) · headSize + d) · BLOCK + p % BLOCK`, so the scores
/// of a block of positions are plain vector FMAs over `d` (a query value broadcast against a vector of positions)
/// and a block is one contiguous stream. Values keep one row per position (`[position][kvDim]`), so the weighted
/// sum is vector FMAs over `d` with the softmax weight broadcast. Neither needs a horizontal reduction.
///
/// The query heads of a group share their key/value head; the kernels handle four of them per pass, so the cache
/// is read once per four heads.
///
/// **Half precision.** The cache holds IEEE binary16 bit patterns (`short`), as llama.cpp's default F16 cache: half
/// the memory, and half the bytes read per generated token at long contexts, where attention over the cache is the
/// largest stream after the weights. The Vector API has no half-to-float conversion, so the kernels widen a pattern
/// `h` to an int lane with sign extension and keep `(h << 13) & 0x8fffe000`: the sign lands in bit 31 and the
/// exponent and mantissa in bits 13..27, which read as a float is exactly the half's value times 2^-112 (for
/// subnormal halves too). The 2^112 goes on the other factor instead (the query, or the softmax weight: a value
/// below 2^16 times 2^112 is still finite), so each product, and so every sum, is bit for bit what it would be with
/// the float values, for two vector operations per sixteen keys. (Reinterpretations name their species,
/// `reinterpretShape(F, 0)`: `reinterpretAsFloats()` looks the species up at run time, and C2 did not always fold
/// that lookup, leaving the loop boxing its vectors.)
///
/// **Numerics.** A score is one FMA chain over `d` in order, then multiplied by `scale`; softmax is
/// [Kernels#softmax], its weights then rounded to half precision (llama.cpp's attention converts them to F16 for
/// the product with its F16 value cache); each output is one FMA chain over positions in order (as ggml's
/// `ggml_vec_mad_f32` loop). The caller rounds the query to half precision too, as llama.cpp converts it.
public final class Attention {
    /// Positions per key block: a multiple of four float vectors for any supported shape.
    public static final int BLOCK = 64;

    private Attention() {
    }

    /// Positions rounded up to whole key blocks.
    public static int paddedLength(int positions) {
        return (positions + BLOCK - 1) / BLOCK * BLOCK;
    }

    /// Offset of key `(head, position, d = 0)` in a transposed key cache of `paddedLength` positions per head.
    public static int keyOffset(int head, int position, int headSize, int paddedLength) {
        return (head * paddedLength + position / BLOCK * BLOCK) * headSize + position % BLOCK;
    }

    /// Stores key vector `k[kOff .. kOff + headSize)` (stride `kStride`) of `head` at `position`, in half precision.
    public static void storeKey(short[] keys, int head, int position, int headSize, int paddedLength,
                                float[] k, int kOff, int kStride) {
        int o = keyOffset(head, position, headSize, paddedLength);
        for (int d = 0; d < headSize; d++) {
            keys[o + d * BLOCK] = Float.floatToFloat16(k[kOff + d * kStride]);
        }
    }

    /// Stores the `n` values `v[vOff + i · vStride]` at `values[offset ..]`, in half precision.
    public static void storeValues(short[] values, int offset, float[] v, int vOff, int vStride, int n) {
        for (int i = 0; i < n; i++) {
            values[offset + i] = Float.floatToFloat16(v[vOff + i * vStride]);
        }
    }

    /// `x` rounded to the nearest half-precision value, as llama.cpp's default F16 key/value cache stores it (and
    /// as its attention converts the query).
    public static float half(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    /// Attention of `group` query heads (`q[qOff ..]`, `group × headSize`, contiguous) at positions `[0, n)` of
    /// one key/value head: keys from `keys` (transposed layout, `kvHead`, `paddedLength` positions), values
    /// `values[vOff + p · vStride + d]`; scores scaled by `scale`. Uses `att[attOff ..]` (`group × paddedLength`)
    /// as scratch; writes `group × headSize` outputs to `out[outOff ..]`.
    public static void attend(float[] q, int qOff, int group, int headSize, short[] keys, int kvHead,
                              int paddedLength, short[] values, int vOff, int vStride, int n, float scale,
                              float[] att, int attOff, float[] out, int outOff) {
        attend(q, qOff, group, headSize, keys, kvHead, paddedLength, values, vOff, vStride, 0, n, scale, 0f, att,
                attOff, out, outOff);
    }

    /// [#attend] over positions `[from, n)` only (a sliding window: earlier positions are neither scored nor
    /// read), with scores soft-capped to `softcap · tanh(score / softcap)` before the softmax when `softcap > 0`
    /// (Gemma 2; in ggml's order: times `1/softcap`, `tanh`, times `softcap`).
    public static void attend(float[] q, int qOff, int group, int headSize, short[] keys, int kvHead,
                              int paddedLength, short[] values, int vOff, int vStride, int from, int n, float scale,
                              float softcap, float[] att, int attOff, float[] out, int outOff) {
        Objects.checkFromIndexSize(qOff, group * headSize, q.length);
        Objects.checkFromIndexSize(outOff, group * headSize, out.length);
        Objects.checkFromIndexSize(attOff, group * paddedLength, att.length);
        Objects.checkFromIndexSize(kvHead * paddedLength * headSize, paddedLength * headSize, keys.length);
        if (n < 1 || n > paddedLength || from < 0 || from >= n) {
            throw new IllegalArgumentException("positions [" + from + ", " + n + ") not in [0, " + paddedLength + "]");
        }
        Objects.checkFromIndexSize(vOff, (n - 1) * vStride + headSize, values.length);
        scoresHalf(q, qOff, group, headSize, keys, kvHead, paddedLength, from, n, scale, att, attOff);
        normalize(att, attOff, group, paddedLength, from, n, softcap, true);
        valuesHalf(att, attOff, group, paddedLength, headSize, values, vOff, vStride, from, n, out, outOff);
    }

    /// The scores phase of [#attend]: for each of `group` heads, the scaled scores of the half-precision keys of
    /// positions `[from, n)` into `att[attOff + h · paddedLength + p]` (whole key blocks are written).
    public static void scoresHalf(float[] q, int qOff, int group, int headSize, short[] keys, int kvHead,
                                  int paddedLength, int from, int n, float scale, float[] att, int attOff) {
        int firstBlock = from / BLOCK;
        int blocks = (n + BLOCK - 1) / BLOCK - firstBlock;
        int kBase = (kvHead * paddedLength + firstBlock * BLOCK) * headSize;
        int scored = attOff + firstBlock * BLOCK;
        int h = 0;
        for (; h + 4 <= group; h += 4) {
            scores4(q, qOff + h * headSize, headSize, keys, kBase, blocks, scale, att, scored + h * paddedLength,
                    paddedLength);
        }
        for (; h < group; h++) {
            scores1(q, qOff + h * headSize, headSize, keys, kBase, blocks, scale, att, scored + h * paddedLength);
        }
    }

    /// The softmax phase of [#attend]: soft-caps (when `softcap > 0`) and normalizes the scores of positions
    /// `[from, n)` of each of `group` rows of `paddedLength`; `roundToHalf` then rounds the weights to half
    /// precision, as llama.cpp does before its product with an F16 value cache (not with a quantized one, whose
    /// rows it converts to float instead).
    public static void normalize(float[] att, int attOff, int group, int paddedLength, int from, int n,
                                 float softcap, boolean roundToHalf) {
        int count = n - from;
        for (int h = 0; h < group; h++) {
            int o = attOff + h * paddedLength;
            if (softcap > 0) {
                softcap(att, o + from, count, softcap);
            }
            Kernels.softmax(att, o + from, count);
            if (roundToHalf) {
                int r = from / L * L; // whole vectors; the scores in [r, from) are rounded but never read
                roundWeights(att, o + r, n - r);
            }
        }
    }

    /// The weighted-sum phase of [#attend] over half-precision values `values[vOff + p · vStride + d]`.
    public static void valuesHalf(float[] att, int attOff, int group, int paddedLength, int headSize,
                                  short[] values, int vOff, int vStride, int from, int n, float[] out, int outOff) {
        int count = n - from;
        int w0 = attOff + from;
        int v0 = vOff + from * vStride;
        int h = 0;
        if (headSize % (4 * L) == 0) {
            for (; h + 4 <= group; h += 4) {
                values4(att, w0 + h * paddedLength, paddedLength, values, v0, vStride, count, headSize,
                        out, outOff + h * headSize);
            }
            for (; h < group; h++) {
                values1(att, w0 + h * paddedLength, values, v0, vStride, count, headSize, out,
                        outOff + h * headSize);
            }
        } else {
            for (; h < group; h++) {
                valuesScalar(att, w0 + h * paddedLength, values, v0, vStride, count, headSize, out,
                        outOff + h * headSize);
            }
        }
    }

    /// `x = cap · tanh(x · (1/cap))` over `att[o .. o + n)`, in float as ggml's scale, tanh, scale.
    static void softcap(float[] att, int o, int n, float cap) {
        float inv = 1f / cap;
        for (int i = o; i < o + n; i++) {
            att[i] = (float) Math.tanh(att[i] * inv) * cap;
        }
    }

    private static final float HALF_MIN_NORMAL = 0x1p-14f;
    private static final float HALF_SUB_MAGIC = 0x1.8p23f;

    /// Rounds the softmax weights `att[o .. o + n)` (non-negative) to the nearest half-precision value (ties to
    /// even), as llama.cpp converts them to F16 before the product with its F16 values: normal halves by rounding
    /// the float's mantissa to 10 bits in the integer domain, subnormal ones (below 2^-14: multiples of 2^-24) by a
    /// magic-number addition. Equal to `Float.float16ToFloat(Float.floatToFloat16(w))` for weights up to 65504. The
    /// row is padded to whole key blocks, so rounding past `n` is harmless.
    static void roundWeights(float[] att, int o, int n) {
        for (int p = 0; p < n; p += L) {
            FloatVector x = FloatVector.fromArray(F, att, o + p);
            IntVector b = (IntVector) x.reinterpretShape(I, 0);
            FloatVector normal = (FloatVector) b.add(0x0FFF).add(b.lanewise(VectorOperators.LSHR, 13).and(1)).and(0xFFFFE000)
                    .reinterpretShape(F, 0);
            FloatVector sub = x.mul(0x1p24f).add(HALF_SUB_MAGIC).sub(HALF_SUB_MAGIC).mul(0x1p-24f);
            normal.blend(sub, x.compare(VectorOperators.LT, HALF_MIN_NORMAL)).intoArray(att, o + p);
        }
    }

    /// The factor that turns a widened half pattern, read as a float, back into the half's value (see the class
    /// comment).
    private static final float UNBIAS = 0x1p112f;
    private static final int HALF_BITS = 0x8fffe000;

    /// Scores of four heads over `blocks` key blocks.
    static void scores4(float[] q, int qOff, int hs, short[] keys, int kBase, int blocks, float scale,
                                float[] att, int attOff, int stride) {
        for (int b = 0; b < blocks; b++) {
            for (int sub = 0; sub < BLOCK; sub += 4 * L) {
                FloatVector a00 = FloatVector.zero(F);
                FloatVector a01 = a00;
                FloatVector a02 = a00;
                FloatVector a03 = a00;
                FloatVector a10 = a00;
                FloatVector a11 = a00;
                FloatVector a12 = a00;
                FloatVector a13 = a00;
                FloatVector a20 = a00;
                FloatVector a21 = a00;
                FloatVector a22 = a00;
                FloatVector a23 = a00;
                FloatVector a30 = a00;
                FloatVector a31 = a00;
                FloatVector a32 = a00;
                FloatVector a33 = a00;
                int kb = kBase + b * BLOCK * hs + sub;
                for (int d = 0; d < hs; d++) {
                    int ko = kb + d * BLOCK;
                    FloatVector k0 = (FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko)
                            .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                            .and(HALF_BITS).reinterpretShape(F, 0);
                    FloatVector k1 = (FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko + L)
                            .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                            .and(HALF_BITS).reinterpretShape(F, 0);
                    FloatVector k2 = (FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko + 2 * L)
                            .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                            .and(HALF_BITS).reinterpretShape(F, 0);
                    FloatVector k3 = (FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko + 3 * L)
                            .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                            .and(HALF_BITS).reinterpretShape(F, 0);
                    FloatVector qv = FloatVector.broadcast(F, q[qOff + d] * UNBIAS);
                    a00 = k0.fma(qv, a00);
                    a01 = k1.fma(qv, a01);
                    a02 = k2.fma(qv, a02);
                    a03 = k3.fma(qv, a03);
                    qv = FloatVector.broadcast(F, q[qOff + hs + d] * UNBIAS);
                    a10 = k0.fma(qv, a10);
                    a11 = k1.fma(qv, a11);
                    a12 = k2.fma(qv, a12);
                    a13 = k3.fma(qv, a13);
                    qv = FloatVector.broadcast(F, q[qOff + 2 * hs + d] * UNBIAS);
                    a20 = k0.fma(qv, a20);
                    a21 = k1.fma(qv, a21);
                    a22 = k2.fma(qv, a22);
                    a23 = k3.fma(qv, a23);
                    qv = FloatVector.broadcast(F, q[qOff + 3 * hs + d] * UNBIAS);
                    a30 = k0.fma(qv, a30);
                    a31 = k1.fma(qv, a31);
                    a32 = k2.fma(qv, a32);
                    a33 = k3.fma(qv, a33);
                }
                int o = attOff + b * BLOCK + sub;
                a00.mul(scale).intoArray(att, o);
                a01.mul(scale).intoArray(att, o + L);
                a02.mul(scale).intoArray(att, o + 2 * L);
                a03.mul(scale).intoArray(att, o + 3 * L);
                o += stride;
                a10.mul(scale).intoArray(att, o);
                a11.mul(scale).intoArray(att, o + L);
                a12.mul(scale).intoArray(att, o + 2 * L);
                a13.mul(scale).intoArray(att, o + 3 * L);
                o += stride;
                a20.mul(scale).intoArray(att, o);
                a21.mul(scale).intoArray(att, o + L);
                a22.mul(scale).intoArray(att, o + 2 * L);
                a23.mul(scale).intoArray(att, o + 3 * L);
                o += stride;
                a30.mul(scale).intoArray(att, o);
                a31.mul(scale).intoArray(att, o + L);
                a32.mul(scale).intoArray(att, o + 2 * L);
                a33.mul(scale).intoArray(att, o + 3 * L);
            }
        }
    }

    /// Scores of one head over `blocks` key blocks.
    static void scores1(float[] q, int qOff, int hs, short[] keys, int kBase, int blocks, float scale,
                                float[] att, int attOff) {
        for (int b = 0; b < blocks; b++) {
            for (int sub = 0; sub < BLOCK; sub += 4 * L) {
                FloatVector a0 = FloatVector.zero(F);
                FloatVector a1 = a0;
                FloatVector a2 = a0;
                FloatVector a3 = a0;
                int kb = kBase + b * BLOCK * hs + sub;
                for (int d = 0; d < hs; d++) {
                    int ko = kb + d * BLOCK;
                    FloatVector qv = FloatVector.broadcast(F, q[qOff + d] * UNBIAS);
                    a0 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko).convertShape(VectorOperators.S2I, I, 0))
                            .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(qv, a0);
                    a1 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko + L).convertShape(VectorOperators.S2I, I, 0))
                            .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(qv, a1);
                    a2 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko + 2 * L)
                            .convertShape(VectorOperators.S2I, I, 0))
                            .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(qv, a2);
                    a3 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, keys, ko + 3 * L)
                            .convertShape(VectorOperators.S2I, I, 0))
                            .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(qv, a3);
                }
                int o = attOff + b * BLOCK + sub;
                a0.mul(scale).intoArray(att, o);
                a1.mul(scale).intoArray(att, o + L);
                a2.mul(scale).intoArray(att, o + 2 * L);
                a3.mul(scale).intoArray(att, o + 3 * L);
            }
        }
    }

    /// Weighted values of four heads, `headSize` a multiple of `4·L`.
    static void values4(float[] att, int attOff, int stride, short[] values, int vOff, int vStride, int n,
                                int hs, float[] out, int outOff) {
        for (int d0 = 0; d0 < hs; d0 += 4 * L) {
            FloatVector a00 = FloatVector.zero(F);
            FloatVector a01 = a00;
            FloatVector a02 = a00;
            FloatVector a03 = a00;
            FloatVector a10 = a00;
            FloatVector a11 = a00;
            FloatVector a12 = a00;
            FloatVector a13 = a00;
            FloatVector a20 = a00;
            FloatVector a21 = a00;
            FloatVector a22 = a00;
            FloatVector a23 = a00;
            FloatVector a30 = a00;
            FloatVector a31 = a00;
            FloatVector a32 = a00;
            FloatVector a33 = a00;
            for (int p = 0; p < n; p++) {
                int vo = vOff + p * vStride + d0;
                FloatVector v0 = (FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo)
                        .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                        .and(HALF_BITS).reinterpretShape(F, 0);
                FloatVector v1 = (FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo + L)
                        .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                        .and(HALF_BITS).reinterpretShape(F, 0);
                FloatVector v2 = (FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo + 2 * L)
                        .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                        .and(HALF_BITS).reinterpretShape(F, 0);
                FloatVector v3 = (FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo + 3 * L)
                        .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 13)
                        .and(HALF_BITS).reinterpretShape(F, 0);
                int ao = attOff + p;
                FloatVector w = FloatVector.broadcast(F, att[ao] * UNBIAS);
                a00 = v0.fma(w, a00);
                a01 = v1.fma(w, a01);
                a02 = v2.fma(w, a02);
                a03 = v3.fma(w, a03);
                w = FloatVector.broadcast(F, att[ao + stride] * UNBIAS);
                a10 = v0.fma(w, a10);
                a11 = v1.fma(w, a11);
                a12 = v2.fma(w, a12);
                a13 = v3.fma(w, a13);
                w = FloatVector.broadcast(F, att[ao + 2 * stride] * UNBIAS);
                a20 = v0.fma(w, a20);
                a21 = v1.fma(w, a21);
                a22 = v2.fma(w, a22);
                a23 = v3.fma(w, a23);
                w = FloatVector.broadcast(F, att[ao + 3 * stride] * UNBIAS);
                a30 = v0.fma(w, a30);
                a31 = v1.fma(w, a31);
                a32 = v2.fma(w, a32);
                a33 = v3.fma(w, a33);
            }
            int o = outOff + d0;
            a00.intoArray(out, o);
            a01.intoArray(out, o + L);
            a02.intoArray(out, o + 2 * L);
            a03.intoArray(out, o + 3 * L);
            o += hs;
            a10.intoArray(out, o);
            a11.intoArray(out, o + L);
            a12.intoArray(out, o + 2 * L);
            a13.intoArray(out, o + 3 * L);
            o += hs;
            a20.intoArray(out, o);
            a21.intoArray(out, o + L);
            a22.intoArray(out, o + 2 * L);
            a23.intoArray(out, o + 3 * L);
            o += hs;
            a30.intoArray(out, o);
            a31.intoArray(out, o + L);
            a32.intoArray(out, o + 2 * L);
            a33.intoArray(out, o + 3 * L);
        }
    }

    /// Weighted values of one head, `headSize` a multiple of `4·L`.
    static void values1(float[] att, int attOff, short[] values, int vOff, int vStride, int n, int hs,
                                float[] out, int outOff) {
        for (int d0 = 0; d0 < hs; d0 += 4 * L) {
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            for (int p = 0; p < n; p++) {
                int vo = vOff + p * vStride + d0;
                FloatVector w = FloatVector.broadcast(F, att[attOff + p] * UNBIAS);
                a0 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo).convertShape(VectorOperators.S2I, I, 0))
                        .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(w, a0);
                a1 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo + L).convertShape(VectorOperators.S2I, I, 0))
                        .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(w, a1);
                a2 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo + 2 * L)
                        .convertShape(VectorOperators.S2I, I, 0))
                        .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(w, a2);
                a3 = ((FloatVector) ((IntVector) ShortVector.fromArray(S, values, vo + 3 * L)
                        .convertShape(VectorOperators.S2I, I, 0))
                        .lanewise(VectorOperators.LSHL, 13).and(HALF_BITS).reinterpretShape(F, 0)).fma(w, a3);
            }
            int o = outOff + d0;
            a0.intoArray(out, o);
            a1.intoArray(out, o + L);
            a2.intoArray(out, o + 2 * L);
            a3.intoArray(out, o + 3 * L);
        }
    }

    /// Weighted values of one head, any `headSize`.
    private static void valuesScalar(float[] att, int attOff, short[] values, int vOff, int vStride, int n, int hs,
                                     float[] out, int outOff) {
        for (int d = 0; d < hs; d++) {
            out[outOff + d] = 0f;
        }
        for (int p = 0; p < n; p++) {
            float w = att[attOff + p];
            int vo = vOff + p * vStride;
            for (int d = 0; d < hs; d++) {
                out[outOff + d] = Math.fma(Float.float16ToFloat(values[vo + d]), w, out[outOff + d]);
            }
        }
    }

    /// Scalar reference for tests: the same attention with sums in double and `Math.exp`.
    static void reference(float[] q, int qOff, int group, int headSize, short[] keys, int kvHead, int paddedLength,
                          short[] values, int vOff, int vStride, int n, float scale, float[] out, int outOff) {
        reference(q, qOff, group, headSize, keys, kvHead, paddedLength, values, vOff, vStride, 0, n, scale, 0f, out,
                outOff);
    }

    /// Scalar reference of the windowed, soft-capped [#attend]: positions before `from` get no weight.
    static void reference(float[] q, int qOff, int group, int headSize, short[] keys, int kvHead, int paddedLength,
                          short[] values, int vOff, int vStride, int from, int n, float scale, float softcap,
                          float[] out, int outOff) {
        for (int h = 0; h < group; h++) {
            double[] s = new double[n];
            double max = Double.NEGATIVE_INFINITY;
            for (int p = from; p < n; p++) {
                int ko = keyOffset(kvHead, p, headSize, paddedLength);
                double dot = 0;
                for (int d = 0; d < headSize; d++) {
                    dot += (double) q[qOff + h * headSize + d] * Float.float16ToFloat(keys[ko + d * BLOCK]);
                }
                s[p] = dot * scale;
                if (softcap > 0) {
                    s[p] = softcap * Math.tanh(s[p] / softcap);
                }
                max = Math.max(max, s[p]);
            }
            double sum = 0;
            for (int p = from; p < n; p++) {
                s[p] = Math.exp(s[p] - max);
                sum += s[p];
            }
            for (int d = 0; d < headSize; d++) {
                double o = 0;
                for (int p = from; p < n; p++) {
                    o += half((float) (s[p] / sum)) * Float.float16ToFloat(values[vOff + p * vStride + d]);
                }
                out[outOff + h * headSize + d] = (float) o;
            }
        }
    }
}
