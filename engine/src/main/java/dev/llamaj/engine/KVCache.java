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
final class KVCache {
    /// Bytes per cached key or value element.
    static final int ELEMENT_BYTES = Short.BYTES;

    private final short[][] keys;
    private final short[][] values;
    final int contextLength;
    /// The context length rounded up to whole key blocks: the length of an attention row.
    final int paddedLength;
    private final int kvDim;
    private final int kvHeads;
    private final int headSize;

    KVCache(ModelConfig c, int contextLength) {
        this.contextLength = contextLength;
        this.paddedLength = Attention.paddedLength(contextLength);
        this.kvDim = c.kvDim();
        this.kvHeads = c.headCountKv();
        this.headSize = c.headSize();
        long perLayer = (long) paddedLength * kvDim;
        if (perLayer > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a context of " + contextLength + " tokens needs a key/value cache of "
                    + perLayer + " entries per layer, more than a Java array holds");
        }
        keys = new short[c.blockCount()][(int) perLayer];
        values = new short[c.blockCount()][contextLength * kvDim];
    }

    /// Bytes of memory a cache of `contextLength` tokens takes for this model.
    static long byteSize(ModelConfig c, int contextLength) {
        return ((long) Attention.paddedLength(contextLength) + contextLength) * c.blockCount() * c.kvDim()
                * ELEMENT_BYTES;
    }

    /// Stores the key and value of `layer` at `pos`: element `i` of the key at `k[kOff + i · stride]`, of the value
    /// at `v[vOff + i · stride]` (`stride` 1 for a vector, the tile for a tiled batch).
    void store(int layer, int pos, float[] k, int kOff, float[] v, int vOff, int stride) {
        short[] layerKeys = keys[layer];
        for (int h = 0; h < kvHeads; h++) {
            Attention.storeKey(layerKeys, h, pos, headSize, paddedLength, k, kOff + h * headSize * stride, stride);
        }
        Attention.storeValues(values[layer], pos * kvDim, v, vOff, stride, kvDim);
    }

    /// [Attention#attend] of `group` query heads at `q[qOff ..]` against key/value head `kvHead` of `layer`, over
    /// positions `[from, n)`; `att` holds `group` rows of [#paddedLength].
    void attend(int layer, float[] q, int qOff, int group, int kvHead, int from, int n, float scale, float softcap,
                float[] att, int attOff, float[] out, int outOff) {
        Attention.attend(q, qOff, group, headSize, keys[layer], kvHead, paddedLength, values[layer],
                kvHead * headSize, kvDim, from, n, scale, softcap, att, attOff, out, outOff);
    }
}
