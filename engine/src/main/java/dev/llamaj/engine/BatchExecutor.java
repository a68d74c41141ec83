package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Parallel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/// Runs the forward passes of many sessions of one model together: continuous batching.
///
/// **Why.** Generating one token reads every weight of the model once; on a CPU that read, not the arithmetic,
/// is the cost. Sessions that each run their own forward pass read the weights once per session and split the
/// cores between them, so N streams are no faster in aggregate than one. The sessions of an executor submit
/// their tokens here instead, and one thread runs a single batched step for all of them: each weight is read and
/// dequantized once per step, whatever the number of sequences, and only the arithmetic grows with them.
///
/// **Scheduling.** Each step takes the next token of every session that is generating (at most one each), then
/// as many tokens from prompts waiting to be processed, oldest first (at least [#MIN_PROMPT_CHUNK], at most
/// [#promptChunk()]), so that a long prompt arriving while others generate is processed in chunks between their
/// tokens instead of stalling them: the step's arithmetic grows with its tokens (the weights are read once either
/// way), so matching the generating tokens keeps their steps within about twice their own cost, and a
/// larger chunk would finish the prompt sooner at their expense.
/// When nobody is generating, a step takes up to [#stepTokens()] prompt tokens. Sessions join and leave between
/// steps. Before a step the executor waits for every session inside a call to submit its token (at most a quarter of
/// the last step's time, and at least [#MAX_WAIT_NANOS]), so that the sequences stay in step: a session that
/// misses a step because sampling its 128k-token vocabulary took a few milliseconds would otherwise wait a whole
/// step, and the sessions would alternate between steps.
///
/// **Same results as alone.** Every product runs through the small-batch kernel, whose result for a token depends
/// on nothing but that token, and every other operation is per token ([Transformer#forwardMixed]): a sequence
/// gets bit for bit the same logits, hence the same tokens under greedy decoding and for a given seed, whichever
/// other sequences share its steps, and however its prompt was split into chunks. They differ in rounding from a
/// session outside an executor (other kernels, other summation orders), as llama.cpp's batched results differ from
/// its single-sequence ones.
///
/// **Threads.** The executor is thread-safe: sessions on any number of threads submit to it concurrently. Each of
/// its sessions is still used by one thread at a time, which blocks in [Session#generate] or [Session#ingest]
/// while its tokens are computed; a [Session.LogitsListener] passed to `ingest` is called on the executor's
/// thread. The executor computes with [LlamaModel#threads()] threads of its own; its sessions have none. Close the
/// executor after its sessions.
public final class BatchExecutor implements AutoCloseable {
    /// Defaults of [LlamaModel#newBatchExecutor()].
    static final int DEFAULT_STEP_TOKENS = 64;
    static final int DEFAULT_PROMPT_CHUNK = 16;
    /// Fewest prompt tokens a step takes while sessions generate (if prompts wait).
    static final int MIN_PROMPT_CHUNK = 4;
    /// Nanoseconds a step waits at least for sessions still sampling their next token; it waits up to a quarter of
    /// the last step's time if that is longer.
    static final long MAX_WAIT_NANOS = 2_000_000;

    private final LlamaModel model;
    private final Transformer transformer;
    private final Parallel pool;
    private final Transformer.Batched batch;
    private final int stepTokens;
    private final int promptChunk;
    private final Thread thread;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition submitted = lock.newCondition();
    private final Condition completed = lock.newCondition();
    /// Requests not yet completed, in the order they arrived (at most one per session).
    private final List<Request> queue = new ArrayList<>();
    /// Sessions inside a call that submits requests.
    private int active;
    private boolean closed;
    /// How long the last step's forward pass took (executor thread only).
    private long lastStepNanos;

    // the step in flight (executor thread only)
    private final int[] tokens;
    private final Transformer.State[] states;
    private final int[] positions;
    private final boolean[] wanted;
    private final Request[] owners;
    private final int[] indices;
    private final List<Request> scheduled = new ArrayList<>();

    // statistics (under the lock)
    private long steps;
    private long stepTokensTotal;
    private long decodeTokens;
    private long promptTokens;

    BatchExecutor(LlamaModel model, Transformer transformer, int threads, int stepTokens, int promptChunk) {
        if (stepTokens < 1) {
            throw new IllegalArgumentException("tokens per step must be 1 or more, got " + stepTokens);
        }
        if (promptChunk < 0) {
            throw new IllegalArgumentException("prompt tokens per step must be 0 or more, got " + promptChunk);
        }
        this.model = model;
        this.transformer = transformer;
        this.stepTokens = stepTokens;
        this.promptChunk = promptChunk;
        this.pool = new Parallel(threads);
        this.batch = transformer.newMixedBatch(stepTokens, pool);
        tokens = new int[stepTokens];
        states = new Transformer.State[stepTokens];
        positions = new int[stepTokens];
        wanted = new boolean[stepTokens];
        owners = new Request[stepTokens];
        indices = new int[stepTokens];
        thread = Thread.ofPlatform().daemon().name("llamaj-batch").unstarted(this::loop);
        thread.start();
    }

    /// Opens a session whose forward passes run in this executor's batched steps.
    ///
    /// @throws IllegalArgumentException if `contextLength` is not positive
    /// @throws IllegalStateException    if the executor is closed
    public Session newSession(int contextLength) {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the batch executor is closed");
            }
        } finally {
            lock.unlock();
        }
        return model.newSession(contextLength, this);
    }

    /// Opens a session with the model's default context ([LlamaModel#defaultContextLength()]).
    public Session newSession() {
        return newSession(model.defaultContextLength());
    }

    public LlamaModel model() {
        return model;
    }

    /// Most tokens in one step.
    public int stepTokens() {
        return stepTokens;
    }

    /// Most prompt tokens a step takes besides the tokens of generating sessions (it takes as many as there are
    /// generating sessions, at least [#MIN_PROMPT_CHUNK]).
    public int promptChunk() {
        return promptChunk;
    }

    /// Counters since the executor started.
    ///
    /// @param steps         batched forward passes run
    /// @param tokens        tokens computed in them
    /// @param decodeTokens  of which single tokens of generating sessions
    /// @param promptTokens  of which prompt tokens
    public record Stats(long steps, long tokens, long decodeTokens, long promptTokens) {
        /// Tokens per step, on average.
        public double meanBatch() {
            return steps == 0 ? 0 : (double) tokens / steps;
        }
    }

    public Stats stats() {
        lock.lock();
        try {
            return new Stats(steps, stepTokensTotal, decodeTokens, promptTokens);
        } finally {
            lock.unlock();
        }
    }

    /// Stops the executor's thread once the requests in progress are done; later requests throw
    /// `IllegalStateException`.
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            submitted.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        pool.close();
    }

    // ---- the sessions' side ----

    /// A session starts a call whose tokens come here one request at a time (a generation): the steps wait for it.
    void enter() {
        lock.lock();
        try {
            active++;
        } finally {
            lock.unlock();
        }
    }

    void leave() {
        lock.lock();
        try {
            active--;
            submitted.signalAll(); // a step may be waiting for this session
        } finally {
            lock.unlock();
        }
    }

    /// Computes `tokens` of the sequence `state` at positions `pos0 ..` and blocks until they are done: the logits of
    /// the last token are then in `state.logits`. With a `listener`, the logits after each token `i ≥ skip` are
    /// passed to it as index `i − skip` (on the executor's thread).
    ///
    /// @throws IllegalStateException if the executor is closed
    void process(Transformer.State state, int[] tokens, int pos0, int skip, Session.LogitsListener listener) {
        if (tokens.length == 0) {
            return;
        }
        Request r = new Request(state, tokens, pos0, skip, listener);
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the batch executor is closed");
            }
            queue.add(r);
            submitted.signalAll();
            boolean interrupted = false;
            while (!r.done) {
                try {
                    completed.await();
                } catch (InterruptedException e) {
                    interrupted = true; // the step may be writing this session's cache: wait for it all the same
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        } finally {
            lock.unlock();
        }
        if (r.failure != null) {
            if (r.failure instanceof RuntimeException e) {
                throw e;
            }
            if (r.failure instanceof Error e) {
                throw e;
            }
            throw new IllegalStateException(r.failure);
        }
    }

    /// Tokens of one sequence waiting to be computed.
    private static final class Request {
        final Transformer.State state;
        final int[] tokens;
        final int pos0;
        final int skip;
        final Session.LogitsListener listener;
        /// Tokens computed or in the step in flight.
        int next;
        /// Tokens in the step in flight.
        int inStep;
        boolean done;
        Throwable failure;

        Request(Transformer.State state, int[] tokens, int pos0, int skip, Session.LogitsListener listener) {
            this.state = state;
            this.tokens = tokens;
            this.pos0 = pos0;
            this.skip = skip;
            this.listener = listener;
        }

        int remaining() {
            return tokens.length - next;
        }
    }

    // ---- the executor's thread ----

    private void loop() {
        while (true) {
            int n;
            lock.lock();
            try {
                while (!closed && queue.isEmpty()) {
                    submitted.awaitUninterruptibly();
                }
                if (queue.isEmpty()) {
                    return; // closed
                }
                long deadline = System.nanoTime() + Math.max(MAX_WAIT_NANOS, lastStepNanos / 4);
                long left;
                while (!closed && queue.size() < active && (left = deadline - System.nanoTime()) > 0) {
                    try {
                        submitted.awaitNanos(left);
                    } catch (InterruptedException e) {
                        break;
                    }
                }
                try {
                    n = compose();
                } catch (RuntimeException e) { // a bug: fail what is queued rather than leave its sessions waiting
                    for (Request r : queue) {
                        r.failure = e;
                        r.done = true;
                    }
                    queue.clear();
                    completed.signalAll();
                    continue;
                }
            } finally {
                lock.unlock();
            }
            Throwable failure = null;
            long start = System.nanoTime();
            try {
                transformer.forwardMixed(batch, tokens, n, states, positions, wanted, this::deliver);
            } catch (Throwable t) {
                failure = t;
            }
            lastStepNanos = System.nanoTime() - start;
            lock.lock();
            try {
                finish(n, failure);
            } finally {
                lock.unlock();
            }
        }
    }

    /// Fills the step's arrays from the queue: one token of every request that has one left (a generating
    /// session's next token, or a prompt's last), then chunks of the longer prompts, oldest first.
    private int compose() {
        int n = 0;
        int decoding = 0;
        scheduled.clear();
        for (Request r : queue) {
            if (r.remaining() == 1 && n < stepTokens) {
                n = add(r, 1, n);
                decoding++;
            }
        }
        // as many prompt tokens as generating ones (at least MIN_PROMPT_CHUNK, at most promptChunk): a step's cost
        // grows with its tokens, so this keeps the generating sessions' steps within about twice their own cost
        int chunk = Math.min(promptChunk, Math.max(MIN_PROMPT_CHUNK, decoding));
        int budget = decoding > 0 ? Math.min(stepTokens, n + chunk) : stepTokens;
        for (Request r : queue) {
            if (r.inStep == 0 && n < budget) {
                n = add(r, Math.min(r.remaining(), budget - n), n);
            }
        }
        if (n == 0) { // every request waits for a single token and the step is full: cannot happen with stepTokens ≥ 1
            throw new IllegalStateException("empty step");
        }
        steps++;
        stepTokensTotal += n;
        decodeTokens += decoding;
        promptTokens += n - decoding;
        return n;
    }

    private int add(Request r, int count, int n) {
        for (int i = 0; i < count; i++) {
            int index = r.next + i;
            tokens[n] = r.tokens[index];
            states[n] = r.state;
            positions[n] = r.pos0 + index;
            wanted[n] = index == r.tokens.length - 1 || (r.listener != null && index >= r.skip);
            owners[n] = r;
            indices[n] = index;
            n++;
        }
        r.inStep = count;
        scheduled.add(r);
        return n;
    }

    /// The logits of step token `t` are in its sequence's `logits`.
    private void deliver(int t) {
        Request r = owners[t];
        int index = indices[t];
        if (r.listener != null && index >= r.skip && r.failure == null) {
            try {
                r.listener.accept(index - r.skip, r.state.logits);
            } catch (Throwable e) {
                r.failure = e;
            }
        }
    }

    private void finish(int n, Throwable failure) {
        for (Request r : scheduled) {
            r.next += r.inStep;
            r.inStep = 0;
            if (failure != null && r.failure == null) {
                r.failure = failure;
            }
            if (r.remaining() == 0 || r.failure != null) {
                r.done = true;
                queue.remove(r);
            }
        }
        scheduled.clear();
        java.util.Arrays.fill(states, 0, n, null);
        java.util.Arrays.fill(owners, 0, n, null);
        completed.signalAll();
    }
}
