package dev.llamaj.engine;

import java.util.List;

/// The result of one generation: the text, why it stopped, how long each phase took, and how sure the sampler
/// was of its choices.
///
/// @param text            the generated text (the prompt excluded)
/// @param promptTokens    tokens processed before generation started
/// @param generatedTokens tokens generated (an end-of-generation token is not counted)
/// @param stopReason      why generation stopped
/// @param promptNanos     time spent processing the prompt
/// @param generationNanos time spent generating
/// @param logprobSum      the sum of the generated tokens' log-probabilities (see [Token#logprob()])
/// @param minLogprob      the lowest of them (0 when nothing was generated)
public record Completion(String text, int promptTokens, int generatedTokens, StopReason stopReason,
                         long promptNanos, long generationNanos, double logprobSum, float minLogprob) {

    /// A completion without log-probabilities (as if every token were certain).
    public Completion(String text, int promptTokens, int generatedTokens, StopReason stopReason, long promptNanos,
                      long generationNanos) {
        this(text, promptTokens, generatedTokens, stopReason, promptNanos, generationNanos, 0, 0f);
    }

    /// Why generation stopped. Running out of context is a reason to stop, not an error.
    public enum StopReason {
        /// the model produced an end-of-generation token (EOS, end of turn), or the sampler's constraint or logit
        /// bias allowed no token at all (a complete grammar match that nothing can extend)
        END_OF_GENERATION,
        /// the text reached one of the caller's stop strings
        STOP_STRING,
        /// the requested number of tokens was generated
        MAX_TOKENS,
        /// the session's context is full
        CONTEXT_FULL,
        /// [Session#cancel()] was called or the generating thread was interrupted
        CANCELLED
    }

    /// One generated token as the sampler chose it.
    ///
    /// @param id      the token id (its bytes: [dev.llamaj.tokenizer.Tokenizer#bytes(int)])
    /// @param logprob its natural-log probability in the distribution the sampler drew from: after logit bias,
    ///                penalties, constraint mask, top-k/top-p/min-p and temperature, renormalised over the tokens
    ///                left; for greedy decoding the softmax at temperature 1 of the logits after bias, penalties
    ///                and mask. 0 means certain (the only token allowed)
    /// @param top     the most likely alternatives in the same distribution, most likely first (the chosen token
    ///                among them if it is one of them); empty unless [Sampler#topLogprobs(int)] asked for them
    public record Token(int id, float logprob, List<Alternative> top) {
        public Token {
            top = List.copyOf(top);
        }
    }

    /// A token the sampler could have chosen, with its log-probability.
    public record Alternative(int id, float logprob) {}

    /// Receives each generated token when it is chosen, before its text reaches the text callback.
    @FunctionalInterface
    public interface TokenListener {
        void accept(Token token);
    }

    /// The mean log-probability of the generated tokens (0 when nothing was generated): near 0 when the model was
    /// sure of every token; a low value flags an answer worth a second look (or a larger model).
    public double meanLogprob() {
        return generatedTokens == 0 ? 0 : logprobSum / generatedTokens;
    }

    /// `exp` of the negated mean log-probability: the perplexity of the completion under its own sampler.
    public double perplexity() {
        return Math.exp(-meanLogprob());
    }

    /// Prompt processing speed in tokens per second (0 when there was no prompt).
    public double promptTokensPerSecond() {
        return promptNanos == 0 ? 0 : promptTokens * 1e9 / promptNanos;
    }

    /// Generation speed in tokens per second (0 when nothing was generated).
    public double tokensPerSecond() {
        return generationNanos == 0 ? 0 : generatedTokens * 1e9 / generationNanos;
    }
}
