package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// The caps on what parsing keeps on the heap ([GGUFFile.Limits]): a file within its own size can still ask for
/// several times that on the heap (one byte of a `UINT8` array is four in an `int[]`, an eight-byte empty string
/// some fifty), so arrays, tensors and the estimated heap of all values are capped, with a one-line message
/// naming the limit; real files are far below the caps.
class MetadataLimitsTest {
    private static final Path NAME = Path.of("limits.gguf");

    @TempDir
    Path dir;

    private static GGUFFormatException rejected(byte[] bytes, GGUFFile.Limits limits) {
        Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> GGUFFile.parse(NAME, bytes, limits).close());
        assertThat(t).isInstanceOf(GGUFFormatException.class);
        assertThat(t.getMessage()).startsWith(NAME + ": ").doesNotContain("\n");
        return (GGUFFormatException) t;
    }

    /// A 16 MiB `UINT8` array, one element past the limit, in a file that holds it all: rejected before the
    /// 64 MiB `int[]` is allocated, from a file on disk as from memory.
    @Test
    void arrayLongerThanTheLimit() throws IOException {
        int n = GGUFFile.Limits.DEFAULT.maxArrayLength() + 1;
        byte[] bytes = GGUFBytes.header(0, 1).key("big", ValueType.ARRAY).type(ValueType.UINT8).u64(n).zeros(n).bytes();
        Path p = Files.write(dir.resolve("big-array.gguf"), bytes);
        assertThatThrownBy(() -> GGUFFile.open(p))
                .isInstanceOf(GGUFFormatException.class)
                .hasMessage(p + ": array of 16777217 elements in metadata 'big' is longer than the limit of 16777216 elements");
        // At the limit it is accepted.
        byte[] atLimit = GGUFBytes.header(0, 1).key("big", ValueType.ARRAY).type(ValueType.UINT8).u64(n - 1).zeros(n - 1).bytes();
        try (GGUFFile f = GGUFFile.parse(NAME, atLimit, GGUFFile.Limits.DEFAULT)) {
            assertThat(((Metadata.Array) f.metadata().find("big").orElseThrow()).length()).isEqualTo(n - 1);
        }
    }

    @Test
    void nestedArrayLongerThanTheLimit() {
        byte[] bytes = GGUFBytes.header(0, 1).key("n", ValueType.ARRAY).type(ValueType.ARRAY).u64(1)
                .type(ValueType.INT32).u64(9).zeros(36).bytes();
        assertThat(rejected(bytes, new GGUFFile.Limits(8, 16, 1 << 20)))
                .hasMessage(NAME + ": array of 9 elements in metadata 'n' is longer than the limit of 8 elements");
    }

    /// Five million empty strings: a 40 MB file whose strings would take some 280 MB of heap.
    @Test
    void manySmallStringsExceedTheMemoryLimit() {
        int n = 5_000_000;
        GGUFBytes b = GGUFBytes.header(0, 1).key("tokenizer.ggml.tokens", ValueType.ARRAY).type(ValueType.STRING).u64(n);
        b.zeros(8 * n);
        GGUFFormatException e = rejected(b.bytes(), GGUFFile.Limits.DEFAULT);
        assertThat(e).hasMessage(NAME + ": the metadata and tensor table take more than the limit of 268435456 bytes"
                + " of memory (exceeded at metadata 'tokenizer.ggml.tokens')");
    }

    /// The budget is for the whole file: arrays each within the per-array cap add up.
    @Test
    void theMemoryLimitCountsEveryValue() {
        GGUFBytes b = GGUFBytes.header(0, 3);
        for (String key : new String[] {"a", "b", "c"}) {
            b.key(key, ValueType.ARRAY).type(ValueType.INT32).u64(100).zeros(400);
        }
        // Each key/value is charged about 560 bytes (an int[100], the key, map entries).
        assertThat(rejected(b.bytes(), new GGUFFile.Limits(1000, 16, 1300))).hasMessageEndingWith(
                "take more than the limit of 1300 bytes of memory (exceeded at metadata 'c')");
        try (GGUFFile f = GGUFFile.parse(NAME, b.bytes(), new GGUFFile.Limits(1000, 16, 2000))) {
            assertThat(f.heapEstimate()).isBetween(1300L, 2000L);
        } catch (GGUFFormatException e) {
            throw new AssertionError(e);
        }
    }

    /// Tensor names and infos count too, and the tensor count has its own cap, checked before any is read.
    @Test
    void tensorCountAndTensorNames() {
        long n = GGUFFile.Limits.DEFAULT.maxTensors() + 1;
        byte[] many = GGUFBytes.header(n, 0).zeros((int) (24 * n)).bytes();
        assertThat(rejected(many, GGUFFile.Limits.DEFAULT))
                .hasMessage(NAME + ": 65537 tensors, more than the limit of 65536");
        byte[] longNames = GGUFBytes.header(2, 0)
                .tensorInfo("a".repeat(300), new long[] {8}, GGMLType.F32, 0)
                .tensorInfo("b".repeat(300), new long[] {8}, GGMLType.F32, 32).padTo(32).zeros(64).bytes();
        assertThat(rejected(longNames, new GGUFFile.Limits(16, 16, 1000)))
                .hasMessageEndingWith("(exceeded at tensor info 2 of 2)");
    }

    /// Real tokenizers are far below the caps: Llama 3's (128,256 tokens, 280,147 merges) and a SentencePiece one.
    @Test
    void realVocabulariesAreFarBelowTheLimits() throws IOException {
        for (String name : new String[] {"tokenizer/llama3-bpe.gguf", "tokenizer/llama-spm.gguf", "models/stories260K.gguf"}) {
            try (GGUFFile f = GGUFFile.open(SharedData.require(name))) {
                long estimate = f.heapEstimate();
                System.out.printf("%s: metadata and tensor table ~%.1f MB by the parser's estimate%n", name, estimate / 1e6);
                assertThat(estimate).as(name).isLessThan(GGUFFile.Limits.DEFAULT.maxHeapBytes() / 4);
                for (String key : f.metadata().keys()) {
                    if (f.metadata().find(key).orElseThrow() instanceof Metadata.Array a) {
                        assertThat(a.length()).isLessThan(GGUFFile.Limits.DEFAULT.maxArrayLength() / 32);
                    }
                }
            }
        }
    }
}
