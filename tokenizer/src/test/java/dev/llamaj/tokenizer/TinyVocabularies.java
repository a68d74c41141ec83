package dev.llamaj.tokenizer;

import dev.llamaj.gguf.GGUFFormatException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/// Small vocabularies built by hand, so that tokenizer behaviour is tested without the shared data.
final class TinyVocabularies {
    private TinyVocabularies() {}

    /// Collects pieces with their score and type; ids follow insertion order.
    static final class Builder {
        final List<String> pieces = new ArrayList<>();
        final List<Float> scores = new ArrayList<>();
        final List<Integer> types = new ArrayList<>();

        Builder add(String piece, float score, int type) {
            pieces.add(piece);
            scores.add(score);
            types.add(type);
            return this;
        }

        Builder normal(String piece, float score) {
            return add(piece, score, Vocabulary.NORMAL);
        }

        Builder normal(String... pieces) {
            for (String piece : pieces) {
                normal(piece, 0f);
            }
            return this;
        }

        int id(String piece) {
            int id = pieces.lastIndexOf(piece);
            if (id < 0) {
                throw new IllegalArgumentException("no piece " + piece);
            }
            return id;
        }

        String[] pieceArray() {
            return pieces.toArray(String[]::new);
        }

        float[] scoreArray() {
            float[] a = new float[scores.size()];
            for (int i = 0; i < a.length; i++) {
                a[i] = scores.get(i);
            }
            return a;
        }

        int[] typeArray() {
            return types.stream().mapToInt(Integer::intValue).toArray();
        }

        /// A vocabulary with the SentencePiece special ids looked up by their usual names (-1 when absent).
        Vocabulary vocabulary() {
            return new Vocabulary(pieceArray(), scoreArray(), typeArray(), find("<s>"), find("</s>"), -1, -1,
                    find("<unk>"), -1, true);
        }

        int find(String piece) {
            return pieces.lastIndexOf(piece);
        }
    }

    /// `<unk>`, `<s>`, `</s>` and, with `byteFallback`, the 256 tokens `<0x00>` .. `<0xFF>`, as Llama 2 starts.
    static Builder spm(boolean byteFallback) {
        Builder b = new Builder()
                .add("<unk>", 0f, Vocabulary.UNKNOWN)
                .add("<s>", 0f, Vocabulary.CONTROL)
                .add("</s>", 0f, Vocabulary.CONTROL);
        if (byteFallback) {
            for (int i = 0; i < 256; i++) {
                b.add(String.format("<0x%02X>", i), 0f, Vocabulary.BYTE);
            }
        }
        return b;
    }

    /// The 256 byte pieces of GPT-2 byte-level BPE (id = byte value), then `extra` normal pieces.
    static Builder bpe(String... extra) {
        Builder b = new Builder();
        for (int i = 0; i < 256; i++) {
            b.normal(String.valueOf(BytePairTokenizer.BYTE_TO_CHAR[i]), 0f);
        }
        return b.normal(extra);
    }

    static SentencePieceTokenizer spmTokenizer(Builder b, boolean addSpacePrefix) {
        return new SentencePieceTokenizer(b.vocabulary(), addSpacePrefix);
    }

    static BytePairTokenizer bpeTokenizer(Builder b, PreTokenizer pre, String... merges) {
        Vocabulary v = new Vocabulary(b.pieceArray(), null, b.typeArray(), b.find("<|begin_of_text|>"),
                b.find("<|eot_id|>"), -1, -1, -1, -1, false);
        try {
            return new BytePairTokenizer(v, merges, pre, "tiny.gguf");
        } catch (GGUFFormatException e) {
            throw new IllegalArgumentException(e);
        }
    }

    /// GGUF-style metadata for `Tokenizer.from`: the builder's arrays plus `extra` key/value pairs.
    static Map<String, Object> metadata(Builder b, String model, Object... extra) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokenizer.ggml.model", model);
        m.put("tokenizer.ggml.tokens", b.pieceArray());
        m.put("tokenizer.ggml.scores", b.scoreArray());
        m.put("tokenizer.ggml.token_type", b.typeArray());
        for (int i = 0; i < extra.length; i += 2) {
            m.put((String) extra[i], extra[i + 1]);
        }
        return m;
    }
}
