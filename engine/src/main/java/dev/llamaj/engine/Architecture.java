package dev.llamaj.engine;

import static dev.llamaj.engine.LayerTensor.ATTN_K;
import static dev.llamaj.engine.LayerTensor.ATTN_K_BIAS;
import static dev.llamaj.engine.LayerTensor.ATTN_K_NORM;
import static dev.llamaj.engine.LayerTensor.ATTN_NORM;
import static dev.llamaj.engine.LayerTensor.ATTN_OUTPUT;
import static dev.llamaj.engine.LayerTensor.ATTN_Q;
import static dev.llamaj.engine.LayerTensor.ATTN_QKV;
import static dev.llamaj.engine.LayerTensor.ATTN_Q_BIAS;
import static dev.llamaj.engine.LayerTensor.ATTN_Q_NORM;
import static dev.llamaj.engine.LayerTensor.ATTN_V;
import static dev.llamaj.engine.LayerTensor.ATTN_V_BIAS;
import static dev.llamaj.engine.LayerTensor.FFN_DOWN;
import static dev.llamaj.engine.LayerTensor.FFN_GATE;
import static dev.llamaj.engine.LayerTensor.FFN_NORM;
import static dev.llamaj.engine.LayerTensor.FFN_UP;
import static dev.llamaj.engine.LayerTensor.FFN_UP_GATE;
import static dev.llamaj.engine.LayerTensor.POST_ATTN_NORM;
import static dev.llamaj.engine.LayerTensor.POST_FFN_NORM;

import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Set;
import java.util.stream.Collectors;

/// The model families llamaj runs, each described once: its GGUF name (the `general.architecture` value, also the
/// prefix of its hyper-parameter keys), the tensors of a layer, and the features that set it apart from Llama.
///
/// Every family is the same layer recipe ([Transformer]): an optional norm, the Q/K/V projections (with optional
/// biases and Q/K norms), RoPE, attention, the output projection (with an optional post-norm), a residual add; then
/// the same shape around a gated feed-forward network. The differences are data: which tensors exist, how RoPE
/// pairs dimensions, the activation, the constant scales, and which layers see a sliding window. Adding a family is
/// one constant here (plus its chat template and pre-tokenizer where they are new); see the README's "Adding an
/// architecture".
///
/// Facts follow llama.cpp's graphs (`src/models/*.cpp`) for the same family, so that the same GGUF file gives the
/// same tokens.
public enum Architecture {
    /// Llama 2/3, Mistral, SmolLM2, TinyLlama, DeepSeek-R1-Distill-Llama, Mistral Nemo (head size from
    /// `key_length`).
    LLAMA("llama", Rope.Style.NORM, Activation.SILU, LayerTensor.LLAMA, Set.of()),
    /// Qwen2 / Qwen2.5, DeepSeek-R1-Distill-Qwen: biases on Q, K and V.
    QWEN2("qwen2", Rope.Style.NEOX, Activation.SILU, with(LayerTensor.LLAMA, ATTN_Q_BIAS, ATTN_K_BIAS, ATTN_V_BIAS),
            Set.of()),
    /// Qwen3 (dense): per-head RMSNorm of Q and K before RoPE.
    QWEN3("qwen3", Rope.Style.NEOX, Activation.SILU, with(LayerTensor.LLAMA, ATTN_Q_NORM, ATTN_K_NORM), Set.of()),
    /// Gemma 2: embedding × √dim, sandwich norms, GELU, soft-capped attention scores and logits, sliding window on
    /// even layers.
    GEMMA2("gemma2", Rope.Style.NEOX, Activation.GELU, with(LayerTensor.LLAMA, POST_ATTN_NORM, POST_FFN_NORM),
            Set.of(Feature.EMBEDDING_SQRT_SCALE, Feature.QUERY_PRESCALE)),
    /// Gemma 3: Gemma 2 without soft-capping, with per-head Q/K norms, five local layers (RoPE base 10000) to one
    /// global.
    GEMMA3("gemma3", Rope.Style.NEOX, Activation.GELU,
            with(LayerTensor.LLAMA, POST_ATTN_NORM, POST_FFN_NORM, ATTN_Q_NORM, ATTN_K_NORM),
            Set.of(Feature.EMBEDDING_SQRT_SCALE, Feature.QUERY_PRESCALE, Feature.LOCAL_ROPE_UNSCALED)),
    /// Phi-3 / Phi-3.5 / Phi-4-mini: fused QKV and gate+up matrices, partial rotary where `dimension_count` says.
    PHI3("phi3", Rope.Style.NEOX, Activation.SILU,
            EnumSet.of(ATTN_NORM, ATTN_QKV, ATTN_OUTPUT, FFN_NORM, FFN_UP_GATE, FFN_DOWN),
            Set.of(Feature.QUERY_PRESCALE)),
    /// Granite 3: Llama with embedding, attention, residual and logit scales from the file.
    GRANITE("granite", Rope.Style.NORM, Activation.SILU, LayerTensor.LLAMA, Set.of()),
    /// OLMo 2: no pre-norms; full-width Q/K norms; post-norms after attention and the feed-forward network.
    OLMO2("olmo2", Rope.Style.NEOX, Activation.SILU,
            EnumSet.of(ATTN_Q, ATTN_K, ATTN_V, ATTN_Q_NORM, ATTN_K_NORM, ATTN_OUTPUT, POST_ATTN_NORM, FFN_GATE, FFN_UP,
                    FFN_DOWN, POST_FFN_NORM),
            Set.of(Feature.FULL_WIDTH_QK_NORM)),
    /// Ministral 3 (`mistral3`): the Llama graph with YaRN and, where the file sets
    /// `attention.temperature_scale`, Llama 4's position-dependent query temperature.
    MISTRAL3("mistral3", Rope.Style.NORM, Activation.SILU, LayerTensor.LLAMA, Set.of()),
    /// SmolLM3: Llama without RoPE on every fourth layer.
    SMOLLM3("smollm3", Rope.Style.NORM, Activation.SILU, LayerTensor.LLAMA, Set.of(Feature.NO_ROPE_EVERY_FOURTH));

    /// What a family does beyond what its tensors say.
    enum Feature {
        /// The token embedding is multiplied by √(embedding length) (Gemma).
        EMBEDDING_SQRT_SCALE,
        /// The query is multiplied by the attention scale after RoPE, and the scores are not scaled again (Gemma,
        /// Phi-3: the same product as scaling scores, rounded as llama.cpp rounds it).
        QUERY_PRESCALE,
        /// Q and K norms span all heads of a position (OLMo 2) rather than one head.
        FULL_WIDTH_QK_NORM,
        /// Local (sliding-window) layers use their own RoPE base (`rope.freq_base_swa`, 10000 by default) and no
        /// context scaling (Gemma 3).
        LOCAL_ROPE_UNSCALED,
        /// Layers `3, 7, 11, ...` skip RoPE (SmolLM3; llama.cpp fixes the pattern, no metadata key says it).
        NO_ROPE_EVERY_FOURTH
    }

    /// The gated feed-forward network's activation: `down(act(gate) · up)`.
    enum Activation {
        /// `silu(g) = g / (1 + e^-g)` (SwiGLU).
        SILU,
        /// GELU, tanh approximation (GeGLU), through ggml's half-precision table as llama.cpp's CPU backend.
        GELU
    }

    /// The `general.architecture` value, and the prefix of the family's hyper-parameter keys.
    public final String ggufName;
    final Rope.Style ropeStyle;
    final Activation activation;
    /// The tensors every layer has.
    final Set<LayerTensor> layerTensors;
    private final Set<Feature> features;

    Architecture(String ggufName, Rope.Style ropeStyle, Activation activation, Set<LayerTensor> layerTensors,
                 Set<Feature> features) {
        this.ggufName = ggufName;
        this.ropeStyle = ropeStyle;
        this.activation = activation;
        this.layerTensors = Collections.unmodifiableSet(EnumSet.copyOf(layerTensors)); // in table order
        this.features = features.isEmpty() ? Set.of() : Set.copyOf(features);
    }

    /// The tensors of every layer, in file order.
    public Set<LayerTensor> layerTensors() {
        return layerTensors;
    }

    boolean has(Feature f) {
        return features.contains(f);
    }

    /// Whether layer `layer` of `blockCount` uses the sliding window (when the file names one); the others attend
    /// over the whole context.
    public boolean isLocal(int layer) {
        return switch (this) {
            case GEMMA2 -> layer % 2 == 0;
            case GEMMA3 -> layer % 6 < 5;
            default -> false;
        };
    }

    /// Whether layer `layer` rotates its queries and keys.
    boolean hasRope(int layer) {
        return !has(Feature.NO_ROPE_EVERY_FOURTH) || (layer + 1) % 4 != 0;
    }

    /// The family whose GGUF name is `name`, or null.
    static Architecture named(String name) {
        for (Architecture a : values()) {
            if (a.ggufName.equals(name)) {
                return a;
            }
        }
        return null;
    }

    /// The GGUF names of all families, for error messages.
    public static String supportedNames() {
        return Arrays.stream(values()).map(a -> a.ggufName).collect(Collectors.joining(", "));
    }

    private static Set<LayerTensor> with(Set<LayerTensor> base, LayerTensor... more) {
        EnumSet<LayerTensor> s = EnumSet.copyOf(base);
        s.addAll(Arrays.asList(more));
        return s;
    }
}
