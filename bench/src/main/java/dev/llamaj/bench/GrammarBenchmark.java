package dev.llamaj.bench;

import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/// The cost of grammar-constrained decoding per generated token, with a real vocabulary (by default Llama 3's
/// 128,256 tokens): one `mask` of the logits and one `accept` of the chosen token, for a JSON-schema grammar.
///
/// - `coldStep`: the first step at a given state (`state`: `string` inside a string value, `key` between an
///   object's members, `number` inside a number) of the first generation with a newly compiled grammar,
///   brought there by the tokens of a prefix: the full trie walk, the automaton's transitions computed on the
///   way.
/// - `warmStep`: the same step for a later generation with the same grammar (a server answering requests
///   with the same schema): the constraints of a grammar share its automaton and masks.
/// - `documentStep`: the average step over generating a whole document token by token, with a newly compiled
///   grammar for each document (each a first generation; compiled beforehand, not measured), so only states
///   met again within the document (free text inside a string) reuse their mask.
///
/// ```
/// java -jar bench/target/benchmarks.jar GrammarBenchmark
/// java -jar bench/target/benchmarks.jar GrammarBenchmark -p vocabulary=../shared/tokenizer/qwen2.gguf
/// ```
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GrammarBenchmark {
    static final String SCHEMA = """
            {"type": "object", "properties": {
              "name": {"type": "string"},
              "age": {"type": "integer", "minimum": 0, "maximum": 150},
              "email": {"type": "string", "format": "email"},
              "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
              "address": {"type": "object", "properties": {"street": {"type": "string"},
                          "city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}},
             "required": ["name", "age"], "additionalProperties": false}""";
    static final String DOCUMENT = """
            {"name": "Alice Smith, the engineer from Lyon who writes Java", "age": 42, "email": "alice@example.com",
             "tags": ["jvm", "inference", "grammars"], "address": {"street": "12 rue de la République",
             "city": "Lyon"}}""";

    /// A vocabulary and the grammar, shared by the benchmarks.
    @State(Scope.Benchmark)
    public static class Shared {
        @Param({"../shared/tokenizer/llama3-bpe.gguf"})
        public String vocabulary;

        Tokenizer tokenizer;
        Grammar grammar;
        int[] document;
        private int fresh;

        /// A newly compiled grammar for [#SCHEMA]: `Grammar.parse` returns the grammar it compiled last time for
        /// the same text, so the text gets a comment of its own.
        Grammar freshGrammar() {
            return Grammar.parse(grammar.gbnf() + "\n# fresh " + fresh++ + "\n");
        }

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            try (GGUFFile file = GGUFFile.open(Path.of(vocabulary))) {
                tokenizer = Tokenizer.from(file.metadata());
            }
            grammar = Grammar.fromJsonSchema(SCHEMA);
            document = tokenizer.encode(DOCUMENT);
            grammar.newConstraint(tokenizer); // builds the vocabulary's trie once, outside the measurements
        }
    }

    /// A constraint brought to `state` before every call, of a newly compiled grammar.
    @State(Scope.Thread)
    public static class Cold {
        @Param({"string", "key", "number"})
        public String state;

        TokenConstraint constraint;
        int next;
        float[] logits;

        @Setup(Level.Invocation)
        public void setUp(Shared shared) {
            prepare(shared, shared.freshGrammar());
        }

        void prepare(Shared shared, Grammar grammar) {
            String prefix = switch (state) {
                case "string" -> "{\"name\": \"Alice Smi";
                case "key" -> "{\"name\": \"Alice\", ";
                default -> "{\"name\": \"Alice\", \"age\": 4";
            };
            String following = switch (state) {
                case "string" -> "th\"";
                case "key" -> "\"age\"";
                default -> "2";
            };
            constraint = grammar.newConstraint(shared.tokenizer);
            for (int token : shared.tokenizer.encode(prefix)) {
                constraint.accept(token);
            }
            next = shared.tokenizer.encode(following)[0];
            if (logits == null) {
                logits = new float[shared.tokenizer.vocabulary().size()];
            }
        }
    }

    /// A constraint brought to `state` before every call, of the grammar every call shares.
    @State(Scope.Thread)
    public static class Warm extends Cold {
        @Override
        @Setup(Level.Invocation)
        public void setUp(Shared shared) {
            prepare(shared, shared.grammar);
        }
    }

    /// A generation of [#DOCUMENT], one token per call, each document with a grammar of its own.
    @State(Scope.Thread)
    public static class Generation {
        TokenConstraint constraint;
        int position;
        float[] logits;
        Grammar[] grammars;
        int used;

        @Setup(Level.Trial)
        public void setUp(Shared shared) {
            logits = new float[shared.tokenizer.vocabulary().size()];
        }

        /// Fresh grammars for the documents of one iteration (a few hundred at most), compiled outside it.
        @Setup(Level.Iteration)
        public void compile(Shared shared) {
            grammars = new Grammar[400];
            for (int i = 0; i < grammars.length; i++) {
                grammars[i] = shared.freshGrammar();
            }
            used = 0;
            constraint = null;
        }

        Grammar nextGrammar() {
            return grammars[used++ % grammars.length]; // past 400 documents, grammars come back warm
        }
    }

    @Benchmark
    public float coldStep(Cold cold) {
        cold.constraint.mask(cold.logits);
        cold.constraint.accept(cold.next);
        return cold.logits[cold.next];
    }

    @Benchmark
    public float warmStep(Warm warm) {
        warm.constraint.mask(warm.logits);
        warm.constraint.accept(warm.next);
        return warm.logits[warm.next];
    }

    @Benchmark
    public float documentStep(Shared shared, Generation g) {
        if (g.constraint == null || g.position == shared.document.length) {
            g.constraint = g.nextGrammar().newConstraint(shared.tokenizer);
            g.position = 0;
        }
        int token = shared.document[g.position++];
        g.constraint.mask(g.logits);
        g.constraint.accept(token);
        return g.logits[token];
    }
}
