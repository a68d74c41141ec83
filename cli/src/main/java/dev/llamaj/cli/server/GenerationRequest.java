package dev.llamaj.cli.server;

import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.tools.ToolCalling;
import java.util.List;
import java.util.function.Supplier;

/// A validated completion request, ready for a slot: the prompt already in tokens.
///
/// @param chat         `/v1/chat/completions` (true) or `/v1/completions`
/// @param prompt       prompt tokens (BOS included when the vocabulary wants one)
/// @param maxTokens    tokens to generate at most (the slot's context may stop generation earlier)
/// @param settings     sampling settings, seed included
/// @param stops        stop strings (none empty)
/// @param stream       answer with Server-Sent Events
/// @param includeUsage when streaming, end with a chunk that carries the token counts
/// @param n            choices to generate (1 or more), each with its own sampler seeded `seed + index`
/// @param logprobs     alternatives to report per token, or -1 for no log-probabilities at all
/// @param constraint   makes a fresh constraint for each choice (`response_format`), or null
/// @param tools        tool calling (the answer is read for calls); null when the request offers no tools
record GenerationRequest(boolean chat, int[] prompt, int maxTokens, Sampler.Settings settings, List<String> stops,
                         boolean stream, boolean includeUsage, int n, int logprobs,
                         Supplier<TokenConstraint> constraint, ToolCalling tools) {

    /// One choice, no log-probabilities, no constraint, no tools.
    GenerationRequest(boolean chat, int[] prompt, int maxTokens, Sampler.Settings settings, List<String> stops,
                      boolean stream, boolean includeUsage) {
        this(chat, prompt, maxTokens, settings, stops, stream, includeUsage, 1, -1, null, null);
    }
}
