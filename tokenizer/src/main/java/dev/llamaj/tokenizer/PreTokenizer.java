package dev.llamaj.tokenizer;

import dev.llamaj.gguf.UnsupportedModelException;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/// Splits text into words before BPE, so that merges never cross a word boundary. Which split a model
/// was trained with is named by `tokenizer.ggml.pre`; the names and what they mean follow llama.cpp
/// (`llama-vocab.cpp`).
///
/// A split is one or more regular expressions applied in turn, as llama.cpp's `unicode_regex_split` does: the
/// first cuts the text into words (what a pattern matches is a word, and so is any text between two matches), each
/// further pattern cuts every word of the previous one again. StarCoder, for example, first isolates every digit
/// and then applies GPT-2's pattern to the rest.
///
/// - `llama-bpe`, `llama3`, `llama-v3`, `falcon3`, `falcon-h1`, `pixtral`, `midm-2.0`, `lfm2`, `jina-v5-nano`:
///   Llama 3's pattern; ignore merges; BOS.
/// - `dbrx`, `smaug-bpe`: Llama 3's pattern.
/// - `qwen2`, `deepseek-r1-qwen`, `megrez`, `stablelm2`, `hunyuan`, `kormo`, `f2llmv2`, `solar-open`, `grok-2`:
///   Qwen 2's pattern.
/// - `gpt-4o`, `llama4`, `minimax-m2`, `kanana2`, `talkie`: the o200k pattern.
/// - `tekken`: Tekken's pattern; ignore merges; BOS.
/// - `starcoder`, `refact`, `smollm`, `command-r`, `codeshell`, `exaone`, `minerva-7b`, `mellum2`: every digit
///   alone, then GPT-2's pattern.
/// - `gpt-2` (also `gpt2`), `phi-2`, `mpt`, `olmo`, `jais`, `trillion`, `granite-docling`, `exaone4`, `mellum`:
///   GPT-2's pattern.
/// - `default`, also when the key is absent: punctuation runs, then GPT-2's pattern, then numbers, then digit
///   triples.
/// - `gemma4`, `granite-embed-multi-311m`, `sarvam-moe`: lines and runs of newlines, without byte mapping (see
///   below).
///
/// Any other name is rejected with [UnsupportedModelException] rather than guessed: a wrong split gives
/// plausible-looking but different token ids, which silently degrades a model. "Ignore merges" means a word that is
/// already a vocabulary piece is emitted whole (`"ignore_merges": true` in the model's `tokenizer.json`). "BOS" is
/// the default of `add_bos_token` when the file does not set `tokenizer.ggml.add_bos_token`.
///
/// The patterns are the published ones (`tokenizer.json`), with two changes that keep their meaning in Java's
/// regex flavour: `\s` is spelled out as Unicode `White_Space` (Java's `\s` is ASCII only), and the
/// case-insensitive contractions `(?i:'s|...)` are spelled `'[sS]|...` (ASCII only, as llama.cpp does; Java's
/// Unicode case folding would also match `ſ` for `s`). Where llama.cpp itself rewrites a pattern because C++'s
/// `std::regex` lacks `\p{Lu}` and friends (o200k and Tekken), the original is used instead: llama.cpp's rewrite
/// drops `\p{M}`, so it cuts words at every combining vowel sign in Khmer, Devanagari or Thai, which the Hugging
/// Face tokenizer (what the models were trained with) does not do.
///
/// No alternative nests a quantifier, and every alternative that can consume a long run does so in one linear
/// scan (at worst once more backwards), so splitting costs time linear in the text: PreTokenizerTest checks runs
/// of 200,000 characters.
///
/// The last group, SentencePiece-style BPE (Gemma 4, and Gemma 3 converted from `tokenizer.json`), is not
/// byte-level at all: spaces become `▁` (U+2581), merges work on whole characters, a character outside the
/// vocabulary is spelled with `<0xNN>` byte pieces, and only newlines split the text. [#byteLevel] tells
/// [BytePairTokenizer] which kind it has.
final class PreTokenizer {
    /// Unicode White_Space, as a character-class body.
    private static final String WS =
            "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    /// `\s`, `\S` and `[^\s\p{L}\p{N}]` of the published patterns.
    private static final String SPACE = "[" + WS + "]", NOT_SPACE = "[^" + WS + "]";
    private static final String OTHER = "[^" + WS + "\\p{L}\\p{N}]";
    /// `[^\r\n\p{L}\p{N}]`: the one character a word may take in front of its letters (a space, a quote...).
    private static final String LEAD = "[^\\r\\n\\p{L}\\p{N}]";
    /// GPT-2's contractions are lower case only; the later patterns' `(?i:...)` accept any ASCII case.
    private static final String CONTRACTIONS = "'(?:s|t|re|ve|m|ll|d)";
    private static final String CONTRACTIONS_ANY_CASE = "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";
    /// o200k's and Tekken's split of letters by case: "upper" runs (with other letters and marks) then "lower"
    /// runs, so `camelCase` splits before the `C` while `HTTPServer` stays whole.
    private static final String UPPER = "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]";
    private static final String LOWER = "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]";
    /// The whitespace tail shared by the Llama 3 family: spaces ending in newlines, then spaces that leave their
    /// last one to the next word, then any other spaces: `\s*[\r\n]+|\s+(?!\S)|\s+`.
    private static final String SPACES = SPACE + "*[\\r\\n]+|" + SPACE + "+(?!" + NOT_SPACE + ")|" + SPACE + "+";

    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    private static final String GPT2 = CONTRACTIONS + "| ?\\p{L}+| ?\\p{N}+| ?" + OTHER + "+|" + SPACE + "+(?!"
            + NOT_SPACE + ")|" + SPACE + "+";

    /// Llama 3: contractions, letters with one leading non-letter, digits in threes, punctuation runs with their
    /// newlines, spaces: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|`
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    private static final String LLAMA3 = llama3Like("\\p{N}{1,3}");

    /// Qwen 2: Llama 3's with every digit a word of its own (`\p{N}` for `\p{N}{1,3}`).
    private static final String QWEN2 = llama3Like("\\p{N}");

    /// o200k (GPT-4o, Llama 4, Phi-4-mini), as published:
    /// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|`
    /// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|`
    /// `\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    /// This follows the Hugging Face tokenizer, not llama.cpp, whose rewrite without `\p{M}` splits words at every
    /// combining mark (see the class comment).
    private static final String O200K = LEAD + "?" + UPPER + "*" + LOWER + "+(?:" + CONTRACTIONS_ANY_CASE + ")?|"
            + LEAD + "?" + UPPER + "+" + LOWER + "*(?:" + CONTRACTIONS_ANY_CASE + ")?|\\p{N}{1,3}| ?" + OTHER
            + "+[\\r\\n/]*|" + SPACES;

    /// Tekken (Mistral NeMo and later): o200k's without contractions and with single digits, as published.
    private static final String TEKKEN = LEAD + "?" + UPPER + "*" + LOWER + "+|" + LEAD + "?" + UPPER + "+" + LOWER
            + "*|\\p{N}| ?" + OTHER + "+[\\r\\n/]*|" + SPACES;

    /// Gemma: lines and runs of newlines, `[^\n]+|[\n]+`.
    private static final String LINES = "[^\\n]+|\\n+";

    private static String llama3Like(String digits) {
        return CONTRACTIONS_ANY_CASE + "|" + LEAD + "?\\p{L}+|" + digits + "| ?" + OTHER + "+[\\r\\n]*|" + SPACES;
    }

    /// Every known name, in the order the error message lists them.
    private static final Map<String, PreTokenizer> BY_NAME = new LinkedHashMap<>();

    static {
        register(byteLevel(LLAMA3).ignoringMerges().addingBos(), "llama-bpe", "llama3", "llama-v3", "falcon3",
                "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano");
        register(byteLevel(LLAMA3), "dbrx", "smaug-bpe");
        register(byteLevel(QWEN2), "qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan", "kormo", "f2llmv2",
                "solar-open", "grok-2");
        register(byteLevel(O200K), "gpt-4o", "llama4", "minimax-m2", "kanana2", "talkie");
        register(byteLevel(TEKKEN).ignoringMerges().addingBos(), "tekken");
        register(byteLevel("\\p{N}", GPT2), "starcoder", "refact", "smollm", "command-r", "codeshell", "exaone",
                "minerva-7b", "mellum2");
        register(byteLevel(GPT2), "gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling",
                "exaone4", "mellum");
        // llama.cpp's fallback when a file names no pre-tokenizer: punctuation runs first, then GPT-2's pattern,
        // then numbers, then digit triples
        register(byteLevel("[\\p{P}$+<=>^~|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"), "default");
        // only Gemma's own names keep a run of newlines whole when it is a piece (llama.cpp's "fix for gemma 4")
        register(characterLevel(LINES).takingNewlineRunsWhole(), "gemma4", "granite-embed-multi-311m");
        register(characterLevel(LINES), "sarvam-moe");
    }

    private static void register(PreTokenizer pre, String... names) {
        for (String name : names) {
            BY_NAME.put(name, pre);
        }
    }

    private final Pattern[] patterns;
    private final boolean byteLevel;
    private final boolean ignoreMerges;
    private final boolean addsBos;
    private final boolean wholeNewlines;

    private PreTokenizer(Pattern[] patterns, boolean byteLevel, boolean ignoreMerges, boolean addsBos,
                         boolean wholeNewlines) {
        this.patterns = patterns;
        this.byteLevel = byteLevel;
        this.ignoreMerges = ignoreMerges;
        this.addsBos = addsBos;
        this.wholeNewlines = wholeNewlines;
    }

    private static PreTokenizer byteLevel(String... patterns) {
        return new PreTokenizer(compile(patterns), true, false, false, false);
    }

    private static PreTokenizer characterLevel(String... patterns) {
        return new PreTokenizer(compile(patterns), false, false, false, false);
    }

    private static Pattern[] compile(String... patterns) {
        Pattern[] compiled = new Pattern[patterns.length];
        for (int i = 0; i < patterns.length; i++) {
            compiled[i] = Pattern.compile(patterns[i]);
        }
        return compiled;
    }

    private PreTokenizer ignoringMerges() {
        return new PreTokenizer(patterns, byteLevel, true, addsBos, wholeNewlines);
    }

    private PreTokenizer addingBos() {
        return new PreTokenizer(patterns, byteLevel, ignoreMerges, true, wholeNewlines);
    }

    private PreTokenizer takingNewlineRunsWhole() {
        return new PreTokenizer(patterns, byteLevel, ignoreMerges, addsBos, true);
    }

    /// The pre-tokenizer called `name` in `tokenizer.ggml.pre`.
    ///
    /// @throws UnsupportedModelException for a name not in the list above
    static PreTokenizer forName(String name, String source) throws UnsupportedModelException {
        PreTokenizer pre = BY_NAME.get(name);
        if (pre == null) {
            throw new UnsupportedModelException(source + ": pre-tokenizer '" + name + "' is not supported (supported: "
                    + String.join(", ", BY_NAME.keySet()) + ")");
        }
        return pre;
    }

    /// The pre-tokenizer called `name`, which must be known (for tests).
    static PreTokenizer named(String name) {
        PreTokenizer pre = BY_NAME.get(name);
        if (pre == null) {
            throw new IllegalArgumentException("no pre-tokenizer " + name);
        }
        return pre;
    }

    static PreTokenizer llama3() {
        return named("llama-bpe");
    }

    static PreTokenizer gpt2() {
        return named("gpt-2");
    }

    /// Whether words are spelled as UTF-8 bytes in GPT-2's printable stand-ins; if not, as characters with spaces
    /// written `▁` and `<0xNN>` pieces for characters outside the vocabulary.
    boolean byteLevel() {
        return byteLevel;
    }

    /// Whether a word that is itself a vocabulary piece skips the merges.
    boolean ignoreMerges() {
        return ignoreMerges;
    }

    /// Whether a word made only of newlines skips the merges when it is a vocabulary piece.
    boolean wholeNewlines() {
        return wholeNewlines;
    }

    /// The `add_bos_token` default for vocabularies using this split.
    boolean addsBos() {
        return addsBos;
    }

    /// Appends the `(start, end)` bounds of the words of `text[from, to)` to `out`. The words cover the range
    /// exactly: what a pattern skips between two matches is a word too.
    void split(CharSequence text, int from, int to, TokenBuffer out) {
        Matcher m = patterns[0].matcher(text);
        if (patterns.length == 1) {
            split(m, from, to, out);
            return;
        }
        TokenBuffer words = new TokenBuffer(16);
        split(m, from, to, words);
        for (int p = 1; p < patterns.length; p++) {
            TokenBuffer next = p == patterns.length - 1 ? out : new TokenBuffer(2 * words.size());
            m = patterns[p].matcher(text);
            for (int w = 0; w < words.size(); w += 2) {
                split(m, words.get(w), words.get(w + 1), next);
            }
            words = next;
        }
    }

    private static void split(Matcher m, int from, int to, TokenBuffer out) {
        // the region's end acts as the end of input, so `\s+(?!\S)` sees no text beyond a word or special token
        m.region(from, to);
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
