package dev.llamaj.cli.server;

import dev.llamaj.engine.Sampler;
import java.util.List;

/// A validated completion request, ready for a slot: the prompt already in tokens.
///
/// @param chat         `/v1/chat/completions` (true) or `/v1/completions`
/// @param prompt       prompt tokens (BOS included when the vocabulary wants one)
/// @param maxTokens    tokens to generate at most (the slot's context may stop generation earlier)
/// @param settings     sampling settings, seed included
/// @param stops        stop strings (none empty)
/// @param stream       answer with Server-Sent Events
/// @param includeUsage when streaming, end with a chunk that carries the token counts
record GenerationRequest(boolean chat, int[] prompt, int maxTokens, Sampler.Settings settings, List<String> stops,
                         boolean stream, boolean includeUsage) {}
