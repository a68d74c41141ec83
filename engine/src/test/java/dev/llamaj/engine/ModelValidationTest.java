package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.GGUFFormatException;
import dev.llamaj.gguf.GGUFWriter;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;
import dev.llamaj.gguf.UnsupportedModelException;
import dev.llamaj.gguf.ValueType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/// Model-level checks before any computation: stories260K (dim 64, 8 heads of 8, 4 KV heads, 5 blocks, FFN 172,
/// 512 tokens) copied with one thing damaged each — a tensor missing, a shape that does not follow from the
/// metadata, an unsupported type, a required key of the wrong type or out of range. Each copy must fail to load
/// with the expected exception and a one-line message naming the file, the tensor or key, and the expected and
/// actual values.
class ModelValidationTest {
    @TempDir
    Path dir;

    private record Entry(ValueType type, Object value) {}

    private record Tensor(String name, GGMLType type, long[] shape, MemorySegment data) {}

    /// The copy of the model an edit works on: metadata in file order, and the tensor table.
    private record Model(Map<String, Entry> metadata, List<Tensor> tensors) {
        void put(String key, ValueType type, Object value) {
            metadata.put(key, new Entry(type, value));
        }

        void remove(String key) {
            assertThat(metadata.remove(key)).as(key).isNotNull();
        }

        void removeTensor(String name) {
            assertThat(tensors.removeIf(t -> t.name().equals(name))).as(name).isTrue();
        }

        /// Replaces a tensor's type and shape; its data becomes zeros of the new size.
        void retype(String name, GGMLType type, long... shape) {
            for (int i = 0; i < tensors.size(); i++) {
                if (tensors.get(i).name().equals(name)) {
                    tensors.set(i, new Tensor(name, type, shape, null));
                    return;
                }
            }
            tensors.add(new Tensor(name, type, shape, null));
        }

        void reshape(String name, long... shape) {
            retype(name, GGMLType.F32, shape);
        }
    }

    @FunctionalInterface
    private interface Edit {
        void apply(Model m);
    }

    enum Damage {
        MISSING_LAYER_TENSOR(m -> m.removeTensor("blk.2.ffn_down.weight"),
                GGUFFormatException.class, "tensor 'blk.2.ffn_down.weight' is missing"),
        MISSING_EMBEDDING(m -> m.removeTensor("token_embd.weight"),
                GGUFFormatException.class, "tensor 'token_embd.weight' is missing"),
        MISSING_OUTPUT_NORM(m -> m.removeTensor("output_norm.weight"),
                GGUFFormatException.class, "tensor 'output_norm.weight' is missing"),
        FEWER_BLOCKS_THAN_DECLARED(m -> m.put("llama.block_count", ValueType.UINT32, 6),
                GGUFFormatException.class, "tensor 'blk.5.attn_norm.weight' is missing"),
        MORE_BLOCKS_THAN_DECLARED(m -> m.put("llama.block_count", ValueType.UINT32, 4),
                UnsupportedModelException.class, "the file has tensors of block 4 ('blk.4.*') but llama.block_count is 4"),
        /// An index too large to parse must not slip past the check (it did when the index had ten digits or more).
        HUGE_BLOCK_INDEX(m -> m.reshape("blk.99999999999999999999.attn_norm.weight", 64),
                UnsupportedModelException.class, "the file has tensors of block 999999999999... ('blk.999999999999....*') but llama.block_count is 5"),
        /// A norm weight is a vector: the same 64 values as a 1 x 64 matrix are refused.
        NORM_AS_MATRIX(m -> m.reshape("blk.1.ffn_norm.weight", 64, 1),
                UnsupportedModelException.class, "tensor 'blk.1.ffn_norm.weight' has shape [64, 1], expected [64]"),
        QUERY_ROWS(m -> m.reshape("blk.0.attn_q.weight", 64, 32),
                UnsupportedModelException.class, "tensor 'blk.0.attn_q.weight' has shape [64, 32], expected [64, 64]"),
        KEY_COLUMNS(m -> m.reshape("blk.1.attn_k.weight", 32, 32),
                UnsupportedModelException.class, "tensor 'blk.1.attn_k.weight' has shape [32, 32], expected [64, 32]"),
        MATRIX_WITH_THREE_DIMENSIONS(m -> m.reshape("blk.3.attn_v.weight", 64, 32, 1),
                UnsupportedModelException.class, "tensor 'blk.3.attn_v.weight' has shape [64, 32, 1], expected [64, 32]"),
        /// 8 heads of 16 (key_length) need 128 query rows, the file has 64.
        HEADS_TIMES_HEAD_SIZE(m -> {
            m.put("llama.attention.key_length", ValueType.UINT32, 16);
            m.put("llama.attention.value_length", ValueType.UINT32, 16);
        }, UnsupportedModelException.class, "tensor 'blk.0.attn_q.weight' has shape [64, 64], expected [64, 128]"),
        /// 4 heads of 16 and 4 KV heads: keys need 64 rows, the file has 32.
        KV_HEADS_TIMES_HEAD_SIZE(m -> m.put("llama.attention.head_count", ValueType.UINT32, 4),
                UnsupportedModelException.class, "tensor 'blk.0.attn_k.weight' has shape [64, 32], expected [64, 64]"),
        KV_HEADS_NOT_DIVIDING_HEADS(m -> m.put("llama.attention.head_count_kv", ValueType.UINT32, 3),
                GGUFFormatException.class, "head count 8 is not a multiple of the key/value head count 3"),
        MORE_KV_HEADS_THAN_HEADS(m -> m.put("llama.attention.head_count_kv", ValueType.UINT32, 16),
                GGUFFormatException.class, "key 'llama.attention.head_count_kv' is 16, expected 1..8"),
        EMBEDDING_NOT_A_MULTIPLE_OF_HEADS(m -> {
            m.put("llama.attention.head_count", ValueType.UINT32, 7);
            m.put("llama.attention.head_count_kv", ValueType.UINT32, 7);
        }, GGUFFormatException.class, "embedding length 64 is not a multiple of the head count 7"),
        EMBEDDING_ROWS_VS_VOCABULARY(m -> m.reshape("token_embd.weight", 64, 500),
                UnsupportedModelException.class, "tensor 'token_embd.weight' has shape [64, 500], expected [64, 512]"),
        OUTPUT_ROWS_VS_VOCABULARY(m -> m.reshape("output.weight", 64, 511),
                UnsupportedModelException.class, "tensor 'output.weight' has shape [64, 511], expected [64, 512]"),
        VOCAB_SIZE_KEY_VS_TOKENS(m -> {
            m.put("llama.vocab_size", ValueType.UINT32, 400);
            m.reshape("token_embd.weight", 64, 400);
            m.reshape("output.weight", 64, 400);
        }, UnsupportedModelException.class, "the vocabulary has 512 tokens but the model only 400"),
        NORM_LENGTH(m -> m.reshape("blk.3.ffn_norm.weight", 32),
                UnsupportedModelException.class, "tensor 'blk.3.ffn_norm.weight' has shape [32], expected [64]"),
        NORM_TYPE(m -> m.retype("blk.0.attn_norm.weight", GGMLType.F16, 64),
                UnsupportedModelException.class, "tensor 'blk.0.attn_norm.weight' has type F16, expected F32"),
        ROPE_FREQS_LENGTH(m -> m.reshape("rope_freqs.weight", 3),
                UnsupportedModelException.class, "tensor 'rope_freqs.weight' has shape [3], expected [4]"),
        UNSUPPORTED_MATRIX_TYPE(m -> m.retype("blk.4.ffn_up.weight", GGMLType.IQ4_NL, 64, 172),
                UnsupportedModelException.class, "tensor 'blk.4.ffn_up.weight' has type IQ4_NL, which llamaj cannot run (supported: "),
        ROPE_DIMENSIONS_ODD(m -> m.put("llama.rope.dimension_count", ValueType.UINT32, 7),
                GGUFFormatException.class, "RoPE dimension count 7 is odd"),
        ROPE_DIMENSIONS_PAST_HEAD_SIZE(m -> m.put("llama.rope.dimension_count", ValueType.UINT32, 16),
                GGUFFormatException.class, "key 'llama.rope.dimension_count' is 16, expected 0..8"),
        OTHER_ARCHITECTURE(m -> m.put("general.architecture", ValueType.STRING, "mamba"),
                UnsupportedModelException.class, "architecture 'mamba' is not supported (supported: llama, qwen2, "
                + "qwen3, gemma2, gemma3, phi3, granite, olmo2, mistral3, smollm3)"),
        // Required keys with a wrong value type.
        ARCHITECTURE_AS_INTEGER(m -> m.put("general.architecture", ValueType.UINT32, 1),
                GGUFFormatException.class, "key 'general.architecture' has type UINT32, expected STRING"),
        EMBEDDING_LENGTH_AS_STRING(m -> m.put("llama.embedding_length", ValueType.STRING, "64"),
                GGUFFormatException.class, "key 'llama.embedding_length' has type STRING, expected an integer"),
        BLOCK_COUNT_AS_FLOAT(m -> m.put("llama.block_count", ValueType.FLOAT32, 5f),
                GGUFFormatException.class, "key 'llama.block_count' has type FLOAT32, expected an integer"),
        HEAD_COUNT_PER_LAYER_ARRAY(m -> m.put("llama.attention.head_count", ValueType.ARRAY, new int[] {8, 8, 8, 8, 8}),
                GGUFFormatException.class, "key 'llama.attention.head_count' has type ARRAY of INT32, expected an integer"),
        EPSILON_AS_STRING(m -> m.put("llama.attention.layer_norm_rms_epsilon", ValueType.STRING, "1e-5"),
                GGUFFormatException.class, "key 'llama.attention.layer_norm_rms_epsilon' has type STRING, expected FLOAT32"),
        TOKENS_AS_INTEGERS(m -> m.put("tokenizer.ggml.tokens", ValueType.ARRAY, new int[512]),
                GGUFFormatException.class, "key 'tokenizer.ggml.tokens' has type ARRAY of INT32, expected ARRAY of STRING"),
        FEED_FORWARD_LENGTH_MISSING(m -> m.remove("llama.feed_forward_length"),
                GGUFFormatException.class, "required key 'llama.feed_forward_length' is missing"),
        CONTEXT_LENGTH_NEGATIVE(m -> m.put("llama.context_length", ValueType.INT32, -1),
                GGUFFormatException.class, "key 'llama.context_length' is -1, expected 1..16777216"),
        EMBEDDING_LENGTH_ZERO(m -> m.put("llama.embedding_length", ValueType.UINT32, 0),
                GGUFFormatException.class, "key 'llama.embedding_length' is 0, expected 1..1048576");

        final Edit edit;
        final Class<? extends IOException> type;
        final String message;

        Damage(Edit edit, Class<? extends IOException> type, String message) {
            this.edit = edit;
            this.type = type;
            this.message = message;
        }
    }

    /// Copies stories260K to `name`.gguf with `edit` applied; tensors keep their bytes unless their size changed.
    private Path copy(String name, Edit edit) throws IOException {
        Path source = SharedData.require("models/stories260K.gguf");
        Path out = dir.resolve(name + ".gguf");
        try (GGUFFile f = GGUFFile.open(source)) {
            Map<String, Entry> metadata = new LinkedHashMap<>();
            for (String key : f.metadata().keys()) {
                metadata.put(key, new Entry(f.metadata().type(key), f.metadata().find(key).orElseThrow()));
            }
            List<Tensor> tensors = new ArrayList<>();
            for (TensorInfo t : f.tensors()) {
                tensors.add(new Tensor(t.name(), t.type(), t.shape(), f.tensorData(t)));
            }
            edit.apply(new Model(metadata, tensors));
            GGUFWriter w = new GGUFWriter();
            metadata.forEach((key, e) -> w.put(key, e.type(), e.value()));
            for (Tensor t : tensors) {
                long elements = 1;
                for (long d : t.shape()) {
                    elements *= d;
                }
                long bytes = t.type().byteSize(elements);
                if (t.data() != null && t.data().byteSize() == bytes) {
                    w.addTensor(t.name(), t.type(), t.shape(), t.data());
                } else {
                    w.addTensor(t.name(), t.type(), t.shape(), new byte[Math.toIntExact(bytes)]);
                }
            }
            w.write(out);
        }
        return out;
    }

    @Test
    void anUndamagedCopyLoads() throws IOException {
        Path p = copy("undamaged", m -> {});
        try (LlamaModel model = LlamaModel.load(p, 1)) {
            assertThat(model.config().blockCount()).isEqualTo(5);
            assertThat(model.config().headCount()).isEqualTo(8);
            assertThat(model.config().headCountKv()).isEqualTo(4);
            assertThat(model.config().vocabSize()).isEqualTo(512);
        }
    }

    /// A classifier padded beyond the vocabulary (as Qwen's 151936 rows for 151665 tokens) loads, and its extra
    /// rows can never be chosen.
    @Test
    void aClassifierPaddedBeyondTheVocabularyLoads() throws IOException {
        Path p = copy("padded", m -> {
            m.put("llama.vocab_size", ValueType.UINT32, 600);
            m.reshape("token_embd.weight", 64, 600);
            m.reshape("output.weight", 64, 600);
        });
        try (LlamaModel model = LlamaModel.load(p, 1); Session s = model.newSession(16)) {
            assertThat(model.config().vocabSize()).isEqualTo(600);
            s.ingest(1);
            float[] logits = s.logits();
            assertThat(logits).hasSize(600);
            for (int i = 512; i < 600; i++) {
                assertThat(logits[i]).isEqualTo(Float.NEGATIVE_INFINITY);
            }
            assertThat(logits[0]).isFinite();
        }
    }

    /// NaN weights load (checking every weight would cost a pass over the file), but the first layer whose output
    /// is not finite stops the forward pass with one line naming it, instead of generating garbage.
    @Test
    void nonFiniteWeightsStopGenerationNamingTheLayer() throws IOException {
        java.nio.ByteBuffer nan = java.nio.ByteBuffer.allocate(4 * 64 * 64).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        while (nan.hasRemaining()) {
            nan.putFloat(Float.NaN);
        }
        Path p = copy("nan", m -> {
            for (int i = 0; i < m.tensors().size(); i++) {
                Tensor t = m.tensors().get(i);
                if (t.name().equals("blk.2.attn_output.weight")) {
                    m.tensors().set(i, new Tensor(t.name(), t.type(), t.shape(), MemorySegment.ofArray(nan.array())));
                }
            }
        });
        try (LlamaModel model = LlamaModel.load(p, 1); Session s = model.newSession(64)) {
            for (int[] prompt : new int[][] {{1}, new int[40]}) { // one token, then a batch
                s.reset();
                assertThatThrownBy(() -> s.ingest(prompt)).isInstanceOf(IllegalStateException.class)
                        .hasMessage("layer 2 (blk.2.*) produced a non-finite value (NaN or infinity): the model's "
                                + "weights are damaged or out of range");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Damage.class)
    void damagedModelIsRejectedBeforeAnyComputation(Damage d) throws IOException {
        Path p = copy(d.name().toLowerCase(), d.edit);
        Throwable t = catchThrowable(() -> LlamaModel.load(p, 1).close());
        assertThat(t).as(d.name()).isExactlyInstanceOf(d.type);
        assertThat(t.getMessage()).as(d.name()).startsWith(p + ": " + d.message).doesNotContain("\n", "\r");
        if (!d.message.endsWith(": ")) {
            assertThat(t.getMessage()).isEqualTo(p + ": " + d.message);
        }
    }
}
