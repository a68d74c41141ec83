package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.GGUFFormatException;
import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.UnsupportedModelException;

import java.io.IOException;

import org.junit.jupiter.api.Test;

/// `Tokenizer.from`: choosing the tokenizer from GGUF metadata, defaults, and the load-time checks that keep
/// hostile files out.
class TokenizerTest {

    private static Tokenizer from(TinyVocabularies.Builder b, String model, Object... extra) throws IOException {
        return Tokenizer.from(Metadata.of("tiny.gguf", TinyVocabularies.metadata(b, model, extra)));
    }

    @Test
    void buildsSentencePieceForLlamaVocabularies() throws IOException {
        Tokenizer tokenizer = from(TinyVocabularies.spm(true).normal("a"), "llama");

        assertThat(tokenizer).isInstanceOf(SentencePieceTokenizer.class);
        Vocabulary v = tokenizer.vocabulary();
        assertThat(v.unknown()).isZero();
        assertThat(v.bos()).isEqualTo(1);
        assertThat(v.eos()).isEqualTo(2);
        assertThat(v.eot()).isEqualTo(-1);
        assertThat(v.padding()).isEqualTo(-1);
        assertThat(v.addBos()).isTrue();
        assertThat(v.isEndOfGeneration(2)).isTrue();
    }

    @Test
    void readsSpaceprefixSetting() throws IOException {
        var b = TinyVocabularies.spm(true).normal("a", "\u2581");

        assertThat(from(b, "llama").encode("a")).containsExactly(b.id("\u2581"), b.id("a"));
        assertThat(from(b, "llama", "tokenizer.ggml.add_space_prefix", false).encode("a")).containsExactly(b.id("a"));
    }

    @Test
    void buildsBytePairForGpt2Vocabularies() throws IOException {
        var b = TinyVocabularies.bpe("ab");
        Tokenizer tokenizer = from(b, "gpt2", "tokenizer.ggml.merges", new String[] {"a b"},
                "tokenizer.ggml.pre", "llama-bpe");

        assertThat(tokenizer).isInstanceOf(BytePairTokenizer.class);
        assertThat(tokenizer.encode("ab")).containsExactly(b.id("ab"));
        assertThat(tokenizer.vocabulary().addBos()).isTrue(); // Llama 3's default
        assertThat(tokenizer.vocabulary().bos()).isEqualTo(-1);
    }

    @Test
    void usesLlamaCppsDefaultSplitWhenNoPreTokenizerIsNamed() throws IOException {
        var b = TinyVocabularies.bpe("\u0120xyz");
        Tokenizer tokenizer = from(b, "gpt2", "tokenizer.ggml.merges", new String[0]);

        // no whole words past the merges (Llama 3 would take " xyz" whole), and numbers lose their space
        assertThat(tokenizer.encode(" xyz")).hasSize(4);
        assertThat(tokenizer.encode(" 12")).containsExactly(b.id("\u0120"), b.id("1"), b.id("2"));
        assertThat(tokenizer.vocabulary().addBos()).isFalse();
    }

    @Test
    void bosDefaultFollowsThePreTokenizerUnlessTheFileSaysSo() throws IOException {
        var b = TinyVocabularies.bpe();
        String[] none = new String[0];

        assertThat(from(b, "gpt2", "tokenizer.ggml.merges", none, "tokenizer.ggml.pre", "tekken").vocabulary().addBos())
                .isTrue();
        assertThat(from(b, "gpt2", "tokenizer.ggml.merges", none, "tokenizer.ggml.pre", "qwen2").vocabulary().addBos())
                .isFalse();
        assertThat(from(b, "gpt2", "tokenizer.ggml.merges", none, "tokenizer.ggml.pre", "qwen2",
                "tokenizer.ggml.add_bos_token", true).vocabulary().addBos()).isTrue();
        assertThat(from(b, "gpt2", "tokenizer.ggml.merges", none, "tokenizer.ggml.pre", "llama-bpe",
                "tokenizer.ggml.add_bos_token", false).vocabulary().addBos()).isFalse();
    }

    @Test
    void rejectsAnUnknownPreTokenizer() {
        var b = TinyVocabularies.bpe();

        assertThatThrownBy(() -> from(b, "gpt2", "tokenizer.ggml.merges", new String[0], "tokenizer.ggml.pre",
                "deepseek-llm"))
                .isInstanceOf(UnsupportedModelException.class)
                .hasMessageStartingWith("tiny.gguf: pre-tokenizer 'deepseek-llm' is not supported (supported: "
                        + "llama-bpe, llama3, llama-v3, ")
                .hasMessageContainingAll(", qwen2, ", ", deepseek-r1-qwen, ", ", gpt-4o, ", ", tekken, ",
                        ", starcoder, ", ", refact, ", ", smollm, ", ", gpt-2, ", ", default, ", ", gemma4, ",
                        ", granite-embed-multi-311m, ")
                .hasMessageEndingWith(")");
    }

    @Test
    void gemma4ModelIsBpeOverCharacters() throws IOException {
        var b = new TinyVocabularies.Builder().normal("a", "\u2581", "\u2581a");
        Tokenizer tokenizer = from(b, "gemma4", "tokenizer.ggml.merges", new String[] {"\u2581 a"},
                "tokenizer.ggml.pre", "gpt-2"); // the model's name decides the split, as in llama.cpp

        assertThat(tokenizer.encode("a a")).containsExactly(b.id("a"), b.id("\u2581a"));
    }

    @Test
    void rejectsAnUnknownTokenizerModel() {
        assertThatThrownBy(() -> from(TinyVocabularies.spm(false), "bert"))
                .isInstanceOf(UnsupportedModelException.class)
                .hasMessage("tiny.gguf: tokenizer model 'bert' is not supported (supported: llama, gpt2, gemma4)");
    }

    @Test
    void rejectsASpecialIdOutsideTheVocabulary() {
        var b = TinyVocabularies.spm(false);

        assertThatThrownBy(() -> from(b, "llama", "tokenizer.ggml.eos_token_id", 3))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage("tiny.gguf: 'tokenizer.ggml.eos_token_id' is 3, expected 0..2 (the vocabulary has 3"
                        + " tokens) or -1 for none");
    }

    @Test
    void readsNoneAsMinusOne() throws IOException {
        var b = TinyVocabularies.spm(false);
        Vocabulary v = from(b, "llama", "tokenizer.ggml.padding_token_id", 0xFFFF_FFFFL,
                "tokenizer.ggml.eot_token_id", -1).vocabulary();

        assertThat(v.padding()).isEqualTo(-1);
        assertThat(v.eot()).isEqualTo(-1);
    }

    @Test
    void rejectsArraysOfDifferentLengths() {
        var b = TinyVocabularies.spm(false);

        assertThatThrownBy(() -> from(b, "llama", "tokenizer.ggml.scores", new float[] {0f}))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage("tiny.gguf: 'tokenizer.ggml.scores' has 1 entries, expected 3 (one per token)");
        assertThatThrownBy(() -> from(b, "llama", "tokenizer.ggml.token_type", new int[] {1, 1, 1, 1}))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage("tiny.gguf: 'tokenizer.ggml.token_type' has 4 entries, expected 3 (one per token)");
    }

    @Test
    void rejectsUnknownTokenTypes() {
        var b = TinyVocabularies.spm(false);

        assertThatThrownBy(() -> from(b, "llama", "tokenizer.ggml.token_type", new int[] {2, 3, 9}))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage("tiny.gguf: token 2 has type 9, expected 0..6");
    }

    @Test
    void rejectsAnEmptyVocabulary() {
        assertThatThrownBy(() -> from(new TinyVocabularies.Builder(), "llama"))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage("tiny.gguf: 'tokenizer.ggml.tokens' has 0 tokens, expected 1..268435456");
    }

    @Test
    void reportsMalformedMergesWithTheirIndex() {
        var b = TinyVocabularies.bpe();

        assertThatThrownBy(() -> from(b, "gpt2", "tokenizer.ggml.merges", new String[] {"a b", "c d", "cd"}))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessageContaining("entry 2 \"cd\"");
    }

    @Test
    void requiresMergesForGpt2() {
        assertThatThrownBy(() -> from(TinyVocabularies.bpe(), "gpt2"))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessageContaining("tokenizer.ggml.merges");
    }

    @Test
    void endOfGenerationCoversChatTemplateEndTokens() throws IOException {
        var b = TinyVocabularies.bpe().add("<|im_end|>", 0f, Vocabulary.CONTROL)
                .add("<|eot_id|>", 0f, Vocabulary.NORMAL) // not a control token: ordinary text
                .add("<|other|>", 0f, Vocabulary.CONTROL);
        Vocabulary v = from(b, "gpt2", "tokenizer.ggml.merges", new String[0]).vocabulary();

        assertThat(v.isEndOfGeneration(b.id("<|im_end|>"))).isTrue();
        assertThat(v.isEndOfGeneration(b.id("<|eot_id|>"))).isFalse();
        assertThat(v.isEndOfGeneration(b.id("<|other|>"))).isFalse();
        assertThat(v.isControl(b.id("<|other|>"))).isTrue();
        assertThatThrownBy(() -> v.isEndOfGeneration(v.size())).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void readsTheLlama3Vocabulary() {
        Tokenizer tokenizer = ReferenceData.tokenizer("llama3-bpe");
        Vocabulary v = tokenizer.vocabulary();

        assertThat(v.size()).isEqualTo(128256);
        assertThat(v.bos()).isEqualTo(128000);
        assertThat(v.eos()).isEqualTo(128009);
        assertThat(v.addBos()).isTrue();
        assertThat(v.piece(128009)).isEqualTo("<|eot_id|>");
        assertThat(v.isEndOfGeneration(128009)).isTrue();
        assertThat(v.isEndOfGeneration(128008)).isFalse(); // <|reserved_special_token_4|> in this file
        assertThat(v.isEndOfGeneration(9906)).isFalse();
        assertThat(v.isControl(128006)).isTrue();
        assertThat(tokenizer.encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true))
                .containsExactly(128006, 882, 128007, 271, 13347, 128009);
    }

    @Test
    void readsTheStories260KVocabulary() throws IOException {
        Tokenizer tokenizer;
        try (GGUFFile file = GGUFFile.open(SharedData.require("models/stories260K.gguf"))) {
            tokenizer = Tokenizer.from(file.metadata());
        }
        Vocabulary v = tokenizer.vocabulary();

        assertThat(v.size()).isEqualTo(512);
        assertThat(v.padding()).isEqualTo(-1); // stored as 0xFFFFFFFF
        assertThat(v.bos()).isEqualTo(1);
        String story = "Once upon a time, Lily saw a big dog. \"Hi!\" she said.\n\u00e9\uD83D\uDE00";
        assertThat(tokenizer.decode(tokenizer.encode(story))).isEqualTo(story);
    }

    @Test
    void readsTheLlama2Vocabulary() {
        Tokenizer tokenizer = ReferenceData.tokenizer("llama-spm");
        Vocabulary v = tokenizer.vocabulary();

        assertThat(v.size()).isEqualTo(32000);
        assertThat(v.bos()).isEqualTo(1);
        assertThat(v.eos()).isEqualTo(2);
        assertThat(v.unknown()).isZero();
        assertThat(v.addBos()).isTrue();
        assertThat(v.isEndOfGeneration(2)).isTrue();
        assertThat(v.tokenType(3)).isEqualTo(Vocabulary.BYTE);
        assertThat(tokenizer.encode("<s>Hello</s>", true)).containsExactly(1, 15043, 2);
        assertThat(tokenizer.encode("<s>Hello")).doesNotContain(1);
    }
}
