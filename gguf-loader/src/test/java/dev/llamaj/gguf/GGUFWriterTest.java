package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// Write → read round trips through [GGUFWriter] and [GGUFFile]: every metadata value type keeps its type and
/// value, tensors of several types land on the alignment with their bytes intact, and offsets beyond 4 GiB work.
class GGUFWriterTest {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    /// Key → (type, value as written); values are what [Metadata#find] must return.
    private static Map<String, Metadata.Array> arrays() {
        Map<String, Metadata.Array> a = new LinkedHashMap<>();
        a.put("arr.u8", new Metadata.Array(ValueType.UINT8, new int[] {0, 1, 127, 128, 255}));
        a.put("arr.i8", new Metadata.Array(ValueType.INT8, new int[] {-128, -1, 0, 127}));
        a.put("arr.u16", new Metadata.Array(ValueType.UINT16, new int[] {0, 65535}));
        a.put("arr.i16", new Metadata.Array(ValueType.INT16, new int[] {-32768, 32767}));
        a.put("arr.u32", new Metadata.Array(ValueType.UINT32, new int[] {0, -1, Integer.MIN_VALUE})); // raw bits
        a.put("arr.i32", new Metadata.Array(ValueType.INT32, new int[] {Integer.MIN_VALUE, 0, Integer.MAX_VALUE}));
        a.put("arr.u64", new Metadata.Array(ValueType.UINT64, new long[] {0, -1L, Long.MIN_VALUE}));
        a.put("arr.i64", new Metadata.Array(ValueType.INT64, new long[] {Long.MIN_VALUE, -1, Long.MAX_VALUE}));
        a.put("arr.f32", new Metadata.Array(ValueType.FLOAT32,
                new float[] {0f, -0f, 1e-5f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NEGATIVE_INFINITY, Float.NaN}));
        a.put("arr.f64", new Metadata.Array(ValueType.FLOAT64, new double[] {Math.PI, -Double.MAX_VALUE, Double.MIN_VALUE}));
        a.put("arr.bool", new Metadata.Array(ValueType.BOOL, new boolean[] {true, false, true}));
        a.put("arr.string", new Metadata.Array(ValueType.STRING,
                new String[] {"", "a", "▁the", "Grüße", "日本語", "🦙", "<0x0A>", "tab\there"}));
        a.put("arr.empty", new Metadata.Array(ValueType.FLOAT32, new float[0]));
        a.put("arr.nested", new Metadata.Array(ValueType.ARRAY, new Metadata.Array[] {
                new Metadata.Array(ValueType.INT32, new int[] {1, 2, 3}),
                new Metadata.Array(ValueType.STRING, new String[] {"x", "ÿ"}),
                new Metadata.Array(ValueType.ARRAY, new Metadata.Array[] {
                        new Metadata.Array(ValueType.UINT8, new int[] {7})}),
                new Metadata.Array(ValueType.BOOL, new boolean[0])}));
        return a;
    }

    private record Scalar(ValueType type, Object written, Object read) {}

    private static Map<String, Scalar> scalars() {
        Map<String, Scalar> s = new LinkedHashMap<>();
        s.put("general.architecture", new Scalar(ValueType.STRING, "llama", "llama"));
        s.put("u8", new Scalar(ValueType.UINT8, 255, 255L));
        s.put("i8", new Scalar(ValueType.INT8, -128, -128L));
        s.put("u16", new Scalar(ValueType.UINT16, 65535, 65535L));
        s.put("i16", new Scalar(ValueType.INT16, -32768, -32768L));
        s.put("u32", new Scalar(ValueType.UINT32, 4294967295L, 4294967295L));
        s.put("i32", new Scalar(ValueType.INT32, Integer.MIN_VALUE, (long) Integer.MIN_VALUE));
        s.put("u64.max", new Scalar(ValueType.UINT64, -1L, -1L)); // 2^64 - 1, raw bits
        s.put("u64.big", new Scalar(ValueType.UINT64, Long.MAX_VALUE, Long.MAX_VALUE));
        s.put("i64", new Scalar(ValueType.INT64, Long.MIN_VALUE, Long.MIN_VALUE));
        s.put("f32", new Scalar(ValueType.FLOAT32, 1e-5f, 1e-5f));
        s.put("f32.negzero", new Scalar(ValueType.FLOAT32, -0f, -0f));
        s.put("f64", new Scalar(ValueType.FLOAT64, Math.E, Math.E));
        s.put("bool.true", new Scalar(ValueType.BOOL, true, true));
        s.put("bool.false", new Scalar(ValueType.BOOL, false, false));
        s.put("string.empty", new Scalar(ValueType.STRING, "", ""));
        s.put("string.unicode", new Scalar(ValueType.STRING, "Grüße, 世界! 🦙 — é\u0301", "Grüße, 世界! 🦙 — é\u0301"));
        s.put("ключ.ü", new Scalar(ValueType.STRING, "non-ASCII key", "non-ASCII key"));
        return s;
    }

    private record Tensor(String name, GGMLType type, long[] shape, byte[] data) {}

    /// Odd sizes (84, 108, 10, 1, 102 bytes...) so that padding to the alignment matters between every pair.
    private static List<Tensor> tensors() {
        Random random = new Random(42);
        List<Tensor> list = new ArrayList<>();
        for (Object[] t : new Object[][] {
                {"a.f32", GGMLType.F32, new long[] {7, 3}},
                {"b.q4_0", GGMLType.Q4_0, new long[] {64, 3}},
                {"c.q6_k", GGMLType.Q6_K, new long[] {256, 2}},
                {"d.f16", GGMLType.F16, new long[] {5}},
                {"e.i8", GGMLType.I8, new long[] {1}},
                {"f.q8_0", GGMLType.Q8_0, new long[] {32, 1, 1, 3}},
                {"g.q4_k", GGMLType.Q4_K, new long[] {256}},
                {"h.bf16", GGMLType.BF16, new long[] {3, 1, 3}}}) {
            GGMLType type = (GGMLType) t[1];
            long[] shape = (long[]) t[2];
            long elements = 1;
            for (long d : shape) {
                elements *= d;
            }
            byte[] data = new byte[(int) type.byteSize(elements)];
            random.nextBytes(data);
            list.add(new Tensor((String) t[0], type, shape, data));
        }
        return list;
    }

    /// Writes every scalar, every array and every tensor, feeding the tensor bytes in the three ways the writer
    /// accepts (byte[], MemorySegment, TensorData).
    private Path writeSample(Path path, int alignment) throws IOException {
        GGUFWriter w = new GGUFWriter().alignment(alignment);
        scalars().forEach((k, v) -> w.put(k, v.type(), v.written()));
        arrays().forEach((k, v) -> w.put(k, ValueType.ARRAY, v));
        w.putArray("arr.java", ValueType.STRING, new String[] {"via", "putArray"});
        w.put("arr.inferred", ValueType.ARRAY, new float[] {1.5f});
        int i = 0;
        for (Tensor t : tensors()) {
            switch (i++ % 3) {
                case 0 -> w.addTensor(t.name(), t.type(), t.shape(), t.data());
                case 1 -> w.addTensor(t.name(), t.type(), t.shape(), MemorySegment.ofArray(t.data()));
                default -> w.addTensor(t.name(), t.type(), t.shape(), out -> out.write(ByteBuffer.wrap(t.data())));
            }
        }
        w.write(path);
        return path;
    }

    @Test
    void roundTripsEveryScalarType() throws IOException {
        try (GGUFFile f = GGUFFile.open(writeSample(dir.resolve("sample.gguf"), 64))) {
            Metadata md = f.metadata();
            assertThat(f.version()).isEqualTo(3);
            for (Map.Entry<String, Scalar> e : scalars().entrySet()) {
                String key = e.getKey();
                assertThat(md.type(key)).as(key).isEqualTo(e.getValue().type());
                assertThat(md.find(key)).as(key).contains(e.getValue().read());
            }
            assertThat(Float.floatToRawIntBits(md.float32("f32.negzero"))).isEqualTo(Float.floatToRawIntBits(-0f));
            assertThat(md.integer("u8")).isEqualTo(255);
            assertThat(md.integer("i8")).isEqualTo(-128);
            assertThat(md.integer("u32")).isEqualTo(4294967295L);
            assertThat(md.integer("u64.big")).isEqualTo(Long.MAX_VALUE);
            assertThat(md.integer("i64")).isEqualTo(Long.MIN_VALUE);
            assertThat(md.float32("f32")).isEqualTo(1e-5f);
            assertThat(md.float32("f64")).isEqualTo((float) Math.E);
            assertThat(md.bool("bool.true", false)).isTrue();
            assertThat(md.bool("bool.false", true)).isFalse();
            assertThat(md.string("string.unicode")).isEqualTo("Grüße, 世界! 🦙 — é\u0301");
            assertThat(md.string("ключ.ü")).isEqualTo("non-ASCII key");
            assertThatThrownBy(() -> md.integer("u64.max"))
                    .isInstanceOf(GGUFFormatException.class)
                    .hasMessage(f.path() + ": key 'u64.max' value 18446744073709551615 is out of range");
        }
    }

    @Test
    void roundTripsEveryArrayType() throws IOException {
        try (GGUFFile f = GGUFFile.open(writeSample(dir.resolve("sample.gguf"), 64))) {
            Metadata md = f.metadata();
            for (Map.Entry<String, Metadata.Array> e : arrays().entrySet()) {
                String key = e.getKey();
                assertThat(md.type(key)).as(key).isEqualTo(ValueType.ARRAY);
                assertThat(md.find(key)).as(key).contains(e.getValue());
            }
            assertThat(md.intArray("arr.u8")).containsExactly(0, 1, 127, 128, 255);
            assertThat(md.intArray("arr.u32")).containsExactly(0, -1, Integer.MIN_VALUE);
            assertThat(md.stringArray("arr.string")).containsExactly("", "a", "▁the", "Grüße", "日本語", "🦙", "<0x0A>", "tab\there");
            assertThat(md.stringArray("arr.java")).containsExactly("via", "putArray");
            assertThat(md.floatArray("arr.inferred")).containsExactly(1.5f);
            assertThat(md.floatArray("arr.f32")).usingElementComparator(Float::compare)
                    .containsExactly(0f, -0f, 1e-5f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NEGATIVE_INFINITY, Float.NaN);
            Metadata.Array nested = (Metadata.Array) md.find("arr.nested").orElseThrow();
            assertThat(nested.length()).isEqualTo(4);
            Metadata.Array inner = ((Metadata.Array[]) nested.values())[2];
            assertThat(inner.elementType()).isEqualTo(ValueType.ARRAY);
            assertThat(((Metadata.Array[]) inner.values())[0].values()).isEqualTo(new int[] {7});
            assertThatThrownBy(() -> md.stringArray("arr.u8"))
                    .hasMessage(f.path() + ": key 'arr.u8' has type ARRAY of UINT8, expected ARRAY of STRING");
        }
    }

    @Test
    void tensorsAreAlignedAndTheirBytesIntact() throws IOException {
        List<Tensor> expected = tensors();
        try (GGUFFile f = GGUFFile.open(writeSample(dir.resolve("sample.gguf"), 64))) {
            assertThat(f.alignment()).isEqualTo(64);
            assertThat(f.metadata().type("general.alignment")).isEqualTo(ValueType.UINT32);
            assertThat(f.metadata().integer("general.alignment")).isEqualTo(64);
            assertThat(f.dataOffset() % 64).isZero();
            assertThat(f.tensors()).extracting(TensorInfo::name)
                    .containsExactlyElementsOf(expected.stream().map(Tensor::name).toList());
            long offset = 0;
            for (Tensor t : expected) {
                TensorInfo info = f.tensor(t.name());
                assertThat(info.type()).isEqualTo(t.type());
                assertThat(info.shape()).containsExactly(t.shape());
                assertThat(info.offset()).as("offset of %s", t.name()).isEqualTo(offset);
                assertThat(info.byteSize()).isEqualTo(t.data().length);
                MemorySegment data = f.tensorData(info);
                assertThat(data.toArray(ValueLayout.JAVA_BYTE)).as("bytes of %s", t.name()).isEqualTo(t.data());
                offset = GGUFFile.alignUp(offset + t.data().length, 64);
            }
            assertThat(f.fileSize()).isEqualTo(f.dataOffset() + offset);
        }
    }

    @Test
    void defaultAlignmentIs32AndNotWrittenAsAKey() throws IOException {
        try (GGUFFile f = GGUFFile.open(writeSample(dir.resolve("a32.gguf"), 32))) {
            assertThat(f.alignment()).isEqualTo(32);
            assertThat(f.metadata().contains("general.alignment")).isFalse();
            for (TensorInfo t : f.tensors()) {
                assertThat(t.offset() % 32).isZero();
            }
        }
    }

    @Test
    void emptyFileRoundTrips() throws IOException {
        Path p = dir.resolve("empty.gguf");
        new GGUFWriter().write(p);
        try (GGUFFile f = GGUFFile.open(p)) {
            assertThat(f.metadata().keys()).isEmpty();
            assertThat(f.tensors()).isEmpty();
            assertThat(f.fileSize()).isEqualTo(32); // 24-byte header padded to the alignment
        }
    }

    @Test
    void putAllCopiesEveryKeyWithItsTypeAndTheAlignment() throws IOException {
        Path a = writeSample(dir.resolve("a.gguf"), 64);
        Path b = dir.resolve("b.gguf");
        try (GGUFFile original = GGUFFile.open(a)) {
            GGUFWriter w = new GGUFWriter().putAll(original.metadata(), key -> true);
            for (TensorInfo t : original.tensors()) {
                w.addTensor(t.name(), t.type(), t.shape(), original.tensorData(t));
            }
            w.write(b);
            try (GGUFFile copy = GGUFFile.open(b)) {
                Metadata md = copy.metadata();
                assertThat(md.keys()).containsExactlyElementsOf(original.metadata().keys());
                for (String key : md.keys()) {
                    assertThat(md.type(key)).as(key).isEqualTo(original.metadata().type(key));
                    assertThat(md.find(key)).as(key).isEqualTo(original.metadata().find(key));
                }
                // general.alignment came in through putAll: the copy must be laid out with it.
                assertThat(copy.alignment()).isEqualTo(64);
                assertThat(copy.tensors()).isEqualTo(original.tensors());
            }
        }
        assertThat(Files.mismatch(a, b)).as("first differing byte").isEqualTo(-1);
    }

    @Test
    void putAllFiltersKeys() throws IOException {
        Path b = dir.resolve("filtered.gguf");
        try (GGUFFile original = GGUFFile.open(writeSample(dir.resolve("a.gguf"), 32))) {
            new GGUFWriter().putAll(original.metadata(), key -> !key.startsWith("arr.")).write(b);
        }
        try (GGUFFile f = GGUFFile.open(b)) {
            assertThat(f.metadata().keys()).containsExactlyElementsOf(scalars().keySet());
            assertThat(f.metadata().type("u16")).isEqualTo(ValueType.UINT16);
        }
    }

    @Test
    void metadataOfRoundTripsThroughPutAll() throws IOException {
        Metadata md = Metadata.of("memory", Map.of("s", "x", "i", 7, "l", 8L, "f", 1f, "b", true,
                "a", new String[] {"p", "q"}));
        Path p = dir.resolve("of.gguf");
        new GGUFWriter().putAll(md, key -> true).write(p);
        try (GGUFFile f = GGUFFile.open(p)) {
            assertThat(f.metadata().type("i")).isEqualTo(ValueType.INT32);
            assertThat(f.metadata().type("l")).isEqualTo(ValueType.INT64);
            assertThat(f.metadata().integer("i")).isEqualTo(7);
            assertThat(f.metadata().stringArray("a")).containsExactly("p", "q");
            for (String key : md.keys()) {
                assertThat(f.metadata().find(key)).as(key).isEqualTo(md.find(key));
            }
        }
    }

    @Test
    void rejectsTensorDataOfTheWrongSize() {
        GGUFWriter w = new GGUFWriter().addTensor("t", GGMLType.F32, new long[] {4}, new byte[15]);
        assertThatThrownBy(() -> w.write(dir.resolve("short.gguf")))
                .isInstanceOf(IOException.class)
                .hasMessage("tensor 't': wrote 15 bytes, expected 16");
    }

    @Test
    void rejectsBadArguments() {
        GGUFWriter w = new GGUFWriter().addTensor("t", GGMLType.F32, new long[] {4}, new byte[16]);
        assertThatThrownBy(() -> w.addTensor("t", GGMLType.F32, new long[] {4}, new byte[16]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("duplicate tensor name 't'");
        assertThatThrownBy(() -> w.addTensor("q", GGMLType.Q4_0, new long[] {33}, new byte[0]))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> w.alignment(48)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> w.alignment(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> w.put("x", ValueType.ARRAY, new Object())).isInstanceOf(IllegalArgumentException.class);
    }

    /// A 5 GiB sparse tensor followed by a small one: offsets and slices beyond 4 GiB (past any `int`) work.
    /// The file is sparse, so it takes a few kilobytes of disk.
    @Test
    void readsTensorsPastFourGiB() throws IOException {
        long bigBytes = 5L << 30;
        assumeTrue(Files.getFileStore(dir).getUsableSpace() > 2 * bigBytes,
                "skipping: less than 10 GiB free in " + dir + " (in case the file system cannot make sparse files)");
        Path p = dir.resolve("large.gguf");
        try {
            new GGUFWriter()
                    .putString("general.architecture", "llama")
                    .addTensor("big", GGMLType.F32, new long[] {1024, bigBytes / 4 / 1024}, out -> {
                        FileChannel channel = (FileChannel) out;
                        channel.position(channel.position() + bigBytes - 4); // a hole: no bytes written
                        channel.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, 42.5f));
                    })
                    .addTensor("tail", GGMLType.F32, new long[] {4},
                            ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
                                    .putFloat(1f).putFloat(2f).putFloat(3f).putFloat(-4f).array())
                    .write(p);
            try (GGUFFile f = GGUFFile.open(p)) {
                assertThat(f.fileSize()).isGreaterThan(bigBytes);
                TensorInfo big = f.tensor("big");
                TensorInfo tail = f.tensor("tail");
                assertThat(big.byteSize()).isEqualTo(bigBytes);
                assertThat(tail.offset()).isEqualTo(bigBytes).isGreaterThan(1L << 32);
                MemorySegment bigData = f.tensorData(big);
                assertThat(bigData.byteSize()).isEqualTo(bigBytes);
                assertThat(bigData.get(F32_LE, 0)).isZero();
                assertThat(bigData.get(F32_LE, bigBytes - 4)).isEqualTo(42.5f);
                assertThat(f.tensorData(tail).toArray(F32_LE)).containsExactly(1f, 2f, 3f, -4f);
            }
        } finally {
            Files.deleteIfExists(p);
        }
    }
}
