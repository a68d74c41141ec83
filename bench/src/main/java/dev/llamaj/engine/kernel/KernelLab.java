package dev.llamaj.engine.kernel;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/// Compares kernel variants on a shared, busy machine: the variants run round-robin, each timed by the calling
/// thread's CPU time (time the OS gives to other processes does not count), and the best and median of many rounds
/// are reported. Wall-clock JMH figures swing by 2x at load average 8; these stay within a few percent.
final class KernelLab {
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    record Variant(String name, Runnable call) {}

    private final List<Variant> variants = new ArrayList<>();
    private final double bytesPerCall;
    private final double blocksPerCall;

    /// `bytesPerCall`: weight bytes one call reads; `blocksPerCall`: the units the cycle figure is per.
    KernelLab(double bytesPerCall, double blocksPerCall) {
        this.bytesPerCall = bytesPerCall;
        this.blocksPerCall = blocksPerCall;
    }

    KernelLab add(String name, Runnable call) {
        variants.add(new Variant(name, call));
        return this;
    }

    /// Warms every variant up, then `rounds` rounds of `calls` calls each; prints GB/s and ns/cycles per block.
    void run(int rounds, int calls, double ghz) {
        for (Variant v : variants) {
            for (int i = 0; i < 2000; i++) {
                v.call.run();
            }
        }
        long[][] times = new long[variants.size()][rounds];
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < variants.size(); k++) {
                Runnable c = variants.get(k).call;
                long t0 = THREADS.getCurrentThreadCpuTime();
                for (int i = 0; i < calls; i++) {
                    c.run();
                }
                times[k][r] = THREADS.getCurrentThreadCpuTime() - t0;
            }
        }
        for (int k = 0; k < variants.size(); k++) {
            long[] t = times[k];
            Arrays.sort(t);
            double best = t[0] / (double) calls;
            double median = t[rounds / 2] / (double) calls;
            System.out.printf("%-14s best %7.2f GB/s %6.1f cyc/block | median %7.2f GB/s %6.1f cyc/block%n",
                    variants.get(k).name, bytesPerCall / best, best * ghz / blocksPerCall,
                    bytesPerCall / median, median * ghz / blocksPerCall);
        }
    }
}
