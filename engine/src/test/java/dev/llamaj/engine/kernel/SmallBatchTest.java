package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.Arena;

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
        // odd row counts (a partial last group), 1 to 37 tokens (every microkernel, several tiles), odd columns (F32);
        // 12 rows x 13 tokens: every microkernel of the four-row layouts (8 + 4 + 1 tokens), compared with the GGUF
        // layout's below
        int[][] shapes = {{37, 2 * b, 5}, {64, 3 * b, 8}, {9, b, 37}, {8, 4 * b, 1}, {6, b, 3}, {12, 2 * b, 13}};
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
                MatMul.reference(m, x, 3, ref, 2, tokens);
                String what = type + " " + rows + "x" + cols + " x " + tokens;
                assertThat(out2).as("%s on 2 threads", what).isEqualTo(out1);
                assertThat(out3).as("%s on 3 threads", what).isEqualTo(out1);
                float[] row = new float[cols];
                for (int r = 0; r < rows; r++) {
                    m.dequantizeRow(r, row, 0);
                    for (int t = 0; t < tokens; t++) {
                        double magnitude = 0;
                        for (int c = 0; c < cols; c++) {
                            magnitude += Math.abs((double) row[c] * x[3 + Kernels.tiledIndex(cols, t, c)]);
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
}
