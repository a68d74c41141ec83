package dev.llamaj.gguf;

/// The metadata value types of GGUF, in file order (`gguf_metadata_value_type`).
///
/// `minBytes` is the smallest encoding of one value; the reader uses it to reject counts larger than the bytes
/// left in the file before allocating anything.
public enum ValueType {
    UINT8(1), INT8(1), UINT16(2), INT16(2), UINT32(4), INT32(4), FLOAT32(4), BOOL(1), STRING(8), ARRAY(12),
    UINT64(8), INT64(8), FLOAT64(8);

    private static final ValueType[] VALUES = values();

    private final int minBytes;

    ValueType(int minBytes) {
        this.minBytes = minBytes;
    }

    int minBytes() {
        return minBytes;
    }

    /// Whether values of this type are integers (signed or not).
    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    /// The type with this id, or `null`.
    static ValueType fromId(int id) {
        return id >= 0 && id < VALUES.length ? VALUES[id] : null;
    }
}
