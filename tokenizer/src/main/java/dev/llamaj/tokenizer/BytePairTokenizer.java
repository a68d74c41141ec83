package dev.llamaj.tokenizer;

import dev.llamaj.gguf.GGUFFormatException;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/// GPT-2 byte-level BPE (`tokenizer.ggml.model = gpt2`), as llama.cpp's `llm_tokenizer_bpe`.
///
/// The [PreTokenizer] cuts the text into words. Each word's UTF-8 bytes become one symbol per byte, and adjacent
/// symbols merge by rank: the pair listed earliest in `tokenizer.ggml.merges` merges first (ties: leftmost),
/// until no listed pair remains. Pieces spell bytes with GPT-2's printable stand-ins: the 188 printable Latin-1
/// bytes stand for themselves, and the other 68 (controls, space, DEL, NBSP, soft hyphen) map in order to
/// U+0100..U+0143, so a space is `Ġ` (U+0120) and a newline `Ċ` (U+010A).
///
/// Some vocabularies use the same machinery without the byte mapping (Gemma converted from `tokenizer.json`,
/// where the pre-tokenizer is not [PreTokenizer#byteLevel]): a SentencePiece model written as BPE. Then spaces are
/// written `▁` (U+2581), each character is a symbol whose piece is the character itself, and a character left
/// outside the vocabulary after merging is spelled as the `<0xNN>` pieces of its UTF-8 bytes (byte fallback).
///
/// Merge ranks live in an open-addressing table keyed by the two token ids packed into a `long`, holding the rank
/// and the id of the merged piece; merging then works on ids alone. The Llama 3 vocabulary (128,256 tokens,
/// 280,147 merges) builds in well under a second. A merge whose parts or result are not vocabulary pieces could
/// never apply to pieces and is skipped.
final class BytePairTokenizer implements Tokenizer {
    static final String KEY_PRE = "tokenizer.ggml.pre";
    static final String KEY_MERGES = "tokenizer.ggml.merges";

    private static final byte[] NOTHING = {};
    private static final byte[] UNKNOWN_TEXT = "\u2585".getBytes(StandardCharsets.UTF_8);
    private static final char SPACE_MARK = '\u2581';
    private static final long EMPTY = -1L;
    /// Bounds the merge table (3 arrays of 1.5 × this many entries); real vocabularies have well under a million.
    static final int MAX_MERGES = 1 << 28;

    /// GPT-2's byte-to-unicode table and its inverse (-1 for characters that stand for no byte).
    static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[256 + 68];

    static {
        Arrays.fill(CHAR_TO_BYTE, -1);
        int shifted = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + shifted++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private final Vocabulary vocabulary;
    private final PreTokenizer preTokenizer;
    private final boolean byteLevel;
    /// The token of each byte: its one-character piece (byte-level) or its `<0xNN>` piece; -1 if there is none.
    private final int[] byteTokens = new int[256];
    private final long[] mergeKeys;
    private final int[] mergeRanks;
    private final int[] mergeResults;
    private final int mergeShift;

    /// @param merges `"left right"` lines, best rank first
    /// @param source the file name, for messages
    /// @throws GGUFFormatException if a merge line is not two non-empty pieces separated by a space
    BytePairTokenizer(Vocabulary vocabulary, String[] merges, PreTokenizer preTokenizer, String source)
            throws GGUFFormatException {
        if (merges.length > MAX_MERGES) {
            throw new GGUFFormatException(source + ": '" + KEY_MERGES + "' has " + merges.length
                    + " entries, more than llamaj supports (" + MAX_MERGES + ")");
        }
        this.vocabulary = vocabulary;
        this.preTokenizer = preTokenizer;
        this.byteLevel = preTokenizer.byteLevel();
        for (int b = 0; b < 256; b++) {
            byteTokens[b] = vocabulary.find(byteLevel ? String.valueOf(BYTE_TO_CHAR[b]) : "<0x%02X>".formatted(b));
        }

        // a power of two at least 1.5 times the merge count: short linear probes, 8 MB for Llama 3
        int bits = Math.max(4, 64 - Long.numberOfLeadingZeros(Math.max(1, merges.length + merges.length / 2L - 1)));
        mergeShift = 64 - bits;
        mergeKeys = new long[1 << bits];
        mergeRanks = new int[1 << bits];
        mergeResults = new int[1 << bits];
        Arrays.fill(mergeKeys, EMPTY);
        for (int rank = 0; rank < merges.length; rank++) {
            String line = merges[rank];
            // search from 1, so that a piece that is itself a space could be a left part (as llama.cpp does)
            int space = line.indexOf(' ', 1);
            if (space < 0 || space == line.length() - 1) {
                throw new GGUFFormatException(source + ": '" + KEY_MERGES + "' entry " + rank + " \""
                        + abbreviate(line) + "\" is not two pieces separated by a space");
            }
            int left = vocabulary.find(line, 0, space);
            int right = left < 0 ? -1 : vocabulary.find(line, space + 1, line.length());
            int result = right < 0 ? -1 : vocabulary.findConcatenation(left, right);
            if (result >= 0) {
                putMerge(pack(left, right), rank, result);
            }
        }
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 40) + "...";
    }

    private static long pack(int left, int right) {
        return (long) left << 32 | right;
    }

    private int slot(long key) {
        return (int) ((key * 0x9E37_79B9_7F4A_7C15L) >>> mergeShift);
    }

    /// Keeps the first (best) rank of a pair listed twice.
    private void putMerge(long key, int rank, int result) {
        int mask = mergeKeys.length - 1;
        for (int i = slot(key); ; i = (i + 1) & mask) {
            if (mergeKeys[i] == EMPTY) {
                mergeKeys[i] = key;
                mergeRanks[i] = rank;
                mergeResults[i] = result;
                return;
            }
            if (mergeKeys[i] == key) {
                return;
            }
        }
    }

    /// The table slot of the merge of `left` and `right`, or -1.
    private int findMerge(int left, int right) {
        long key = pack(left, right);
        int mask = mergeKeys.length - 1;
        for (int i = slot(key); ; i = (i + 1) & mask) {
            long k = mergeKeys[i];
            if (k == key) {
                return i;
            }
            if (k == EMPTY) {
                return -1;
            }
        }
    }

    @Override
    public Vocabulary vocabulary() {
        return vocabulary;
    }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        return encode(text, parseSpecial, new int[0]);
    }

    @Override
    public int[] encode(String text, int[] literalSpans) {
        return encode(text, true, literalSpans);
    }

    private int[] encode(String text, boolean parseSpecial, int[] literalSpans) {
        TokenBuffer specials = new TokenBuffer(0);
        vocabulary.findSpecials(text, parseSpecial, literalSpans, specials);
        TokenBuffer out = new TokenBuffer(text.length() / 3 + 4);
        Word word = new Word();
        TokenBuffer bounds = new TokenBuffer(64);
        int position = 0;
        for (int s = 0; s <= specials.size(); s += 3) {
            int end = s < specials.size() ? specials.get(s) : text.length();
            if (end > position) {
                bounds.clear();
                preTokenizer.split(text, position, end, bounds);
                for (int w = 0; w < bounds.size(); w += 2) {
                    encodeWord(text, bounds.get(w), bounds.get(w + 1), word, out);
                }
            }
            if (s < specials.size()) {
                out.add(specials.get(s + 2));
                position = specials.get(s + 1);
            }
        }
        return out.toArray();
    }

    /// Scratch for one word: its symbols as a doubly linked list (a merged-away symbol has `token = -2`), with
    /// where each starts in `mapped` (the word as pieces spell it), grown to the longest word seen and reused.
    private static final class Word {
        final StringBuilder mapped = new StringBuilder(64);
        int[] token = new int[0], start, prev, next, pairSlot;
        final MergeQueue queue = new MergeQueue(64);

        void ensureCapacity(int n) {
            if (token.length < n) {
                int capacity = Math.max(n, 2 * token.length);
                token = new int[capacity];
                start = new int[capacity];
                prev = new int[capacity];
                next = new int[capacity];
                pairSlot = new int[capacity];
            }
        }

        /// Appends symbol `n`, spelled `mapped[from, mapped.length())`, and returns the symbol count.
        int add(int n, int from, int token) {
            this.token[n] = token;
            start[n] = from;
            prev[n] = n - 1;
            next[n] = -1;
            if (n > 0) {
                next[n - 1] = n;
            }
            return n + 1;
        }
    }

    private void encodeWord(String text, int from, int to, Word word, TokenBuffer out) {
        word.ensureCapacity(3 * (to - from)); // UTF-8 needs at most 3 bytes per char (4 per surrogate pair)
        word.mapped.setLength(0);
        int n = byteLevel ? addBytes(text, from, to, word) : addCharacters(text, from, to, word);

        if (n > 1 && (preTokenizer.ignoreMerges() || preTokenizer.wholeNewlines() && isNewlines(text, from, to))) {
            int whole = vocabulary.find(word.mapped);
            if (whole >= 0 && isTextToken(whole)) {
                out.add(whole);
                return;
            }
        }

        MergeQueue queue = word.queue;
        queue.clear();
        for (int i = 0; i + 1 < n; i++) {
            offerPair(word, i);
        }
        while (!queue.isEmpty()) {
            long key = queue.pop();
            int left = MergeQueue.position(key);
            int slot = word.pairSlot[left];
            // skip keys of pairs that have changed since they were pushed (lazy deletion)
            if (word.token[left] == -2 || slot < 0 || mergeRanks[slot] != MergeQueue.priority(key)) {
                continue;
            }
            int right = word.next[left];
            word.token[left] = mergeResults[slot];
            word.next[left] = word.next[right];
            if (word.next[right] >= 0) {
                word.prev[word.next[right]] = left;
            }
            word.token[right] = -2;
            offerPair(word, left);
            if (word.prev[left] >= 0) {
                offerPair(word, word.prev[left]);
            }
        }

        for (int i = n > 0 ? 0 : -1; i >= 0; i = word.next[i]) {
            int token = word.token[i];
            if (token >= 0) {
                out.add(token);
            } else if (!byteLevel) {
                // a symbol that never merged is one character
                SentencePieceTokenizer.byteFallback(Character.codePointAt(word.mapped, word.start[i]), byteTokens,
                        vocabulary.unknown(), out);
            } else if (vocabulary.unknown() >= 0) {
                out.add(vocabulary.unknown()); // the vocabulary lacks this byte's piece
            }
        }
    }

    /// One symbol per UTF-8 byte of `text[from, to)`, spelled with GPT-2's stand-ins.
    private int addBytes(String text, int from, int to, Word word) {
        int n = 0;
        for (int i = from; i < to; ) {
            int cp = Character.codePointAt(text, i);
            i += Character.charCount(cp);
            if (Character.isSurrogate((char) cp) && cp <= 0xFFFF) {
                cp = 0xFFFD; // a lone surrogate has no UTF-8 form
            }
            if (cp < 0x80) {
                n = addByte(cp, n, word);
            } else if (cp < 0x800) {
                n = addByte(0xC0 | cp >> 6, n, word);
                n = addByte(0x80 | cp & 0x3F, n, word);
            } else if (cp < 0x10000) {
                n = addByte(0xE0 | cp >> 12, n, word);
                n = addByte(0x80 | cp >> 6 & 0x3F, n, word);
                n = addByte(0x80 | cp & 0x3F, n, word);
            } else {
                n = addByte(0xF0 | cp >> 18, n, word);
                n = addByte(0x80 | cp >> 12 & 0x3F, n, word);
                n = addByte(0x80 | cp >> 6 & 0x3F, n, word);
                n = addByte(0x80 | cp & 0x3F, n, word);
            }
        }
        return n;
    }

    private int addByte(int b, int n, Word word) {
        word.mapped.append(BYTE_TO_CHAR[b]);
        return word.add(n, word.mapped.length() - 1, byteTokens[b]);
    }

    /// One symbol per character of `text[from, to)` (a surrogate pair is one character), spaces written `▁`.
    private int addCharacters(String text, int from, int to, Word word) {
        StringBuilder mapped = word.mapped;
        int n = 0;
        for (int i = from; i < to; ) {
            int start = mapped.length();
            char c = text.charAt(i++);
            mapped.append(c == ' ' ? SPACE_MARK : c);
            if (Character.isHighSurrogate(c) && i < to && Character.isLowSurrogate(text.charAt(i))) {
                mapped.append(text.charAt(i++));
            }
            n = word.add(n, start, vocabulary.find(mapped, start, mapped.length()));
        }
        return n;
    }

    private static boolean isNewlines(String text, int from, int to) {
        for (int i = from; i < to; i++) {
            if (text.charAt(i) != '\n') {
                return false;
            }
        }
        return true;
    }

    /// Records the merge of symbol `left` with its right neighbour, and queues it if one is listed.
    private void offerPair(Word word, int left) {
        int right = word.next[left];
        int a = word.token[left];
        int slot = right < 0 || a < 0 || word.token[right] < 0 ? -1 : findMerge(a, word.token[right]);
        word.pairSlot[left] = slot;
        if (slot >= 0) {
            word.queue.push(MergeQueue.key(mergeRanks[slot], left));
        }
    }

    /// Tokens that text may turn into: not control or unknown, so typed `<|eot_id|>` stays text.
    private boolean isTextToken(int token) {
        int type = vocabulary.type(token);
        return type != Vocabulary.CONTROL && type != Vocabulary.UNKNOWN;
    }

    @Override
    public byte[] bytes(int token) {
        String piece = vocabulary.piece(token);
        return switch (vocabulary.type(token)) {
            case Vocabulary.CONTROL, Vocabulary.UNUSED -> NOTHING;
            case Vocabulary.UNKNOWN -> UNKNOWN_TEXT.clone();
            case Vocabulary.USER_DEFINED -> piece.getBytes(StandardCharsets.UTF_8);
            case Vocabulary.BYTE -> {
                int b = Vocabulary.byteValue(piece);
                yield b >= 0 ? new byte[] {(byte) b} : piece.getBytes(StandardCharsets.UTF_8);
            }
            default -> byteLevel ? unmap(piece) : unescape(piece);
        };
    }

    /// A piece of a vocabulary without byte mapping: `<0xNN>` is that byte, `▁` a space.
    private static byte[] unescape(String piece) {
        int b = Vocabulary.byteValue(piece);
        return b >= 0 ? new byte[] {(byte) b} : piece.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
    }

    /// Turns a piece's byte stand-ins back into bytes; a character that stands for no byte keeps its UTF-8 form.
    private static byte[] unmap(String piece) {
        byte[] out = new byte[piece.length()];
        int n = 0;
        for (int i = 0; i < piece.length(); i++) {
            char c = piece.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b >= 0) {
                out[n++] = (byte) b;
            } else {
                int cp = Character.codePointAt(piece, i);
                byte[] utf8 = Character.toString(cp).getBytes(StandardCharsets.UTF_8);
                i += Character.charCount(cp) - 1;
                out = Arrays.copyOf(out, out.length + utf8.length);
                System.arraycopy(utf8, 0, out, n, utf8.length);
                n += utf8.length;
            }
        }
        return n == out.length ? out : Arrays.copyOf(out, n);
    }

    @Override
    public String decode(int[] tokens) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(tokens.length * 4);
        for (int token : tokens) {
            out.writeBytes(bytes(token));
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
