package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.SHORT_LE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/// `Q2_K` weights (ggml: `block_q2_K`, `GGML_TYPE_Q2_K`): super-blocks of 256 weights in 84 bytes.
///
/// ```
/// byte  0              16                               80     82     84
///       +--------------+--------------------------------+------+------+
///       | scales[0..15]|  qs[0..63]: 2-bit quants       |  d   | dmin |
///       +--------------+--------------------------------+------+------+
///       scales[g] = (min_g << 4) | scale_g (4 bits each)   fp16 super-scales
/// 16 groups of 16 weights. Weight i = 128·h + 32·k + l (h ∈ 0..1, k ∈ 0..3, l ∈ 0..31):
///   q = (qs[32·h + l] >> 2k) & 3,   g = 8·h + 2·k + (l ≥ 16)
///   w = d·scale_g × q − dmin·min_g
/// ```
///
/// `dot` is scalar: per group it sums `q·x` and `x`.
final class Q2_K {
    static final int BLOCK = 256;
    static final int BYTES = 84;

    private Q2_K() {
    }

    /// As ggml's `dequantize_row_q2_K`: `n` weights (a multiple of 256) from byte `offset` into `out[outOffset ..]`.
    static void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n) {
        assert n % BLOCK == 0;
        int nb = n / BLOCK;
        int y = outOffset;
        for (int i = 0; i < nb; i++) {
            long o = offset + (long) i * BYTES;
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 80));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 82));
            long q = o + 16;
            int is = 0;
            for (int h = 0; h < 2; h++) {
                int shift = 0;
                for (int k = 0; k < 4; k++) {
                    int sc = w.get(ValueLayout.JAVA_BYTE, o + is++) & 0xFF;
                    float dl = d * (sc & 0xF);
                    float ml = min * (sc >>> 4);
                    for (int l = 0; l < 16; l++) {
                        out[y++] = dl * ((w.get(ValueLayout.JAVA_BYTE, q + l) >>> shift) & 3) - ml;
                    }
                    sc = w.get(ValueLayout.JAVA_BYTE, o + is++) & 0xFF;
                    dl = d * (sc & 0xF);
                    ml = min * (sc >>> 4);
                    for (int l = 0; l < 16; l++) {
                        out[y++] = dl * ((w.get(ValueLayout.JAVA_BYTE, q + 16 + l) >>> shift) & 3) - ml;
                    }
                    shift += 2;
                }
                q += 32;
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
            float d = Float.float16ToFloat(w.get(SHORT_LE, o + 80));
            float min = Float.float16ToFloat(w.get(SHORT_LE, o + 82));
            float sumScaled = 0;
            float sumMins = 0;
            for (int g = 0; g < 16; g++) {
                // group g covers qs bytes 32·(g/8) + 16·(g%2) .. +16 at bit shift 2·((g/2)%4)
                long q = o + 16 + 32 * (g >>> 3) + 16 * (g & 1);
                int shift = 2 * ((g >>> 1) & 3);
                float qxf = 0;
                float xs = 0;
                for (int l = 0; l < 16; l++) {
                    float xv = x[xi + l];
                    qxf += ((w.get(ValueLayout.JAVA_BYTE, q + l) >>> shift) & 3) * xv;
                    xs += xv;
                }
                int sc = w.get(ValueLayout.JAVA_BYTE, o + g) & 0xFF;
                sumScaled += (sc & 0xF) * qxf;
                sumMins += (sc >>> 4) * xs;
                xi += 16;
            }
            sum += d * sumScaled - min * sumMins;
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
