package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Collections;

import org.junit.jupiter.api.Test;

/// The relaunched JVM keeps its heap small unless the user chose a collector or heap sizes themselves.
class LauncherTest {

    @Test
    void defaultsToASmallShrinkingSerialHeap() {
        assertThat(Launcher.memoryDefaults(Collections.<String>emptyList())).containsExactly("-XX:+UseSerialGC",
                "-Xms32m", "-XX:MinHeapFreeRatio=5", "-XX:MaxHeapFreeRatio=20");
    }

    @Test
    void theUsersChoicesWin() {
        assertThat(Launcher.memoryDefaults(Arrays.asList("-XX:+UseG1GC", "-Xmx8g"))).isEmpty();
        assertThat(Launcher.memoryDefaults(Arrays.asList("-Xms1g"))).containsExactly("-XX:+UseSerialGC");
        assertThat(Launcher.memoryDefaults(Arrays.asList("-XX:+UseParallelGC", "-Dx=y")))
                .containsExactly("-Xms32m", "-XX:MinHeapFreeRatio=5", "-XX:MaxHeapFreeRatio=20");
    }
}
