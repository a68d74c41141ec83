package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// Warm kernels allocate nothing. Allocation in a Vector API kernel means C2 failed to intrinsify or inline it
/// (vectors boxed on the heap), which makes it 6–100× slower, so this test is the guard against silent
/// de-optimisation. Measured single-threaded, where `getCurrentThreadAllocatedBytes` sees every byte.
///
/// Each case is a fresh JVM ([AllocationProbe]) holding the weight types of one kind of model file, whose kernels
/// it warms together with [WarmUp], as loading that model does.
///
/// The probes run with `-XX:-UseTypeProfile`: C2 then never inlines a call by speculating on the receiver type the
/// profile recorded. A kernel that needs that speculation (a loop-carried vector as the receiver of a call, see
/// [Simd]) boxes only when its profile happens to be missing or spoilt: when a busy machine makes the JIT compile it
/// straight from unprofiled code, or after other kernels pushed the Vector API's shared methods past their trap
/// limits. That failed this test about one run in five under load, and the CI once; without the profile it fails
/// every run, and a kernel that passes here does not depend on either.
class AllocationTest {

    /// One line per model kind: the weight types of its matrices; `/r` marks the layout the loader repacks to.
    @ParameterizedTest
    @ValueSource(strings = {
            "Q4_0/r", "Q8_0/r", "Q4_K/r Q6_K/r", "Q5_K Q6_K/r", "Q6_K/r", "F16", "BF16", "F32",
            "Q4_0 Q8_0", "Q4_K Q6_K", "Q5_K Q6_K", "Q4_1 Q5_0 Q5_1 Q2_K Q3_K", "Q2_K/r Q3_K/r Q4_K/r Q6_K/r"})
    void warmKernelsAllocateNothing(String types) throws Exception {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx1g",
                "-XX:-UseTypeProfile",
                "-cp", System.getProperty("java.class.path"), AllocationProbe.class.getName()));
        command.addAll(List.of(types.split(" ")));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(output).isZero();
        List<String> results = output.lines().filter(l -> l.matches("\\S+ (matVec |matMul |matMulFew )?\\d+")).toList();
        assertThat(results).as(output).hasSize(3 * types.split(" ").length + 4);
        for (String line : results) {
            assertThat(line).as("bytes allocated by warm calls (%s)", types).endsWith(" 0");
        }
    }

    /// Bytes `measured` calls of `call` allocate once warm: rounds of `warmUp` calls and a measurement until a
    /// round allocates nothing, for up to 30 seconds. The JIT may still be busy compiling other kernels, on two
    /// cores; a kernel whose compiled code boxes vectors keeps allocating, and fails.
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
