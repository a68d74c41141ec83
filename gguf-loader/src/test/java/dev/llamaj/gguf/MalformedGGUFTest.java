package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assumptions.abort;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/// Hand-made hostile files, one per kind of damage (the idea of llama.cpp's test-gguf.cpp): each must be rejected
/// with a [GGUFFormatException] whose message is one line, starts with the file name and states the rule broken,
/// quickly and without allocating more than the file could justify. Then every truncation of a valid file, and
/// thousands of randomly damaged copies, none of which may raise anything but a [GGUFFormatException].
class MalformedGGUFTest {
    private static final Duration QUICKLY = Duration.ofSeconds(5);
    private static final long HUGE = 1L << 62;

    @TempDir
    Path dir;

    /// One tensor `t` with the given shape, type id and offset, then 128 bytes of data (enough for F32 [32]).
    private static GGUFBytes oneTensor(long[] shape, int typeId, long offset) {
        return GGUFBytes.header(1, 0).tensorInfo("t", shape, typeId, offset).padTo(32).zeros(128);
    }

    private static GGUFBytes oneKey(String key, ValueType type) {
        return GGUFBytes.header(0, 1).key(key, type);
    }

    /// `levels` arrays, each holding the next, around an empty UINT8 array.
    private static GGUFBytes nestedArrays(int levels) {
        GGUFBytes b = oneKey("n", ValueType.ARRAY);
        for (int i = 0; i < levels; i++) {
            b.type(ValueType.ARRAY).u64(1);
        }
        return b.type(ValueType.UINT8).u64(0);
    }

    private static GGUFBytes alignmentKey(ValueType type, long value) {
        GGUFBytes b = GGUFBytes.header(1, 1).key("general.alignment", type);
        if (type == ValueType.UINT32 || type == ValueType.INT32) {
            b.u32(value);
        } else {
            b.u64(value);
        }
        return b.tensorInfo("t", new long[] {32}, GGMLType.F32, 0).padTo(32).zeros(128);
    }

    enum Corruption {
        EMPTY_FILE(() -> new byte[0], "not a GGUF file (the file is empty)"),
        THREE_BYTES(() -> new byte[] {'G', 'G', 'U'}, "not a GGUF file (only 3 bytes)"),
        BAD_MAGIC(() -> GGUFBytes.of().raw("GGML".getBytes()).u32(3).u64(0).u64(0).bytes(),
                "not a GGUF file (magic 0x47474d4c, expected \"GGUF\")"),
        ZERO_MAGIC(() -> new byte[64], "not a GGUF file (magic 0x00000000, expected \"GGUF\")"),
        VERSION_1(() -> GGUFBytes.of().u32(GGUFFile.MAGIC).u32(1).u64(0).u64(0).bytes(),
                "unsupported GGUF version 1 (supported: 2, 3)"),
        VERSION_4(() -> GGUFBytes.of().u32(GGUFFile.MAGIC).u32(4).u64(0).u64(0).bytes(),
                "unsupported GGUF version 4 (supported: 2, 3)"),
        BIG_ENDIAN(() -> GGUFBytes.of().u32(GGUFFile.MAGIC).raw(new byte[] {0, 0, 0, 3}).raw(new byte[16]).bytes(),
                "big-endian GGUF files are not supported (version 3 stored big-endian"),
        TRUNCATED_HEADER(() -> GGUFBytes.of().u32(GGUFFile.MAGIC).u32(3).u32(0).bytes(),
                "truncated at byte 12 while reading header"),
        HUGE_KV_COUNT(() -> GGUFBytes.header(0, HUGE).bytes(),
                "truncated at byte 24 while reading header (4611686018427387904 metadata key/values of at least 13 bytes each, 0 bytes left)"),
        NEGATIVE_KV_COUNT(() -> GGUFBytes.header(0, -1).zeros(64).bytes(),
                "truncated at byte 88 while reading header (18446744073709551615 metadata key/values"),
        HUGE_TENSOR_COUNT(() -> GGUFBytes.header(1L << 40, 0).zeros(1000).bytes(),
                "truncated at byte 1024 while reading header (1099511627776 tensor infos of at least 24 bytes each, 1000 bytes left)"),
        HUGE_KEY_LENGTH(() -> GGUFBytes.header(0, 1).u64(HUGE).raw("key".getBytes()).zeros(10).bytes(),
                "truncated at byte 45 while reading metadata key 1 of 1 (a string of 4611686018427387904 bytes, 13 bytes left)"),
        HUGE_STRING_VALUE_LENGTH(() -> oneKey("s", ValueType.STRING).u64(-1).zeros(10).bytes(),
                "truncated at byte 55 while reading metadata 's' (a string of 18446744073709551615 bytes, 10 bytes left)"),
        HUGE_ARRAY_COUNT(() -> oneKey("a", ValueType.ARRAY).type(ValueType.UINT8).u64(HUGE).zeros(100).bytes(),
                "truncated at byte 149 while reading metadata 'a' (an array of 4611686018427387904 UINT8 values of at least 1 byte each, 100 bytes left)"),
        HUGE_STRING_ARRAY_COUNT(() -> oneKey("a", ValueType.ARRAY).type(ValueType.STRING).u64(1L << 40).zeros(64).bytes(),
                "truncated at byte 113 while reading metadata 'a' (an array of 1099511627776 STRING values of at least 8 bytes each, 64 bytes left)"),
        HUGE_NESTED_ARRAY_COUNT(() -> oneKey("a", ValueType.ARRAY).type(ValueType.ARRAY).u64(100).zeros(64).bytes(),
                "while reading metadata 'a' (an array of 100 ARRAY values of at least 12 bytes each, 64 bytes left)"),
        NESTED_TOO_DEEP(() -> nestedArrays(GGUFFile.MAX_ARRAY_NESTING + 1).bytes(),
                "arrays nested more than 3 levels deep in metadata 'n'"),
        UNKNOWN_VALUE_TYPE(() -> GGUFBytes.header(0, 1).string("k").u32(13).u32(0).bytes(),
                "unknown metadata value type 13 in metadata 'k'"),
        UNKNOWN_ARRAY_ELEMENT_TYPE(() -> oneKey("a", ValueType.ARRAY).u32(-1).u64(0).bytes(),
                "unknown metadata value type 4294967295 in metadata 'a'"),
        BOOL_2(() -> oneKey("b", ValueType.BOOL).u8(2).bytes(), "boolean value 2 in metadata 'b' is neither 0 nor 1"),
        BOOL_ARRAY_7(() -> oneKey("b", ValueType.ARRAY).type(ValueType.BOOL).u64(2).u8(1).u8(7).bytes(),
                "boolean value 7 in metadata 'b' is neither 0 nor 1"),
        INVALID_UTF8_KEY(() -> GGUFBytes.header(0, 1).string(new byte[] {'k', (byte) 0xff}).type(ValueType.UINT8).u8(0).bytes(),
                "invalid UTF-8 in metadata key 1 of 1"),
        OVERLONG_UTF8_VALUE(() -> oneKey("s", ValueType.STRING).string(new byte[] {(byte) 0xc0, (byte) 0xaf}).bytes(),
                "invalid UTF-8 in metadata 's'"),
        SURROGATE_UTF8_VALUE(() -> oneKey("s", ValueType.STRING).string(new byte[] {(byte) 0xed, (byte) 0xa0, (byte) 0x80}).bytes(),
                "invalid UTF-8 in metadata 's'"),
        INVALID_UTF8_TENSOR_NAME(() -> GGUFBytes.header(1, 0).string(new byte[] {(byte) 0x80}).u32(1).u64(32).u32(0).u64(0)
                .padTo(32).zeros(128).bytes(), "invalid UTF-8 in tensor info 1 of 1"),
        TOO_MANY_DIMS(() -> oneTensor(new long[] {32, 1, 1, 1, 1}, 0, 0).bytes(),
                "tensor 't' has 5 dimensions (expected 1..4)"),
        NO_DIMS(() -> oneTensor(new long[0], 0, 0).bytes(), "tensor 't' has 0 dimensions (expected 1..4)"),
        HUGE_DIM_COUNT(() -> GGUFBytes.header(1, 0).string("t").u32(-1).zeros(100).bytes(),
                "tensor 't' has 4294967295 dimensions (expected 1..4)"),
        ZERO_DIM(() -> oneTensor(new long[] {32, 0}, 0, 0).bytes(), "tensor 't' dimension 1 is 0 (expected 1.."),
        NEGATIVE_DIM(() -> oneTensor(new long[] {-1}, 0, 0).bytes(), "tensor 't' dimension 0 is 18446744073709551615"),
        ELEMENT_COUNT_OVERFLOW(() -> oneTensor(new long[] {1L << 32, 1L << 31}, 0, 0).bytes(),
                "tensor 't' has more than 9223372036854775807 elements (shape [4294967296, 2147483648])"),
        BYTE_SIZE_OVERFLOW(() -> oneTensor(new long[] {1L << 31, 1L << 31}, GGMLType.F64.id(), 0).bytes(),
                "tensor 't' of 4611686018427387904 F64 elements takes more than 9223372036854775807 bytes"),
        UNKNOWN_TENSOR_TYPE(() -> oneTensor(new long[] {32}, 31, 0).bytes(), "tensor 't' has unknown ggml type id 31"),
        NEGATIVE_TENSOR_TYPE(() -> oneTensor(new long[] {32}, -1, 0).bytes(), "tensor 't' has unknown ggml type id 4294967295"),
        PARTIAL_BLOCK_ROW(() -> oneTensor(new long[] {16, 2}, GGMLType.Q4_0.id(), 0).bytes(),
                "tensor 't' row of 16 elements is not a multiple of the Q4_0 block size 32"),
        MISALIGNED_OFFSET(() -> oneTensor(new long[] {8}, 0, 16).bytes(),
                "tensor 't' offset 16 is not a multiple of the alignment 32"),
        OFFSET_PAST_EOF(() -> oneTensor(new long[] {32}, 0, 4096).bytes(),
                "tensor 't' data [4160, 4288) lies outside the file (size 192)"),
        NEGATIVE_OFFSET(() -> oneTensor(new long[] {32}, 0, -32).bytes(),
                "tensor 't' data offset 18446744073709551584 lies outside the file (size 192)"),
        DATA_RANGE_OVERFLOW(() -> oneTensor(new long[] {32}, 0, Long.MAX_VALUE - 31).bytes(),
                "tensor 't' data at offset 9223372036854775776 of 128 bytes lies outside the file (size 192)"),
        HUGE_TENSOR(() -> oneTensor(new long[] {1L << 60}, GGMLType.I8.id(), 0).bytes(),
                "tensor 't' data [64, 1152921504606847040) lies outside the file (size 192)"),
        DATA_PAST_EOF(() -> GGUFBytes.header(1, 0).tensorInfo("t", new long[] {32}, GGMLType.F32, 0).padTo(32).zeros(100).bytes(),
                "tensor 't' data [64, 192) lies outside the file (size 164)"),
        DATA_SECTION_PAST_EOF(() -> GGUFBytes.header(1, 0).tensorInfo("t", new long[] {32}, GGMLType.F32, 0).bytes(),
                "tensor data section starts at byte 64, past the end of the file (size 57)"),
        OVERLAPPING_TENSORS(() -> GGUFBytes.header(2, 0)
                .tensorInfo("a", new long[] {32}, GGMLType.F32, 0)
                .tensorInfo("b", new long[] {32}, GGMLType.F32, 96).padTo(32).zeros(256).bytes(),
                "tensor 'b' data [192, 320) overlaps tensor 'a' data [96, 224)"),
        SAME_OFFSET_TENSORS(() -> GGUFBytes.header(2, 0)
                .tensorInfo("a", new long[] {8}, GGMLType.F32, 0)
                .tensorInfo("b", new long[] {8}, GGMLType.F32, 0).padTo(32).zeros(64).bytes(),
                "overlaps tensor"),
        DUPLICATE_KEY(() -> GGUFBytes.header(0, 2).kvUInt32("k", 1).kvString("k", "x").bytes(),
                "duplicate metadata key 'k'"),
        DUPLICATE_TENSOR(() -> GGUFBytes.header(2, 0)
                .tensorInfo("t", new long[] {8}, GGMLType.F32, 0)
                .tensorInfo("t", new long[] {8}, GGMLType.F32, 32).padTo(32).zeros(64).bytes(),
                "duplicate tensor name 't'"),
        ALIGNMENT_NOT_POWER_OF_TWO(() -> alignmentKey(ValueType.UINT32, 48).bytes(),
                "key 'general.alignment' is 48, expected a power of two"),
        ALIGNMENT_ZERO(() -> alignmentKey(ValueType.UINT32, 0).bytes(),
                "key 'general.alignment' is 0, expected a power of two"),
        ALIGNMENT_TOO_LARGE(() -> alignmentKey(ValueType.UINT32, 1L << 31).bytes(),
                "key 'general.alignment' is 2147483648, expected at most 1073741824"),
        ALIGNMENT_INT32(() -> alignmentKey(ValueType.INT32, 32).bytes(),
                "key 'general.alignment' has type INT32, expected UINT32"),
        ALIGNMENT_UINT64(() -> alignmentKey(ValueType.UINT64, 32).bytes(),
                "key 'general.alignment' has type UINT64, expected UINT32"),
        CONTROL_CHARACTERS_IN_NAME(() -> GGUFBytes.header(2, 0)
                .tensorInfo("a\nb\u2028", new long[] {8}, GGMLType.F32, 0)
                .tensorInfo("a\nb\u2028", new long[] {8}, GGMLType.F32, 32).padTo(32).zeros(64).bytes(),
                "duplicate tensor name 'a\\u000ab\\u2028'"),
        LONG_NAME(() -> GGUFBytes.header(0, 2).kvUInt32("k".repeat(100_000), 1).kvUInt32("k".repeat(100_000), 1).bytes(),
                "duplicate metadata key '" + "k".repeat(80) + "...'");

        final Supplier<byte[]> bytes;
        final String expected;

        Corruption(Supplier<byte[]> bytes, String expected) {
            this.bytes = bytes;
            this.expected = expected;
        }
    }

    @ParameterizedTest
    @EnumSource(Corruption.class)
    void rejectsDamagedFile(Corruption c) throws IOException {
        Path p = Files.write(dir.resolve(c.name().toLowerCase() + ".gguf"), c.bytes.get());
        GGUFFormatException e = assertTimeoutPreemptively(QUICKLY, () -> rejected(p));
        assertThat(e.getMessage()).contains(c.expected);
        assertThat(e.getMessage().length()).isLessThan(400);
    }

    /// Opens `p`, which must fail with a one-line [GGUFFormatException] that starts with the file name.
    private static GGUFFormatException rejected(Path p) {
        Throwable t = catchThrowable(() -> GGUFFile.open(p).close());
        assertThat(t).as("opening %s", p.getFileName()).isInstanceOf(GGUFFormatException.class);
        assertThat(t.getMessage()).startsWith(p + ": ").doesNotContain("\n", "\r");
        return (GGUFFormatException) t;
    }

    @Test
    void acceptsArraysNestedToTheLimit() throws IOException {
        Path p = nestedArrays(GGUFFile.MAX_ARRAY_NESTING).writeTo(dir.resolve("nested.gguf"));
        try (GGUFFile f = GGUFFile.open(p)) {
            Metadata.Array a = (Metadata.Array) f.metadata().find("n").orElseThrow();
            for (int i = 0; i < GGUFFile.MAX_ARRAY_NESTING; i++) {
                assertThat(a.elementType()).isEqualTo(ValueType.ARRAY);
                a = ((Metadata.Array[]) a.values())[0];
            }
            assertThat(a).isEqualTo(new Metadata.Array(ValueType.UINT8, new int[0]));
        }
    }

    @Test
    void acceptsVersion2AndAllowedAlignments() throws IOException {
        Path v2 = GGUFBytes.of().u32(GGUFFile.MAGIC).u32(2).u64(1).u64(0)
                .tensorInfo("t", new long[] {32}, GGMLType.F32, 0).padTo(32).zeros(128).writeTo(dir.resolve("v2.gguf"));
        try (GGUFFile f = GGUFFile.open(v2)) {
            assertThat(f.version()).isEqualTo(2);
        }
        for (long alignment : new long[] {1, 8, 1 << 30}) {
            Path p = alignmentKey(ValueType.UINT32, alignment).writeTo(dir.resolve("a" + alignment + ".gguf"));
            if (alignment == 1 << 30) {
                // Legal, but then the data section starts at 1 GiB, past the end of this small file.
                assertThat(rejected(p)).hasMessageContaining("tensor data section starts at byte 1073741824");
                continue;
            }
            try (GGUFFile f = GGUFFile.open(p)) {
                assertThat(f.alignment()).isEqualTo((int) alignment);
            }
        }
    }

    /// An incomplete download of a real model: cut in the tables it says "truncated", cut in the tensor data
    /// it names the first tensor that does not fit.
    @Test
    void realModelCutShortSaysTruncated() throws IOException {
        byte[] model = Files.readAllBytes(SharedData.require("models/stories260K.gguf"));
        for (int n : new int[] {25, 1000, 5000}) {
            Path p = Files.write(dir.resolve("cut" + n + ".gguf"), Arrays.copyOf(model, n));
            assertThat(rejected(p)).hasMessageStartingWith(p + ": truncated at byte " + n + " while reading ");
        }
        Path half = Files.write(dir.resolve("half.gguf"), Arrays.copyOf(model, model.length / 2));
        assertThat(rejected(half)).hasMessageMatching(".*: tensor '[^']+' data \\[\\d+, \\d+\\) lies outside the file "
                + "\\(size " + model.length / 2 + "\\)");
    }

    @Test
    void missingFileIsNoSuchFile() {
        Path p = dir.resolve("absent.gguf");
        assertThatThrownBy(() -> GGUFFile.open(p))
                .isInstanceOf(NoSuchFileException.class)
                .hasMessage(p + ": no such file");
    }

    @Test
    void directoryIsAnIOExceptionNotAFormatError() {
        assertThatThrownBy(() -> GGUFFile.open(dir))
                .isInstanceOf(IOException.class)
                .isNotInstanceOf(GGUFFormatException.class)
                .hasMessage(dir + ": is a directory, not a GGUF file");
    }

    @Test
    void namedPipeIsRejectedWithoutBlocking() throws Exception {
        Path fifo = dir.resolve("pipe.gguf");
        Process mkfifo;
        try {
            mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
        } catch (IOException e) {
            abort("skipping: no mkfifo on this system");
            return;
        }
        assumeTrue(mkfifo.waitFor() == 0 && Files.exists(fifo), "skipping: mkfifo failed");
        assertTimeoutPreemptively(QUICKLY, () -> assertThatThrownBy(() -> GGUFFile.open(fifo))
                .isInstanceOf(IOException.class)
                .isNotInstanceOf(GGUFFormatException.class)
                .hasMessage(fifo + ": not a regular file, not a GGUF file"));
    }

    /// A small file with one key of most value types and two tensors, the last ending exactly at the end of the
    /// file, so that every proper prefix of it is damaged.
    static byte[] smallValidFile(Path dir) throws IOException {
        Path p = dir.resolve("small-valid.gguf");
        new GGUFWriter()
                .putString("general.architecture", "llama")
                .putUInt32("llama.block_count", 1)
                .putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .putBool("flag", true)
                .put("u64", ValueType.UINT64, -1L)
                .put("f64", ValueType.FLOAT64, 0.5)
                .put("i8", ValueType.INT8, -3)
                .putArray("tokenizer.ggml.tokens", ValueType.STRING, new String[] {"<s>", "▁a", "é"})
                .putArray("tokenizer.ggml.scores", ValueType.FLOAT32, new float[] {0f, -1f, -2f})
                .putArray("tokenizer.ggml.token_type", ValueType.INT32, new int[] {3, 1, 1})
                .putArray("bools", ValueType.BOOL, new boolean[] {true, false})
                .put("nested", ValueType.ARRAY, new Metadata.Array(ValueType.ARRAY, new Metadata.Array[] {
                        new Metadata.Array(ValueType.UINT16, new int[] {1, 2})}))
                .addTensor("q", GGMLType.Q8_0, new long[] {32}, new byte[34])
                .addTensor("f", GGMLType.F32, new long[] {8}, new byte[32])
                .write(p);
        byte[] bytes = Files.readAllBytes(p);
        try (GGUFFile f = GGUFFile.open(p)) {
            TensorInfo last = f.tensor("f");
            assertThat(f.dataOffset() + last.offset() + last.byteSize()).isEqualTo(bytes.length);
        }
        return bytes;
    }

    @Test
    void rejectsTruncationAtEveryByte() throws IOException {
        byte[] valid = smallValidFile(dir);
        long dataOffset;
        try (GGUFFile f = GGUFFile.open(dir.resolve("small-valid.gguf"))) {
            dataOffset = f.dataOffset();
        }
        Path p = dir.resolve("truncated.gguf");
        List<String> wrong = new ArrayList<>();
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            for (int n = 0; n < valid.length; n++) {
                Files.write(p, Arrays.copyOf(valid, n));
                Throwable t = catchThrowable(() -> GGUFFile.open(p).close());
                String m = t == null ? null : t.getMessage();
                String expected = n == 0 ? "the file is empty"
                        : n < 4 ? "only " + n + " bytes"
                        : n < dataOffset ? "(truncated at byte " + n + " |past the end of the file \\(size " + n + "\\))"
                        : "lies outside the file \\(size " + n + "\\)";
                if (!(t instanceof GGUFFormatException) || !m.startsWith(p + ": ") || m.contains("\n")
                        || !m.matches(".*" + (n < 4 ? Pattern.quote(expected) : expected) + ".*")) {
                    wrong.add("prefix of " + n + " bytes: " + t);
                }
            }
        });
        assertThat(wrong).as("truncations of a %d-byte file not rejected as expected", valid.length).isEmpty();
    }

    /// Seeded random damage to a small valid file: byte flips, truncations, inflated counts and lengths,
    /// inserted and deleted bytes. Opening may succeed (then every tensor slice and value must be readable) or
    /// fail with a one-line [GGUFFormatException]; anything else is a bug. For a deeper local run:
    /// `-Dllamaj.fuzz.iterations=N -Dllamaj.fuzz.seed=S -Dllamaj.fuzz.base=some.gguf`.
    @Test
    void survivesRandomDamage() throws IOException {
        String base = System.getProperty("llamaj.fuzz.base", "");
        byte[] valid = base.isEmpty() ? smallValidFile(dir) : Files.readAllBytes(Path.of(base));
        int headerBytes;
        Path original = Files.write(dir.resolve("original.gguf"), valid);
        try (GGUFFile f = GGUFFile.open(original)) {
            headerBytes = (int) Math.min(f.dataOffset(), valid.length);
        }
        int iterations = Integer.getInteger("llamaj.fuzz.iterations", 3000);
        long seed = Long.getLong("llamaj.fuzz.seed", 20250601L);
        Path p = dir.resolve("damaged.gguf");
        List<String> failures = new ArrayList<>();
        int[] outcomes = new int[2];
        Duration budget = Duration.ofSeconds(Math.max(20, iterations / 150));
        assertTimeoutPreemptively(budget, () -> {
            Random random = new Random(seed);
            for (int i = 0; i < iterations && failures.size() < 10; i++) {
                StringBuilder how = new StringBuilder();
                byte[] damaged = damage(valid, headerBytes, random, how);
                Files.write(p, damaged);
                try (GGUFFile f = GGUFFile.open(p)) {
                    readEverything(f);
                    outcomes[0]++;
                } catch (GGUFFormatException e) {
                    outcomes[1]++;
                    if (!e.getMessage().startsWith(p + ": ") || e.getMessage().contains("\n")
                            || e.getMessage().contains("\r") || e.getMessage().length() > 400) {
                        failures.add("iteration " + i + " (" + how + "): badly formed message: " + e.getMessage());
                    }
                } catch (Throwable t) {
                    failures.add("iteration " + i + " (" + how + "): " + t);
                }
            }
        });
        assertThat(failures).as("seed %d", seed).isEmpty();
        // Both outcomes must occur, or the damage is too mild or too blunt to test anything.
        assertThat(outcomes[0]).as("damaged files accepted").isPositive();
        assertThat(outcomes[1]).as("damaged files rejected").isGreaterThan(iterations / 2);
    }

    private static final long[] INTERESTING = {0, 1, 2, 4, 5, 31, 32, 33, 255, 256, 0x7fff_ffffL, 0x8000_0000L,
            0xffff_ffffL, 1L << 32, 1L << 40, 1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, -1, -32};

    private static byte[] damage(byte[] valid, int headerBytes, Random random, StringBuilder how) {
        byte[] b = valid.clone();
        int rounds = 1 + random.nextInt(3);
        for (int r = 0; r < rounds && b.length > 0; r++) {
            // Mostly within the header and tables, where the parser looks; sometimes anywhere.
            int at = random.nextInt(random.nextInt(4) == 0 ? b.length : Math.min(b.length, headerBytes));
            switch (random.nextInt(7)) {
                case 0, 1 -> {
                    b[at] = (byte) random.nextInt(256);
                    how.append("set ").append(at).append("; ");
                }
                case 2 -> {
                    b[at] ^= (byte) (1 << random.nextInt(8));
                    how.append("flip ").append(at).append("; ");
                }
                case 3 -> {
                    b = Arrays.copyOf(b, random.nextInt(b.length));
                    how.append("truncate to ").append(b.length).append("; ");
                }
                case 4 -> {
                    // Inflate a count or length: a u64 or u32 at a random place, or the header's counts.
                    int pos = random.nextBoolean() ? (random.nextBoolean() ? 8 : 16) : at;
                    long v = INTERESTING[random.nextInt(INTERESTING.length)];
                    int width = random.nextBoolean() ? 8 : 4;
                    if (pos + width <= b.length) {
                        for (int k = 0; k < width; k++) {
                            b[pos + k] = (byte) (v >>> (8 * k));
                        }
                    }
                    how.append("u").append(8 * width).append(" ").append(v).append(" at ").append(pos).append("; ");
                }
                case 5 -> {
                    int n = 1 + random.nextInt(8);
                    byte[] c = new byte[b.length + n];
                    System.arraycopy(b, 0, c, 0, at);
                    for (int k = 0; k < n; k++) {
                        c[at + k] = (byte) random.nextInt(256);
                    }
                    System.arraycopy(b, at, c, at + n, b.length - at);
                    b = c;
                    how.append("insert ").append(n).append(" at ").append(at).append("; ");
                }
                default -> {
                    int n = Math.min(1 + random.nextInt(8), b.length - at);
                    byte[] c = new byte[b.length - n];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(b, at + n, c, at, b.length - at - n);
                    b = c;
                    how.append("delete ").append(n).append(" at ").append(at).append("; ");
                }
            }
        }
        return b;
    }

    /// Touches everything an accepted file promises: every value, every tensor's first and last byte.
    private static void readEverything(GGUFFile f) throws GGUFFormatException {
        Metadata md = f.metadata();
        for (String key : md.keys()) {
            assertThat(md.find(key)).isPresent();
            assertThat(md.type(key)).isNotNull();
        }
        for (TensorInfo t : f.tensors()) {
            MemorySegment data = f.tensorData(t);
            assertThat(data.byteSize()).isEqualTo(t.byteSize());
            data.get(ValueLayout.JAVA_BYTE, 0);
            data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
            assertThat(t.offset() % f.alignment()).isZero();
        }
        assertThat(f.sha256()).hasSize(64);
    }
}
