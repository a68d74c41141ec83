package dev.llamaj.engine;

import dev.llamaj.gguf.Metadata;
import java.io.IOException;

/// The hyper-parameters every model family shares, under their old name.
///
/// @deprecated llamaj runs several families now: use [ModelConfig], which [LlamaModel#config] returns and which
///             implements this interface, so code written against the old record keeps compiling.
@Deprecated(since = "0.2")
public interface LlamaConfig {
    int contextLength();

    int embeddingLength();

    int blockCount();

    int feedForwardLength();

    int headCount();

    int headCountKv();

    int headSize();

    float rmsNormEpsilon();

    float ropeFreqBase();

    int ropeDimensionCount();

    int vocabSize();

    int kvDim();

    int qDim();

    /// @deprecated use [ModelConfig#from]
    @Deprecated(since = "0.2")
    static LlamaConfig from(Metadata md) throws IOException {
        return ModelConfig.from(md);
    }
}
