package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

/// Streaming decode: a character split across tokens appears once, whole, and never as U+FFFD; control tokens
/// print nothing.
class DetokenizerTest {

    private static final TinyVocabularies.Builder SPM = TinyVocabularies.spm(true).normal("\u2581", "a")
            .normal("\u2581a", -1f);

    private static int bytes(String hex) {
        return SPM.id("<0x" + hex + ">");
    }

    @Test
    void holdsBackACharacterSplitAcrossByteTokens() {
        Detokenizer d = TinyVocabularies.spmTokenizer(SPM, true).detokenizer();

        // 🦙 = F0 9F A6 99
        assertThat(d.append(SPM.id("\u2581a"))).isEqualTo(" a");
        assertThat(d.append(bytes("F0"))).isEmpty();
        assertThat(d.append(bytes("9F"))).isEmpty();
        assertThat(d.append(bytes("A6"))).isEmpty();
        assertThat(d.append(bytes("99"))).isEqualTo("\uD83E\uDD99");
        assertThat(d.append(SPM.id("a"))).isEqualTo("a");
        assertThat(d.finish()).isEmpty();
    }

    @Test
    void controlTokensPrintNothing() {
        Detokenizer d = TinyVocabularies.spmTokenizer(SPM, true).detokenizer();

        assertThat(d.append(SPM.id("<s>"))).isEmpty();
        assertThat(d.append(bytes("C3"))).isEmpty();
        assertThat(d.append(SPM.id("</s>"))).isEmpty();
        assertThat(d.append(bytes("A9"))).isEqualTo("\u00e9");
    }

    @Test
    void keepsTheLeadingSpaceOfAContinuation() {
        Detokenizer d = TinyVocabularies.spmTokenizer(SPM, true).detokenizer();

        assertThat(d.append(SPM.id("\u2581a"))).isEqualTo(" a");
    }

    @Test
    void replacesAnIncompleteCharacterOnlyAtFinish() {
        Detokenizer d = TinyVocabularies.spmTokenizer(SPM, true).detokenizer();

        assertThat(d.append(bytes("E2"))).isEmpty();
        assertThat(d.append(bytes("82"))).isEmpty();
        assertThat(d.finish()).isEqualTo("\uFFFD");
        assertThat(d.append(SPM.id("a"))).isEqualTo("a"); // finish resets
    }

    @Test
    void replacesBytesThatCanNeverBeValidAtOnce() {
        Detokenizer d = TinyVocabularies.spmTokenizer(SPM, true).detokenizer();

        assertThat(d.append(bytes("A9"))).isEqualTo("\uFFFD"); // a stray continuation byte
        assertThat(d.append(bytes("ED"))).isEmpty();
        assertThat(d.append(bytes("A0"))).isNotEmpty().doesNotContain("\u00a0"); // ED A0 starts a surrogate
        assertThat(d.append(bytes("FF"))).isEqualTo("\uFFFD");
    }

    @Test
    void findsTheCompletePrefix() {
        assertThat(Detokenizer.completeLength(new byte[] {'a', (byte) 0xC3}, 2)).isEqualTo(1);
        assertThat(Detokenizer.completeLength(new byte[] {'a', (byte) 0xC3, (byte) 0xA9}, 3)).isEqualTo(3);
        assertThat(Detokenizer.completeLength(new byte[] {(byte) 0xF0, (byte) 0x9F, (byte) 0xA6}, 3)).isZero();
        assertThat(Detokenizer.completeLength(new byte[] {(byte) 0xF0, (byte) 0x8F}, 2)).isEqualTo(2); // overlong
        assertThat(Detokenizer.completeLength(new byte[] {(byte) 0xE0, (byte) 0x80}, 2)).isEqualTo(2); // overlong
        assertThat(Detokenizer.completeLength(new byte[] {(byte) 0xF4, (byte) 0x90}, 2)).isEqualTo(2); // > U+10FFFF
        assertThat(Detokenizer.completeLength(new byte[] {(byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80}, 4))
                .isEqualTo(4);
        assertThat(Detokenizer.completeLength(new byte[0], 0)).isZero();
    }

    @Test
    void streamsEveryReferenceTextWithoutReplacementCharacters() {
        for (String vocabulary : ReferenceData.VOCABULARIES) {
            Tokenizer tokenizer = ReferenceData.tokenizer(vocabulary);
            for (ReferenceData.Case c : ReferenceData.cases(vocabulary)) {
                int[] ids = tokenizer.encode(c.text());
                Detokenizer d = tokenizer.detokenizer();
                StringBuilder streamed = new StringBuilder();
                List<String> chunks = new ArrayList<>();
                for (int id : ids) {
                    String chunk = d.append(id);
                    chunks.add(chunk);
                    streamed.append(chunk);
                }
                assertThat(d.finish()).as("leftover of %s", c).isEmpty();
                assertThat(chunks).as("chunks of %s", c).noneMatch(s -> s.contains("\uFFFD"));
                // decode drops the space SentencePiece put in front; the stream keeps it
                String expected = tokenizer instanceof SentencePieceTokenizer && !c.text().isEmpty()
                        ? " " + c.text() : c.text();
                assertThat(streamed.toString()).as("stream of %s", c).isEqualTo(expected);
            }
        }
    }

    @Test
    void streamsAnEmojiSplitAcrossLlama2ByteTokens() {
        Tokenizer tokenizer = ReferenceData.tokenizer("llama-spm");
        int[] ids = tokenizer.encode("\uD83D\uDE80 rocket");
        Detokenizer d = tokenizer.detokenizer();

        List<String> chunks = new ArrayList<>();
        for (int id : ids) {
            chunks.add(d.append(id));
        }
        // ▁, then the four bytes of 🚀 (F0 9F 9A 80 = ids 243 162 157 131), then ▁rocket
        assertThat(ids).startsWith(29871, 243, 162, 157, 131);
        assertThat(chunks).startsWith(" ", "", "", "", "\uD83D\uDE80");
        assertThat(String.join("", chunks)).isEqualTo(" \uD83D\uDE80 rocket");
    }
}
