package dev.llamaj.engine;

import java.util.Locale;

/// How a session's key/value cache stores keys or values ([LoadOptions#withCacheTypeK],
/// [LoadOptions#withCacheTypeV]; `--cache-type-k`, `--cache-type-v`).
///
/// The quantized types are ggml's blocks of 32 elements, stored as llama.cpp stores them (one row of `kvDim`
/// elements per position): `Q8_0` is a half-precision scale and 32 signed bytes (34 bytes, 8.5 bits per element),
/// `Q4_0` a half-precision scale and 16 bytes of nibbles, value `(q - 8) · d` (18 bytes, 4.5 bits per element).
/// They need a head size that is a multiple of 32 (or, for tiny models, a divisor of 32 with key/value rows a
/// multiple of 32), so that no head's slice of a row straddles two blocks.
public enum KVCacheType {
    /// IEEE half precision, llama.cpp's default.
    F16(1, 2),
    /// ggml's `Q8_0`: per 32 elements an F16 scale `d = max|x| / 127` and `round(x / d)` as signed bytes.
    Q8_0(32, 34),
    /// ggml's `Q4_0`: per 32 elements an F16 scale `d = x_max / -8` (the signed value of largest magnitude) and
    /// nibbles `q = min(15, trunc(x / d + 8.5))`; element `j < 16` in the low nibble of byte `j`, element
    /// `j + 16` in its high nibble.
    Q4_0(32, 18);

    /// Elements per block.
    public final int blockSize;
    /// Bytes per block.
    public final int blockBytes;

    KVCacheType(int blockSize, int blockBytes) {
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /// Bytes of `elements` elements (a multiple of [#blockSize]).
    public long bytes(long elements) {
        return elements / blockSize * blockBytes;
    }

    /// The name llama.cpp's `-ctk`/`-ctv` use: `f16`, `q8_0`, `q4_0`.
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /// The type named `name` (`f16`, `q8_0`, `q4_0`; case does not matter).
    ///
    /// @throws IllegalArgumentException naming the accepted values
    public static KVCacheType parse(String name) {
        for (KVCacheType t : values()) {
            if (t.name().equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown cache type '" + name + "' (expected f16, q8_0 or q4_0)");
    }
}
