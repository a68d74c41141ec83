package dev.llamaj.engine;

import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;

/// A model loaded from a GGUF file: configuration, tokenizer and memory-mapped weights. Every family in
/// [Architecture] loads through this class (the name is historical).
///
/// Loading maps the file (the weights are not copied: the operating system pages them in as they are used) and
/// checks every tensor's name, shape and type against the configuration, so a model that loads can run. A model
/// is immutable and thread-safe: load it once and open a [Session] per conversation, on any threads.
///
/// ```java
/// try (LlamaModel model = LlamaModel.load(Path.of("model.gguf"));
///      Session session = model.newSession(2048)) {
///     Completion c = session.generate("Once upon a time", 100, Sampler.greedy(), System.out::print);
/// }
/// ```
///
/// The kernels use the Vector API, an incubator module: the JVM must run with
/// `--add-modules jdk.incubator.vector` (`llama.jar` adds it by itself).
public final class LlamaModel implements AutoCloseable {
    /// The default context of a session: the model's own, capped so that a 128K-token model does not reserve a
    /// 128K-token cache by default.
    public static final int DEFAULT_CONTEXT_CAP = 4096;

    private final GGUFFile file;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final Weights weights;
    private final Transformer transformer;
    private final LoadOptions options;
    /// Whether inputs end with the end token (`tokenizer.ggml.add_eos_token`), for [#encodeForEmbedding].
    private final boolean addEos;

    private LlamaModel(GGUFFile file, ModelConfig config, Tokenizer tokenizer, Weights weights, LoadOptions options) {
        this.file = file;
        this.config = config;
        this.tokenizer = tokenizer;
        this.weights = weights;
        this.transformer = new Transformer(config, weights, options, tokenizer.vocabulary().size());
        this.options = options;
        boolean eos;
        try {
            eos = file.metadata().bool("tokenizer.ggml.add_eos_token", false);
        } catch (dev.llamaj.gguf.GGUFFormatException e) {
            eos = false; // a key of another type: llama.cpp would not add the token either
        }
        this.addEos = eos;
    }

    /// Loads `path` with one compute thread per available processor.
    ///
    /// @throws IOException if the file is missing or unreadable, malformed (`GGUFFormatException`) or not a
    ///         model llamaj can run (`UnsupportedModelException`)
    /// @throws IllegalStateException if the Vector API module is not available
    public static LlamaModel load(Path path) throws IOException {
        return load(path, LoadOptions.defaults());
    }

    /// Loads `path`; sessions compute with `threads` threads each.
    public static LlamaModel load(Path path, int threads) throws IOException {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be 1 or more, got " + threads);
        }
        return load(path, LoadOptions.defaults().withThreads(threads));
    }

    /// Loads `path` as `options` say.
    public static LlamaModel load(Path path, LoadOptions options) throws IOException {
        requireVectorApi();
        GGUFFile file = GGUFFile.open(path);
        try {
            ModelConfig config = ModelConfig.from(file.metadata());
            try {
                KVCache.check(config, options.cacheTypeK(), options.cacheTypeV());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(path + ": " + e.getMessage(), e);
            }
            Tokenizer tokenizer = Tokenizer.from(file.metadata());
            // The classifier may have more rows than the vocabulary has tokens (Qwen pads its matrices to a
            // multiple of 128): those logits are never sampled. Fewer rows would leave tokens without an embedding.
            if (tokenizer.vocabulary().size() > config.vocabSize()) {
                throw new dev.llamaj.gguf.UnsupportedModelException(path + ": the vocabulary has "
                        + tokenizer.vocabulary().size() + " tokens but the model only " + config.vocabSize());
            }
            Weights weights = Weights.map(file, config, options);
            return new LlamaModel(file, config, tokenizer, weights, options);
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
    }

    static void requireVectorApi() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            throw new IllegalStateException(
                    "llamaj needs the Vector API: run java with --add-modules jdk.incubator.vector");
        }
    }

    public ModelConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /// The underlying file, for its metadata and tensor table.
    public GGUFFile file() {
        return file;
    }

    public int threads() {
        return options.threads();
    }

    /// The options the model was loaded with.
    public LoadOptions options() {
        return options;
    }

    Weights weights() {
        return weights;
    }

    /// Bytes of weights one generated token reads (the memory traffic that bounds generation speed).
    public long bytesPerToken() {
        return weights.matrixBytes();
    }

    /// Bytes of memory the weights take beyond the file's: what the load-time repack into kernel layouts added
    /// (0 when loaded with `LoadOptions.withRepack(false)`). The model's resident size is at most the file's plus this.
    public long repackedExtraBytes() {
        return weights.repacking().extraBytes();
    }

    /// Why the load-time repack was skipped although the options asked for it (the weights did not fit in the
    /// memory available: the model runs from the file's mapping), or empty.
    public java.util.Optional<String> repackSkipped() {
        return java.util.Optional.ofNullable(weights.repacking().skipped());
    }

    /// Time the load-time repack took, in nanoseconds (0 if it did not run).
    public long repackNanos() {
        return weights.repacking().nanos();
    }

    /// Bytes of key/value cache per cached position (keys and values of every layer, in the types of
    /// [LoadOptions#cacheTypeK] and [LoadOptions#cacheTypeV]): what a generated token reads per earlier position,
    /// and what a session's cache takes per token of context.
    public long kvBytesPerPosition() {
        return KVCache.bytesPerPosition(config, options.cacheTypeK(), options.cacheTypeV());
    }

    /// Elements per block of the Hadamard rotation of the cache's keys and queries, or 0 when keys are stored as
    /// computed: 64, 128 or 256 for a quantized key type on heads of a multiple of 64 with
    /// [LoadOptions#withCacheRotation] on (llama.cpp logs the same choice as `attn_rot_k`).
    public int cacheRotationK() {
        return KVCache.rotationBlocks(config, options.cacheTypeK(), options.cacheTypeV(), options.cacheRotation())[0];
    }

    /// Elements per block of the rotation of the cache's values (64), or 0 when values are stored as computed
    /// (llama.cpp's `attn_rot_v`).
    public int cacheRotationV() {
        return KVCache.rotationBlocks(config, options.cacheTypeK(), options.cacheTypeV(), options.cacheRotation())[1];
    }

    /// Bytes of memory the key/value cache of a session of `contextLength` tokens takes.
    public long kvCacheBytes(int contextLength) {
        return KVCache.byteSize(config, contextLength, transformer.batchCapacity(contextLength),
                options.cacheTypeK(), options.cacheTypeV());
    }

    /// The context a session gets by default: the model's own, at most [#DEFAULT_CONTEXT_CAP].
    public int defaultContextLength() {
        return Math.min(config.contextLength(), DEFAULT_CONTEXT_CAP);
    }

    public Session newSession() {
        return newSession(defaultContextLength());
    }

    /// Opens a session with a key/value cache of `contextLength` tokens.
    ///
    /// @throws IllegalArgumentException if `contextLength` is not positive
    public Session newSession(int contextLength) {
        checkContext(contextLength);
        return new Session(this, transformer, contextLength, options.threads(), null);
    }

    /// Checks that a cache of `contextLength` tokens can be allocated.
    private void checkContext(int contextLength) {
        if (contextLength < 1) {
            throw new IllegalArgumentException("context length must be 1 or more, got " + contextLength);
        }
        long needed = kvCacheBytes(contextLength);
        Runtime rt = Runtime.getRuntime();
        long available = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (needed > available) {
            throw new ContextLengthException("a context of " + contextLength + " tokens needs "
                    + (needed >> 20) + " MiB for the key/value cache but only " + (available >> 20)
                    + " MiB of heap is free (or raise the heap limit, -Xmx)", ContextLengthException.Remedy.SHORTER);
        }
    }

    /// A session of `executor` (see [BatchExecutor#newSession(int)]).
    Session newSession(int contextLength, BatchExecutor executor) {
        checkContext(contextLength);
        return new Session(this, transformer, contextLength, options.threads(), executor);
    }

    /// Starts an executor that runs the forward passes of its sessions together (continuous batching, see
    /// [BatchExecutor]), with steps of up to 64 tokens of which up to 16 from prompts while sessions generate.
    public BatchExecutor newBatchExecutor() {
        return newBatchExecutor(BatchExecutor.DEFAULT_STEP_TOKENS, BatchExecutor.DEFAULT_PROMPT_CHUNK);
    }

    /// Starts an executor whose steps hold up to `stepTokens` tokens, of which up to `promptChunk` prompt tokens while
    /// sessions generate (fewer: generating sessions wait less for a long prompt; more: prompts finish sooner).
    ///
    /// @throws IllegalArgumentException if `stepTokens < 1` or `promptChunk < 0`
    public BatchExecutor newBatchExecutor(int stepTokens, int promptChunk) {
        return new BatchExecutor(this, transformer, options.threads(), stepTokens, promptChunk);
    }

    /// `text` as [Session#embed] should see it: tokenized with special-token text left as text, the start token
    /// first if the vocabulary asks for one (`tokenizer.ggml.add_bos_token`), and the end token last if it asks
    /// for that (`tokenizer.ggml.add_eos_token`: Qwen3-Embedding reads its embedding at that token).
    public int[] encodeForEmbedding(String text) {
        int[] body = tokenizer.encode(text);
        var v = tokenizer.vocabulary();
        boolean bos = v.addBos() && v.bos() >= 0;
        boolean eos = addEos && v.eos() >= 0;
        int[] tokens = new int[body.length + (bos ? 1 : 0) + (eos ? 1 : 0)];
        if (bos) {
            tokens[0] = v.bos();
        }
        System.arraycopy(body, 0, tokens, bos ? 1 : 0, body.length);
        if (eos) {
            tokens[tokens.length - 1] = v.eos();
        }
        return tokens;
    }

    /// The embeddings of `texts`, with the pooling the model was trained for ([Pooling#of]).
    ///
    /// @see #embed(List, Pooling)
    public float[][] embed(java.util.List<String> texts) {
        return embed(texts, Pooling.of(this));
    }

    /// The embeddings of `texts` ([Session#embed]: final hidden states pooled by `pooling`, unit length), one
    /// array of [ModelConfig#embeddingLength()] values per text, in order.
    ///
    /// Thread-safe like the rest of the model: each call opens a session of its own, sized to its longest text
    /// (a key/value cache and [#threads()] worker threads), and closes it before returning. A caller embedding
    /// many small batches can keep a [Session] and call [Session#embed] instead.
    ///
    /// @throws IllegalArgumentException if a text has no tokens (only possible without a start token), or more
    ///         than the model's context
    public float[][] embed(java.util.List<String> texts, Pooling pooling) {
        java.util.Objects.requireNonNull(pooling, "pooling");
        int[][] inputs = new int[texts.size()][];
        int longest = 1;
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = encodeForEmbedding(texts.get(i));
            longest = Math.max(longest, inputs[i].length);
        }
        float[][] out = new float[inputs.length][];
        if (inputs.length == 0) {
            return out;
        }
        if (longest > config.contextLength()) {
            throw new IllegalArgumentException("an input is " + longest + " tokens, more than the model's context of "
                    + config.contextLength());
        }
        try (Session session = newSession(longest)) {
            for (int i = 0; i < inputs.length; i++) {
                out[i] = session.embed(inputs[i], pooling);
            }
        }
        return out;
    }

    /// Unmaps the file. Sessions must be closed first; using one afterwards throws `IllegalStateException`.
    @Override
    public void close() {
        file.close();
    }
}
