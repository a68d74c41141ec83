package dev.llamaj.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/// SentencePiece-style tokenization by score (`tokenizer.ggml.model = llama`), as llama.cpp's `llm_tokenizer_spm`.
///
/// Spaces become `▁` (U+2581) and, with `add_space_prefix`, one `▁` goes in front of the text (and after every
/// special token). The text is then cut into one symbol per code point, and adjacent symbols are merged
/// greedily: of all adjacent pairs whose concatenation is a vocabulary piece, the one whose piece has the highest
/// score merges first (ties: leftmost first), until no pair forms a piece. A symbol left outside the vocabulary is
/// spelled with byte tokens `<0xNN>` (byte fallback), or as the unknown token if the vocabulary has no byte
/// tokens.
///
/// Only normal and user-defined pieces take part in merges: control, unknown, byte and unused pieces are never
/// produced from text, as in SentencePiece itself, so typed `<s>` stays text. Merging costs O(n log n) in the
/// length of each run of text between special tokens, with a heap of packed `long` keys and no per-step
/// allocation.
final class SentencePieceTokenizer implements Tokenizer {
    static final String KEY_ADD_SPACE_PREFIX = "tokenizer.ggml.add_space_prefix";

    private static final char SPACE_MARK = '\u2581';
    /// llama.cpp shows an unknown token as `▅` (U+2585), so that lost text stays visible.
    private static final byte[] UNKNOWN_TEXT = "\u2585".getBytes(StandardCharsets.UTF_8);
    private static final byte[] NOTHING = {};

    private final Vocabulary vocabulary;
    private final boolean addSpacePrefix;
    /// The `<0xNN>` token of each byte value, or -1.
    private final int[] byteTokens = new int[256];

    SentencePieceTokenizer(Vocabulary vocabulary, boolean addSpacePrefix) {
        this.vocabulary = vocabulary;
        this.addSpacePrefix = addSpacePrefix;
        for (int b = 0; b < 256; b++) {
            byteTokens[b] = vocabulary.find(String.format("<0x%02X>", b));
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
        Segment segment = new Segment(text.length() + 1);
        // llama.cpp prefixes a space to the first run of text and to each run that follows a special token
        boolean afterSpecial = true;
        int position = 0;
        for (int s = 0; s <= specials.size(); s += 3) {
            int end = s < specials.size() ? specials.get(s) : text.length();
            if (end > position) {
                encodeRun(text, position, end, afterSpecial && addSpacePrefix, segment, out);
                afterSpecial = false;
            }
            if (s < specials.size()) {
                out.add(specials.get(s + 2));
                position = specials.get(s + 1);
                afterSpecial = true;
            }
        }
        return out.toArray();
    }

    /// Scratch for one run of text, sized for the whole input and reused across runs. Symbols form a doubly
    /// linked list over `text`; a merged-away symbol has `start = -1`.
    private static final class Segment {
        final StringBuilder text;
        final int[] start, end, prev, next, token, pairToken;
        final MergeQueue queue;

        Segment(int capacity) {
            text = new StringBuilder(capacity);
            start = new int[capacity];
            end = new int[capacity];
            prev = new int[capacity];
            next = new int[capacity];
            token = new int[capacity];
            pairToken = new int[capacity];
            queue = new MergeQueue(capacity);
        }
    }

    private void encodeRun(String source, int from, int to, boolean spacePrefix, Segment seg, TokenBuffer out) {
        StringBuilder text = seg.text;
        text.setLength(0);
        if (spacePrefix) {
            text.append(SPACE_MARK);
        }
        for (int i = from; i < to; i++) {
            char c = source.charAt(i);
            text.append(c == ' ' ? SPACE_MARK : c);
        }

        int n = 0;
        for (int i = 0, length = text.length(); i < length; n++) {
            int cp = Character.codePointAt(text, i);
            int width = Character.charCount(cp);
            seg.start[n] = i;
            seg.end[n] = i + width;
            seg.prev[n] = n - 1;
            seg.next[n] = i + width < length ? n + 1 : -1;
            seg.token[n] = mergeable(text, i, i + width);
            i += width;
        }

        MergeQueue queue = seg.queue;
        queue.clear();
        for (int i = 0; i + 1 < n; i++) {
            offerPair(seg, i);
        }
        while (!queue.isEmpty()) {
            long key = queue.pop();
            int left = MergeQueue.position(key);
            int merged = seg.pairToken[left];
            // skip keys of pairs that have changed since they were pushed (lazy deletion)
            if (seg.start[left] < 0 || merged < 0 || priority(merged) != MergeQueue.priority(key)) {
                continue;
            }
            int right = seg.next[left];
            seg.token[left] = merged;
            seg.end[left] = seg.end[right];
            seg.next[left] = seg.next[right];
            if (seg.next[right] >= 0) {
                seg.prev[seg.next[right]] = left;
            }
            seg.start[right] = -1;
            offerPair(seg, left);
            if (seg.prev[left] >= 0) {
                offerPair(seg, seg.prev[left]);
            }
        }

        for (int i = n > 0 ? 0 : -1; i >= 0; i = seg.next[i]) {
            if (seg.token[i] >= 0) {
                out.add(seg.token[i]);
            } else {
                byteFallback(Character.codePointAt(text, seg.start[i]), byteTokens, vocabulary.unknown(), out);
            }
        }
    }

    /// Records the piece formed by symbol `left` and its right neighbour, and queues it if there is one.
    private void offerPair(Segment seg, int left) {
        int right = seg.next[left];
        int merged = right < 0 ? -1 : mergeable(seg.text, seg.start[left], seg.end[right]);
        seg.pairToken[left] = merged;
        if (merged >= 0) {
            seg.queue.push(MergeQueue.key(priority(merged), left));
        }
    }

    /// The normal or user-defined token spelled `text[start, end)`, or -1.
    private int mergeable(CharSequence text, int start, int end) {
        int id = vocabulary.find(text, start, end);
        if (id < 0) {
            return -1;
        }
        int type = vocabulary.type(id);
        return type == Vocabulary.CONTROL || type == Vocabulary.UNKNOWN || type == Vocabulary.BYTE
                || type == Vocabulary.UNUSED ? -1 : id;
    }

    /// Higher scores merge first: map the score to an int whose signed order is the float order, then invert it
    /// so that the min-heap pops the highest score.
    private int priority(int token) {
        int bits = Float.floatToIntBits(vocabulary.score(token));
        return ~(bits ^ ((bits >> 31) & 0x7FFF_FFFF));
    }

    /// Spells a code point outside the vocabulary as its UTF-8 byte tokens (`byteTokens`, -1 where a byte has
    /// none), or as one `unknown` token when some byte has no token (a vocabulary without byte fallback); dropped if
    /// there is neither.
    static void byteFallback(int codePoint, int[] byteTokens, int unknown, TokenBuffer out) {
        int cp = Character.isSurrogate((char) codePoint) && codePoint <= 0xFFFF ? 0xFFFD : codePoint; // lone
        int length = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        for (int i = 0; i < length; i++) {
            if (byteTokens[utf8Byte(cp, length, i)] < 0) {
                if (unknown >= 0) {
                    out.add(unknown);
                }
                return;
            }
        }
        for (int i = 0; i < length; i++) {
            out.add(byteTokens[utf8Byte(cp, length, i)]);
        }
    }

    /// Byte `i` of the `length`-byte UTF-8 form of `cp`.
    private static int utf8Byte(int cp, int length, int i) {
        int shift = 6 * (length - 1 - i);
        if (i > 0) {
            return 0x80 | (cp >> shift & 0x3F);
        }
        return switch (length) {
            case 1 -> cp;
            case 2 -> 0xC0 | cp >> shift;
            case 3 -> 0xE0 | cp >> shift;
            default -> 0xF0 | cp >> shift;
        };
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
            default -> piece.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
        };
    }

    @Override
    public String decode(int[] tokens) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(tokens.length * 4);
        boolean first = true;
        for (int token : tokens) {
            byte[] bytes = bytes(token);
            if (bytes.length == 0) {
                continue;
            }
            // undo the space prefix that encoding added in front of the text
            int skip = first && addSpacePrefix && vocabulary.type(token) != Vocabulary.USER_DEFINED
                    && vocabulary.type(token) != Vocabulary.BYTE && bytes[0] == ' ' ? 1 : 0;
            out.write(bytes, skip, bytes.length - skip);
            first = false;
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
