package dev.llamaj.engine.synth;

import dev.llamaj.engine.Architecture;
import dev.llamaj.engine.LayerTensor;
import dev.llamaj.engine.ModelConfig;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.GGUFWriter;
import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.ValueType;
import dev.llamaj.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;

/// A GGUF model of a real Llama shape filled with random weights, so that benchmarks run at real sizes with no
/// download.
///
/// The file is what llama.cpp's converter and `llama-quantize` would write for that shape: the standard tensor
/// names (`token_embd.weight`, `blk.N.attn_q.weight`, ..., `output_norm.weight`, `output.weight`, and for Llama 3
/// shapes `rope_freqs.weight`), every `llama.*` key with the GGUF type llama.cpp insists on (`UINT32` counts,
/// `FLOAT32` epsilon and RoPE base), `general.file_type`, and a vocabulary: the `tokenizer.*` keys of a
/// vocabulary-only GGUF ([#withVocabulary(Path)]), or else a generated SentencePiece vocabulary with byte fallback
/// of the shape's size. llama.cpp loads these files as well as llamaj does.
///
/// Weights are random but valid and of a realistic magnitude: floats are about `N(0, 0.02)`; quantized tensors are
/// random quants under fp16 scales chosen so that the dequantized weights have a standard deviation of about 0.02
/// (never NaN or infinite); norm vectors are near 1. A plain [Type] writes every matrix in that type (as
/// `llama-quantize --pure`); the mixes `Q3_K_M`, `Q4_K_M` and `Q5_K_M` follow llama.cpp's rules (`Q6_K` for the
/// classifier; for `Q4_K_M`/`Q5_K_M` also for `attn_v` and `ffn_down` in about half the layers, for `Q3_K_M` `Q4_K`
/// or `Q5_K` for `attn_v`, `ffn_down` and `attn_output`). The same seed gives the same bytes, whatever the
/// number of threads.
///
/// Writing streams tensor by tensor, in chunks of a few MiB generated in parallel, so an 8B model needs tens of
/// megabytes of memory, not gigabytes; a 1B `Q4_0` file takes seconds.
///
/// ```java
/// SyntheticModel.of(SyntheticModel.Shape.LLAMA_3_2_1B, SyntheticModel.Type.Q4_0)
///         .withSeed(42)
///         .withVocabulary(Path.of("llama3-bpe.gguf"))
///         .write(Path.of("llama-3.2-1b-q4_0.gguf"));
/// ```
public final class SyntheticModel {

    /// Llama 3's RoPE frequency scaling (`rope_scaling` of type `llama3` in a Hugging Face config), which the
    /// converter turns into the `rope_freqs.weight` tensor of per-pair frequency divisors.
    ///
    /// @param factor                 divisor of the low frequencies (32 for Llama 3.2, 8 for Llama 3.1)
    /// @param lowFreqFactor          `low_freq_factor`
    /// @param highFreqFactor         `high_freq_factor`
    /// @param originalContextLength  `original_max_position_embeddings`
    public record RopeScaling(float factor, float lowFreqFactor, float highFreqFactor, int originalContextLength) {}

    /// The hyper-parameters of a model. Field names follow [ModelConfig].
    ///
    /// @param architecture       the family, whose table ([Architecture#layerTensors]) names the layer's tensors
    /// @param headSize           width of one attention head (written as `key_length`/`value_length`)
    /// @param ropeDimensionCount rotated dimensions of a head (less than `headSize` for partial rotary)
    /// @param ropeScaling        Llama 3 frequency scaling, or `null` for plain RoPE
    /// @param tiedEmbeddings     whether the classifier reuses `token_embd.weight` (no `output.weight` tensor)
    /// @param slidingWindow      the window of the family's local layers, 0 for none
    public record Shape(String name, Architecture architecture, int embeddingLength, int blockCount, int headCount,
                        int headCountKv, int headSize, int feedForwardLength, int vocabSize, int contextLength,
                        float ropeFreqBase, int ropeDimensionCount, float rmsNormEpsilon, boolean tiedEmbeddings,
                        RopeScaling ropeScaling, int slidingWindow) {

        /// A Llama shape with heads of `embeddingLength / headCount`, all of each rotated.
        public Shape(String name, int embeddingLength, int blockCount, int headCount, int headCountKv,
                     int feedForwardLength, int vocabSize, int contextLength, float ropeFreqBase,
                     float rmsNormEpsilon, boolean tiedEmbeddings, RopeScaling ropeScaling) {
            this(name, Architecture.LLAMA, embeddingLength, blockCount, headCount, headCountKv,
                    headCount > 0 ? embeddingLength / headCount : 0, feedForwardLength, vocabSize, contextLength,
                    ropeFreqBase, headCount > 0 ? embeddingLength / headCount : 0, rmsNormEpsilon, tiedEmbeddings,
                    ropeScaling, 0);
        }

        /// A few-hundred-kilobyte model for tests: every dimension a multiple of 256, so every type fits.
        public static final Shape TINY = new Shape("tiny", 256, 2, 4, 2, 512, 512, 512, 500000f, 1e-5f, false,
                new RopeScaling(32f, 1f, 4f, 8192));
        /// Llama 3.2 1B: 1.24 B parameters.
        public static final Shape LLAMA_3_2_1B = new Shape("llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256, 131072,
                500000f, 1e-5f, true, new RopeScaling(32f, 1f, 4f, 8192));
        /// Llama 3.2 3B: 3.21 B parameters.
        public static final Shape LLAMA_3_2_3B = new Shape("llama-3.2-3b", 3072, 28, 24, 8, 8192, 128256, 131072,
                500000f, 1e-5f, true, new RopeScaling(32f, 1f, 4f, 8192));
        /// Llama 3.1 8B: 8.03 B parameters, separate classifier.
        public static final Shape LLAMA_3_1_8B = new Shape("llama-3.1-8b", 4096, 32, 32, 8, 14336, 128256, 131072,
                500000f, 1e-5f, false, new RopeScaling(8f, 1f, 4f, 8192));
        /// TinyLlama 1.1B: 1.10 B parameters, Llama 2 architecture and vocabulary size.
        public static final Shape TINYLLAMA_1_1B = new Shape("tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048,
                10000f, 1e-5f, false, null);
        /// Qwen2.5 7B: Q/K/V biases, NEOX RoPE, 7.62 B parameters.
        public static final Shape QWEN2_5_7B = new Shape("qwen2.5-7b", Architecture.QWEN2, 3584, 28, 28, 4, 128,
                18944, 152064, 32768, 1000000f, 128, 1e-6f, false, null, 0);
        /// Qwen3 8B: per-head Q/K norms, 8.19 B parameters.
        public static final Shape QWEN3_8B = new Shape("qwen3-8b", Architecture.QWEN3, 4096, 36, 32, 8, 128, 12288,
                151936, 40960, 1000000f, 128, 1e-6f, false, null, 0);
        /// Gemma 3 4B (the text model): heads of 256, five sliding-window layers to one global, 3.88 B parameters.
        public static final Shape GEMMA_3_4B = new Shape("gemma-3-4b", Architecture.GEMMA3, 2560, 34, 8, 4, 256,
                10240, 262208, 131072, 1000000f, 256, 1e-6f, true, null, 1024);
        /// Phi-4-mini: fused QKV and gate+up, partial rotary (96 of 128), 3.84 B parameters.
        public static final Shape PHI_4_MINI = new Shape("phi-4-mini", Architecture.PHI3, 3072, 32, 24, 8, 128, 8192,
                200064, 131072, 10000f, 96, 1e-5f, true, null, 0);
        /// Mistral Nemo 12B: Llama graph with heads of 128 under a 5120 embedding, 12.2 B parameters.
        public static final Shape MISTRAL_NEMO_12B = new Shape("mistral-nemo-12b", Architecture.LLAMA, 5120, 40, 32,
                8, 128, 14336, 131072, 1024000, 1000000f, 128, 1e-5f, false, null, 0);
        /// Granite 3 8B: Llama graph with embedding, residual, attention and logit scales, 8.17 B parameters.
        public static final Shape GRANITE_3_8B = new Shape("granite-3-8b", Architecture.GRANITE, 4096, 40, 32, 8,
                128, 12800, 49155, 131072, 10000000f, 128, 1e-5f, true, null, 0);

        private static final List<Shape> ALL = List.of(TINY, LLAMA_3_2_1B, LLAMA_3_2_3B, LLAMA_3_1_8B, TINYLLAMA_1_1B,
                QWEN2_5_7B, QWEN3_8B, GEMMA_3_4B, PHI_4_MINI, MISTRAL_NEMO_12B, GRANITE_3_8B);

        /// @throws IllegalArgumentException if a dimension is not positive or the heads do not divide evenly
        public Shape {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(architecture, "architecture");
            if (embeddingLength < 1 || blockCount < 1 || headCount < 1 || headCountKv < 1 || feedForwardLength < 1
                    || vocabSize < 1 || contextLength < 1 || headSize < 1 || slidingWindow < 0) {
                throw new IllegalArgumentException("shape '" + name + "': every dimension must be positive");
            }
            if (headCount % headCountKv != 0 || headSize % 2 != 0 || ropeDimensionCount % 2 != 0
                    || ropeDimensionCount > headSize || ropeDimensionCount < 0) {
                throw new IllegalArgumentException("shape '" + name + "': " + headCount + " heads, " + headCountKv
                        + " key/value heads of " + headSize + " with " + ropeDimensionCount
                        + " rotated dimensions do not divide into even-sized heads");
            }
            if (!(ropeFreqBase > 1) || !(rmsNormEpsilon > 0)) {
                throw new IllegalArgumentException("shape '" + name + "': RoPE base and RMS epsilon must be positive");
            }
        }

        /// This shape in another family (for example a tiny Gemma 3 for tests): the same dimensions, the family's
        /// tensors. Gemma's local layers get a window of 8 positions unless the shape has one.
        public Shape withArchitecture(Architecture family) {
            int window = slidingWindow > 0 ? slidingWindow : 8;
            boolean local = java.util.stream.IntStream.range(0, blockCount).anyMatch(family::isLocal);
            return new Shape(name, family, embeddingLength, blockCount, headCount, headCountKv, headSize,
                    feedForwardLength, vocabSize, contextLength, ropeFreqBase, ropeDimensionCount, rmsNormEpsilon,
                    tiedEmbeddings, family == Architecture.LLAMA ? ropeScaling : null, local ? window : 0);
        }

        /// The dimensions of a model of this shape with `vocabSize` tokens, which size the architecture's tensors
        /// ([LayerTensor#rows]); scales are left neutral (the file's keys set them, see [#header]).
        ModelConfig dimensions(int vocabSize) {
            return new ModelConfig(architecture, contextLength, embeddingLength, blockCount, feedForwardLength,
                    headCount, headCountKv, headSize, rmsNormEpsilon, ropeFreqBase, ropeDimensionCount, vocabSize,
                    new ModelConfig.Scales(1f, 1f, 1f, 1f, 0f, 0f, 0f, 0), ModelConfig.RopeScaling.NONE, slidingWindow,
                    10000f);
        }

        /// The named shapes: `tiny`, `llama-3.2-1b`, `llama-3.2-3b`, `llama-3.1-8b`, `tinyllama-1.1b`, `qwen2.5-7b`,
        /// `qwen3-8b`, `gemma-3-4b`, `phi-4-mini`, `mistral-nemo-12b`, `granite-3-8b`.
        public static List<Shape> all() {
            return ALL;
        }

        /// The shape called `name` (case-insensitive).
        ///
        /// @throws IllegalArgumentException naming the known shapes, if there is none
        public static Shape named(String name) {
            for (Shape s : ALL) {
                if (s.name.equalsIgnoreCase(name)) {
                    return s;
                }
            }
            throw new IllegalArgumentException("unknown shape '" + name + "' (known: "
                    + ALL.stream().map(Shape::name).collect(Collectors.joining(", ")) + ")");
        }
    }

    /// What the matrices are stored as: one ggml type for all of them, or one of llama.cpp's mixes. Each has the
    /// `general.file_type` (llama.cpp's `llama_ftype`) a file of that kind carries; a plain K-quant type takes the
    /// value of its small mix (`Q4_K` → `MOSTLY_Q4_K_S`), which is what `llama-quantize --pure` writes for it.
    public enum Type {
        F32(GGMLType.F32, 0),
        F16(GGMLType.F16, 1),
        BF16(GGMLType.BF16, 32),
        Q8_0(GGMLType.Q8_0, 7),
        Q4_0(GGMLType.Q4_0, 2),
        Q4_1(GGMLType.Q4_1, 3),
        Q5_0(GGMLType.Q5_0, 8),
        Q5_1(GGMLType.Q5_1, 9),
        Q2_K(GGMLType.Q2_K, 10),
        Q3_K(GGMLType.Q3_K, 11),
        Q4_K(GGMLType.Q4_K, 14),
        Q5_K(GGMLType.Q5_K, 16),
        Q6_K(GGMLType.Q6_K, 18),
        /// Mostly `Q3_K`; `Q6_K` for the classifier, `Q4_K` for `attn_output`, `attn_v` and `ffn_down`, except
        /// `Q5_K` for `attn_v` in the first two layers and `ffn_down` in the first sixteenth of them.
        Q3_K_M(GGMLType.Q3_K, 12),
        /// Mostly `Q4_K`; `Q6_K` for the classifier and for `attn_v` and `ffn_down` in about half the layers.
        Q4_K_M(GGMLType.Q4_K, 15),
        /// Mostly `Q5_K`; `Q6_K` for the classifier and for `attn_v` and `ffn_down` in about half the layers.
        Q5_K_M(GGMLType.Q5_K, 17);

        private final GGMLType base;
        private final int fileType;

        Type(GGMLType base, int fileType) {
            this.base = base;
            this.fileType = fileType;
        }

        /// The type of most matrices.
        public GGMLType baseType() {
            return base;
        }

        /// llama.cpp's `llama_ftype` value, written as `general.file_type`.
        public int fileType() {
            return fileType;
        }

        /// Whether this is one of llama.cpp's mixes rather than one type for every matrix.
        boolean mix() {
            return this == Q3_K_M || this == Q4_K_M || this == Q5_K_M;
        }

        /// The type called `name` (case-insensitive).
        ///
        /// @throws IllegalArgumentException naming the known types, if there is none
        public static Type named(String name) {
            for (Type t : values()) {
                if (t.name().equalsIgnoreCase(name)) {
                    return t;
                }
            }
            throw new IllegalArgumentException("unknown type '" + name + "' (known: "
                    + Arrays.stream(values()).map(Type::name).collect(Collectors.joining(", ")) + ")");
        }
    }

    /// One tensor of the file: its GGUF name, type and shape (`shape[0]` is the contiguous dimension).
    public record Tensor(String name, GGMLType type, long[] shape) {
        public Tensor {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long elementCount() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        public long byteSize() {
            return type.byteSize(elementCount());
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tensor t && name.equals(t.name) && type == t.type && Arrays.equals(shape, t.shape);
        }

        @Override
        public int hashCode() {
            return name.hashCode() * 31 + Arrays.hashCode(shape);
        }

        @Override
        public String toString() {
            return name + " " + type + " " + Arrays.toString(shape);
        }
    }

    // Granite 3 8B's constants (its config.json)
    private static final float GRANITE_EMBEDDING_SCALE = 12f;
    private static final float GRANITE_RESIDUAL_SCALE = 0.22f;
    private static final float GRANITE_ATTENTION_SCALE = 0.0078125f;
    private static final float GRANITE_LOGIT_SCALE = 16f;

    /// Standard deviation of the random weights, about that of trained Llama matrices.
    static final float SIGMA = 0.02f;
    /// Bytes generated per parallel task and written per channel write.
    static final int CHUNK_BYTES = 4 << 20;

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private enum Kind { MATRIX, NORM, BIAS, ROPE_FACTORS }

    private record Planned(Tensor tensor, Kind kind) {}

    private final Shape shape;
    private final Type type;
    private final long seed;
    private final Metadata vocabulary;

    private SyntheticModel(Shape shape, Type type, long seed, Metadata vocabulary) {
        this.shape = shape;
        this.type = type;
        this.seed = seed;
        this.vocabulary = vocabulary;
    }

    /// A model of `shape` with matrices of `type`, seed 0 and a generated vocabulary.
    ///
    /// @throws IllegalArgumentException if a matrix dimension of `shape` is not a whole number of `type` blocks, or
    ///         the vocabulary size is too small for the generated vocabulary (3 specials and 256 byte tokens)
    public static SyntheticModel of(Shape shape, Type type) {
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(type, "type");
        for (int cols : new int[] {shape.embeddingLength(), shape.feedForwardLength(),
                shape.headCount() * shape.headSize()}) {
            for (GGMLType t : new GGMLType[] {type.baseType(), mixedType(type)}) {
                if (cols % t.blockSize() != 0) {
                    throw new IllegalArgumentException("shape '" + shape.name() + "' cannot hold " + type
                            + " weights: rows of " + cols + " are not a whole number of " + t.blockSize()
                            + "-weight " + t + " blocks");
                }
            }
        }
        if (shape.vocabSize() < MIN_GENERATED_VOCABULARY) {
            throw new IllegalArgumentException("shape '" + shape.name() + "': a generated vocabulary needs at least "
                    + MIN_GENERATED_VOCABULARY + " tokens, got " + shape.vocabSize());
        }
        return new SyntheticModel(shape, type, 0, null);
    }

    /// The same model with another seed.
    public SyntheticModel withSeed(long seed) {
        return new SyntheticModel(shape, type, seed, vocabulary);
    }

    /// The same model with the vocabulary of a GGUF file (all its `tokenizer.*` keys); its token count replaces
    /// the shape's vocabulary size.
    ///
    /// @throws IOException if the file cannot be read, has no vocabulary, or one llamaj cannot tokenize with
    public SyntheticModel withVocabulary(Path vocabularyFile) throws IOException {
        try (GGUFFile f = GGUFFile.open(vocabularyFile)) {
            return withVocabulary(f.metadata());
        }
    }

    /// The same model with the `tokenizer.*` keys of `metadata` as its vocabulary.
    ///
    /// @throws IOException if `metadata` holds no vocabulary, or one llamaj cannot tokenize with
    public SyntheticModel withVocabulary(Metadata metadata) throws IOException {
        if (!metadata.contains("tokenizer.ggml.model") || !metadata.contains("tokenizer.ggml.tokens")) {
            throw new IOException(metadata.source() + ": no vocabulary (the keys 'tokenizer.ggml.model' and "
                    + "'tokenizer.ggml.tokens' are missing)");
        }
        Tokenizer.from(metadata); // fail now rather than when the model is loaded
        return new SyntheticModel(shape, type, seed, metadata);
    }

    public Shape shape() {
        return shape;
    }

    public Type type() {
        return type;
    }

    public long seed() {
        return seed;
    }

    /// Tokens in the vocabulary: the vocabulary file's count if one was given, else the shape's.
    public int vocabSize() {
        if (vocabulary == null) {
            return shape.vocabSize();
        }
        try {
            return vocabulary.stringArray("tokenizer.ggml.tokens").length;
        } catch (IOException e) {
            throw new UncheckedIOException(e); // checked in withVocabulary
        }
    }

    /// The tensors in file order.
    public List<Tensor> tensors() {
        return plan().stream().map(Planned::tensor).toList();
    }

    /// Weights in the file, counting a tied embedding once (llama.cpp's "params").
    public long parameterCount() {
        return tensors().stream().mapToLong(Tensor::elementCount).sum();
    }

    /// Bytes of tensor data (without the header and alignment padding).
    public long tensorBytes() {
        return tensors().stream().mapToLong(Tensor::byteSize).sum();
    }

    /// The ggml type llama.cpp gives matrix `role` (`attn_v`, `ffn_down`, `output`, `token_embd`, ...) of layer
    /// `layer` (-1 for the ones outside the layers).
    GGMLType matrixType(String role, int layer) {
        if (!type.mix()) {
            return type.baseType();
        }
        // llama-quant.cpp, llama_tensor_get_type: the classifier (the embedding when tied) gets Q6_K ...
        if (role.equals("output") || (role.equals("token_embd") && shape.tiedEmbeddings())) {
            return GGMLType.Q6_K;
        }
        if (type == Type.Q3_K_M) { // ... Q3_K_M raises attn_v, ffn_down and attn_output (dense, not Falcon) ...
            return switch (role) {
                case "attn_v" -> layer < 2 ? GGMLType.Q5_K : GGMLType.Q4_K;
                case "ffn_down" -> layer < shape.blockCount() / 16 ? GGMLType.Q5_K : GGMLType.Q4_K;
                case "attn_output" -> GGMLType.Q4_K;
                default -> type.baseType();
            };
        }
        // ... and attn_v and ffn_down get Q6_K in the layers use_more_bits picks
        if ((role.equals("attn_v") || role.equals("ffn_down")) && useMoreBits(layer, shape.blockCount())) {
            return GGMLType.Q6_K;
        }
        return type.baseType();
    }

    /// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third one between.
    static boolean useMoreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }

    /// A type a mix uses besides its base type, for the block-size check (the K-quant types of every mix share
    /// their 256-weight blocks).
    private static GGMLType mixedType(Type type) {
        return type.mix() ? GGMLType.Q6_K : type.baseType();
    }

    /// The tensors in llama.cpp's order; a layer's come from the architecture's table.
    private List<Planned> plan() {
        ModelConfig c = shape.dimensions(vocabSize());
        int dim = shape.embeddingLength();
        List<Planned> p = new ArrayList<>();
        if (shape.ropeScaling() != null) {
            p.add(new Planned(new Tensor("rope_freqs.weight", GGMLType.F32, new long[] {shape.ropeDimensionCount() / 2}),
                    Kind.ROPE_FACTORS));
        }
        p.add(matrix("token_embd", -1, dim, vocabSize()));
        for (int l = 0; l < shape.blockCount(); l++) {
            for (LayerTensor t : shape.architecture().layerTensors()) {
                if (t.isMatrix()) {
                    p.add(matrix(t.suffix.substring(0, t.suffix.lastIndexOf('.')), l, t.cols(c), t.rows(c)));
                } else {
                    p.add(new Planned(new Tensor(t.name(l), GGMLType.F32, new long[] {t.rows(c)}),
                            t.isNorm() ? Kind.NORM : Kind.BIAS));
                }
            }
        }
        p.add(norm("output_norm.weight", dim));
        if (!shape.tiedEmbeddings()) {
            p.add(matrix("output", -1, dim, vocabSize()));
        }
        return p;
    }

    private Planned matrix(String role, int layer, long cols, long rows) {
        String name = layer < 0 ? role + ".weight" : "blk." + layer + "." + role + ".weight";
        return new Planned(new Tensor(name, matrixType(role, layer), new long[] {cols, rows}), Kind.MATRIX);
    }

    private static Planned norm(String name, long length) {
        return new Planned(new Tensor(name, GGMLType.F32, new long[] {length}), Kind.NORM);
    }

    /// Writes the model to `path`, replacing any file there.
    ///
    /// @throws IOException if the file cannot be written
    public void write(Path path) throws IOException {
        try (Generator g = new Generator(Runtime.getRuntime().availableProcessors())) {
            GGUFWriter w = header();
            for (Planned p : plan()) {
                w.addTensor(p.tensor().name(), p.tensor().type(), p.tensor().shape(), out -> g.stream(p, out));
            }
            w.write(path);
        }
    }

    /// Writes the header and tensor table of the model, with the tensor data left as a hole: a sparse file of the
    /// full size that takes almost no disk space and reads as zeros. For checking metadata and layout (for example
    /// in tests) without writing gigabytes.
    ///
    /// @throws IOException if the file cannot be written
    public void writeLayoutOnly(Path path) throws IOException {
        GGUFWriter w = header();
        for (Planned p : plan()) {
            long size = p.tensor().byteSize();
            w.addTensor(p.tensor().name(), p.tensor().type(), p.tensor().shape(), out -> {
                SeekableByteChannel s = (SeekableByteChannel) out;
                s.position(s.position() + size - 1);
                s.write(ByteBuffer.allocate(1)); // the last byte, so that the file reaches its full length
            });
        }
        w.write(path);
    }

    private GGUFWriter header() throws IOException {
        GGUFWriter w = new GGUFWriter();
        boolean quantized = tensors().stream().anyMatch(t -> t.type().isQuantized());
        w.putString("general.architecture", shape.architecture().ggufName);
        w.putString("general.type", "model");
        w.putString("general.name", String.format(Locale.ROOT, "synthetic %s %s (seed %d)", shape.name(), type, seed));
        w.putUInt32("general.file_type", type.fileType());
        if (quantized) {
            w.putUInt32("general.quantization_version", 2);
        }
        String k = shape.architecture().ggufName + ".";
        w.putUInt32(k + "vocab_size", vocabSize());
        w.putUInt32(k + "context_length", shape.contextLength());
        w.putUInt32(k + "embedding_length", shape.embeddingLength());
        w.putUInt32(k + "block_count", shape.blockCount());
        w.putUInt32(k + "feed_forward_length", shape.feedForwardLength());
        w.putUInt32(k + "rope.dimension_count", shape.ropeDimensionCount());
        w.putUInt32(k + "attention.head_count", shape.headCount());
        w.putUInt32(k + "attention.head_count_kv", shape.headCountKv());
        w.putUInt32(k + "attention.key_length", shape.headSize());
        w.putUInt32(k + "attention.value_length", shape.headSize());
        w.putFloat32(k + "rope.freq_base", shape.ropeFreqBase());
        w.putFloat32(k + "attention.layer_norm_rms_epsilon", shape.rmsNormEpsilon());
        if (shape.slidingWindow() > 0) {
            w.putUInt32(k + "attention.sliding_window", shape.slidingWindow());
        }
        if (shape.architecture() == Architecture.GRANITE) {
            w.putFloat32(k + "embedding_scale", GRANITE_EMBEDDING_SCALE);
            w.putFloat32(k + "residual_scale", GRANITE_RESIDUAL_SCALE);
            w.putFloat32(k + "attention.scale", GRANITE_ATTENTION_SCALE);
            w.putFloat32(k + "logit_scale", GRANITE_LOGIT_SCALE);
        }
        if (vocabulary != null) {
            w.putAll(vocabulary, key -> key.startsWith("tokenizer."));
        } else {
            putGeneratedVocabulary(w, shape.vocabSize());
        }
        return w;
    }

    // ---------------------------------------------------------------------------------------------------------
    // The generated vocabulary

    private static final int MIN_GENERATED_VOCABULARY = 3 + 256;
    private static final String FALLBACK_CHARACTERS =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";

    /// A SentencePiece vocabulary of `size` tokens as Llama 2's is laid out: `<unk>`, `<s>`, `</s>`, the 256 byte
    /// tokens `<0x00>`..`<0xFF>`, then pieces: `▁`, single characters with and without `▁`, then lowercase strings
    /// of growing length with and without `▁` (so every prefix of a piece is a piece and merges can build it).
    static void putGeneratedVocabulary(GGUFWriter w, int size) {
        String[] pieces = generatedPieces(size);
        float[] scores = new float[size];
        int[] types = new int[size];
        types[0] = 2; // unknown
        types[1] = 3; // control
        types[2] = 3;
        for (int i = 3; i < size; i++) {
            types[i] = i < 3 + 256 ? 6 : 1; // byte, normal
            scores[i] = i < 3 + 256 ? 0 : -(i - 3 - 256);
        }
        w.putString("tokenizer.ggml.model", "llama");
        w.putArray("tokenizer.ggml.tokens", ValueType.STRING, pieces);
        w.putArray("tokenizer.ggml.scores", ValueType.FLOAT32, scores);
        w.putArray("tokenizer.ggml.token_type", ValueType.INT32, types);
        w.putUInt32("tokenizer.ggml.bos_token_id", 1);
        w.putUInt32("tokenizer.ggml.eos_token_id", 2);
        w.putUInt32("tokenizer.ggml.unknown_token_id", 0);
        w.putBool("tokenizer.ggml.add_bos_token", true);
        w.putBool("tokenizer.ggml.add_eos_token", false);
    }

    static String[] generatedPieces(int size) {
        String[] pieces = new String[size];
        int n = 0;
        for (String s : new String[] {"<unk>", "<s>", "</s>"}) {
            pieces[n++] = s;
        }
        for (int b = 0; b < 256 && n < size; b++) {
            pieces[n++] = String.format("<0x%02X>", b);
        }
        if (n < size) {
            pieces[n++] = "\u2581";
        }
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < FALLBACK_CHARACTERS.length() && n < size; i++) {
                pieces[n++] = (pass == 0 ? "" : "\u2581") + FALLBACK_CHARACTERS.charAt(i);
            }
        }
        char[] letters = new char[8];
        for (int length = 2; n < size; length++) {
            long count = (long) Math.pow(26, length);
            for (long k = 0; k < count && n < size; k++) {
                long v = k;
                for (int i = length - 1; i >= 0; i--) {
                    letters[i] = (char) ('a' + v % 26);
                    v /= 26;
                }
                String s = new String(letters, 0, length);
                pieces[n++] = s;
                if (n < size) {
                    pieces[n++] = "\u2581" + s;
                }
            }
        }
        return pieces;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Llama 3 RoPE frequency factors

    /// The `rope_freqs.weight` values, computed as llama.cpp's `convert_hf_to_gguf.py` does for a `llama3`
    /// `rope_scaling` (in float32, as its torch code): for each pair `i`, `freq = 1 / base^(2i / headSize)` and
    /// `wavelen = 2π / freq`; wavelengths below `originalContext / highFreqFactor` keep factor 1, those above
    /// `originalContext / lowFreqFactor` get `factor`, and the ones between are interpolated smoothly.
    static float[] ropeFactors(int headSize, float base, RopeScaling r) {
        float[] factors = new float[headSize / 2];
        float lowFreqWavelen = r.originalContextLength() / r.lowFreqFactor();
        float highFreqWavelen = r.originalContextLength() / r.highFreqFactor();
        float twoPi = (float) (2 * Math.PI);
        for (int i = 0; i < factors.length; i++) {
            float exponent = (float) (2 * i) / headSize;
            float freq = 1f / (float) Math.pow(base, exponent);
            float wavelen = (1f / freq) * twoPi;
            if (wavelen < highFreqWavelen) {
                factors[i] = 1f;
            } else if (wavelen > lowFreqWavelen) {
                factors[i] = r.factor();
            } else {
                float smooth = ((1f / wavelen) * r.originalContextLength() - r.lowFreqFactor())
                        / (r.highFreqFactor() - r.lowFreqFactor());
                factors[i] = 1f / ((1f - smooth) / r.factor() + smooth);
            }
        }
        return factors;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Random blocks

    /// Fills `out` with random valid weights of `type` (whole blocks: its size must be a multiple of the block
    /// size in bytes), as [#write] does: floats about `N(0, 0.02)`, quantized blocks whose dequantized weights have
    /// about that spread. For benchmarks that need a weight matrix without a file.
    ///
    /// @throws IllegalArgumentException if `out` is not a whole number of blocks, or llamaj has no kernels for `type`
    public static void randomWeights(GGMLType type, MemorySegment out, long seed) {
        if (out.byteSize() % type.bytesPerBlock() != 0) {
            throw new IllegalArgumentException(out.byteSize() + " bytes are not a whole number of " + type + " blocks of "
                    + type.bytesPerBlock() + " bytes");
        }
        long blocks = out.byteSize() / type.bytesPerBlock();
        long perChunk = Math.max(1, CHUNK_BYTES / type.bytesPerBlock());
        for (long first = 0, chunk = 0; first < blocks; first += perChunk, chunk++) {
            long n = Math.min(perChunk, blocks - first);
            fillBlocks(type, out, first * type.bytesPerBlock(), n, new SplittableRandom(mix(seed, 0, chunk)));
        }
    }

    /// A well-mixed seed for chunk `chunk` of the tensor whose name hashes to `tensor` (SplitMix64's finaliser).
    private static long mix(long seed, int tensor, long chunk) {
        long z = seed * 0x9E3779B97F4A7C15L + tensor * 0xBF58476D1CE4E5B9L + chunk * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /// An approximately standard normal number from the 64 bits of `r`: the sum of four 16-bit uniforms, centred
    /// and scaled (Irwin–Hall; within 0.5% of the normal CDF and bounded by ±3.5).
    private static float gauss(long r) {
        int sum = (int) (r & 0xFFFF) + (int) (r >>> 16 & 0xFFFF) + (int) (r >>> 32 & 0xFFFF) + (int) (r >>> 48);
        return (sum - 131070f) * (1f / 37837.23f);
    }

    /// A per-block scale multiplier in [0.75, 1.25), so that blocks differ as real ones do.
    private static float jitter(SplittableRandom r) {
        return 0.75f + 0.5f * (r.nextInt() >>> 8) * (1f / (1 << 24));
    }

    private static void half(MemorySegment s, long offset, float value) {
        s.set(SHORT_LE, offset, Float.floatToFloat16(value));
    }

    private static void randomBytes(MemorySegment s, long offset, long bytes, SplittableRandom r) {
        long i = 0;
        for (; i + 8 <= bytes; i += 8) {
            s.set(LONG_LE, offset + i, r.nextLong());
        }
        for (; i < bytes; i++) {
            s.set(ValueLayout.JAVA_BYTE, offset + i, (byte) r.nextInt());
        }
    }

    /// Writes `blocks` random blocks of `type` at `offset` of `s`.
    ///
    /// Quantized blocks are random bytes, then their scale fields are set. Each scale constant is the target
    /// deviation 0.02 divided by the root mean square of what it multiplies under uniform random quants, for
    /// example `Q4_0`: `q − 8` over −8..7 has an RMS of 4.64. Types with a minimum centre the weights on 0 through
    /// it (`Q4_1`: `m = −7.5·d`; the K-quants pick per-group mins proportional to the scales).
    static void fillBlocks(GGMLType type, MemorySegment s, long offset, long blocks, SplittableRandom r) {
        int size = type.bytesPerBlock();
        switch (type) {
            case F32 -> {
                for (long i = 0; i < blocks; i++) {
                    s.set(FLOAT_LE, offset + 4 * i, SIGMA * gauss(r.nextLong()));
                }
            }
            case F16 -> {
                for (long i = 0; i < blocks; i++) {
                    s.set(SHORT_LE, offset + 2 * i, Float.floatToFloat16(SIGMA * gauss(r.nextLong())));
                }
            }
            case BF16 -> {
                for (long i = 0; i < blocks; i++) {
                    int bits = Float.floatToRawIntBits(SIGMA * gauss(r.nextLong()));
                    bits += 0x7FFF + ((bits >>> 16) & 1); // round to nearest even, as ggml_compute_fp32_to_bf16
                    s.set(SHORT_LE, offset + 2 * i, (short) (bits >>> 16));
                }
            }
            case Q4_0, Q5_0, Q8_0 -> {
                randomBytes(s, offset, blocks * size, r);
                float rms = switch (type) {
                    case Q4_0 -> 4.637f;  // q − 8, q ∈ 0..15
                    case Q5_0 -> 9.247f;  // q − 16, q ∈ 0..31
                    default -> 73.90f;    // int8
                };
                // ggml's Q4_0 and Q5_0 scales are signed (d = max / −8, the value of largest magnitude), which
                // centres the weights although q − 8 is not; Q8_0's are positive
                boolean signed = type != GGMLType.Q8_0;
                for (long b = 0; b < blocks; b++) {
                    float d = SIGMA / rms * jitter(r);
                    half(s, offset + b * size, signed && r.nextBoolean() ? -d : d);
                }
            }
            case Q4_1, Q5_1 -> {
                randomBytes(s, offset, blocks * size, r);
                float rms = type == GGMLType.Q4_1 ? 4.610f : 9.233f;
                float centre = type == GGMLType.Q4_1 ? 7.5f : 15.5f;
                for (long b = 0; b < blocks; b++) {
                    long o = offset + b * size;
                    float d = Float.float16ToFloat(Float.floatToFloat16(SIGMA / rms * jitter(r)));
                    half(s, o, d);
                    half(s, o + 2, -centre * d);
                }
            }
            case Q2_K -> {
                // w = d·sc·q − dmin·m, q ∈ 0..3, sc ∈ 4..15 (RMS 10.1), dmin = 1.5·d and m ≈ sc centre the group
                randomBytes(s, offset, blocks * size, r);
                for (long b = 0; b < blocks; b++) {
                    long o = offset + b * size;
                    for (int g = 0; g < 16; g++) {
                        int sc = 4 + r.nextInt(12);
                        int m = Math.clamp(sc + r.nextInt(3) - 1, 0, 15);
                        s.set(ValueLayout.JAVA_BYTE, o + g, (byte) (m << 4 | sc));
                    }
                    float d = Float.float16ToFloat(Float.floatToFloat16(SIGMA / (10.11f * 1.118f) * jitter(r)));
                    half(s, o + 80, d);
                    half(s, o + 82, 1.5f * d);
                }
            }
            case Q3_K -> {
                // w = d·(sc − 32)·q, q ∈ −4..3 (RMS 2.35), 6-bit sc from the random scale bytes (RMS of sc − 32: 18.5)
                randomBytes(s, offset, blocks * size, r);
                for (long b = 0; b < blocks; b++) {
                    half(s, offset + b * size + 108, SIGMA / (18.48f * 2.345f) * jitter(r));
                }
            }
            case Q4_K, Q5_K -> {
                // w = d·sc·q − dmin·m, sc ∈ 16..63 (RMS 41.9); q ∈ 0..15 (Q4_K) or 0..31 (Q5_K), centred through
                // dmin = 8·d (16·d) and m ≈ sc·15/16 (31/32)
                randomBytes(s, offset, blocks * size, r);
                boolean q5 = type == GGMLType.Q5_K;
                float rms = 41.86f * (q5 ? 9.233f : 4.610f);
                float minStep = q5 ? 16f : 8f;
                float ratio = q5 ? 31f / 32f : 15f / 16f;
                int[] sc = new int[8];
                int[] m = new int[8];
                for (long b = 0; b < blocks; b++) {
                    long o = offset + b * size;
                    for (int g = 0; g < 8; g++) {
                        sc[g] = 16 + r.nextInt(48);
                        m[g] = Math.clamp(Math.round(sc[g] * ratio) + r.nextInt(3) - 1, 0, 63);
                    }
                    packScaleMins(s, o + 4, sc, m);
                    float d = Float.float16ToFloat(Float.floatToFloat16(SIGMA / rms * jitter(r)));
                    half(s, o, d);
                    half(s, o + 2, minStep * d);
                }
            }
            case Q6_K -> {
                // w = d·sc·(q − 32), sc random int8 (RMS 73.9), q − 32 ∈ −32..31 (RMS 18.5)
                randomBytes(s, offset, blocks * size, r);
                for (long b = 0; b < blocks; b++) {
                    half(s, offset + b * size + 208, SIGMA / (73.90f * 18.48f) * jitter(r));
                }
            }
            default -> throw new IllegalArgumentException("no random blocks for " + type + " weights");
        }
    }

    /// Packs 8 six-bit (scale, min) pairs into the 12 bytes at `o`, the inverse of ggml's `get_scale_min_k4`:
    /// pairs 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); pairs 4..7 as nibbles in bytes 8..11
    /// with their top 2 bits in the top bits of bytes 0..3 (scales) and 4..7 (mins).
    private static void packScaleMins(MemorySegment s, long o, int[] sc, int[] m) {
        byte[] p = new byte[12];
        for (int g = 0; g < 4; g++) {
            p[g] = (byte) (sc[g] | (sc[g + 4] >> 4) << 6);
            p[g + 4] = (byte) (m[g] | (m[g + 4] >> 4) << 6);
            p[g + 8] = (byte) ((sc[g + 4] & 0xF) | (m[g + 4] & 0xF) << 4);
        }
        MemorySegment.copy(p, 0, s, ValueLayout.JAVA_BYTE, o, 12);
    }

    /// Streams tensors: chunks of [#CHUNK_BYTES] generated on a thread pool, written in order, at most `window` in
    /// flight so memory stays bounded whatever the tensor's size.
    private final class Generator implements AutoCloseable {
        private final ExecutorService pool;
        private final int window;
        private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();

        Generator(int threads) {
            this.pool = Executors.newFixedThreadPool(threads, r -> {
                Thread t = new Thread(r, "llamaj-synthetic");
                t.setDaemon(true);
                return t;
            });
            this.window = 2 * threads + 1;
        }

        void stream(Planned p, WritableByteChannel out) throws IOException {
            Tensor t = p.tensor();
            switch (p.kind()) {
                case NORM, BIAS, ROPE_FACTORS -> {
                    SplittableRandom random = new SplittableRandom(mix(seed, t.name().hashCode(), 0));
                    float[] v = switch (p.kind()) {
                        case NORM -> norm((int) t.elementCount(), random);
                        case BIAS -> bias((int) t.elementCount(), random);
                        default -> ropeFactors(shape.ropeDimensionCount(), shape.ropeFreqBase(), shape.ropeScaling());
                    };
                    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                    b.asFloatBuffer().put(v);
                    writeFully(out, b);
                }
                case MATRIX -> {
                    GGMLType type = t.type();
                    long blocks = t.elementCount() / type.blockSize();
                    long perChunk = CHUNK_BYTES / type.bytesPerBlock();
                    ArrayDeque<Future<ByteBuffer>> inFlight = new ArrayDeque<>();
                    int tensorHash = t.name().hashCode();
                    try {
                        for (long first = 0, chunk = 0; first < blocks; first += perChunk, chunk++) {
                            if (inFlight.size() >= window) {
                                writeNext(inFlight, out);
                            }
                            ByteBuffer buffer = free.isEmpty() ? ByteBuffer.allocateDirect(CHUNK_BYTES) : free.pop();
                            long n = Math.min(perChunk, blocks - first);
                            long chunkSeed = mix(seed, tensorHash, chunk);
                            inFlight.add(pool.submit(() -> {
                                buffer.clear().limit((int) (n * type.bytesPerBlock()));
                                fillBlocks(type, MemorySegment.ofBuffer(buffer), 0, n, new SplittableRandom(chunkSeed));
                                return buffer;
                            }));
                        }
                        while (!inFlight.isEmpty()) {
                            writeNext(inFlight, out);
                        }
                    } finally {
                        inFlight.forEach(f -> f.cancel(true));
                    }
                }
            }
        }

        private void writeNext(ArrayDeque<Future<ByteBuffer>> inFlight, WritableByteChannel out) throws IOException {
            ByteBuffer b;
            try {
                b = inFlight.peek().get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while generating weights");
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException re) {
                    throw re;
                }
                throw new IOException(e.getCause());
            }
            inFlight.poll();
            writeFully(out, b);
            free.push(b);
        }

        private float[] norm(int n, SplittableRandom r) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                v[i] = 0.95f + 0.1f * r.nextFloat();
            }
            return v;
        }

        /// Biases of about `N(0, 0.02)`, as small as the weights.
        private float[] bias(int n, SplittableRandom r) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                v[i] = (float) (SIGMA * r.nextGaussian());
            }
            return v;
        }

        @Override
        public void close() {
            pool.shutdownNow();
        }
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }

    @Override
    public String toString() {
        return "SyntheticModel[" + shape.name() + ", " + type + ", seed " + seed + ", "
                + (vocabulary != null ? "vocabulary of " + vocabulary.source() : "generated vocabulary") + "]";
    }
}
