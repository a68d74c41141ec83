package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import dev.llamaj.gguf.GGMLType;

/// `matMulFew` (the small-batch product of batched decoding) against the scalar reference for every type, and the
/// property batched decoding relies on: a token's result is bit for bit the same alone, in any batch, on any
/// number of threads and in any weight layout.
class SmallBatchTest {

    @ParameterizedTest
    @MethodSource("dev.llamaj.engine.kernel.KernelsTest#supportedTypes")
    void matchesReferenceAndDependsOnNothingButItsToken(GGMLType type) {
        int b = type.blockSize() == 1 ? 32 : type.blockSize();
        // odd row counts (a partial last group), 1 to 37 tokens (every microkernel, several tiles), odd columns (F32)
        int[][] shapes = {{37, 2 * b, 5}, {64, 3 * b, 8}, {9, b, 37}, {8, 4 * b, 1}, {6, b, 3}};
        if (type == GGMLType.F32) {
            shapes = new int[][] {{7, 43, 6}, {13, 16, 2}, {5, 200, 9}};
        }
        try (Arena arena = Arena.ofShared();
             Parallel one = new Parallel(1);
             Parallel two = new Parallel(2);
             Parallel three = new Parallel(3)) {
            long seed = 7;
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
                Kernels.matMulFew(one, m, x, 3, out1, 2, tokens);
                Kernels.matMulFew(two, m, x, 3, out2, 2, tokens);
                Kernels.matMulFew(three, m, x, 3, out3, 2, tokens);
                // the integer kernel multiplies with each token's activations rounded to 8 bits: so is the reference
                float[] seen = seenActivations(m, x, 3, tokens);
                MatMul.reference(m, seen, 3, ref, 2, tokens);
                String what = type + " " + rows + "x" + cols + " x " + tokens;
                assertThat(out2).as("%s on 2 threads", what).isEqualTo(out1);
                assertThat(out3).as("%s on 3 threads", what).isEqualTo(out1);
                float[] row = new float[cols];
                for (int r = 0; r < rows; r++) {
                    m.dequantizeRow(r, row, 0);
                    for (int t = 0; t < tokens; t++) {
                        double magnitude = 0;
                        for (int c = 0; c < cols; c++) {
                            magnitude += Math.abs((double) row[c] * seen[3 + Kernels.tiledIndex(cols, t, c)]);
                        }
                        int i = 2 + Kernels.tiledIndex(rows, t, r);
                        assertThat((double) out1[i]).as("%s token %d row %d", what, t, r)
                                .isCloseTo(ref[i], within(2e-6 * magnitude + 1e-30));
                    }
                }
                // each token alone gives the same bits as within the batch (another microkernel may run it)
                for (int t = 0; t < tokens; t++) {
                    float[] single = new float[Kernels.tiledSize(cols, 1)];
                    for (int c = 0; c < cols; c++) {
                        single[Kernels.tiledIndex(cols, 0, c)] = x[3 + Kernels.tiledIndex(cols, t, c)];
                    }
                    float[] outSingle = new float[Kernels.tiledSize(rows, 1)];
                    Kernels.matMulFew(two, m, single, 0, outSingle, 0, 1);
                    for (int r = 0; r < rows; r++) {
                        assertThat(outSingle[Kernels.tiledIndex(rows, 0, r)]).as("%s token %d alone", what, t)
                                .isEqualTo(out1[2 + Kernels.tiledIndex(rows, t, r)]);
                    }
                }
                // the repacked layouts the engine loads weights into give the same bits
                if (Repack.applies(m)) {
                    Matrix p = Repack.repack(m, arena, two);
                    float[] outPacked = new float[out1.length];
                    Kernels.matMulFew(two, p, x, 3, outPacked, 2, tokens);
                    assertThat(outPacked).as("%s in layout %s", what, p.layout()).isEqualTo(out1);
                }
            }
        }
    }

    /// The activations the small-batch kernel of `m` multiplies with: `x` (tiled, from `xOffset`) itself, or each
    /// token's rounded to 8-bit integers per 32 values where the integer `Q4_0` kernel applies.
    private static float[] seenActivations(Matrix m, float[] x, int xOffset, int tokens) {
        if (!SmallBatchQ4_0.applies(WeightFormat.of(m))) {
            return x;
        }
        int cols = m.cols();
        float[] seen = x.clone();
        float[] token = new float[cols];
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < cols; c++) {
                token[c] = x[xOffset + Kernels.tiledIndex(cols, t, c)];
            }
            float[] rounded = Input.roundTrip(token, 0, cols, 32);
            for (int c = 0; c < cols; c++) {
                seen[xOffset + Kernels.tiledIndex(cols, t, c)] = rounded[c];
            }
        }
        return seen;
    }

    /// The integer `Q4_0` kernel computes exactly its scalar description ([SmallBatchQ4_0#row]), also at the
    /// extremes of its packed arithmetic: every nibble 0 or 15 against activations of ±127 (the largest dot products
    /// and lower terms the shift must survive), mixed with random blocks.
    @Test
    void integerQ4_0KernelIsBitForBitItsScalarDescription() {
        Assumptions.assumeTrue(Simd.L == 16, "the integer Q4_0 kernel needs 512-bit vectors");
        int rows = 24;
        int cols = 8 * 32;
        int tokens = 7;
        try (Arena arena = Arena.ofShared(); Parallel two = new Parallel(2)) {
            MemorySegment w = RandomWeights.segment(arena, GGMLType.Q4_0, 0, (long) rows * cols, 11);
            long rowBytes = GGMLType.Q4_0.byteSize(cols);
            for (int r = 0; r < rows; r++) {
                for (int b = 0; b < 4; b++) { // blocks 0..3 of each row: all 0, all 15, alternating, 15 in one half
                    long o = r * rowBytes + b * 18L + 2;
                    for (int j = 0; j < 16; j++) {
                        int v = switch (b) {
                            case 0 -> 0x00;
                            case 1 -> 0xFF;
                            case 2 -> (j & 1) == 0 ? 0xF0 : 0x0F;
                            default -> (r & 1) == 0 ? 0x0F : 0xF0;
                        };
                        w.set(ValueLayout.JAVA_BYTE, o + j, (byte) v);
                    }
                }
            }
            Matrix m = new Matrix(GGMLType.Q4_0, w, rows, cols);
            float[] xs = RandomWeights.floats(tokens * cols, 12);
            for (int t = 0; t < tokens; t++) { // first half of the blocks: every value at the block's maximum magnitude
                for (int c = 0; c < cols / 2; c++) {
                    xs[t * cols + c] = ((c + t) % 3 == 0) ? -1.5f : 1.5f;
                }
            }
            float[] x = new float[Kernels.tiledSize(cols, tokens)];
            for (int t = 0; t < tokens; t++) {
                for (int c = 0; c < cols; c++) {
                    x[Kernels.tiledIndex(cols, t, c)] = xs[t * cols + c];
                }
            }
            SmallBatchQ4_0.Activations a = new SmallBatchQ4_0.Activations();
            a.prepare(xs, cols, tokens);
            float[] out = new float[Kernels.tiledSize(rows, tokens)];
            Kernels.matMulFew(two, m, x, 0, out, 0, tokens);
            float[] packed = new float[out.length];
            Kernels.matMulFew(two, Repack.repack(m, arena, two), x, 0, packed, 0, tokens);
            for (int r = 0; r < rows; r++) {
                for (int t = 0; t < tokens; t++) {
                    float expected = SmallBatchQ4_0.row(w, r * rowBytes, cols, a, t);
                    int i = Kernels.tiledIndex(rows, t, r);
                    assertThat(out[i]).as("row %d token %d", r, t).isEqualTo(expected);
                    assertThat(packed[i]).as("row %d token %d, four-row layout", r, t).isEqualTo(expected);
                }
            }
        }
    }
}
