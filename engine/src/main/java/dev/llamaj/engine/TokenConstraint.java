package dev.llamaj.engine;

/// Restricts which tokens may come next, so that the output keeps a shape (a grammar, a JSON schema, a tool
/// call's arguments). The sampler asks it to mask the logits before choosing, then tells it the token chosen.
///
/// A constraint is stateful and belongs to one generation on one thread. End-of-generation tokens are the
/// constraint's business too: it allows them only where the output is complete.
public interface TokenConstraint {

    /// Sets to negative infinity the logit of every token that cannot come next. If nothing can (the output is a
    /// dead end the constraint could not foresee), every logit is masked and the sampler ends the generation;
    /// see [#isComplete()] for what happens at the end.
    void mask(float[] logits);

    /// Advances past `token`, which the last [#mask] allowed.
    ///
    /// @throws IllegalArgumentException if the token cannot come next
    void accept(int token);

    /// Whether the output so far is complete: an end-of-generation token may come next. When it is complete and
    /// nothing can extend it, [#mask] allows only end-of-generation tokens.
    boolean isComplete();
}
