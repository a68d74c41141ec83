package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Kernels;

/// Rotary position embedding: the angles of every (pair, position), computed once per session, and their application
/// to the query and key heads of one token or of a tiled batch.
///
/// **Pairing.** [Style#NORM] rotates adjacent dimensions `(2i, 2i+1)` (Llama GGUFs have their Q/K rows permuted for
/// it); [Style#NEOX] rotates `(i, i + n/2)` (Qwen, Gemma, Phi-3, OLMo 2). Only the first `n = dimensions` of each
/// head rotate (partial rotary, Phi-4-mini); the rest pass through.
///
/// **Angles**, as ggml's `rope_cache_init` with `rope_yarn`: for pair `i`, `θ_i = pos · base^(-2i/n)` by repeated
/// float multiplication, divided by the pair's frequency factor (Llama 3.1's `rope_freqs`, Phi-3's LongRoPE
/// factors), times `freqScale` (linear scaling: `1/factor`); YaRN blends that with the unscaled angle by a ramp over
/// the pair index and scales cos/sin by `mscale`. With none of these, the angle is `pos · base^(-2i/n)` exactly as
/// llama.cpp computes it, which matters for reproducing its tokens.
final class Rope {
    enum Style { NORM, NEOX }

    /// How the angles are scaled for contexts beyond the trained one (`rope.scaling.*`).
    ///
    /// @param freqScale     multiplier of every angle: `1 / rope.scaling.factor` (linear and YaRN), 1 for none
    /// @param yarnExtFactor 0 (no YaRN) or the mix of extrapolated angles (1 for YaRN)
    /// @param attnFactor    multiplier of cos and sin (YaRN's `attn_factor`)
    /// @param originalContext the context the model was trained with before extension (YaRN's correction dims)
    /// @param betaFast      YaRN's fast boundary (pairs rotating more than this many times over the original
    ///                      context keep their angle)
    /// @param betaSlow      YaRN's slow boundary (pairs rotating fewer times are interpolated fully)
    record Scaling(float freqScale, float yarnExtFactor, float attnFactor, int originalContext, float betaFast,
                   float betaSlow) {
        static final Scaling NONE = new Scaling(1f, 0f, 1f, 0, 32f, 1f);
    }

    final Style style;
    /// Rotated dimensions per head (even).
    final int dimensions;
    final int headSize;
    /// `cos[i · stride + pos]`, `sin[i · stride + pos]` for pair `i` at position `pos`.
    final float[] cos;
    final float[] sin;
    final int stride;

    Rope(Style style, int dimensions, int headSize, float base, Scaling scaling, float[] freqFactors, int positions) {
        this.style = style;
        this.dimensions = dimensions;
        this.headSize = headSize;
        this.stride = positions;
        int pairs = dimensions / 2;
        cos = new float[Math.max(1, pairs) * positions];
        sin = new float[Math.max(1, pairs) * positions];
        table(dimensions, base, scaling, freqFactors, positions, cos, sin);
    }

    /// Fills the tables (pair-major: `[i · positions + pos]`).
    static void table(int dimensions, float base, Scaling s, float[] freqFactors, int positions, float[] cos,
                      float[] sin) {
        int pairs = dimensions / 2;
        float thetaScale = (float) Math.pow(base, -2.0f / dimensions);
        float low = 0;
        float high = 0;
        float mscale = s.attnFactor();
        if (s.yarnExtFactor() != 0) {
            low = Math.max(0, (float) Math.floor(yarnCorrectionDim(dimensions, s.originalContext(), s.betaFast(), base)));
            high = Math.min(dimensions - 1,
                    (float) Math.ceil(yarnCorrectionDim(dimensions, s.originalContext(), s.betaSlow(), base)));
            mscale *= 1.0f + 0.1f * (float) Math.log(1.0f / s.freqScale());
        }
        for (int pos = 0; pos < positions; pos++) {
            float theta = pos;
            for (int i = 0; i < pairs; i++) {
                float extrapolated = freqFactors != null ? theta / freqFactors[i] : theta;
                float t = s.freqScale() * extrapolated;
                if (s.yarnExtFactor() != 0) {
                    float y = (i - low) / Math.max(0.001f, high - low);
                    float mix = (1 - Math.min(1, Math.max(0, y))) * s.yarnExtFactor();
                    t = t * (1 - mix) + extrapolated * mix;
                }
                cos[i * positions + pos] = (float) Math.cos(t) * mscale;
                sin[i * positions + pos] = (float) Math.sin(t) * mscale;
                theta *= thetaScale;
            }
        }
    }

    /// The pair index at which a dimension pair completes `rotations` turns over `originalContext` positions.
    private static float yarnCorrectionDim(int dims, int originalContext, float rotations, float base) {
        return dims * (float) Math.log(originalContext / (rotations * 2 * (float) Math.PI)) / (2 * (float) Math.log(base));
    }

    /// Rotates `heads` heads of one token at `pos`, `vec[h · headSize ..]`.
    void apply(float[] vec, int heads, int pos) {
        int pairs = dimensions / 2;
        int step = style == Style.NORM ? 2 : 1;
        int second = style == Style.NORM ? 1 : pairs;
        for (int h = 0; h < heads; h++) {
            int o = h * headSize;
            for (int i = 0; i < pairs; i++) {
                float c = cos[i * stride + pos];
                float s = sin[i * stride + pos];
                int a = o + i * step;
                float x0 = vec[a];
                float x1 = vec[a + second];
                vec[a] = x0 * c - x1 * s;
                vec[a + second] = x0 * s + x1 * c;
            }
        }
    }

    /// Rotates `heads` heads of token `t` of a tiled batch of `width` features, at `pos`: the same arithmetic as
    /// [#applyTiled] for that token (the tokens of a batch of several sequences have unrelated positions).
    void applyTiledToken(float[] x, int width, int heads, int t, int pos) {
        int pairs = dimensions / 2;
        int step = style == Style.NORM ? 2 : 1;
        int second = style == Style.NORM ? 1 : pairs;
        int base = Kernels.tiledIndex(width, t, 0);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < pairs; i++) {
                float c = cos[i * stride + pos];
                float s = sin[i * stride + pos];
                int a = base + (h * headSize + i * step) * Kernels.TILE;
                int b = a + second * Kernels.TILE;
                float x0 = x[a];
                float x1 = x[b];
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }

    /// Rotates `heads` heads of every token of a tiled batch of `tiles` tiles of `width` features, token `t` at
    /// `pos0 + t`.
    void applyTiled(float[] x, int width, int heads, int tiles, int pos0) {
        int pairs = dimensions / 2;
        if (pairs == 0) {
            return;
        }
        Kernels.ropeTiled(x, width, heads, headSize, pairs, style == Style.NORM ? 2 : 1, style == Style.NORM ? 1 : pairs,
                tiles, cos, sin, stride, pos0);
    }
}
