package dev.llamaj.engine.grammar;

import dev.llamaj.tokenizer.Tokenizer;
import dev.llamaj.tokenizer.Vocabulary;

import java.util.Arrays;
import java.util.Map;
import java.util.WeakHashMap;

/// The vocabulary as a byte trie, for masking: tokens that share a prefix share the work of matching it, and a
/// prefix the grammar refuses rules out every token below it at once.
///
/// Only tokens that stand for text take part: their bytes are what the detokenizer prints (SentencePiece's `▁` as
/// a space, `<0xAB>` byte tokens as that byte, GPT-2's byte-level stand-ins as the bytes they map). Control,
/// unknown and unused tokens, and tokens of no bytes, are never allowed; end-of-generation tokens are listed
/// apart.
///
/// The nodes are stored in depth-first order in flat arrays: node `i`'s children follow it, its subtree ends at
/// `skip[i]`, and the walk needs no recursion: the state at a node is the state at depth `depth[i] - 1` (its
/// parent, the last node seen at that depth) stepped on `label[i]`. Built once per tokenizer and cached
/// (weakly, so a closed model's trie goes with it). Immutable and thread-safe.
final class TokenTrie {
    private static final Map<Tokenizer, TokenTrie> CACHE = new WeakHashMap<>();

    final int vocabularySize;
    final int nodes;
    final byte[] label;
    final int[] depth;
    final int[] skip;
    /// Tokens ending at node `i`: `tokens[tokenStart[i] .. tokenStart[i + 1])`.
    final int[] tokenStart;
    final int[] tokens;
    final int maxDepth;
    /// The ASCII bytes found in node `i`'s subtree (its own label included), as a 128-bit set in two longs, and
    /// whether a byte of 0x80 or more is found there: lets the walk accept a whole subtree at once from a state
    /// that every one of those bytes leads back to.
    final long[] subtreeLow;
    final long[] subtreeHigh;
    final boolean[] subtreeNonAscii;
    /// Whether every path into node `i`'s subtree, read from the root, is well-formed UTF-8 so far (whole
    /// characters, then possibly the valid start of one): such a subtree's non-ASCII bytes need no walking from
    /// a state that every character leads back to.
    final boolean[] subtreeWellFormed;
    /// The bytes of each text token; `null` for tokens that are never allowed.
    final byte[][] bytes;
    final int[] endOfGeneration;
    /// The tokens of the trie (text tokens), one bit per token id.
    final long[] textTokens;

    static TokenTrie of(Tokenizer tokenizer) {
        synchronized (CACHE) {
            return CACHE.computeIfAbsent(tokenizer, TokenTrie::new);
        }
    }

    private TokenTrie(Tokenizer tokenizer) {
        Vocabulary vocabulary = tokenizer.vocabulary();
        int n = vocabulary.size();
        this.vocabularySize = n;
        this.bytes = new byte[n][];
        int[] eog = new int[n];
        int eogCount = 0, textCount = 0;
        long totalBytes = 0;
        for (int id = 0; id < n; id++) {
            if (vocabulary.isEndOfGeneration(id)) {
                eog[eogCount++] = id;
                continue;
            }
            int type = vocabulary.tokenType(id);
            if (type == Vocabulary.CONTROL || type == Vocabulary.UNKNOWN || type == Vocabulary.UNUSED) {
                continue;
            }
            byte[] b = tokenizer.bytes(id);
            if (b.length > 0) {
                bytes[id] = b;
                textCount++;
                totalBytes += b.length;
            }
        }
        this.endOfGeneration = Arrays.copyOf(eog, eogCount);
        this.textTokens = new long[(n + 63) >>> 6];
        for (int id = 0; id < n; id++) {
            if (bytes[id] != null) {
                textTokens[id >>> 6] |= 1L << id;
            }
        }

        Integer[] order = new Integer[textCount];
        for (int id = 0, k = 0; id < n; id++) {
            if (bytes[id] != null) {
                order[k++] = id;
            }
        }
        Arrays.sort(order, (a, b) -> {
            int c = Arrays.compareUnsigned(bytes[a], bytes[b]);
            return c != 0 ? c : Integer.compare(a, b);
        });

        // in sorted order each token adds the nodes past its common prefix with the previous one
        int capacity = (int) Math.min(Integer.MAX_VALUE - 8, totalBytes + 1);
        byte[] labels = new byte[capacity];
        int[] depths = new int[capacity];
        int[] tokenList = new int[textCount];
        int[] endNode = new int[textCount];
        int count = 1, deepest = 0;
        byte[] previous = new byte[0];
        for (int k = 0; k < textCount; k++) {
            byte[] b = bytes[order[k]];
            int common = Arrays.mismatch(previous, b);
            if (common < 0) {
                common = b.length; // a duplicate: it ends at the node just made
            }
            for (int d = common; d < b.length; d++) {
                labels[count] = b[d];
                depths[count] = d + 1;
                count++;
            }
            tokenList[k] = order[k];
            endNode[k] = count - 1;
            deepest = Math.max(deepest, b.length);
            previous = b;
        }
        this.nodes = count;
        this.label = Arrays.copyOf(labels, count);
        this.depth = Arrays.copyOf(depths, count);
        this.tokens = tokenList;
        this.maxDepth = deepest;
        // tokens are sorted as their end nodes were made: node i's are the run of those ending at i
        this.tokenStart = new int[count + 1];
        for (int i = 0, k = 0; i <= count; i++) {
            while (k < textCount && endNode[k] < i) {
                k++;
            }
            tokenStart[i] = k;
        }
        this.skip = new int[count];
        int[] parent = new int[count];
        int[] open = new int[deepest + 2];
        int top = 0;
        for (int i = 0; i < count; i++) {
            while (top > 0 && depths[open[top - 1]] >= depths[i]) {
                skip[open[--top]] = i;
            }
            parent[i] = top > 0 ? open[top - 1] : -1;
            open[top++] = i;
        }
        while (top > 0) {
            skip[open[--top]] = count;
        }
        this.subtreeLow = new long[count];
        this.subtreeHigh = new long[count];
        this.subtreeNonAscii = new boolean[count];
        this.subtreeWellFormed = new boolean[count];
        int[] utf8 = new int[count];
        for (int i = 1; i < count; i++) { // parents come before their children
            int before = parent[i] <= 0 ? 0 : utf8[parent[i]];
            utf8[i] = before < 0 ? -1 : nextUtf8(before, label[i] & 0xFF);
        }
        java.util.Arrays.fill(subtreeWellFormed, true);
        for (int i = count - 1; i >= 1; i--) {
            if (utf8[i] < 0) {
                subtreeWellFormed[i] = false;
            }
            subtreeWellFormed[parent[i]] &= subtreeWellFormed[i];
        }
        for (int i = count - 1; i >= 1; i--) { // children come after their parent: fold them upwards
            int b = label[i] & 0xFF;
            if (b >= 0x80) {
                subtreeNonAscii[i] = true;
            } else if (b < 64) {
                subtreeLow[i] |= 1L << b;
            } else {
                subtreeHigh[i] |= 1L << b;
            }
            int up = parent[i];
            subtreeLow[up] |= subtreeLow[i];
            subtreeHigh[up] |= subtreeHigh[i];
            subtreeNonAscii[up] |= subtreeNonAscii[i];
        }
    }

    /// UTF-8 well-formedness one byte at a time (RFC 3629's table: no overlong forms, surrogates or code points
    /// past U+10FFFF). A state is 0 between characters, otherwise the continuation bytes still due (bits 16+)
    /// and the range the next one must be in (bits 8-15 and 0-7); -1 once the bytes cannot be UTF-8.
    static int nextUtf8(int state, int b) {
        if (state == 0) {
            if (b < 0x80) {
                return 0;
            }
            if (b >= 0xC2 && b <= 0xDF) {
                return 1 << 16 | 0x80 << 8 | 0xBF;
            }
            if (b >= 0xE0 && b <= 0xEF) {
                return 2 << 16 | (b == 0xE0 ? 0xA0 : 0x80) << 8 | (b == 0xED ? 0x9F : 0xBF);
            }
            if (b >= 0xF0 && b <= 0xF4) {
                return 3 << 16 | (b == 0xF0 ? 0x90 : 0x80) << 8 | (b == 0xF4 ? 0x8F : 0xBF);
            }
            return -1;
        }
        int due = state >>> 16, lo = state >>> 8 & 0xFF, hi = state & 0xFF;
        if (b < lo || b > hi) {
            return -1;
        }
        return due == 1 ? 0 : (due - 1) << 16 | 0x80 << 8 | 0xBF;
    }
}
