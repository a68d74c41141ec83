package dev.llamaj.engine.grammar;

/// A grammar or JSON schema that cannot be used: a GBNF syntax error, an undefined rule, left recursion, or a
/// JSON Schema keyword or value that has no grammar. The message is one line: for GBNF it starts with the
/// `line:column` of the problem, for a schema with the JSON pointer of the offending keyword.
public final class GrammarException extends IllegalArgumentException {
    public GrammarException(String message) {
        super(message);
    }
}
