package dev.llamaj.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/// Writes GGUF version 3 files: metadata with explicit value types, then tensors of any ggml type as raw bytes.
///
/// Values use the representation of [Metadata] (integers as any boxed Java integer, arrays as Java arrays of
/// the matching primitive), so metadata read from one file can be copied into another with its types intact.
/// Tensor contents are streamed to the file one tensor at a time, so synthetic models of many gigabytes need no
/// more memory than their largest tensor's generator wants. Types matter to llama.cpp, which requires for
/// instance `llama.block_count` to be exactly `UINT32`: callers choose them explicitly.
public final class GGUFWriter {

    /// Produces the bytes of one tensor; must write exactly the tensor's byte size.
    @FunctionalInterface
    public interface TensorData {
        void writeTo(WritableByteChannel out) throws IOException;
    }

    private record Entry(ValueType type, Object value) {}

    private record Tensor(String name, GGMLType type, long[] shape, long byteSize, TensorData data) {}

    private final Map<String, Entry> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private final Set<String> tensorNames = new HashSet<>();
    private int alignment = GGUFFile.DEFAULT_ALIGNMENT;

    /// Sets `general.alignment` (a power of two); the default is 32.
    public GGUFWriter alignment(int alignment) {
        if (alignment <= 0 || Integer.bitCount(alignment) != 1) {
            throw new IllegalArgumentException("alignment " + alignment + " is not a power of two");
        }
        this.alignment = alignment;
        if (alignment != GGUFFile.DEFAULT_ALIGNMENT) {
            metadata.put(GGUFFile.ALIGNMENT_KEY, new Entry(ValueType.UINT32, (long) alignment));
        } else {
            metadata.remove(GGUFFile.ALIGNMENT_KEY);
        }
        return this;
    }

    /// Adds or replaces a key. For `ARRAY`, `value` is a [Metadata.Array] or a Java array (`String[]`,
    /// `float[]`, `int[]` as INT32, `long[]` as INT64, `double[]`, `boolean[]`).
    ///
    /// A valid `general.alignment` (a `UINT32` power of two, as [#putAll] copies from another file) also sets the
    /// alignment the tensors are laid out with, so the file stays consistent. Any other value for that key is
    /// written as given, without changing the layout, which lets tests craft files with a bad alignment.
    public GGUFWriter put(String key, ValueType type, Object value) {
        if (type == ValueType.ARRAY && !(value instanceof Metadata.Array)) {
            value = new Metadata.Array(typeOfElements(value), value);
        }
        if (key.equals(GGUFFile.ALIGNMENT_KEY) && type == ValueType.UINT32 && value instanceof Number n
                && n.longValue() > 0 && n.longValue() <= GGUFFile.MAX_ALIGNMENT && Long.bitCount(n.longValue()) == 1) {
            alignment = n.intValue();
        }
        metadata.put(key, new Entry(type, value));
        return this;
    }

    public GGUFWriter putString(String key, String value) {
        return put(key, ValueType.STRING, value);
    }

    public GGUFWriter putUInt32(String key, long value) {
        return put(key, ValueType.UINT32, value);
    }

    public GGUFWriter putFloat32(String key, float value) {
        return put(key, ValueType.FLOAT32, value);
    }

    public GGUFWriter putBool(String key, boolean value) {
        return put(key, ValueType.BOOL, value);
    }

    public GGUFWriter putArray(String key, ValueType elementType, Object javaArray) {
        return put(key, ValueType.ARRAY, new Metadata.Array(elementType, javaArray));
    }

    /// Copies every key of `source` with its type, except the ones `keep` rejects.
    public GGUFWriter putAll(Metadata source, java.util.function.Predicate<String> keep) {
        for (String key : source.keys()) {
            if (keep.test(key)) {
                put(key, source.type(key), source.find(key).orElseThrow());
            }
        }
        return this;
    }

    public GGUFWriter addTensor(String name, GGMLType type, long[] shape, byte[] data) {
        return addTensor(name, type, shape, out -> out.write(ByteBuffer.wrap(data)));
    }

    public GGUFWriter addTensor(String name, GGMLType type, long[] shape, MemorySegment data) {
        return addTensor(name, type, shape, out -> out.write(data.asByteBuffer()));
    }

    /// Adds a tensor whose bytes `data` streams when the file is written. `shape[0]` is the contiguous dimension.
    public GGUFWriter addTensor(String name, GGMLType type, long[] shape, TensorData data) {
        if (!tensorNames.add(name)) {
            throw new IllegalArgumentException("duplicate tensor name '" + name + "'");
        }
        long elements = 1;
        for (long d : shape) {
            elements = Math.multiplyExact(elements, d);
        }
        tensors.add(new Tensor(name, type, shape.clone(), type.byteSize(elements), data));
        return this;
    }

    /// Writes the file, replacing any existing one.
    public void write(Path path) throws IOException {
        Header h = new Header();
        h.u32(GGUFFile.MAGIC);
        h.u32(3);
        h.u64(tensors.size());
        h.u64(metadata.size());
        for (Map.Entry<String, Entry> e : metadata.entrySet()) {
            h.string(e.getKey());
            h.u32(e.getValue().type().ordinal());
            h.value(e.getValue().type(), e.getValue().value());
        }
        long offset = 0;
        for (Tensor t : tensors) {
            h.string(t.name());
            h.u32(t.shape().length);
            for (long d : t.shape()) {
                h.u64(d);
            }
            h.u32(t.type().id());
            h.u64(offset);
            offset = GGUFFile.alignUp(offset + t.byteSize(), alignment);
        }
        h.pad(alignment);
        try (FileChannel out = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(out, ByteBuffer.wrap(h.bytes.toByteArray()));
            for (Tensor t : tensors) {
                long start = out.position();
                t.data().writeTo(out);
                long written = out.position() - start;
                if (written != t.byteSize()) {
                    throw new IOException("tensor '" + t.name() + "': wrote " + written + " bytes, expected " + t.byteSize());
                }
                long padded = GGUFFile.alignUp(written, alignment);
                writeFully(out, ByteBuffer.allocate((int) (padded - written)));
            }
        }
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }

    /// The value type [Metadata#of] and [#put] infer for a Java value.
    static ValueType typeOf(Object v) {
        return switch (v) {
            case String _ -> ValueType.STRING;
            case Byte _ -> ValueType.INT8;
            case Short _ -> ValueType.INT16;
            case Integer _ -> ValueType.INT32;
            case Long _ -> ValueType.INT64;
            case Float _ -> ValueType.FLOAT32;
            case Double _ -> ValueType.FLOAT64;
            case Boolean _ -> ValueType.BOOL;
            default -> ValueType.ARRAY;
        };
    }

    private static ValueType typeOfElements(Object array) {
        return switch (array) {
            case String[] _ -> ValueType.STRING;
            case int[] _ -> ValueType.INT32;
            case long[] _ -> ValueType.INT64;
            case float[] _ -> ValueType.FLOAT32;
            case double[] _ -> ValueType.FLOAT64;
            case boolean[] _ -> ValueType.BOOL;
            case Metadata.Array[] _ -> ValueType.ARRAY;
            default -> throw new IllegalArgumentException("not a GGUF array: " + array.getClass().getSimpleName());
        };
    }

    /// Little-endian encoder of the header into memory.
    private static final class Header {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream(1 << 16);
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u8(int v) {
            bytes.write(v);
        }

        void u16(int v) {
            scratch.clear();
            scratch.putShort((short) v);
            bytes.write(scratch.array(), 0, 2);
        }

        void u32(long v) {
            scratch.clear();
            scratch.putInt((int) v);
            bytes.write(scratch.array(), 0, 4);
        }

        void u64(long v) {
            scratch.clear();
            scratch.putLong(v);
            bytes.write(scratch.array(), 0, 8);
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes.write(b, 0, b.length);
        }

        void pad(int alignment) {
            while (bytes.size() % alignment != 0) {
                bytes.write(0);
            }
        }

        void value(ValueType type, Object v) {
            switch (type) {
                case UINT8, INT8 -> u8(((Number) v).intValue());
                case UINT16, INT16 -> u16(((Number) v).intValue());
                case UINT32, INT32 -> u32(((Number) v).longValue());
                case UINT64, INT64 -> u64(((Number) v).longValue());
                case FLOAT32 -> u32(Float.floatToRawIntBits(((Number) v).floatValue()));
                case FLOAT64 -> u64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
                case BOOL -> u8((Boolean) v ? 1 : 0);
                case STRING -> string((String) v);
                case ARRAY -> array((Metadata.Array) v);
            }
        }

        private void array(Metadata.Array a) {
            ValueType t = a.elementType();
            u32(t.ordinal());
            int n = a.length();
            u64(n);
            Object values = a.values();
            for (int i = 0; i < n; i++) {
                Object element = switch (values) {
                    case int[] x -> x[i];
                    case long[] x -> x[i];
                    case float[] x -> x[i];
                    case double[] x -> x[i];
                    case boolean[] x -> x[i];
                    case Object[] x -> x[i];
                    default -> throw new IllegalArgumentException("not a GGUF array: " + values.getClass());
                };
                value(t, element);
            }
        }
    }
}
