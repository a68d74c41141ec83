package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/// `Q5_K` weights (ggml: `block_q5_K`, `GGML_TYPE_Q5_K`): super-blocks of 256 weights in 176 bytes.
///
/// ```
/// byte  0      2      4               16                 48                          176
///       +------+------+---------------+------------------+---------------------------+
///       |  d   | dmin | scales[0..11] |  qh[0..31]       |  qs[0..127]: low 4 bits   |
///       +------+------+---------------+------------------+---------------------------+
///       fp16 super-scales  8 × (6-bit scale, 6-bit min), packed as in Q4_K
/// 8 groups of 32 weights. Weight i = 64·c + 32·hi + l (c ∈ 0..3, hi ∈ 0..1, l ∈ 0..31), g = 2·c + hi:
///   q = (hi ? qs[32·c + l] >> 4 : qs[32·c + l] & 0xF) + 16 × bit g of qh[l]
///   w = d·scale_g × q − dmin·min_g
/// ```
///
/// `dot` is scalar: per group it sums `q·x` and `x`.
final class Q5_K {
    static final int BLOCK = 256;
    static final int BYTES = 176;

    private Q5_K() {
    }

    /// As ggml's `dequantize_row_q5_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 2));
            long qh = o + 16;
            long ql = o + 48;
            int u1 = 1;
            int u2 = 2;
            for (int g = 0; g < 8; g += 2) {
                int sm = Q4_K.scaleMin(w, o + 4, g);
                float d1 = d * (sm & 0xFF);
                float m1 = min * (sm >>> 8);
                sm = Q4_K.scaleMin(w, o + 4, g + 1);
                float d2 = d * (sm & 0xFF);
                float m2 = min * (sm >>> 8);
                for (int l = 0; l < 32; l++) {
                    int q = (w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xF)
                            + ((w.get(ValueLayout.JAVA_BYTE, qh + l) & u1) != 0 ? 16 : 0);
                    out[y++] = d1 * q - m1;
                }
                for (int l = 0; l < 32; l++) {
                    int q = ((w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF) >>> 4)
                            + ((w.get(ValueLayout.JAVA_BYTE, qh + l) & u2) != 0 ? 16 : 0);
                    out[y++] = d2 * q - m2;
                }
                ql += 32;
                u1 <<= 2;
                u2 <<= 2;
            }
        }
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        float sum = 0;
        int xi = xOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float blockScaled = 0;
            float blockMins = 0;
            for (int g = 0; g < 8; g++) {
                long ql = o + 48 + 32 * (g >>> 1);
                int shift = 4 * (g & 1);
                float qx = 0;
                float xs = 0;
                for (int l = 0; l < 32; l++) {
                    int q = (((w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF) >>> shift) & 0xF)
                            | (((w.get(ValueLayout.JAVA_BYTE, o + 16 + l) >>> g) & 1) << 4);
                    float xv = x[xi + l];
                    qx += q * xv;
                    xs += xv;
                }
                int sm = Q4_K.scaleMin(w, o + 4, g);
                blockScaled += (sm & 0xFF) * qx;
                blockMins += (sm >>> 8) * xs;
                xi += 32;
            }
            sum += Float.float16ToFloat(w.get(SHORT_LE, o)) * blockScaled
                    - Float.float16ToFloat(w.get(SHORT_LE, o + 2)) * blockMins;
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
