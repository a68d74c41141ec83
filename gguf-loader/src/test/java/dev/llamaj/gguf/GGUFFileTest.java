package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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

    private static String sha256Of(byte[] bytes) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    @Test
    void sha256OfAnEmptyModelIsTheKnownValue(@TempDir Path dir) throws IOException {
        Path p = dir.resolve("empty.gguf");
        new GGUFWriter().write(p); // "GGUF", version 3, two zero counts, 8 bytes of padding
        try (GGUFFile f = GGUFFile.open(p)) {
            // from sha256sum(1)
            assertThat(f.sha256()).isEqualTo("a3718c7940c34ff91a906d0758debb656aed43d1aa8b23b99f67cb106cdbc881");
        }
    }

    @Test
    void sha256MatchesMessageDigestOverTheBytes(@TempDir Path dir) throws Exception {
        byte[] small = MalformedGGUFTest.smallValidFile(dir);
        try (GGUFFile f = GGUFFile.open(dir.resolve("small-valid.gguf"))) {
            assertThat(f.sha256()).isEqualTo(sha256Of(small));
        }
        // Over two 1 MiB digest chunks, the last one partial.
        byte[] weights = new byte[4 * 700_001];
        new Random(1).nextBytes(weights);
        Path p = dir.resolve("chunks.gguf");
        new GGUFWriter().putString("general.architecture", "llama")
                .addTensor("w", GGMLType.F32, new long[] {700_001}, weights).write(p);
        GGUFFile f = GGUFFile.open(p);
        assertThat(f.fileSize()).isGreaterThan(2 << 20);
        assertThat(f.sha256()).isEqualTo(sha256Of(Files.readAllBytes(p))).isEqualTo(f.sha256());
        f.close();
        assertThatThrownBy(f::sha256).isInstanceOf(IllegalStateException.class);
    }

    @ParameterizedTest
    @ValueSource(strings = {"models/stories260K.gguf", "tokenizer/llama-spm.gguf", "tokenizer/llama3-bpe.gguf",
            "reference/quant-blocks.gguf"})
    void opensEverySharedFile(String name) throws Exception {
        Path p = SharedData.require(name);
        try (GGUFFile f = GGUFFile.open(p)) {
            assertThat(f.sha256()).isEqualTo(sha256Of(Files.readAllBytes(p)));
            for (TensorInfo t : f.tensors()) {
                assertThat(f.tensorData(t).byteSize()).isEqualTo(t.byteSize());
            }
        }
    }
}
