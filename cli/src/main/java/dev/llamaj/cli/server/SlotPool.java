package dev.llamaj.cli.server;

import dev.llamaj.engine.BatchExecutor;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.PrefixCache;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.Speculation;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.LockSupport;

/// The generation slots: one [Session] and one platform thread each, all on the one shared model, plus a bounded
/// queue of requests waiting for a slot.
///
/// A request is admitted with [#submit]: straight to an idle slot (the one whose last context shares the longest
/// prefix with the new prompt, so that part need not be computed again), else into the queue if there is room,
/// else refused. A slot that finishes takes the oldest waiting request. Everything the slot produces (text pieces,
/// then the end) goes to the [Job]'s event queue, which the HTTP side drains at its own pace: a slow client never
/// slows a slot down, and a client that goes away is [Job#cancel]led, which stops its generation after the
/// current token.
///
/// With `batched`, the slots' sessions belong to one [BatchExecutor]: each slot thread still runs its own
/// generation (sampling, stop strings, events), but the forward passes of all busy slots run as one batched step
/// (continuous batching), so N busy slots read the weights once per step rather than N times.
final class SlotPool implements AutoCloseable {
    private final LlamaModel model;
    private final int contextLength;
    private final int queueLimit;
    private final boolean prefixCache;
    /// Prompt blocks shared by the slots' sessions (null: none): a prompt that starts like one computed in another
    /// slot copies that part instead of computing it.
    private final PrefixCache shared;
    private final PrintStream log;
    private final Slot[] slots;
    /// The executor of the slots' batched steps, or null.
    private final BatchExecutor executor;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final List<Slot> idle = new ArrayList<>();
    private boolean accepting = true;
    private boolean closed;

    /// Test hook: a pause after each generated piece of text, to make generations long enough to interrupt.
    volatile long pauseNanosPerPiece;
    /// Generations that failed with an internal error (not a bad request) since the last one that did not; a model
    /// file damaged under the server makes every one fail.
    private final java.util.concurrent.atomic.AtomicInteger consecutiveFailures =
            new java.util.concurrent.atomic.AtomicInteger();
    private volatile String lastFailure;

    SlotPool(LlamaModel model, int parallel, int contextLength, int queueLimit, boolean prefixCache, boolean batched,
             PrefixCache shared, PrintStream log) {
        this.model = model;
        this.executor = batched ? model.newBatchExecutor() : null;
        this.shared = shared;
        this.contextLength = contextLength;
        this.queueLimit = queueLimit;
        this.prefixCache = prefixCache;
        this.log = log;
        this.slots = new Slot[parallel];
        try {
            for (int i = 0; i < parallel; i++) {
                slots[i] = new Slot(i, executor != null ? executor.newSession(contextLength)
                        : model.newSession(contextLength));
                slots[i].session.usePrefixCache(shared);
            }
        } catch (RuntimeException e) {
            for (Slot s : slots) {
                if (s != null) {
                    s.session.close();
                }
            }
            if (executor != null) {
                executor.close();
            }
            throw e;
        }
        for (Slot s : slots) {
            idle.add(s);
            s.thread.start();
        }
    }

    int contextLength() {
        return contextLength;
    }

    LlamaModel model() {
        return model;
    }

    /// The prefix cache the slots share, or null.
    PrefixCache shared() {
        return shared;
    }

    /// Admits a request, or returns null when every slot is busy and the queue is full.
    ///
    /// @throws ApiException 503 if the pool is shutting down
    Job submit(GenerationRequest request) throws ApiException {
        lock.lock();
        try {
            if (!accepting) {
                throw ApiException.shuttingDown();
            }
            Job job = new Job(this, request);
            if (!idle.isEmpty()) {
                Slot best = idle.getFirst();
                int bestShared = -1;
                for (Slot s : idle) {
                    int shared = commonPrefix(s.cached, request.prompt());
                    if (shared > bestShared) {
                        best = s;
                        bestShared = shared;
                    }
                }
                idle.remove(best);
                assign(best, job);
                return job;
            }
            if (waiting.size() >= queueLimit) {
                return null;
            }
            waiting.addLast(job);
            return job;
        } finally {
            lock.unlock();
        }
    }

    private void assign(Slot slot, Job job) {
        job.state = Job.State.ASSIGNED;
        job.slot = slot;
        slot.next = job;
        slot.wake.signal();
    }

    /// Takes a job out of the queue if it is still waiting there; returns whether it was.
    boolean withdraw(Job job) {
        lock.lock();
        try {
            if (job.state == Job.State.QUEUED && waiting.remove(job)) {
                job.state = Job.State.WITHDRAWN;
                return true;
            }
            return false;
        } finally {
            lock.unlock();
        }
    }

    /// Stops admitting requests (they get 503 from now on).
    void stopAccepting() {
        lock.lock();
        try {
            accepting = false;
        } finally {
            lock.unlock();
        }
    }

    /// Waits until no request runs or waits; returns false if `timeout` passed first.
    boolean awaitIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        lock.lock();
        try {
            while (idle.size() < slots.length || !waiting.isEmpty()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                changed.awaitNanos(left);
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /// Refuses every waiting request and stops every running one (their clients get an error).
    void abortAll() {
        List<Job> aborted;
        lock.lock();
        try {
            aborted = new ArrayList<>(waiting);
            waiting.clear();
            for (Job j : aborted) {
                j.state = Job.State.WITHDRAWN;
            }
            for (Slot s : slots) {
                Job running = s.current;
                if (running != null) {
                    running.abort();
                }
                if (s.next != null) {
                    s.next.abort();
                }
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        for (Job j : aborted) {
            j.events.add(new Job.Failed(ApiException.shuttingDown()));
        }
    }

    /// Slots generating now.
    /// Generations in a row that failed with an internal error.
    int consecutiveFailures() {
        return consecutiveFailures.get();
    }

    /// The class of the last internal error, or null.
    String lastFailure() {
        return lastFailure;
    }

    int busy() {
        lock.lock();
        try {
            return slots.length - idle.size();
        } finally {
            lock.unlock();
        }
    }

    /// Requests waiting for a slot.
    int queued() {
        lock.lock();
        try {
            return waiting.size();
        } finally {
            lock.unlock();
        }
    }

    int parallel() {
        return slots.length;
    }

    /// Tokens held in the slots' key/value caches now: a running slot's position, an idle slot's kept context.
    /// Read without stopping the slots, for `/metrics`: a running slot's count may be a token behind.
    int cachedTokens() {
        lock.lock();
        try {
            long n = 0;
            for (Slot s : slots) {
                n += s.current != null ? s.session.position() : s.cached.length;
            }
            return (int) Math.min(n, Integer.MAX_VALUE);
        } finally {
            lock.unlock();
        }
    }

    /// Stops the slot threads (after the current generations, which [#abortAll] shortens) and closes the sessions.
    @Override
    public void close() {
        lock.lock();
        try {
            accepting = false;
            closed = true;
            for (Slot s : slots) {
                s.wake.signal();
            }
        } finally {
            lock.unlock();
        }
        abortAll();
        for (Slot s : slots) {
            try {
                s.thread.join(TimeUnit.SECONDS.toMillis(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        boolean allStopped = true;
        for (Slot s : slots) {
            if (!s.thread.isAlive()) {
                s.session.close();
            } else {
                allStopped = false;
            }
        }
        if (executor != null && allStopped) {
            executor.close();
        }
    }

    /// Counters of the batched steps, if the slots are batched.
    java.util.Optional<BatchExecutor.Stats> batchStats() {
        return executor == null ? java.util.Optional.empty() : java.util.Optional.of(executor.stats());
    }

    static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        int mismatch = Arrays.mismatch(a, 0, n, b, 0, n);
        return mismatch < 0 ? n : mismatch;
    }

    /// Gives each slot the speculation `perSlot` makes for its session (a speculation serves one generation at a
    /// time, so each slot needs its own).
    void speculate(java.util.function.Function<Session, Speculation> perSlot) {
        for (Slot s : slots) {
            s.speculation = perSlot.apply(s.session);
        }
    }

    /// One slot: a session and the thread that runs its jobs.
    final class Slot {
        final int index;
        final Session session;
        final Thread thread;
        final Condition wake = lock.newCondition();
        /// The tokens in the session's context after its last job (guarded by the lock).
        int[] cached = new int[0];
        Job next;              // assigned, not started (guarded by the lock)
        volatile Job current;  // running
        /// Speculative decoding of this slot's generations, or null ([#speculate]).
        volatile Speculation speculation;

        Slot(int index, Session session) {
            this.index = index;
            this.session = session;
            this.thread = Thread.ofPlatform().name("llamaj-slot-" + index).daemon(true).unstarted(this::loop);
        }

        private void loop() {
            while (true) {
                Job job;
                lock.lock();
                try {
                    while (next == null && !closed) {
                        wake.awaitUninterruptibly();
                    }
                    if (next == null) {
                        return;
                    }
                    job = next;
                    next = null;
                    job.state = Job.State.RUNNING;
                    current = job;
                } finally {
                    lock.unlock();
                }
                int[] tokens = new int[0];
                try {
                    run(job);
                    consecutiveFailures.set(0);
                    if (prefixCache) {
                        tokens = session.tokens();
                    }
                } catch (Throwable t) {
                    // the slot survives whatever happened (even an OutOfMemoryError): it starts over next time
                    if (!(t instanceof ApiException)) {
                        lastFailure = t.getClass().getName();
                        consecutiveFailures.incrementAndGet();
                    }
                    job.fail(t);
                    if (log != null) {
                        log.println("llama: slot " + index + ": generation failed: " + t);
                    }
                    try {
                        session.reset();
                    } catch (Throwable ignored) {
                        // the next job's reset or rewind fails the same way, and is reported
                    }
                }
                lock.lock();
                try {
                    current = null;
                    cached = tokens;
                    job.state = Job.State.DONE;
                    Job following = waiting.pollFirst();
                    if (following != null) {
                        assign(this, following);
                    } else {
                        idle.add(this);
                    }
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        }

        /// Runs the job's choices one after another. The prompt is processed once: each further choice rewinds to
        /// just before the prompt's last token and processes that token again, which gives back the logits the
        /// first choice started from at the cost of one token.
        private void run(Job job) {
            job.events.add(Job.STARTED);
            if (job.cancelled) {
                job.events.add(new Job.Finished(null, 0, 0));
                return;
            }
            GenerationRequest r = job.request;
            int[] prompt = r.prompt();
            int reused = 0;
            if (prefixCache) {
                reused = Math.min(commonPrefix(session.tokens(), prompt), prompt.length - 1);
                session.rewind(reused);
                reused = session.position(); // less if a sliding-window cache could not go back that far
                // Start over from the shared cache when it holds more of the prompt than this slot does, or when the
                // slot holds less than a block of it (little to recompute): only a prompt computed from an empty
                // context publishes its blocks (a continued context was split into batches differently, and its
                // earlier answers were computed one token at a time, so its entries are not a fresh run's bits).
                int block = PrefixCache.BLOCK_TOKENS;
                if (session.cachedPrefixLength(prompt) > reused || (reused < block && prompt.length > block)) {
                    session.reset();
                    reused = 0;
                }
            } else {
                session.reset();
            }
            long pause = pauseNanosPerPiece;
            List<Completion> choices = new ArrayList<>(r.n());
            int restored = 0;
            for (int i = 0; i < r.n(); i++) {
                int from = session.position();
                if (i > 0) {
                    session.rewind(prompt.length - 1);
                    from = session.position();
                }
                Sampler sampler = Sampler.create(r.settings().withSeed(r.settings().seed() + i),
                        r.constraint() == null ? null : r.constraint().get())
                        .topLogprobs(Math.max(0, r.logprobs()));
                for (int k = 0; k < from; k++) {
                    sampler.accept(prompt[k]);
                }
                int[] rest = Arrays.copyOfRange(prompt, from, prompt.length);
                Completion c = session.generate(rest, r.maxTokens(), sampler, r.stops(), piece -> {
                    job.events.add(piece);
                    if (job.cancelled) {
                        session.cancel();
                    } else if (pause > 0) {
                        LockSupport.parkNanos(pause);
                    }
                }, r.logprobs() < 0 ? null : job.events::add, speculation);
                choices.add(c);
                if (i == 0) {
                    restored = session.restoredTokens();
                }
                if (i == r.n() - 1 || c.stopReason() == Completion.StopReason.CANCELLED) {
                    break;
                }
                job.events.add(new Job.ChoiceDone(i, c));
            }
            job.events.add(new Job.Finished(choices.getLast(), prompt.length, reused + restored, choices));
        }
    }

    /// One request's life in the pool, shared by the HTTP thread that waits for it and the slot that runs it.
    static final class Job {
        enum State { QUEUED, ASSIGNED, RUNNING, DONE, WITHDRAWN }

        static final Object STARTED = new Object();

        /// The end of a generation: `completion` is its last choice (null if the job was cancelled before it
        /// started), `choices` all of them, in order.
        record Finished(Completion completion, int promptTokens, int cachedTokens, List<Completion> choices) {
            Finished(Completion completion, int promptTokens, int cachedTokens) {
                this(completion, promptTokens, cachedTokens, completion == null ? List.of() : List.of(completion));
            }

            /// Tokens generated over all choices.
            int generatedTokens() {
                return choices.stream().mapToInt(Completion::generatedTokens).sum();
            }
        }

        /// The end of choice `index` when more choices follow (the last one ends with [Finished]).
        record ChoiceDone(int index, Completion completion) {}

        record Failed(Object cause) {}

        final SlotPool pool;
        final GenerationRequest request;
        /// `STARTED`, then per choice its tokens ([Completion.Token], when log-probabilities were asked for) and
        /// text pieces (`String`, each after the tokens that produced it), with a `ChoiceDone` between choices,
        /// then one `Finished` or `Failed`.
        final BlockingQueue<Object> events = new LinkedBlockingQueue<>();
        State state = State.QUEUED; // guarded by the pool's lock
        Slot slot;                  // guarded by the pool's lock
        volatile boolean cancelled;
        volatile boolean aborted;

        Job(SlotPool pool, GenerationRequest request) {
            this.pool = pool;
            this.request = request;
        }

        /// The client is gone: stop generating (after the current token) and free the slot, or leave the queue.
        void cancel() {
            cancelled = true;
            pool.lock.lock();
            try {
                // under the lock, so that the slot cannot move on to another job between the check and the cancel
                // (a cancel that lands after this job's generation ended is cleared by the next generation's start)
                Slot s = slot;
                if (s != null && s.current == this) {
                    s.session.cancel();
                } else if (state == State.QUEUED) {
                    pool.withdraw(this);
                }
            } finally {
                pool.lock.unlock();
            }
        }

        /// The server is shutting down: stop, and tell the client so.
        void abort() {
            aborted = true;
            cancel();
        }

        void fail(Throwable t) {
            events.add(new Failed(t));
        }

        /// Waits for a slot to take this job; false if `timeout` passed first (the job is then withdrawn, unless a
        /// slot took it at the last moment, in which case this returns true).
        boolean awaitStart(Duration timeout) throws InterruptedException, ApiException {
            Object first = events.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
            if (first == null) {
                if (pool.withdraw(this)) {
                    return false;
                }
                first = events.take();
            }
            if (first instanceof Failed f && f.cause() instanceof ApiException e) {
                throw e;
            }
            if (first != STARTED) {
                throw new IllegalStateException("unexpected first event " + first);
            }
            return true;
        }
    }
}
