package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/// SentencePiece merging on hand-built vocabularies: score order, ties, byte fallback, the space prefix, and
/// special tokens.
class SentencePieceTokenizerTest {

    @Test
    void mergesTheHighestScoringPairFirst() {
        var b = TinyVocabularies.spm(true).normal("a", "b", "c").normal("ab", -2f).normal("bc", -1f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("abc")).containsExactly(b.id("a"), b.id("bc"));
    }

    @Test
    void scoreNotListOrderDecides() {
        var b = TinyVocabularies.spm(true).normal("a", "b", "c").normal("ab", -1f).normal("bc", -2f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("abc")).containsExactly(b.id("ab"), b.id("c"));
    }

    @Test
    void equalScoresMergeLeftmostFirst() {
        var b = TinyVocabularies.spm(true).normal("a").normal("aa", -1f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("aaa")).containsExactly(b.id("aa"), b.id("a"));
    }

    @Test
    void mergesRepeatUntilNoPairIsAPiece() {
        var b = TinyVocabularies.spm(true).normal("\u2581", "h", "e", "l", "o")
                .normal("ll", -1f).normal("he", -2f).normal("hell", -3f).normal("\u2581hell", -4f)
                .normal("\u2581hello", -5f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, true);

        assertThat(tokenizer.encode("hello")).containsExactly(b.id("\u2581hello"));
        assertThat(tokenizer.encode("hell")).containsExactly(b.id("\u2581hell"));
    }

    @Test
    void spellsCharactersOutsideTheVocabularyAsBytes() {
        var b = TinyVocabularies.spm(true).normal("a");
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        // é is C3 A9 in UTF-8
        assertThat(tokenizer.encode("a\u00e9")).containsExactly(b.id("a"), b.id("<0xC3>"), b.id("<0xA9>"));
        assertThat(tokenizer.decode(tokenizer.encode("a\u00e9"))).isEqualTo("a\u00e9");
    }

    @Test
    void usesTheUnknownTokenWithoutByteFallback() {
        var b = TinyVocabularies.spm(false).normal("a");
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("a\u00e9a")).containsExactly(b.id("a"), b.id("<unk>"), b.id("a"));
    }

    @Test
    void prefixesASpaceAndTurnsSpacesIntoMarks() {
        var b = TinyVocabularies.spm(true).normal("\u2581", "a", "b").normal("\u2581a", -1f).normal("\u2581b", -1f);

        assertThat(TinyVocabularies.spmTokenizer(b, true).encode("a b"))
                .containsExactly(b.id("\u2581a"), b.id("\u2581b"));
        assertThat(TinyVocabularies.spmTokenizer(b, false).encode("a b"))
                .containsExactly(b.id("a"), b.id("\u2581b"));
        assertThat(TinyVocabularies.spmTokenizer(b, true).encode("")).isEmpty();
    }

    @Test
    void decodeRemovesOnlyThePrefixedSpace() {
        var b = TinyVocabularies.spm(true).normal("\u2581", "a").normal("\u2581a", -1f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, true);

        assertThat(tokenizer.encode(" a")).containsExactly(b.id("\u2581"), b.id("\u2581a"));
        assertThat(tokenizer.decode(tokenizer.encode(" a"))).isEqualTo(" a");
        assertThat(tokenizer.decode(new int[] {b.id("<s>"), b.id("\u2581a")})).isEqualTo("a");
        assertThat(TinyVocabularies.spmTokenizer(b, false).decode(new int[] {b.id("\u2581a")})).isEqualTo(" a");
    }

    @Test
    void typedControlTextIsNotAControlTokenUnlessParsed() {
        // "<s" is a normal piece, so merging could reach the control piece "<s>" if control pieces took part
        var b = TinyVocabularies.spm(true).normal("<", "s", ">", "x").normal("<s", -1f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("<s>x")).containsExactly(b.id("<s"), b.id(">"), b.id("x"));
        assertThat(tokenizer.encode("<s>x", true)).containsExactly(b.id("<s>"), b.id("x"));
        assertThat(tokenizer.encode("x</s>", true)).containsExactly(b.id("x"), b.id("</s>"));
    }

    @Test
    void prefixesASpaceAfterEachSpecialToken() {
        var b = TinyVocabularies.spm(true).normal("\u2581", "a").normal("\u2581a", -1f);
        var tokenizer = TinyVocabularies.spmTokenizer(b, true);

        assertThat(tokenizer.encode("a<s>a", true)).containsExactly(b.id("\u2581a"), b.id("<s>"), b.id("\u2581a"));
    }

    @Test
    void alwaysMatchesUserDefinedTokens() {
        var b = TinyVocabularies.spm(true).normal("a", "<", ">", "t").add("<t>", 0f, Vocabulary.USER_DEFINED);
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("a<t>a")).containsExactly(b.id("a"), b.id("<t>"), b.id("a"));
        assertThat(tokenizer.decode(tokenizer.encode("a<t>a"))).isEqualTo("a<t>a");
    }

    @Test
    void matchesTheLongestSpecialToken() {
        var b = TinyVocabularies.spm(true).normal("x").add("<|a", 0f, Vocabulary.CONTROL)
                .add("<|a|>", 0f, Vocabulary.CONTROL);
        var tokenizer = TinyVocabularies.spmTokenizer(b, false);

        assertThat(tokenizer.encode("<|a|>x<|a", true)).containsExactly(b.id("<|a|>"), b.id("x"), b.id("<|a"));
    }

    @Test
    void bytesOfEachTokenType() {
        var b = TinyVocabularies.spm(true).normal("\u2581a\u2581b").add("<t>", 0f, Vocabulary.USER_DEFINED);
        var tokenizer = TinyVocabularies.spmTokenizer(b, true);

        assertThat(tokenizer.bytes(b.id("\u2581a\u2581b"))).isEqualTo(" a b".getBytes());
        assertThat(tokenizer.bytes(b.id("<0x0A>"))).containsExactly(0x0A);
        assertThat(tokenizer.bytes(b.id("<0xFF>"))).containsExactly(0xFF);
        assertThat(tokenizer.bytes(b.id("<s>"))).isEmpty();
        assertThat(tokenizer.bytes(b.id("<t>"))).isEqualTo("<t>".getBytes());
        assertThat(tokenizer.vocabulary().isControl(b.id("<s>"))).isTrue();
    }
}
