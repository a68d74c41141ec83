package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Attention;

/// Keys and values of every past position, per layer, for one session; the forward pass stores into it and attends
/// over it through its methods, so its layout is known here and in [Attention] only.
///
/// Entries are IEEE half-precision bit patterns, as in llama.cpp's default F16 cache: the model's keys and values
/// rounded once, at half the memory and half the bytes read per token of a float cache. Keys are stored transposed,
/// in blocks of [Attention#BLOCK] positions per key/value head (the layout of [Attention#keyOffset]), so attention
/// scores a block of positions with plain vector operations; values keep one row of `kvDim` halves per position
/// (`[position][kvHead][headSize]`). It is sized by the session's context length, never by the model's maximum (a
/// 128K-token cache of an 8B model would need 16 GiB).
///
/// **Sliding-window layers** (Gemma) see only the last `window` positions, so their cache is a ring that does not
/// grow with the context: `ring = window + batch` slots (a batch stores all its tokens before attending, and its
/// first token still needs the `window - 1` positions before it), position `p` in slot `p % ring`. Each entry is
/// written twice, at its slot and `ring` slots further, so any `window` consecutive positions are one contiguous
/// run of slots and the attention kernel reads them unchanged. A layer keeps the plain layout when the ring would
/// not be smaller.
final class KVCache {
    /// Bytes per cached key or value element.
    static final int ELEMENT_BYTES = Short.BYTES;

    private final short[][] keys;
    private final short[][] values;
    final int contextLength;
    /// The context length rounded up to whole key blocks: the longest attention row of any layer.
    final int paddedLength;
    /// Per layer: the ring's slots, or 0 for the plain layout.
    private final int[] ring;
    /// Per layer: positions (or doubled ring slots) rounded up to whole key blocks.
    private final int[] padded;
    private final int[] window;
    private final int kvDim;
    private final int kvHeads;
    private final int headSize;

    /// A cache of `contextLength` positions for a model whose batches hold at most `batch` tokens.
    KVCache(ModelConfig c, int contextLength, int batch) {
        this.contextLength = contextLength;
        this.paddedLength = Attention.paddedLength(contextLength);
        this.kvDim = c.kvDim();
        this.kvHeads = c.headCountKv();
        this.headSize = c.headSize();
        int layers = c.blockCount();
        ring = new int[layers];
        padded = new int[layers];
        window = new int[layers];
        keys = new short[layers][];
        values = new short[layers][];
        for (int l = 0; l < layers; l++) {
            window[l] = c.window(l);
            ring[l] = ringSlots(c.window(l), contextLength, batch);
            int positions = ring[l] > 0 ? 2 * ring[l] : contextLength;
            padded[l] = Attention.paddedLength(positions);
            long perLayer = (long) padded[l] * kvDim;
            if (perLayer > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("a context of " + contextLength + " tokens needs a key/value "
                        + "cache of " + perLayer + " entries per layer, more than a Java array holds");
            }
            keys[l] = new short[(int) perLayer];
            values[l] = new short[positions * kvDim];
        }
    }

    /// The ring of a layer with `window`, or 0 when the plain layout is no larger.
    private static int ringSlots(int window, int contextLength, int batch) {
        if (window == Integer.MAX_VALUE) {
            return 0;
        }
        long slots = (long) window + batch;
        return 2 * slots < contextLength ? (int) slots : 0;
    }

    /// Bytes of memory a cache of `contextLength` tokens takes for this model with batches of `batch` tokens.
    static long byteSize(ModelConfig c, int contextLength, int batch) {
        long total = 0;
        for (int l = 0; l < c.blockCount(); l++) {
            int r = ringSlots(c.window(l), contextLength, batch);
            int positions = r > 0 ? 2 * r : contextLength;
            total += ((long) Attention.paddedLength(positions) + positions) * c.kvDim();
        }
        return total * ELEMENT_BYTES;
    }

    /// Stores the key and value of `layer` at `pos`: element `i` of the key at `k[kOff + i · stride]`, of the value
    /// at `v[vOff + i · stride]` (`stride` 1 for a vector, the tile for a tiled batch).
    void store(int layer, int pos, float[] k, int kOff, float[] v, int vOff, int stride) {
        int r = ring[layer];
        if (r == 0) {
            storeAt(layer, pos, k, kOff, v, vOff, stride);
        } else {
            storeAt(layer, pos % r, k, kOff, v, vOff, stride);
            storeAt(layer, pos % r + r, k, kOff, v, vOff, stride);
        }
    }

    private void storeAt(int layer, int slot, float[] k, int kOff, float[] v, int vOff, int stride) {
        short[] layerKeys = keys[layer];
        for (int h = 0; h < kvHeads; h++) {
            Attention.storeKey(layerKeys, h, slot, headSize, padded[layer], k, kOff + h * headSize * stride, stride);
        }
        Attention.storeValues(values[layer], slot * kvDim, v, vOff, stride, kvDim);
    }

    /// [Attention#attend] of `group` query heads at `q[qOff ..]` against key/value head `kvHead` of `layer`, over
    /// positions `[from, n)`; `att` holds `group` rows of [#paddedLength].
    void attend(int layer, float[] q, int qOff, int group, int kvHead, int from, int n, float scale, float softcap,
                float[] att, int attOff, float[] out, int outOff) {
        int r = ring[layer];
        int first = from;
        int end = n;
        if (r > 0) { // the window is one run of the doubled ring
            first = from % r;
            end = first + (n - from);
        }
        Attention.attend(q, qOff, group, headSize, keys[layer], kvHead, padded[layer], values[layer],
                kvHead * headSize, kvDim, first, end, scale, softcap, att, attOff, out, outOff);
    }

    /// Copies the entries of the first `positions` positions of `source`, a cache of the same model. A ring layer
    /// is copied whole and needs a ring of the same size (the same context length and batch).
    ///
    /// @throws IllegalArgumentException if this cache is too short or a ring layer differs
    void copyFrom(KVCache source, int positions) {
        if (positions > contextLength) {
            throw new IllegalArgumentException("cannot copy " + positions + " positions into a context of "
                    + contextLength);
        }
        for (int l = 0; l < keys.length; l++) {
            if (ring[l] != source.ring[l]) {
                throw new IllegalArgumentException("the sliding-window caches differ (context " + contextLength
                        + " and " + source.contextLength + "); copy between sessions of the same context length");
            }
            if (ring[l] > 0) {
                System.arraycopy(source.keys[l], 0, keys[l], 0, keys[l].length);
                System.arraycopy(source.values[l], 0, values[l], 0, values[l].length);
                continue;
            }
            // keys: per head, whole blocks of positions, each head's blocks contiguous from its start
            int run = Attention.paddedLength(positions) * headSize;
            for (int h = 0; h < kvHeads; h++) {
                System.arraycopy(source.keys[l], Attention.keyOffset(h, 0, headSize, source.padded[l]), keys[l],
                        Attention.keyOffset(h, 0, headSize, padded[l]), run);
            }
            System.arraycopy(source.values[l], 0, values[l], 0, positions * kvDim);
        }
    }

    /// The shortest context that a session at `position` can go back to, keeping `length` tokens: `length` itself,
    /// unless a ring has since overwritten positions the shorter context still needs (its window before
    /// `length`); then 0, and the caller computes the tokens again.
    int rewindTarget(int position, int length) {
        for (int l = 0; l < ring.length; l++) {
            int r = ring[l];
            // after `position` tokens the ring holds positions [position - r, position); the next token at
            // `length` needs [length - window + 1, length)
            if (r > 0 && length > 0 && length - window[l] + 1 < position - r) {
                return 0;
            }
        }
        return length;
    }
}
