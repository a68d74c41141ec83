package dev.llamaj.engine.synth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.engine.Architecture;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.ModelConfig;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.kernel.Kernels;
import dev.llamaj.engine.kernel.Matrix;
import dev.llamaj.engine.synth.SyntheticModel.Shape;
import dev.llamaj.engine.synth.SyntheticModel.Tensor;
import dev.llamaj.engine.synth.SyntheticModel.Type;
import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;
import dev.llamaj.gguf.ValueType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SyntheticModelTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(Type.class)
    void everyTypeWritesAModelThatLoadsAndGenerates(Type type) throws Exception {
        Path file = dir.resolve("tiny-" + type + ".gguf");
        SyntheticModel.of(Shape.TINY, type).withSeed(3).write(file);
        try (LlamaModel model = LlamaModel.load(file, 2); Session session = model.newSession(64)) {
            assertThat(model.config().embeddingLength()).isEqualTo(256);
            assertThat(model.config().vocabSize()).isEqualTo(512);
            int token = model.tokenizer().vocabulary().bos();
            for (int i = 0; i < 6; i++) {
                session.ingest(token);
                float[] logits = session.logits();
                for (float l : logits) {
                    assertThat(Float.isFinite(l)).as("logit at step %d", i).isTrue();
                }
                token = argmax(logits);
            }
            assertThat(session.position()).isEqualTo(6);
        }
    }

    @Test
    void aTiedShapeWithoutRopeScalingLoadsToo() throws Exception {
        Shape tied = new Shape("tiny-tied", 256, 1, 2, 1, 256, 300, 128, 10000f, 1e-6f, true, null);
        SyntheticModel m = SyntheticModel.of(tied, Type.Q4_K_M);
        assertThat(m.tensors()).extracting(Tensor::name).doesNotContain("output.weight", "rope_freqs.weight");
        Path file = dir.resolve("tied.gguf");
        m.write(file);
        try (LlamaModel model = LlamaModel.load(file, 1); Session session = model.newSession(16)) {
            Completion c = session.generate("hello world", 4, Sampler.greedy(), _ -> {});
            assertThat(c.generatedTokens() + (c.stopReason() == Completion.StopReason.END_OF_GENERATION ? 1 : 0))
                    .isPositive();
            assertThat(allFinite(session.logits())).isTrue();
        }
    }

    @Test
    void theSameSeedWritesTheSameBytes() throws Exception {
        for (Type type : List.of(Type.Q4_K_M, Type.F16, Type.Q8_0)) {
            Path a = dir.resolve("a.gguf");
            Path b = dir.resolve("b.gguf");
            Path c = dir.resolve("c.gguf");
            SyntheticModel.of(Shape.TINY, type).withSeed(42).write(a);
            SyntheticModel.of(Shape.TINY, type).withSeed(42).write(b);
            SyntheticModel.of(Shape.TINY, type).withSeed(43).write(c);
            try (GGUFFile fa = GGUFFile.open(a); GGUFFile fb = GGUFFile.open(b); GGUFFile fc = GGUFFile.open(c)) {
                assertThat(fa.sha256()).as(type.name()).isEqualTo(fb.sha256());
                assertThat(fa.sha256()).as(type.name()).isNotEqualTo(fc.sha256());
            }
        }
    }

    @Test
    void metadataHasTheTypesLlamaCppRequires() throws Exception {
        Path file = dir.resolve("tiny.gguf");
        SyntheticModel.of(Shape.TINY, Type.Q4_K_M).withSeed(5).write(file);
        try (GGUFFile f = GGUFFile.open(file)) {
            Metadata md = f.metadata();
            assertThat(md.string("general.architecture")).isEqualTo("llama");
            assertThat(md.string("general.name")).isEqualTo("synthetic tiny Q4_K_M (seed 5)");
            Map<String, Long> counts = Map.ofEntries(
                    Map.entry("general.file_type", 15L), Map.entry("general.quantization_version", 2L),
                    Map.entry("llama.vocab_size", 512L), Map.entry("llama.context_length", 512L),
                    Map.entry("llama.embedding_length", 256L), Map.entry("llama.block_count", 2L),
                    Map.entry("llama.feed_forward_length", 512L), Map.entry("llama.rope.dimension_count", 64L),
                    Map.entry("llama.attention.head_count", 4L), Map.entry("llama.attention.head_count_kv", 2L),
                    Map.entry("llama.attention.key_length", 64L), Map.entry("llama.attention.value_length", 64L),
                    Map.entry("tokenizer.ggml.bos_token_id", 1L), Map.entry("tokenizer.ggml.eos_token_id", 2L),
                    Map.entry("tokenizer.ggml.unknown_token_id", 0L));
            counts.forEach((key, value) -> {
                assertThat(md.type(key)).as(key).isEqualTo(ValueType.UINT32);
                assertThat(md.find(key)).as(key).contains(value);
            });
            assertThat(md.type("llama.rope.freq_base")).isEqualTo(ValueType.FLOAT32);
            assertThat(md.float32("llama.rope.freq_base")).isEqualTo(500000f);
            assertThat(md.type("llama.attention.layer_norm_rms_epsilon")).isEqualTo(ValueType.FLOAT32);
            assertThat(md.float32("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
            assertThat(md.string("tokenizer.ggml.model")).isEqualTo("llama");
            assertThat(md.stringArray("tokenizer.ggml.tokens")).hasSize(512)
                    .startsWith("<unk>", "<s>", "</s>", "<0x00>").contains("<0x0A>", "\u2581", "\u2581a", "ab");
            assertThat(md.floatArray("tokenizer.ggml.scores")).hasSize(512);
            assertThat(md.intArray("tokenizer.ggml.token_type")).hasSize(512).startsWith(2, 3, 3, 6);

            // norms F32 near 1, rope factors F32, every name standard
            float[] norm = floats(f, "blk.0.attn_norm.weight");
            assertThat(norm).hasSize(256);
            for (float v : norm) {
                assertThat(v).isBetween(0.9f, 1.1f);
            }
            assertThat(floats(f, "rope_freqs.weight"))
                    .containsExactly(SyntheticModel.ropeFactors(64, 500000f, Shape.TINY.ropeScaling()));
            assertThat(f.tensors()).extracting(TensorInfo::name).startsWith("rope_freqs.weight", "token_embd.weight",
                    "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
                    "blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight",
                    "blk.0.ffn_up.weight", "blk.0.ffn_down.weight").endsWith("output_norm.weight", "output.weight");
        }
    }

    @Test
    void realShapesHaveTheirRealParameterCounts() {
        // Hugging Face's counts, plus the rope_freqs.weight values llama.cpp adds for Llama 3
        assertThat(SyntheticModel.of(Shape.LLAMA_3_2_1B, Type.F16).parameterCount()).isEqualTo(1_235_814_400L + 32);
        assertThat(SyntheticModel.of(Shape.LLAMA_3_2_3B, Type.F16).parameterCount()).isEqualTo(3_212_749_824L + 64);
        assertThat(SyntheticModel.of(Shape.LLAMA_3_1_8B, Type.F16).parameterCount()).isEqualTo(8_030_261_248L + 64);
        assertThat(SyntheticModel.of(Shape.TINYLLAMA_1_1B, Type.F16).parameterCount()).isEqualTo(1_100_048_384L);
    }

    @Test
    void q4KMFollowsLlamaCppsMix() {
        SyntheticModel m = SyntheticModel.of(Shape.LLAMA_3_2_1B, Type.Q4_K_M);
        Map<String, GGMLType> types = new java.util.HashMap<>();
        m.tensors().forEach(t -> types.put(t.name(), t.type()));
        assertThat(types).doesNotContainKey("output.weight");
        assertThat(types.get("token_embd.weight")).isEqualTo(GGMLType.Q6_K); // tied: the classifier
        List<Integer> sixBit = new ArrayList<>();
        for (int l = 0; l < 16; l++) {
            GGMLType v = types.get("blk." + l + ".attn_v.weight");
            assertThat(types.get("blk." + l + ".ffn_down.weight")).isEqualTo(v);
            assertThat(types.get("blk." + l + ".attn_q.weight")).isEqualTo(GGMLType.Q4_K);
            assertThat(types.get("blk." + l + ".ffn_up.weight")).isEqualTo(GGMLType.Q4_K);
            if (v == GGMLType.Q6_K) {
                sixBit.add(l);
            } else {
                assertThat(v).isEqualTo(GGMLType.Q4_K);
            }
        }
        assertThat(sixBit).containsExactly(0, 1, 4, 7, 10, 13, 14, 15);
        // llama.cpp's Q4_K_M mix of this shape (published Llama-3.2-1B Q4_K_M files are about 808 MB with header)
        assertThat(m.tensorBytes()).isEqualTo(799_862_912L);

        SyntheticModel untied = SyntheticModel.of(Shape.LLAMA_3_1_8B, Type.Q5_K_M);
        Map<String, GGMLType> t8 = new java.util.HashMap<>();
        untied.tensors().forEach(t -> t8.put(t.name(), t.type()));
        assertThat(t8.get("output.weight")).isEqualTo(GGMLType.Q6_K);
        assertThat(t8.get("token_embd.weight")).isEqualTo(GGMLType.Q5_K);
        assertThat(IntStream.range(0, 32).filter(l -> t8.get("blk." + l + ".attn_v.weight") == GGMLType.Q6_K).count())
                .isEqualTo(16);
    }

    @Test
    void q3KMFollowsLlamaCppsMix() {
        SyntheticModel m = SyntheticModel.of(Shape.LLAMA_3_1_8B, Type.Q3_K_M);
        Map<String, GGMLType> types = new java.util.HashMap<>();
        m.tensors().forEach(t -> types.put(t.name(), t.type()));
        assertThat(types.get("output.weight")).isEqualTo(GGMLType.Q6_K);
        assertThat(types.get("token_embd.weight")).isEqualTo(GGMLType.Q3_K); // untied: the base type
        for (int l = 0; l < 32; l++) {
            String b = "blk." + l + ".";
            assertThat(types.get(b + "attn_v.weight")).as("attn_v %d", l)
                    .isEqualTo(l < 2 ? GGMLType.Q5_K : GGMLType.Q4_K);
            assertThat(types.get(b + "ffn_down.weight")).as("ffn_down %d", l)
                    .isEqualTo(l < 2 ? GGMLType.Q5_K : GGMLType.Q4_K); // the first sixteenth of 32 layers
            assertThat(types.get(b + "attn_output.weight")).isEqualTo(GGMLType.Q4_K);
            for (String role : List.of("attn_q", "attn_k", "ffn_gate", "ffn_up")) {
                assertThat(types.get(b + role + ".weight")).as("%s %d", role, l).isEqualTo(GGMLType.Q3_K);
            }
        }
        assertThat(Type.Q3_K_M.fileType()).isEqualTo(12); // LLAMA_FTYPE_MOSTLY_Q3_K_M
        SyntheticModel tied = SyntheticModel.of(Shape.LLAMA_3_2_1B, Type.Q3_K_M);
        assertThat(tied.tensors()).filteredOn(t -> t.name().equals("token_embd.weight"))
                .allMatch(t -> t.type() == GGMLType.Q6_K);
        assertThat(tied.tensors()).filteredOn(t -> t.name().endsWith("ffn_down.weight")).extracting(Tensor::type)
                .containsExactly(GGMLType.Q5_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K,
                        GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K,
                        GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K, GGMLType.Q4_K); // 16 layers: 1/16
    }

    @Test
    void plainTypesArePure() {
        for (Type type : List.of(Type.Q4_0, Type.Q8_0, Type.BF16, Type.Q6_K)) {
            assertThat(SyntheticModel.of(Shape.LLAMA_3_2_1B, type).tensors())
                    .filteredOn(t -> t.shape().length == 2)
                    .allMatch(t -> t.type() == type.baseType());
        }
        assertThat(SyntheticModel.of(Shape.TINYLLAMA_1_1B, Type.Q4_0).tensors())
                .filteredOn(t -> t.shape().length == 1).allMatch(t -> t.type() == GGMLType.F32);
    }

    /// Every named shape, of every family: the tensor table the architecture's table asks for, and metadata that
    /// reads back as the shape's own configuration.
    @Test
    void realShapeLayoutsWithoutWritingGigabytes() throws Exception {
        for (Shape shape : Shape.all()) {
            SyntheticModel m = SyntheticModel.of(shape, Type.Q4_K_M);
            Path file = dir.resolve(shape.name() + ".gguf");
            m.writeLayoutOnly(file);
            try (GGUFFile f = GGUFFile.open(file)) {
                assertThat(f.fileSize()).isGreaterThan(m.tensorBytes());
                assertThat(f.tensors()).hasSize(m.tensors().size());
                for (int i = 0; i < f.tensors().size(); i++) {
                    TensorInfo t = f.tensors().get(i);
                    Tensor planned = m.tensors().get(i);
                    assertThat(t.name()).isEqualTo(planned.name());
                    assertThat(t.type()).isEqualTo(planned.type());
                    assertThat(t.shape()).isEqualTo(planned.shape());
                }
                ModelConfig c = ModelConfig.from(f.metadata());
                assertThat(c.architecture()).isEqualTo(shape.architecture());
                assertThat(c.headSize()).isEqualTo(shape.headSize());
                assertThat(c.ropeDimensionCount()).isEqualTo(shape.ropeDimensionCount());
                assertThat(c.slidingWindow()).isEqualTo(shape.slidingWindow());
                assertThat(c.embeddingLength()).isEqualTo(shape.embeddingLength());
                assertThat(c.blockCount()).isEqualTo(shape.blockCount());
                assertThat(c.headCount()).isEqualTo(shape.headCount());
                assertThat(c.headCountKv()).isEqualTo(shape.headCountKv());
                assertThat(c.feedForwardLength()).isEqualTo(shape.feedForwardLength());
                assertThat(c.vocabSize()).isEqualTo(shape.vocabSize());
                assertThat(c.contextLength()).isEqualTo(shape.contextLength());
                assertThat(c.ropeFreqBase()).isEqualTo(shape.ropeFreqBase());
                assertThat(f.findTensor("rope_freqs.weight").isPresent()).isEqualTo(shape.ropeScaling() != null);
                assertThat(f.findTensor("output.weight").isPresent()).isEqualTo(!shape.tiedEmbeddings());
            } finally {
                Files.deleteIfExists(file);
            }
        }
    }

    @Test
    void usesTheVocabularyOfAVocabularyFile() throws Exception {
        Path spm = SharedData.require("tokenizer/llama-spm.gguf");
        Path file = dir.resolve("tiny-spm.gguf");
        SyntheticModel m = SyntheticModel.of(Shape.TINY, Type.Q8_0).withVocabulary(spm);
        assertThat(m.vocabSize()).isEqualTo(32000);
        m.write(file);
        try (GGUFFile vocab = GGUFFile.open(spm); LlamaModel model = LlamaModel.load(file, 2)) {
            Metadata expected = vocab.metadata();
            Metadata actual = model.file().metadata();
            for (String key : expected.keys()) {
                if (key.startsWith("tokenizer.")) {
                    assertThat(actual.type(key)).as(key).isEqualTo(expected.type(key));
                    assertThat(actual.find(key)).as(key).isEqualTo(expected.find(key));
                }
            }
            assertThat(model.config().vocabSize()).isEqualTo(32000);
            assertThat(model.file().tensor("token_embd.weight").shape()).containsExactly(256L, 32000L);
            try (Session s = model.newSession(32)) {
                s.generate("Hello", 3, Sampler.greedy(), _ -> {});
                assertThat(allFinite(s.logits())).isTrue();
            }
        }
    }

    @Test
    void llama3VocabularyOnARealShape() throws Exception {
        Path bpe = SharedData.require("tokenizer/llama3-bpe.gguf");
        Path file = dir.resolve("layout.gguf");
        SyntheticModel.of(Shape.LLAMA_3_2_1B, Type.Q4_0).withVocabulary(bpe).writeLayoutOnly(file);
        try (GGUFFile f = GGUFFile.open(file)) {
            assertThat(f.metadata().string("tokenizer.ggml.model")).isEqualTo("gpt2");
            assertThat(f.metadata().stringArray("tokenizer.ggml.tokens")).hasSize(128256);
            assertThat(f.metadata().integer("llama.vocab_size")).isEqualTo(128256);
        }
    }

    @Test
    void aFileWithoutVocabularyIsRejected() throws Exception {
        Path empty = dir.resolve("no-vocab.gguf");
        new dev.llamaj.gguf.GGUFWriter().putString("general.architecture", "llama").write(empty);
        assertThatThrownBy(() -> SyntheticModel.of(Shape.TINY, Type.F32).withVocabulary(empty))
                .isInstanceOf(java.io.IOException.class).hasMessageContaining("no vocabulary");
    }

    @Test
    void randomWeightsAreValidAndOfRealisticMagnitude() {
        for (GGMLType type : List.of(GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0,
                GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K,
                GGMLType.Q5_K, GGMLType.Q6_K)) {
            int rows = 64;
            int cols = 1024;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment s = arena.allocate(type.byteSize((long) rows * cols));
                SyntheticModel.randomWeights(type, s, 11);
                Matrix w = new Matrix(type, s, rows, cols);
                float[] row = new float[cols];
                double sum = 0;
                double squares = 0;
                for (int r = 0; r < rows; r++) {
                    Kernels.dequantizeRow(w, r, row, 0);
                    for (float v : row) {
                        assertThat(Float.isFinite(v)).as(type.name()).isTrue();
                        sum += v;
                        squares += (double) v * v;
                    }
                }
                int n = rows * cols;
                double mean = sum / n;
                double sd = Math.sqrt(squares / n - mean * mean);
                assertThat(mean).as("%s mean", type).isCloseTo(0, within(0.002));
                assertThat(sd).as("%s standard deviation", type).isCloseTo(0.02, within(0.003));
            }
        }
    }

    @Test
    void ropeFactorsAreLlama3s() {
        // the converter's formula evaluated in double precision
        Shape s = Shape.LLAMA_3_2_1B;
        float[] f = SyntheticModel.ropeFactors(s.headSize(), s.ropeFreqBase(), s.ropeScaling());
        assertThat(f).hasSize(32);
        for (int i = 0; i < f.length; i++) {
            double freq = 1 / Math.pow(500000, 2.0 * i / 64);
            double wavelen = 2 * Math.PI / freq;
            double expected;
            if (wavelen < 8192 / 4.0) {
                expected = 1;
            } else if (wavelen > 8192 / 1.0) {
                expected = 32;
            } else {
                double smooth = (8192 / wavelen - 1) / (4 - 1);
                expected = 1 / ((1 - smooth) / 32 + smooth);
            }
            assertThat((double) f[i]).as("factor %d", i).isCloseTo(expected, within(expected * 1e-5));
        }
        assertThat(f[0]).isEqualTo(1f);
        assertThat(f[31]).isEqualTo(32f);
    }

    @Test
    void useMoreBitsPicksHalfTheLayers() {
        assertThat(IntStream.range(0, 16).filter(l -> SyntheticModel.useMoreBits(l, 16)).boxed().toList())
                .containsExactly(0, 1, 4, 7, 10, 13, 14, 15);
        assertThat(IntStream.range(0, 22).filter(l -> SyntheticModel.useMoreBits(l, 22)).count()).isEqualTo(10);
    }

    /// The tiny shape in every family: the file the architecture's table describes loads, and generates.
    @ParameterizedTest
    @EnumSource(Architecture.class)
    void everyFamilyWritesALoadableModel(Architecture arch) throws Exception {
        Path file = dir.resolve(arch.ggufName + ".gguf");
        SyntheticModel.of(Shape.TINY.withArchitecture(arch), Type.Q8_0).withSeed(1).write(file);
        try (LlamaModel model = LlamaModel.load(file, 1)) {
            assertThat(model.config().architecture()).isEqualTo(arch);
            try (Session s = model.newSession(64)) {
                Completion c = s.generate("abc", 4, Sampler.greedy(), t -> { });
                assertThat(c.promptTokens()).isPositive();
            }
        }
    }

    @Test
    void unknownNamesAreClearErrors() {
        assertThatThrownBy(() -> Shape.named("llama-9b")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unknown shape 'llama-9b' (known: tiny, llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, "
                        + "tinyllama-1.1b, qwen2.5-7b, qwen3-8b, gemma-3-4b, phi-4-mini, mistral-nemo-12b, "
                        + "granite-3-8b)");
        assertThatThrownBy(() -> Type.named("Q4_K_X")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("unknown type 'Q4_K_X' (known: F32, F16, BF16, Q8_0, Q4_0");
        assertThat(Type.named("q4_k_m")).isEqualTo(Type.Q4_K_M);
        assertThat(Shape.named("LLAMA-3.2-1B")).isEqualTo(Shape.LLAMA_3_2_1B);
        Shape odd = new Shape("odd", 320, 1, 5, 5, 640, 400, 64, 10000f, 1e-5f, false, null);
        assertThatThrownBy(() -> SyntheticModel.of(odd, Type.Q4_K)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not a whole number of 256-weight Q4_K blocks");
    }

    @Test
    void generatedVocabularyRoundTrips() throws Exception {
        Path file = dir.resolve("tiny.gguf");
        SyntheticModel.of(Shape.TINY, Type.Q4_0).write(file);
        try (LlamaModel model = LlamaModel.load(file, 1)) {
            String text = "hello world, Zebra 42! ünï";
            int[] ids = model.tokenizer().encode(text);
            assertThat(model.tokenizer().decode(ids)).isEqualTo(text);
            assertThat(ids.length).isLessThan(text.length());
        }
        assertThat(SyntheticModel.generatedPieces(128256)).doesNotHaveDuplicates();
    }

    private static float[] floats(GGUFFile f, String name) throws Exception {
        MemorySegment s = f.tensorData(f.tensor(name));
        float[] v = new float[(int) (s.byteSize() / 4)];
        MemorySegment.copy(s, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN),
                0, v, 0, v.length);
        return v;
    }

    private static boolean allFinite(float[] v) {
        for (float x : v) {
            if (!Float.isFinite(x)) {
                return false;
            }
        }
        return true;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
