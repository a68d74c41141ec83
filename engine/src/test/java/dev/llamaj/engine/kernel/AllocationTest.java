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
    @EnumSource(names = {"Q8_0", "Q4_0", "F32", "F16", "BF16", "Q4_K", "Q6_K"})
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
            for (int round = 0; round < 20 && allocated != 0; round++) {
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
}
