package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Attention;

/// Keys and values of every past position, per layer, for one session.
///
/// Entries are IEEE half-precision bit patterns, as in llama.cpp's default F16 cache: the model's keys and values
/// rounded once, at half the memory and half the bytes read per token of a float cache. Keys are stored transposed, in blocks of [Attention#BLOCK] positions per key/value head (the layout of
/// [Attention#keyOffset]), so attention scores a block of positions with plain vector operations; values keep one
/// row of `kvDim` halves per position (`[position][kvHead][headSize]`). It is sized by the session's context
/// length, never by the model's maximum (a 128K-token cache of an 8B model would need 16 GiB).
final class KVCache {
    /// Bytes per cached key or value element.
    static final int ELEMENT_BYTES = Short.BYTES;

    final short[][] keys;
    final short[][] values;
    final int contextLength;
    /// The context length rounded up to whole key blocks.
    final int paddedLength;
    final int kvDim;

    KVCache(LlamaConfig c, int contextLength) {
        this.contextLength = contextLength;
        this.paddedLength = Attention.paddedLength(contextLength);
        this.kvDim = c.kvDim();
        long perLayer = (long) paddedLength * kvDim;
        if (perLayer > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a context of " + contextLength + " tokens needs a key/value cache of "
                    + perLayer + " entries per layer, more than a Java array holds (lower --context)");
        }
        keys = new short[c.blockCount()][(int) perLayer];
        values = new short[c.blockCount()][contextLength * kvDim];
    }

    /// Bytes of memory a cache of `contextLength` tokens takes for this model.
    static long byteSize(LlamaConfig c, int contextLength) {
        return ((long) Attention.paddedLength(contextLength) + contextLength) * c.blockCount() * c.kvDim()
                * ELEMENT_BYTES;
    }
}
