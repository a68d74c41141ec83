package dev.llamaj.engine.grammar;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/// The GBNF parser and the automaton's string matching: syntax, escapes, repetitions, Unicode, recursion, and
/// the errors. Regular grammars are cross-checked against `java.util.regex` on random grammars and strings.
class GbnfTest {

    @Test
    void literalsAlternativesAndGroups() {
        Grammar g = Grammar.parse("root ::= \"ab\" (\"c\" | \"de\")  # a comment\n");
        assertThat(g.matches("abc")).isTrue();
        assertThat(g.matches("abde")).isTrue();
        assertThat(g.matches("ab")).isFalse();
        assertThat(g.matches("abcde")).isFalse();
        assertThat(g.matches("")).isFalse();
    }

    @Test
    void rulesSpanLinesInsideGroupsAndAfterBars() {
        Grammar g = Grammar.parse("""
                root ::=
                  item (
                    "," item
                  )*
                item ::= "x" |
                         "y"
                """);
        assertThat(g.matches("x,y,x")).isTrue();
        assertThat(g.matches("x,")).isFalse();
    }

    @Test
    void repetitions() {
        Grammar g = Grammar.parse("root ::= \"a\"{2} \"b\"{1,3} \"c\"{2,} \"d\"{,2} \"e\"? \"f\"+ \"g\"*");
        assertThat(g.matches("aabccf")).isTrue();
        assertThat(g.matches("aabbbcccccddefggg")).isTrue();
        assertThat(g.matches("abccf")).isFalse();
        assertThat(g.matches("aabbbbccf")).isFalse();
        assertThat(g.matches("aabcf")).isFalse();
        assertThat(g.matches("aabccdddf")).isFalse();
        assertThat(g.matches("aabcc")).isFalse();
    }

    @Test
    void repetitionOfALiteralRepeatsTheWholeLiteral() {
        Grammar g = Grammar.parse("root ::= \"ab\"+");
        assertThat(g.matches("ababab")).isTrue();
        assertThat(g.matches("abb")).isFalse();
    }

    @Test
    void escapesAndUnicode() {
        Grammar g = Grammar.parse("root ::= \"\\n\\t\\\"\\\\\\x41\\u00e9\\U0001F600\" \"é😀\" [\\x00-\\x1F]");
        assertThat(g.matches("\n\t\"\\Aé😀é😀\u0001")).isTrue();
        assertThat(g.matches("\n\t\"\\Aé😀é😀 ")).isFalse();
    }

    @Test
    void classesRangesNegationAndAnyCharacter() {
        Grammar g = Grammar.parse("root ::= [a-cx-] [^0-9\"] . [α-ω]");
        assertThat(g.matches("b!😀λ")).isTrue();
        assertThat(g.matches("-z\u0000ω")).isTrue();
        assertThat(g.matches("d!xλ")).isFalse();
        assertThat(g.matches("a5xλ")).isFalse();
        assertThat(g.matches("a\"xλ")).isFalse();
        assertThat(g.matches("a!xz")).isFalse();
    }

    @Test
    void emptyAlternatives() {
        Grammar g = Grammar.parse("root ::= \"a\" opt \"b\"\nopt ::= | \"x\" | ()");
        assertThat(g.matches("ab")).isTrue();
        assertThat(g.matches("axb")).isTrue();
        assertThat(g.matches("axxb")).isFalse();
        assertThat(Grammar.parse("root ::= ").matches("")).isTrue();
        assertThat(Grammar.parse("root ::= ").matches("a")).isFalse();
    }

    @Test
    void recursion() {
        Grammar g = Grammar.parse("root ::= \"(\" root \")\" root | ");
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 2000; i++) {
            StringBuilder s = new StringBuilder();
            for (int n = random.nextInt(12); n > 0; n--) {
                s.append(random.nextBoolean() ? '(' : ')');
            }
            assertThat(g.matches(s.toString())).as(s.toString()).isEqualTo(balanced(s));
        }
    }

    private static boolean balanced(CharSequence s) {
        int depth = 0;
        for (int i = 0; i < s.length(); i++) {
            depth += s.charAt(i) == '(' ? 1 : -1;
            if (depth < 0) {
                return false;
            }
        }
        return depth == 0;
    }

    @Test
    void repetitionOfSomethingThatMayBeEmptyIsNotLeftRecursion() {
        Grammar g = Grammar.parse("root ::= (\"a\"?)* \"b\" (x)*\nx ::= \"c\" | ");
        assertThat(g.matches("aab")).isTrue();
        assertThat(g.matches("bccc")).isTrue();
        assertThat(g.matches("ba")).isFalse();
    }

    @Test
    void aRuleThatCanOnlyEnd() {
        Grammar g = Grammar.parse("root ::= \"done\"");
        Automaton a = new Automaton(g);
        int state = a.initial();
        for (char c : "done".toCharArray()) {
            state = a.stepCodePoint(state, c);
        }
        assertThat(a.isFinal(state)).isTrue();
    }

    @ParameterizedTest
    @CsvSource(delimiterString = "=>", quoteCharacter = '`', textBlock = """
            root ::= "a                         => 1:10: unterminated literal
            root ::= [a-                        => 1:10: unterminated character class
            root ::= [z-a]                      => 1:12: character range is backwards
            root ::= ("a"                       => 1:14: expected ')' to close the group opened at 1:10
            root ::= "a"{3,1}                   => 1:13: repetition {3,1} has its maximum below its minimum
            root ::= "a"{x}                     => 1:14: expected a number in the repetition
            root ::= "\\q"                      => 1:11: unknown escape '\\q'
            root ::= "\\xZZ"                    => 1:11: escape needs 2 hexadecimal digits
            root ::= "\\U00110000"              => 1:11: escape names U+110000, beyond the last Unicode code point
            root = "a"                          => 1:6: expected '::=' after the rule name 'root'
            root ::= "a" )                      => 1:14: expected the end of the line after rule 'root', found ')'
            root ::= x                          => 1:10: undefined rule 'x'
            start ::= "a"                       => 1:1: the grammar has no 'root' rule
            ::= "a"                             => 1:1: expected a rule name
            root ::= a\\na ::= "x"\\na ::= "y"     => 3:1: rule 'a' is defined twice (first at 2:1)
            root ::= root "x" | "y"             => 1:1: left recursion: root -> root
            root ::= a\\na ::= b "x"\\nb ::= "z" | a "y" => 2:1: left recursion: a -> b -> a
            root ::= a\\na ::= ("p"? a)+ "q"     => 2:1: left recursion: a -> a
            """)
    void errorsSayWhereAndWhat(String gbnf, String message) {
        assertThatThrownBy(() -> Grammar.parse(gbnf.replace("\\n", "\n")))
                .isInstanceOf(GrammarException.class)
                .hasMessageStartingWith(message)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @Test
    void deepNestingIsRefusedNotAStackOverflow() {
        assertThatThrownBy(() -> Grammar.parse("root ::= " + "(".repeat(100_000) + "\"a\"" + ")".repeat(100_000)))
                .isInstanceOf(GrammarException.class).hasMessageContaining("groups nested more than 200 deep");
        assertThat(Grammar.parse("root ::= " + "(".repeat(150) + "\"a\"" + ")".repeat(150)).matches("a")).isTrue();
        assertThatThrownBy(() -> Grammar.fromJsonSchema(java.util.Map.of("type", "string",
                "pattern", "(".repeat(100_000) + "a" + ")".repeat(100_000))))
                .isInstanceOf(GrammarException.class).hasMessageContaining("groups nested more than 200 deep");
    }

    /// Random regular grammars, written both as GBNF and as a Java regex, must accept the same strings.
    @Test
    void randomRegularGrammarsAgreeWithJavaRegex() {
        SplittableRandom random = new SplittableRandom(42);
        int checked = 0;
        for (int g = 0; g < 300; g++) {
            StringBuilder gbnf = new StringBuilder(), regex = new StringBuilder();
            randomExpression(random, 3, gbnf, regex);
            Grammar grammar = Grammar.parse("root ::= " + gbnf);
            Pattern pattern = Pattern.compile(regex.toString());
            for (int s = 0; s < 60; s++) {
                String text = randomText(random, pattern, grammar);
                assertThat(grammar.matches(text)).as("%s on '%s' (regex %s)", gbnf, text, regex)
                        .isEqualTo(pattern.matcher(text).matches());
                checked++;
            }
        }
        assertThat(checked).isEqualTo(18_000);
    }

    private static final String[] ATOMS_GBNF = {"\"a\"", "\"ab\"", "[a-c]", "[^a]", ".", "\"é\"", "[b-dé]", "\"\""};
    private static final String[] ATOMS_REGEX = {"a", "ab", "[a-c]", "[^a]", ".", "é", "[b-dé]", ""};

    private static void randomExpression(SplittableRandom random, int depth, StringBuilder gbnf,
                                         StringBuilder regex) {
        int choice = depth == 0 ? 0 : random.nextInt(4);
        switch (choice) {
            case 0 -> {
                int atom = random.nextInt(ATOMS_GBNF.length);
                gbnf.append(ATOMS_GBNF[atom]);
                regex.append("(?:").append(ATOMS_REGEX[atom]).append(")");
            }
            case 1 -> { // sequence
                gbnf.append("(");
                regex.append("(?:");
                for (int n = 1 + random.nextInt(3), i = 0; i < n; i++) {
                    gbnf.append(i > 0 ? " " : "");
                    randomExpression(random, depth - 1, gbnf, regex);
                }
                gbnf.append(")");
                regex.append(")");
            }
            case 2 -> { // alternation, possibly with an empty alternative
                gbnf.append("(");
                regex.append("(?:");
                for (int n = 2 + random.nextInt(2), i = 0; i < n; i++) {
                    gbnf.append(i > 0 ? " | " : "");
                    regex.append(i > 0 ? "|" : "");
                    if (random.nextInt(5) > 0) {
                        randomExpression(random, depth - 1, gbnf, regex);
                    }
                }
                gbnf.append(")");
                regex.append(")");
            }
            default -> { // repetition
                gbnf.append("(");
                regex.append("(?:");
                randomExpression(random, depth - 1, gbnf, regex);
                gbnf.append(")");
                regex.append(")");
                String[] ops = {"*", "+", "?", "{2}", "{1,3}", "{2,}", "{,2}"};
                String op = ops[random.nextInt(ops.length)];
                gbnf.append(op);
                regex.append(op.equals("{,2}") ? "{0,2}" : op);
            }
        }
    }

    /// Mostly strings built to be near the language: random walks of the automaton with some mutations.
    private static String randomText(SplittableRandom random, Pattern pattern, Grammar grammar) {
        int[] alphabet = {'a', 'b', 'c', 'd', 'é', 'x', 0x1F600};
        StringBuilder s = new StringBuilder();
        Automaton automaton = new Automaton(grammar);
        int state = automaton.initial();
        for (int n = random.nextInt(8); n > 0; n--) {
            List<Integer> live = new ArrayList<>();
            for (int c : alphabet) {
                if (state != Automaton.DEAD && automaton.stepCodePoint(state, c) != Automaton.DEAD) {
                    live.add(c);
                }
            }
            int c = live.isEmpty() || random.nextInt(6) == 0 ? alphabet[random.nextInt(alphabet.length)]
                    : live.get(random.nextInt(live.size()));
            s.appendCodePoint(c);
            state = state == Automaton.DEAD ? state : automaton.stepCodePoint(state, c);
        }
        return s.toString();
    }

    /// The README's GBNF example compiles and means what its comments say.
    @Test
    void readmeExample() throws Exception {
        java.nio.file.Path readme = java.nio.file.Path.of("../README.md");
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.exists(readme), "skipping: no README");
        String text = java.nio.file.Files.readString(readme);
        int at = text.indexOf("**GBNF** is llama.cpp's grammar format");
        assertThat(at).isPositive();
        int start = text.indexOf("```\n", at) + 4;
        String gbnf = text.substring(start, text.indexOf("```", start));
        Grammar g = Grammar.parse(gbnf);
        assertThat(g.matches("hello Ada!")).isTrue();
        assertThat(g.matches(" Bob")).isTrue();
        assertThat(g.matches("hi bob")).isFalse();
    }
}
