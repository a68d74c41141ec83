package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// The worker pool: exact coverage of the range, grain-aligned chunks, exceptions reaching the caller, and the
/// one-region-at-a-time rule.
class ParallelTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4})
    void coversEveryIndexOnceInGrainAlignedChunks(int threads) {
        try (Parallel pool = new Parallel(threads)) {
            assertThat(pool.threads()).isEqualTo(threads);
            for (int n : new int[] {0, 1, 7, 16, 17, 100, 1000, 4099}) {
                for (int grain : new int[] {1, 4, 16}) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(n);
                    pool.forRange(n, grain, (from, to) -> {
                        assertThat(from).isLessThan(to);
                        assertThat(from % grain).as("chunk start %d is a multiple of %d", from, grain).isZero();
                        for (int i = from; i < to; i++) {
                            hits.incrementAndGet(i);
                        }
                    });
                    for (int i = 0; i < n; i++) {
                        assertThat(hits.get(i)).as("n=%d grain=%d index %d", n, grain, i).isEqualTo(1);
                    }
                }
            }
        }
    }

    @Test
    void splitsWorkAcrossThreads() throws InterruptedException {
        try (Parallel pool = new Parallel(2)) {
            AtomicReference<Thread> other = new AtomicReference<>();
            Thread caller = Thread.currentThread();
            for (int attempt = 0; attempt < 50 && other.get() == null; attempt++) {
                pool.forRange(64, 16, (from, to) -> {
                    if (Thread.currentThread() != caller) {
                        other.set(Thread.currentThread());
                    } else {
                        pause(2); // leaves the other chunks to the worker
                    }
                });
            }
            assertThat(other.get()).isNotNull();
            assertThat(other.get().isDaemon()).isTrue();
        }
    }

    @Test
    void workerExceptionReachesTheCaller() {
        try (Parallel pool = new Parallel(2)) {
            Thread caller = Thread.currentThread();
            assertThatThrownBy(() -> pool.forRange(100, 1, (from, to) -> {
                if (Thread.currentThread() != caller) {
                    throw new IllegalStateException("boom in worker at " + from);
                }
                pause(20); // the worker claims the other chunks meanwhile
            })).isInstanceOf(IllegalStateException.class).hasMessageStartingWith("boom in worker at ");
            // the pool still works afterwards
            AtomicIntegerArray hits = new AtomicIntegerArray(100);
            pool.forRange(100, 1, (from, to) -> {
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < 100; i++) {
                assertThat(hits.get(i)).isEqualTo(1);
            }
        }
    }

    @Test
    void callerExceptionWinsAndKeepsWorkerExceptionsSuppressed() {
        try (Parallel pool = new Parallel(2)) {
            Thread caller = Thread.currentThread();
            boolean sawWorker = false;
            // whether the worker gets a chunk is up to the scheduler, so try until it has failed alongside the caller
            for (int attempt = 0; attempt < 20 && !sawWorker; attempt++) {
                CountDownLatch callerStarted = new CountDownLatch(1);
                Throwable thrown = catchThrowable(() -> pool.forRange(100, 1, (from, to) -> {
                    if (Thread.currentThread() == caller) {
                        callerStarted.countDown();
                        pause(20);
                        throw new ArithmeticException("caller");
                    }
                    try {
                        callerStarted.await(); // so the caller surely gets a chunk
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    throw new ArithmeticException("worker");
                }));
                assertThat(thrown).isInstanceOf(ArithmeticException.class).hasMessage("caller");
                sawWorker = Arrays.stream(thrown.getSuppressed()).anyMatch(t -> "worker".equals(t.getMessage()));
            }
            assertThat(sawWorker).as("a worker's exception was kept as suppressed").isTrue();
        }
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void rejectsNestedRegions() {
        try (Parallel pool = new Parallel(2)) {
            assertThatThrownBy(() -> pool.forRange(100, 1, (from, to) -> pool.forRange(100, 1, (a, b) -> { })))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("one region at a time");
        }
    }

    @Test
    void rejectsWorkAfterClose() {
        Parallel pool = new Parallel(2);
        pool.close();
        pool.close();
        assertThatThrownBy(() -> pool.forRange(10, 1, (from, to) -> { }))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
    }

    @Test
    void rejectsBadArguments() {
        assertThatThrownBy(() -> new Parallel(0)).isInstanceOf(IllegalArgumentException.class);
        try (Parallel pool = new Parallel(1)) {
            assertThatThrownBy(() -> pool.forRange(-1, 1, (from, to) -> { }))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> pool.forRange(10, 0, (from, to) -> { }))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void survivesManyRegionsAndIdleParking() throws InterruptedException {
        try (Parallel pool = new Parallel(2)) {
            long[] sums = new long[2];
            for (int round = 0; round < 3; round++) {
                for (int k = 0; k < 20_000; k++) {
                    pool.forRange(32, 16, (from, to) -> sums[from / 16] += to - from);
                }
                Thread.sleep(5); // long enough for the worker to park
            }
            assertThat(sums[0] + sums[1]).isEqualTo(3L * 20_000 * 32);
        }
    }
}
