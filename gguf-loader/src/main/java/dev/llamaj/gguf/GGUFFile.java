package dev.llamaj.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/// A GGUF file, memory-mapped read-only, with its metadata and tensor table parsed and validated.
///
/// ```
/// GGUF layout (little-endian, version 2 and 3):
///   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
///   metadata_kv_count × { string key | u32 value_type | value }        string = u64 length | UTF-8 bytes
///   tensor_count      × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
///   padding to general.alignment (default 32)
///   tensor data: each tensor at data_start + offset, offsets aligned
/// ```
///
/// Tensors are zero-copy [MemorySegment] slices of the mapping. The file is mapped into a shared [Arena], so
/// sessions on several threads can read the same weights; [#close] unmaps it, after which any access to a slice
/// throws `IllegalStateException` rather than crashing the JVM. Everything read from the file is validated here
/// (counts against the bytes left, dimensions against overflow, data ranges against the file size, alignment,
/// duplicates), so the layers above can trust what they get.
public final class GGUFFile implements AutoCloseable {
    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    static final int DEFAULT_ALIGNMENT = 32;
    static final int MAX_DIMS = 4;
    /// Nested arrays are legal GGUF; real files use none, so a little depth suffices and bounds recursion.
    static final int MAX_ARRAY_NESTING = 3;

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapping;
    private final int version;
    private final Metadata metadata;
    private final Map<String, TensorInfo> tensors;
    private final long dataOffset;
    private final int alignment;

    private GGUFFile(Path path, Arena arena, MemorySegment mapping, int version, Metadata metadata,
                     Map<String, TensorInfo> tensors, long dataOffset, int alignment) {
        this.path = path;
        this.arena = arena;
        this.mapping = mapping;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.dataOffset = dataOffset;
        this.alignment = alignment;
    }

    /// Maps and parses `path`.
    ///
    /// @throws NoSuchFileException if the file does not exist
    /// @throws GGUFFormatException if the bytes are not a valid GGUF file
    /// @throws IOException for any other failure to read it (a directory, no permission...)
    public static GGUFFile open(Path path) throws IOException {
        String name = path.toString();
        if (Files.isDirectory(path)) {
            throw new IOException(name + ": is a directory, not a GGUF file");
        }
        if (!Files.exists(path)) {
            throw new NoSuchFileException(name, null, "no such file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size == 0) {
                throw new GGUFFormatException(name + ": not a GGUF file (the file is empty)");
            }
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return parse(path, arena, mapping);
        } catch (AccessDeniedException e) {
            arena.close();
            throw new IOException(name + ": permission denied", e);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static GGUFFile parse(Path path, Arena arena, MemorySegment mapping) throws GGUFFormatException {
        String name = path.toString();
        GGUFReader in = new GGUFReader(name, mapping);
        if (mapping.byteSize() < 4) {
            throw in.error("not a GGUF file (only " + mapping.byteSize() + " bytes)");
        }
        int magic = in.u32();
        if (magic != MAGIC) {
            throw in.error(String.format("not a GGUF file (magic 0x%08x, expected \"GGUF\")", Integer.reverseBytes(magic)));
        }
        int version = in.u32();
        if (version != 2 && version != 3) {
            String hint = Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3 ? ", big-endian files are not supported" : "";
            throw in.error("unsupported GGUF version " + Integer.toUnsignedString(version) + " (supported: 2, 3" + hint + ")");
        }
        long tensorCount = in.u64();
        long kvCount = in.u64();
        // Smallest encodings: a key/value is an 8-byte key length, a 4-byte type and a 1-byte value; a tensor info
        // is an 8-byte name length, 4-byte n_dims, 4-byte type and 8-byte offset.
        in.checkCount(kvCount, 13, "metadata key/value");
        in.checkCount(tensorCount, 24, "tensor");

        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, ValueType> types = new HashMap<>();
        for (long i = 0; i < kvCount; i++) {
            in.what = "metadata key " + (i + 1) + " of " + kvCount;
            String key = in.string();
            in.what = "metadata '" + key + "'";
            ValueType type = in.valueType();
            Object value = in.value(type, MAX_ARRAY_NESTING);
            if (values.putIfAbsent(key, value) != null) {
                throw in.error("duplicate metadata key '" + key + "'");
            }
            types.put(key, type);
        }
        Metadata metadata = new Metadata(name, values, types);

        int alignment = DEFAULT_ALIGNMENT;
        if (metadata.contains("general.alignment")) {
            if (metadata.type("general.alignment") != ValueType.UINT32) {
                throw in.error("key 'general.alignment' has type " + metadata.type("general.alignment") + ", expected UINT32");
            }
            long a = metadata.integer("general.alignment");
            if (a <= 0 || Long.bitCount(a) != 1 || a > (1 << 30)) {
                throw in.error("general.alignment " + a + " is not a power of two");
            }
            alignment = (int) a;
        }

        List<TensorInfo> infos = new ArrayList<>((int) tensorCount);
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            in.what = "tensor info " + (i + 1) + " of " + tensorCount;
            String tensorName = in.string();
            in.what = "tensor info '" + tensorName + "'";
            int nDims = in.u32();
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw in.error("tensor '" + tensorName + "' has " + Integer.toUnsignedString(nDims) + " dimensions (expected 1.." + MAX_DIMS + ")");
            }
            long[] shape = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                shape[d] = in.u64();
                if (shape[d] <= 0) {
                    throw in.error("tensor '" + tensorName + "' has dimension " + d + " of " + Long.toUnsignedString(shape[d]));
                }
                try {
                    elements = Math.multiplyExact(elements, shape[d]);
                } catch (ArithmeticException e) {
                    throw in.error("tensor '" + tensorName + "' element count overflows (shape " + java.util.Arrays.toString(shape) + ")");
                }
            }
            int typeId = in.u32();
            GGMLType type = GGMLType.fromId(typeId);
            if (type == null) {
                throw in.error("tensor '" + tensorName + "' has unknown ggml type id " + Integer.toUnsignedString(typeId));
            }
            if (shape[0] % type.blockSize() != 0) {
                throw in.error("tensor '" + tensorName + "' row of " + shape[0] + " elements is not a multiple of the "
                        + type + " block size " + type.blockSize());
            }
            try {
                type.byteSize(elements);
            } catch (ArithmeticException e) {
                throw in.error("tensor '" + tensorName + "' byte size overflows");
            }
            long offset = in.u64();
            if (offset < 0 || offset % alignment != 0) {
                throw in.error("tensor '" + tensorName + "' offset " + Long.toUnsignedString(offset)
                        + " is not a multiple of the alignment " + alignment);
            }
            TensorInfo info = new TensorInfo(tensorName, type, shape, offset);
            if (byName.putIfAbsent(tensorName, info) != null) {
                throw in.error("duplicate tensor name '" + tensorName + "'");
            }
            infos.add(info);
        }

        long dataOffset = alignUp(in.position(), alignment);
        long fileSize = mapping.byteSize();
        if (tensorCount > 0 && dataOffset > fileSize) {
            throw in.error("tensor data section starts at byte " + dataOffset + ", past the end of the file (size " + fileSize + ")");
        }
        checkDataRanges(in, infos, dataOffset, fileSize);
        return new GGUFFile(path, arena, mapping, version, metadata, Collections.unmodifiableMap(byName), dataOffset, alignment);
    }

    private static void checkDataRanges(GGUFReader in, List<TensorInfo> infos, long dataOffset, long fileSize)
            throws GGUFFormatException {
        List<TensorInfo> sorted = new ArrayList<>(infos);
        sorted.sort(Comparator.comparingLong(TensorInfo::offset));
        long previousEnd = 0;
        String previousName = null;
        for (TensorInfo t : sorted) {
            long start = dataOffset + t.offset();
            long end = start + t.byteSize();
            if (start < dataOffset || end < start || end > fileSize) {
                throw in.error("tensor '" + t.name() + "' data [" + start + ", " + end
                        + ") lies outside the file (size " + fileSize + ")");
            }
            if (previousName != null && t.offset() < previousEnd) {
                throw in.error("tensor '" + t.name() + "' data overlaps tensor '" + previousName + "'");
            }
            previousEnd = t.offset() + t.byteSize();
            previousName = t.name();
        }
    }

    static long alignUp(long n, long alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    public Path path() {
        return path;
    }

    /// GGUF format version (2 or 3).
    public int version() {
        return version;
    }

    public Metadata metadata() {
        return metadata;
    }

    /// Tensor infos in file order.
    public List<TensorInfo> tensors() {
        return List.copyOf(tensors.values());
    }

    public Optional<TensorInfo> findTensor(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    /// @throws GGUFFormatException naming the tensor if it is absent
    public TensorInfo tensor(String name) throws GGUFFormatException {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new GGUFFormatException(path + ": tensor '" + name + "' is missing");
        }
        return t;
    }

    /// A zero-copy, read-only view of a tensor's bytes (valid until [#close]).
    public MemorySegment tensorData(TensorInfo tensor) {
        if (tensors.get(tensor.name()) != tensor) {
            throw new IllegalArgumentException("tensor '" + tensor.name() + "' does not belong to " + path);
        }
        return mapping.asSlice(dataOffset + tensor.offset(), tensor.byteSize());
    }

    /// Byte offset of the tensor data section from the start of the file.
    public long dataOffset() {
        return dataOffset;
    }

    public int alignment() {
        return alignment;
    }

    public long fileSize() {
        return mapping.byteSize();
    }

    /// Unmaps the file; later reads of its tensor slices throw `IllegalStateException`.
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
