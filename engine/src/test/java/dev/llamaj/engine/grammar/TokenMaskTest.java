package dev.llamaj.engine.grammar;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.tokenizer.Tokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// The trie walk against brute force: at random states reached by random allowed tokens, the mask must allow
/// exactly the tokens whose bytes, stepped one by one through the automaton, stay alive (and end-of-generation
/// tokens exactly when the output is complete). Run on real vocabularies: Llama 3's byte-level BPE (128k
/// tokens), Llama 2's SentencePiece with byte fallback, and stories260K's 512 tokens.
class TokenMaskTest {
    /// JSON-like text with Unicode: strings take any character but `"` and `\`, numbers, nesting.
    static final String GRAMMAR = """
            root   ::= value
            value  ::= object | array | string | number | "true" | "false" | "null"
            object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
            array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
            string ::= "\\"" ( [^"\\\\] | "\\\\" ["\\\\/nt] )* "\\""
            number ::= "-"? [0-9]+ ( "." [0-9]+ )?
            ws     ::= [ \\n]{0,2}
            """;
    static final String UNICODE = "root ::= ( [α-ω]+ | \"日本\" [語人] | \"😀\" | [^\\x00-\\x7F]{2} \" \" )+";

    private static final Map<String, Tokenizer> TOKENIZERS = new HashMap<>();

    static synchronized Tokenizer tokenizer(String file) throws Exception {
        Tokenizer known = TOKENIZERS.get(file);
        if (known == null) {
            try (GGUFFile gguf = GGUFFile.open(SharedData.require(file))) {
                known = Tokenizer.from(gguf.metadata());
            }
            TOKENIZERS.put(file, known);
        }
        return known;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tokenizer/llama3-bpe.gguf", "tokenizer/llama-spm.gguf", "models/stories260K.gguf"})
    void maskEqualsBruteForceOnRandomStates(String file) throws Exception {
        Tokenizer tokenizer = tokenizer(file);
        int states = file.contains("stories") ? 300 : 25;
        for (String gbnf : new String[] {GRAMMAR, UNICODE}) {
            Grammar grammar = Grammar.parse(gbnf);
            SplittableRandom random = new SplittableRandom(gbnf.length());
            GrammarConstraint constraint = (GrammarConstraint) grammar.newConstraint(tokenizer);
            int checked = 0;
            for (int step = 0; checked < states; step++) {
                float[] logits = new float[tokenizer.vocabulary().size()];
                constraint.mask(logits);
                int allowedCount = 0;
                for (int token = 0; token < logits.length; token++) {
                    boolean allowed = logits[token] == 0f;
                    allowedCount += allowed ? 1 : 0;
                    if (allowed != constraint.allows(token)) {
                        throw new AssertionError(file + ": token " + token + " '"
                                + tokenizer.vocabulary().piece(token) + "' masked " + !allowed + " but brute force says "
                                + constraint.allows(token) + " at " + constraint);
                    }
                    if (allowed && tokenizer.vocabulary().isControl(token)) {
                        assertThat(tokenizer.vocabulary().isEndOfGeneration(token)).isTrue();
                    }
                }
                checked++;
                assertThat(allowedCount).isPositive();
                int pick = pickAllowed(logits, random, tokenizer.vocabulary());
                if (tokenizer.vocabulary().isEndOfGeneration(pick)) {
                    constraint = (GrammarConstraint) grammar.newConstraint(tokenizer);
                } else {
                    constraint.accept(pick);
                }
            }
        }
    }

    /// A random allowed token, preferring end-of-generation tokens now and then so outputs finish.
    static int pickAllowed(float[] masked, SplittableRandom random, Vocabulary vocabulary) {
        int count = 0;
        for (float v : masked) {
            count += v == 0f ? 1 : 0;
        }
        int k = random.nextInt(count);
        for (int token = 0; token < masked.length; token++) {
            if (masked[token] == 0f) {
                if (vocabulary.isEndOfGeneration(token) && random.nextInt(3) == 0) {
                    return token;
                }
                if (k-- == 0) {
                    return token;
                }
            }
        }
        throw new AssertionError();
    }

    @ParameterizedTest
    @ValueSource(strings = {"tokenizer/llama3-bpe.gguf", "tokenizer/llama-spm.gguf", "models/stories260K.gguf"})
    void multiByteCharactersAcrossTokensAndOnlyTheEndWhenComplete(String file) throws Exception {
        Tokenizer tokenizer = tokenizer(file);
        Grammar grammar = Grammar.parse("root ::= \"😀 é\" [日語]");
        SplittableRandom random = new SplittableRandom(7);
        for (int run = 0; run < 20; run++) {
            TokenConstraint constraint = grammar.newConstraint(tokenizer);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int step = 0; step < 40 && !constraint.isComplete(); step++) {
                float[] logits = new float[tokenizer.vocabulary().size()];
                constraint.mask(logits);
                int token = pickAllowed(logits, random, tokenizer.vocabulary());
                constraint.accept(token);
                out.writeBytes(tokenizer.bytes(token));
            }
            assertThat(out.toString(StandardCharsets.UTF_8)).isIn("😀 é日", "😀 é語");
            float[] logits = new float[tokenizer.vocabulary().size()];
            constraint.mask(logits);
            for (int token = 0; token < logits.length; token++) {
                assertThat(logits[token] == 0f).as("token %d", token)
                        .isEqualTo(tokenizer.vocabulary().isEndOfGeneration(token));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tokenizer/llama3-bpe.gguf", "tokenizer/llama-spm.gguf", "models/stories260K.gguf"})
    void exactlyTheTokensThatArePrefixesOfALiteralAreAllowed(String file) throws Exception {
        Tokenizer tokenizer = tokenizer(file);
        String target = " Once upon a time";
        byte[] goal = target.getBytes(StandardCharsets.UTF_8);
        GrammarConstraint constraint = (GrammarConstraint) Grammar.parse("root ::= \"" + target + "\"")
                .newConstraint(tokenizer);
        float[] logits = new float[tokenizer.vocabulary().size()];
        constraint.mask(logits);
        int longest = -1;
        for (int token = 0; token < logits.length; token++) {
            byte[] b = tokenizer.bytes(token);
            int type = tokenizer.vocabulary().tokenType(token);
            boolean prefix = b.length > 0 && b.length <= goal.length && type != Vocabulary.CONTROL
                    && type != Vocabulary.UNKNOWN && java.util.Arrays.equals(b, 0, b.length, goal, 0, b.length);
            assertThat(logits[token] == 0f).as("token %d '%s'", token, tokenizer.vocabulary().piece(token))
                    .isEqualTo(prefix);
            if (prefix && (longest < 0 || b.length > tokenizer.bytes(longest).length)) {
                longest = token;
            }
        }
        // a token that is only a prefix: allowed, and the output is not complete after it
        assertThat(tokenizer.bytes(longest).length).isLessThan(goal.length);
        constraint.accept(longest);
        assertThat(constraint.isComplete()).isFalse();
        int eos = tokenizer.vocabulary().eos();
        assertThatThrownBy(() -> constraint.accept(eos)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("before the grammar is complete");
        byte expected = goal[tokenizer.bytes(longest).length];
        int wrong = 0;
        while (tokenizer.bytes(wrong).length == 0 || tokenizer.bytes(wrong)[0] == expected
                || tokenizer.vocabulary().tokenType(wrong) != Vocabulary.NORMAL) {
            wrong++;
        }
        int refused = wrong;
        assertThatThrownBy(() -> constraint.accept(refused))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cannot continue");
    }

    /// Constraints of one grammar share its automaton and masks: generations on several threads at once must
    /// each get exactly their own mask (checked against brute force) and finish with text the grammar matches.
    @org.junit.jupiter.api.Test
    void concurrentGenerationsShareTheAutomatonSafely() throws Exception {
        Tokenizer tokenizer = tokenizer("models/stories260K.gguf");
        Grammar grammar = Grammar.parse(GRAMMAR);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            java.util.List<java.util.concurrent.Future<Integer>> results = new java.util.ArrayList<>();
            for (int thread = 0; thread < 4; thread++) {
                long seed = thread;
                results.add(pool.submit(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    int finished = 0;
                    for (int run = 0; run < 40; run++) {
                        GrammarConstraint constraint = (GrammarConstraint) grammar.newConstraint(tokenizer);
                        ByteArrayOutputStream out = new ByteArrayOutputStream();
                        for (int step = 0; step < 60; step++) {
                            float[] logits = new float[tokenizer.vocabulary().size()];
                            constraint.mask(logits);
                            for (int token = 0; token < logits.length; token++) {
                                if ((logits[token] == 0f) != constraint.allows(token)) {
                                    throw new AssertionError("token " + token + " at " + constraint);
                                }
                            }
                            int token = pickAllowed(logits, random, tokenizer.vocabulary());
                            if (tokenizer.vocabulary().isEndOfGeneration(token)) {
                                assertThat(grammar.matches(out.toString(StandardCharsets.UTF_8))).isTrue();
                                finished++;
                                break;
                            }
                            constraint.accept(token);
                            out.writeBytes(tokenizer.bytes(token));
                        }
                    }
                    return finished;
                }));
            }
            int finished = 0;
            for (java.util.concurrent.Future<Integer> result : results) {
                finished += result.get();
            }
            assertThat(finished).isPositive();
        } finally {
            pool.shutdownNow();
        }
    }
}
