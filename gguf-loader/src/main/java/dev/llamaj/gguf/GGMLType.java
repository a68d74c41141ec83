package dev.llamaj.gguf;

/// The tensor element types of ggml, with their on-disk block geometry.
///
/// Quantized types store weights in fixed-size blocks: `blockSize` weights packed into `bytesPerBlock` bytes
/// (for example `Q4_0`: 32 weights in 18 bytes, an fp16 scale then 16 bytes of nibbles). Knowing the geometry of
/// every type, including the ones llamaj cannot compute with, lets the loader size and bounds-check any tensor
/// and name an unsupported type in an error instead of mis-reading it. Ids and sizes mirror ggml's
/// `type_traits` table (ggml.c); ids that ggml retired are absent and rejected as unknown.
public enum GGMLType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q8_1(9, 32, 36),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    IQ2_XXS(16, 256, 66),
    IQ2_XS(17, 256, 74),
    IQ3_XXS(18, 256, 98),
    IQ1_S(19, 256, 50),
    IQ4_NL(20, 32, 18),
    IQ3_S(21, 256, 110),
    IQ2_S(22, 256, 82),
    IQ4_XS(23, 256, 136),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 56),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 54),
    TQ2_0(35, 256, 66),
    MXFP4(39, 32, 17);

    private static final GGMLType[] BY_ID = new GGMLType[64];

    static {
        for (GGMLType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int blockSize;
    private final int bytesPerBlock;

    GGMLType(int id, int blockSize, int bytesPerBlock) {
        this.id = id;
        this.blockSize = blockSize;
        this.bytesPerBlock = bytesPerBlock;
    }

    /// The numeric id stored in GGUF tensor infos (ggml: `enum ggml_type`).
    public int id() {
        return id;
    }

    /// Weights per block (1 for plain element types).
    public int blockSize() {
        return blockSize;
    }

    /// Bytes one block occupies on disk.
    public int bytesPerBlock() {
        return bytesPerBlock;
    }

    /// Whether weights are stored in multi-weight quantization blocks.
    public boolean isQuantized() {
        return blockSize > 1;
    }

    /// Bytes taken by `elementCount` weights; `elementCount` must be a multiple of the block size.
    ///
    /// @throws IllegalArgumentException if it is not, or if the size overflows a `long`
    public long byteSize(long elementCount) {
        if (elementCount < 0 || elementCount % blockSize != 0) {
            throw new IllegalArgumentException(
                    elementCount + " elements of " + this + " are not a whole number of " + blockSize + "-weight blocks");
        }
        long blocks = elementCount / blockSize;
        if (blocks > Long.MAX_VALUE / bytesPerBlock) {
            throw new IllegalArgumentException(elementCount + " elements of " + this + " take more than "
                    + Long.MAX_VALUE + " bytes");
        }
        return blocks * bytesPerBlock;
    }

    /// The type with this ggml id, or `null` if the id is unknown or retired.
    public static GGMLType fromId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }
}
