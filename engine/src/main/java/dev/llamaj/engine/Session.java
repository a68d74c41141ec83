package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Parallel;
import dev.llamaj.tokenizer.Detokenizer;
import dev.llamaj.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/// One conversation with a model: a key/value cache of `contextLength` tokens, a position in it, and the worker
/// threads that compute for it.
///
/// Text accumulates: each [#generate] call continues from where the previous one stopped, so a chat turn only
/// processes its new tokens. The last token generated is kept pending and processed at the start of the next
/// call (it is not needed to produce the text, and processing it eagerly would waste a forward pass when the
/// conversation ends). [#reset] starts over.
///
/// Not thread-safe: one thread uses a session at a time. [#cancel] is the exception: any thread may call it to
/// stop a generation in progress. Many sessions may share one [LlamaModel] on different threads.
public final class Session implements AutoCloseable {
    private final LlamaModel model;
    private final Transformer transformer;
    private final Transformer.State state;
    private final Parallel pool;
    private final int contextLength;
    private int position;
    private int pendingToken = -1;
    /// The tokens in the cache, in order: lets callers find how much of a new prompt is already processed.
    private final int[] history;
    private volatile boolean cancelled;
    private boolean closed;
    /// The executor whose batched steps compute this session's tokens, or null: this session computes them itself.
    private final BatchExecutor executor;
    /// Whether this session is inside a call counted by the executor ([BatchExecutor#enter]).
    private boolean entered;
    /// Shared with other sessions of the model (null: none); see [#usePrefixCache].
    private PrefixCache prefixCache;
    /// Prompt tokens the last [#generate] copied from the prefix cache.
    private int restoredTokens;

    Session(LlamaModel model, Transformer transformer, int contextLength, int threads, BatchExecutor executor) {
        this.model = model;
        this.transformer = transformer;
        this.contextLength = contextLength;
        this.executor = executor;
        // a session of an executor computes nothing itself (but embeddings): no worker threads
        this.pool = new Parallel(executor == null ? threads : 1);
        this.history = new int[contextLength];
        this.state = transformer.newState(contextLength, pool);
    }

    /// The executor that batches this session's forward passes with other sessions', if any.
    public java.util.Optional<BatchExecutor> executor() {
        return java.util.Optional.ofNullable(executor);
    }

    public int contextLength() {
        return contextLength;
    }

    /// Tokens in the context so far (a pending generated token included).
    public int position() {
        return position + (pendingToken >= 0 ? 1 : 0);
    }

    public LlamaModel model() {
        return model;
    }

    /// Encodes `prompt` (specials not parsed, BOS added at the start of the context if the vocabulary asks for it)
    /// and generates from it.
    ///
    /// @throws IllegalArgumentException if the prompt does not fit in the remaining context
    public Completion generate(String prompt, int maxTokens, Sampler sampler, Consumer<String> onText) {
        return generate(encode(prompt), maxTokens, sampler, onText);
    }

    /// Tokens for `prompt` as [#generate(String, int, Sampler, Consumer)] would process them here.
    public int[] encode(String prompt) {
        Tokenizer tokenizer = model.tokenizer();
        int[] tokens = tokenizer.encode(prompt);
        if (position() == 0 && tokenizer.vocabulary().addBos()) {
            int[] withBos = new int[tokens.length + 1];
            withBos[0] = tokenizer.vocabulary().bos();
            System.arraycopy(tokens, 0, withBos, 1, tokens.length);
            tokens = withBos;
        }
        return tokens;
    }

    /// Processes `prompt` after the current context, then samples up to `maxTokens` tokens, passing each piece of
    /// complete UTF-8 text to `onText` as soon as it is known.
    ///
    /// @throws IllegalArgumentException if `prompt` is empty on an empty context, has a token outside the
    ///         vocabulary, or does not fit in the remaining context
    public Completion generate(int[] prompt, int maxTokens, Sampler sampler, Consumer<String> onText) {
        return generate(prompt, maxTokens, sampler, List.of(), onText);
    }

    /// As [#generate(int[], int, Sampler, Consumer)], also stopping (with [Completion.StopReason#STOP_STRING])
    /// when the text contains one of `stopStrings`; the stop string and anything after it are not passed on,
    /// and text that could be the start of one is held back until that is decided.
    public Completion generate(int[] prompt, int maxTokens, Sampler sampler, List<String> stopStrings,
                               Consumer<String> onText) {
        return generate(prompt, maxTokens, sampler, stopStrings, onText, null);
    }

    /// As [#generate(int[], int, Sampler, List, Consumer)], also passing each generated token, with its
    /// log-probability and the alternatives the sampler was asked to keep ([Sampler#topLogprobs(int)]), to
    /// `onToken` (null: none) as soon as it is chosen, before its text reaches `onText`. The end-of-generation
    /// token is not passed on (it is not part of the completion). Whether or not there is a listener, the
    /// [Completion] carries the sum and minimum of the generated tokens' log-probabilities.
    ///
    /// When the sampler's constraint or logit bias leaves no token possible, generation ends with
    /// [Completion.StopReason#END_OF_GENERATION].
    public Completion generate(int[] prompt, int maxTokens, Sampler sampler, List<String> stopStrings,
                               Consumer<String> onText, Completion.TokenListener onToken) {
        checkOpen();
        boolean enter = executor != null && !entered;
        if (enter) { // the executor's steps wait for this session's next token until it leaves
            executor.enter();
            entered = true;
        }
        try {
            return generateHere(prompt, maxTokens, sampler, stopStrings, onText, onToken);
        } finally {
            if (enter) {
                entered = false;
                executor.leave();
            }
        }
    }

    private Completion generateHere(int[] prompt, int maxTokens, Sampler sampler, List<String> stopStrings,
                                    Consumer<String> onText, Completion.TokenListener onToken) {
        StopStrings out = new StopStrings(stopStrings, onText);
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must be 0 or more, got " + maxTokens);
        }
        if (prompt.length == 0 && position() == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        int free = contextLength - position();
        if (prompt.length > free) {
            throw new ContextLengthException("prompt is " + prompt.length + " tokens but only " + free
                    + " fit in the context", ContextLengthException.Remedy.LONGER);
        }
        sampler.checkVocabulary(model.config().vocabSize());
        cancelled = false;
        long start = System.nanoTime();
        for (int t : prompt) {
            sampler.accept(t);
        }
        restoredTokens = 0;
        if (prefixCache != null && position() == 0) {
            ingestSharing(prompt);
        } else {
            ingest(prompt);
        }
        long promptNanos = System.nanoTime() - start;

        Detokenizer detokenizer = model.tokenizer().detokenizer();
        Completion.StopReason reason = Completion.StopReason.MAX_TOKENS;
        int generated = 0;
        double logprobSum = 0;
        float minLogprob = 0;
        long genStart = System.nanoTime();
        while (generated < maxTokens) {
            if (cancelled || Thread.currentThread().isInterrupted()) {
                reason = Completion.StopReason.CANCELLED;
                break;
            }
            if (pendingToken >= 0) {
                ingest();
            }
            if (position >= contextLength) {
                reason = Completion.StopReason.CONTEXT_FULL;
                break;
            }
            int token = sampler.sample(state.logits);
            if (token < 0 || model.tokenizer().vocabulary().isEndOfGeneration(token)) {
                reason = Completion.StopReason.END_OF_GENERATION;
                break;
            }
            sampler.accept(token);
            float logprob = sampler.lastLogprob();
            logprobSum += logprob;
            minLogprob = generated == 0 ? logprob : Math.min(minLogprob, logprob);
            generated++;
            pendingToken = token;
            if (onToken != null) {
                onToken.accept(tokenEvent(token, sampler));
            }
            if (out.append(detokenizer.append(token))) {
                reason = Completion.StopReason.STOP_STRING;
                break;
            }
        }
        if (reason != Completion.StopReason.STOP_STRING) {
            if (out.append(detokenizer.finish())) {
                reason = Completion.StopReason.STOP_STRING;
            } else {
                out.finish();
            }
        }
        return new Completion(out.text(), prompt.length, generated, reason, promptNanos,
                System.nanoTime() - genStart, logprobSum, minLogprob);
    }

    private static Completion.Token tokenEvent(int token, Sampler sampler) {
        int n = sampler.lastTopCount();
        Completion.Alternative[] top = new Completion.Alternative[n];
        for (int i = 0; i < n; i++) {
            top[i] = new Completion.Alternative(sampler.lastTopToken(i), sampler.lastTopLogprob(i));
        }
        return new Completion.Token(token, sampler.lastLogprob(), List.of(top));
    }

    /// Receives the logits of every position of an [#ingest(int[], LogitsListener)] call.
    @FunctionalInterface
    public interface LogitsListener {
        /// `logits` holds the next-token logits after `tokens[index]`; it is reused, copy what you keep.
        void accept(int index, float[] logits);
    }

    /// Processes `tokens` (after any pending generated token) and computes the logits of the last one.
    ///
    /// @throws IllegalArgumentException if they do not fit in the context or a token is outside the vocabulary
    public void ingest(int... tokens) {
        ingest(tokens, null);
    }

    /// Processes `tokens` and passes the logits after each of them to `listener` (for perplexity and scoring);
    /// a pending generated token is processed first, without a callback.
    ///
    /// @throws IllegalArgumentException if they do not fit in the context or a token is outside the vocabulary
    public void ingest(int[] tokens, LogitsListener listener) {
        checkOpen();
        int pending = pendingToken >= 0 ? 1 : 0;
        if (tokens.length + pending > contextLength - position) {
            throw new ContextLengthException("prompt is " + (tokens.length + pending) + " tokens but only "
                    + (contextLength - position) + " fit in the context", ContextLengthException.Remedy.LONGER);
        }
        int vocab = model.config().vocabSize();
        for (int t : tokens) {
            if (t < 0 || t >= vocab) {
                throw new IllegalArgumentException("token " + t + " is outside the vocabulary (size " + vocab + ")");
            }
        }
        int[] all = tokens;
        if (pending > 0) { // the pending token goes first, without a callback
            all = new int[tokens.length + 1];
            all[0] = pendingToken;
            System.arraycopy(tokens, 0, all, 1, tokens.length);
            pendingToken = -1;
        }
        process(all, all.length, pending, listener, false);
    }

    /// Runs `all[0, n)` after the cache, passing the logits after `all[j]` to `listener` as index `j - skip` for
    /// every `j >= skip`; `perToken` forces the token-at-a-time path (the rounding of plain generation). A session
    /// of an executor submits them to it (its steps have their own, chunking-independent rounding).
    private void process(int[] all, int n, int skip, LogitsListener listener, boolean perToken) {
        System.arraycopy(all, 0, history, position, n);
        if (executor != null) {
            int[] tokens = n == all.length ? all : Arrays.copyOf(all, n);
            boolean enter = !entered;
            if (enter) {
                executor.enter();
                entered = true;
            }
            try {
                executor.process(state, tokens, position, skip, listener);
            } finally {
                if (enter) {
                    entered = false;
                    executor.leave();
                }
            }
            position += n;
            return;
        }
        // Batches of up to the load options' batch size through matrix-matrix products; a handful of tokens (a chat
        // turn's pending token, a short continuation) one at a time.
        for (int i = 0; i < n; ) {
            int chunk = Math.min(n - i, transformer.maxBatch);
            boolean lastChunk = i + chunk == n;
            if (chunk < transformer.minBatch() || perToken) {
                for (int j = i; j < i + chunk; j++) {
                    int index = j - skip;
                    boolean wanted = (lastChunk && j == n - 1) || (listener != null && index >= 0);
                    transformer.forward(state, all[j], position++, wanted);
                    if (listener != null && index >= 0) {
                        listener.accept(index, state.logits);
                    }
                }
            } else {
                int first = i - skip;
                Transformer.TokenLogits each = listener == null ? null : k -> {
                    if (first + k >= 0) {
                        listener.accept(first + k, state.logits);
                    }
                };
                transformer.forwardBatch(state, all, i, chunk, position, lastChunk, each);
                position += chunk;
            }
            i += chunk;
        }
    }

    // ---- hooks of speculative decoding ([Speculation]), which sets the pending token itself ----

    /// Receives the logits after each token of a verification pass, in order; returns whether the next are wanted.
    @FunctionalInterface
    interface Verifier {
        boolean accept(int index, float[] logits);
    }

    /// Verification pass: `tokens[0]` is the pending token, `tokens[1, n)` guesses after it. Runs them and passes
    /// the logits after each (index `0 .. n-1`) to `verifier` until it declines. Up to [Transformer#FEW_CAPACITY]
    /// tokens go through the small-batch kernel in one pass (about the cost of one token: the cache then holds all
    /// `n`), more through the tiled batched pass; with `perToken`, one token at a time as plain generation does
    /// (its rounding), stopping where the verifier declines, so a rejected guess costs no forward pass.
    void verify(int[] tokens, int n, boolean perToken, Verifier verifier) {
        checkOpen();
        if (pendingToken != tokens[0]) {
            throw new IllegalStateException("speculation out of step: pending token " + pendingToken + ", not "
                    + tokens[0]);
        }
        if (position + n > contextLength) {
            throw new IllegalStateException("speculation past the context: " + position + " + " + n);
        }
        pendingToken = -1;
        if (executor != null) {
            // the executor's small-batch steps: the logits of each token are bit for bit those of plain generation
            // in this executor, however the tokens are grouped, and cost little more than one token's. They arrive
            // on the executor's thread: kept, and decided here, on the generating thread.
            if (verifyRows == null || verifyRows.length < n) {
                verifyRows = new float[n][];
            }
            for (int j = 0; j < n; j++) {
                if (verifyRows[j] == null) {
                    verifyRows[j] = new float[state.logits.length];
                }
            }
            float[][] rows = verifyRows;
            process(tokens, n, 0, (j, logits) -> System.arraycopy(logits, 0, rows[j], 0, logits.length), false);
            for (int j = 0; j < n && verifier.accept(j, rows[j]); j++) {
                // each accepted position asks for the next
            }
        } else if (!perToken && n <= Transformer.FEW_CAPACITY) {
            // a handful of tokens through the small-batch kernel: little more than one token's cost
            System.arraycopy(tokens, 0, history, position, n);
            boolean[] open = {true};
            transformer.forwardFew(state, tokens, n, position,
                    j -> open[0] = open[0] && verifier.accept(j, state.logits));
            position += n;
        } else if (perToken || n < transformer.minBatch()) {
            for (int j = 0; j < n; j++) {
                history[position] = tokens[j];
                transformer.forward(state, tokens[j], position++, true);
                if (!verifier.accept(j, state.logits)) {
                    return;
                }
            }
        } else {
            boolean[] open = {true};
            process(tokens, n, 0, (j, logits) -> open[0] = open[0] && verifier.accept(j, logits), false);
        }
    }

    /// The logits of a verification pass through an executor, one row per token (allocated on first use).
    private float[][] verifyRows;

    /// After a verification pass: the context is `context[0, length)`, the last token pending; the cache holds a
    /// prefix of it and guesses after that prefix, which are forgotten.
    void keepSpeculated(int[] context, int length) {
        int processed = length - 1;
        pendingToken = -1;
        if (position > processed) {
            position = state.cache.rewindTarget(position, processed);
        }
        if (position < processed) { // a sliding window forgot more than the guesses: process the rest again
            process(Arrays.copyOfRange(context, position, processed), processed - position, 0, null, false);
        }
        pendingToken = context[processed];
    }

    boolean isCancelled() {
        return cancelled;
    }

    void clearCancel() {
        cancelled = false;
    }

    /// As [#generate(int[], int, Sampler, List, Consumer, Completion.TokenListener)], with the guesses of
    /// `speculation` checked in batches ([Speculation]); null speculation is plain generation.
    public Completion generate(int[] prompt, int maxTokens, Sampler sampler, List<String> stopStrings,
                               Consumer<String> onText, Completion.TokenListener onToken, Speculation speculation) {
        if (speculation == null) {
            return generate(prompt, maxTokens, sampler, stopStrings, onText, onToken);
        }
        checkOpen();
        boolean enter = executor != null && !entered;
        if (enter) { // as plain generation: the executor's steps wait for this session until it leaves
            executor.enter();
            entered = true;
        }
        try {
            return speculation.generate(this, prompt, maxTokens, sampler, stopStrings, onText, onToken);
        } finally {
            if (enter) {
                entered = false;
                executor.leave();
            }
        }
    }

    /// Tokens of an `n`-token [#ingest] that go through [Transformer#forwardBatch]: all of them, except a last
    /// chunk too short to be worth a batch (then processed one at a time, with another rounding). Follows the loop
    /// above. A session of an executor: all of them (its tokens do not depend on how a prompt is split).
    private int batchedPart(int n) {
        if (executor != null) {
            return n;
        }
        if (n == 0 || transformer.maxBatch < transformer.minBatch()) {
            return 0;
        }
        int last = n - (n - 1) / transformer.maxBatch * transformer.maxBatch;
        return last < transformer.minBatch() ? n - last : n;
    }

    /// Lets this session share computed prompt prefixes with the other sessions of its model through `cache`
    /// (null: stop sharing): a [#generate] on an empty context copies the longest cached block-aligned prefix of
    /// its prompt instead of computing it, computes the rest, and publishes its own new whole blocks. The logits
    /// and generated tokens are the same, bit for bit, as without the cache. Returns whether the cache will be
    /// used: not when this session's cache keeps sliding-window layers in a ring (Gemma with a context over twice
    /// the window plus the batch), whose entries cannot be lent.
    ///
    /// @throws IllegalArgumentException if `cache` belongs to another model
    public boolean usePrefixCache(PrefixCache cache) {
        checkOpen();
        if (cache != null && cache.model() != model) {
            throw new IllegalArgumentException("the prefix cache belongs to another model");
        }
        boolean usable = cache != null && cache.budget() >= cache.blockBytes() && state.cache.plainLayout();
        prefixCache = usable ? cache : null;
        return usable;
    }

    /// Tokens at the start of `prompt` that this session's prefix cache holds for it in whole blocks (0 without
    /// one): a caller holding part of a prompt in its own context can tell whether starting over from the cache
    /// would compute less. [#generate] may copy a block less (see [#usePrefixCache]).
    public int cachedPrefixLength(int[] prompt) {
        return prefixCache == null ? 0 : prefixCache.cachedLength(prompt, executor != null);
    }

    /// Prompt tokens that the last [#generate] copied from the prefix cache instead of computing (0 without one).
    public int restoredTokens() {
        return restoredTokens;
    }

    /// [#ingest] of a whole prompt on an empty context, first copying what the prefix cache holds of it. The copied
    /// blocks were computed in batches, as a fresh ingest of this prompt computes them; the rest is computed here
    /// with the same split between batched tokens and a last few taken one at a time, so every entry and the
    /// logits are the bits a fresh ingest gives (a batch's rows do not depend on which other rows it holds).
    private void ingestSharing(int[] prompt) {
        int block = PrefixCache.BLOCK_TOKENS;
        int n = prompt.length;
        int batched = batchedPart(n);
        // at least the last token is computed (its logits are needed), and only batched positions are copied
        PrefixCache.Lease lease = prefixCache.acquire(prompt, Math.min((n - 1) / block, batched / block),
                executor != null);
        int restored = lease.blocks() * block;
        while (restored > 0 && restored + batchedPart(n - restored) != batched) {
            restored -= block; // the rest would split differently from the fresh ingest
        }
        long start = System.nanoTime();
        try {
            for (int b = 0; b < restored / block; b++) {
                state.cache.loadBlock(b * block, lease.block(b));
            }
        } finally {
            prefixCache.release(lease, restored, System.nanoTime() - start);
        }
        System.arraycopy(prompt, 0, history, 0, restored);
        position = restored;
        try {
            ingest(Arrays.copyOfRange(prompt, restored, n));
        } catch (RuntimeException e) {
            reset();
            throw e;
        }
        restoredTokens = restored;
        prefixCache.publish(prompt, batched / block, state.cache, executor != null);
    }

    /// The tokens in the context, in order (a pending generated token included). A caller that renders a whole
    /// conversation again can skip the prefix that is already here and [#rewind] past what differs.
    public int[] tokens() {
        int[] t = Arrays.copyOf(history, position());
        if (pendingToken >= 0) {
            t[position] = pendingToken;
        }
        return t;
    }

    /// Forgets every token after the first `length` (the cache entries beyond are simply overwritten later). With a
    /// sliding-window model (Gemma), whose window layers keep only the latest positions, going back further than
    /// they still hold forgets everything instead: callers continue from [#position()], not from `length`.
    ///
    /// @throws IllegalArgumentException if `length` is negative or beyond [#position()]
    public void rewind(int length) {
        checkOpen();
        if (length < 0 || length > position()) {
            throw new IllegalArgumentException("cannot rewind to " + length + " tokens, the context has " + position());
        }
        if (pendingToken >= 0 && length == position + 1) {
            return;
        }
        pendingToken = -1;
        position = state.cache.rewindTarget(position, length);
    }

    /// Makes this session's context a copy of `source`'s: its tokens, key/value cache entries and last logits, so
    /// both continue from the same point without processing the prompt twice. This is how several choices share
    /// one prompt: process it in one session, copy it into the others, then generate in each with its own
    /// sampler. Copying costs a memory copy of the cache prefix (a few megabytes for a short prompt of a 1B
    /// model), far less than processing the prompt again.
    ///
    /// @throws IllegalArgumentException if `source` belongs to another model, its context does not fit here, or
    ///         (sliding-window models) the sessions' context lengths differ
    public void copyFrom(Session source) {
        checkOpen();
        source.checkOpen();
        if (source.model != model) {
            throw new IllegalArgumentException("cannot copy a session of another model");
        }
        if (source == this) {
            return;
        }
        if (source.position() > contextLength) {
            throw new ContextLengthException("the source context has " + source.position() + " tokens but only "
                    + contextLength + " fit in this session", ContextLengthException.Remedy.LONGER);
        }
        state.cache.copyFrom(source.state.cache, source.position);
        System.arraycopy(source.history, 0, history, 0, source.position);
        System.arraycopy(source.state.logits, 0, state.logits, 0, state.logits.length);
        position = source.position;
        pendingToken = source.pendingToken;
    }

    /// The logits computed by the last [#ingest] (a live view: copy it to keep it).
    public float[] logits() {
        return state.logits;
    }

    /// The embedding of `tokens`: the model's final hidden states (after the output norm, where the classifier
    /// would read them), pooled over the tokens as `pooling` says and scaled to unit length (L2), so that the dot
    /// product of two embeddings is their cosine similarity. Tokens are used as given: [LlamaModel#encodeForEmbedding]
    /// adds the start and end tokens the model expects.
    ///
    /// Uses this session's cache: the context is emptied first and is empty afterwards (`position() == 0`).
    ///
    /// @return a new array of [ModelConfig#embeddingLength()] values
    /// @throws IllegalArgumentException if `tokens` is empty or has a token outside the vocabulary
    /// @throws ContextLengthException   if `tokens` is longer than the context
    public float[] embed(int[] tokens, Pooling pooling) {
        checkOpen();
        if (tokens.length == 0) {
            throw new IllegalArgumentException("the input is empty");
        }
        if (tokens.length > contextLength) {
            throw new ContextLengthException("the input is " + tokens.length + " tokens but the context holds "
                    + contextLength, ContextLengthException.Remedy.LONGER);
        }
        int vocab = model.config().vocabSize();
        for (int t : tokens) {
            if (t < 0 || t >= vocab) {
                throw new IllegalArgumentException("token " + t + " is outside the vocabulary (size " + vocab + ")");
            }
        }
        reset();
        int dim = model.config().embeddingLength();
        double[] sum = new double[dim];
        float[] last = new float[dim];
        int n = tokens.length;
        int capacity = transformer.batchCapacity(contextLength);
        try {
            for (int i = 0; i < n; i += capacity) {
                int chunk = Math.min(capacity, n - i);
                int first = i;
                transformer.hiddenBatch(state, tokens, i, chunk, i, (k, hidden) -> {
                    if (pooling == Pooling.MEAN) {
                        for (int f = 0; f < dim; f++) {
                            sum[f] += hidden[f];
                        }
                    } else if (first + k == n - 1) {
                        System.arraycopy(hidden, 0, last, 0, dim);
                    }
                });
            }
        } finally {
            reset(); // the cache holds the input now, which is no conversation to continue
        }
        float[] pooled = last;
        if (pooling == Pooling.MEAN) {
            for (int f = 0; f < dim; f++) {
                pooled[f] = (float) (sum[f] / n);
            }
        }
        return normalize(pooled);
    }

    /// Scales `v` in place to unit Euclidean length (a zero vector stays zero), as llama.cpp's
    /// `common_embd_normalize` does: the sum of squares in double.
    static float[] normalize(float[] v) {
        double squares = 0;
        for (float x : v) {
            squares += (double) x * x;
        }
        double norm = Math.sqrt(squares);
        float scale = norm > 0 ? (float) (1 / norm) : 0f;
        for (int i = 0; i < v.length; i++) {
            v[i] *= scale;
        }
        return v;
    }

    /// Asks a generation in progress (on another thread) to stop after the current token.
    public void cancel() {
        cancelled = true;
    }

    /// Empties the context.
    public void reset() {
        checkOpen();
        position = 0;
        pendingToken = -1;
        Arrays.fill(state.logits, 0f);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the session is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            pool.close();
        }
    }
}
