package dev.llamaj.engine;

import dev.llamaj.tokenizer.Detokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/// Speculative decoding: a cheap source guesses the next few tokens, the model checks all of them in one batched
/// forward pass, and every guess it agrees with is a token gained without a pass of its own.
///
/// Two draft sources:
/// - **a draft model** ([#draftModel]): a smaller model with the same vocabulary, in its own [Session], proposes
///   tokens one at a time (cheap when it is much smaller than the target);
/// - **prompt lookup** ([#promptLookup]): the last `n` tokens of the context are searched for earlier in the
///   context (prompt and output so far), and the tokens that followed them there are the guess. It costs nothing
///   and pays off when the output copies from the input (extraction, quoting, editing code).
///
/// Each round runs the last chosen token and the `k` guesses through the model and decides the position after
/// each in order. Greedy decoding keeps the guesses up to the first one that is not the argmax, then the argmax
/// there; sampling accepts guess `x` with probability `min(1, p(x) / q(x))` (`p` the sampler's distribution, `q`
/// the draft's; one-hot for prompt lookup) and on rejection draws from `normalize(max(0, p - q))`, which makes
/// every token follow `p` exactly ([Sampler]). A round always yields at least one token (the correction, or a
/// bonus token after `k` accepted guesses); the cache positions of rejected guesses are forgotten with
/// [Session#rewind]. Constraints, penalties, logit bias, stop strings, log-probabilities, the token limit and
/// [Session#cancel] behave as in [Session#generate]: the sampler sees the same calls in the same order, a guess
/// the constraint forbids is simply rejected.
///
/// **Where it pays, and rounding.** A round of `k + 1` tokens (up to 32) goes through the small-batch kernel in
/// one pass ([Transformer#forwardFew]: every weight read and dequantized once for all the round's tokens), which
/// costs little more than one token: a round is then cheaper than its accepted tokens whenever guesses are
/// accepted. That pass rounds differently from the token-at-a-time pass of plain generation (another summation
/// order), so greedy output can differ from plain greedy output where two tokens are within rounding of each
/// other. With [#exact()] every round runs token at a time, stopping at the first rejected guess: the output is
/// then plain generation's token for token, and nothing is gained (each token still costs a pass). A session of a
/// [BatchExecutor] runs the round through the executor's small-batch steps, whose logits for a token do not
/// depend on how tokens are grouped: the output is then the executor's plain output exactly, and the round costs
/// about one step.
///
/// Counters ([#drafted()], [#accepted()], [#rounds()]) accumulate over generations until [#resetCounts()].
/// One generation at a time: an instance, like a [Session], is not thread-safe.
public final class Speculation {
    /// Most draft tokens per round by default: past 8, a round's batch gets dearer and long guesses rarely survive.
    public static final int DEFAULT_MAX_DRAFT = 8;
    /// Longest n-gram prompt lookup matches by default.
    public static final int DEFAULT_NGRAM = 3;

    private final Session draft;
    private final int ngram;
    private final int maxDraft;
    private final boolean exact;

    private long drafted;
    private long accepted;
    private long rounds;

    private Speculation(Session draft, int ngram, int maxDraft, boolean exact) {
        if (maxDraft < 1) {
            throw new IllegalArgumentException("draft max must be 1 or more, got " + maxDraft);
        }
        this.draft = draft;
        this.ngram = ngram;
        this.maxDraft = maxDraft;
        this.exact = exact;
    }

    /// Guesses from `draft`, a session of a model with the target's vocabulary (checked when generating, see
    /// [#checkCompatible]), at most `maxDraft` tokens a round. The draft session is this speculation's: it follows
    /// the target's context on its own (rewinding and catching up at each generation), so do not use it elsewhere.
    ///
    /// @throws IllegalArgumentException if `maxDraft` is below 1
    public static Speculation draftModel(Session draft, int maxDraft) {
        return new Speculation(Objects.requireNonNull(draft, "draft"), 0, maxDraft, false);
    }

    /// Guesses by prompt lookup: the longest suffix of the context of at most `ngram` tokens (down to 1) that
    /// occurred before, most recent occurrence first, continued by up to `maxDraft` of the tokens that followed it.
    ///
    /// @throws IllegalArgumentException if `ngram` or `maxDraft` is below 1
    public static Speculation promptLookup(int ngram, int maxDraft) {
        if (ngram < 1) {
            throw new IllegalArgumentException("lookup n-gram must be 1 or more, got " + ngram);
        }
        return new Speculation(null, ngram, maxDraft, false);
    }

    /// This speculation verifying token at a time, so that greedy output is plain greedy output token for token
    /// (see the class comment: it then saves nothing, and costs nothing for prompt lookup).
    public Speculation exact() {
        return new Speculation(draft, ngram, maxDraft, true);
    }

    public boolean isExact() {
        return exact;
    }

    /// The draft session, or null for prompt lookup.
    public Session draftSession() {
        return draft;
    }

    public int maxDraft() {
        return maxDraft;
    }

    /// The longest n-gram of prompt lookup (0 with a draft model).
    public int ngram() {
        return ngram;
    }

    /// Draft tokens proposed so far.
    public long drafted() {
        return drafted;
    }

    /// Draft tokens the model accepted so far.
    public long accepted() {
        return accepted;
    }

    /// Verification passes so far (each yields one token more than it accepted).
    public long rounds() {
        return rounds;
    }

    /// `accepted / drafted` (0 before any draft).
    public double acceptanceRate() {
        return drafted == 0 ? 0 : (double) accepted / drafted;
    }

    public void resetCounts() {
        drafted = 0;
        accepted = 0;
        rounds = 0;
    }

    /// Fails unless `draft` can propose tokens for `target`: the same vocabulary, token for token.
    ///
    /// @throws IllegalArgumentException in one line naming the first difference
    public static void checkCompatible(LlamaModel target, LlamaModel draft) {
        Vocabulary t = target.tokenizer().vocabulary();
        Vocabulary d = draft.tokenizer().vocabulary();
        if (t.size() != d.size()) {
            throw new IllegalArgumentException("the draft model's vocabulary has " + d.size()
                    + " tokens but the model's has " + t.size() + ": a draft model needs the same vocabulary");
        }
        if (target.config().vocabSize() != draft.config().vocabSize()) {
            throw new IllegalArgumentException("the draft model's classifier has " + draft.config().vocabSize()
                    + " rows but the model's has " + target.config().vocabSize()
                    + ": a draft model needs the same vocabulary");
        }
        for (int i = 0; i < t.size(); i++) {
            if (!t.piece(i).equals(d.piece(i))) {
                throw new IllegalArgumentException("the draft model's token " + i + " is '" + d.piece(i)
                        + "' but the model's is '" + t.piece(i) + "': a draft model needs the same vocabulary");
            }
        }
        if (t.addBos() != d.addBos() || (t.addBos() && t.bos() != d.bos())) {
            throw new IllegalArgumentException("the draft model's start token differs from the model's");
        }
    }

    /// As [Session#generate(int[], int, Sampler, List, Consumer, Completion.TokenListener)] on `target`, with
    /// speculation: the same contract, stop reasons and callbacks.
    ///
    /// @throws IllegalArgumentException as plain generation does, or if the draft model's vocabulary differs
    public Completion generate(Session target, int[] prompt, int maxTokens, Sampler sampler,
                               List<String> stopStrings, Consumer<String> onText,
                               Completion.TokenListener onToken) {
        if (draft != null) {
            if (draft == target) {
                throw new IllegalArgumentException("the draft session must not be the session it drafts for");
            }
            checkCompatible(target.model(), draft.model());
        }
        return new Run(target, sampler, stopStrings, onText, onToken).generate(prompt, maxTokens);
    }

    /// One generation: the target's context mirrored in `context` (so guesses can be looked up and the draft
    /// caught up), and the per-round buffers.
    private final class Run {
        private final Session target;
        private final Sampler sampler;
        private final StopStrings out;
        private final Completion.TokenListener onToken;
        private final Detokenizer detokenizer;
        private final Vocabulary vocabulary;
        private final int vocab;

        /// Every token of the target's context, the pending (chosen, not yet processed) one last.
        private final int[] context;
        private int length;
        /// How many of `context` the draft session has processed.
        private int draftValid;
        private final Sampler draftSampler;

        private final int[] batch;
        /// The logits being decided (the sampler's chain works in place).
        private final float[] scratch;
        /// The draft's proposal distribution at each guess (sampling with a draft model only).
        private final float[][] q;
        private final float[] p;
        private final float[] draftLogits;
        private int batchCount;

        private int generated;
        private double logprobSum;
        private float minLogprob;
        private Completion.StopReason reason;

        Run(Session target, Sampler sampler, List<String> stopStrings, Consumer<String> onText,
            Completion.TokenListener onToken) {
            this.target = target;
            this.sampler = sampler;
            this.out = new StopStrings(stopStrings, onText);
            this.onToken = onToken;
            this.detokenizer = target.model().tokenizer().detokenizer();
            this.vocabulary = target.model().tokenizer().vocabulary();
            this.vocab = target.model().config().vocabSize();
            this.context = new int[target.contextLength()];
            this.batch = new int[maxDraft + 1];
            this.scratch = new float[vocab];
            this.p = new float[vocab];
            this.draftLogits = draft == null ? null : new float[vocab];
            boolean sampling = sampler.settings().temperature() > 0;
            this.q = draft != null && sampling ? new float[maxDraft][vocab] : null;
            Sampler.Settings s = sampler.settings();
            // the draft proposes from the same truncation and temperature (the closer q is to p, the more is
            // accepted); penalties and constraint stay with the target, which decides
            this.draftSampler = draft == null ? null : Sampler.create(new Sampler.Settings(s.temperature(), s.topK(),
                    s.topP(), s.minP(), 1f, 0, s.seed() ^ 0x5DEECE66DL, 0f, 0f, s.logitBias()));
        }

        Completion generate(int[] prompt, int maxTokens) {
            if (maxTokens < 0) {
                throw new IllegalArgumentException("max tokens must be 0 or more, got " + maxTokens);
            }
            if (prompt.length == 0 && target.position() == 0) {
                throw new IllegalArgumentException("the prompt is empty");
            }
            int free = target.contextLength() - target.position();
            if (prompt.length > free) {
                throw new ContextLengthException("prompt is " + prompt.length + " tokens but only " + free
                        + " fit in the context", ContextLengthException.Remedy.LONGER);
            }
            sampler.checkVocabulary(vocab);
            limit = maxTokens;
            target.clearCancel();
            long start = System.nanoTime();
            for (int t : prompt) {
                sampler.accept(t);
            }
            int[] before = target.tokens();
            target.ingest(prompt);
            System.arraycopy(before, 0, context, 0, before.length);
            System.arraycopy(prompt, 0, context, before.length, prompt.length);
            length = before.length + prompt.length;
            if (draft != null) {
                syncDraft();
            }
            long promptNanos = System.nanoTime() - start;

            reason = Completion.StopReason.MAX_TOKENS;
            long genStart = System.nanoTime();
            // the first token comes from the prompt's logits, as in plain generation
            if (maxTokens > 0 && !stopped()) {
                if (target.position() >= target.contextLength()) {
                    reason = Completion.StopReason.CONTEXT_FULL;
                } else {
                    System.arraycopy(target.logits(), 0, scratch, 0, vocab);
                    emit(sampler.sample(scratch));
                    if (generated > 0) {
                        target.keepSpeculated(context, length);
                    }
                }
            }
            while (reason == Completion.StopReason.MAX_TOKENS && generated < maxTokens && !stopped()) {
                round(maxTokens);
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

        /// Whether cancellation asks to stop (then sets the reason).
        private boolean stopped() {
            if (target.isCancelled() || Thread.currentThread().isInterrupted()) {
                reason = Completion.StopReason.CANCELLED;
                return true;
            }
            return false;
        }

        /// One verification pass: the pending token and up to `maxDraft` guesses, then the tokens they yield.
        private void round(int maxTokens) {
            // the pending token is the last of `context`, not yet in the target's cache
            int processed = length - 1;
            if (processed + 1 >= target.contextLength()) { // plain generation would process it and stop there
                reason = Completion.StopReason.CONTEXT_FULL;
                return;
            }
            // a round yields up to k + 1 tokens: k + 1 positions of the cache, and the last token pending after
            // them, which plain generation would only choose with a free position left for it
            int room = Math.min(maxTokens - generated - 1, target.contextLength() - processed - 2);
            int k = Math.min(maxDraft, Math.max(0, room));
            batch[0] = context[length - 1];
            k = k == 0 ? 0 : draft != null ? draftFromModel(k) : draftByLookup(k);
            batchCount = k + 1;
            drafted += k;
            rounds++;

            // the position after each token is decided as its logits arrive, in order; once a guess is rejected
            // (or generation ends) the rest are not wanted, and token at a time they are not even computed
            kept = 0;
            open = true;
            target.verify(batch, batchCount, exact, decider);
            accepted += kept;
            // forget the cache positions past what was emitted: the last emitted token stays pending
            target.keepSpeculated(context, length);
            if (draft != null && draftValid > length - 1) { // the draft's guesses past the last accepted one
                draftValid = length - 1;
            }
        }

        /// Guesses accepted in this round, and whether it still takes decisions.
        private int kept;
        private boolean open;
        /// The generation's token limit.
        private int limit;
        private final Session.Verifier decider = this::decide;

        /// Decides the position after `batch[index]` from `modelLogits`: the guess `batch[index + 1]` is kept or
        /// replaced, or after the last guess a token is sampled; returns whether the next position is wanted.
        private boolean decide(int index, float[] modelLogits) {
            if (!open) {
                return false;
            }
            int k = batchCount - 1;
            System.arraycopy(modelLogits, 0, scratch, 0, vocab); // the chain works in place
            int token = index < k ? sampler.verify(scratch, batch[index + 1], q == null ? null : q[index], p)
                    : sampler.sample(scratch);
            boolean guessed = index < k && token == batch[index + 1];
            if (guessed) {
                kept++;
            }
            open = emit(token) && guessed && generated < limit && !stopped();
            return open;
        }

        /// Records a chosen token as plain generation does; false when generation ends here (the reason set).
        private boolean emit(int token) {
            if (token < 0 || vocabulary.isEndOfGeneration(token)) {
                reason = Completion.StopReason.END_OF_GENERATION;
                return false;
            }
            sampler.accept(token);
            float logprob = sampler.lastLogprob();
            logprobSum += logprob;
            minLogprob = generated == 0 ? logprob : Math.min(minLogprob, logprob);
            generated++;
            context[length++] = token;
            if (onToken != null) {
                onToken.accept(tokenEvent(token));
            }
            if (out.append(detokenizer.append(token))) {
                reason = Completion.StopReason.STOP_STRING;
                return false;
            }
            return true;
        }

        private Completion.Token tokenEvent(int token) {
            int n = sampler.lastTopCount();
            Completion.Alternative[] top = new Completion.Alternative[n];
            for (int i = 0; i < n; i++) {
                top[i] = new Completion.Alternative(sampler.lastTopToken(i), sampler.lastTopLogprob(i));
            }
            return new Completion.Token(token, sampler.lastLogprob(), List.of(top));
        }

        /// Up to `k` guesses from the context's most recent earlier occurrence of its last `n` tokens (longest `n`
        /// first) into `batch[1..]`; returns how many.
        private int draftByLookup(int k) {
            for (int n = Math.min(ngram, length - 1); n >= 1; n--) {
                int suffix = length - n;
                for (int i = suffix - 1; i >= 0; i--) { // an occurrence at [i, i + n), followed by context[i + n]
                    int j = 0;
                    while (j < n && context[i + j] == context[suffix + j]) {
                        j++;
                    }
                    if (j == n) {
                        int count = Math.min(k, length - (i + n));
                        System.arraycopy(context, i + n, batch, 1, count);
                        return count;
                    }
                }
            }
            return 0;
        }

        /// Up to `k` guesses from the draft model into `batch[1..]` (and their distributions into `q` when
        /// sampling); returns how many. The draft first catches up with the context (the tokens the last round
        /// chose), then proposes one token per pass.
        private int draftFromModel(int k) {
            // the draft needs room for the catch-up and k - 1 guesses
            int room = draft.contextLength() - length - (k - 1);
            if (room < 0) {
                k += room;
                if (k <= 0) {
                    return 0;
                }
            }
            catchUpDraft();
            for (int i = 0; i < k; i++) {
                if (i > 0) {
                    draft.ingest(batch[i]);
                }
                System.arraycopy(draft.logits(), 0, draftLogits, 0, vocab);
                int guess;
                if (q == null) { // greedy: the argmax, q one-hot
                    guess = draftSampler.distribution(draftLogits, p);
                } else {
                    draftSampler.distribution(draftLogits, q[i]);
                    guess = draftSampler.draw(q[i], vocab);
                }
                if (guess < 0) {
                    return i;
                }
                batch[i + 1] = guess;
            }
            draftValid = length + k - 1; // the last guess is not processed: no guess follows it
            return k;
        }

        /// Brings the draft session to the whole context (the pending token included), so its logits are the
        /// next token's.
        private void catchUpDraft() {
            if (draft.position() > draftValid) {
                draft.rewind(draftValid);
                draftValid = draft.position(); // a sliding-window draft may have forgotten more
            }
            if (draftValid < length) {
                draft.ingest(Arrays.copyOfRange(context, draftValid, length));
                draftValid = length;
            }
        }

        /// At the start of a generation: keeps what the draft session shares with the target's context and
        /// processes the rest (the prompt), so the first round only adds the tokens chosen since.
        private void syncDraft() {
            int[] have = draft.tokens();
            int common = 0;
            int limit = Math.min(have.length, length);
            while (common < limit && have[common] == context[common]) {
                common++;
            }
            if (common < have.length) {
                draft.rewind(common);
            }
            draftValid = draft.position();
            if (length > draft.contextLength()) {
                return; // the draft cannot hold the context: no guesses (see draftFromModel)
            }
            catchUpDraft();
        }
    }
}
