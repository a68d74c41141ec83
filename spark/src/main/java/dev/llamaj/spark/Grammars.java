package dev.llamaj.spark;

import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.engine.grammar.GrammarException;
import java.util.LinkedHashMap;
import java.util.Map;

/// The grammars of this JVM, compiled once per source text: the options' grammar is compiled by every task of
/// the job, and a per-row `json_schema` column usually repeats a few schemas over millions of rows. A `Grammar`
/// is immutable and thread-safe; each generation takes its own constraint from it.
final class Grammars {
    private Grammars() {}

    /// Most grammars kept; the least recently used goes first.
    private static final int CAPACITY = 64;

    private static final Map<String, Grammar> CACHE = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Grammar> eldest) {
            return size() > CAPACITY;
        }
    };

    /// The grammar of `gbnf`, or of the JSON Schema `jsonSchema` when `gbnf` is null; null when both are.
    ///
    /// @throws IllegalArgumentException `NAME: problem` (`NAME` is `grammarName` or `schemaName`, the option or
    ///         column the text came from) when it does not compile
    static Grammar of(String gbnf, String grammarName, String jsonSchema, String schemaName) {
        if (gbnf == null && jsonSchema == null) {
            return null;
        }
        String key = gbnf != null ? "gbnf\n" + gbnf : "schema\n" + jsonSchema;
        synchronized (CACHE) {
            Grammar g = CACHE.get(key);
            if (g != null) {
                return g;
            }
        }
        Grammar g;
        try { // compiled outside the lock: a large schema takes a while, and other rows need not wait for it
            g = gbnf != null ? Grammar.parse(gbnf) : Grammar.fromJsonSchema(jsonSchema);
        } catch (GrammarException e) {
            throw new IllegalArgumentException((gbnf != null ? grammarName : schemaName) + ": " + e.getMessage(), e);
        }
        synchronized (CACHE) {
            CACHE.put(key, g);
        }
        return g;
    }
}
