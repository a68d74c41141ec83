package dev.llamaj.engine.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/// Off-heap memory for repacked weights: anonymous 2 MiB-aligned mappings with transparent huge pages requested
/// (`madvise(MADV_HUGEPAGE)`: fewer TLB misses when a token streams through the weights), and a way to drop the
/// pages of a read-only file mapping from the process's resident set once its contents were copied
/// (`madvise(MADV_DONTNEED)`; they are read back from the page cache if touched again).
///
/// Both need `mmap`/`madvise` through the FFM API: only on Linux, and only when native access is enabled for this
/// code (otherwise the JVM would print a warning); elsewhere [#allocate] falls back to an ordinary aligned
/// allocation and [#release] does nothing.
@SuppressWarnings("restricted") // guarded by NATIVE
final class Memory {
    private static final long HUGE_PAGE = 1L << 21;
    private static final long PAGE = 4096;
    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
    private static final int MADV_DONTNEED = 4;
    private static final int MADV_HUGEPAGE = 14;

    private static final MethodHandle MMAP;
    private static final MethodHandle MADVISE;
    private static final MethodHandle MUNMAP;

    static {
        MethodHandle mmap = null;
        MethodHandle madvise = null;
        MethodHandle munmap = null;
        if (System.getProperty("os.name", "").equals("Linux") && Memory.class.getModule().isNativeAccessEnabled()) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            } catch (RuntimeException e) {
                mmap = null;
            }
        }
        MMAP = mmap;
        MADVISE = madvise;
        MUNMAP = munmap;
    }

    private Memory() {
    }

    /// Bytes of memory the system can still give without swapping: Linux's `MemAvailable` (free memory plus the
    /// page cache it can drop), else the JVM's view of free physical memory.
    static long availableBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux: below
        }
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getFreeMemorySize();
    }

    /// `bytes` of zeroed memory, 2 MiB-aligned, huge pages requested where possible; freed with `arena`.
    static MemorySegment allocate(long bytes, Arena arena) {
        if (MMAP != null) {
            try {
                long size = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
                // over-allocate by a huge page so that the usable range can start on a 2 MiB boundary
                MemorySegment raw = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, size + HUGE_PAGE,
                        PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
                long address = raw.address();
                if (address != -1L && address != 0L) {
                    long start = (address + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
                    MemorySegment aligned = MemorySegment.ofAddress(start).reinterpret(size);
                    int _ = (int) MADVISE.invokeExact(aligned, size, MADV_HUGEPAGE);
                    long total = size + HUGE_PAGE;
                    return MemorySegment.ofAddress(start).reinterpret(bytes, arena, _ -> {
                        try {
                            int _ = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), total);
                        } catch (Throwable t) {
                            throw new IllegalStateException("munmap failed", t);
                        }
                    });
                }
            } catch (Throwable t) {
                // fall back to the arena
            }
        }
        return arena.allocate(bytes, HUGE_PAGE);
    }

    /// Drops the whole pages inside `segment` (a read-only file mapping) from the resident set. Best effort.
    static void release(MemorySegment segment) {
        if (MADVISE == null || !segment.isNative() || !segment.isMapped()) {
            return;
        }
        long start = (segment.address() + PAGE - 1) / PAGE * PAGE;
        long end = (segment.address() + segment.byteSize()) / PAGE * PAGE;
        if (end <= start) {
            return;
        }
        try {
            int _ = (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), end - start, MADV_DONTNEED);
        } catch (Throwable t) {
            // best effort
        }
    }
}
