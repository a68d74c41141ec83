package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/// `Q4_1` weights (ggml: `block_q4_1`, `GGML_TYPE_Q4_1`): blocks of 32 weights in 20 bytes.
///
/// ```
/// byte  0      2      4                       20
///       +------+------+-----------------------+
///       |  d   |  m   |  qs[0..15]            |    qs[j] = (q[j+16] << 4) | q[j]
///       +------+------+-----------------------+
///       fp16 scale, fp16 minimum
/// w[j] = d × q[j] + m,   q[j] ∈ 0..15
/// ```
///
/// `dot` is scalar: per block it sums `q·x` and `x`, then adds `d·Σq·x + m·Σx`.
final class Q4_1 {
    static final int BLOCK = 32;
    static final int BYTES = 20;

    private Q4_1() {
    }

    /// As ggml's `dequantize_row_q4_1`: `n` weights (a multiple of 32) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float m = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            int y = outOffset + i * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int qs = w.get(ValueLayout.JAVA_BYTE, o + 4 + j) & 0xFF;
                int x0 = qs & 0x0F;
                int x1 = qs >>> 4;
                out[y + j] = x0 * d + m;
                out[y + j + BLOCK / 2] = x1 * d + m;
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
            int xb = xOffset + i * BLOCK;
            float qx = 0;
            float xs = 0;
            for (int j = 0; j < BLOCK / 2; j++) {
                int qs = w.get(ValueLayout.JAVA_BYTE, o + 4 + j) & 0xFF;
                float x0 = x[xb + j];
                float x1 = x[xb + j + BLOCK / 2];
                qx += (qs & 0x0F) * x0 + (qs >>> 4) * x1;
                xs += x0 + x1;
            }
            sum += Float.float16ToFloat(w.get(SHORT_LE, o)) * qx + Float.float16ToFloat(w.get(SHORT_LE, o + 2)) * xs;
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
