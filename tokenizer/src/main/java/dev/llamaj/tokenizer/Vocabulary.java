package dev.llamaj.tokenizer;

import dev.llamaj.gguf.GGUFFormatException;
import dev.llamaj.gguf.Metadata;

import java.util.Arrays;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Set;

/// The token table of a model: for every id its piece (text), score and type, plus the special ids, read from the
/// `tokenizer.ggml.*` keys of a GGUF file.
///
/// Token types are the GGUF codes, kept as `int` constants ([#NORMAL] ... [#BYTE]). Special ids are `-1` when the
/// file names none (GGUF writers also spell "none" as `0xFFFFFFFF`). Lookups from text to id go through an
/// open-addressing table over the pieces that hashes a character range in place, so the tokenizers' inner loops
/// probe it without building substrings. A 262K-token vocabulary indexes in a few tens of milliseconds.
///
/// Immutable and thread-safe.
public final class Vocabulary {
    /// GGUF token types (`tokenizer.ggml.token_type`, llama.cpp's `llama_token_type`).
    public static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    static final String KEY_MODEL = "tokenizer.ggml.model";
    static final String KEY_TOKENS = "tokenizer.ggml.tokens";
    static final String KEY_SCORES = "tokenizer.ggml.scores";
    static final String KEY_TOKEN_TYPE = "tokenizer.ggml.token_type";
    static final String KEY_BOS = "tokenizer.ggml.bos_token_id";
    static final String KEY_EOS = "tokenizer.ggml.eos_token_id";
    static final String KEY_EOT = "tokenizer.ggml.eot_token_id";
    static final String KEY_EOM = "tokenizer.ggml.eom_token_id";
    static final String KEY_UNKNOWN = "tokenizer.ggml.unknown_token_id";
    static final String KEY_PADDING = "tokenizer.ggml.padding_token_id";
    static final String KEY_ADD_BOS = "tokenizer.ggml.add_bos_token";

    /// Bounds the lookup table (a power of two at least twice the token count must fit an `int[]`).
    static final int MAX_TOKENS = 1 << 28;

    /// Control-token texts that end a turn in some chat format, whatever ids the file names as EOS/EOT.
    static final Set<String> END_OF_GENERATION_TEXTS = Set.of(
            "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "</s>", "<end_of_turn>", "<|endoftext|>");

    private final String[] pieces;
    private final float[] scores;
    private final int[] types;
    private final int bos, eos, eot, eom, unknown, padding;
    private final boolean addBos;

    /// Open-addressing index from piece to id: slot holds `id + 1`, 0 marks an empty slot. Sized to a power of two
    /// at least twice the token count, so probes stay short. The slot is taken from the top bits of the hash times
    /// the golden ratio (Fibonacci hashing): pieces that differ only in their last character have hashes that differ
    /// by a little, and taking the low bits would put them in neighbouring slots; the long runs this builds cost
    /// Qwen 2's vocabulary 339 probes per insert on average, against 1.3.
    private final int[] index;
    private final int indexShift;
    private final boolean[] endOfGeneration;
    /// Tokens matched in raw text before tokenization (control, user-defined and unknown, non-empty), sorted by
    /// their text (then by id) so that the pieces sharing a prefix form one range, with their texts alongside. Gemma
    /// has 6,400 of them, nearly all starting with `<`; narrowing the range one character at a time finds the longest
    /// at a position in a few binary searches, where trying them all would cost thousands of comparisons per `<`.
    private final int[] specials;
    private final String[] specialTexts;
    /// One bit per UTF-16 unit that some special token starts with: most characters of a text start none.
    private final long[] specialStarts = new long[1024];
    private final boolean hasUserDefined;

    /// Builds a vocabulary from parallel arrays (`scores` and `types` may be `null`: all 0 / all [#NORMAL]).
    /// Special ids are `-1` when absent. Arguments are checked; [#read] reports the same problems as
    /// `GGUFFormatException`s naming the file.
    Vocabulary(String[] pieces, float[] scores, int[] types, int bos, int eos, int eot, int eom, int unknown,
               int padding, boolean addBos) {
        int n = pieces.length;
        this.pieces = pieces.clone();
        this.scores = scores == null ? new float[n] : scores.clone();
        this.types = types == null ? filled(n, NORMAL) : types.clone();
        if (this.scores.length != n || this.types.length != n) {
            throw new IllegalArgumentException("scores (" + this.scores.length + ") and types (" + this.types.length
                    + ") must have one entry per token (" + n + ")");
        }
        for (int i = 0; i < n; i++) {
            Objects.requireNonNull(this.pieces[i], "piece");
        }
        this.bos = checkSpecial("bos", bos, n);
        this.eos = checkSpecial("eos", eos, n);
        this.eot = checkSpecial("eot", eot, n);
        this.eom = checkSpecial("eom", eom, n);
        this.unknown = checkSpecial("unknown", unknown, n);
        this.padding = checkSpecial("padding", padding, n);
        this.addBos = addBos;

        if (n > MAX_TOKENS) {
            throw new IllegalArgumentException(n + " tokens, more than " + MAX_TOKENS);
        }
        this.index = new int[Math.max(16, Integer.highestOneBit(Math.max(1, n)) << 2)];
        this.indexShift = Integer.numberOfLeadingZeros(index.length - 1);
        for (int id = 0; id < n; id++) {
            insert(id);
        }

        this.endOfGeneration = new boolean[n];
        for (int special : new int[] {eos, eot, eom}) {
            if (special >= 0) {
                endOfGeneration[special] = true;
            }
        }
        int specialCount = 0;
        boolean userDefined = false;
        for (int id = 0; id < n; id++) {
            int type = this.types[id];
            if (type == CONTROL && END_OF_GENERATION_TEXTS.contains(this.pieces[id])) {
                endOfGeneration[id] = true;
            }
            if (isMatchedInText(id)) {
                specialCount++;
                userDefined |= type == USER_DEFINED;
            }
        }
        this.hasUserDefined = userDefined;
        Integer[] sorted = new Integer[specialCount];
        for (int id = 0, k = 0; id < n; id++) {
            if (isMatchedInText(id)) {
                sorted[k++] = id;
            }
        }
        Arrays.sort(sorted, (a, b) -> {
            int byText = this.pieces[a].compareTo(this.pieces[b]);
            return byText != 0 ? byText : Integer.compare(a, b);
        });
        this.specials = new int[specialCount];
        this.specialTexts = new String[specialCount];
        for (int k = 0; k < specialCount; k++) {
            specials[k] = sorted[k];
            specialTexts[k] = this.pieces[sorted[k]];
            char first = specialTexts[k].charAt(0);
            specialStarts[first >>> 6] |= 1L << first;
        }
    }

    /// Reads the vocabulary keys of a GGUF file. `spm` selects the defaults of SentencePiece vocabularies (BOS 1,
    /// EOS 2, unknown 0, add BOS), as llama.cpp does when the keys are absent; `bpeAddsBos` is the BOS default of
    /// byte-level vocabularies (set by the pre-tokenizer, true for Llama 3).
    ///
    /// @throws GGUFFormatException if arrays disagree in length, a special id lies outside the vocabulary, a
    ///         type code is unknown, or a key has the wrong type
    static Vocabulary read(Metadata metadata, boolean spm, boolean bpeAddsBos) throws GGUFFormatException {
        String source = metadata.source();
        String[] pieces = metadata.stringArray(KEY_TOKENS);
        int n = pieces.length;
        if (n == 0 || n > MAX_TOKENS) {
            throw new GGUFFormatException(source + ": '" + KEY_TOKENS + "' has " + n + " tokens, expected 1.."
                    + MAX_TOKENS);
        }
        float[] scores = metadata.contains(KEY_SCORES) ? metadata.floatArray(KEY_SCORES) : null;
        int[] types = metadata.contains(KEY_TOKEN_TYPE) ? metadata.intArray(KEY_TOKEN_TYPE) : null;
        if (scores != null && scores.length != n) {
            throw new GGUFFormatException(source + ": '" + KEY_SCORES + "' has " + scores.length
                    + " entries, expected " + n + " (one per token)");
        }
        if (types != null) {
            if (types.length != n) {
                throw new GGUFFormatException(source + ": '" + KEY_TOKEN_TYPE + "' has " + types.length
                        + " entries, expected " + n + " (one per token)");
            }
            for (int i = 0; i < n; i++) {
                // 0 is llama.cpp's "undefined"; treat it as normal rather than reject older files
                if (types[i] < 0 || types[i] > BYTE) {
                    throw new GGUFFormatException(source + ": token " + i + " has type " + types[i]
                            + ", expected 0.." + BYTE);
                }
            }
        }
        int bos = readId(metadata, KEY_BOS, spm ? 1 : -1, n);
        int eos = readId(metadata, KEY_EOS, spm ? 2 : -1, n);
        int eot = readId(metadata, KEY_EOT, -1, n);
        int eom = readId(metadata, KEY_EOM, -1, n);
        int unknown = readId(metadata, KEY_UNKNOWN, spm ? 0 : -1, n);
        int padding = readId(metadata, KEY_PADDING, -1, n);
        boolean addBos = metadata.bool(KEY_ADD_BOS, spm || bpeAddsBos);
        return new Vocabulary(pieces, scores, types, bos, eos, eot, eom, unknown, padding, addBos);
    }

    /// A special id: absent → `dflt` if it fits the vocabulary; `-1` or `0xFFFFFFFF` (GGUF's "none") → `-1`.
    private static int readId(Metadata metadata, String key, int dflt, int n) throws GGUFFormatException {
        if (!metadata.contains(key)) {
            return dflt < n ? dflt : -1;
        }
        long id = metadata.integer(key);
        if (id == -1 || id == 0xFFFF_FFFFL) {
            return -1;
        }
        if (id < 0 || id >= n) {
            throw new GGUFFormatException(metadata.source() + ": '" + key + "' is " + id + ", expected 0.." + (n - 1)
                    + " (the vocabulary has " + n + " tokens) or -1 for none");
        }
        return (int) id;
    }

    private static int checkSpecial(String name, int id, int n) {
        if (id < -1 || id >= n) {
            throw new IllegalArgumentException(name + " id " + id + " is outside the vocabulary (0.." + (n - 1) + ")");
        }
        return id;
    }

    private static int[] filled(int n, int value) {
        int[] a = new int[n];
        Arrays.fill(a, value);
        return a;
    }

    // ---- public accessors ----

    /// Number of tokens; ids run from 0 to `size() - 1`.
    public int size() {
        return pieces.length;
    }

    /// The token's text as stored in the file (SentencePiece spells spaces `▁`; byte-level BPE spells bytes as
    /// GPT-2's printable stand-ins such as `Ġ`).
    public String piece(int token) {
        return pieces[Objects.checkIndex(token, pieces.length)];
    }

    /// The token's score (SentencePiece merge priority; 0 when the file has none).
    public float score(int token) {
        return scores[Objects.checkIndex(token, scores.length)];
    }

    /// The token's GGUF type code, [#NORMAL] .. [#BYTE] (0 for "undefined").
    public int tokenType(int token) {
        return types[Objects.checkIndex(token, types.length)];
    }

    public boolean isControl(int token) {
        return tokenType(token) == CONTROL;
    }

    /// Whether generation stops at this token: the EOS, EOT or EOM id, or a control token whose text ends a turn
    /// in a known chat format (`<|eot_id|>`, `<|eom_id|>`, `<|im_end|>`, `<|end|>`, `</s>`, `<end_of_turn>`,
    /// `<|endoftext|>`).
    public boolean isEndOfGeneration(int token) {
        return endOfGeneration[Objects.checkIndex(token, endOfGeneration.length)];
    }

    /// Beginning-of-sequence id, or -1. ggml: `tokenizer.ggml.bos_token_id`.
    public int bos() {
        return bos;
    }

    /// End-of-sequence id, or -1.
    public int eos() {
        return eos;
    }

    /// End-of-turn id, or -1 when the file names none.
    public int eot() {
        return eot;
    }

    /// End-of-message id (Llama 3.1 tool calls), or -1.
    public int eom() {
        return eom;
    }

    /// Unknown-token id, or -1.
    public int unknown() {
        return unknown;
    }

    /// Padding id, or -1.
    public int padding() {
        return padding;
    }

    /// Whether a prompt should start with [#bos] (`tokenizer.ggml.add_bos_token`). Adding it is the caller's job.
    public boolean addBos() {
        return addBos;
    }

    // ---- package-private lookups for the tokenizers ----

    int type(int token) {
        return types[token];
    }

    /// The id of the piece equal to `text[start, end)`, or -1.
    int find(CharSequence text, int start, int end) {
        int h = 0;
        for (int i = start; i < end; i++) {
            h = 31 * h + text.charAt(i); // String.hashCode, so pieces hash with their cached hash
        }
        int mask = index.length - 1;
        for (int slot = slot(h); ; slot = (slot + 1) & mask) {
            int entry = index[slot];
            if (entry == 0) {
                return -1;
            }
            String piece = pieces[entry - 1];
            if (piece.length() == end - start && regionEquals(piece, text, start)) {
                return entry - 1;
            }
        }
    }

    int find(CharSequence text) {
        return find(text, 0, text.length());
    }

    /// The id of the piece spelled `piece(left) + piece(right)`, or -1. Hashes from the two pieces' cached hashes,
    /// so building the merge table never concatenates strings.
    int findConcatenation(int left, int right) {
        String a = pieces[left], b = pieces[right];
        int power = 1;
        for (int i = b.length(); i > 0; i--) {
            power *= 31;
        }
        int h = a.hashCode() * power + b.hashCode(); // String.hashCode of a + b
        int length = a.length() + b.length();
        int mask = index.length - 1;
        for (int slot = slot(h); ; slot = (slot + 1) & mask) {
            int entry = index[slot];
            if (entry == 0) {
                return -1;
            }
            String piece = pieces[entry - 1];
            if (piece.length() == length && piece.startsWith(a) && piece.startsWith(b, a.length())) {
                return entry - 1;
            }
        }
    }

    /// The byte a byte-token piece `<0xNN>` stands for, or -1 if the piece has another form.
    static int byteValue(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || piece.charAt(5) != '>') {
            return -1;
        }
        char high = piece.charAt(3), low = piece.charAt(4);
        return HexFormat.isHexDigit(high) && HexFormat.isHexDigit(low)
                ? HexFormat.fromHexDigit(high) << 4 | HexFormat.fromHexDigit(low) : -1;
    }

    private static boolean regionEquals(String piece, CharSequence text, int start) {
        for (int i = 0, n = piece.length(); i < n; i++) {
            if (piece.charAt(i) != text.charAt(start + i)) {
                return false;
            }
        }
        return true;
    }

    private int slot(int hash) {
        return (hash * 0x9E37_79B9) >>> indexShift;
    }

    /// A later duplicate piece replaces an earlier one, as llama.cpp's `token_to_id` map does.
    private void insert(int id) {
        String piece = pieces[id];
        int mask = index.length - 1;
        for (int slot = slot(piece.hashCode()); ; slot = (slot + 1) & mask) {
            int entry = index[slot];
            if (entry == 0 || pieces[entry - 1].equals(piece)) {
                index[slot] = id + 1;
                return;
            }
        }
    }

    /// Tokens whose text is cut out of raw input before tokenization: user-defined ones always, control and
    /// unknown ones only when the caller parses specials.
    private boolean isMatchedInText(int id) {
        int type = types[id];
        return (type == CONTROL || type == USER_DEFINED || type == UNKNOWN) && !pieces[id].isEmpty();
    }

    /// Finds the special tokens in `text`, scanning left to right and taking the longest token that
    /// starts at each position. User-defined tokens are always matched (as llama.cpp and Hugging Face do for
    /// added tokens); control and unknown tokens only if `parseSpecial`. Writes `(start, end, id)` triples to
    /// `out`. Inside `literalSpans` (sorted, disjoint `[start, end)` pairs) control tokens are not matched, and
    /// none that starts outside may reach into one: that text is quoted user input.
    void findSpecials(String text, boolean parseSpecial, int[] literalSpans, TokenBuffer out) {
        if (specials.length == 0 || (!parseSpecial && !hasUserDefined)) {
            return;
        }
        int length = text.length();
        int span = 0;
        for (int i = 0; i < length; ) {
            while (span < literalSpans.length && literalSpans[span + 1] <= i) {
                span += 2;
            }
            boolean literal = span < literalSpans.length && literalSpans[span] <= i;
            int limit = literal || span >= literalSpans.length ? length : literalSpans[span];
            int match = longestSpecialAt(text, i, parseSpecial && !literal, limit);
            if (match < 0) {
                i++;
            } else {
                int end = i + pieces[match].length();
                out.add(i);
                out.add(end);
                out.add(match);
                i = end;
            }
        }
    }

    /// The longest special token allowed at `text[at]`, or -1. A duplicate text resolves to its last id, as in
    /// llama.cpp's text-to-id map.
    private int longestSpecialAt(String text, int at, boolean parseSpecial, int limit) {
        char first = text.charAt(at);
        if ((specialStarts[first >>> 6] & 1L << first) == 0) {
            return -1;
        }
        int best = -1;
        // invariant: [low, high) holds the specials that start with text[at, at + d); any equal to it sort first
        int low = 0, high = specials.length;
        for (int d = 0; ; d++) {
            while (low < high && specialTexts[low].length() == d) {
                int id = specials[low++];
                if (types[id] == USER_DEFINED || (parseSpecial && at + d <= limit)) {
                    best = id;
                }
            }
            if (low == high || at + d == text.length()) {
                return best;
            }
            char c = text.charAt(at + d);
            low = firstWithCharAtLeast(low, high, d, c);
            high = firstWithCharAtLeast(low, high, d, c + 1);
        }
    }

    /// The first k in `[low, high)` whose special has a character of at least `c` at `d`; all there are longer
    /// than `d` and sorted by that character.
    private int firstWithCharAtLeast(int low, int high, int d, int c) {
        while (low < high) {
            int mid = (low + high) >>> 1;
            if (specialTexts[mid].charAt(d) < c) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        return low;
    }
}
