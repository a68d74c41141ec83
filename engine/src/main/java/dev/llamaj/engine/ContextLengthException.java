package dev.llamaj.engine;

/// The context of a session is too short (or too long) for what was asked of it: a prompt that does not fit, a
/// cache that does not fit in memory, a text too short for the perplexity's context. The message says what in
/// library terms; [#remedy] says which way the context length should change, for front ends to phrase in their
/// own terms (the CLI's `--context`, a server's request field).
public final class ContextLengthException extends IllegalArgumentException {
    /// Which way the context length should move.
    public enum Remedy { LONGER, SHORTER }

    private final Remedy remedy;

    public ContextLengthException(String message, Remedy remedy) {
        super(message);
        this.remedy = remedy;
    }

    public Remedy remedy() {
        return remedy;
    }
}
