package dev.llamaj.langchain4j;

import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.output.Response;
import dev.langchain4j.model.output.TokenUsage;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.LoadOptions;
import dev.llamaj.engine.Pooling;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/// A LangChain4j [EmbeddingModel] over the in-process engine ([LlamaModel#embed]): each text's final hidden
/// states pooled (the model's own pooling unless [Builder#pooling] says otherwise) and scaled to unit length.
/// Use a model trained for embeddings (Qwen3-Embedding); a chat model gives weak ones.
///
/// ```java
/// EmbeddingModel embeddings = LlamajEmbeddingModel.builder()
///         .modelPath(Path.of("Qwen3-Embedding-0.6B-Q8_0.gguf")).build();
/// Embedding e = embeddings.embed("The capital of China is Beijing.").content();
/// ```
///
/// Thread-safe: each call computes in a session of its own.
public final class LlamajEmbeddingModel implements EmbeddingModel, AutoCloseable {
    private final LlamaModel model;
    private final boolean ownsModel;
    private final Pooling pooling;
    private final String modelName;

    private LlamajEmbeddingModel(Builder b) {
        if ((b.model == null) == (b.modelPath == null)) {
            throw new IllegalArgumentException("give either modelPath or model");
        }
        LlamaModel m = b.model;
        if (m == null) {
            LoadOptions options = LoadOptions.defaults();
            if (b.threads != null) {
                options = options.withThreads(b.threads);
            }
            try {
                m = LlamaModel.load(b.modelPath, options);
            } catch (IOException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }
        this.model = m;
        this.ownsModel = b.model == null;
        this.pooling = b.pooling != null ? b.pooling : Pooling.of(m);
        String file = m.file().path().getFileName().toString();
        this.modelName = b.modelName != null ? b.modelName
                : file.toLowerCase(Locale.ROOT).endsWith(".gguf") ? file.substring(0, file.length() - 5) : file;
    }

    public static Builder builder() {
        return new Builder();
    }

    /// Builds a [LlamajEmbeddingModel].
    public static final class Builder {
        private Path modelPath;
        private LlamaModel model;
        private Integer threads;
        private Pooling pooling;
        private String modelName;

        private Builder() {}

        /// The GGUF file to load; the built model owns it and unmaps it on `close()`.
        public Builder modelPath(Path modelPath) {
            this.modelPath = Objects.requireNonNull(modelPath, "modelPath");
            return this;
        }

        /// A model already loaded and shared; its owner closes it.
        public Builder model(LlamaModel model) {
            this.model = Objects.requireNonNull(model, "model");
            return this;
        }

        /// Compute threads per call (with [#modelPath]; default: the available processors).
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /// `MEAN` or `LAST`; default: what the model file says ([Pooling#of]).
        public Builder pooling(Pooling pooling) {
            this.pooling = pooling;
            return this;
        }

        /// The name [#modelName()] returns; default: the file name without `.gguf`.
        public Builder modelName(String modelName) {
            this.modelName = modelName;
            return this;
        }

        /// @throws IllegalArgumentException for a model file that cannot be loaded
        public LlamajEmbeddingModel build() {
            return new LlamajEmbeddingModel(this);
        }
    }

    @Override
    public Response<List<Embedding>> embedAll(List<TextSegment> segments) {
        List<String> texts = new ArrayList<>(segments.size());
        int tokens = 0;
        for (TextSegment s : segments) {
            texts.add(s.text());
            tokens += model.encodeForEmbedding(s.text()).length;
        }
        float[][] vectors = model.embed(texts, pooling);
        List<Embedding> out = new ArrayList<>(vectors.length);
        for (float[] v : vectors) {
            out.add(Embedding.from(v));
        }
        return Response.from(out, new TokenUsage(tokens));
    }

    @Override
    public int dimension() {
        return model.config().embeddingLength();
    }

    @Override
    public String modelName() {
        return modelName;
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    @Override
    public void close() {
        if (ownsModel) {
            model.close();
        }
    }
}
