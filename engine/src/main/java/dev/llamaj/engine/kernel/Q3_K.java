package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.INT_LE;
import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/// `Q3_K` weights (ggml: `block_q3_K`, `GGML_TYPE_Q3_K`): super-blocks of 256 weights in 110 bytes.
///
/// ```
/// byte  0               32                         96              108    110
///       +---------------+--------------------------+---------------+------+
///       | hmask[0..31]  |  qs[0..63]: 2-bit quants | scales[0..11] |  d   |
///       +---------------+--------------------------+---------------+------+
///                                                   16 × 6-bit       fp16 super-scale
/// 16 groups of 16 weights. Weight i = 128·h + 32·k + l (h ∈ 0..1, k ∈ 0..3, l ∈ 0..31):
///   q = ((qs[32·h + l] >> 2k) & 3) − (bit (4·h + k) of hmask[l] ? 0 : 4),   g = 8·h + 2·k + (l ≥ 16)
///   w = d × (scale_g − 32) × q
/// scale_g (6 bits): low 4 bits = (g < 8 ? low : high) nibble of scales[g % 8],
///                   high 2 bits = bits 2·(g / 4) and 2·(g / 4) + 1 of scales[8 + g % 4]
/// ```
///
/// `dot` is scalar: per group it sums `q·x`.
final class Q3_K {
    static final int BLOCK = 256;
    static final int BYTES = 110;
    private static final int KMASK1 = 0x03030303;
    private static final int KMASK2 = 0x0f0f0f0f;

    private Q3_K() {
    }

    /// As ggml's `dequantize_row_q3_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float dAll = Float.float16ToFloat(w.get(SHORT_LE, o + 108));
            // ggml unpacks the 12 scale bytes as three u32 words into four words of 6-bit scales (aux[0..3])
            int a0 = w.get(INT_LE, o + 96);
            int a1 = w.get(INT_LE, o + 100);
            int tmp = w.get(INT_LE, o + 104);
            int s0 = (a0 & KMASK2) | ((tmp & KMASK1) << 4);
            int s1 = (a1 & KMASK2) | (((tmp >>> 2) & KMASK1) << 4);
            int s2 = ((a0 >>> 4) & KMASK2) | (((tmp >>> 4) & KMASK1) << 4);
            int s3 = ((a1 >>> 4) & KMASK2) | (((tmp >>> 6) & KMASK1) << 4);
            long q = o + 32;
            long hm = o;
            int m = 1;
            int is = 0;
            for (int h = 0; h < 2; h++) {
                int shift = 0;
                for (int k = 0; k < 4; k++) {
                    float dl = dAll * (scale(s0, s1, s2, s3, is++) - 32);
                    for (int l = 0; l < 16; l++) {
                        int ql = (w.get(ValueLayout.JAVA_BYTE, q + l) >>> shift) & 3;
                        int hb = (w.get(ValueLayout.JAVA_BYTE, hm + l) & m) != 0 ? 0 : 4;
                        out[y++] = dl * (ql - hb);
                    }
                    dl = dAll * (scale(s0, s1, s2, s3, is++) - 32);
                    for (int l = 0; l < 16; l++) {
                        int ql = (w.get(ValueLayout.JAVA_BYTE, q + 16 + l) >>> shift) & 3;
                        int hb = (w.get(ValueLayout.JAVA_BYTE, hm + 16 + l) & m) != 0 ? 0 : 4;
                        out[y++] = dl * (ql - hb);
                    }
                    shift += 2;
                    m <<= 1;
                }
                q += 32;
            }
        }
    }

    /// Scale `g` (0..63) from the four unpacked words: byte `g % 4` of word `g / 4`.
    private static int scale(int s0, int s1, int s2, int s3, int g) {
        int word = g < 4 ? s0 : g < 8 ? s1 : g < 12 ? s2 : s3;
        return (word >>> (8 * (g & 3))) & 0xFF;
    }

    /// `Σ w[i]·x[xOffset + i]` over `n` weights (a multiple of 256) starting at byte `offset`.
    static float dot(MemorySegment w, long offset, float[] x, int xOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        float sum = 0;
        int xi = xOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            int a0 = w.get(INT_LE, o + 96);
            int a1 = w.get(INT_LE, o + 100);
            int tmp = w.get(INT_LE, o + 104);
            int s0 = (a0 & KMASK2) | ((tmp & KMASK1) << 4);
            int s1 = (a1 & KMASK2) | (((tmp >>> 2) & KMASK1) << 4);
            int s2 = ((a0 >>> 4) & KMASK2) | (((tmp >>> 4) & KMASK1) << 4);
            int s3 = ((a1 >>> 4) & KMASK2) | (((tmp >>> 6) & KMASK1) << 4);
            float blockSum = 0;
            for (int g = 0; g < 16; g++) {
                int h = g >>> 3;
                int k = (g >>> 1) & 3;
                long q = o + 32 + 32 * h + 16 * (g & 1);
                long hm = o + 16 * (g & 1);
                int shift = 2 * k;
                int m = 1 << (4 * h + k);
                float qx = 0;
                for (int l = 0; l < 16; l++) {
                    int ql = (w.get(ValueLayout.JAVA_BYTE, q + l) >>> shift) & 3;
                    int hb = (w.get(ValueLayout.JAVA_BYTE, hm + l) & m) != 0 ? 0 : 4;
                    qx += (ql - hb) * x[xi + l];
                }
                blockSum += (scale(s0, s1, s2, s3, g) - 32) * qx;
                xi += 16;
            }
            sum += Float.float16ToFloat(w.get(SHORT_LE, o + 108)) * blockSum;
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
                       float[] out, int outOffset, int from, int to, Input in) {
        for (int r = from; r < to; r++) {
            out[outOffset + r] = dot(w, r * rowBytes, x, xOffset, cols);
        }
    }
}
