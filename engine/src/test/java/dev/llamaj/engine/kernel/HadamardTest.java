package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// The fast Walsh-Hadamard transform against the matrix it stands for, built independently (Sylvester's
/// recursion, as llama.cpp generates it, multiplied out in double), and the property the quantized cache relies on:
/// attention over rotated queries, keys and values, with the output rotated back, is attention over the plain ones.
class HadamardTest {

    /// `H_n / sqrt(n)` by Sylvester's recursion: the top-left `s × s` block is copied right, down, and negated
    /// down-right, for `s = 1, 2, 4, ...`.
    private static double[][] sylvester(int n) {
        double[][] h = new double[n][n];
        h[0][0] = 1 / Math.sqrt(n);
        for (int s = 1; s < n; s *= 2) {
            for (int i = 0; i < s; i++) {
                for (int j = 0; j < s; j++) {
                    h[i + s][j] = h[i][j];
                    h[i][j + s] = h[i][j];
                    h[i + s][j + s] = -h[i][j];
                }
            }
        }
        return h;
    }

    private static float[] gaussian(Random r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * scale);
        }
        return x;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4, 8, 16, 32, 64, 128, 256})
    void transformIsTheNormalisedSylvesterMatrix(int n) {
        double[][] h = sylvester(n);
        Random r = new Random(n);
        for (int round = 0; round < 20; round++) {
            float[] x = gaussian(r, n + 7, Math.pow(10, r.nextInt(5) - 2));
            float[] y = x.clone();
            Hadamard.transform(y, 3, n);
            double norm = 0;
            for (int j = 0; j < n; j++) {
                norm += (double) x[3 + j] * x[3 + j];
            }
            double tolerance = 1e-6 * Math.sqrt(norm) * (1 + Math.log(n));
            for (int i = 0; i < n; i++) {
                double want = 0;
                for (int j = 0; j < n; j++) {
                    want += h[i][j] * x[3 + j];
                }
                assertThat((double) y[3 + i]).as("n %d row %d", n, i).isCloseTo(want, within(tolerance));
            }
            for (int i : new int[] {0, 1, 2, n + 3, n + 4, n + 5, n + 6}) {
                assertThat(y[i]).as("outside the block").isEqualTo(x[i]);
            }
        }
    }

    /// The matrix itself (the transform of each unit vector) is orthonormal and symmetric: `H · H = I`.
    @ParameterizedTest
    @ValueSource(ints = {64, 128})
    void theMatrixIsOrthonormalAndSymmetric(int n) {
        float[][] columns = new float[n][];
        for (int j = 0; j < n; j++) {
            columns[j] = new float[n];
            columns[j][j] = 1;
            Hadamard.transform(columns[j], 0, n);
            for (int i = 0; i < n; i++) { // an outlier is spread evenly: every entry is ±1/sqrt(n)
                assertThat(Math.abs(columns[j][i])).isEqualTo(1f / (float) Math.sqrt(n));
            }
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                assertThat(columns[j][i]).isEqualTo(columns[i][j]);
                double dot = 0;
                for (int k = 0; k < n; k++) {
                    dot += (double) columns[i][k] * columns[j][k];
                }
                assertThat(dot).isCloseTo(i == j ? 1 : 0, within(1e-6));
            }
        }
    }

    /// Twice gives the input back, and dot products are kept, to float rounding.
    @Test
    void twiceIsTheIdentityAndDotProductsAreKept() {
        Random r = new Random(7);
        for (int n = 1; n <= 512; n *= 2) {
            float[] x = gaussian(r, n, 3);
            float[] k = gaussian(r, n, 3);
            float[] y = x.clone();
            Hadamard.transform(y, 0, n);
            Hadamard.transform(y, 0, n);
            for (int i = 0; i < n; i++) {
                assertThat(y[i]).isCloseTo(x[i], within(1e-5f * 3 * (1 + (float) Math.log(n))));
            }
            float[] hx = x.clone();
            float[] hk = k.clone();
            Hadamard.transform(hx, 0, n);
            Hadamard.transform(hk, 0, n);
            double plain = 0;
            double rotated = 0;
            for (int i = 0; i < n; i++) {
                plain += (double) x[i] * k[i];
                rotated += (double) hx[i] * hk[i];
            }
            assertThat(rotated).isCloseTo(plain, within(1e-5 * 9 * n));
        }
    }

    /// [Hadamard#rotate] transforms each block on its own (here 3 heads of 128 in blocks of 64) and nothing around.
    @Test
    void rotateTransformsEachBlock() {
        Random r = new Random(11);
        float[] x = gaussian(r, 5 + 3 * 128 + 5, 1);
        float[] got = x.clone();
        Hadamard.rotate(got, 5, 3 * 128, 64);
        float[] want = x.clone();
        for (int b = 0; b < 6; b++) {
            Hadamard.transform(want, 5 + 64 * b, 64);
        }
        assertThat(got).containsExactly(want);
    }

    @Test
    void powersOfTwo() {
        assertThat(Hadamard.isPowerOfTwo(1)).isTrue();
        assertThat(Hadamard.isPowerOfTwo(64)).isTrue();
        assertThat(Hadamard.isPowerOfTwo(0)).isFalse();
        assertThat(Hadamard.isPowerOfTwo(96)).isFalse();
        assertThat(Hadamard.isPowerOfTwo(-64)).isFalse();
    }

    /// Attention with rotation equals attention without, to rounding, through the half-precision kernels: four
    /// query heads of 128 against one key/value head over 150 positions; queries and keys rotated as whole heads
    /// (llama.cpp's key block for heads of 128), values by blocks of 64 and the output rotated back. Values of
    /// the size half precision holds well (the keys and values round to 11 significant bits either way).
    @Test
    void rotatedAttentionEqualsPlainAttention() {
        int group = 4;
        int hs = 128;
        int n = 150;
        int padded = Attention.paddedLength(n);
        Random r = new Random(5);
        float[] q = gaussian(r, group * hs, 1);
        for (int i = 0; i < q.length; i++) {
            q[i] = Attention.half(q[i]);
        }
        float[][] k = new float[n][];
        float[][] v = new float[n][];
        for (int p = 0; p < n; p++) {
            k[p] = gaussian(r, hs, 1);
            k[p][p % hs] += 8; // an outlier channel, as real keys have
            v[p] = gaussian(r, hs, 2);
        }
        float scale = 1 / (float) Math.sqrt(hs);

        float[] plain = attention(q, k, v, group, hs, n, padded, scale);

        float[] rq = q.clone();
        Hadamard.rotate(rq, 0, group * hs, 128);
        float[][] rk = new float[n][];
        float[][] rv = new float[n][];
        for (int p = 0; p < n; p++) {
            rk[p] = k[p].clone();
            Hadamard.rotate(rk[p], 0, hs, 128);
            rv[p] = v[p].clone();
            Hadamard.rotate(rv[p], 0, hs, 64);
        }
        float[] rotated = attention(rq, rk, rv, group, hs, n, padded, scale);
        assertThat(maxDifference(rotated, plain)).as("before the output is rotated back").isGreaterThan(0.5);
        Hadamard.rotate(rotated, 0, group * hs, 64);
        // the half-precision rounding of keys and values (outputs of about ±2, half's step there is 2e-3) differs
        // between the two, nothing else: measured 6.3e-4
        assertThat(maxDifference(rotated, plain)).isGreaterThan(0).isLessThan(2e-3);
    }

    private static double maxDifference(float[] a, float[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static float[] attention(float[] q, float[][] k, float[][] v, int group, int hs, int n, int padded,
                                     float scale) {
        short[] keys = new short[padded * hs];
        short[] values = new short[n * hs];
        for (int p = 0; p < n; p++) {
            Attention.storeKey(keys, 0, p, hs, padded, k[p], 0, 1);
            Attention.storeValues(values, p * hs, v[p], 0, 1, hs);
        }
        float[] out = new float[group * hs];
        Attention.attend(q, 0, group, hs, keys, 0, padded, values, 0, hs, n, scale, new float[group * padded], 0,
                out, 0);
        return out;
    }
}
