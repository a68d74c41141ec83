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
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/// The tensors of a model, as zero-copy views of the mapped GGUF file.
///
/// [#map] is where the file's tensors meet the configuration: every name, shape and type is checked once here,
/// so the forward pass never sees a matrix it cannot multiply. Which tensors a layer has comes from the
/// architecture's table ([Architecture#layerTensors], [LayerTensor]). Matrices stay in the file's own layout
/// (ggml's `ne0` is the row length); fused matrices (Phi-3's QKV and gate+up) are split into row ranges of the
/// same bytes; the small per-layer vectors (norms, biases) are copied to `float[]`. A model without
/// `output.weight` ties its classifier to the token embedding.
///
/// @param ropeFreqFactors     per-pair divisors of the RoPE frequencies (Llama 3.1's `rope_freqs`), or null
/// @param ropeFactorsLong     LongRoPE divisors for contexts beyond the original one (Phi-3), or null
/// @param ropeFactorsShort    LongRoPE divisors within the original context, or null
record Weights(Matrix tokenEmbedding, Layer[] layers, float[] outputNorm, Matrix output, float[] ropeFreqFactors,
               float[] ropeFactorsLong, float[] ropeFactorsShort, Repacking repacking) {

    /// What [#repacked] cost: memory beyond the file's (the repacked matrices less the file pages they replace,
    /// which are dropped from the resident set) and time; or why it was skipped (null if it was not).
    record Repacking(long extraBytes, long nanos, String skipped) {
        static final Repacking NONE = new Repacking(0, 0, null);
    }

    /// One layer's tensors. The seven matrices are always there (fused ones as row ranges); the vectors are null
    /// where the family has none. Code that needs every matrix goes through [#matrices] and [#withMatrices], so a
    /// matrix cannot be left out of one list.
    record Layer(float[] attnNorm, Matrix wq, Matrix wk, Matrix wv, float[] qBias, float[] kBias, float[] vBias,
                 float[] qNorm, float[] kNorm, Matrix wo, float[] postAttnNorm,
                 float[] ffnNorm, Matrix ffnGate, Matrix ffnUp, Matrix ffnDown, float[] postFfnNorm) {

        /// The matrices, in the order [#withMatrices] takes them.
        List<Matrix> matrices() {
            return List.of(wq, wk, wv, wo, ffnGate, ffnUp, ffnDown);
        }

        /// This layer with its matrices replaced by `m` (in the order of [#matrices]).
        Layer withMatrices(List<Matrix> m) {
            return new Layer(attnNorm, m.get(0), m.get(1), m.get(2), qBias, kBias, vBias, qNorm, kNorm, m.get(3),
                    postAttnNorm, ffnNorm, m.get(4), m.get(5), m.get(6), postFfnNorm);
        }
    }

    /// Every matrix the forward pass multiplies: each layer's, then the classifier.
    List<Matrix> matrices() {
        List<Matrix> all = new ArrayList<>();
        for (Layer l : layers) {
            all.addAll(l.matrices());
        }
        all.add(output);
        return all;
    }

    /// Maps the tensors of `file` for `c`; as `options` say, repacks them into the kernels' layouts and warms the
    /// kernels up.
    static Weights map(GGUFFile file, ModelConfig c, LoadOptions options) throws IOException {
        checkBlockIndices(file, c);
        Mapper m = new Mapper(file);
        int dim = c.embeddingLength();
        Matrix embedding = m.matrix("token_embd.weight", c.vocabSize(), dim);
        Layer[] layers = new Layer[c.blockCount()];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = m.layer(c, i);
        }
        float[] outputNorm = m.vector("output_norm.weight", dim);
        Matrix output = file.findTensor("output.weight").isPresent()
                ? m.matrix("output.weight", c.vocabSize(), dim)
                : embedding;
        // Llama 3.1+ scales RoPE frequencies per dimension pair (ggml: rope_freqs, "freq_factors"); Phi-3 has two
        // such sets, for contexts within and beyond the original one (LongRoPE).
        int pairs = c.ropeDimensionCount() / 2;
        float[] ropeFreqFactors = m.optionalVector("rope_freqs.weight", pairs);
        float[] ropeLong = m.optionalVector("rope_factors_long.weight", pairs);
        float[] ropeShort = m.optionalVector("rope_factors_short.weight", pairs);
        m.checkKernels();
        Weights w = new Weights(embedding, layers, outputNorm, output, ropeFreqFactors, ropeLong, ropeShort,
                Repacking.NONE);
        if (options.repack()) {
            // Repacking copies the weights into memory of the process. A model larger than the memory the system
            // can give (or a hostile file that declares 64 GiB matrices over a sparse hole) runs from the mapping
            // instead, where the operating system pages weights in and out as it can: slower, never out of memory.
            long need = Repack.totalBytes(w.matrices());
            long available = Repack.availableBytes();
            if (need > available - available / 8) {
                w = new Weights(embedding, layers, outputNorm, output, ropeFreqFactors, ropeLong, ropeShort,
                        new Repacking(0, 0, String.format(java.util.Locale.ROOT, "repacking the weights would take "
                                + "%.1f GiB but the system has %.1f GiB available: running from the file's mapping "
                                + "instead (slower)", need / 1073741824.0, available / 1073741824.0)));
            } else {
                w = w.repacked();
            }
        }
        if (options.warmUp()) {
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
        List<Matrix> sources = matrices();
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
        int k = 0;
        for (int i = 0; i < layers.length; i++) {
            int n = layers[i].matrices().size();
            repacked[i] = layers[i].withMatrices(packed.subList(k, k + n));
            k += n;
        }
        // A tied classifier's copy serves the embedding lookups too: reading rows from the file instead would make
        // its pages resident again (with large page-cache folios, a few hundred KiB per token), on top of the copy.
        Matrix embedding = tokenEmbedding == output ? packed.getLast() : tokenEmbedding;
        return new Weights(embedding, repacked, outputNorm, packed.getLast(), ropeFreqFactors, ropeFactorsLong,
                ropeFactorsShort, new Repacking(extra, System.nanoTime() - start, null));
    }

    /// Runs every kernel this model needs on small shapes, so the JIT compiles them before the first token (see
    /// [WarmUp]); at most about a second.
    long warmUp(ModelConfig c) {
        return WarmUp.run(matrices(), c.headSize(), c.headCount() / c.headCountKv(), 1_500_000_000L);
    }

    /// A tensor of a block past `block_count` means the count is wrong: running fewer layers than the file
    /// holds would produce garbage without any error.
    private static void checkBlockIndices(GGUFFile file, ModelConfig c) throws UnsupportedModelException {
        for (TensorInfo t : file.tensors()) {
            String name = t.name();
            if (name.startsWith("blk.")) {
                int end = name.indexOf('.', 4);
                String index = end < 0 ? "" : name.substring(4, end);
                if (!index.isEmpty() && index.chars().allMatch(Character::isDigit)
                        && (index.length() > 4 || Integer.parseInt(index) >= c.blockCount())) {
                    throw new UnsupportedModelException(file.path() + ": the file has tensors of block "
                            + (index.length() > 12 ? index.substring(0, 12) + "..." : index) + " ('blk."
                            + (index.length() > 12 ? index.substring(0, 12) + "..." : index) + ".*') but "
                            + c.architecture().ggufName + ".block_count is " + c.blockCount());
                }
            }
        }
    }

    /// Bytes of matrix weights read per generated token (every matrix once, the embedding row aside).
    long matrixBytes() {
        long n = 0;
        for (Matrix w : matrices()) {
            n += w.data().byteSize();
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

        /// Layer `i`'s tensors, as the architecture's table lists them.
        Layer layer(ModelConfig c, int i) throws IOException {
            Map<LayerTensor, Object> t = new EnumMap<>(LayerTensor.class);
            for (LayerTensor lt : c.architecture().layerTensors) {
                t.put(lt, lt.isMatrix()
                        ? matrix(lt.name(i), lt.rows(c), lt.cols(c))
                        : vector(lt.name(i), lt.rows(c)));
            }
            Matrix q = (Matrix) t.get(LayerTensor.ATTN_Q);
            Matrix k = (Matrix) t.get(LayerTensor.ATTN_K);
            Matrix v = (Matrix) t.get(LayerTensor.ATTN_V);
            if (t.get(LayerTensor.ATTN_QKV) instanceof Matrix qkv) {
                q = rows(qkv, 0, c.qDim());
                k = rows(qkv, c.qDim(), c.kvDim());
                v = rows(qkv, c.qDim() + c.kvDim(), c.kvDim());
            }
            Matrix gate = (Matrix) t.get(LayerTensor.FFN_GATE);
            Matrix up = (Matrix) t.get(LayerTensor.FFN_UP);
            if (t.get(LayerTensor.FFN_UP_GATE) instanceof Matrix gateUp) {
                gate = rows(gateUp, 0, c.feedForwardLength());
                up = rows(gateUp, c.feedForwardLength(), c.feedForwardLength());
            }
            return new Layer((float[]) t.get(LayerTensor.ATTN_NORM), q, k, v,
                    (float[]) t.get(LayerTensor.ATTN_Q_BIAS), (float[]) t.get(LayerTensor.ATTN_K_BIAS),
                    (float[]) t.get(LayerTensor.ATTN_V_BIAS), (float[]) t.get(LayerTensor.ATTN_Q_NORM),
                    (float[]) t.get(LayerTensor.ATTN_K_NORM), (Matrix) t.get(LayerTensor.ATTN_OUTPUT),
                    (float[]) t.get(LayerTensor.POST_ATTN_NORM), (float[]) t.get(LayerTensor.FFN_NORM), gate, up,
                    (Matrix) t.get(LayerTensor.FFN_DOWN), (float[]) t.get(LayerTensor.POST_FFN_NORM));
        }

        /// Rows `[first, first + count)` of `m`, the same bytes.
        private static Matrix rows(Matrix m, int first, int count) {
            return new Matrix(m.type(), m.data().asSlice(first * m.rowBytes(), count * m.rowBytes()), count, m.cols());
        }

        float[] optionalVector(String name, int length) throws IOException {
            return file.findTensor(name).isPresent() ? vector(name, length) : null;
        }

        float[] vector(String name, int length) throws IOException {
            TensorInfo t = file.tensor(name);
            if (t.elementCount() != length || t.dimensions() != 1) {

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
