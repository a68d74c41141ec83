package dev.llamaj.engine;

import dev.llamaj.gguf.GGUFFormatException;
import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.UnsupportedModelException;
import java.io.IOException;

/// The hyper-parameters of a Llama model, read from the `llama.*` keys of a GGUF file.
///
/// Field names are the camel-cased GGUF keys (`llama.attention.head_count_kv` → `headCountKv`). Grouped-query
/// attention is the case `headCountKv < headCount`: every group of `headCount / headCountKv` query heads shares
/// one key/value head. Every value is range-checked here, so the forward pass can size its buffers from it.
///
/// @param contextLength      tokens the model was trained for (ggml: `n_ctx_train`)
/// @param embeddingLength    width of the residual stream (`n_embd`)
/// @param blockCount         transformer layers (`n_layer`)
/// @param feedForwardLength  hidden width of the SwiGLU feed-forward network (`n_ff`)
/// @param headCount          query heads (`n_head`)
/// @param headCountKv        key/value heads (`n_head_kv`)
/// @param headSize           width of one attention head (`n_embd_head_k`)
/// @param rmsNormEpsilon     epsilon of RMSNorm
/// @param ropeFreqBase       RoPE base frequency θ
/// @param ropeDimensionCount leading dimensions of each head that RoPE rotates
/// @param vocabSize          tokens in the vocabulary (rows of the embedding matrix)
public record LlamaConfig(int contextLength, int embeddingLength, int blockCount, int feedForwardLength,
                          int headCount, int headCountKv, int headSize, float rmsNormEpsilon, float ropeFreqBase,
                          int ropeDimensionCount, int vocabSize) {

    private static final int MAX_DIM = 1 << 20;

    public LlamaConfig {
        if (headCount % headCountKv != 0) {
            throw new IllegalArgumentException(
                    "head count " + headCount + " is not a multiple of the key/value head count " + headCountKv);
        }
        if (ropeDimensionCount % 2 != 0 || ropeDimensionCount > headSize) {
            throw new IllegalArgumentException(
                    "RoPE dimension count " + ropeDimensionCount + " is odd or larger than the head size " + headSize);
        }
    }

    /// Reads the configuration; the architecture must be `llama`.
    ///
    /// @throws UnsupportedModelException for another architecture
    /// @throws GGUFFormatException for a missing key, a wrong type or an out-of-range value
    public static LlamaConfig from(Metadata md) throws IOException {
        String arch = md.string("general.architecture");
        if (!arch.equals("llama")) {
            throw new UnsupportedModelException(md.source() + ": architecture '" + arch + "' is not supported (supported: llama)");
        }
        int embedding = md.integerIn("llama.embedding_length", 1, MAX_DIM);
        int heads = md.integerIn("llama.attention.head_count", 1, 4096);
        int kvHeads = md.contains("llama.attention.head_count_kv")
                ? md.integerIn("llama.attention.head_count_kv", 1, heads) : heads;
        if (heads % kvHeads != 0) {
            throw new GGUFFormatException(md.source() + ": head count " + heads
                    + " is not a multiple of the key/value head count " + kvHeads);
        }
        int headSize;
        if (md.contains("llama.attention.key_length")) {
            headSize = md.integerIn("llama.attention.key_length", 2, 4096);
            if (md.contains("llama.attention.value_length") && md.integer("llama.attention.value_length") != headSize) {
                throw new UnsupportedModelException(md.source() + ": key and value head sizes differ");
            }
        } else {
            if (embedding % heads != 0) {
                throw new GGUFFormatException(md.source() + ": embedding length " + embedding
                        + " is not a multiple of the head count " + heads);
            }
            headSize = embedding / heads;
        }
        int ropeDims = md.contains("llama.rope.dimension_count")
                ? md.integerIn("llama.rope.dimension_count", 0, headSize) : headSize;
        if (ropeDims % 2 != 0) {
            throw new GGUFFormatException(md.source() + ": RoPE dimension count " + ropeDims + " is odd");
        }
        int vocab = md.contains("llama.vocab_size")
                ? md.integerIn("llama.vocab_size", 1, 1 << 24)
                : md.stringArray("tokenizer.ggml.tokens").length;
        float eps = md.float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        float base = md.float32("llama.rope.freq_base", 10000f);
        if (!(eps > 0 && eps < 1) || !(base > 1 && Float.isFinite(base))) {
            throw new GGUFFormatException(md.source() + ": RMS epsilon " + eps + " or RoPE base " + base + " is out of range");
        }
        return new LlamaConfig(
                md.integerIn("llama.context_length", 1, 1 << 24),
                embedding,
                md.integerIn("llama.block_count", 1, 4096),
                md.integerIn("llama.feed_forward_length", 1, MAX_DIM),
                heads, kvHeads, headSize, eps, base, ropeDims, vocab);
    }

    /// Width of all key (or value) heads of one position.
    public int kvDim() {
        return headCountKv * headSize;
    }

    /// Width of all query heads of one position.
    public int qDim() {
        return headCount * headSize;
    }
}
