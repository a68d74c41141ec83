package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import dev.llamaj.gguf.GGMLType;

/// A warmed-up `matVec` allocates nothing. Allocation in a Vector API kernel means C2 failed to intrinsify or inline
/// it (vectors boxed on the heap), which makes it 6–100× slower, so this test is the guard against silent
/// de-optimisation. It runs single-threaded, where `getCurrentThreadAllocatedBytes` sees every byte.
class AllocationTest {

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "F32", "F16", "BF16", "Q4_K", "Q6_K", "Q5_K", "Q4_1", "Q5_0", "Q5_1", "Q2_K",
            "Q3_K"})
    void warmMatVecAllocatesNothing(GGMLType type) {
        com.sun.management.ThreadMXBean bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int rows = 37;
        int cols = 4 * 256;
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, 3), rows, cols);
            float[] x = RandomWeights.floats(cols, 4);
            float[] out = new float[rows];
            long allocated = -1;
            // Warm up until C2 has compiled the kernel; a few rounds absorb compilation and deoptimisation.
            for (int round = 0; round < 40 && allocated != 0; round++) {
                for (int i = 0; i < 2_000; i++) {
                    Kernels.matVec(pool, m, x, 0, out, 0);
                }
                long before = bean.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 100; i++) {
                    Kernels.matVec(pool, m, x, 0, out, 0);
                }
                allocated = bean.getCurrentThreadAllocatedBytes() - before;
            }
            assertThat(allocated).as("bytes allocated by 100 warm %s matVec calls", type).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "F32", "F16", "BF16", "Q4_K", "Q6_K", "Q5_K"})
    void warmMatMulAllocatesNothing(GGMLType type) {
        com.sun.management.ThreadMXBean bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int rows = 37;
        int cols = 2 * 256;
        int tokens = 40;
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, 3), rows, cols);
            float[] x = RandomWeights.floats(Kernels.tiledSize(cols, tokens), 4);
            float[] out = new float[Kernels.tiledSize(rows, tokens)];
            long allocated = -1;
            for (int round = 0; round < 60 && allocated != 0; round++) {
                for (int i = 0; i < 300; i++) {
                    Kernels.matMul(pool, m, x, 0, out, 0, tokens);
                }
                long before = bean.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 20; i++) {
                    Kernels.matMul(pool, m, x, 0, out, 0, tokens);
                }
                allocated = bean.getCurrentThreadAllocatedBytes() - before;
            }
            assertThat(allocated).as("bytes allocated by 20 warm %s matMul calls", type).isZero();
        }
    }

    @org.junit.jupiter.api.Test
    void warmAttentionAllocatesNothing() {
        com.sun.management.ThreadMXBean bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int headSize = 64;
        int group = 4;
        int n = 300;
        int padded = Attention.paddedLength(n);
        float[] keys = RandomWeights.floats(2 * padded * headSize, 1);
        float[] values = RandomWeights.floats(padded * 2 * headSize, 2);
        float[] q = RandomWeights.floats(group * headSize, 3);
        float[] att = new float[group * padded];
        float[] out = new float[group * headSize];
        long allocated = -1;
        // up to ~100 rounds: the JIT may be busy compiling earlier tests' kernels; boxing would never stop
        for (int round = 0; round < 100 && allocated != 0; round++) {
            for (int i = 0; i < 2_000; i++) {
                Attention.attend(q, 0, group, headSize, keys, 1, padded, values, headSize, 2 * headSize, n, 0.125f,
                        att, 0, out, 0);
            }
            long before = bean.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 100; i++) {
                Attention.attend(q, 0, group, headSize, keys, 1, padded, values, headSize, 2 * headSize, n, 0.125f,
                        att, 0, out, 0);
            }
            allocated = bean.getCurrentThreadAllocatedBytes() - before;
        }
        assertThat(allocated).as("bytes allocated by 100 warm attention calls").isZero();
    }
}
