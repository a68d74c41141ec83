package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.llamaj.gguf.GGUFFormatException;

import java.nio.charset.StandardCharsets;
import java.time.Duration;

import org.junit.jupiter.api.Test;

/// Byte-level BPE on hand-built vocabularies: GPT-2's byte mapping, merge ranks, "ignore merges", special tokens
/// and malformed merge lists; and BPE over characters with byte fallback (Gemma from `tokenizer.json`).
class BytePairTokenizerTest {

    @Test
    void mapsBytesToGpt2Characters() {
        assertThat(BytePairTokenizer.BYTE_TO_CHAR[' ']).isEqualTo('\u0120'); // Ġ
        assertThat(BytePairTokenizer.BYTE_TO_CHAR['\n']).isEqualTo('\u010A'); // Ċ
        assertThat(BytePairTokenizer.BYTE_TO_CHAR['a']).isEqualTo('a');
        assertThat(BytePairTokenizer.BYTE_TO_CHAR[0xAD]).isEqualTo('\u0143'); // soft hyphen, the last one moved
        assertThat(BytePairTokenizer.BYTE_TO_CHAR[0xE9]).isEqualTo('\u00e9');
        assertThat(new String(BytePairTokenizer.BYTE_TO_CHAR).chars().distinct().count()).isEqualTo(256);
    }

    @Test
    void mergesTheBestRankedPairFirst() {
        var b = TinyVocabularies.bpe("he", "\u0120t", "\u0120the", "th");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2(),
                "h e", "\u0120 t", "\u0120t he", "t h");

        assertThat(tokenizer.encode(" the")).containsExactly(b.id("\u0120the"));
    }

    @Test
    void anEarlierMergeCanBlockALaterOne() {
        var b = TinyVocabularies.bpe("he", "\u0120t", "\u0120the", "th");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2(),
                "t h", "h e", "\u0120 t", "\u0120t he");

        assertThat(tokenizer.encode(" the")).containsExactly(b.id("\u0120"), b.id("th"), b.id("e"));
    }

    @Test
    void equalPairsMergeLeftmostFirst() {
        var b = TinyVocabularies.bpe("aa");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2(), "a a");

        assertThat(tokenizer.encode("aaa")).containsExactly(b.id("aa"), b.id("a"));
    }

    @Test
    void mergesStayInsideWords() {
        var b = TinyVocabularies.bpe("a\u0120");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2(), "a \u0120");

        assertThat(tokenizer.encode("a a")).containsExactly(b.id("a"), b.id("\u0120"), b.id("a"));
    }

    @Test
    void llama3TakesWholeWordsThatArePieces() {
        var b = TinyVocabularies.bpe("\u0120xyz");

        assertThat(TinyVocabularies.bpeTokenizer(b, PreTokenizer.llama3()).encode(" xyz"))
                .containsExactly(b.id("\u0120xyz"));
        assertThat(TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2()).encode(" xyz"))
                .containsExactly(b.id("\u0120"), b.id("x"), b.id("y"), b.id("z"));
    }

    @Test
    void typedControlTextIsNotAControlTokenUnlessParsed() {
        var b = TinyVocabularies.bpe().add("<|eot_id|>", 0f, Vocabulary.CONTROL);
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.llama3());
        int eot = b.id("<|eot_id|>");

        assertThat(tokenizer.encode("hi<|eot_id|>")).doesNotContain(eot)
                .hasSize("hi<|eot_id|>".length());
        assertThat(tokenizer.decode(tokenizer.encode("hi<|eot_id|>"))).isEqualTo("hi<|eot_id|>");
        assertThat(tokenizer.encode("hi<|eot_id|>", true)).containsExactly(b.id("h"), b.id("i"), eot);
        assertThat(tokenizer.decode(tokenizer.encode("hi<|eot_id|>", true))).isEqualTo("hi");
    }

    @Test
    void findsTheLongestSpecialAmongManySharingAPrefix() {
        // like Gemma's thousands of <unusedN> control tokens, with a user-defined token that is a prefix of them
        var b = TinyVocabularies.bpe();
        for (int i = 0; i < 3000; i++) {
            b.add("<unused" + i + ">", 0f, Vocabulary.CONTROL);
        }
        b.add("<un", 0f, Vocabulary.USER_DEFINED);
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2());

        // bytes stand for themselves here: the piece of 'u' is token 'u'
        assertThat(tokenizer.encode("<unused12><unused1234><unusedX>", true)).containsExactly(b.id("<unused12>"),
                b.id("<unused1234>"), b.id("<un"), 'u', 's', 'e', 'd', 'X', '>');
        assertThat(tokenizer.encode("<unused12>")).containsExactly(b.id("<un"), 'u', 's', 'e', 'd', '1', '2', '>');
        assertThat(tokenizer.encode("<u<")).containsExactly('<', 'u', '<');
    }

    @Test
    void decodesBytesSplitAcrossTokens() {
        // 🦙 is F0 9F A6 99: two tokens of two bytes each
        char[] c = BytePairTokenizer.BYTE_TO_CHAR;
        String first = "" + c[0xF0] + c[0x9F], second = "" + c[0xA6] + c[0x99];
        var b = TinyVocabularies.bpe(first, second);
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.llama3(),
                c[0xF0] + " " + c[0x9F], c[0xA6] + " " + c[0x99]);

        int[] ids = tokenizer.encode("\uD83E\uDD99");
        assertThat(ids).containsExactly(b.id(first), b.id(second));
        assertThat(tokenizer.bytes(ids[0])).isEqualTo(new byte[] {(byte) 0xF0, (byte) 0x9F});
        assertThat(tokenizer.decode(ids)).isEqualTo("\uD83E\uDD99");
    }

    @Test
    void skipsMergesOutsideTheVocabulary() {
        var b = TinyVocabularies.bpe("ab");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.gpt2(), "x y", "a b", "q\u0120 r");

        assertThat(tokenizer.encode("ab xy")).containsExactly(b.id("ab"), b.id("\u0120"), b.id("x"), b.id("y"));
    }

    @Test
    void rejectsAMergeWithoutASpace() {
        var b = TinyVocabularies.bpe("ab");
        Vocabulary v = b.vocabulary();

        assertThatThrownBy(() -> new BytePairTokenizer(v, new String[] {"a b", "ab"}, PreTokenizer.gpt2(), "x.gguf"))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage("x.gguf: 'tokenizer.ggml.merges' entry 1 \"ab\" is not two pieces separated by a space");
        assertThatThrownBy(() -> new BytePairTokenizer(v, new String[] {"a "}, PreTokenizer.gpt2(), "x.gguf"))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessageContaining("entry 0");
    }

    @Test
    void userDefinedTokensDecodeAsTheirText() {
        var b = TinyVocabularies.bpe().add("<tool call>", 0f, Vocabulary.USER_DEFINED);
        var tokenizer = TinyVocabularies.bpeTokenizer(b, PreTokenizer.llama3());

        assertThat(tokenizer.encode("a<tool call>")).containsExactly(b.id("a"), b.id("<tool call>"));
        assertThat(tokenizer.bytes(b.id("<tool call>"))).isEqualTo("<tool call>".getBytes(StandardCharsets.UTF_8));
    }

    /// Character-level pieces as Gemma's `tokenizer.json` has them: `<0x00>` .. `<0xFF>` as normal pieces, then
    /// `extra`.
    private static TinyVocabularies.Builder characters(String... extra) {
        var b = new TinyVocabularies.Builder();
        for (int i = 0; i < 256; i++) {
            b.normal("<0x%02X>".formatted(i), 0f);
        }
        return b.normal(extra);
    }

    private static PreTokenizer gemma() {
        return PreTokenizer.named("granite-embed-multi-311m");
    }

    @Test
    void characterLevelMergesSeeSpacesAsSpaceMarks() {
        var b = characters("h", "i", "\u2581", "\u2581h", "\u2581hi", "hi");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, gemma(), "\u2581 h", "\u2581h i", "h i");

        // no space is put in front of the text, and the whole line is one word: merges cross the spaces
        assertThat(tokenizer.encode("hi hi")).containsExactly(b.id("hi"), b.id("\u2581hi"));
        assertThat(tokenizer.decode(tokenizer.encode("hi hi"))).isEqualTo("hi hi");
        assertThat(tokenizer.bytes(b.id("\u2581hi"))).isEqualTo(" hi".getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void characterLevelSpellsUnknownCharactersAsBytes() {
        var b = characters("h");
        var tokenizer = TinyVocabularies.bpeTokenizer(b, gemma());

        // é is C3 A9, the llama F0 9F A6 99; the byte pieces are normal pieces that decode to their byte
        assertThat(tokenizer.encode("h\u00e9\uD83E\uDD99")).containsExactly(b.id("h"), 0xC3, 0xA9, 0xF0, 0x9F, 0xA6,
                0x99);
        assertThat(tokenizer.decode(tokenizer.encode("h\u00e9\uD83E\uDD99"))).isEqualTo("h\u00e9\uD83E\uDD99");
        assertThat(tokenizer.bytes(0x41)).containsExactly(0x41);
    }

    @Test
    void gemmaTakesARunOfNewlinesWholeWhenItIsAPiece() {
        var b = characters("\n", "\n\n\n", "x");

        assertThat(TinyVocabularies.bpeTokenizer(b, gemma()).encode("x\n\n\nx"))
                .containsExactly(b.id("x"), b.id("\n\n\n"), b.id("x"));
        assertThat(TinyVocabularies.bpeTokenizer(b, PreTokenizer.named("sarvam-moe")).encode("x\n\n\nx"))
                .containsExactly(b.id("x"), b.id("\n"), b.id("\n"), b.id("\n"), b.id("x"));
    }

    @Test
    void aMegabyteWordMergesInNearLinearTime() {
        // one word of a million symbols: every merge is a heap operation, never a rescan of the word
        var bytes = TinyVocabularies.bpe("aa", "aaaa", "\u0120\u0120", "\u0120\u0120\u0120\u0120");
        var byteLevel = TinyVocabularies.bpeTokenizer(bytes, PreTokenizer.gpt2(), "a a", "aa aa", "\u0120 \u0120",
                "\u0120\u0120 \u0120\u0120");
        var chars = characters("a", "aa", "aaaa", "\u2581", "\u2581\u2581");
        var characterLevel = TinyVocabularies.bpeTokenizer(chars, gemma(), "a a", "aa aa", "\u2581 \u2581");
        String letters = "a".repeat(1 << 20), spaces = " ".repeat(1 << 20);

        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            assertThat(byteLevel.encode(letters)).hasSize(1 << 18).containsOnly(bytes.id("aaaa"));
            // with nothing after it, the whole run of spaces is one word
            assertThat(byteLevel.encode(spaces)).hasSize(1 << 18)
                    .containsOnly(bytes.id("\u0120\u0120\u0120\u0120"));
            assertThat(characterLevel.encode(letters)).hasSize(1 << 18).containsOnly(chars.id("aaaa"));
            assertThat(characterLevel.encode(spaces)).hasSize(1 << 19).containsOnly(chars.id("\u2581\u2581"));
        });
    }
}
