package dev.llamaj.tokenizer;

import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.UnsupportedModelException;

import java.io.IOException;

/// Text to token ids and back, for the two vocabulary kinds of GGUF files: SentencePiece-style
/// (`tokenizer.ggml.model = llama`: Llama 2, TinyLlama, Mistral v0.1, Gemma) and BPE (`tokenizer.ggml.model = gpt2`:
/// Llama 3, Qwen 2 and 3, GPT-4o's o200k, Mistral's Tekken, StarCoder and others, each with the word split named by
/// `tokenizer.ggml.pre`, and Gemma 3 converted from `tokenizer.json`).
///
/// Encoding never adds BOS (the engine does, per [Vocabulary#addBos]) and by default treats the text of special
/// tokens such as `<|eot_id|>` as ordinary text, so user input cannot inject control tokens. The results match
/// llama.cpp's tokenizers id for id on its reference texts.
///
/// Implementations are immutable and thread-safe; [#detokenizer] hands out a fresh stateful [Detokenizer].
///
/// ```java
/// Tokenizer tokenizer = Tokenizer.from(gguf.metadata());
/// int[] ids = tokenizer.encode("Hello world");          // [9906, 1917] with the Llama 3 vocabulary
/// String text = tokenizer.decode(ids);                   // "Hello world"
/// ```
public sealed interface Tokenizer permits SentencePieceTokenizer, BytePairTokenizer {

    /// Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*` keys.
    ///
    /// @throws dev.llamaj.gguf.GGUFFormatException if a key is missing or has the wrong type, arrays disagree in
    ///         length, a special id lies outside the vocabulary, or a merge is not two pieces separated by a space
    /// @throws UnsupportedModelException if the tokenizer model is not `llama`, `gpt2` or `gemma4`, or the BPE
    ///         pre-tokenizer (`tokenizer.ggml.pre`) is not one llamaj knows
    static Tokenizer from(Metadata metadata) throws IOException {
        String source = metadata.source();
        String model = metadata.string(Vocabulary.KEY_MODEL);
        return switch (model) {
            case "llama" -> new SentencePieceTokenizer(Vocabulary.read(metadata, true, false),
                    metadata.bool(SentencePieceTokenizer.KEY_ADD_SPACE_PREFIX, true));
            // Gemma 4 names its own model: BPE over characters, whatever `tokenizer.ggml.pre` says (as llama.cpp)
            case "gpt2", "gemma4" -> {
                PreTokenizer pre = PreTokenizer.forName(model.equals("gemma4") ? "gemma4"
                        : metadata.string(BytePairTokenizer.KEY_PRE, "default"), source);
                Vocabulary vocabulary = Vocabulary.read(metadata, false, pre.addsBos());
                yield new BytePairTokenizer(vocabulary, metadata.stringArray(BytePairTokenizer.KEY_MERGES), pre,
                        source);
            }
            default -> throw new UnsupportedModelException(source + ": tokenizer model '" + model
                    + "' is not supported (supported: llama, gpt2, gemma4)");
        };
    }

    Vocabulary vocabulary();

    /// Encodes `text` with special-token text left as ordinary text. No BOS is added.
    default int[] encode(String text) {
        return encode(text, false);
    }

    /// Encodes `text`. With `parseSpecial`, the text of control tokens (`<|eot_id|>`, `<s>`...) becomes their
    /// ids, the longest match first; without it, only user-defined tokens are cut out of the text (they are
    /// ordinary vocabulary additions, as in llama.cpp) and control-token text is tokenized like any other. No BOS
    /// is added.
    int[] encode(String text, boolean parseSpecial);

    /// Encodes text rendered by a chat template: control-token text is parsed as special tokens, except inside
    /// `literalSpans` (sorted, disjoint `[start, end)` character ranges, flattened into pairs), which hold the
    /// messages' contents and are tokenized as ordinary text, so users cannot inject control tokens. No BOS is
    /// added.
    int[] encode(String text, int[] literalSpans);

    /// The bytes a token stands for: its UTF-8 text, or the single byte of a byte token. Control tokens give an
    /// empty array. A token's bytes may end in the middle of a UTF-8 character; [Detokenizer] handles that.
    ///
    /// @throws IndexOutOfBoundsException if `token` is not in the vocabulary
    byte[] bytes(int token);

    /// The text of a whole token sequence (control tokens give nothing; invalid UTF-8 becomes U+FFFD). For
    /// SentencePiece vocabularies that add a space prefix, the space that encoding put in front of the text is
    /// removed again, so `decode(encode(s)).equals(s)`.
    String decode(int[] tokens);

    /// A new streaming decoder for one generation.
    default Detokenizer detokenizer() {
        return new Detokenizer(this);
    }
}
