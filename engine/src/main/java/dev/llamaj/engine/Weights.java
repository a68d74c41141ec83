package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Kernels;
import dev.llamaj.engine.kernel.Matrix;
import dev.llamaj.engine.kernel.Parallel;
import dev.llamaj.engine.kernel.Repack;
import dev.llamaj.engine.kernel.WarmUp;
import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.TensorInfo;
import dev.llamaj.gguf.UnsupportedModelException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/// The tensors of a Llama model, as zero-copy views of the mapped GGUF file.
///
/// [#map] is where the file's tensors meet the configuration: every name, shape and type is checked once here,
/// so the forward pass never sees a matrix it cannot multiply. Matrices stay in the file's own layout (ggml's
/// `ne0` is the row length); the small per-layer norm vectors are copied to `float[]`. A model without
/// `output.weight` ties its classifier to the token embedding.
record Weights(Matrix tokenEmbedding, Layer[] layers, float[] outputNorm, Matrix output, float[] ropeFreqFactors,
               Repacking repacking) {

    /// What [#repacked] cost: memory beyond the file's (the repacked matrices less the file pages they replace,
    /// which are dropped from the resident set) and time.
    record Repacking(long extraBytes, long nanos) {
        static final Repacking NONE = new Repacking(0, 0);
    }

    record Layer(float[] attnNorm, Matrix wq, Matrix wk, Matrix wv, Matrix wo,
                 float[] ffnNorm, Matrix ffnGate, Matrix ffnUp, Matrix ffnDown) {}

    static Weights map(GGUFFile file, LlamaConfig c) throws IOException {
        checkBlockIndices(file, c.blockCount());
        Mapper m = new Mapper(file);
        int dim = c.embeddingLength();
        Matrix embedding = m.matrix("token_embd.weight", c.vocabSize(), dim);
        Layer[] layers = new Layer[c.blockCount()];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = new Layer(
                    m.vector(blk(i, "attn_norm"), dim),
                    m.matrix(blk(i, "attn_q"), c.qDim(), dim),
                    m.matrix(blk(i, "attn_k"), c.kvDim(), dim),
                    m.matrix(blk(i, "attn_v"), c.kvDim(), dim),
                    m.matrix(blk(i, "attn_output"), dim, c.qDim()),
                    m.vector(blk(i, "ffn_norm"), dim),
                    m.matrix(blk(i, "ffn_gate"), c.feedForwardLength(), dim),
                    m.matrix(blk(i, "ffn_up"), c.feedForwardLength(), dim),
                    m.matrix(blk(i, "ffn_down"), dim, c.feedForwardLength()));
        }
        float[] outputNorm = m.vector("output_norm.weight", dim);
        Matrix output = file.findTensor("output.weight").isPresent()
                ? m.matrix("output.weight", c.vocabSize(), dim)
                : embedding;
        // Llama 3.1+ scales RoPE frequencies per dimension pair (ggml: rope_freqs, "freq_factors").
        float[] ropeFreqFactors = file.findTensor("rope_freqs.weight").isPresent()
                ? m.vector("rope_freqs.weight", c.ropeDimensionCount() / 2)
                : null;
        m.checkKernels();
        Weights w = new Weights(embedding, layers, outputNorm, output, ropeFreqFactors, Repacking.NONE);
        if (Repack.ENABLED) {
            w = w.repacked();
        }
        if (WARM_UP) {
            w.warmUp(c);
        }
        return w;
    }

    /// These weights with the `Q4_0` and `Q8_0` matrices repacked into groups of four rows and, with 512-bit
    /// vectors, the `Q4_K` ones into the lane layout of their integer kernel ([Repack]), and the float matrices
    /// copied as they are into huge pages ([Repack#copies]), in memory freed when the model is unreachable; the
    /// file's pages of those matrices are dropped from the resident set. An untied token embedding keeps the file
    /// layout (only a row per token is read); a tied one is read from the classifier's copy.
    Weights repacked() {
        long start = System.nanoTime();
        List<Matrix> sources = new ArrayList<>();
        for (Layer l : layers) {
            sources.addAll(List.of(l.wq, l.wk, l.wv, l.wo, l.ffnGate, l.ffnUp, l.ffnDown));
        }
        sources.add(output);
        List<Matrix> packed;
        try (Parallel pool = new Parallel(Runtime.getRuntime().availableProcessors())) {
            packed = Repack.all(sources, Arena.ofAuto(), pool);
        }
        long extra = 0;
        for (int i = 0; i < sources.size(); i++) {
            if (packed.get(i) != sources.get(i)) {
                Repack.release(sources.get(i));
                extra += packed.get(i).data().byteSize() - sources.get(i).data().byteSize();
            }
        }
        Layer[] repacked = new Layer[layers.length];
        for (int i = 0; i < layers.length; i++) {
            Layer l = layers[i];
            int k = 7 * i;
            repacked[i] = new Layer(l.attnNorm, packed.get(k), packed.get(k + 1), packed.get(k + 2),
                    packed.get(k + 3), l.ffnNorm, packed.get(k + 4), packed.get(k + 5), packed.get(k + 6));
        }
        // A tied classifier's copy serves the embedding lookups too: reading rows from the file instead would make
        // its pages resident again (with large page-cache folios, a few hundred KiB per token), on top of the copy.
        Matrix embedding = tokenEmbedding == output ? packed.getLast() : tokenEmbedding;
        return new Weights(embedding, repacked, outputNorm, packed.getLast(), ropeFreqFactors,
                new Repacking(extra, System.nanoTime() - start));
    }

    /// Whether loading runs the kernels on small shapes first (`-Dllamaj.warmup=false` turns it off).
    static final boolean WARM_UP = !"false".equals(System.getProperty("llamaj.warmup"));

    /// Runs every kernel this model needs on small shapes, so the JIT compiles them before the first token (see
    /// [WarmUp]); at most about a second.
    long warmUp(LlamaConfig c) {
        List<Matrix> all = new ArrayList<>();
        all.add(output);
        for (Layer l : layers) {
            all.addAll(List.of(l.wq, l.wk, l.wv, l.wo, l.ffnGate, l.ffnUp, l.ffnDown));
        }
        return WarmUp.run(all, c.headSize(), c.headCount() / c.headCountKv(), 1_500_000_000L);
    }

    /// A tensor of a block past `llama.block_count` means the count is wrong: running fewer layers than the file
    /// holds would produce garbage without any error.
    private static void checkBlockIndices(GGUFFile file, int blockCount) throws UnsupportedModelException {
        for (TensorInfo t : file.tensors()) {
            String name = t.name();
            if (name.startsWith("blk.")) {
                int end = name.indexOf('.', 4);
                String index = end < 0 ? "" : name.substring(4, end);
                if (!index.isEmpty() && index.length() < 10 && index.chars().allMatch(Character::isDigit)
                        && Integer.parseInt(index) >= blockCount) {
                    throw new UnsupportedModelException(file.path() + ": the file has tensors of block " + index
                            + " ('blk." + index + ".*') but llama.block_count is " + blockCount);
                }
            }
        }
    }

    private static String blk(int layer, String name) {
        return "blk." + layer + "." + name + ".weight";
    }

    /// Bytes of matrix weights read per generated token (every matrix once, the embedding row aside).
    long matrixBytes() {
        long n = output.data().byteSize();
        for (Layer l : layers) {
            for (Matrix w : List.of(l.wq, l.wk, l.wv, l.wo, l.ffnGate, l.ffnUp, l.ffnDown)) {
                n += w.data().byteSize();
            }
        }
        return n;
    }

    /// Looks tensors up by name and checks them against the expected shapes.
    private static final class Mapper {
        private final GGUFFile file;
        private final List<TensorInfo> unsupported = new ArrayList<>();

        Mapper(GGUFFile file) {
            this.file = file;
        }

        Matrix matrix(String name, int rows, int cols) throws IOException {
            TensorInfo t = file.tensor(name);
            if (t.dimensions() > 2 || t.dim(0) != cols || t.dim(1) != rows) {
                throw new UnsupportedModelException(file.path() + ": tensor '" + name + "' has shape "
                        + java.util.Arrays.toString(t.shape()) + ", expected [" + cols + ", " + rows + "]");
            }
            if (!Kernels.supports(t.type())) {
                unsupported.add(t);
            }
            return new Matrix(t.type(), file.tensorData(t), rows, cols);
        }

        float[] vector(String name, int length) throws IOException {
            TensorInfo t = file.tensor(name);
            if (t.elementCount() != length) {
                throw new UnsupportedModelException(file.path() + ": tensor '" + name + "' has shape "
                        + java.util.Arrays.toString(t.shape()) + ", expected [" + length + "]");
            }
            if (t.type() != GGMLType.F32) {
                throw new UnsupportedModelException(file.path() + ": tensor '" + name + "' has type " + t.type()
                        + ", expected F32");
            }
            MemorySegment s = file.tensorData(t);
            float[] v = new float[length];
            MemorySegment.copy(s, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, v, 0, length);
            return v;
        }

        void checkKernels() throws UnsupportedModelException {
            Optional<TensorInfo> first = unsupported.stream().findFirst();
            if (first.isPresent()) {
                TensorInfo t = first.get();
                StringBuilder supported = new StringBuilder();
                for (GGMLType type : GGMLType.values()) {
                    if (Kernels.supports(type)) {
                        supported.append(supported.isEmpty() ? "" : ", ").append(type);
                    }
                }
                throw new UnsupportedModelException(file.path() + ": tensor '" + t.name() + "' has type " + t.type()
                        + ", which llamaj cannot run (supported: " + supported + ")");
            }
        }
    }
}
