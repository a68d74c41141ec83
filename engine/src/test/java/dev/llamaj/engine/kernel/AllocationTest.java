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
        int rows = 37;
        int cols = 4 * 256;
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, 3), rows, cols);
            float[] x = RandomWeights.floats(cols, 4);
            float[] out = new float[rows];
            long allocated = allocatedWhenWarm(() -> Kernels.matVec(pool, m, x, 0, out, 0), 2_000, 100);
            assertThat(allocated).as("bytes allocated by 100 warm %s matVec calls", type).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "F32", "F16", "BF16", "Q4_K", "Q6_K", "Q5_K"})
    void warmMatMulAllocatesNothing(GGMLType type) {
        int rows = 37;
        int cols = 2 * 256;
        int tokens = 40;
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, 3), rows, cols);
            float[] x = RandomWeights.floats(Kernels.tiledSize(cols, tokens), 4);
            float[] out = new float[Kernels.tiledSize(rows, tokens)];
            long allocated = allocatedWhenWarm(() -> Kernels.matMul(pool, m, x, 0, out, 0, tokens), 300, 20);
            assertThat(allocated).as("bytes allocated by 20 warm %s matMul calls", type).isZero();
        }
    }

    @org.junit.jupiter.api.Test
    void warmAttentionAllocatesNothing() {
        int headSize = 64;
        int group = 4;
        int n = 300;
        int padded = Attention.paddedLength(n);
        short[] keys = RandomWeights.halves(2 * padded * headSize, 1);
        short[] values = RandomWeights.halves(padded * 2 * headSize, 2);
        float[] q = RandomWeights.floats(group * headSize, 3);
        float[] att = new float[group * padded];
        float[] out = new float[group * headSize];
        long allocated = allocatedWhenWarm(() -> Attention.attend(q, 0, group, headSize, keys, 1, padded, values,
                headSize, 2 * headSize, n, 0.125f, att, 0, out, 0), 2_000, 100);
        assertThat(allocated).as("bytes allocated by 100 warm attention calls").isZero();
    }

    /// Bytes `measured` calls of `call` allocate once warm: rounds of `warmUp` calls and a measurement until a
    /// round allocates nothing, for up to 30 seconds. The JIT may still be busy compiling the kernels of earlier
    /// tests, on two cores; a kernel whose compiled code boxes vectors keeps allocating, and fails.
    static long allocatedWhenWarm(Runnable call, int warmUp, int measured) {
        com.sun.management.ThreadMXBean bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long deadline = System.nanoTime() + 30_000_000_000L;
        long allocated;
        do {
            for (int i = 0; i < warmUp; i++) {
                call.run();
            }
            long before = bean.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < measured; i++) {
                call.run();
            }
            allocated = bean.getCurrentThreadAllocatedBytes() - before;
        } while (allocated != 0 && System.nanoTime() < deadline);
        return allocated;
    }
}
