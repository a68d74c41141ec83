package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;

/// The quantized key/value cache kernels against scalar references: the blocks written on store are byte for
/// byte those of ggml's reference quantizers (transcribed below in double precision where C computes in float only
/// where the result cannot differ), they read back as ggml's own dequantization reads them (the `Q8_0`/`Q4_0`
/// tensors of `quant-blocks.gguf`), and attention over them equals attention over their dequantized values.
class QuantizedKVTest {

    /// Random rows with a spread of magnitudes, an all-zero block, a block of one value, and exact ties.
    private static float[] randomRow(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            float scale = (float) Math.pow(10, r.nextInt(7) - 4);
            x[i] = (float) r.nextGaussian() * scale;
        }
        java.util.Arrays.fill(x, 32, 64, 0f);
        java.util.Arrays.fill(x, 64, 96, -1.25f);
        for (int j = 0; j < 32; j++) { // max 127: x = j + 0.5 are exact ties of roundf, -x too
            x[96 + j] = j % 2 == 0 ? j + 0.5f : -(j + 0.5f);
        }
        x[96] = 127f;
        return x;
    }

    private static float half(byte[] b, int o) {
        return Float.float16ToFloat((short) ((b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8));
    }

    @Test
    void q8_0MatchesGgmlsReferenceQuantizer() {
        Random r = new Random(1);
        int n = 32 * 40;
        for (int round = 0; round < 20; round++) {
            float[] x = randomRow(r, n);
            byte[] got = new byte[n / 32 * 34 + 5];
            QuantizedKV.storeQ8_0(x, 0, 1, n, got, 5);
            for (int b = 0; b < n / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(x[b * 32 + j]));
                }
                float d = amax / 127f;
                float id = d == 0 ? 0 : 1f / d;
                int o = 5 + b * 34;
                assertThat((short) ((got[o] & 0xFF) | got[o + 1] << 8)).isEqualTo(Float.floatToFloat16(d));
                for (int j = 0; j < 32; j++) {
                    double v = x[b * 32 + j] * id; // the float product, then C's roundf
                    long want = (long) (Math.signum(v) * Math.floor(Math.abs(v) + 0.5));
                    assertThat(got[o + 2 + j]).as("block %d element %d (%s)", b, j, v).isEqualTo((byte) want);
                }
            }
        }
    }

    @Test
    void q4_0MatchesGgmlsReferenceQuantizer() {
        Random r = new Random(2);
        int n = 32 * 40;
        for (int round = 0; round < 20; round++) {
            float[] x = randomRow(r, n);
            byte[] got = new byte[n / 32 * 18];
            // a strided source, as a tiled batch stores it
            float[] strided = new float[n * 3];
            for (int i = 0; i < n; i++) {
                strided[1 + 3 * i] = x[i];
            }
            QuantizedKV.storeQ4_0(strided, 1, 3, n, got, 0);
            for (int b = 0; b < n / 32; b++) {
                float max = 0;
                for (int j = 0; j < 32; j++) {
                    if (Math.abs(x[b * 32 + j]) > Math.abs(max)) {
                        max = x[b * 32 + j];
                    }
                }
                float d = max / -8f;
                float id = d == 0 ? 0 : 1f / d;
                int o = b * 18;
                assertThat((short) ((got[o] & 0xFF) | got[o + 1] << 8)).isEqualTo(Float.floatToFloat16(d));
                for (int j = 0; j < 32; j++) {
                    float v = x[b * 32 + j] * id + 8.5f;
                    int want = Math.min(15, (int) Math.floor(v));
                    int q = j < 16 ? got[o + 2 + j] & 15 : (got[o + 2 + j - 16] & 0xFF) >> 4;
                    assertThat(q).as("block %d element %d", b, j).isEqualTo(want);
                }
            }
        }
    }

    @Test
    void roundsHalvesAwayFromZeroAsCsRoundf() {
        assertThat(QuantizedKV.roundHalfAway(2.5f)).isEqualTo(3);
        assertThat(QuantizedKV.roundHalfAway(-2.5f)).isEqualTo(-3);
        assertThat(QuantizedKV.roundHalfAway(0.49999997f)).isZero();
        assertThat(QuantizedKV.roundHalfAway(-0.49999997f)).isZero();
        assertThat(QuantizedKV.roundHalfAway(126.5f)).isEqualTo(127);
        assertThat(QuantizedKV.roundHalfAway(-1.5f)).isEqualTo(-2);
    }

    @Test
    void roundTripErrorIsWithinHalfAStep() {
        Random r = new Random(3);
        int n = 32 * 8;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        byte[] q8 = new byte[n / 32 * 34];
        byte[] q4 = new byte[n / 32 * 18];
        QuantizedKV.storeQ8_0(x, 0, 1, n, q8, 0);
        QuantizedKV.storeQ4_0(x, 0, 1, n, q4, 0);
        float[] y8 = new float[n];
        float[] y4 = new float[n];
        QuantizedKV.dequantize(true, q8, 0, 0, n, y8, 0);
        QuantizedKV.dequantize(false, q4, 0, 0, n, y4, 0);
        for (int i = 0; i < n; i++) {
            float d8 = half(q8, i / 32 * 34);
            float d4 = Math.abs(half(q4, i / 32 * 18));
            // the scale is rounded to half precision, so a step is d · (1 ± 2^-11): allow a little over half
            assertThat(y8[i]).isCloseTo(x[i], within(0.51f * d8 + 1e-3f * Math.abs(x[i])));
            // Q4_0 maps the largest magnitude to -8 and clips +8 to 7: up to one and a half steps at that end
            assertThat(y4[i]).isCloseTo(x[i], within(1.51f * d4 + 1e-3f * Math.abs(x[i])));
        }
    }

    /// The plain dequantization reads ggml's blocks as ggml does (`dequantize_row_q8_0`, `dequantize_row_q4_0`).
    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0"})
    void readsGgmlsBlocksAsGgml(String type) throws IOException {
        ValueLayout.OfFloat le = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        try (GGUFFile file = GGUFFile.open(SharedData.require("reference/quant-blocks.gguf"))) {
            TensorInfo q = file.tensor(type + ".q");
            MemorySegment want = file.tensorData(file.tensor(type + ".f32"));
            byte[] blocks = file.tensorData(q).toArray(ValueLayout.JAVA_BYTE);
            int n = Math.toIntExact(q.elementCount());
            float[] got = new float[n];
            // the whole tensor as one row, read in head-sized slices of 8, 32 and 64 elements
            for (int e = 0; e < n; e += 64) {
                QuantizedKV.dequantize(type.equals("Q8_0"), blocks, 0, e, 8, got, e);
                QuantizedKV.dequantize(type.equals("Q8_0"), blocks, 0, e + 8, 24, got, e + 8);
                QuantizedKV.dequantize(type.equals("Q8_0"), blocks, 0, e + 32, 32, got, e + 32);
            }
            for (int i = 0; i < n; i++) {
                assertThat(got[i]).as("element %d", i).isEqualTo(want.get(le, 4L * i));
            }
        }
    }

    /// Scores, softmax and weighted values over a quantized cache equal a double-precision attention over the
    /// dequantized keys and values, for head sizes 8 (slices of one block), 32, 64 and 128, several query heads
    /// per key/value head, windows that start past 0, and every pairing with a half-precision side.
    @ParameterizedTest
    @ValueSource(ints = {8, 16, 32, 64, 128})
    void attentionEqualsAttentionOverTheDequantizedCache(int hs) {
        Random r = new Random(hs);
        int kvHeads = Math.max(1, 64 / hs);
        int kvDim = kvHeads * hs;
        for (String types : new String[] {"q8_0/q8_0", "q4_0/q4_0", "q8_0/q4_0", "f16/q4_0", "q8_0/f16"}) {
            boolean kq8 = types.startsWith("q8_0");
            boolean kHalf = types.startsWith("f16");
            boolean vq8 = types.endsWith("q8_0");
            boolean vHalf = types.endsWith("f16");
            for (int[] window : new int[][] {{0, 1}, {0, 77}, {30, 130}, {64, 65}}) {
                int from = window[0];
                int n = window[1];
                int group = 1 + r.nextInt(5);
                int kvHead = r.nextInt(kvHeads);
                int padded = Attention.paddedLength(n);
                int rowK = kvDim / 32 * (kq8 ? 34 : 18);
                int rowV = kvDim / 32 * (vq8 ? 34 : 18);
                byte[] qk = new byte[n * rowK];
                byte[] qv = new byte[n * rowV];
                short[] hk = new short[padded * kvDim];
                short[] hv = new short[n * kvDim];
                float[][] keys = new float[n][kvDim];
                float[][] values = new float[n][kvDim];
                for (int p = 0; p < n; p++) {
                    float[] k = new float[kvDim];
                    float[] v = new float[kvDim];
                    for (int i = 0; i < kvDim; i++) {
                        k[i] = (float) r.nextGaussian() * 2;
                        v[i] = (float) r.nextGaussian();
                    }
                    if (kHalf) {
                        for (int h = 0; h < kvHeads; h++) {
                            Attention.storeKey(hk, h, p, hs, padded, k, h * hs, 1);
                        }
                        for (int i = 0; i < kvDim; i++) {
                            keys[p][i] = Attention.half(k[i]);
                        }
                    } else {
                        if (kq8) {
                            QuantizedKV.storeQ8_0(k, 0, 1, kvDim, qk, p * rowK);
                        } else {
                            QuantizedKV.storeQ4_0(k, 0, 1, kvDim, qk, p * rowK);
                        }
                        QuantizedKV.dequantize(kq8, qk, p * rowK, 0, kvDim, keys[p], 0);
                    }
                    if (vHalf) {
                        Attention.storeValues(hv, p * kvDim, v, 0, 1, kvDim);
                        for (int i = 0; i < kvDim; i++) {
                            values[p][i] = Attention.half(v[i]);
                        }
                    } else {
                        if (vq8) {
                            QuantizedKV.storeQ8_0(v, 0, 1, kvDim, qv, p * rowV);
                        } else {
                            QuantizedKV.storeQ4_0(v, 0, 1, kvDim, qv, p * rowV);
                        }
                        QuantizedKV.dequantize(vq8, qv, p * rowV, 0, kvDim, values[p], 0);
                    }
                }
                float[] q = new float[group * hs];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) r.nextGaussian();
                }
                float scale = (float) (1 / Math.sqrt(hs));
                int e0 = kvHead * hs;
                float[] att = new float[group * padded];
                float[] out = new float[group * hs + 2];
                if (kHalf) {
                    Attention.scoresHalf(q, 0, group, hs, hk, kvHead, padded, from, n, scale, att, 0);
                } else if (kq8) {
                    QuantizedKV.scoresQ8_0(q, 0, group, hs, qk, rowK, e0, from, n, scale, att, 0, padded);
                } else {
                    QuantizedKV.scoresQ4_0(q, 0, group, hs, qk, rowK, e0, from, n, scale, att, 0, padded);
                }
                Attention.normalize(att, 0, group, padded, from, n, 0f, vHalf);
                if (vHalf) {
                    Attention.valuesHalf(att, 0, group, padded, hs, hv, e0, kvDim, from, n, out, 2);
                } else if (vq8) {
                    QuantizedKV.valuesQ8_0(att, 0, padded, group, qv, rowV, e0, from, n, hs, out, 2);
                } else {
                    QuantizedKV.valuesQ4_0(att, 0, padded, group, qv, rowV, e0, from, n, hs, out, 2);
                }
                for (int h = 0; h < group; h++) {
                    double[] s = new double[n];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int p = from; p < n; p++) {
                        double dot = 0;
                        for (int d = 0; d < hs; d++) {
                            dot += (double) q[h * hs + d] * keys[p][e0 + d];
                        }
                        s[p] = dot * scale;
                        max = Math.max(max, s[p]);
                    }
                    double sum = 0;
                    for (int p = from; p < n; p++) {
                        s[p] = Math.exp(s[p] - max);
                        sum += s[p];
                    }
                    for (int d = 0; d < hs; d++) {
                        double o = 0;
                        for (int p = from; p < n; p++) {
                            o += s[p] / sum * values[p][e0 + d];
                        }
                        // the half-precision value path rounds its weights to half precision (2^-11 relative)
                        float tolerance = (vHalf ? 2e-3f : 2e-5f) * (float) Math.max(1, Math.abs(o)) + 1e-5f;
                        assertThat(out[2 + h * hs + d]).as("%s hs %d window [%d, %d) head %d d %d", types, hs,
                                from, n, h, d).isCloseTo((float) o, within(tolerance));
                    }
                }
            }
        }
    }
}
