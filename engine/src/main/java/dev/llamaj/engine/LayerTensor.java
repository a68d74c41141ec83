package dev.llamaj.engine;

import java.util.EnumSet;
import java.util.Set;

/// The tensors a transformer layer may have, with their GGUF names (`blk.N.<name>`) and shapes.
///
/// Which of them a family's layers hold is [Architecture#layerTensors]; [Weights] maps them, and the synthetic-model
/// writer writes them, from this one table, so a tensor's name and shape are stated once.
public enum LayerTensor {
    ATTN_NORM("attn_norm.weight", Kind.NORM),
    ATTN_Q("attn_q.weight", Kind.MATRIX),
    ATTN_K("attn_k.weight", Kind.MATRIX),
    ATTN_V("attn_v.weight", Kind.MATRIX),
    /// Q, K and V stacked in one matrix (Phi-3): rows `[0, qDim)` are Q, then K, then V.
    ATTN_QKV("attn_qkv.weight", Kind.MATRIX),
    ATTN_Q_BIAS("attn_q.bias", Kind.VECTOR),
    ATTN_K_BIAS("attn_k.bias", Kind.VECTOR),
    ATTN_V_BIAS("attn_v.bias", Kind.VECTOR),
    /// RMSNorm weight of Q: one head wide, or all heads wide with [Architecture.Feature#FULL_WIDTH_QK_NORM].
    ATTN_Q_NORM("attn_q_norm.weight", Kind.NORM),
    ATTN_K_NORM("attn_k_norm.weight", Kind.NORM),
    ATTN_OUTPUT("attn_output.weight", Kind.MATRIX),
    POST_ATTN_NORM("post_attention_norm.weight", Kind.NORM),
    FFN_NORM("ffn_norm.weight", Kind.NORM),
    FFN_GATE("ffn_gate.weight", Kind.MATRIX),
    FFN_UP("ffn_up.weight", Kind.MATRIX),
    /// Gate and up stacked in one matrix (Phi-3's `ffn_up`): rows `[0, ff)` are the gate, then the up projection.
    FFN_UP_GATE("ffn_up.weight", Kind.MATRIX),
    FFN_DOWN("ffn_down.weight", Kind.MATRIX),
    POST_FFN_NORM("post_ffw_norm.weight", Kind.NORM);

    /// The layer tensors of the Llama graph.
    static final Set<LayerTensor> LLAMA = EnumSet.of(ATTN_NORM, ATTN_Q, ATTN_K, ATTN_V, ATTN_OUTPUT, FFN_NORM, FFN_GATE,
            FFN_UP, FFN_DOWN);

    /// Whether the tensor is a weight matrix (quantized or not) or a float vector (a norm weight or a bias).
    enum Kind { MATRIX, NORM, VECTOR }

    /// The name after `blk.N.`.
    public final String suffix;
    final Kind kind;

    LayerTensor(String suffix, Kind kind) {
        this.suffix = suffix;
        this.kind = kind;
    }

    /// The tensor's GGUF name in layer `layer`.
    public String name(int layer) {
        return "blk." + layer + "." + suffix;
    }

    /// Whether this is a matrix that the kernels multiply (as opposed to a float vector).
    public boolean isMatrix() {
        return kind == Kind.MATRIX;
    }

    /// Whether this is an RMSNorm weight (a float vector near 1 in trained models).
    public boolean isNorm() {
        return kind == Kind.NORM;
    }

    /// Rows (outputs) of a matrix under `c`; for a vector, its length.
    public int rows(ModelConfig c) {
        int dim = c.embeddingLength();
        boolean fullWidthNorm = c.architecture().has(Architecture.Feature.FULL_WIDTH_QK_NORM);
        return switch (this) {
            case ATTN_NORM, FFN_NORM, POST_ATTN_NORM, POST_FFN_NORM, ATTN_OUTPUT, FFN_DOWN -> dim;
            case ATTN_Q, ATTN_Q_BIAS -> c.qDim();
            case ATTN_K, ATTN_V, ATTN_K_BIAS, ATTN_V_BIAS -> c.kvDim();
            case ATTN_QKV -> c.qDim() + 2 * c.kvDim();
            case ATTN_Q_NORM -> fullWidthNorm ? c.qDim() : c.headSize();
            case ATTN_K_NORM -> fullWidthNorm ? c.kvDim() : c.headSize();
            case FFN_GATE, FFN_UP -> c.feedForwardLength();
            case FFN_UP_GATE -> 2 * c.feedForwardLength();
        };
    }

    /// Columns (inputs) of a matrix under `c`; 1 for a vector.
    public int cols(ModelConfig c) {
        return switch (this) {
            case ATTN_OUTPUT -> c.qDim();
            case FFN_DOWN -> c.feedForwardLength();
            default -> kind == Kind.MATRIX ? c.embeddingLength() : 1;
        };
    }
}
