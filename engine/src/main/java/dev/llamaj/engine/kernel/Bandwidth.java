package dev.llamaj.engine.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;

import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/// Measures the machine's memory read bandwidth from Java, the ceiling of token generation: a token reads every
/// weight once, so `tokens/s ≤ bandwidth / bytes per token`.
///
/// The method is the one `performance.md` (section 5.4) found to get closest to C: an off-heap buffer much larger
/// than the caches (1 GiB by default), pre-touched so no page fault is timed, with transparent huge pages requested
/// (`madvise(MADV_HUGEPAGE)` on an `mmap`ed region, on Linux when native access is enabled; otherwise an ordinary
/// off-heap allocation); it is summed with preferred-shape `long` vectors into 4 independent accumulators, in an
/// `int`-indexed loop over 1 MiB slices (a `long`-indexed loop measured about 15% slower). Each thread sums its own
/// contiguous share; a repetition is timed from the moment all threads are released until the last one finishes.
/// After one untimed pass, the best and the median of the repetitions are reported, in GB/s (10⁹ bytes per second).
///
/// ```java
/// try (Bandwidth b = Bandwidth.allocate(Bandwidth.DEFAULT_BYTES)) {
///     Bandwidth.Result one = b.measure(1, 10);
///     Bandwidth.Result all = b.measure(Runtime.getRuntime().availableProcessors(), 10);
/// }
/// ```
public final class Bandwidth implements AutoCloseable {
    /// 1 GiB: far larger than any cache, so the reads come from DRAM.
    public static final long DEFAULT_BYTES = 1L << 30;
    /// The unit of the inner loop and of the buffer size.
    public static final int SLICE_BYTES = 1 << 20;

    private static final VectorSpecies<Long> LONGS = LongVector.SPECIES_PREFERRED;
    private static final int VECTOR_BYTES = LONGS.vectorByteSize();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final long HUGE_PAGE = 2L << 20;
    /// Calls of the summing loop on one slice before measuring: 4096 loop iterations each, past C2's thresholds.
    private static final int WARM_UP_CALLS = 64;

    /// Keeps the sums live so the reads cannot be optimised away.
    private static volatile long sink;

    /// One measurement.
    ///
    /// @param threads      threads that read in parallel
    /// @param bytes        bytes read per repetition (the whole buffer)
    /// @param repetitions  timed repetitions
    /// @param bestGBps     the fastest repetition, in 10⁹ bytes per second
    /// @param medianGBps   the median repetition
    /// @param hugePages    whether transparent huge pages were requested for the buffer
    public record Result(int threads, long bytes, int repetitions, double bestGBps, double medianGBps,
                         boolean hugePages) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d thread%s: best %.1f GB/s, median %.1f GB/s (%d x %d MiB%s)",
                    threads, threads == 1 ? "" : "s", bestGBps, medianGBps, repetitions, bytes >> 20,
                    hugePages ? ", huge pages requested" : "");
        }
    }

    private final Arena arena;
    private final MemorySegment buffer;
    private final boolean hugePages;

    private Bandwidth(Arena arena, MemorySegment buffer, boolean hugePages) {
        this.arena = arena;
        this.buffer = buffer;
        this.hugePages = hugePages;
    }

    /// Allocates and pre-touches a buffer of `bytes` (a positive multiple of [#SLICE_BYTES]).
    ///
    /// @throws IllegalArgumentException if `bytes` is not a positive multiple of [#SLICE_BYTES]
    /// @throws OutOfMemoryError if the memory cannot be had
    public static Bandwidth allocate(long bytes) {
        if (bytes <= 0 || bytes % SLICE_BYTES != 0 || bytes / SLICE_BYTES > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the bandwidth buffer must be a positive multiple of 1 MiB, got " + bytes);
        }
        Arena arena = Arena.ofShared();
        try {
            HugePages.Mapping mapped = HugePages.map(bytes, arena);
            MemorySegment buffer = mapped != null ? mapped.segment() : arena.allocate(bytes, HUGE_PAGE);
            buffer.fill((byte) 1); // pre-touch every page
            warmUp(buffer);
            return new Bandwidth(arena, buffer, mapped != null && mapped.advised());
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    public long bytes() {
        return buffer.byteSize();
    }

    /// Whether transparent huge pages were requested (`madvise`) for the buffer.
    public boolean hugePages() {
        return hugePages;
    }

    /// Reads the whole buffer `repetitions` times (after one untimed pass) with `threads` threads.
    ///
    /// @throws IllegalArgumentException if `threads` or `repetitions` is below 1
    public Result measure(int threads, int repetitions) {
        if (threads < 1 || repetitions < 1) {
            throw new IllegalArgumentException("threads and repetitions must be 1 or more, got " + threads + " and "
                    + repetitions);
        }
        int slices = (int) (buffer.byteSize() / SLICE_BYTES);
        long[] nanos = new long[repetitions];
        AtomicInteger round = new AtomicInteger();   // bumped to release the workers for one pass
        AtomicInteger done = new AtomicInteger();
        Thread[] workers = new Thread[threads - 1];
        for (int t = 1; t < threads; t++) {
            int from = (int) ((long) slices * t / threads);
            int to = (int) ((long) slices * (t + 1) / threads);
            workers[t - 1] = new Thread(() -> {
                long sum = 0;
                for (int r = 1; r <= repetitions + 1; r++) {
                    while (round.get() < r) {
                        Thread.onSpinWait();
                    }
                    sum += sumSlices(buffer, from, to);
                    done.incrementAndGet();
                }
                sink += sum;
            }, "llamaj-bandwidth-" + t);
            workers[t - 1].setDaemon(true);
            workers[t - 1].start();
        }
        int ownEnd = slices / threads;
        long sum = 0;
        for (int r = 0; r <= repetitions; r++) {
            done.set(0);
            long start = System.nanoTime();
            round.incrementAndGet();
            sum += sumSlices(buffer, 0, ownEnd);
            while (done.get() < threads - 1) {
                Thread.onSpinWait();
            }
            long elapsed = System.nanoTime() - start;
            if (r > 0) { // the first pass is the warm-up
                nanos[r - 1] = elapsed;
            }
        }
        sink += sum;
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        Arrays.sort(nanos);
        long median = repetitions % 2 == 1 ? nanos[repetitions / 2]
                : (nanos[repetitions / 2 - 1] + nanos[repetitions / 2]) / 2;
        double bytes = buffer.byteSize();
        return new Result(threads, buffer.byteSize(), repetitions, bytes / nanos[0], bytes / median, hugePages);
    }

    /// Runs the summing loop on one slice until C2 has compiled it: interpreted, every vector operation allocates,
    /// and a first pass over a whole gigabyte would leave a gigabyte of garbage (and a grown heap) behind.
    private static void warmUp(MemorySegment buffer) {
        long sum = 0;
        for (int i = 0; i < WARM_UP_CALLS; i++) {
            sum += sumSlices(buffer, 0, 1);
        }
        sink += sum;
    }

    /// Sums slices `[from, to)` as longs: an `int`-indexed loop over each 1 MiB slice, 4 vector accumulators.
    private static long sumSlices(MemorySegment buffer, int from, int to) {
        LongVector a0 = LongVector.zero(LONGS);
        LongVector a1 = LongVector.zero(LONGS);
        LongVector a2 = LongVector.zero(LONGS);
        LongVector a3 = LongVector.zero(LONGS);
        for (int s = from; s < to; s++) {
            MemorySegment slice = buffer.asSlice((long) s * SLICE_BYTES, SLICE_BYTES);
            for (int i = 0; i < SLICE_BYTES; i += 4 * VECTOR_BYTES) {
                a0 = LongVector.fromMemorySegment(LONGS, slice, i, ORDER).add(a0);
                a1 = LongVector.fromMemorySegment(LONGS, slice, i + VECTOR_BYTES, ORDER).add(a1);
                a2 = LongVector.fromMemorySegment(LONGS, slice, i + 2 * VECTOR_BYTES, ORDER).add(a2);
                a3 = LongVector.fromMemorySegment(LONGS, slice, i + 3 * VECTOR_BYTES, ORDER).add(a3);
            }
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }

    /// Frees the buffer.
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    /// `mmap` + `madvise(MADV_HUGEPAGE)` through the FFM API, so the kernel backs the buffer with 2 MiB pages where
    /// transparent huge pages are in `madvise` mode. Used only on Linux, and only when native access is enabled
    /// for this code (otherwise the JVM would print a warning), so `map` returns `null` elsewhere.
    @SuppressWarnings("restricted") // guarded by isNativeAccessEnabled
    private static final class HugePages {
        record Mapping(MemorySegment segment, boolean advised) {}

        private static final int PROT_READ_WRITE = 0x1 | 0x2;
        private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
        private static final int MADV_HUGEPAGE = 14;

        static Mapping map(long bytes, Arena arena) {
            if (!System.getProperty("os.name", "").equals("Linux")
                    || !Bandwidth.class.getModule().isNativeAccessEnabled()) {
                return null;
            }
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                MethodHandle mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                MethodHandle madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT));
                MethodHandle munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
                MemorySegment address = (MemorySegment) mmap.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE,
                        MAP_PRIVATE_ANONYMOUS, -1, 0L);
                if (address.address() == -1L || address.address() == 0L) {
                    return null;
                }
                int advised = (int) madvise.invokeExact(address, bytes, MADV_HUGEPAGE);
                MemorySegment mapped = address.reinterpret(bytes, arena, a -> {
                    try {
                        int _ = (int) munmap.invokeExact(a, bytes);
                    } catch (Throwable t) {
                        throw new IllegalStateException("munmap failed", t);
                    }
                });
                return new Mapping(mapped, advised == 0);
            } catch (Throwable t) {
                return null;
            }
        }
    }
}
