package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Attention;
import dev.llamaj.engine.kernel.Hadamard;
import dev.llamaj.engine.kernel.QuantizedKV;

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
///
/// **Quantized types** ([KVCacheType#Q8_0], [KVCacheType#Q4_0], for keys and values independently) keep one row of
/// `kvDim` elements per position in ggml's blocks (the layout of [QuantizedKV]), keys too: a block holds 32
/// consecutive elements of one position, so keys cannot be transposed by position. The ring works unchanged on
/// rows. Attention then runs in three phases (scores, softmax, weighted values), each reading its side's type.
///
/// **Rotation** ([LoadOptions#withCacheRotation], on by default, as in llama.cpp since its pull request 21038): a
/// quantized side of a model whose heads are a multiple of 64 elements is stored rotated by a normalised
/// Walsh-Hadamard matrix `H` ([Hadamard]), block-diagonal over each head. Keys: the cache stores `H k` and
/// attention scores `H q` against it, which equals `q · k` in exact arithmetic (`H` is orthogonal) while a key's
/// outlier channels are spread over the whole block before quantization, so `Q4_0` keys lose much less. Values:
/// the cache stores `H v`, the weighted sum is then `H` times the one of the plain values, and `H` applied again
/// to the output undoes it (`H · H = I`). The blocks are llama.cpp's: for keys the largest power of two that
/// divides the head size (a whole head of 64, 128 or 256), for values always 64 (smaller blocks measured better
/// on values). A half-precision side is never rotated, so an `f16` cache is bit for bit what it was.
final class KVCache {
    /// How keys and values are stored.
    final KVCacheType typeK;
    final KVCacheType typeV;
    /// Per layer, by type: half-precision keys (transposed) and values, or quantized rows; the others null.
    private final short[][] keys;
    private final short[][] values;
    private final byte[][] qKeys;
    private final byte[][] qValues;
    /// Bytes of one position's quantized key or value row.
    private final int rowBytesK;
    private final int rowBytesV;
    /// Elements per block of the rotation of keys (and queries) and of values; 0 where that side is stored as
    /// computed (see [#rotationBlocks]).
    final int rotationK;
    final int rotationV;
    /// The key and the value of the position being stored, rotated (only where that side is rotated).
    private final float[] rotatedK;
    private final float[] rotatedV;
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

    /// A cache of `contextLength` positions for a model whose batches hold at most `batch` tokens, storing keys as
    /// `typeK` and values as `typeV` (checked by [#check]), rotated where `rotation` allows ([#rotationBlocks]).
    KVCache(ModelConfig c, int contextLength, int batch, KVCacheType typeK, KVCacheType typeV, boolean rotation) {
        check(c, typeK, typeV);
        this.typeK = typeK;
        this.typeV = typeV;
        this.rowBytesK = (int) typeK.bytes(c.kvDim());
        this.rowBytesV = (int) typeV.bytes(c.kvDim());
        int[] blocks = rotationBlocks(c, typeK, typeV, rotation);
        this.rotationK = blocks[0];
        this.rotationV = blocks[1];
        this.rotatedK = rotationK > 0 ? new float[c.kvDim()] : null;
        this.rotatedV = rotationV > 0 ? new float[c.kvDim()] : null;
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
        qKeys = new byte[layers][];
        qValues = new byte[layers][];
        for (int l = 0; l < layers; l++) {
            window[l] = c.window(l);
            ring[l] = ringSlots(c.window(l), contextLength, batch);
            int positions = ring[l] > 0 ? 2 * ring[l] : contextLength;
            padded[l] = Attention.paddedLength(positions);
            long perLayer = Math.max((long) padded[l] * kvDim, (long) positions * Math.max(rowBytesK, rowBytesV));
            if (perLayer > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("a context of " + contextLength + " tokens needs a key/value "
                        + "cache of " + perLayer + " entries per layer, more than a Java array holds");
            }
            if (typeK == KVCacheType.F16) {
                keys[l] = new short[padded[l] * kvDim];
            } else {
                qKeys[l] = new byte[positions * rowBytesK];
            }
            if (typeV == KVCacheType.F16) {
                values[l] = new short[positions * kvDim];
            } else {
                qValues[l] = new byte[positions * rowBytesV];
            }
        }
    }

    /// Checks that this model's heads suit the quantized types: a head's slice of a row must not straddle two
    /// blocks of 32, so the head size must be a multiple of 32 (llama.cpp's rule), or divide 32 with rows (`kvDim`)
    /// a multiple of 32 (tiny models such as stories260K, whose heads of 8 llama.cpp refuses).
    ///
    /// @throws IllegalArgumentException naming the type and the head size
    static void check(ModelConfig c, KVCacheType typeK, KVCacheType typeV) {
        for (KVCacheType t : new KVCacheType[] {typeK, typeV}) {
            int hs = c.headSize();
            int block = t.blockSize;
            boolean fits = hs % block == 0 || (block % hs == 0 && c.kvDim() % block == 0);
            if (!fits) {
                throw new IllegalArgumentException("a " + t.cliName() + " " + (t == typeK ? "key" : "value")
                        + " cache needs a head size that is a multiple of " + block + ", but this model's heads have "
                        + hs + " elements (use f16)");
            }
        }
    }

    /// The rotation blocks of keys and of values (`{k, v}`, 0 for a side stored as computed), as llama.cpp
    /// chooses them: a side is rotated when `rotation` is on, its type is quantized and the head size is a multiple
    /// of 64 (so never for `f16`, nor for heads of 8 or 32 such as stories260K's); keys by the largest power of two
    /// dividing the head size, values by 64.
    static int[] rotationBlocks(ModelConfig c, KVCacheType typeK, KVCacheType typeV, boolean rotation) {
        int hs = c.headSize();
        boolean heads = rotation && hs % 64 == 0;
        int blockK = 0;
        if (heads && typeK != KVCacheType.F16) {
            blockK = 64;
            while (hs % (2 * blockK) == 0) {
                blockK *= 2;
            }
        }
        int blockV = heads && typeV != KVCacheType.F16 ? 64 : 0;
        return new int[] {blockK, blockV};
    }

    /// The ring of a layer with `window`, or 0 when the plain layout is no larger.
    private static int ringSlots(int window, int contextLength, int batch) {
        if (window == Integer.MAX_VALUE) {
            return 0;
        }
        long slots = (long) window + batch;
        return 2 * slots < contextLength ? (int) slots : 0;
    }

    /// Bytes of memory a cache of `contextLength` tokens takes for this model with batches of `batch` tokens, keys
    /// stored as `typeK` and values as `typeV`.
    static long byteSize(ModelConfig c, int contextLength, int batch, KVCacheType typeK, KVCacheType typeV) {
        long total = 0;
        for (int l = 0; l < c.blockCount(); l++) {
            int r = ringSlots(c.window(l), contextLength, batch);
            int positions = r > 0 ? 2 * r : contextLength;
            // half-precision keys are padded to whole blocks of positions (the transposed layout)
            int keyPositions = typeK == KVCacheType.F16 ? Attention.paddedLength(positions) : positions;
            total += keyPositions * typeK.bytes(c.kvDim()) + positions * typeV.bytes(c.kvDim());
        }
        return total;
    }

    /// Bytes per cached position: keys and values of every layer.
    static long bytesPerPosition(ModelConfig c, KVCacheType typeK, KVCacheType typeV) {
        return c.blockCount() * (typeK.bytes(c.kvDim()) + typeV.bytes(c.kvDim()));
    }

    /// Stores the key and value of `layer` at `pos`: element `i` of the key at `k[kOff + i · stride]`, of the value
    /// at `v[vOff + i · stride]` (`stride` 1 for a vector, the tile for a tiled batch).
    void store(int layer, int pos, float[] k, int kOff, float[] v, int vOff, int stride) {
        int kStride = stride;
        int vStride = stride;
        if (rotationK > 0) { // a rotated side is quantized from its rotated copy
            rotated(k, kOff, stride, rotatedK, rotationK);
            k = rotatedK;
            kOff = 0;
            kStride = 1;
        }
        if (rotationV > 0) {
            rotated(v, vOff, stride, rotatedV, rotationV);
            v = rotatedV;
            vOff = 0;
            vStride = 1;
        }
        int r = ring[layer];
        if (r == 0) {
            storeAt(layer, pos, k, kOff, kStride, v, vOff, vStride);
        } else {
            storeAt(layer, pos % r, k, kOff, kStride, v, vOff, vStride);
            storeAt(layer, pos % r + r, k, kOff, kStride, v, vOff, vStride);
        }
    }

    /// Copies the row at `x[off + i · stride]` into `out` and rotates it by blocks of `block`.
    private void rotated(float[] x, int off, int stride, float[] out, int block) {
        for (int i = 0; i < kvDim; i++) {
            out[i] = x[off + i * stride];
        }
        Hadamard.rotate(out, 0, kvDim, block);
    }

    private void storeAt(int layer, int slot, float[] k, int kOff, int kStride, float[] v, int vOff, int vStride) {
        switch (typeK) {
            case F16 -> {
                for (int h = 0; h < kvHeads; h++) {
                    Attention.storeKey(keys[layer], h, slot, headSize, padded[layer], k,
                            kOff + h * headSize * kStride, kStride);
                }
            }
            case Q8_0 -> QuantizedKV.storeQ8_0(k, kOff, kStride, kvDim, qKeys[layer], slot * rowBytesK);
            case Q4_0 -> QuantizedKV.storeQ4_0(k, kOff, kStride, kvDim, qKeys[layer], slot * rowBytesK);
        }
        switch (typeV) {
            case F16 -> Attention.storeValues(values[layer], slot * kvDim, v, vOff, vStride, kvDim);
            case Q8_0 -> QuantizedKV.storeQ8_0(v, vOff, vStride, kvDim, qValues[layer], slot * rowBytesV);
            case Q4_0 -> QuantizedKV.storeQ4_0(v, vOff, vStride, kvDim, qValues[layer], slot * rowBytesV);
        }
    }

    /// [Attention#attend] of `group` query heads at `q[qOff ..]` against key/value head `kvHead` of `layer`, over
    /// positions `[from, n)`; `att` holds `group` rows of [#paddedLength]. With rotated keys the query heads are
    /// rotated in place (the caller's query is spent), as the keys were; with rotated values the output is rotated
    /// back.
    void attend(int layer, float[] q, int qOff, int group, int kvHead, int from, int n, float scale, float softcap,
                float[] att, int attOff, float[] out, int outOff) {
        int r = ring[layer];
        int first = from;
        int end = n;
        if (r > 0) { // the window is one run of the doubled ring
            first = from % r;
            end = first + (n - from);
        }
        if (typeK == KVCacheType.F16 && typeV == KVCacheType.F16) {
            Attention.attend(q, qOff, group, headSize, keys[layer], kvHead, padded[layer], values[layer],
                    kvHead * headSize, kvDim, first, end, scale, softcap, att, attOff, out, outOff);
            return;
        }
        int e0 = kvHead * headSize; // the head's slice of a row
        int stride = padded[layer]; // of the rows of `att`, as the half-precision kernel has them
        if (rotationK > 0) {
            Hadamard.rotate(q, qOff, group * headSize, rotationK);
        }
        switch (typeK) {
            case F16 -> Attention.scoresHalf(q, qOff, group, headSize, keys[layer], kvHead, padded[layer], first, end,
                    scale, att, attOff);
            case Q8_0 -> QuantizedKV.scoresQ8_0(q, qOff, group, headSize, qKeys[layer], rowBytesK, e0, first, end,
                    scale, att, attOff, stride);
            case Q4_0 -> QuantizedKV.scoresQ4_0(q, qOff, group, headSize, qKeys[layer], rowBytesK, e0, first, end,
                    scale, att, attOff, stride);
        }
        Attention.normalize(att, attOff, group, stride, first, end, softcap, typeV == KVCacheType.F16);
        switch (typeV) {
            case F16 -> Attention.valuesHalf(att, attOff, group, stride, headSize, values[layer], e0, kvDim,
                    first, end, out, outOff);
            case Q8_0 -> QuantizedKV.valuesQ8_0(att, attOff, stride, group, qValues[layer], rowBytesV, e0,
                    first, end, headSize, out, outOff);
            case Q4_0 -> QuantizedKV.valuesQ4_0(att, attOff, stride, group, qValues[layer], rowBytesV, e0,
                    first, end, headSize, out, outOff);
        }
        if (rotationV > 0) {
            Hadamard.rotate(out, outOff, group * headSize, rotationV);
        }
    }

    /// Copies the entries of the first `positions` positions of `source`, a cache of the same model and types. A
    /// ring layer is copied whole and needs a ring of the same size (the same context length and batch).
    ///
    /// @throws IllegalArgumentException if this cache is too short, the types or rotations differ or a ring layer
    ///                                  differs
    void copyFrom(KVCache source, int positions) {
        if (source.typeK != typeK || source.typeV != typeV) {
            throw new IllegalArgumentException("cannot copy a " + source.typeK.cliName() + "/"
                    + source.typeV.cliName() + " key/value cache into a " + typeK.cliName() + "/" + typeV.cliName()
                    + " one");
        }
        if (source.rotationK != rotationK || source.rotationV != rotationV) {
            throw new IllegalArgumentException("cannot copy a key/value cache between a rotated and an unrotated "
                    + "one (models loaded with different cache rotation options)");
        }
        if (positions > contextLength) {
            throw new IllegalArgumentException("cannot copy " + positions + " positions into a context of "
                    + contextLength);
        }
        for (int l = 0; l < keys.length; l++) {
            if (ring[l] != source.ring[l]) {
                throw new IllegalArgumentException("the sliding-window caches differ (context " + contextLength
                        + " and " + source.contextLength + "); copy between sessions of the same context length");
            }
            boolean whole = ring[l] > 0;
            if (keys[l] != null) {
                if (whole) {
                    System.arraycopy(source.keys[l], 0, keys[l], 0, keys[l].length);
                } else { // per head, whole blocks of positions, each head's blocks contiguous from its start
                    int run = Attention.paddedLength(positions) * headSize;
                    for (int h = 0; h < kvHeads; h++) {
                        System.arraycopy(source.keys[l], Attention.keyOffset(h, 0, headSize, source.padded[l]),
                                keys[l], Attention.keyOffset(h, 0, headSize, padded[l]), run);
                    }
                }
            } else {
                System.arraycopy(source.qKeys[l], 0, qKeys[l], 0, whole ? qKeys[l].length : positions * rowBytesK);
            }
            if (values[l] != null) {
                System.arraycopy(source.values[l], 0, values[l], 0, whole ? values[l].length : positions * kvDim);
            } else {
                System.arraycopy(source.qValues[l], 0, qValues[l], 0,
                        whole ? qValues[l].length : positions * rowBytesV);
            }
        }
    }

    /// Whether every layer keeps the plain layout (position `p` at row `p`), so that a run of positions can be
    /// saved and loaded by [#saveBlock] and [#loadBlock]. A sliding-window ring stores position `p` at two slots
    /// that later positions overwrite: its entries cannot be lent to a session at another point of its ring.
    boolean plainLayout() {
        for (int r : ring) {
            if (r > 0) {
                return false;
            }
        }
        return true;
    }

    /// Bytes that [#saveBlock] copies: [Attention#BLOCK] positions of every layer.
    static long blockBytes(ModelConfig c, KVCacheType typeK, KVCacheType typeV) {
        return Attention.BLOCK * bytesPerPosition(c, typeK, typeV);
    }

    /// The entries of [Attention#BLOCK] positions of every layer, in the cache's own encoding (half-precision
    /// keys in their transposed block, values and quantized keys as rows), so that saving and loading are plain
    /// array copies and loaded entries are the very bytes that were saved. Immutable once filled.
    static final class Block {
        /// Per layer: half-precision keys (`kvHeads` runs of `headSize × BLOCK`) then values (`BLOCK` rows), when
        /// that side is F16; quantized rows otherwise, in `quantized`.
        final short[] half;
        final byte[] quantized;

        private Block(int halves, int bytes) {
            half = new short[halves];
            quantized = new byte[bytes];
        }
    }

    /// Copies positions `[start, start + BLOCK)` (`start` a multiple of [Attention#BLOCK], the run within the
    /// context) of every layer into a new [Block]. Needs [#plainLayout].
    Block saveBlock(int start) {
        return transferBlock(start, null);
    }

    /// Writes `block`, saved by a cache of the same model and types (any context length), at positions
    /// `[start, start + BLOCK)`. Needs [#plainLayout].
    void loadBlock(int start, Block block) {
        transferBlock(start, block);
    }

    /// One walk for both directions, so that the saved layout and the loaded one cannot drift apart: with `into`
    /// null, copies out of this cache into a new block; otherwise from `into` into this cache.
    private Block transferBlock(int start, Block into) {
        if (start % Attention.BLOCK != 0 || start + Attention.BLOCK > contextLength || !plainLayout()) {
            throw new IllegalArgumentException("no whole block of positions at " + start);
        }
        int n = Attention.BLOCK;
        int layers = ring.length;
        int halfKeys = typeK == KVCacheType.F16 ? kvHeads * headSize * n : 0;
        int halfValues = typeV == KVCacheType.F16 ? n * kvDim : 0;
        int quantKeys = typeK == KVCacheType.F16 ? 0 : n * rowBytesK;
        int quantValues = typeV == KVCacheType.F16 ? 0 : n * rowBytesV;
        boolean save = into == null;
        Block b = save ? new Block(layers * (halfKeys + halfValues), layers * (quantKeys + quantValues)) : into;
        int h16 = 0;
        int q8 = 0;
        for (int l = 0; l < layers; l++) {
            if (halfKeys > 0) { // a head's block of positions is one contiguous run: [d][position in block]
                int run = headSize * n;
                for (int h = 0; h < kvHeads; h++) {
                    int at = Attention.keyOffset(h, start, headSize, padded[l]);
                    copy(save, keys[l], at, b.half, h16, run);
                    h16 += run;
                }
            } else {
                copy(save, qKeys[l], start * rowBytesK, b.quantized, q8, quantKeys);
                q8 += quantKeys;
            }
            if (halfValues > 0) {
                copy(save, values[l], start * kvDim, b.half, h16, halfValues);
                h16 += halfValues;
            } else {
                copy(save, qValues[l], start * rowBytesV, b.quantized, q8, quantValues);
                q8 += quantValues;
            }
        }
        return b;
    }

    /// Copies `length` elements between the cache array `cache` at `at` and the block array `block` at `off`.
    private static void copy(boolean save, Object cache, int at, Object block, int off, int length) {
        if (save) {
            System.arraycopy(cache, at, block, off, length);
        } else {
            System.arraycopy(block, off, cache, at, length);
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
