/// Compute kernels for llamaj: matrix-vector products over GGUF weight blocks and the small float helpers of the
/// forward pass. **Internal: no compatibility promise.** This is the only package that imports
/// `jdk.incubator.vector`.
///
/// [Kernels] is the single entry point; [Matrix] is a row-major view of a weight tensor in its GGUF encoding;
/// [Parallel] is the per-session worker pool that splits rows across threads. One package-private class per ggml
/// type (`F32`, `F16`, `BF16`, `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`, `Q2_K`, `Q3_K`, `Q4_K`, `Q5_K`, `Q6_K`),
/// named exactly after the [dev.llamaj.gguf.GGMLType] constant, holds the block layout, the scalar `dequantize`
/// (bit-exact with ggml's `dequantize_row_*`), the kernel `dot` and its scalar `dotReference`.
///
/// ```java
/// try (Parallel pool = new Parallel(2)) {
///     Matrix wq = new Matrix(GGMLType.Q4_K, segment, 2048, 2048);
///     Kernels.matVec(pool, wq, x, 0, q, 0);          // q = wq · x, rows split over 2 threads
/// }
/// ```
package dev.llamaj.engine.kernel;
