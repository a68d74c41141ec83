package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.INT_LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/// `Q5_0` weights (ggml: `block_q5_0`, `GGML_TYPE_Q5_0`): blocks of 32 weights in 22 bytes.
///
/// ```
/// byte  0      2             6                       22
///       +------+-------------+-----------------------+
///       |  d   |  qh: u32 LE |  qs[0..15]            |    qs[j] = (low4(q[j+16]) << 4) | low4(q[j])
///       +------+-------------+-----------------------+    bit j of qh = bit 4 of q[j]
///       fp16 scale
/// w[j] = d × (q[j] − 16),   q[j] ∈ 0..31
/// ```
///
/// `dot` is scalar: per block it sums `(q − 16)·x`, then scales by `d`.
final class Q5_0 {
    static final int BLOCK = 32;
    static final int BYTES = 22;

    private Q5_0() {
    }

    /// As ggml's `dequantize_row_q5_0`: `n` weights (a multiple of 32) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            int qh = w.get(INT_LE, o + 2);
            int y = outOffset + i * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int qs = w.get(ValueLayout.JAVA_BYTE, o + 6 + j) & 0xFF;
                int xh0 = ((qh >>> j) << 4) & 0x10;
                int xh1 = (qh >>> (j + 12)) & 0x10;
                int x0 = ((qs & 0x0F) | xh0) - 16;
                int x1 = ((qs >>> 4) | xh1) - 16;
                out[y + j] = x0 * d;
                out[y + j + BLOCK / 2] = x1 * d;
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 32) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        float sum = 0;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            int qh = w.get(INT_LE, o + 2);
            int xb = xOffset + i * BLOCK;
            float qx = 0;
            for (int j = 0; j < BLOCK / 2; j++) {
                int qs = w.get(ValueLayout.JAVA_BYTE, o + 6 + j) & 0xFF;
                int x0 = ((qs & 0x0F) | (((qh >>> j) << 4) & 0x10)) - 16;
                int x1 = ((qs >>> 4) | ((qh >>> (j + 12)) & 0x10)) - 16;
                qx += x0 * x[xb + j] + x1 * x[xb + j + BLOCK / 2];
            }
            sum += Float.float16ToFloat(w.get(SHORT_LE, o)) * qx;
        }
        return sum;
    }

    /// Scalar reference for tests: dequantize, then a dot product accumulated in double.
    static double dotReference(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        float[] v = new float[n];
        dequantize(w, offset, v, 0, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += (double) v[i] * x[xOffset + i];
        }
        return sum;
    }

    /// `out[outOffset + r] = dot(row r, x)` for rows `[from, to)`.
    static void matVec(MemorySegment w, long rowBytes, int cols, float[] x, int xOffset,
                       float[] out, int outOffset, int from, int to) {
        for (int r = from; r < to; r++) {
            out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
        }
    }
}
