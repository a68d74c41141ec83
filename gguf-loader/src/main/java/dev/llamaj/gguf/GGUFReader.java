package dev.llamaj.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/// A bounds-checked little-endian cursor over the mapped bytes of a GGUF file.
///
/// Every read checks the bytes left first, and every count read from the file is checked against the bytes left
/// (times the smallest encoding of one element) before anything is allocated, so a hostile file can make the
/// parser fail but never allocate more than the file could justify. `what` describes the object being read, so
/// the message of a truncation says where it happened.
///
/// Checking counts against the file size bounds the bytes read, not the heap: one byte of a `UINT8` array
/// becomes four in an `int[]`, eight bytes of an empty string some fifty. So the reader also charges an estimate
/// of the heap each value takes to a budget ([GGUFFile.Limits]) before allocating it, and caps the length of any
/// one array; a file that exceeds either fails with a message naming the limit.
final class GGUFReader {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /// Length, in chars, beyond which an error message cuts a quoted name.
    private static final int MAX_QUOTED = 80;
    /// Estimated heap of a `String` beyond its characters: object header and fields, the array header, the
    /// reference to it, rounded up.
    static final int STRING_OVERHEAD = 48;
    /// Estimated heap of a Java array beyond its elements, or of a small object such as a boxed value.
    static final int OBJECT_OVERHEAD = 16;

    private final String source;
    private final MemorySegment bytes;
    private final long size;
    private final GGUFFile.Limits limits;
    /// Estimated heap bytes taken so far by the values read.
    private long heapBytes;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private long position;
    /// Describes what is being read, for error messages ("metadata key 12 of 24").
    String what = "header";

    GGUFReader(String source, MemorySegment bytes, GGUFFile.Limits limits) {
        this.source = source;
        this.bytes = bytes;
        this.size = bytes.byteSize();
        this.limits = limits;
    }

    /// Charges `heap` estimated bytes to the budget of [GGUFFile.Limits#maxHeapBytes], before they are allocated.
    void charge(long heap) throws GGUFFormatException {
        if (heap > limits.maxHeapBytes() - heapBytes) {
            throw error("the metadata and tensor table take more than the limit of " + limits.maxHeapBytes()
                    + " bytes of memory (exceeded at " + what + ")");
        }
        heapBytes += heap;
    }

    /// Estimated heap bytes taken by the values read so far.
    long heapBytes() {
        return heapBytes;
    }

    long position() {
        return position;
    }

    long remaining() {
        return size - position;
    }

    GGUFFormatException error(String problem) {
        return new GGUFFormatException(source + ": " + problem);
    }

    /// The file ends before what it declares: the usual sign of an incomplete download, or a corrupt count.
    private GGUFFormatException truncated(String detail) {
        return error("truncated at byte " + size + " while reading " + what + detail);
    }

    private void need(long n) throws GGUFFormatException {
        if (n > remaining()) {
            throw truncated("");
        }
    }

    /// Checks that `count` elements of at least `minBytes` each can still fit in the file; `of` names them in
    /// the plural ("tensors").
    void checkCount(long count, long minBytes, String of) throws GGUFFormatException {
        if (count < 0 || (count > 0 && count > remaining() / minBytes)) {
            throw truncated(" (" + Long.toUnsignedString(count) + " " + of + " of at least " + bytes(minBytes)
                    + " each, " + remaining() + " bytes left)");
        }
    }

    private static String bytes(long n) {
        return n == 1 ? "1 byte" : n + " bytes";
    }

    /// `s` in single quotes for a one-line message: control and line-separator characters escaped as
    /// backslash-u and four hex digits, and cut to about 80 characters, since names come from the file and may be
    /// hostile (a newline would split the message, a megabyte name would bury it).
    static String quote(String s) {
        StringBuilder b = new StringBuilder(MAX_QUOTED + 16).append('\'');
        for (int i = 0; i < s.length(); i++) {
            if (b.length() > MAX_QUOTED) {
                if (Character.isHighSurrogate(b.charAt(b.length() - 1))) {
                    b.setLength(b.length() - 1); // not half a character
                }
                b.append("...");
                break;
            }
            char c = s.charAt(i);
            if (Character.isISOControl(c) || c == '\u2028' || c == '\u2029') {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('\'').toString();
    }

    int u8() throws GGUFFormatException {
        need(1);
        return bytes.get(ValueLayout.JAVA_BYTE, position++) & 0xff;
    }

    int u16() throws GGUFFormatException {
        need(2);
        int v = bytes.get(U16, position) & 0xffff;
        position += 2;
        return v;
    }

    int u32() throws GGUFFormatException {
        need(4);
        int v = bytes.get(U32, position);
        position += 4;
        return v;
    }

    long u64() throws GGUFFormatException {
        need(8);
        long v = bytes.get(U64, position);
        position += 8;
        return v;
    }

    float f32() throws GGUFFormatException {
        need(4);
        float v = bytes.get(F32, position);
        position += 4;
        return v;
    }

    double f64() throws GGUFFormatException {
        need(8);
        double v = bytes.get(F64, position);
        position += 8;
        return v;
    }

    String string() throws GGUFFormatException {
        long length = u64();
        if (length < 0 || length > remaining()) {
            throw truncated(" (a string of " + Long.toUnsignedString(length) + " bytes, " + remaining()
                    + " bytes left)");
        }
        if (length > Integer.MAX_VALUE - 8) {
            throw error("string of " + length + " bytes in " + what + " is too long");
        }
        // Decoded UTF-8 takes at most two bytes of heap per byte read (one for ASCII).
        charge(STRING_OVERHEAD + 2 * length);
        byte[] b = new byte[(int) length];
        MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, position, b, 0, b.length);
        position += length;
        boolean ascii = true;
        for (byte x : b) {
            if (x < 0) {
                ascii = false;
                break;
            }
        }
        if (ascii) {
            return new String(b, StandardCharsets.ISO_8859_1);
        }
        try {
            return utf8.decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw error("invalid UTF-8 in " + what);
        }
    }

    /// Reads one metadata value of type `type`; arrays may nest up to `depth` levels more.
    Object value(ValueType type, int depth) throws GGUFFormatException {
        return switch (type) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> integer(type);
            case FLOAT32 -> f32();
            case FLOAT64 -> f64();
            case BOOL -> bool();
            case STRING -> string();
            case ARRAY -> array(depth);
        };
    }

    /// An integer of type `type`, sign- or zero-extended to a `long` (a `UINT64` keeps its raw bits).
    private long integer(ValueType type) throws GGUFFormatException {
        return switch (type) {
            case UINT8 -> u8();
            case INT8 -> (byte) u8();
            case UINT16 -> u16();
            case INT16 -> (short) u16();
            case UINT32 -> Integer.toUnsignedLong(u32());
            case INT32 -> u32();
            case UINT64, INT64 -> u64();
            default -> throw new AssertionError(type + " is not an integer type");
        };
    }

    private boolean bool() throws GGUFFormatException {
        int b = u8();
        if (b > 1) {
            throw error("boolean value " + b + " in " + what + " is neither 0 nor 1");
        }
        return b == 1;
    }

    private Metadata.Array array(int depth) throws GGUFFormatException {
        ValueType elementType = valueType();
        long count = u64();
        if (count < 0 || count > remaining() / elementType.minBytes()) {
            throw truncated(" (an array of " + Long.toUnsignedString(count) + " " + elementType
                    + " values of at least " + bytes(elementType.minBytes()) + " each, " + remaining() + " bytes left)");
        }
        if (count > limits.maxArrayLength()) {
            throw error("array of " + count + " elements in " + what + " is longer than the limit of "
                    + limits.maxArrayLength() + " elements");
        }
        int n = (int) count;
        charge(OBJECT_OVERHEAD + n * heapBytesPerElement(elementType));
        Object values = switch (elementType) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32 -> {
                int[] a = new int[n];
                for (int i = 0; i < n; i++) {
                    a[i] = (int) integer(elementType);
                }
                yield a;
            }
            case UINT64, INT64 -> {
                long[] a = new long[n];
                for (int i = 0; i < n; i++) {
                    a[i] = u64();
                }
                yield a;
            }
            case FLOAT32 -> {
                float[] a = new float[n];
                for (int i = 0; i < n; i++) {
                    a[i] = f32();
                }
                yield a;
            }
            case FLOAT64 -> {
                double[] a = new double[n];
                for (int i = 0; i < n; i++) {
                    a[i] = f64();
                }
                yield a;
            }
            case BOOL -> {
                boolean[] a = new boolean[n];
                for (int i = 0; i < n; i++) {
                    a[i] = bool();
                }
                yield a;
            }
            case STRING -> {
                String[] a = new String[n];
                for (int i = 0; i < n; i++) {
                    a[i] = string();
                }
                yield a;
            }
            case ARRAY -> {
                if (depth <= 0) {
                    throw error("arrays nested more than " + GGUFFile.MAX_ARRAY_NESTING + " levels deep in " + what);
                }
                Metadata.Array[] a = new Metadata.Array[n];
                for (int i = 0; i < n; i++) {
                    a[i] = array(depth - 1);
                }
                yield a;
            }
        };
        return new Metadata.Array(elementType, values);
    }

    /// Heap bytes of one element of an array of `type` as [Metadata.Array] holds it (a reference for strings and
    /// nested arrays, whose contents are charged as they are read).
    private static long heapBytesPerElement(ValueType type) {
        return switch (type) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32 -> 4;
            case UINT64, INT64, FLOAT64, STRING -> 8;
            case BOOL -> 1;
            case ARRAY -> 8 + OBJECT_OVERHEAD + 16; // the reference, the Metadata.Array and its Java array header
        };
    }

    ValueType valueType() throws GGUFFormatException {
        int id = u32();
        ValueType t = ValueType.fromId(id);
        if (t == null) {
            throw error("unknown metadata value type " + Integer.toUnsignedString(id) + " in " + what);
        }
        return t;
    }

    void skipTo(long newPosition) throws GGUFFormatException {
        if (newPosition > size) {
            throw error("truncated at byte " + size + " while reading " + what);
        }
        position = newPosition;
    }
}
