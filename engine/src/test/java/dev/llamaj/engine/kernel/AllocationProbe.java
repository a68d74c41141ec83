package dev.llamaj.engine.kernel;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

import dev.llamaj.gguf.GGMLType;

/// The process [AllocationTest] starts once per model kind: it builds small matrices of the given weight types
/// (`Q4_K` in the file's layout, `Q4_K/r` in the layout the loader repacks it to, if any), warms their kernels
/// together with [WarmUp] as loading a model does, then prints one line per kernel, `what bytes`: the bytes 100
/// warm matrix-vector products, 20 matrix-matrix products, 100 attention calls (over F16, Q8_0 and Q4_0 caches)
/// and 100 rounds of the other per-token operations (RMS norms, SwiGLU, softmax) allocate.
final class AllocationProbe {
    private AllocationProbe() {
    }

    public static void main(String[] args) {
        Arena arena = Arena.global();
        List<Matrix> matrices = new ArrayList<>();
        try (Parallel pool = new Parallel(1)) {
            for (String arg : args) {
                boolean repacked = arg.endsWith("/r");
                GGMLType type = GGMLType.valueOf(repacked ? arg.substring(0, arg.length() - 2) : arg);
                // odd row counts where the layout allows them, so single-row remainder loops run too
                int rows = repacked && (type == GGMLType.Q4_0 || type == GGMLType.Q8_0) ? 40 : 37;
                Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * 1024, 3), rows, 1024);
                matrices.add(repacked ? Repack.repack(m, arena, pool) : m);
            }
            int headSize = 64;
            int group = 4;
            WarmUp.run(matrices, headSize, group, 20_000_000_000L);
            for (int i = 0; i < args.length; i++) {
                Matrix m = matrices.get(i);
                float[] x = RandomWeights.floats(m.cols(), 4);
                float[] out = new float[m.rows()];
                long bytes = AllocationTest.allocatedWhenWarm(() -> Kernels.matVec(pool, m, x, 0, out, 0), 2_000, 100);
                System.out.println(args[i] + " matVec " + bytes);
                int tokens = 40;
                float[] tx = RandomWeights.floats(Kernels.tiledSize(m.cols(), tokens), 4);
                float[] ty = new float[Kernels.tiledSize(m.rows(), tokens)];
                bytes = AllocationTest.allocatedWhenWarm(() -> Kernels.matMul(pool, m, tx, 0, ty, 0, tokens), 300, 20);
                System.out.println(args[i] + " matMul " + bytes);
                int few = 13; // every microkernel of the small-batch product: 8 + 4 + 1 tokens
                bytes = AllocationTest.allocatedWhenWarm(() -> Kernels.matMulFew(pool, m, tx, 0, ty, 0, few), 300, 20);
                System.out.println(args[i] + " matMulFew " + bytes);
            }
            int n = 300;
            int padded = Attention.paddedLength(n);
            short[] keys = RandomWeights.halves(2 * padded * headSize, 1);
            short[] values = RandomWeights.halves(padded * 2 * headSize, 2);
            float[] q = RandomWeights.floats(group * headSize, 3);
            float[] att = new float[group * padded];
            float[] o = new float[group * headSize];
            long bytes = AllocationTest.allocatedWhenWarm(() -> Attention.attend(q, 0, group, headSize, keys, 1,
                    padded, values, headSize, 2 * headSize, n, 0.125f, att, 0, o, 0), 2_000, 100);
            System.out.println("attention " + bytes);
            // the quantized cache's kernels (rows of two heads, as a Q8_0 and a Q4_0 cache store them)
            int kvDim = 2 * headSize;
            byte[] q8 = new byte[n * kvDim / 32 * QuantizedKV.Q8_0_BYTES];
            byte[] q4 = new byte[n * kvDim / 32 * QuantizedKV.Q4_0_BYTES];
            float[] row = RandomWeights.floats(kvDim, 8);
            for (int p = 0; p < n; p++) {
                QuantizedKV.storeQ8_0(row, 0, 1, kvDim, q8, p * (q8.length / n));
                QuantizedKV.storeQ4_0(row, 0, 1, kvDim, q4, p * (q4.length / n));
            }
            bytes = AllocationTest.allocatedWhenWarm(() -> {
                QuantizedKV.scoresQ8_0(q, 0, group, headSize, q8, q8.length / n, headSize, 0, n, 0.125f, att, 0,
                        padded);
                Attention.normalize(att, 0, group, padded, 0, n, 0f, false);
                QuantizedKV.valuesQ8_0(att, 0, padded, group, q8, q8.length / n, headSize, 0, n, headSize, o, 0);
            }, 2_000, 100);
            System.out.println("attentionQ8_0 " + bytes);
            bytes = AllocationTest.allocatedWhenWarm(() -> { // with the rotation of a rotated cache around it
                Hadamard.rotate(q, 0, group * headSize, 64);
                QuantizedKV.scoresQ4_0(q, 0, group, headSize, q4, q4.length / n, headSize, 0, n, 0.125f, att, 0,
                        padded);
                QuantizedKV.valuesQ4_0(att, 0, padded, group, q4, q4.length / n, headSize, 0, n, headSize, o, 0);
                Hadamard.rotate(o, 0, group * headSize, 64);
            }, 2_000, 100);
            System.out.println("attentionQ4_0 " + bytes);
            int width = 2048;
            float[] x = RandomWeights.floats(width, 5);
            float[] weight = RandomWeights.floats(width, 6);
            float[] normed = new float[width];
            float[] gate = new float[width];
            float[] tiled = RandomWeights.floats(2 * width * Kernels.TILE, 7);
            float[] tiledOut = new float[tiled.length];
            bytes = AllocationTest.allocatedWhenWarm(() -> {
                Kernels.rmsNorm(normed, 0, x, 0, weight, width, 1e-5f);
                Kernels.rmsNormTiled(tiledOut, tiled, weight, width, 2, 1e-5f);
                System.arraycopy(normed, 0, gate, 0, width);
                Kernels.swiGlu(gate, x, width);
                Kernels.softmax(normed, 0, width - 5);
            }, 2_000, 100);
            System.out.println("norms " + bytes);
        }
    }
}
