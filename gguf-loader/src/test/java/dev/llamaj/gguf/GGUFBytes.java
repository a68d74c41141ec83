package dev.llamaj.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/// A little-endian byte builder for hand-made GGUF files, well-formed or not.
///
/// Unlike [GGUFWriter] it checks nothing, so a test can write any count, length, type id or offset it wants:
///
/// ```
/// byte[] file = GGUFBytes.header(1, 0)                       // "GGUF", version 3, 1 tensor, 0 key/values
///         .tensorInfo("t", new long[] {32}, GGMLType.F32, 0)
///         .padTo(32).zeros(128).bytes();
/// ```
final class GGUFBytes {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    static GGUFBytes of() {
        return new GGUFBytes();
    }

    /// Magic, version 3, tensor count, key/value count.
    static GGUFBytes header(long tensorCount, long kvCount) {
        return of().u32(GGUFFile.MAGIC).u32(3).u64(tensorCount).u64(kvCount);
    }

    GGUFBytes raw(byte... b) {
        out.writeBytes(b);
        return this;
    }

    GGUFBytes u8(int v) {
        out.write(v);
        return this;
    }

    GGUFBytes u16(int v) {
        return u8(v).u8(v >>> 8);
    }

    GGUFBytes u32(long v) {
        return u16((int) v).u16((int) (v >>> 16));
    }

    GGUFBytes u64(long v) {
        return u32(v).u32(v >>> 32);
    }

    GGUFBytes f32(float v) {
        return u32(Float.floatToRawIntBits(v));
    }

    GGUFBytes f64(double v) {
        return u64(Double.doubleToRawLongBits(v));
    }

    /// A GGUF string: u64 byte length, then the bytes.
    GGUFBytes string(byte[] utf8) {
        return u64(utf8.length).raw(utf8);
    }

    GGUFBytes string(String s) {
        return string(s.getBytes(StandardCharsets.UTF_8));
    }

    GGUFBytes type(ValueType t) {
        return u32(t.ordinal());
    }

    /// A key/value whose value bytes the caller appends next.
    GGUFBytes key(String key, ValueType type) {
        return string(key).type(type);
    }

    GGUFBytes kvUInt32(String key, long value) {
        return key(key, ValueType.UINT32).u32(value);
    }

    GGUFBytes kvString(String key, String value) {
        return key(key, ValueType.STRING).string(value);
    }

    GGUFBytes tensorInfo(String name, long[] shape, GGMLType type, long offset) {
        return tensorInfo(name, shape, type.id(), offset);
    }

    GGUFBytes tensorInfo(String name, long[] shape, int typeId, long offset) {
        string(name).u32(shape.length);
        for (long d : shape) {
            u64(d);
        }
        return u32(typeId).u64(offset);
    }

    GGUFBytes zeros(int n) {
        out.writeBytes(new byte[n]);
        return this;
    }

    /// Zero bytes up to the next multiple of `alignment`.
    GGUFBytes padTo(int alignment) {
        return zeros((int) (GGUFFile.alignUp(out.size(), alignment) - out.size()));
    }

    int size() {
        return out.size();
    }

    byte[] bytes() {
        return out.toByteArray();
    }

    Path writeTo(Path path) {
        try {
            return Files.write(path, out.toByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
