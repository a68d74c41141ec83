package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/// `decode(encode(s)) == s` for every reference vocabulary: every reference input, and texts chosen for unicode,
/// whitespace runs and byte fallback.
class RoundTripTest {

    static final List<String> EXTRA = List.of(
            "",
            " ",
            "\n",
            "   leading and trailing   ",
            "\t\ttabs\n\nnewlines\r\nand\rreturns",
            "a\u00a0no-break\u2003em\u3000ideographic\u2028line\u0085next",
            "Gr\u00fc\u00dfe, \u00e7a va? \u00c5ngstr\u00f6m",
            "e\u0301 combining acute, \ufb01 ligature",
            "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
            "\u0634\u0644\u0648\u0645 \u05e9\u05dc\u05d5\u05dd",
            "\u179f\u17d2\u179c\u17b6\u1782\u1798\u1793\u17cd",
            "\uD83E\uDD99\uD83D\uDE80 \uD83D\uDC68\u200D\uD83D\uDC69\u200D\uD83D\uDC67 \uD83D\uDC4D\uD83C\uDFFD",
            "\uD834\uDD1E music \uD800\uDF48 gothic",
            "\u0000 nul \u0001 \u007f del \u001b[0m",
            "<s> and </s> and <|eot_id|> typed as text",
            "it's 'S 'LL 'd \u017F ok",
            "1234567890 \u00bd \u0663\u0664 \u2167",
            "x".repeat(300) + " " + "\uD83D\uDE00".repeat(50),
            "    indented code();\n\t\treturn x >= 0 ? y : z;\n");

    static List<Arguments> texts() {
        List<Arguments> all = new ArrayList<>();
        for (ReferenceData.Case c : ReferenceData.allCases()) {
            all.add(Arguments.of(c.vocabulary(), c.text(), c.toString()));
        }
        for (String vocabulary : ReferenceData.VOCABULARIES) {
            for (String text : EXTRA) {
                all.add(Arguments.of(vocabulary, text, vocabulary + " extra \""
                        + text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "\""));
            }
        }
        return all;
    }

    @ParameterizedTest(name = "{2}")
    @MethodSource("texts")
    void decodeInvertsEncode(String vocabulary, String text, String name) {
        Tokenizer tokenizer = ReferenceData.tokenizer(vocabulary);

        assertThat(tokenizer.decode(tokenizer.encode(text))).isEqualTo(text);
    }

    @ParameterizedTest(name = "{2}")
    @MethodSource("texts")
    void streamingGivesTheSameText(String vocabulary, String text, String name) {
        Tokenizer tokenizer = ReferenceData.tokenizer(vocabulary);
        Detokenizer d = tokenizer.detokenizer();
        StringBuilder streamed = new StringBuilder();
        for (int id : tokenizer.encode(text)) {
            streamed.append(d.append(id));
        }
        streamed.append(d.finish());

        String expected = tokenizer instanceof SentencePieceTokenizer && !text.isEmpty() ? " " + text : text;
        assertThat(streamed.toString()).isEqualTo(expected);
    }
}
