package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/// Sanity of the measurement on a small buffer (no speed is asserted: timing belongs to `bench`).
class BandwidthTest {
    @Test
    void measuresWithOneAndSeveralThreads() {
        try (Bandwidth b = Bandwidth.allocate(8L << 20)) {
            assertThat(b.bytes()).isEqualTo(8L << 20);
            for (int threads : new int[] {1, 2, 3}) {
                Bandwidth.Result r = b.measure(threads, 3);
                assertThat(r.threads()).isEqualTo(threads);
                assertThat(r.bytes()).isEqualTo(8L << 20);
                assertThat(r.repetitions()).isEqualTo(3);
                assertThat(r.medianGBps()).isPositive().isFinite();
                assertThat(r.bestGBps()).isGreaterThanOrEqualTo(r.medianGBps());
                assertThat(r.toString()).contains("best", "median", "GB/s");
            }
        }
    }

    @Test
    void rejectsSizesThatAreNotWholeMebibytes() {
        assertThatThrownBy(() -> Bandwidth.allocate(1000)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("multiple of 1 MiB");
        assertThatThrownBy(() -> Bandwidth.allocate(0)).isInstanceOf(IllegalArgumentException.class);
        try (Bandwidth b = Bandwidth.allocate(1 << 20)) {
            assertThatThrownBy(() -> b.measure(0, 1)).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
