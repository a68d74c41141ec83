package dev.llamaj.engine;

/// The result of one generation: the text, why it stopped, and how long each phase took.
///
/// @param text            the generated text (the prompt excluded)
/// @param promptTokens    tokens processed before generation started
/// @param generatedTokens tokens generated (an end-of-generation token is not counted)
/// @param stopReason      why generation stopped
/// @param promptNanos     time spent processing the prompt
/// @param generationNanos time spent generating
public record Completion(String text, int promptTokens, int generatedTokens, StopReason stopReason,
                         long promptNanos, long generationNanos) {

    /// Why generation stopped. Running out of context is a reason to stop, not an error.
    public enum StopReason {
        /// the model produced an end-of-generation token (EOS, end of turn)
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

    /// Prompt processing speed in tokens per second (0 when there was no prompt).
    public double promptTokensPerSecond() {
        return promptNanos == 0 ? 0 : promptTokens * 1e9 / promptNanos;
    }

    /// Generation speed in tokens per second (0 when nothing was generated).
    public double tokensPerSecond() {
        return generationNanos == 0 ? 0 : generatedTokens * 1e9 / generationNanos;
    }
}
