package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/// The word splits of the Llama 3 and GPT-2 patterns, including Unicode whitespace and the cases where Java's
/// regex flavour differs from the published patterns'.
class PreTokenizerTest {

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
    void wordsCoverTheWholeRange() {
        String text = "\uD83E\uDD99 \u0301x\u200d y\r\n";
        assertThat(String.join("", split(PreTokenizer.llama3(), text))).isEqualTo(text);
        assertThat(String.join("", split(PreTokenizer.gpt2(), text))).isEqualTo(text);
    }

    @Test
    void stopsLookaheadAtTheRangeEnd() {
        TokenBuffer bounds = new TokenBuffer(8);
        PreTokenizer.llama3().split("a  <|eot_id|>", 0, 3, bounds);

        assertThat(bounds.toArray()).containsExactly(0, 1, 1, 3); // "  " stays one word: nothing follows it
    }

    @Test
    void longRunsSplitInLinearTime() {
        String[] inputs = {" ".repeat(200_000) + "x", " \n".repeat(100_000), "'".repeat(200_000),
                ("\u3000".repeat(100) + "x").repeat(2_000), "a1!".repeat(70_000)};
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            for (String text : inputs) {
                assertThat(String.join("", split(PreTokenizer.llama3(), text))).isEqualTo(text);
                assertThat(String.join("", split(PreTokenizer.gpt2(), text))).isEqualTo(text);
            }
        });
    }
}
