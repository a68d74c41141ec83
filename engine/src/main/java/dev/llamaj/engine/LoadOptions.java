package dev.llamaj.engine;

/// How [LlamaModel#load] prepares a model, and how its sessions compute.
///
/// ```java
/// LlamaModel.load(path, LoadOptions.defaults().withThreads(4).withRepack(false));
/// ```
///
/// @param threads   compute threads of each session (1 or more)
/// @param batchSize most prompt tokens processed in one batch (rounded down to a multiple of 32, at least 32);
///                  larger batches need more memory per session
/// @param minBatch  fewest prompt tokens worth a batch rather than one token at a time; 0 chooses from the weight
///                  type (see [Transformer#minBatch])
/// @param repack    rewrite the weights at load time into the kernels' layouts (faster, costs memory and load
///                  time; off runs the file's bytes where they are mapped)
/// @param warmUp    run every kernel on small shapes at load, so the first tokens are not slowed by compilation
/// @param cacheTypeK how every session's key/value cache stores keys ([KVCacheType#F16] by default)
/// @param cacheTypeV how it stores values
/// @param cacheRotation whether a quantized cache stores keys and values rotated by a Hadamard matrix where the
///                  head size allows, as llama.cpp does by default (see [#withCacheRotation])
public record LoadOptions(int threads, int batchSize, int minBatch, boolean repack, boolean warmUp,
                          KVCacheType cacheTypeK, KVCacheType cacheTypeV, boolean cacheRotation) {

    public LoadOptions {
        java.util.Objects.requireNonNull(cacheTypeK, "cacheTypeK");
        java.util.Objects.requireNonNull(cacheTypeV, "cacheTypeV");
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be 1 or more, got " + threads);
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be 1 or more, got " + batchSize);
        }
        if (minBatch < 0) {
            throw new IllegalArgumentException("minimum batch must be 0 (automatic) or more, got " + minBatch);
        }
    }

    /// Options with a half-precision key/value cache.
    public LoadOptions(int threads, int batchSize, int minBatch, boolean repack, boolean warmUp) {
        this(threads, batchSize, minBatch, repack, warmUp, KVCacheType.F16, KVCacheType.F16, true);
    }

    /// One thread per available processor, batches of 512, automatic minimum batch, repacking and warm-up on, a
    /// half-precision key/value cache.
    public static LoadOptions defaults() {
        return new LoadOptions(Runtime.getRuntime().availableProcessors(), 512, 0, true, true);
    }

    public LoadOptions withThreads(int threads) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, cacheTypeV, cacheRotation);
    }

    public LoadOptions withBatchSize(int batchSize) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, cacheTypeV, cacheRotation);
    }

    public LoadOptions withMinBatch(int minBatch) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, cacheTypeV, cacheRotation);
    }

    public LoadOptions withRepack(boolean repack) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, cacheTypeV, cacheRotation);
    }

    public LoadOptions withWarmUp(boolean warmUp) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, cacheTypeV, cacheRotation);
    }

    /// Keys of every session's cache stored as `type` (a quantized type needs a suitable head size: checked at load).
    public LoadOptions withCacheTypeK(KVCacheType type) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, type, cacheTypeV, cacheRotation);
    }

    /// Values of every session's cache stored as `type`. Unlike llama.cpp, a quantized value cache does not need
    /// flash attention: the attention kernels read every type directly.
    public LoadOptions withCacheTypeV(KVCacheType type) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, type, cacheRotation);
    }

    /// Whether a quantized cache is rotated (on by default). On, where a quantized side's head size is a multiple of
    /// 64, queries and keys (or values, with the attention output rotated back) are multiplied by a normalised
    /// Walsh-Hadamard matrix before the cache quantizes them, as llama.cpp does since its pull request 21038: the
    /// scores are unchanged in exact arithmetic, outlier channels are spread over the block, and `Q4_0` keys lose
    /// much less. Off stores the plain blocks (llama.cpp's `LLAMA_ATTN_ROT_DISABLE=1`). Without effect on an `f16`
    /// cache and on heads that are not a multiple of 64.
    public LoadOptions withCacheRotation(boolean rotation) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp, cacheTypeK, cacheTypeV, rotation);
    }
}
