package dev.llamaj.gguf;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/// The key/value metadata of a GGUF file, with typed, validated access.
///
/// Values are held as: integers of every width as `Long` (a `UINT64` keeps its raw bits), `FLOAT32` as `Float`,
/// `FLOAT64` as `Double`, `BOOL` as `Boolean`, `STRING` as `String`, and arrays as [Array]. Accessors accept any
/// type that represents the asked-for value without loss (every integer type for [#integer], both float widths
/// for [#float32]); anything else throws a [GGUFFormatException] naming the key, its type and the expected one.
public final class Metadata {

    /// An array value: its element type and a Java array holding the elements (`int[]` for integer types up to
    /// 32 bits, `long[]` for 64-bit ones, `float[]`, `double[]`, `boolean[]`, `String[]`, or `Array[]` for nested
    /// arrays).
    ///
    /// Two arrays are equal when their element types and elements are (compared deeply, as
    /// `java.util.Objects.deepEquals` does), so metadata read back from a file can be compared with what was
    /// written.
    public record Array(ValueType elementType, Object values) {
        public int length() {
            return java.lang.reflect.Array.getLength(values);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Array a && elementType == a.elementType && java.util.Objects.deepEquals(values, a.values);
        }

        @Override
        public int hashCode() {
            return elementType.ordinal() * 31 + java.util.Arrays.deepHashCode(new Object[] {values});
        }

        @Override
        public String toString() {
            String elements = java.util.Arrays.deepToString(new Object[] {values});
            return "ARRAY of " + elementType + " " + elements.substring(1, elements.length() - 1);
        }
    }

    private final String source;
    private final Map<String, Object> values;
    private final Map<String, ValueType> types;

    Metadata(String source, Map<String, Object> values, Map<String, ValueType> types) {
        this.source = source;
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
        this.types = Map.copyOf(types);
    }

    /// Builds metadata in memory, for tests and tools; types are inferred from the Java values.
    public static Metadata of(String source, Map<String, Object> values) {
        Map<String, ValueType> types = new LinkedHashMap<>();
        Map<String, Object> normalized = new LinkedHashMap<>();
        values.forEach((k, v) -> {
            ValueType t = GGUFWriter.typeOf(v);
            types.put(k, t);
            normalized.put(k, switch (v) {
                case Byte b -> (long) b;
                case Short s -> (long) s;
                case Integer i -> (long) i;
                case Metadata.Array a -> a;
                case String[] a -> new Array(ValueType.STRING, a);
                case int[] a -> new Array(ValueType.INT32, a);
                case long[] a -> new Array(ValueType.INT64, a);
                case float[] a -> new Array(ValueType.FLOAT32, a);
                case double[] a -> new Array(ValueType.FLOAT64, a);
                case boolean[] a -> new Array(ValueType.BOOL, a);
                default -> v;
            });
        });
        return new Metadata(source, normalized, types);
    }

    /// The file these values come from, as used in error messages.
    public String source() {
        return source;
    }

    /// Keys in file order.
    public Set<String> keys() {
        return values.keySet();
    }

    public boolean contains(String key) {
        return values.containsKey(key);
    }

    /// The type of `key`'s value, or `null` if absent.
    public ValueType type(String key) {
        return types.get(key);
    }

    /// The raw value (see the class comment for the representation).
    public Optional<Object> find(String key) {
        return Optional.ofNullable(values.get(key));
    }

    public String string(String key) throws GGUFFormatException {
        return require(key, String.class, "STRING");
    }

    public String string(String key, String defaultValue) throws GGUFFormatException {
        return contains(key) ? string(key) : defaultValue;
    }

    /// Any integer type; `UINT64` values above `Long.MAX_VALUE` are rejected.
    public long integer(String key) throws GGUFFormatException {
        Long v = require(key, Long.class, "an integer");
        if (types.get(key) == ValueType.UINT64 && v < 0) {
            throw new GGUFFormatException(source + ": key '" + key + "' value " + Long.toUnsignedString(v)
                    + " is out of range");
        }
        return v;
    }

    public long integer(String key, long defaultValue) throws GGUFFormatException {
        return contains(key) ? integer(key) : defaultValue;
    }

    /// An integer that must lie in `[min, max]`, for sizes and counts read from the file.
    public int integerIn(String key, int min, int max) throws GGUFFormatException {
        long v = integer(key);
        if (v < min || v > max) {
            throw new GGUFFormatException(source + ": key '" + key + "' is " + v + ", expected " + min + ".." + max);
        }
        return (int) v;
    }

    public float float32(String key) throws GGUFFormatException {
        Object v = values.get(key);
        if (v instanceof Float f) {
            return f;
        }
        if (v instanceof Double d) {
            return d.floatValue();
        }
        throw wrongType(key, "FLOAT32");
    }

    public float float32(String key, float defaultValue) throws GGUFFormatException {
        return contains(key) ? float32(key) : defaultValue;
    }

    public boolean bool(String key, boolean defaultValue) throws GGUFFormatException {
        return contains(key) ? require(key, Boolean.class, "BOOL") : defaultValue;
    }

    public String[] stringArray(String key) throws GGUFFormatException {
        return array(key, String[].class, "ARRAY of STRING");
    }

    public float[] floatArray(String key) throws GGUFFormatException {
        return array(key, float[].class, "ARRAY of FLOAT32");
    }

    /// An array of any integer type up to 32 bits (unsigned 32-bit values keep their raw bits).
    public int[] intArray(String key) throws GGUFFormatException {
        return array(key, int[].class, "ARRAY of INT32");
    }

    private <T> T array(String key, Class<T> javaType, String expected) throws GGUFFormatException {
        Array a = require(key, Array.class, expected);
        if (!javaType.isInstance(a.values())) {
            throw new GGUFFormatException(source + ": key '" + key + "' has type ARRAY of " + a.elementType()
                    + ", expected " + expected);
        }
        return javaType.cast(a.values());
    }

    private <T> T require(String key, Class<T> javaType, String expected) throws GGUFFormatException {
        Object v = values.get(key);
        if (v == null) {
            throw new GGUFFormatException(source + ": required key '" + key + "' is missing");
        }
        if (!javaType.isInstance(v)) {
            throw wrongType(key, expected);
        }
        return javaType.cast(v);
    }

    private GGUFFormatException wrongType(String key, String expected) {
        if (!contains(key)) {
            return new GGUFFormatException(source + ": required key '" + key + "' is missing");
        }
        ValueType t = types.get(key);
        String actual = t == ValueType.ARRAY ? "ARRAY of " + ((Array) values.get(key)).elementType() : t.toString();
        return new GGUFFormatException(source + ": key '" + key + "' has type " + actual + ", expected " + expected);
    }
}
