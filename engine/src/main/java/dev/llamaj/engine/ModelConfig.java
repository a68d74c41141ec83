package dev.llamaj.engine;

import dev.llamaj.gguf.GGUFFormatException;
import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.UnsupportedModelException;
import java.io.IOException;

/// The hyper-parameters of a model, read from the `<architecture>.*` keys of a GGUF file.
///
/// Field names are the camel-cased GGUF keys (`qwen2.attention.head_count_kv` → `headCountKv`). Grouped-query
/// attention is the case `headCountKv < headCount`: every group of `headCount / headCountKv` query heads shares
/// one key/value head. The head size is `key_length` where the file gives it (Qwen3, Gemma, Mistral Nemo), else
/// `embedding / heads`. Every value is range-checked here, so the forward pass can size its buffers from it.
///
/// @param architecture       the model family, which decides the layer's tensors and features
/// @param contextLength      tokens the model was trained for (ggml: `n_ctx_train`)
/// @param embeddingLength    width of the residual stream (`n_embd`)
/// @param blockCount         transformer layers (`n_layer`)
/// @param feedForwardLength  hidden width of the gated feed-forward network (`n_ff`)
/// @param headCount          query heads (`n_head`)
/// @param headCountKv        key/value heads (`n_head_kv`)
/// @param headSize           width of one attention head (`n_embd_head_k`)
/// @param rmsNormEpsilon     epsilon of RMSNorm
/// @param ropeFreqBase       RoPE base frequency θ (of the global layers, where some are local)
/// @param ropeDimensionCount leading dimensions of each head that RoPE rotates
/// @param vocabSize          rows of the embedding matrix (at least the tokenizer's vocabulary)
/// @param scales             the constant factors of the family (Gemma, Granite) and soft-caps (Gemma 2)
/// @param ropeScaling        context extension of the RoPE angles (`rope.scaling.*`)
/// @param slidingWindow      positions a local layer attends to (itself included); 0 if no layer is local
/// @param ropeFreqBaseLocal  RoPE base of the local layers (Gemma 3: `rope.freq_base_swa`, default 10000)
public record ModelConfig(Architecture architecture, int contextLength, int embeddingLength, int blockCount,
                          int feedForwardLength, int headCount, int headCountKv, int headSize, float rmsNormEpsilon,
                          float ropeFreqBase, int ropeDimensionCount, int vocabSize, Scales scales,
                          RopeScaling ropeScaling, int slidingWindow, float ropeFreqBaseLocal)
        implements LlamaConfig {

    /// Constant factors applied by the forward pass; 1 (or 0 for the caps) where a family has none.
    ///
    /// @param embedding        multiplier of the token embedding (Gemma: √dim; Granite: `embedding_scale`)
    /// @param residual         multiplier of each block's output before the residual add (Granite)
    /// @param attention        multiplier of the attention scores, `1/√headSize` unless the file says otherwise
    ///                         (Granite's `attention.scale`); applied to the query instead where the family does
    /// @param logit            multiplier of the logits (Granite: `1 / logit_scale`)
    /// @param attentionSoftcap `c` in `c · tanh(score / c)` before the softmax (Gemma 2), 0 for none
    /// @param finalSoftcap     the same for the logits, 0 for none
    /// @param temperature      Llama 4's query temperature (`attention.temperature_scale`, Ministral 3): the query
    ///                         at position `p` is multiplied by `1 + temperature · ln(1 + floor(p / temperatureFloor))`;
    ///                         0 for none
    /// @param temperatureFloor positions per temperature step (the original context of YaRN)
    public record Scales(float embedding, float residual, float attention, float logit, float attentionSoftcap,
                         float finalSoftcap, float temperature, int temperatureFloor) {

        /// The query multiplier at `position`.
        float queryTemperature(int position) {
            return temperature == 0 ? 1f
                    : (float) (Math.log(Math.floor((double) position / temperatureFloor) + 1.0) * temperature + 1.0);
        }
    }

    /// How RoPE is stretched beyond the trained context (`rope.scaling.type`): `none`, `linear` (every angle divided
    /// by `factor`) or `yarn` (YaRN: interpolation for the slow dimensions only, with a magnitude correction).
    ///
    /// @param type            `none`, `linear` or `yarn`
    /// @param factor          the stretch (`rope.scaling.factor`), 1 for none
    /// @param originalContext `rope.scaling.original_context_length` (YaRN)
    /// @param betaFast        `rope.scaling.yarn_beta_fast`, 32 by default
    /// @param betaSlow        `rope.scaling.yarn_beta_slow`, 1 by default
    /// @param attnFactor      `rope.scaling.attn_factor` (multiplies cos and sin), 1 by default
    public record RopeScaling(String type, float factor, int originalContext, float betaFast, float betaSlow,
                              float attnFactor) {
        public static final RopeScaling NONE = new RopeScaling("none", 1f, 0, 32f, 1f, 1f);

        Rope.Scaling angles() {
            return switch (type) {
                case "linear" -> new Rope.Scaling(1f / factor, 0f, attnFactor, originalContext, betaFast, betaSlow);
                case "yarn" -> new Rope.Scaling(1f / factor, 1f, attnFactor, originalContext, betaFast, betaSlow);
                default -> new Rope.Scaling(1f, 0f, attnFactor, originalContext, betaFast, betaSlow);
            };
        }
    }

    private static final int MAX_DIM = 1 << 20;

    public ModelConfig {
        if (headCount % headCountKv != 0) {
            throw new IllegalArgumentException(
                    "head count " + headCount + " is not a multiple of the key/value head count " + headCountKv);
        }
        if (ropeDimensionCount % 2 != 0 || ropeDimensionCount > headSize) {
            throw new IllegalArgumentException(
                    "RoPE dimension count " + ropeDimensionCount + " is odd or larger than the head size " + headSize);
        }
    }

    /// Reads the configuration of any supported architecture.
    ///
    /// @throws UnsupportedModelException for an architecture llamaj does not run (the message lists those it does)
    /// @throws GGUFFormatException for a missing key, a wrong type or an out-of-range value
    public static ModelConfig from(Metadata md) throws IOException {
        String archName = md.string("general.architecture");
        Architecture arch = Architecture.named(archName);
        if (arch == null) {
            throw new UnsupportedModelException(md.source() + ": architecture '" + archName
                    + "' is not supported (supported: " + Architecture.supportedNames() + ")");
        }
        String p = arch.ggufName + ".";
        int embedding = md.integerIn(p + "embedding_length", 1, MAX_DIM);
        int heads = md.integerIn(p + "attention.head_count", 1, 4096);
        int kvHeads = md.contains(p + "attention.head_count_kv")
                ? md.integerIn(p + "attention.head_count_kv", 1, heads) : heads;
        if (heads % kvHeads != 0) {
            throw new GGUFFormatException(md.source() + ": head count " + heads
                    + " is not a multiple of the key/value head count " + kvHeads);
        }
        int headSize;
        if (md.contains(p + "attention.key_length")) {
            headSize = md.integerIn(p + "attention.key_length", 2, 4096);
            if (md.contains(p + "attention.value_length") && md.integer(p + "attention.value_length") != headSize) {
                throw new UnsupportedModelException(md.source() + ": key and value head sizes differ");
            }
        } else {
            if (embedding % heads != 0) {
                throw new GGUFFormatException(md.source() + ": embedding length " + embedding
                        + " is not a multiple of the head count " + heads);
            }
            headSize = embedding / heads;
        }
        int ropeDims = md.contains(p + "rope.dimension_count")
                ? md.integerIn(p + "rope.dimension_count", 0, headSize) : headSize;
        if (ropeDims % 2 != 0) {
            throw new GGUFFormatException(md.source() + ": RoPE dimension count " + ropeDims + " is odd");
        }
        int vocab = md.contains(p + "vocab_size")
                ? md.integerIn(p + "vocab_size", 1, 1 << 24)
                : md.stringArray("tokenizer.ggml.tokens").length;
        float eps = md.float32(p + "attention.layer_norm_rms_epsilon", 1e-5f);
        float base = md.float32(p + "rope.freq_base", 10000f);
        float localBase = md.float32(p + "rope.freq_base_swa", 10000f);
        if (!(eps > 0 && eps < 1) || !(base > 1 && Float.isFinite(base)) || !(localBase > 1 && Float.isFinite(localBase))) {
            throw new GGUFFormatException(md.source() + ": RMS epsilon " + eps + " or RoPE base " + base
                    + " is out of range");
        }
        int blocks = md.integerIn(p + "block_count", 1, 4096);
        boolean anyLocal = java.util.stream.IntStream.range(0, blocks).anyMatch(arch::isLocal);
        int window = anyLocal ? md.integerIn(p + "attention.sliding_window", 1, 1 << 24) : 0;
        return new ModelConfig(arch,
                md.integerIn(p + "context_length", 1, 1 << 24),
                embedding,
                blocks,
                md.integerIn(p + "feed_forward_length", 1, MAX_DIM),
                heads, kvHeads, headSize, eps, base, ropeDims, vocab,
                scales(md, arch, p, embedding, headSize), ropeScaling(md, p), window, localBase);
    }

    private static Scales scales(Metadata md, Architecture arch, String p, int embedding, int headSize)
            throws IOException {
        Scales s = baseScales(md, arch, p, embedding, headSize);
        float temperature = nonNegative(md, p + "attention.temperature_scale");
        if (temperature == 0) {
            return s;
        }
        int floor = md.contains(p + "rope.scaling.original_context_length")
                ? md.integerIn(p + "rope.scaling.original_context_length", 1, 1 << 24) : 0;
        if (floor == 0) {
            throw new GGUFFormatException(md.source() + ": " + p + "attention.temperature_scale needs "
                    + p + "rope.scaling.original_context_length");
        }
        return new Scales(s.embedding(), s.residual(), s.attention(), s.logit(), s.attentionSoftcap(),
                s.finalSoftcap(), temperature, floor);
    }

    private static Scales baseScales(Metadata md, Architecture arch, String p, int embedding, int headSize)
            throws IOException {
        float embeddingScale = arch.has(Architecture.Feature.EMBEDDING_SQRT_SCALE)
                ? (float) Math.sqrt(embedding)
                : positive(md, p + "embedding_scale", 1f);
        float logitScale = positive(md, p + "logit_scale", 1f);
        return new Scales(embeddingScale,
                positive(md, p + "residual_scale", 1f),
                positive(md, p + "attention.scale", (float) (1.0 / Math.sqrt(headSize))),
                1f / logitScale,
                nonNegative(md, p + "attn_logit_softcapping"),
                nonNegative(md, p + "final_logit_softcapping"), 0f, 0);
    }

    private static RopeScaling ropeScaling(Metadata md, String p) throws IOException {
        String type = md.string(p + "rope.scaling.type", "none");
        float factor = md.contains(p + "rope.scaling.factor") ? positive(md, p + "rope.scaling.factor", 1f)
                : md.contains(p + "rope.scale_linear") ? positive(md, p + "rope.scale_linear", 1f) : 1f;
        if (type.equals("none") && factor != 1f && md.contains(p + "rope.scale_linear")) {
            type = "linear";
        }
        if (!type.equals("none") && !type.equals("linear") && !type.equals("yarn")) {
            throw new UnsupportedModelException(md.source() + ": RoPE scaling '" + type
                    + "' is not supported (supported: none, linear, yarn)");
        }
        int original = md.contains(p + "rope.scaling.original_context_length")
                ? md.integerIn(p + "rope.scaling.original_context_length", 1, 1 << 24) : 0;
        if (type.equals("yarn") && original == 0) {
            throw new GGUFFormatException(md.source() + ": YaRN RoPE scaling needs "
                    + p + "rope.scaling.original_context_length");
        }
        float attnFactor = positive(md, p + "rope.scaling.attn_factor", 1f);
        // DeepSeek-style magnitude (Ministral 3's yarn_log_multiplier m): cos and sin are scaled by
        // mscale(factor, 1) / mscale(factor, m) in all, YaRN's own 1 + 0.1 ln(factor) cancelled, as llama.cpp does
        // (checked against it on a tiny model: RopeScalingReferenceTest).
        float logMul = md.float32(p + "rope.scaling.yarn_log_multiplier", 0f);
        if (logMul != 0 && factor > 1 && type.equals("yarn")) {
            float ln = (float) Math.log(factor);
            attnFactor = (0.1f * ln + 1.0f) / (0.1f * logMul * ln + 1.0f) / (1.0f + 0.1f * ln);
        }
        return new RopeScaling(type, factor, original,
                positive(md, p + "rope.scaling.yarn_beta_fast", 32f),
                positive(md, p + "rope.scaling.yarn_beta_slow", 1f),
                attnFactor);
    }

    private static float positive(Metadata md, String key, float defaultValue) throws IOException {
        float v = md.float32(key, defaultValue);
        if (!(v > 0 && Float.isFinite(v))) {
            throw new GGUFFormatException(md.source() + ": " + key + " = " + v + " is not a positive number");
        }
        return v;
    }

    private static float nonNegative(Metadata md, String key) throws IOException {
        float v = md.float32(key, 0f);
        if (!(v >= 0 && Float.isFinite(v))) {
            throw new GGUFFormatException(md.source() + ": " + key + " = " + v + " is negative or not finite");
        }
        return v;
    }

    /// Width of all key (or value) heads of one position.
    @Override
    public int kvDim() {
        return headCountKv * headSize;
    }

    /// Width of all query heads of one position.
    @Override
    public int qDim() {
        return headCount * headSize;
    }

    /// Positions layer `layer` attends to before and at the current one: the sliding window for a local layer,
    /// else unlimited (`Integer.MAX_VALUE`).
    int window(int layer) {
        return slidingWindow > 0 && architecture.isLocal(layer) ? slidingWindow : Integer.MAX_VALUE;
    }
}
