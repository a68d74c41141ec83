package dev.llamaj.engine.kernel;

import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/// A persistent pool of `threads − 1` daemon workers that, together with the calling thread, split index ranges.
///
/// A token of a 1B-parameter model runs 100+ parallel regions, so dispatch must cost about a microsecond, not the
/// 15–20 µs of a `ForkJoinPool` submit/join. The hand-off spins: the caller publishes a region by writing one
/// `claim` word (region epoch | chunk count | next chunk); workers, spinning on that word with
/// `Thread.onSpinWait()`, see the new epoch at once and claim chunks with a compare-and-set, as the caller does;
/// each finished chunk counts up `done`, on which the caller spins once it finds no chunk left to claim. Measured
/// on two cores: about 0.6 µs per region.
///
/// A worker that has seen no new region for [#SPIN_NANOS] parks (`LockSupport.park`), so an idle pool costs no CPU,
/// and the next region unparks it. Waking a parked thread can take hundreds of microseconds on a virtual machine,
/// which is why work is claimed rather than assigned: the caller does not wait for a worker that is still waking,
/// it runs the unclaimed chunks itself and waits only for chunks a worker actually took. Each region is cut into
/// up to [#CHUNKS_PER_THREAD] chunks per thread, so a late worker can still take part.
///
/// **One caller at a time.** A `Parallel` belongs to one session and is driven by one thread at a time (it may be a
/// different thread from call to call). Regions do not nest: calling [#forRange] from inside a task, or from two
/// threads at once, throws `IllegalStateException`. Close the pool with the session; a closed pool rejects work.
///
/// A pool of one thread has no workers and runs every region inline on the caller.
public final class Parallel implements AutoCloseable {

    /// The body of a parallel region: process indices `[from, to)`.
    @FunctionalInterface
    public interface RangeTask {
        void run(int from, int to);
    }

    /// How long an idle thread spins before it parks: long enough to bridge the serial work between the regions of a
    /// forward pass, short enough not to burn a core while the session waits for its user.
    static final long SPIN_NANOS = 200_000;
    /// Chunks per thread in a region (fewer when there are fewer `grain`s of work).
    static final int CHUNKS_PER_THREAD = 4;

    // claim word: epoch (bits 32..63) | chunk count (bits 16..31) | next unclaimed chunk (bits 0..15)
    private static final int MAX_CHUNKS = 0xFFFF;

    private final int threads;
    private final Worker[] workers;

    /// Scratch task for [Kernels#matVec], reused so that a product allocates nothing.
    final Kernels.MatVecTask matVecTask = new Kernels.MatVecTask();
    private MatMul.Task matMulTask;
    private SmallBatch.Task smallBatchTask;

    /// The state of [Kernels#matMul] products (per-thread panels), created on first use.
    MatMul.Task matMulTask() {
        MatMul.Task t = matMulTask;
        if (t == null) {
            t = matMulTask = new MatMul.Task(this);
        }
        return t;
    }

    /// The state of [Kernels#matMulFew] products, created on first use.
    SmallBatch.Task smallBatchTask() {
        SmallBatch.Task t = smallBatchTask;
        if (t == null) {
            t = smallBatchTask = new SmallBatch.Task(this);
        }
        return t;
    }

    // The current region: written by the caller before the claim word publishes it; stable while any chunk is
    // outstanding, which is the only time a worker reads it.
    private RangeTask task;
    private int n;
    private int grain;
    private int chunks;

    private final AtomicLong claim = new AtomicLong();
    private final AtomicInteger done = new AtomicInteger();
    private final AtomicReference<Throwable> workerFailure = new AtomicReference<>();
    private Throwable callerFailure; // the caller thread's only
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile boolean closed;
    private volatile boolean callerParked;
    private volatile Thread caller;

    /// Starts `threads − 1` worker threads.
    ///
    /// @param threads threads that run a region, the caller included; at least 1
    /// @throws IllegalArgumentException if `threads < 1`
    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("a pool needs at least 1 thread, got " + threads);
        }
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    /// Threads that run a region, the caller included.
    public int threads() {
        return threads;
    }

    /// The index of the calling thread in this pool, in `[0, threads())`: a worker's own index, or 0 for any other
    /// thread (the caller of [#forRange]). Lets a task pick per-thread scratch space.
    public int threadIndex() {
        return Thread.currentThread() instanceof Worker w && w.pool() == this ? w.index : 0;
    }

    /// Runs `task` over `[0, n)` cut into contiguous chunks whose boundaries are multiples of `grain` (so chunks of
    /// rows stay aligned to a kernel's row group or to a cache line of outputs), spread over the pool's threads;
    /// returns when all chunks are done. With one `grain` of work or less, or a one-thread pool, the task runs
    /// inline as `task.run(0, n)`.
    ///
    /// An exception thrown by any chunk is rethrown here once all claimed chunks have finished: the caller thread's
    /// first exception if it had one, else the first worker's, with the others added as suppressed; the remaining
    /// chunks may or may not have run.
    ///
    /// @throws IllegalArgumentException if `n < 0` or `grain < 1`
    /// @throws IllegalStateException    if the pool is closed, or a region is already running (nested or concurrent
    ///                                  call)
    public void forRange(int n, int grain, RangeTask task) {
        Objects.requireNonNull(task, "task");
        if (n < 0 || grain < 1) {
            throw new IllegalArgumentException("forRange needs n >= 0 and grain >= 1, got n=" + n + " grain=" + grain);
        }
        if (closed) {
            throw new IllegalStateException("this Parallel pool is closed");
        }
        if (threads == 1 || n <= grain) {
            if (n > 0) {
                task.run(0, n);
            }
            return;
        }
        if (!busy.compareAndSet(false, true)) {
            throw new IllegalStateException(
                    "a Parallel pool runs one region at a time: forRange was called from inside a task"
                            + " or from two threads");
        }
        try {
            long units = ((long) n + grain - 1) / grain;
            int count = (int) Math.min(units, Math.min(MAX_CHUNKS, (long) threads * CHUNKS_PER_THREAD));
            this.task = task;
            this.n = n;
            this.grain = grain;
            this.chunks = count;
            this.caller = Thread.currentThread();
            done.set(0);
            long epoch = (claim.get() >>> 32) + 1;
            claim.set(epoch << 32 | (long) count << 16); // publishes the fields above
            for (Worker w : workers) {
                if (w.parked) {
                    LockSupport.unpark(w);
                }
            }
            callerFailure = null;
            runChunks();
            awaitChunks(count);
            this.task = null;
            Throwable mine = callerFailure;
            Throwable theirs = workerFailure.getAndSet(null);
            callerFailure = null;
            if (mine != null) {
                if (theirs != null) {
                    mine.addSuppressed(theirs);
                }
                throw unchecked(mine);
            }
            if (theirs != null) {
                throw unchecked(theirs);
            }
        } finally {
            busy.set(false);
        }
    }

    /// Claims and runs chunks of the current region until none is left. Called by the caller and the workers.
    private void runChunks() {
        while (true) {
            long c = claim.get();
            int next = (int) (c & 0xFFFF);
            int count = (int) (c >>> 16 & 0xFFFF);
            if (next >= count) {
                return;
            }
            if (!claim.compareAndSet(c, c + 1)) {
                continue;
            }
            // A claimed chunk keeps the region alive, so the fields are stable here.
            try {
                int from = bound(next, n, grain, chunks);
                int to = bound(next + 1, n, grain, chunks);
                if (from < to) {
                    task.run(from, to);
                }
            } catch (Throwable t) {
                if (Thread.currentThread() == caller) {
                    if (callerFailure == null) {
                        callerFailure = t;
                    } else {
                        callerFailure.addSuppressed(t);
                    }
                } else {
                    Throwable first = workerFailure.compareAndExchange(null, t);
                    if (first != null) {
                        first.addSuppressed(t);
                    }
                }
            }
            if (done.incrementAndGet() == count && callerParked) {
                LockSupport.unpark(caller);
            }
        }
    }

    /// Start of chunk `i` of `parts`: `[0, n)` is cut into `ceil(n / grain)` units shared out evenly.
    private static int bound(int i, int n, int grain, int parts) {
        long units = ((long) n + grain - 1) / grain;
        long unit = units * i / parts;
        return (int) Math.min(unit * grain, n);
    }

    private void awaitChunks(int count) {
        long start = 0;
        int spins = 0;
        while (done.get() != count) {
            if ((++spins & 127) != 0) {
                Thread.onSpinWait();
                continue;
            }
            if (start == 0) {
                start = System.nanoTime();
            }
            if (System.nanoTime() - start < SPIN_NANOS) {
                Thread.onSpinWait();
                continue;
            }
            callerParked = true;
            if (done.get() != count) { // re-check after announcing, so the last worker's unpark cannot be missed
                LockSupport.park(this);
            }
            callerParked = false;
        }
    }

    private static RuntimeException unchecked(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new RuntimeException(t);
    }

    /// Stops the workers. Idempotent; waits briefly for them to exit.
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends Thread {
        volatile boolean parked;
        final int index;

        Worker(int index) {
            super("llamaj-parallel-" + index);
            this.index = index;
            setDaemon(true);
        }

        Parallel pool() {
            return Parallel.this;
        }

        @Override
        public void run() {
            long seen = 0;
            while (true) {
                seen = awaitRegion(seen);
                if (closed) {
                    return;
                }
                runChunks();
            }
        }

        /// Waits until the claim word shows an epoch other than `seen`, or the pool closes; returns the new epoch.
        private long awaitRegion(long seen) {
            long start = System.nanoTime();
            int spins = 0;
            while (true) {
                long epoch = claim.get() >>> 32;
                if (epoch != seen || closed) {
                    return epoch;
                }
                if ((++spins & 127) != 0 || System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                parked = true;
                if (claim.get() >>> 32 == seen && !closed) { // re-check after announcing: no lost unpark
                    LockSupport.park(this);
                }
                parked = false;
            }
        }
    }
}
