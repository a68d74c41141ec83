package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/// The word splits of every pre-tokenizer family, worked out by hand from the published patterns, including Unicode
/// whitespace and the cases where Java's regex flavour differs from the published patterns'.
class PreTokenizerTest {

    private static List<String> split(String name, String text) {
        return split(PreTokenizer.named(name), text);
    }

    private static List<String> split(PreTokenizer pre, String text) {
        TokenBuffer bounds = new TokenBuffer(8);
        pre.split(text, 0, text.length(), bounds);
        List<String> words = new ArrayList<>();
        for (int i = 0; i < bounds.size(); i += 2) {
            words.add(text.substring(bounds.get(i), bounds.get(i + 1)));
        }
        return words;
    }

    @Test
    void llama3SplitsContractionsLettersAndDigitTriples() {
        assertThat(split(PreTokenizer.llama3(), "I've 12345 apples, they'RE red!!\n\n"))
                .containsExactly("I", "'ve", " ", "123", "45", " apples", ",", " they", "'RE", " red", "!!\n\n");
    }

    @Test
    void llama3KeepsTheLastSpaceForTheNextWord() {
        assertThat(split(PreTokenizer.llama3(), "a   b\t \n  c  "))
                .containsExactly("a", "  ", " b", "\t \n", " ", " c", "  ");
    }

    @Test
    void llama3TreatsUnicodeWhitespaceAsSpace() {
        // U+3000 and U+00A0 are White_Space: Java's \s would miss them and glue them to the word
        assertThat(split(PreTokenizer.llama3(), "a\u3000\u3000b\u00a0c"))
                .containsExactly("a", "\u3000", "\u3000b", "\u00a0c");
    }

    @Test
    void contractionsAreAsciiCaseInsensitiveOnly() {
        // U+017F (long s) folds to "s" under Unicode case folding, but not in the published pattern
        assertThat(split(PreTokenizer.llama3(), "it'\u017F")).containsExactly("it", "'\u017F");
        assertThat(split(PreTokenizer.llama3(), "IT'S")).containsExactly("IT", "'S");
    }

    @Test
    void gpt2SplitsLikeTheOriginalPattern() {
        assertThat(split(PreTokenizer.gpt2(), "Hello world's 12345!!  x"))
                .containsExactly("Hello", " world", "'s", " 12345", "!!", " ", " x");
    }

    @Test
    void digitsGroupByThreesOrOneByOneOrNotAtAll() {
        assertThat(split("llama-bpe", "x1234567")).containsExactly("x", "123", "456", "7");
        assertThat(split("gpt-4o", "x1234567")).containsExactly("x", "123", "456", "7");
        assertThat(split("qwen2", "x1234567")).containsExactly("x", "1", "2", "3", "4", "5", "6", "7");
        assertThat(split("tekken", "x1234567")).containsExactly("x", "1", "2", "3", "4", "5", "6", "7");
        assertThat(split("starcoder", "x1234567")).containsExactly("x", "1", "2", "3", "4", "5", "6", "7");
        assertThat(split("gpt-2", "x1234567")).containsExactly("x", "1234567");
        // llama.cpp's fallback takes the space off a number, then cuts it into triples
        assertThat(split("default", "x 1234567")).containsExactly("x", " ", "123", "456", "7");
    }

    @Test
    void qwen2IsLlama3WithSingleDigits() {
        assertThat(split("qwen2", "I've 12 apples, THEY'RE red!!\n\n"))
                .containsExactly("I", "'ve", " ", "1", "2", " apples", ",", " THEY", "'RE", " red", "!!\n\n");
        assertThat(split("qwen2", "a\n\n  b   ")).containsExactly("a", "\n\n", " ", " b", "   ");
        // CJK ideographs are letters (Lo): one word, which takes the space in front of it
        assertThat(split("qwen2", "\u4f60\u597d \u4e16\u754c"))
                .containsExactly("\u4f60\u597d", " \u4e16\u754c");
        assertThat(split("deepseek-r1-qwen", "ab12")).containsExactly("ab", "1", "2");
    }

    @Test
    void o200kSplitsLettersByCaseAndKeepsContractions() {
        assertThat(split("gpt-4o", "helloWorld HTTPServer getX"))
                .containsExactly("hello", "World", " HTTPServer", " get", "X");
        assertThat(split("gpt-4o", "they're DON'T I'm"))
                .containsExactly("they're", " DON'T", " I'm");
        assertThat(split("gpt-4o", "$price: 12345.5")).containsExactly("$price", ":", " ", "123", "45", ".", "5");
    }

    @Test
    void o200kTakesPunctuationWithItsNewlinesAndSpacesLikeLlama3() {
        assertThat(split("gpt-4o", "ok?!\n\nNext  \t x\n"))
                .containsExactly("ok", "?!\n\n", "Next", "  \t", " x", "\n");
    }

    @Test
    void o200kKeepsCombiningMarksInTheirWord() {
        // namaste in Devanagari: na, ma, sa, virama (Mn), ta, vowel sign e (Mc). The published pattern counts marks as
        // letters, so the word stays whole, as the Hugging Face tokenizer has it; llama.cpp's rewrite would cut it at
        // each mark
        String namaste = "\u0928\u092e\u0938\u094d\u0924\u0947";
        assertThat(split("gpt-4o", "say " + namaste + "!")).containsExactly("say", " " + namaste, "!");
        // a mark counts as a letter (of either case), so a space in front of it still leads the word
        assertThat(split("gpt-4o", "a \u0301b")).containsExactly("a", " \u0301b");
    }

    @Test
    void tekkenSplitsByCaseWithoutContractionsOrDigitGroups() {
        assertThat(split("tekken", "I've getHTTPResponse 42"))
                .containsExactly("I", "'ve", " get", "HTTPResponse", " ", "4", "2");
    }

    @Test
    void starcoderIsolatesDigitsBeforeGpt2() {
        assertThat(split("starcoder", "x = 123; y's")).containsExactly("x", " =", " ", "1", "2", "3", ";", " y", "'s");
        assertThat(split("smollm", "abc 42")).containsExactly("abc", " ", "4", "2");
        assertThat(split("refact", "a1")).containsExactly("a", "1");
    }

    @Test
    void llamaCppsDefaultCutsPunctuationFirst() {
        assertThat(split("default", "Hello, world! 12345 a+b"))
                .containsExactly("Hello", ",", " world", "!", " ", "123", "45", " a", "+", "b");
    }

    @Test
    void gemmaSplitsOnlyAtNewlines() {
        PreTokenizer gemma = PreTokenizer.named("granite-embed-multi-311m");

        assertThat(gemma.byteLevel()).isFalse();
        assertThat(split(gemma, "a b  c\n\nd\n")).containsExactly("a b  c", "\n\n", "d", "\n");
    }

    @Test
    void flagsFollowLlamaCpp() {
        assertThat(PreTokenizer.named("llama3").ignoreMerges()).isTrue();
        assertThat(PreTokenizer.named("llama3").addsBos()).isTrue();
        assertThat(PreTokenizer.named("tekken").ignoreMerges()).isTrue();
        assertThat(PreTokenizer.named("tekken").addsBos()).isTrue();
        for (String name : List.of("qwen2", "gpt-4o", "starcoder", "refact", "smollm", "gpt-2", "default", "dbrx")) {
            assertThat(PreTokenizer.named(name).ignoreMerges()).as(name).isFalse();
            assertThat(PreTokenizer.named(name).addsBos()).as(name).isFalse();
            assertThat(PreTokenizer.named(name).byteLevel()).as(name).isTrue();
        }
    }

    @Test
    void wordsCoverTheWholeRange() {
        String text = "\uD83E\uDD99 \u0301x\u200d y\r\n 1,5\u00a0\u0928\u094d$ ";
        for (String name : NAMES) {
            assertThat(String.join("", split(name, text))).as(name).isEqualTo(text);
        }
    }

    @Test
    void stopsLookaheadAtTheRangeEnd() {
        TokenBuffer bounds = new TokenBuffer(8);
        PreTokenizer.llama3().split("a  <|eot_id|>", 0, 3, bounds);

        assertThat(bounds.toArray()).containsExactly(0, 1, 1, 3); // "  " stays one word: nothing follows it
    }

    /// One name of each distinct split.
    private static final List<String> NAMES = List.of("llama-bpe", "qwen2", "gpt-4o", "tekken", "starcoder", "gpt-2",
            "default", "gemma4");

    @Test
    void longRunsSplitInLinearTime() {
        // the worst cases of each pattern: runs that one alternative scans and then gives back (spaces before a
        // letter, upper case before nothing lower, ideographs and marks that both case classes accept)
        String[] inputs = {" ".repeat(200_000) + "x", " \n".repeat(100_000), "'".repeat(200_000),
                ("\u3000".repeat(100) + "x").repeat(2_000), "a1!".repeat(70_000), "A".repeat(200_000),
                "\u4e00".repeat(200_000), "\u0301".repeat(200_000) + "a", "7".repeat(200_000),
                ("A".repeat(1000) + "'").repeat(200), "\n".repeat(200_000)};
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            for (String text : inputs) {
                for (String name : NAMES) {
                    assertThat(String.join("", split(name, text))).isEqualTo(text);
                }
            }
        });
    }
}
