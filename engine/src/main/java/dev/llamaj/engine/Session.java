package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Parallel;
import dev.llamaj.tokenizer.Detokenizer;
import dev.llamaj.tokenizer.Tokenizer;
import java.util.Arrays;
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
    private volatile boolean cancelled;
    private boolean closed;

    Session(LlamaModel model, Transformer transformer, int contextLength, int threads) {
        this.model = model;
        this.transformer = transformer;
        this.contextLength = contextLength;
        this.pool = new Parallel(threads);
        this.state = new Transformer.State(model.config(), model.weights(), contextLength, pool);
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
        checkOpen();
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must be 0 or more, got " + maxTokens);
        }
        if (prompt.length == 0 && position() == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        int free = contextLength - position();
        if (prompt.length > free) {
            throw new IllegalArgumentException("prompt is " + prompt.length + " tokens but only " + free
                    + " fit in the context (raise --context)");
        }
        cancelled = false;
        long start = System.nanoTime();
        for (int t : prompt) {
            sampler.accept(t);
        }
        ingest(prompt);
        long promptNanos = System.nanoTime() - start;

        Detokenizer detokenizer = model.tokenizer().detokenizer();
        StringBuilder text = new StringBuilder();
        Completion.StopReason reason = Completion.StopReason.MAX_TOKENS;
        int generated = 0;
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
            sampler.accept(token);
            if (model.tokenizer().vocabulary().isEndOfGeneration(token)) {
                reason = Completion.StopReason.END_OF_GENERATION;
                break;
            }
            generated++;
            pendingToken = token;
            emit(detokenizer.append(token), text, onText);
        }
        emit(detokenizer.finish(), text, onText);
        return new Completion(text.toString(), prompt.length, generated, reason, promptNanos,
                System.nanoTime() - genStart);
    }

    private static void emit(String piece, StringBuilder text, Consumer<String> onText) {
        if (!piece.isEmpty()) {
            text.append(piece);
            onText.accept(piece);
        }
    }

    /// Processes `tokens` (after any pending generated token) and computes the logits of the last one.
    ///
    /// @throws IllegalArgumentException if they do not fit in the context or a token is outside the vocabulary
    public void ingest(int... tokens) {
        checkOpen();
        int[] all = tokens;
        if (pendingToken >= 0) {
            all = new int[tokens.length + 1];
            all[0] = pendingToken;
            System.arraycopy(tokens, 0, all, 1, tokens.length);
        }
        if (all.length > contextLength - position) {
            throw new IllegalArgumentException("prompt is " + all.length + " tokens but only "
                    + (contextLength - position) + " fit in the context (raise --context)");
        }
        int vocab = model.config().vocabSize();
        for (int t : all) {
            if (t < 0 || t >= vocab) {
                throw new IllegalArgumentException("token " + t + " is outside the vocabulary (size " + vocab + ")");
            }
        }
        pendingToken = -1;
        for (int i = 0; i < all.length; i++) {
            transformer.forward(state, all[i], position, i == all.length - 1);
            position++;
        }
    }

    /// The logits computed by the last [#ingest] (a live view: copy it to keep it).
    public float[] logits() {
        return state.logits;
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
