package dev.llamaj.engine.kernel;

/// The normalised Walsh-Hadamard transform, in place: what a quantized key/value cache applies to queries, keys and
/// values before it quantizes them (llama.cpp's "attention rotation", pull request 21038).
///
/// `H_n` is the Sylvester Hadamard matrix of order `n` (a power of two: `H_1 = [1]`, `H_2n = [[H_n, H_n], [H_n,
/// -H_n]]`, entry `(i, j)` = `(-1)^popcount(i & j)`) divided by `sqrt(n)`. It is orthogonal and symmetric, so it is
/// its own inverse (`H · H = I`) and keeps dot products: `(H q) · (H k) = q · k`. What it changes is the spread of a
/// vector over its elements: a key with a few large channels (the outliers of real models) becomes one whose energy
/// is shared by every element of the transformed block, so a 32-element quantization block no longer spends its
/// scale on one outlier and leaves its other elements a few levels.
///
/// The fast transform computes `H_n x` with `n log2 n` additions instead of the `n²` multiplications of the matrix:
/// scale by `1 / sqrt(n)` first, then `log2 n` rounds of butterflies `(u, v) → (u + v, u - v)` on element pairs
/// `len` apart, `len = 1, 2, 4, ...` (the order and the rounding of ggml's CPU `fwht` operator, which llama.cpp
/// runs for its rotation, so both engines store the same blocks).
public final class Hadamard {
    private Hadamard() {
    }

    /// Replaces `x[off .. off + n)` with `H_n` times it. `n` is a power of two.
    public static void transform(float[] x, int off, int n) {
        float scale = 1f / (float) Math.sqrt(n); // as ggml: 1.0f / sqrtf(n), in float
        for (int i = off; i < off + n; i++) {
            x[i] *= scale;
        }
        for (int len = 1; len < n; len <<= 1) {
            for (int i = off; i < off + n; i += 2 * len) {
                for (int j = i; j < i + len; j++) {
                    float u = x[j];
                    float v = x[j + len];
                    x[j] = u + v;
                    x[j + len] = u - v;
                }
            }
        }
    }

    /// Applies [#transform] to each of the `length / block` consecutive blocks of `block` elements from `off`: the
    /// block-diagonal rotation llama.cpp applies to a row of heads (every head is a whole number of blocks).
    /// Applying it twice gives back the input, to rounding.
    public static void rotate(float[] x, int off, int length, int block) {
        for (int b = off; b < off + length; b += block) {
            transform(x, b, block);
        }
    }

    /// Whether `n` is a power of two (1, 2, 4, ...): the sizes the transform takes.
    public static boolean isPowerOfTwo(int n) {
        return n > 0 && (n & (n - 1)) == 0;
    }
}
