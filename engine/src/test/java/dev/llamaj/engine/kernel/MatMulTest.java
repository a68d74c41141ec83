package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import dev.llamaj.gguf.GGMLType;

/// The batched kernels against scalar references: `matMul` for every type (odd row counts, a few tokens, several
/// column slices, 1 to 3 threads, results independent of the batch), attention, and the tiled helpers.
class MatMulTest {

    @ParameterizedTest
    @MethodSource("dev.llamaj.engine.kernel.KernelsTest#supportedTypes")
    void matMulMatchesReference(GGMLType type) {
        int b = type.blockSize() == 1 ? 32 : type.blockSize();
        int[][] shapes = {{37, 2 * b, 5}, {64, 3 * MatMul.KC / b * b + b, 33}, {9, b, 70}, {8, 4 * b, 1}};
        try (Arena arena = Arena.ofShared();
             Parallel one = new Parallel(1);
             Parallel two = new Parallel(2);
             Parallel three = new Parallel(3)) {
            long seed = 1;
            for (int[] shape : shapes) {
                int rows = shape[0];
                int cols = shape[1];
                int tokens = shape[2];
                Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, seed++),
                        rows, cols);
                float[] x = RandomWeights.floats(Kernels.tiledSize(cols, tokens) + 3, seed++);
                float[] out1 = new float[Kernels.tiledSize(rows, tokens) + 2];
                float[] out2 = out1.clone();
                float[] out3 = out1.clone();
                float[] ref = out1.clone();
                Kernels.matMul(one, m, x, 3, out1, 2, tokens);
                Kernels.matMul(two, m, x, 3, out2, 2, tokens);
                Kernels.matMul(three, m, x, 3, out3, 2, tokens);
                MatMul.reference(m, x, 3, ref, 2, tokens);
                assertThat(out2).as("%s %dx%d x %d on 2 threads", type, rows, cols, tokens).isEqualTo(out1);
                assertThat(out3).as("%s %dx%d x %d on 3 threads", type, rows, cols, tokens).isEqualTo(out1);
                float[] row = new float[cols];
                for (int r = 0; r < rows; r++) {
                    m.dequantizeRow(r, row, 0);
                    for (int t = 0; t < tokens; t++) {
                        double magnitude = 0;
                        for (int c = 0; c < cols; c++) {
                            magnitude += Math.abs((double) row[c] * x[3 + Kernels.tiledIndex(cols, t, c)]);
                        }
                        int i = 2 + Kernels.tiledIndex(rows, t, r);
                        assertThat((double) out1[i]).as("%s %dx%d token %d row %d", type, rows, cols, t, r)
                                .isCloseTo(ref[i], within(2e-6 * magnitude + 1e-30));
                    }
                }
                // a token's result does not depend on the rest of the batch
                if (tokens > 1) {
                    int t = tokens - 1;
                    float[] single = new float[Kernels.tiledSize(cols, 1)];
                    for (int c = 0; c < cols; c++) {
                        single[Kernels.tiledIndex(cols, 0, c)] = x[3 + Kernels.tiledIndex(cols, t, c)];
                    }
                    float[] outSingle = new float[Kernels.tiledSize(rows, 1)];
                    Kernels.matMul(two, m, single, 0, outSingle, 0, 1);
                    for (int r = 0; r < rows; r++) {
                        assertThat(outSingle[Kernels.tiledIndex(rows, 0, r)])
                                .isEqualTo(out1[2 + Kernels.tiledIndex(rows, t, r)]);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.llamaj.engine.kernel.KernelsTest#supportedTypes")
    void panelDequantizationIsBitExact(GGMLType type) {
        int n = 8 * (type.blockSize() == 1 ? 37 : type.blockSize());
        try (Arena arena = Arena.ofConfined()) {
            for (int lead : new int[] {0, 5}) {
                var w = RandomWeights.segment(arena, type, lead, n, 99 + lead);
                float[] want = new float[n + 3];
                float[] got = new float[n + 3];
                new Matrix(type, w.asSlice(lead), 1, n).dequantizeRow(0, want, 3);
                MatMul.dequantizer(type, Matrix.Layout.GGUF).dequantize(w, lead, got, 3, n);
                for (int i = 0; i < want.length; i++) {
                    assertThat(Float.floatToRawIntBits(got[i])).as("%s [%d]", type, i)
                            .isEqualTo(Float.floatToRawIntBits(want[i]));
                }
            }
        }
    }

    @Test
    void attentionMatchesReference() {
        for (int headSize : new int[] {8, 64, 128}) {
            for (int group : new int[] {1, 2, 4, 5}) {
                for (int n : new int[] {1, 7, 64, 65, 200}) {
                    int kvHeads = 2;
                    int padded = Attention.paddedLength(n + 3);
                    short[] keys = RandomWeights.halves(kvHeads * padded * headSize, n);
                    int kvDim = kvHeads * headSize;
                    short[] values = RandomWeights.halves(padded * kvDim, n + 1);
                    float[] q = RandomWeights.floats(group * headSize + 1, n + 2);
                    for (int i = 0; i < q.length; i++) {
                        q[i] *= 3;
                    }
                    float scale = (float) (1 / Math.sqrt(headSize));
                    float[] att = new float[group * padded + 5];
                    float[] out = new float[group * headSize + 4];
                    float[] ref = new float[group * headSize + 4];
                    Attention.attend(q, 1, group, headSize, keys, 1, padded, values, headSize, kvDim, n, scale,
                            att, 5, out, 4);
                    Attention.reference(q, 1, group, headSize, keys, 1, padded, values, headSize, kvDim, n, scale,
                            ref, 4);
                    for (int i = 4; i < out.length; i++) {
                        // weights rounded to half precision: a weight on a rounding boundary may go either way
                        assertThat(out[i]).as("hs %d group %d n %d [%d]", headSize, group, n, i)
                                .isCloseTo(ref[i], within(1e-3f));
                    }
                    assertThat(out[3]).isZero();
                }
            }
        }
    }

    /// A sliding window (`from > 0`, inside and across key blocks) and soft-capped scores: the same as the scalar
    /// reference, and different from full attention (so a kernel that ignored the window would fail).
    @Test
    void windowedSoftCappedAttentionMatchesReference() {
        int headSize = 64;
        int kvHeads = 2;
        for (int group : new int[] {1, 4, 5}) {
            for (int[] range : new int[][] {{1, 7}, {60, 70}, {64, 130}, {3, 200}, {199, 200}}) {
                int from = range[0];
                int n = range[1];
                for (float cap : new float[] {0f, 5f}) {
                    int padded = Attention.paddedLength(n);
                    short[] keys = RandomWeights.halves(kvHeads * padded * headSize, n);
                    int kvDim = kvHeads * headSize;
                    short[] values = RandomWeights.halves(padded * kvDim, n + 1);
                    float[] q = RandomWeights.floats(group * headSize, n + 2);
                    for (int i = 0; i < q.length; i++) {
                        q[i] *= 8;
                    }
                    float scale = 0.125f;
                    float[] att = new float[group * padded];
                    float[] out = new float[group * headSize];
                    float[] ref = new float[group * headSize];
                    float[] full = new float[group * headSize];
                    Attention.attend(q, 0, group, headSize, keys, 1, padded, values, headSize, kvDim, from, n, scale,
                            cap, att, 0, out, 0);
                    Attention.reference(q, 0, group, headSize, keys, 1, padded, values, headSize, kvDim, from, n,
                            scale, cap, ref, 0);
                    Attention.reference(q, 0, group, headSize, keys, 1, padded, values, headSize, kvDim, 0, n,
                            scale, 0f, full, 0);
                    double differs = 0;
                    for (int i = 0; i < out.length; i++) {
                        assertThat(out[i]).as("group %d [%d, %d) cap %s [%d]", group, from, n, cap, i)
                                .isCloseTo(ref[i], within(1e-3f));
                        differs = Math.max(differs, Math.abs(ref[i] - full[i]));
                    }
                    assertThat(differs).as("window or cap changes the result").isGreaterThan(1e-3);
                }
            }
        }
    }

    @Test
    void storeKeyWritesTheTransposedLayout() {
        int headSize = 8;
        int padded = Attention.paddedLength(100);
        short[] keys = new short[2 * padded * headSize];
        float[] k = new float[2 * headSize];
        for (int i = 0; i < k.length; i++) {
            k[i] = i + 1.0001f;
        }
        Attention.storeKey(keys, 1, 70, headSize, padded, k, headSize, 1);
        for (int d = 0; d < headSize; d++) {
            assertThat(keys[Attention.keyOffset(1, 70, headSize, padded) + d * Attention.BLOCK])
                    .isEqualTo(Float.floatToFloat16(headSize + d + 1.0001f));
        }
    }

    /// The kernels widen half patterns with integer operations and move the 2^112 onto the other factor; a score or
    /// weighted value of one term must still be exactly the float product, for every finite half (subnormals, zeros
    /// of both signs and the largest included).
    @Test
    void attentionReadsEveryFiniteHalfExactly() {
        int hs = 4 * Simd.L;
        int group = 4;
        float[] q = {0.7f, -1.25f, 3.0009766f, 65504f * 0.5f};
        for (int i = 0; i < q.length; i++) {
            q[i] = Attention.half(q[i]);
        }
        float scale = 0.125f;
        int padded = Attention.BLOCK;
        short[] keys = new short[padded * hs];
        float[] att = new float[group * padded];
        short[] values = new short[hs];
        float[] out = new float[group * hs];
        float[] w = new float[group * padded];
        for (int g = 0; g < group; g++) {
            w[g * padded] = Attention.half(q[g] / 65504f);
        }
        for (int start = 0; start < 0x10000; start += hs) {
            short[] pattern = new short[hs];
            for (int i = 0; i < hs; i++) {
                int bits = start + i;
                // exponent 31 is infinity and NaN, which a cache of finite activations never holds
                pattern[i] = (short) (((bits >> 10) & 0x1f) == 0x1f ? 0 : bits);
            }
            // headSize 1: key d = 0 of position p is keys[p]
            System.arraycopy(pattern, 0, keys, 0, hs);
            Attention.scores4(q, 0, 1, keys, 0, 1, scale, att, 0, padded);
            System.arraycopy(pattern, 0, values, 0, hs);
            Attention.values4(w, 0, padded, values, 0, hs, 1, hs, out, 0);
            for (int g = 0; g < group; g++) {
                for (int i = 0; i < hs; i++) {
                    float k = Float.float16ToFloat(pattern[i]);
                    // the sums start at +0, so a product of -0 comes out +0
                    assertThat(att[g * padded + i]).as("score of q %s, key %s", q[g], k)
                            .isEqualTo((q[g] * k + 0f) * scale);
                    assertThat(out[g * hs + i]).as("weight %s times value %s", w[g * padded], k)
                            .isEqualTo(w[g * padded] * k + 0f);
                }
            }
        }
    }

    @Test
    void roundWeightsEqualsTheJdkConversion() {
        SplittableRandom random = new SplittableRandom(13);
        float[] w = new float[Simd.L];
        for (int k = 0; k < 100_000; k++) {
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) Math.pow(2, random.nextDouble(-30, 15));
                if (k % 7 == 0) { // exact ties and boundaries
                    w[i] = Float.float16ToFloat((short) random.nextInt(0x7bff)) * (1 + 0x1p-11f);
                }
            }
            float[] wr = w.clone();
            Attention.roundWeights(wr, 0, w.length);
            for (int i = 0; i < w.length; i++) {
                assertThat(Float.floatToRawIntBits(wr[i])).as("weight half(%s)", w[i])
                        .isEqualTo(Float.floatToRawIntBits(Float.float16ToFloat(Float.floatToFloat16(w[i]))));
            }
        }
    }

    @Test
    void rmsNormTiledEqualsRmsNormPerToken() {
        int width = 100;
        int tokens = Kernels.TILE + 3;
        int tiles = 2;
        float[] x = RandomWeights.floats(Kernels.tiledSize(width, tokens), 11);
        float[] weight = RandomWeights.floats(width, 12);
        float[] out = new float[x.length];
        Kernels.rmsNormTiled(out, x, weight, width, tiles, 1e-5f);
        float[] row = new float[width];
        float[] want = new float[width];
        for (int t = 0; t < tokens; t++) {
            double ss = 0;
            for (int f = 0; f < width; f++) {
                row[f] = x[Kernels.tiledIndex(width, t, f)];
                ss += (double) (row[f] * row[f]);
            }
            float mean = (float) (ss / width);
            float scale = 1.0f / (float) Math.sqrt(mean + 1e-5f);
            for (int f = 0; f < width; f++) {
                want[f] = (row[f] * scale) * weight[f];
                assertThat(out[Kernels.tiledIndex(width, t, f)]).as("token %d feature %d", t, f)
                        .isEqualTo(want[f]);
            }
        }
    }

    /// Both pairings against a scalar rotation: NORM rotates `(2i, 2i+1)`, NEOX `(i, i + pairs)`; each fails
    /// if the kernel used the other one. `pairs` below half the head leaves the rest of the head unchanged (partial
    /// rotary).
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void ropeTiledEqualsScalarRotation(boolean neox) {
        int heads = 3;
        int headSize = 8;
        int pairs = 3;
        int step = neox ? 1 : 2;
        int second = neox ? pairs : 1;
        int width = heads * headSize;
        int tokens = 2 * Kernels.TILE;
        int stride = 300;
        int pos0 = 17;
        float[] cos = RandomWeights.floats(pairs * stride, 1);
        float[] sin = RandomWeights.floats(pairs * stride, 2);
        float[] x = RandomWeights.floats(Kernels.tiledSize(width, tokens), 3);
        float[] want = x.clone();
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < pairs; i++) {
                    int f0 = h * headSize + (neox ? i : 2 * i);
                    int f1 = f0 + (neox ? pairs : 1);
                    float x0 = x[Kernels.tiledIndex(width, t, f0)];
                    float x1 = x[Kernels.tiledIndex(width, t, f1)];
                    float c = cos[i * stride + pos0 + t];
                    float s = sin[i * stride + pos0 + t];
                    want[Kernels.tiledIndex(width, t, f0)] = x0 * c - x1 * s;
                    want[Kernels.tiledIndex(width, t, f1)] = x0 * s + x1 * c;
                }
            }
        }
        Kernels.ropeTiled(x, width, heads, headSize, pairs, step, second, tokens / Kernels.TILE, cos, sin, stride,
                pos0);
        assertThat(x).isEqualTo(want);
    }

    @Test
    void addMatchesScalar() {
        float[] x = RandomWeights.floats(1000, 1);
        float[] y = RandomWeights.floats(1000, 2);
        float[] want = x.clone();
        for (int i = 0; i < 999; i++) {
            want[i] += y[i];
        }
        Kernels.add(x, y, 999);
        assertThat(x).isEqualTo(want);
    }
}
