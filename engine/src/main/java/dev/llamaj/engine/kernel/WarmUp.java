package dev.llamaj.engine.kernel;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.llamaj.gguf.GGMLType;

/// Gets every kernel a model needs compiled by C2 before the first real token.
///
/// A Vector API kernel that is not yet C2-compiled is 10-1000x slower (the interpreter, and C1, which does not
/// intrinsify vector operations and cannot even compile some of the larger kernels, run the API's Java fallback).
/// Without a warm-up the first prompt of a process pays for that at full size, for seconds. Reaching C2 takes
/// thousands of invocations, which would be as slow, so each kernel is first run a few dozen times on small real
/// shapes (so that C2 sees a profile where every path and type is taken) and then called thousands of times with
/// no work at all (zero rows, zero columns: only the invocation counter moves), which makes the JIT compile it in
/// the background with that profile. Takes a few hundred milliseconds.
public final class WarmUp {
    /// Real calls per kernel, for the profile.
    private static final int PROFILE = 8;
    /// Empty calls per kernel: above C2's invocation threshold (5000 by default).
    private static final int COUNT = 6000;
    private static final boolean VERBOSE = Boolean.getBoolean("llamaj.warmup.verbose");

    private WarmUp() {
    }

    /// Warms the kernels for `matrices` (one of each weight type is used) and the attention of `group` query heads
    /// per key/value head of `headSize`; stops early after about `budgetNanos`. Returns the nanoseconds spent.
    public static long run(List<Matrix> matrices, int headSize, int group, long budgetNanos) {
        long start = System.nanoTime();
        long deadline = start + budgetNanos;
        Map<String, Matrix> byType = new LinkedHashMap<>();
        for (Matrix m : matrices) {
            byType.putIfAbsent(m.type() + "/" + m.layout(), m);
        }
        List<Step> steps = new ArrayList<>();
        try (Parallel pool = new Parallel(1)) {
            for (Matrix full : byType.values()) { // one per type and layout
                // the leading bytes of the matrix read as 16 short rows: valid blocks, and small calls
                GGMLType type = full.type();
                int cols = Math.min(full.cols(), Math.max(256, type.blockSize()));
                int rows = (int) Math.min(16, full.data().byteSize() / type.byteSize(cols)) / 4 * 4;
                MemorySegment data = full.data().asSlice(0, rows * type.byteSize(cols)
                        * (full.layout() == Matrix.Layout.GGUF ? 1 : 2)); // the repacked layouts are larger
                Matrix m = new Matrix(type, data, rows, cols, full.layout());
                long rowBytes = m.stride();
                float[] x = filled(cols);
                float[] out = new float[rows];
                float[] out2 = new float[rows];
                float[] out3 = new float[rows];
                Input input = new Input();
                float[] tx = filled(Kernels.tiledSize(cols, Kernels.TILE));
                float[] ty = new float[Kernels.tiledSize(rows, Kernels.TILE)];
                float[] panel = new float[MatMul.MC * MatMul.KC];
                Kernels.RowKernel kernel = Kernels.rowKernel(m);
                WeightFormat format = WeightFormat.of(m);
                steps.add(new Step("matVec " + type, () -> {
                    Kernels.matVec(pool, m, x, 0, out, 0);
                    Kernels.matVec3(pool, m, m, m, x, 0, out, 0, out2, 0, out3, 0);
                    Kernels.matVecSwiGlu(pool, m, m, x, 0, out, out2);
                }, () -> kernel.matVec(data, rowBytes, cols, x, 0, out, 0, 0, 0, input)));
                steps.add(new Step("matMul " + type, () -> {
                    Kernels.matMul(pool, m, tx, 0, ty, 0, Kernels.TILE);
                    Kernels.matMul(pool, m, tx, 0, ty, 0, 1);
                }, () -> {
                    if (format.rows4() != null) {
                        format.rows4().decode(data, cols, 0, 0, 0, panel, 0, true);
                    } else {
                        format.unpack().dequantize(data, 0, panel, 0, 0);
                    }
                }));
            }
            float[] a = filled(MatMul.KC * MatMul.MR);
            float[] tx = filled(MatMul.KC * MatMul.TILE);
            float[] ty = new float[MatMul.MR * MatMul.TILE];
            steps.add(new Step("matMul kernel", () -> {
                MatMul.kernel(a, 0, tx, 0, ty, 0, MatMul.KC, true);
                MatMul.kernelHalf(a, 0, tx, 0, ty, 0, MatMul.KC, true);
            }, () -> {
                MatMul.kernel(a, 0, tx, 0, ty, 0, 0, true);
                MatMul.kernelHalf(a, 0, tx, 0, ty, 0, 0, true);
            }));
            // the float helpers of both paths
            int width = Math.max(headSize * group, 64);
            float[] v = filled(Kernels.tiledSize(width, Kernels.TILE));
            float[] w = filled(width);
            float[] y = new float[v.length];
            float[] cos = filled(Kernels.TILE * 2 + 8);
            float[] sin = filled(Kernels.TILE * 2 + 8);
            steps.add(new Step("helpers", () -> {
                Kernels.rmsNorm(y, 0, v, 0, w, width, 1e-5f);
                Kernels.rmsNormTiled(y, v, w, width, 1, 1e-5f);
                Kernels.ropeTiled(y, width, 1, 2, 1, 2, 1, 1, cos, sin, 0, 0);
                Kernels.add(y, v, v.length);
                Kernels.swiGlu(y, v, v.length - 1);
                Kernels.softmax(y, 0, width + 3);
                Kernels.groupSums(v, 0, width, y);
            }, () -> {
                Kernels.rmsNorm(y, 0, v, 0, w, 0, 1e-5f);
                Kernels.rmsNormTiled(y, v, w, 0, 1, 1e-5f);
                Kernels.ropeTiled(y, width, 0, 2, 1, 2, 1, 1, cos, sin, 0, 0);
                Kernels.add(y, v, 0);
                Kernels.swiGlu(y, v, 0);
                Kernels.softmax(y, 0, 1);
                Kernels.groupSums(v, 0, 0, y);
            }));
            // attention, at a length with whole and partial key blocks
            int n = 2 * Attention.BLOCK + 5;
            int padded = Attention.paddedLength(n);
            short[] keys = halves(padded * headSize);
            short[] values = halves(padded * headSize);
            float[] q = filled(4 * headSize + group * headSize);
            float[] att = new float[(group + 4) * padded];
            float[] o = new float[(group + 4) * headSize];
            float scale = (float) (1 / Math.sqrt(headSize));
            steps.add(new Step("attention", () -> Attention.attend(q, 0, group, headSize, keys, 0, padded, values, 0,
                    headSize, n, scale, att, 0, o, 0), () -> {
                        Attention.scores4(q, 0, headSize, keys, 0, 0, scale, att, 0, padded);
                        Attention.scores1(q, 0, headSize, keys, 0, 0, scale, att, 0);
                        Attention.values4(att, 0, padded, values, 0, headSize, 0, 0, o, 0);
                        Attention.values1(att, 0, values, 0, headSize, 0, 0, o, 0);
                    }));
            // all profiles first, then all counts (so every compilation is queued early), then wait for the code
            for (Step st : steps) {
                st.profile(deadline);
            }
            for (Step st : steps) {
                st.count(deadline);
            }
            for (Step st : steps) {
                st.settle(deadline);
            }
            if (VERBOSE) {
                for (Step st : steps) {
                    System.err.println(st);
                }
            }
        }
        return System.nanoTime() - start;
    }

    /// One kernel to warm: [#PROFILE] calls of `real` (the profile), [#COUNT] calls of `empty` (the invocation
    /// count), then `real` again until it runs at least 8x faster than at first (C2's code is in), each phase
    /// skipped once the deadline has passed.
    private static final class Step {
        private final String what;
        private final Runnable real;
        private final Runnable empty;
        private long first = Long.MAX_VALUE;
        private long profileNanos;
        private long countNanos;
        private long settleNanos;

        Step(String what, Runnable real, Runnable empty) {
            this.what = what;
            this.real = real;
            this.empty = empty;
        }

        void profile(long deadline) {
            long t0 = System.nanoTime();
            for (int i = 0; i < PROFILE && System.nanoTime() < deadline; i++) {
                long s = System.nanoTime();
                real.run();
                first = Math.min(first, System.nanoTime() - s);
            }
            profileNanos = System.nanoTime() - t0;
        }

        void count(long deadline) {
            long t0 = System.nanoTime();
            for (int i = 0; i < COUNT && ((i & 255) != 0 || System.nanoTime() < deadline); i++) {
                empty.run();
            }
            countNanos = System.nanoTime() - t0;
        }

        void settle(long deadline) {
            long t0 = System.nanoTime();
            while (System.nanoTime() < deadline) {
                long s = System.nanoTime();
                real.run();
                if ((System.nanoTime() - s) * 8 < first) {
                    break;
                }
            }
            settleNanos = System.nanoTime() - t0;
        }

        @Override
        public String toString() {
            return String.format("warm-up %-14s profile %6.1f ms, count %6.1f ms, settle %6.1f ms", what,
                    profileNanos / 1e6, countNanos / 1e6, settleNanos / 1e6);
        }
    }

    private static float[] filled(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) Math.sin(i * 0.37) * 0.5f;
        }
        return a;
    }

    private static short[] halves(int n) {
        short[] a = new short[n];
        for (int i = 0; i < n; i++) {
            a[i] = Float.floatToFloat16((float) Math.sin(i * 0.37) * 0.5f);
        }
        return a;
    }
}
