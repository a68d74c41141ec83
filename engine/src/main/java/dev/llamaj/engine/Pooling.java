package dev.llamaj.engine;

import dev.llamaj.gguf.GGUFFormatException;
import java.util.Locale;
import java.util.Optional;

/// How the hidden states of an input's tokens become one embedding ([Session#embed]).
///
/// A decoder model's hidden state at a token has seen only the tokens up to it (causal attention), so the two
/// useful summaries are the average over all tokens and the state of the last token, which has seen them all.
/// Embedding models trained for one of them say which in their GGUF file (`<arch>.pooling_type`, llama.cpp's
/// numbering: 1 mean, 3 last); Qwen3-Embedding is trained for `LAST`.
public enum Pooling {
    /// The average of every token's hidden state (the start-of-text token included, as llama.cpp does).
    MEAN,
    /// The hidden state of the last token.
    LAST;

    /// llama.cpp's `LLAMA_POOLING_TYPE_MEAN` and `_LAST`, as converters write them to `<arch>.pooling_type`.
    static final int GGUF_MEAN = 1;
    static final int GGUF_LAST = 3;

    /// The pooling `model` was trained for: `LAST` or `MEAN` when its GGUF file says so, `MEAN` otherwise (chat
    /// models carry no such key; `cls` and `rank`, for BERT-style encoders, do not apply to a decoder).
    public static Pooling of(LlamaModel model) {
        String key = model.config().architecture().ggufName + ".pooling_type";
        long type;
        try {
            type = model.file().metadata().integer(key, GGUF_MEAN);
        } catch (GGUFFormatException e) {
            return MEAN; // a key of another type: not a pooling llamaj knows
        }
        return type == GGUF_LAST ? LAST : MEAN;
    }

    /// The pooling named `mean` or `last` (any case), or empty.
    public static Optional<Pooling> parse(String name) {
        if (name == null) {
            return Optional.empty();
        }
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "mean" -> Optional.of(MEAN);
            case "last" -> Optional.of(LAST);
            default -> Optional.empty();
        };
    }

    /// The lowercase name that [#parse] reads.
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
