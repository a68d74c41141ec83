package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class GGUFFileTest {

    @Test
    void readsStoriesModel() throws Exception {
        try (GGUFFile f = GGUFFile.open(SharedData.require("models/stories260K.gguf"))) {
            Metadata md = f.metadata();
            assertThat(f.version()).isEqualTo(3);
            assertThat(md.string("general.architecture")).isEqualTo("llama");
            assertThat(md.integer("llama.block_count")).isEqualTo(5);
            assertThat(md.integer("llama.embedding_length")).isEqualTo(64);
            assertThat(md.integer("llama.attention.head_count_kv")).isEqualTo(4);
            assertThat(md.stringArray("tokenizer.ggml.tokens")).hasSize(512);
            assertThat(md.floatArray("tokenizer.ggml.scores")).hasSize(512);
            assertThat(md.intArray("tokenizer.ggml.token_type")).hasSize(512);

            TensorInfo emb = f.tensor("token_embd.weight");
            assertThat(emb.type()).isEqualTo(GGMLType.F32);
            assertThat(emb.shape()).containsExactly(64, 512);
            assertThat(f.tensorData(emb).byteSize()).isEqualTo(64L * 512 * 4);
            assertThat(f.tensors()).hasSize(3 + 5 * 9);
            for (TensorInfo t : f.tensors()) {
                assertThat(t.offset() % f.alignment()).isZero();
            }
            assertThatThrownBy(() -> md.string("llama.block_count"))
                    .isInstanceOf(GGUFFormatException.class)
                    .hasMessageContaining("key 'llama.block_count' has type UINT32, expected STRING");
            assertThatThrownBy(() -> f.tensor("nope"))
                    .hasMessageContaining("tensor 'nope' is missing");
        }
    }

    @Test
    void closeUnmapsAndLaterAccessFailsCleanly() throws Exception {
        GGUFFile f = GGUFFile.open(SharedData.require("models/stories260K.gguf"));
        MemorySegment s = f.tensorData(f.tensor("output_norm.weight"));
        float first = s.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        assertThat(first).isFinite();
        f.close();
        f.close();
        assertThatThrownBy(() -> s.get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0)).isInstanceOf(IllegalStateException.class);
    }
}
