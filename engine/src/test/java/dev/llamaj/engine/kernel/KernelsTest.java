package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import dev.llamaj.gguf.GGMLType;

/// The kernels against their scalar references on seeded random data: every format's `dot` against `dotReference`
/// (dequantize, then a double dot), `matVec` on 1, 2 and 3 threads, and the float helpers against plain
/// double-precision formulas. Shapes are odd on purpose: tails of vectors, of row groups and of thread chunks,
/// unaligned segment offsets and non-zero array offsets.
class KernelsTest {

    /// The per-row kernels, by type.
    interface Dot {
        float dot(MemorySegment w, long offset, float[] x, int xOffset, int n);
    }

    interface DotReference {
        double dot(MemorySegment w, long offset, float[] x, int xOffset, int n);
    }

    static Stream<GGMLType> supportedTypes() {
        return Arrays.stream(GGMLType.values()).filter(Kernels::supports);
    }

    static Dot dotOf(GGMLType t) {
        return switch (t) {
            case F32 -> F32::dot;
            case F16 -> F16::dot;
            case BF16 -> BF16::dot;
            case Q4_0 -> Q4_0::dot;
            case Q4_1 -> Q4_1::dot;
            case Q5_0 -> Q5_0::dot;
            case Q5_1 -> Q5_1::dot;
            case Q8_0 -> Q8_0::dot;
            case Q2_K -> Q2_K::dot;
            case Q3_K -> Q3_K::dot;
            case Q4_K -> Q4_K::dot;
            case Q5_K -> Q5_K::dot;
            case Q6_K -> Q6_K::dot;
            default -> throw new AssertionError(t);
        };
    }

    static DotReference referenceOf(GGMLType t) {
        return switch (t) {
            case F32 -> F32::dotReference;
            case F16 -> F16::dotReference;
            case BF16 -> BF16::dotReference;
            case Q4_0 -> Q4_0::dotReference;
            case Q4_1 -> Q4_1::dotReference;
            case Q5_0 -> Q5_0::dotReference;
            case Q5_1 -> Q5_1::dotReference;
            case Q8_0 -> Q8_0::dotReference;
            case Q2_K -> Q2_K::dotReference;
            case Q3_K -> Q3_K::dotReference;
            case Q4_K -> Q4_K::dotReference;
            case Q5_K -> Q5_K::dotReference;
            case Q6_K -> Q6_K::dotReference;
            default -> throw new AssertionError(t);
        };
    }

    /// Allowed `|dot − reference|` as a fraction of `Σ|w·x|` (about ten times the worst seen over 200 random rows
    /// at 128, 256 and 512 bits). The float kernels accumulate in float; formats with a
    /// subtracted minimum (`Q2_K`, `Q4_K`, `Q5_K`, `Q4_1`, `Q5_1`) dequantize with one FMA or fold the minimum into a
    /// separate sum, so their rounding is relative to the larger `scale·q` and `min` terms, not to `w`.
    static double tolerance(GGMLType t) {
        return switch (t) {
            case F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q3_K, Q6_K -> 5e-7;
            case Q4_1, Q5_1, Q2_K, Q4_K, Q5_K -> 2e-6;
            default -> throw new AssertionError(t);
        };
    }

    /// `Σ|w·x|` of one row, the scale of the rounding error of any dot product.
    static double magnitude(GGMLType t, MemorySegment w, long offset, float[] x, int xOffset, int n) {
        Matrix m = new Matrix(t, w.asSlice(offset, t.byteSize(n)), 1, n);
        float[] v = new float[n];
        m.dequantizeRow(0, v, 0);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.abs((double) v[i] * x[xOffset + i]);
        }
        return sum;
    }

    /// Weights per row used for a type: several block counts, and odd lengths for the plain float types.
    static int[] lengths(GGMLType t) {
        int b = t.blockSize();
        return b == 1
                ? new int[] {1, 3, 15, 16, 17, 31, 33, 64, 100, 257, 1000}
                : new int[] {b, 2 * b, 3 * b, 5 * b, 8 * b};
    }

    @ParameterizedTest
    @MethodSource("supportedTypes")
    void dotMatchesReference(GGMLType type) {
        try (Arena arena = Arena.ofConfined()) {
            long seed = 1;
            for (int n : lengths(type)) {
                for (int lead : new int[] {0, 3, 64}) {
                    MemorySegment w = RandomWeights.segment(arena, type, lead, n, seed);
                    int xOffset = (int) (seed % 7);
                    float[] x = RandomWeights.floats(n + xOffset + 2, seed + 1000);
                    seed++;
                    double ref = referenceOf(type).dot(w, lead, x, xOffset, n);
                    float got = dotOf(type).dot(w, lead, x, xOffset, n);
                    double tol = tolerance(type) * magnitude(type, w, lead, x, xOffset, n) + 1e-30;
                    assertThat((double) got).as("%s dot, n=%d, lead=%d, xOffset=%d", type, n, lead, xOffset)
                            .isCloseTo(ref, within(tol));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("supportedTypes")
    void matVecMatchesReferenceOnAnyThreadCount(GGMLType type) {
        int cols = type.blockSize() == 1 ? 67 : 3 * type.blockSize();
        try (Arena arena = Arena.ofShared(); // workers read the weights too
             Parallel one = new Parallel(1);
             Parallel two = new Parallel(2);
             Parallel three = new Parallel(3)) {
            for (int rows : new int[] {1, 3, 4, 5, 16, 17, 37, 70}) {
                MemorySegment data = RandomWeights.segment(arena, type, 0, (long) rows * cols, rows);
                Matrix m = new Matrix(type, data, rows, cols);
                float[] x = RandomWeights.floats(cols + 5, rows + 77);
                float[] out1 = new float[rows + 2];
                float[] out2 = new float[rows + 2];
                float[] out3 = new float[rows + 2];
                Kernels.matVec(one, m, x, 5, out1, 2);
                Kernels.matVec(two, m, x, 5, out2, 2);
                Kernels.matVec(three, m, x, 5, out3, 2);
                assertThat(out2).as("%s %dx%d on 2 threads", type, rows, cols).isEqualTo(out1);
                assertThat(out3).as("%s %dx%d on 3 threads", type, rows, cols).isEqualTo(out1);
                assertThat(out1[0]).isZero();
                assertThat(out1[1]).isZero();
                // the integer kernels multiply with x rounded to 8 bits: the reference uses the same x
                float[] seen = Input.quantizes(type, m.layout())
                        ? Input.roundTrip(x, 5, cols, Input.roundTripBlock(type)) : x;
                int seenOffset = seen == x ? 5 : 0;
                for (int r = 0; r < rows; r++) {
                    long offset = r * m.rowBytes();
                    double ref = referenceOf(type).dot(m.data(), offset, seen, seenOffset, cols);
                    double tol = tolerance(type) * magnitude(type, m.data(), offset, seen, seenOffset, cols) + 1e-30;
                    assertThat((double) out1[2 + r]).as("%s %dx%d row %d", type, rows, cols, r)
                            .isCloseTo(ref, within(tol));
                }
            }
        }
    }

    @Test
    void matVecRejectsUnsupportedTypesByName() {
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix m = new Matrix(GGMLType.IQ2_XXS, arena.allocate(GGMLType.IQ2_XXS.byteSize(256)), 1, 256);
            assertThat(Kernels.supports(GGMLType.IQ2_XXS)).isFalse();
            assertThatThrownBy(() -> Kernels.matVec(pool, m, new float[256], 0, new float[1], 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("IQ2_XXS");
            assertThatThrownBy(() -> m.dequantizeRow(0, new float[256], 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("IQ2_XXS");
        }
    }

    @Test
    void matVecChecksVectorLengths() {
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix m = new Matrix(GGMLType.Q8_0, RandomWeights.segment(arena, GGMLType.Q8_0, 0, 4 * 64, 1), 4, 64);
            assertThatThrownBy(() -> Kernels.matVec(pool, m, new float[64], 1, new float[4], 0))
                    .isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> Kernels.matVec(pool, m, new float[64], 0, new float[4], 1))
                    .isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void matrixValidatesGeometry() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(2 * 34);
            assertThat(new Matrix(GGMLType.Q8_0, s, 2, 32).rowBytes()).isEqualTo(34);
            assertThatThrownBy(() -> new Matrix(GGMLType.Q8_0, s, 2, 48))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("48");
            assertThatThrownBy(() -> new Matrix(GGMLType.Q8_0, s, 3, 32))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("102");
            assertThatThrownBy(() -> new Matrix(GGMLType.Q8_0, s, 0, 32))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    // ---- float helpers against double formulas ----

    static final int[] SIZES = {1, 3, 15, 16, 17, 64, 100, 1000, 2051};

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void rmsNormMatchesFormula(boolean inPlace) {
        for (int size : SIZES) {
            float[] x = RandomWeights.floats(size + 3, size);
            for (int i = 0; i < x.length; i++) {
                x[i] *= 4; // not unit scale
            }
            float[] weight = RandomWeights.floats(size, size + 1);
            double ss = 0;
            for (int i = 0; i < size; i++) {
                ss += (double) x[3 + i] * x[3 + i];
            }
            double scale = 1 / Math.sqrt(ss / size + 1e-5);
            double[] want = new double[size];
            for (int i = 0; i < size; i++) {
                want[i] = x[3 + i] * scale * weight[i];
            }
            float[] out = inPlace ? x : new float[size + 1];
            int outOff = inPlace ? 3 : 1;
            Kernels.rmsNorm(out, outOff, x, 3, weight, size, 1e-5f);
            for (int i = 0; i < size; i++) {
                assertThat((double) out[outOff + i]).as("rmsNorm size %d [%d]", size, i)
                        .isCloseTo(want[i], within(1e-6 * Math.abs(want[i]) + 1e-7));
            }
        }
    }

    @Test
    void softmaxMatchesFormula() {
        for (int size : SIZES) {
            float[] x = RandomWeights.floats(size + 4, size);
            for (int i = 0; i < x.length; i++) {
                x[i] *= 20; // a wide range of exponents
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < size; i++) {
                max = Math.max(max, x[2 + i]);
            }
            double sum = 0;
            double[] want = new double[size];
            for (int i = 0; i < size; i++) {
                want[i] = Math.exp(x[2 + i] - max);
                sum += want[i];
            }
            float before0 = x[0];
            float beforeEnd = x[2 + size];
            Kernels.softmax(x, 2, size);
            double total = 0;
            for (int i = 0; i < size; i++) {
                assertThat((double) x[2 + i]).as("softmax size %d [%d]", size, i)
                        .isCloseTo(want[i] / sum, within(1e-6 * want[i] / sum + 1e-9));
                total += x[2 + i];
            }
            assertThat(total).isCloseTo(1.0, within(1e-5));
            assertThat(x[0]).isEqualTo(before0);
            assertThat(x[2 + size]).isEqualTo(beforeEnd);
        }
    }

    @Test
    void dotMatchesFormula() {
        for (int size : SIZES) {
            float[] a = RandomWeights.floats(size + 1, size);
            float[] b = RandomWeights.floats(size + 5, size + 9);
            double want = 0;
            double magnitude = 0;
            for (int i = 0; i < size; i++) {
                want += (double) a[1 + i] * b[5 + i];
                magnitude += Math.abs((double) a[1 + i] * b[5 + i]);
            }
            assertThat((double) Kernels.dot(a, 1, b, 5, size)).as("dot size %d", size)
                    .isCloseTo(want, within(1e-6 * magnitude));
        }
    }

    @Test
    void axpyMatchesFormula() {
        for (int size : SIZES) {
            float[] x = RandomWeights.floats(size + 2, size);
            float[] y = RandomWeights.floats(size + 3, size + 1);
            float[] want = y.clone();
            for (int i = 0; i < size; i++) {
                want[3 + i] = (float) (0.37 * x[2 + i] + y[3 + i]);
            }
            Kernels.axpy(0.37f, x, 2, y, 3, size);
            for (int i = 0; i < y.length; i++) {
                assertThat(y[i]).as("axpy size %d [%d]", size, i).isCloseTo(want[i], within(1e-6f));
            }
        }
    }

    @Test
    void swiGluMatchesFormula() {
        SplittableRandom random = new SplittableRandom(5);
        for (int size : SIZES) {
            float[] gate = new float[size];
            float[] up = new float[size];
            for (int i = 0; i < size; i++) {
                gate[i] = (float) random.nextDouble(-30, 30);
                up[i] = (float) random.nextDouble(-2, 2);
            }
            gate[0] = size > 1 ? -100 : gate[0]; // exp(100) overflows float: silu must still be -0
            double[] want = new double[size];
            for (int i = 0; i < size; i++) {
                want[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
            }
            Kernels.swiGlu(gate, up, size);
            for (int i = 0; i < size; i++) {
                assertThat((double) gate[i]).as("swiGlu size %d [%d]", size, i)
                        .isCloseTo(want[i], within(1e-6 * Math.abs(want[i]) + 1e-30));
            }
        }
    }
}
