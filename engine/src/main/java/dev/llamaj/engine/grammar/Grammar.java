package dev.llamaj.engine.grammar;

import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.WeakHashMap;

/// A compiled grammar: what text a generation may produce. Build one from GBNF ([#parse]) or from a JSON Schema
/// ([#fromJsonSchema]), then give every generation its own [TokenConstraint] ([#newConstraint]), which masks the
/// tokens that cannot continue the text.
///
/// ```java
/// Grammar grammar = Grammar.parse("root ::= \"yes\" | \"no\"");
/// TokenConstraint constraint = grammar.newConstraint(model.tokenizer());
/// ```
///
/// The compiled form is llama.cpp's: every rule is a list of alternatives, every alternative a sequence of
/// positions in one `int` array holding a rule reference, a character class or the end of the alternative.
/// Matching keeps a set of stacks of positions (a pushdown automaton); see [Automaton].
///
/// Thread-safe (its only mutable part is the automata its constraints share, used under their locks);
/// constraints are per generation.
public final class Grammar {
    /// `code[p]`: a rule `>= 0`, [#END], or the character class `-code[p] - 2`.
    static final int END = -1;

    private final String gbnf;
    final int[] code;
    /// Per rule, the positions where its alternatives start.
    final int[][] alternatives;
    /// Per class, its code points as sorted inclusive ranges.
    final int[][] classes;
    final String[] ruleNames;
    final int root;

    /// The alphabet the automaton steps on: the 128 ASCII characters are symbols 0-127, and the rest of Unicode is
    /// cut into intervals on which every class of the grammar agrees (symbol `128 + i` is the interval starting at
    /// `intervalStarts[i]`). A JSON grammar treats all non-ASCII characters alike, so it has a handful of symbols
    /// instead of a million code points, and per state a dense transition table.
    final int[] intervalStarts;
    /// The symbol of the UTF-16 surrogates U+D800-DFFF, which are not characters and never match.
    final int surrogateSymbol;

    private Grammar(String gbnf, RuleSet rules) {
        this.gbnf = gbnf;
        int n = rules.names.size();
        this.ruleNames = rules.names.toArray(String[]::new);
        this.classes = rules.classes.toArray(int[][]::new);
        this.alternatives = new int[n][];
        int size = 0;
        for (List<int[]> body : rules.bodies) {
            for (int[] alternative : body) {
                size += alternative.length + 1;
            }
        }
        this.code = new int[size + 1];
        int p = 0;
        for (int rule = 0; rule < n; rule++) {
            List<int[]> body = rules.bodies.get(rule);
            alternatives[rule] = new int[body.size()];
            for (int a = 0; a < body.size(); a++) {
                alternatives[rule][a] = p;
                for (int symbol : body.get(a)) {
                    code[p++] = symbol;
                }
                code[p++] = END;
            }
        }
        code[p] = END;
        this.root = rules.names.indexOf("root");

        TreeSet<Integer> cuts = new TreeSet<>(List.of(0x80, 0xD800, 0xE000));
        for (int[] ranges : classes) {
            for (int i = 0; i < ranges.length; i += 2) {
                if (ranges[i] > 0x80) {
                    cuts.add(ranges[i]);
                }
                if (ranges[i + 1] >= 0x80 && ranges[i + 1] < Character.MAX_CODE_POINT) {
                    cuts.add(ranges[i + 1] + 1);
                }
            }
        }
        this.intervalStarts = cuts.stream().mapToInt(Integer::intValue).toArray();
        this.surrogateSymbol = 128 + cuts.headSet(0xD800).size();
    }

    /// Compiles GBNF, llama.cpp's grammar format (see the README's "Constrained output" section). The rule
    /// named `root` is what the whole output must match.
    ///
    /// The same text gives the same `Grammar` while it is among the [#RECENT_GRAMMARS] most recently used, so
    /// generations with a schema used before start with its states and masks known.
    ///
    /// @throws GrammarException with `line:column: problem` for a syntax error, an undefined or twice-defined
    ///         rule, a missing `root`, or left recursion (`left recursion: a -> b -> a`)
    public static Grammar parse(String gbnf) {
        Objects.requireNonNull(gbnf, "gbnf");
        synchronized (RECENT) {
            Grammar known = RECENT.get(gbnf);
            if (known != null) {
                return known;
            }
        }
        Grammar grammar = new Grammar(gbnf, GbnfParser.parse(gbnf));
        synchronized (RECENT) {
            Grammar raced = RECENT.putIfAbsent(gbnf, grammar);
            return raced != null ? raced : grammar;
        }
    }

    /// How many compiled grammars are kept by their GBNF text.
    static final int RECENT_GRAMMARS = 16;

    /// The grammars compiled most recently, by their text: a server compiling the same schema for every request
    /// gets the same grammar back, and with it the automaton and masks earlier requests built.
    private static final Map<String, Grammar> RECENT = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Grammar> eldest) {
            return size() > RECENT_GRAMMARS;
        }
    };

    /// Compiles a JSON Schema into the grammar of the JSON documents it accepts. `schema` is the schema as parsed
    /// JSON: `Map<String, ?>` objects (in the order properties should be written, so use an ordered map),
    /// `List` arrays, `String`, `Number`, `Boolean` and `null` (a `Boolean` is also a whole schema); or a
    /// `String`, which is read as JSON text.
    ///
    /// What is supported, and the subset generated where the schema allows more (property order, whitespace,
    /// digit counts), is in the README's "Constrained output" section. A keyword that would change what is
    /// valid and has no grammar here is an error naming it; annotations (`title`, `description`, ...) are
    /// ignored.
    ///
    /// @throws GrammarException `schema /properties/age/multipleOf: unsupported JSON Schema keyword ...`
    public static Grammar fromJsonSchema(Object schema) {
        Object parsed = schema;
        if (schema instanceof String text) {
            try {
                parsed = JsonReader.parse(text);
            } catch (GrammarException e) {
                throw e;
            } catch (IllegalArgumentException e) {
                throw new GrammarException("schema " + e.getMessage());
            }
        }
        return parse(JsonSchemaConverter.toGbnf(parsed));
    }

    /// Any JSON value, with the whitespace policy of [#fromJsonSchema].
    public static Grammar anyJsonValue() {
        return parse(JsonSchemaConverter.anyJson(false));
    }

    /// Any JSON object (what OpenAI's `response_format: {"type": "json_object"}` asks for).
    public static Grammar anyJsonObject() {
        return parse(JsonSchemaConverter.anyJson(true));
    }

    /// The GBNF this grammar was compiled from (for a JSON Schema, the grammar it was translated into).
    public String gbnf() {
        return gbnf;
    }

    /// Whether the whole of `text` matches the grammar.
    public boolean matches(String text) {
        Automaton automaton = new Automaton(this);
        int state = automaton.initial();
        for (int i = 0; i < text.length() && state != Automaton.DEAD; ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            state = automaton.stepCodePoint(state, cp);
        }
        return state != Automaton.DEAD && automaton.isComplete(state);
    }

    /// The automaton shared by this grammar's constraints for one vocabulary (its masks are per vocabulary);
    /// weakly keyed, so a discarded tokenizer's goes with it. Used under its own lock.
    private final Map<TokenTrie, Automaton> automata = new WeakHashMap<>();

    Automaton automaton(TokenTrie trie) {
        synchronized (automata) {
            Automaton automaton = automata.get(trie);
            boolean full;
            if (automaton != null) {
                synchronized (automaton) {
                    full = automaton.isFull();
                }
            } else {
                full = true;
            }
            if (full) { // generations still running on the old one keep it until they end
                automaton = new Automaton(this);
                automata.put(trie, automaton);
            }
            return automaton;
        }
    }

    /// A constraint for one generation with this tokenizer's vocabulary: it allows only the tokens whose bytes
    /// keep the output a prefix of something the grammar matches, and end-of-generation tokens once the output
    /// is complete. Control tokens are never allowed. The vocabulary's byte trie is built on first use (a few
    /// hundred milliseconds for 128k tokens) and shared by later constraints, and so are the grammar's automaton
    /// and the masks it has computed for this vocabulary: a schema used again starts warm.
    public TokenConstraint newConstraint(Tokenizer tokenizer) {
        return new GrammarConstraint(this, TokenTrie.of(tokenizer));
    }

    /// Number of symbols of the automaton's alphabet.
    int symbolCount() {
        return 128 + intervalStarts.length;
    }

    /// The symbol of a code point (see [#intervalStarts]).
    int symbolOf(int cp) {
        if (cp < 0x80) {
            return cp;
        }
        int lo = 0, hi = intervalStarts.length - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (intervalStarts[mid] <= cp) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return 128 + lo;
    }

    /// A code point that stands for the symbol: the first of its interval.
    int representative(int symbol) {
        return symbol < 128 ? symbol : intervalStarts[symbol - 128];
    }

    /// Names of the rules (for tests and debugging).
    List<String> ruleNames() {
        return new ArrayList<>(List.of(ruleNames));
    }

    @Override
    public String toString() {
        return "Grammar[" + ruleNames.length + " rules, " + code.length + " positions]";
    }
}
