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
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
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
/// duplicates), and what parsing keeps on the heap is capped ([Limits]), so the layers above can trust what they
/// get and a hostile file cannot exhaust memory.
public final class GGUFFile implements AutoCloseable {
    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    static final int DEFAULT_ALIGNMENT = 32;
    static final int MAX_DIMS = 4;
    static final String ALIGNMENT_KEY = "general.alignment";
    /// Largest `general.alignment` accepted: real files use 32, and the value must fit an `int`.
    static final int MAX_ALIGNMENT = 1 << 30;
    /// Bytes handed to the digest at a time by [#sha256].
    private static final int DIGEST_CHUNK = 1 << 20;
    /// Nested arrays are legal GGUF; real files use none, so a little depth suffices and bounds recursion.
    static final int MAX_ARRAY_NESTING = 3;

    /// Caps on what the parser keeps on the heap, so that a hostile file cannot make it allocate much more than a
    /// real model needs, however large the file. Real files are far below them: Llama 3's metadata (a 128,256-token
    /// vocabulary, 280,147 merges) takes about 30 MB by the parser's estimate, and models have hundreds to a few
    /// thousand tensors.
    ///
    /// @param maxArrayLength elements in any one metadata array
    /// @param maxTensors     entries in the tensor table
    /// @param maxHeapBytes   estimated heap bytes of all metadata values, keys and tensor infos together (a
    ///                       string counts 48 bytes plus two per byte, an array element its Java size)
    record Limits(int maxArrayLength, long maxTensors, long maxHeapBytes) {
        /// 2^24 array elements, 2^16 tensors, 256 MiB of heap.
        static final Limits DEFAULT = new Limits(1 << 24, 1 << 16, 1L << 28);

        Limits {
            if (maxArrayLength < 0 || maxArrayLength > Integer.MAX_VALUE - 8 || maxTensors < 0 || maxHeapBytes < 0) {
                throw new IllegalArgumentException("bad limits");
            }
        }
    }

    /// Estimated heap of one metadata key/value beyond its key and value: two map entries and a boxed value.
    private static final int HEAP_PER_KEY_VALUE = 96;
    /// Estimated heap of one tensor info beyond its name: the record, its shape, a map entry and list slots.
    private static final int HEAP_PER_TENSOR = 160;

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapping;
    private final int version;
    private final Metadata metadata;
    private final Map<String, TensorInfo> tensors;
    private final long dataOffset;
    private final int alignment;
    /// The parser's estimate of the heap the metadata and tensor table take ([Limits#maxHeapBytes]).
    private final long heapEstimate;

    private GGUFFile(Path path, Arena arena, MemorySegment mapping, int version, Metadata metadata,
                     Map<String, TensorInfo> tensors, long dataOffset, int alignment, long heapEstimate) {
        this.path = path;
        this.arena = arena;
        this.mapping = mapping;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.dataOffset = dataOffset;
        this.alignment = alignment;
        this.heapEstimate = heapEstimate;
    }

    /// Maps and parses `path`.
    ///
    /// @throws NoSuchFileException if the file does not exist
    /// @throws GGUFFormatException if the bytes are not a valid GGUF file
    /// @throws IOException for any other failure to read it (a directory, a pipe, no permission...)
    public static GGUFFile open(Path path) throws IOException {
        String name = path.toString();
        if (Files.isDirectory(path)) {
            throw new IOException(name + ": is a directory, not a GGUF file");
        }
        if (!Files.exists(path)) {
            throw new NoSuchFileException(name, null, "no such file");
        }
        if (!Files.isRegularFile(path)) {
            // A named pipe would block the open below forever; a device has no size to map.
            throw new IOException(name + ": not a regular file, not a GGUF file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size == 0) {
                throw new GGUFFormatException(name + ": not a GGUF file (the file is empty)");
            }
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return parse(path, arena, mapping, Limits.DEFAULT);
        } catch (AccessDeniedException e) {
            arena.close();
            throw new IOException(name + ": permission denied", e);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /// Parses `bytes` held in memory as if they were the content of the file `path` (which is not read), with
    /// the given limits: the entry point of the fuzz tests, which would otherwise spend their time in the file
    /// system. The result owns a confined copy of the bytes, so it must be used and closed on this thread.
    static GGUFFile parse(Path path, byte[] bytes, Limits limits) throws GGUFFormatException {
        Arena arena = Arena.ofConfined();
        try {
            MemorySegment copy = arena.allocate(bytes.length, 64);
            MemorySegment.copy(bytes, 0, copy, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, bytes.length);
            return parse(path, arena, copy.asReadOnly(), limits);
        } catch (GGUFFormatException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static GGUFFile parse(Path path, Arena arena, MemorySegment mapping, Limits limits)
            throws GGUFFormatException {
        String name = path.toString();
        GGUFReader in = new GGUFReader(name, mapping, limits);
        if (mapping.byteSize() == 0) {
            throw in.error("not a GGUF file (the file is empty)");
        }
        if (mapping.byteSize() < 4) {
            throw in.error("not a GGUF file (only " + mapping.byteSize() + " bytes)");
        }
        int magic = in.u32();
        if (magic != MAGIC) {
            throw in.error(String.format("not a GGUF file (magic 0x%08x, expected \"GGUF\")", Integer.reverseBytes(magic)));
        }
        int version = in.u32();
        if (version != 2 && version != 3) {
            int swapped = Integer.reverseBytes(version);
            if (swapped == 2 || swapped == 3) {
                throw in.error("big-endian GGUF files are not supported (version " + swapped
                        + " stored big-endian, expected little-endian)");
            }
            throw in.error("unsupported GGUF version " + Integer.toUnsignedString(version) + " (supported: 2, 3)");
        }
        long tensorCount = in.u64();
        long kvCount = in.u64();
        // Smallest encodings: a key/value is an 8-byte key length, a 4-byte type and a 1-byte value; a tensor info
        // is an 8-byte name length, 4-byte n_dims, 4-byte type and 8-byte offset.
        in.checkCount(kvCount, 13, "metadata key/values");
        in.checkCount(tensorCount, 24, "tensor infos");
        if (tensorCount > limits.maxTensors()) {
            throw in.error(tensorCount + " tensors, more than the limit of " + limits.maxTensors());
        }

        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, ValueType> types = new HashMap<>();
        for (long i = 0; i < kvCount; i++) {
            in.what = "metadata key " + (i + 1) + " of " + kvCount;
            in.charge(HEAP_PER_KEY_VALUE);
            String key = in.string();
            in.what = "metadata " + GGUFReader.quote(key);
            ValueType type = in.valueType();
            Object value = in.value(type, MAX_ARRAY_NESTING);
            if (values.putIfAbsent(key, value) != null) {
                throw in.error("duplicate metadata key " + GGUFReader.quote(key));
            }
            types.put(key, type);
        }
        Metadata metadata = new Metadata(name, values, types);
        int alignment = alignment(in, metadata);

        // Not presized from the file's count: a hostile count must cost nothing before its tensors are read.
        List<TensorInfo> infos = new ArrayList<>();
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            in.what = "tensor info " + (i + 1) + " of " + tensorCount;
            in.charge(HEAP_PER_TENSOR);
            String tensorName = in.string();
            String quoted = GGUFReader.quote(tensorName);
            in.what = "tensor info " + quoted;
            int nDims = in.u32();
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw in.error("tensor " + quoted + " has " + Integer.toUnsignedString(nDims)
                        + " dimensions (expected 1.." + MAX_DIMS + ")");
            }
            long[] shape = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                shape[d] = in.u64();
                if (shape[d] <= 0) {
                    throw in.error("tensor " + quoted + " dimension " + d + " is " + Long.toUnsignedString(shape[d])
                            + " (expected 1.." + Long.MAX_VALUE + ")");
                }
                try {
                    elements = Math.multiplyExact(elements, shape[d]);
                } catch (ArithmeticException e) {
                    throw in.error("tensor " + quoted + " has more than " + Long.MAX_VALUE + " elements (shape "
                            + Arrays.toString(Arrays.copyOf(shape, d + 1)) + ")");
                }
            }
            int typeId = in.u32();
            GGMLType type = GGMLType.fromId(typeId);
            if (type == null) {
                throw in.error("tensor " + quoted + " has unknown ggml type id " + Integer.toUnsignedString(typeId));
            }
            if (shape[0] % type.blockSize() != 0) {
                throw in.error("tensor " + quoted + " row of " + shape[0] + " elements is not a multiple of the "
                        + type + " block size " + type.blockSize());
            }
            if (elements / type.blockSize() > Long.MAX_VALUE / type.bytesPerBlock()) {
                throw in.error("tensor " + quoted + " of " + elements + " " + type + " elements takes more than "
                        + Long.MAX_VALUE + " bytes");
            }
            long offset = in.u64();
            if (offset < 0) {
                throw in.error("tensor " + quoted + " data offset " + Long.toUnsignedString(offset)
                        + " lies outside the file (size " + mapping.byteSize() + ")");
            }
            if (offset % alignment != 0) {
                throw in.error("tensor " + quoted + " offset " + offset + " is not a multiple of the alignment "
                        + alignment);
            }
            TensorInfo info = new TensorInfo(tensorName, type, shape, offset);
            if (byName.putIfAbsent(tensorName, info) != null) {
                throw in.error("duplicate tensor name " + quoted);
            }
            infos.add(info);
        }

        long dataOffset = alignUp(in.position(), alignment);
        long fileSize = mapping.byteSize();
        if (tensorCount > 0 && dataOffset > fileSize) {
            throw in.error("tensor data section starts at byte " + dataOffset + ", past the end of the file (size "
                    + fileSize + ")");
        }
        checkDataRanges(in, infos, dataOffset, fileSize);
        return new GGUFFile(path, arena, mapping, version, metadata, Collections.unmodifiableMap(byName), dataOffset,
                alignment, in.heapBytes());
    }

    /// `general.alignment`, which must be a `UINT32` power of two (as gguf.cpp requires), or the default 32.
    private static int alignment(GGUFReader in, Metadata metadata) throws GGUFFormatException {
        ValueType type = metadata.type(ALIGNMENT_KEY);
        if (type == null) {
            return DEFAULT_ALIGNMENT;
        }
        if (type != ValueType.UINT32) {
            String actual = type == ValueType.ARRAY
                    ? "ARRAY of " + ((Metadata.Array) metadata.find(ALIGNMENT_KEY).orElseThrow()).elementType()
                    : type.toString();
            throw in.error("key '" + ALIGNMENT_KEY + "' has type " + actual + ", expected UINT32");
        }
        long a = metadata.integer(ALIGNMENT_KEY);
        if (Long.bitCount(a) != 1) {
            throw in.error("key '" + ALIGNMENT_KEY + "' is " + a + ", expected a power of two");
        }
        if (a > MAX_ALIGNMENT) {
            throw in.error("key '" + ALIGNMENT_KEY + "' is " + a + ", expected at most " + MAX_ALIGNMENT);
        }
        return (int) a;
    }

    /// Checks that every tensor's bytes lie inside the file and that no two tensors share bytes.
    private static void checkDataRanges(GGUFReader in, List<TensorInfo> infos, long dataOffset, long fileSize)
            throws GGUFFormatException {
        List<TensorInfo> sorted = new ArrayList<>(infos);
        sorted.sort(Comparator.comparingLong(TensorInfo::offset));
        TensorInfo previous = null;
        for (TensorInfo t : sorted) {
            long size = t.byteSize();
            // dataOffset <= fileSize here (or there are no tensors), so these differences cannot overflow.
            if (t.offset() > fileSize - dataOffset || size > fileSize - dataOffset - t.offset()) {
                String range = t.offset() > Long.MAX_VALUE - dataOffset
                                || size > Long.MAX_VALUE - dataOffset - t.offset()
                        ? "at offset " + t.offset() + " of " + size + " bytes"
                        : "[" + (dataOffset + t.offset()) + ", " + (dataOffset + t.offset() + size) + ")";
                throw in.error("tensor " + GGUFReader.quote(t.name()) + " data " + range
                        + " lies outside the file (size " + fileSize + ")");
            }
            if (previous != null && t.offset() < previous.offset() + previous.byteSize()) {
                throw in.error("tensor " + GGUFReader.quote(t.name()) + " data " + range(t, dataOffset)
                        + " overlaps tensor " + GGUFReader.quote(previous.name()) + " data "
                        + range(previous, dataOffset));
            }
            previous = t;
        }
    }

    private static String range(TensorInfo t, long dataOffset) {
        return "[" + (dataOffset + t.offset()) + ", " + (dataOffset + t.offset() + t.byteSize()) + ")";
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

    /// Estimated heap bytes of the parsed metadata and tensor table, as charged to [Limits#maxHeapBytes].
    long heapEstimate() {
        return heapEstimate;
    }

    /// The SHA-256 of the whole file as 64 lowercase hex digits, for identifying a model file.
    ///
    /// Streams the mapping through the digest in 1 MiB chunks, so it reads every byte of the file once (seconds
    /// for a multi-gigabyte model) but copies nothing to the heap.
    ///
    /// @throws IllegalStateException if the file was closed
    public String sha256() {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every Java platform provides SHA-256", e);
        }
        long size = mapping.byteSize();
        for (long offset = 0; offset < size; offset += DIGEST_CHUNK) {
            digest.update(mapping.asSlice(offset, Math.min(DIGEST_CHUNK, size - offset)).asByteBuffer());
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /// Unmaps the file; later reads of its tensor slices throw `IllegalStateException`.
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
