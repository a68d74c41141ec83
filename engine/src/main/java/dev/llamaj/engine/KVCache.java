package dev.llamaj.engine;

/// Keys and values of every past position, per layer, for one session.
///
/// Layout per layer: `[position][kvHead][headSize]`, so the keys of one head at consecutive positions are
/// `kvDim` floats apart and a whole position is written with one copy. It is sized by the session's context
/// length, never by the model's maximum (a 128K-token cache of an 8B model would need 16 GiB).
final class KVCache {
    final float[][] keys;
    final float[][] values;
    final int contextLength;
    final int kvDim;

    KVCache(LlamaConfig c, int contextLength) {
        this.contextLength = contextLength;
        this.kvDim = c.kvDim();
        long perLayer = (long) contextLength * kvDim;
        if (perLayer > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a context of " + contextLength + " tokens needs a key/value cache of "
                    + perLayer + " floats per layer, more than a Java array holds (lower --context)");
        }
        keys = new float[c.blockCount()][(int) perLayer];
        values = new float[c.blockCount()][(int) perLayer];
    }

    /// Rounds to half precision, as llama.cpp's default F16 cache stores keys and values; its attention also
    /// converts the query and the softmax weights to F16 before the products with them. Matching that rounding
    /// is what makes scores (perplexity, greedy choices) agree with llama.cpp's to the fourth decimal.
    static float round(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    /// Bytes of memory a cache of `contextLength` tokens takes for this model.
    static long byteSize(LlamaConfig c, int contextLength) {
        return 2L * c.blockCount() * contextLength * c.kvDim() * Float.BYTES;
    }
}
