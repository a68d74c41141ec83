package dev.llamaj.tokenizer;

import dev.llamaj.gguf.UnsupportedModelException;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/// Splits text into words before byte-level BPE, so that merges never cross a word boundary. Which split a model
/// was trained with is named by `tokenizer.ggml.pre`.
///
/// | `tokenizer.ggml.pre`                          | pattern                   | ignore merges | BOS by default |
/// |-----------------------------------------------|---------------------------|---------------|----------------|
/// | `llama-bpe`, `llama3`, `llama-v3`             | Llama 3's                 | yes           | yes            |
/// | `default` (also when absent), `gpt2`, `gpt-2` | GPT-2's original          | no            | no             |
///
/// Any other name is rejected with [UnsupportedModelException] rather than guessed: a wrong split gives
/// plausible-looking but different token ids, which silently degrades a model.
///
/// The patterns are the published ones with `\s` spelled out as Unicode `White_Space` (Java's `\s` is ASCII only,
/// and `UNICODE_CHARACTER_CLASS` would also turn the contractions' `(?i)` into Unicode case folding, matching `ſ`
/// for `s`). No alternative nests a quantifier, so nothing backtracks exponentially; a whitespace run costs time
/// linear in its length (PreTokenizerTest checks runs of 200,000 characters).
/// "Ignore merges" means a word that is already a vocabulary piece is emitted whole, as Llama 3's
/// `tokenizer.json` asks (`"ignore_merges": true`).
final class PreTokenizer {
    /// Unicode White_Space, as a character-class body.
    private static final String WS =
            "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    private static final String SPACE = "[" + WS + "]";
    private static final String NOT_SPACE = "[^" + WS + "]";
    private static final String OTHER = "[^" + WS + "\\p{L}\\p{N}]";

    /// Llama 3: contractions, letters with one leading non-letter, digits in threes, punctuation runs, newlines,
    /// spaces: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|`
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    private static final PreTokenizer LLAMA3 = new PreTokenizer(Pattern.compile(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?" + OTHER + "+[\\r\\n]*|"
                    + SPACE + "*[\\r\\n]+|" + SPACE + "+(?!" + NOT_SPACE + ")|" + SPACE + "+"), true, true);

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    private static final PreTokenizer GPT2 = new PreTokenizer(Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?" + OTHER + "+|" + SPACE + "+(?!" + NOT_SPACE + ")|"
                    + SPACE + "+"), false, false);

    private final Pattern pattern;
    private final boolean ignoreMerges;
    private final boolean addsBos;

    private PreTokenizer(Pattern pattern, boolean ignoreMerges, boolean addsBos) {
        this.pattern = pattern;
        this.ignoreMerges = ignoreMerges;
        this.addsBos = addsBos;
    }

    /// The pre-tokenizer called `name` in `tokenizer.ggml.pre`.
    ///
    /// @throws UnsupportedModelException for a name not in the table above
    static PreTokenizer forName(String name, String source) throws UnsupportedModelException {
        return switch (name) {
            case "llama-bpe", "llama3", "llama-v3" -> LLAMA3;
            case "default", "gpt2", "gpt-2" -> GPT2;
            default -> throw new UnsupportedModelException(source + ": pre-tokenizer '" + name
                    + "' is not supported (supported: llama-bpe, llama3, llama-v3, default, gpt2, gpt-2)");
        };
    }

    static PreTokenizer llama3() {
        return LLAMA3;
    }

    static PreTokenizer gpt2() {
        return GPT2;
    }

    /// Whether a word that is itself a vocabulary piece skips the merges.
    boolean ignoreMerges() {
        return ignoreMerges;
    }

    /// The `add_bos_token` default for vocabularies using this split.
    boolean addsBos() {
        return addsBos;
    }

    /// Appends the `(start, end)` bounds of the words of `text[from, to)` to `out`. The words cover the range
    /// exactly: the patterns match every character, and anything they skipped would still become a word.
    void split(CharSequence text, int from, int to, TokenBuffer out) {
        // the region's end acts as the end of input, so `\s+(?!\S)` sees no text beyond a special token
        Matcher m = pattern.matcher(text).region(from, to);
        int position = from;
        while (m.find()) {
            if (m.start() > position) {
                out.add(position);
                out.add(m.start());
            }
            out.add(m.start());
            out.add(m.end());
            position = m.end();
        }
        if (position < to) {
            out.add(position);
            out.add(to);
        }
    }
}
