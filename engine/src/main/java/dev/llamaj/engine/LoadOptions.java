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
public record LoadOptions(int threads, int batchSize, int minBatch, boolean repack, boolean warmUp) {

    public LoadOptions {
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

    /// One thread per available processor, batches of 512, automatic minimum batch, repacking and warm-up on.
    public static LoadOptions defaults() {
        return new LoadOptions(Runtime.getRuntime().availableProcessors(), 512, 0, true, true);
    }

    public LoadOptions withThreads(int threads) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp);
    }

    public LoadOptions withBatchSize(int batchSize) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp);
    }

    public LoadOptions withMinBatch(int minBatch) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp);
    }

    public LoadOptions withRepack(boolean repack) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp);
    }

    public LoadOptions withWarmUp(boolean warmUp) {
        return new LoadOptions(threads, batchSize, minBatch, repack, warmUp);
    }
}
