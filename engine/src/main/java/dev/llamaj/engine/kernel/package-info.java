/// Compute kernels for llamaj: matrix-vector products (generation) and matrix-matrix products (prompt batches) over
/// GGUF weight blocks, attention over the key/value cache, and the small float helpers of the forward pass.
/// **Internal: no compatibility promise.** This is the only package that imports `jdk.incubator.vector`.
///
/// [Kernels] is the single entry point for products and helpers ([MatMul] holds the blocked matrix-matrix product,
/// [Attention] the cache layout and attention kernels); [Matrix] is a row-major view of a weight tensor in its GGUF
/// encoding, or repacked at load time ([Repack]); [Parallel] is the per-session worker pool that splits rows across
/// threads; [WarmUp] gets the kernels compiled at load. One package-private class per ggml
/// type (`F32`, `F16`, `BF16`, `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`, `Q2_K`, `Q3_K`, `Q4_K`, `Q5_K`, `Q6_K`),
/// named exactly after the [dev.llamaj.gguf.GGMLType] constant, holds the block layout, the scalar `dequantize`
/// (bit-exact with ggml's `dequantize_row_*`), its vector twin `unpack` for the matrix-matrix panels (same bits),
/// the kernel `dot`, the row kernel `matVec` and the scalar `dotReference`.
///
/// ```java
/// try (Parallel pool = new Parallel(2)) {
///     Matrix wq = new Matrix(GGMLType.Q4_K, segment, 2048, 2048);
///     Kernels.matVec(pool, wq, x, 0, q, 0);          // q = wq · x, rows split over 2 threads
///     Kernels.matMul(pool, wq, xs, 0, qs, 0, 100);   // 100 tokens at once, tiled layout (Kernels.tiledIndex)
/// }
/// ```
package dev.llamaj.engine.kernel;
