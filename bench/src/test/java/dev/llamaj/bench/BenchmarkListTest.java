package dev.llamaj.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/// The JMH annotation processor ran (from JDK 23 it runs only when asked): without its `META-INF/BenchmarkList`,
/// `benchmarks.jar` fails with "Unable to find the resource: /META-INF/BenchmarkList". Runs no benchmark.
class BenchmarkListTest {
    @Test
    void everyBenchmarkIsListed() throws Exception {
        try (InputStream in = getClass().getResourceAsStream("/META-INF/BenchmarkList")) {
            assertThat(in).as("META-INF/BenchmarkList").isNotNull();
            String list = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            for (String benchmark : new String[] {"KernelBenchmark_matVec", "KernelBenchmark_matMul",
                    "OpsBenchmark_attention", "OpsBenchmark_rmsNorm", "OpsBenchmark_softmax", "OpsBenchmark_swiGlu",
                    "OpsBenchmark_rope",
                    "GenerationBenchmark_decode", "GenerationBenchmark_prefill"}) {
                assertThat(list).contains("dev.llamaj.bench.jmh_generated." + benchmark + "_jmhTest");
            }
        }
    }
}
