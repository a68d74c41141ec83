package dev.llamaj.template;

/// A chat template that cannot be parsed or that fails while rendering, with a one-line message.
///
/// Syntax errors read `line N: what is wrong`. A template that calls `raise_exception(message)` fails with that
/// message exactly, as Hugging Face reports it (Gemma's template refuses a system message this way). Other render
/// errors (an undefined value used in arithmetic, a sandbox limit reached) read `line N: what is wrong` too.
///
/// It is a checked exception on purpose: a template refusing a conversation is an expected outcome that the
/// caller has to turn into a message for its user, not a bug.
public final class TemplateException extends Exception {
    private static final long serialVersionUID = 1L;

    public TemplateException(String message) {
        super(message);
    }

    TemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
