package dev.llamaj.cli;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/// A small JSON reader and writer (RFC 8259), for JSONL input and output and reports.
///
/// [#parse] turns text into plain Java values: objects become `LinkedHashMap<String, Object>` (keys in document
/// order), arrays `ArrayList<Object>`, strings `String`, `true`/`false` `Boolean`, `null` `null`, and numbers
/// `Long` when they are integers that fit, `BigDecimal` otherwise (exact: `0.1` stays `0.1`). Malformed text
/// throws [JsonException] whose message says what was expected and where (line, column and character offset).
/// Duplicate keys are an error; nesting is limited to [#MAX_DEPTH] levels so hostile input cannot overflow the
/// stack, and a number to [#MAX_NUMBER_CHARS] characters (turning a 2 MB digit string into a `BigInteger` takes
/// minutes: a request body must not be able to do that to the server).
///
/// [#write] produces compact JSON from the same kinds of values (any `Map` with string keys, any `Collection` or
/// Java array, any `Number`, `Boolean`, `CharSequence`, `Character`, `Enum` by name, and `null`), escaping control
/// characters, quotes, backslashes and the line separators U+2028/U+2029. Non-finite doubles have no JSON form
/// and are written as `null`.
public final class Json {
    public static final int MAX_DEPTH = 512;
    /// The longest number literal accepted.
    public static final int MAX_NUMBER_CHARS = 1000;

    private Json() {}

    /// Malformed JSON; the message names the position.
    public static class JsonException extends IllegalArgumentException {
        private final int offset;

        JsonException(String message, int offset) {
            super(message);
            this.offset = offset;
        }

        /// The character offset of the problem in the parsed text.
        public int offset() {
            return offset;
        }
    }

    // ---------------------------------------------------------------- reading

    /// Bounds on what one parse may build, so that a small text cannot become a large heap: `[{},{},...]` is three
    /// characters per empty object of about 64 bytes, twenty times the text.
    ///
    /// @param maxDepth       nesting levels at most
    /// @param maxValues      values (objects, arrays, strings, numbers, literals) at most
    /// @param maxStringChars characters of one string at most
    /// @param maxHeapBytes   the parser's estimate of the heap the values take (64-bit JVM, compressed pointers:
    ///                       an object 64 bytes and 48 per member, an array 40 and 8 per element, a string 40 and
    ///                       one or two per character, a number 0 (a small integer's shared box) to 64), at most
    public record Limits(int maxDepth, int maxValues, int maxStringChars, long maxHeapBytes) {
        /// Only the nesting limit of [#parse(String)].
        public static final Limits NONE = new Limits(MAX_DEPTH, Integer.MAX_VALUE, Integer.MAX_VALUE,
                Long.MAX_VALUE);

        public Limits {
            if (maxDepth < 1 || maxDepth > MAX_DEPTH || maxValues < 1 || maxStringChars < 0 || maxHeapBytes < 0) {
                throw new IllegalArgumentException("bad JSON limits " + maxDepth + ", " + maxValues + ", "
                        + maxStringChars + ", " + maxHeapBytes);
            }
        }
    }

    /// The text is well-formed so far but has more values, bytes or characters than the [Limits] allow; the
    /// message says which. (Nesting beyond the limit is a plain [JsonException].)
    public static final class LimitException extends JsonException {
        LimitException(String message, int offset) {
            super(message, offset);
        }
    }

    /// Parses one JSON value (surrounding whitespace allowed, nothing else after it).
    public static Object parse(String text) {
        return parse(text, Limits.NONE);
    }

    /// Parses one JSON value within `limits`: beyond one, [LimitException] (before the value is complete, so the
    /// heap the parse took stays near the limit).
    public static Object parse(String text, Limits limits) {
        Reader r = new Reader(text, limits);
        r.skipWhitespace();
        Object value = r.value(0);
        r.skipWhitespace();
        if (r.pos < text.length()) {
            throw r.error("unexpected " + r.describe(r.pos) + " after the JSON value");
        }
        return value;
    }

    /// Parses a JSON object; anything else is an error.
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text) {
        Object v = parse(text);
        if (!(v instanceof Map)) {
            throw new JsonException("expected a JSON object, got " + typeName(v), 0);
        }
        return (Map<String, Object>) v;
    }

    /// `null`, `string`, `number`, `boolean`, `array` or `object`, for error messages.
    public static String typeName(Object v) {
        return switch (v) {
            case null -> "null";
            case String _ -> "a string";
            case Number _ -> "a number";
            case Boolean _ -> "a boolean";
            case List<?> _ -> "an array";
            case Map<?, ?> _ -> "an object";
            default -> v.getClass().getSimpleName();
        };
    }

    private static final class Reader {
        final String s;
        final Limits limits;
        int pos;
        int values;
        long heapBytes;

        Reader(String s, Limits limits) {
            this.s = s;
            this.limits = limits;
        }

        /// Counts one more value and `bytes` more of estimated heap, at `at`.
        void charge(long bytes, int at) {
            values++;
            heapBytes += bytes;
            if (values > limits.maxValues()) {
                throw new LimitException("more than " + limits.maxValues() + " JSON values", at);
            }
            if (heapBytes > limits.maxHeapBytes()) {
                throw new LimitException("JSON values taking more than " + limits.maxHeapBytes()
                        + " bytes of memory", at);
            }
        }

        /// Estimated heap of a member of an object or element of an array (the entry or reference holding it).
        void chargeMember(long bytes) {
            heapBytes += bytes;
            if (heapBytes > limits.maxHeapBytes()) {
                throw new LimitException("JSON values taking more than " + limits.maxHeapBytes()
                        + " bytes of memory", pos);
            }
        }

        JsonException error(String what) {
            return error(what, pos);
        }

        JsonException error(String what, int at) {
            int line = 1;
            int col = 1;
            for (int i = 0; i < at && i < s.length(); i++) {
                if (s.charAt(i) == '\n') {
                    line++;
                    col = 1;
                } else {
                    col++;
                }
            }
            return new JsonException(what + " at line " + line + ", column " + col + " (offset " + at + ")", at);
        }

        String describe(int at) {
            if (at >= s.length()) {
                return "end of input";
            }
            char c = s.charAt(at);
            if (c < 0x20 || c == 0x7f) {
                return String.format("character U+%04X", (int) c);
            }
            return "'" + c + "'";
        }

        void skipWhitespace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    pos++;
                } else {
                    break;
                }
            }
        }

        Object value(int depth) {
            if (depth >= limits.maxDepth()) {
                // malformed rather than too large (as before limits could be chosen): a JsonException
                throw error("JSON nested more than " + limits.maxDepth() + " levels deep");
            }
            if (pos >= s.length()) {
                throw error("expected a JSON value but found end of input");
            }
            char c = s.charAt(pos);
            return switch (c) {
                case '{' -> object(depth);
                case '[' -> array(depth);
                case '"' -> string();
                case 't' -> literal("true", Boolean.TRUE);
                case 'f' -> literal("false", Boolean.FALSE);
                case 'n' -> literal("null", null);
                default -> {
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        int start = pos;
                        Object number = number();
                        // Long.valueOf shares the boxes of -128 to 127
                        charge(number instanceof Long l ? (l >= -128 && l <= 127 ? 0 : 16) : 64 + (pos - start),
                                start);
                        yield number;
                    }
                    throw error("expected a JSON value but found " + describe(pos));
                }
            };
        }

        Object literal(String word, Object value) {
            if (!s.startsWith(word, pos)) {
                throw error("expected a JSON value but found " + describe(pos));
            }
            charge(0, pos);
            pos += word.length();
            return value;
        }

        Map<String, Object> object(int depth) {
            charge(64, pos);
            pos++; // {
            Map<String, Object> map = new LinkedHashMap<>();
            skipWhitespace();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipWhitespace();
                if (pos >= s.length() || s.charAt(pos) != '"') {
                    throw error("expected a string key but found " + describe(pos));
                }
                int keyStart = pos;
                String key = string();
                chargeMember(48);
                skipWhitespace();
                expect(':', "':' after an object key");
                skipWhitespace();
                Object v = value(depth + 1);
                if (map.containsKey(key)) {
                    throw error("duplicate key \"" + key + "\"", keyStart);
                }
                map.put(key, v);
                skipWhitespace();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                    continue;
                }
                expect('}', "',' or '}' in an object");
                return map;
            }
        }

        List<Object> array(int depth) {
            charge(40, pos);
            pos++; // [
            List<Object> list = new ArrayList<>();
            skipWhitespace();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                chargeMember(8);
                list.add(value(depth + 1));
                skipWhitespace();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                    continue;
                }
                expect(']', "',' or ']' in an array");
                return list;
            }
        }

        void expect(char c, String what) {
            if (pos >= s.length() || s.charAt(pos) != c) {
                throw error("expected " + what + " but found " + describe(pos));
            }
            pos++;
        }

        String string() {
            int start = pos;
            pos++; // "
            StringBuilder sb = null;
            boolean wide = false;
            int runStart = pos;
            while (true) {
                if (pos >= s.length()) {
                    throw error("unterminated string starting", start);
                }
                char c = s.charAt(pos);
                if (c == '"') {
                    int length = (sb == null ? 0 : sb.length()) + pos - runStart;
                    if (length > limits.maxStringChars()) {
                        throw new LimitException("string longer than " + limits.maxStringChars() + " characters",
                                start);
                    }
                    // as many bytes per character as Java's compact strings take: one for Latin-1, else two
                    charge(40 + (long) length * (wide ? 2 : 1), start);
                    String result = sb == null ? s.substring(runStart, pos)
                            : sb.append(s, runStart, pos).toString();
                    pos++;
                    return result;
                }
                if (c > 0xFF) {
                    wide = true;
                }
                if (c < 0x20) {
                    throw error("unescaped control character U+" + String.format("%04X", (int) c) + " in a string");
                }
                if (c == '\\') {
                    if (sb == null) {
                        sb = new StringBuilder();
                    }
                    sb.append(s, runStart, pos);
                    pos++;
                    if (pos >= s.length()) {
                        throw error("unterminated escape in a string");
                    }
                    char e = s.charAt(pos);
                    switch (e) {
                        case '"' -> sb.append('"');
                        case '\\' -> sb.append('\\');
                        case '/' -> sb.append('/');
                        case 'b' -> sb.append('\b');
                        case 'f' -> sb.append('\f');
                        case 'n' -> sb.append('\n');
                        case 'r' -> sb.append('\r');
                        case 't' -> sb.append('\t');
                        case 'u' -> {
                            if (pos + 5 > s.length()) {
                                throw error("incomplete \\u escape in a string", pos - 1);
                            }
                            int code = 0;
                            for (int i = 1; i <= 4; i++) {
                                int d = Character.digit(s.charAt(pos + i), 16);
                                if (d < 0) {
                                    throw error("bad \\u escape in a string (expected 4 hex digits)", pos - 1);
                                }
                                code = code * 16 + d;
                            }
                            sb.append((char) code);
                            wide |= code > 0xFF;
                            pos += 4;
                        }
                        default -> throw error("bad escape '\\" + e + "' in a string", pos - 1);
                    }
                    pos++;
                    runStart = pos;
                    continue;
                }
                pos++;
            }
        }

        Object number() {
            int start = pos;
            if (s.charAt(pos) == '-') {
                pos++;
            }
            if (pos >= s.length() || !isDigit(s.charAt(pos))) {
                throw error("expected a digit in a number but found " + describe(pos));
            }
            if (s.charAt(pos) == '0') {
                pos++;
                if (pos < s.length() && isDigit(s.charAt(pos))) {
                    throw error("leading zero in a number", start);
                }
            } else {
                while (pos < s.length() && isDigit(s.charAt(pos))) {
                    pos++;
                }
            }
            boolean integer = true;
            if (pos < s.length() && s.charAt(pos) == '.') {
                integer = false;
                pos++;
                if (pos >= s.length() || !isDigit(s.charAt(pos))) {
                    throw error("expected a digit after the decimal point but found " + describe(pos));
                }
                while (pos < s.length() && isDigit(s.charAt(pos))) {
                    pos++;
                }
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                integer = false;
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                    pos++;
                }
                if (pos >= s.length() || !isDigit(s.charAt(pos))) {
                    throw error("expected a digit in the exponent but found " + describe(pos));
                }
                while (pos < s.length() && isDigit(s.charAt(pos))) {
                    pos++;
                }
            }
            if (pos - start > MAX_NUMBER_CHARS) {
                throw error("number longer than " + MAX_NUMBER_CHARS + " characters", start);
            }
            String text = s.substring(start, pos);
            if (integer) {
                BigInteger big = new BigInteger(text);
                return big.bitLength() < 64 ? (Object) big.longValue() : new BigDecimal(big);
            }
            try {
                return new BigDecimal(text);
            } catch (NumberFormatException | ArithmeticException e) {
                throw error("number out of range", start);
            }
        }

        private static boolean isDigit(char c) {
            return c >= '0' && c <= '9';
        }
    }

    // ---------------------------------------------------------------- writing

    /// Compact JSON for `value`.
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(value, sb, null, 0);
        return sb.toString();
    }

    /// JSON indented by two spaces per level, for reports people read.
    public static String writePretty(Object value) {
        StringBuilder sb = new StringBuilder();
        write(value, sb, "  ", 0);
        return sb.toString();
    }

    private static void newline(StringBuilder sb, String indent, int level) {
        if (indent != null) {
            sb.append('\n');
            sb.append(indent.repeat(level));
        }
    }

    private static void write(Object value, StringBuilder sb, String indent, int level) {
        if (level > MAX_DEPTH) {
            throw new IllegalArgumentException("value nested more than " + MAX_DEPTH + " levels deep (a cycle?)");
        }
        switch (value) {
            case null -> sb.append("null");
            case CharSequence cs -> quote(cs, sb);
            case Character c -> quote(String.valueOf(c), sb);
            case Enum<?> e -> quote(e.name(), sb);
            case Boolean b -> sb.append(b.booleanValue());
            case Double d -> number(d, sb);
            case Float f -> number(f.doubleValue(), sb);
            case BigDecimal bd -> sb.append(bd.toString());
            case Number n -> sb.append(n.toString()); // Long, Integer, Short, Byte, BigInteger, atomics
            case Map<?, ?> map -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : map.entrySet()) {
                    if (!(e.getKey() instanceof String key)) {
                        throw new IllegalArgumentException("JSON object keys must be strings, got " + e.getKey());
                    }
                    sb.append(first ? "" : ",");
                    newline(sb, indent, level + 1);
                    first = false;
                    quote(key, sb);
                    sb.append(indent != null ? ": " : ":");
                    write(e.getValue(), sb, indent, level + 1);
                }
                if (!first) {
                    newline(sb, indent, level);
                }
                sb.append('}');
            }
            case Collection<?> list -> {
                sb.append('[');
                boolean first = true;
                for (Object o : list) {
                    sb.append(first ? "" : ",");
                    newline(sb, indent, level + 1);
                    first = false;
                    write(o, sb, indent, level + 1);
                }
                if (!first) {
                    newline(sb, indent, level);
                }
                sb.append(']');
            }
            default -> {
                if (value.getClass().isArray()) {
                    int n = java.lang.reflect.Array.getLength(value);
                    List<Object> list = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) {
                        list.add(java.lang.reflect.Array.get(value, i));
                    }
                    write(list, sb, indent, level);
                } else {
                    throw new IllegalArgumentException("cannot write " + value.getClass().getName() + " as JSON");
                }
            }
        }
    }

    private static void number(double d, StringBuilder sb) {
        if (!Double.isFinite(d)) {
            sb.append("null");
        } else if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            sb.append((long) d); // 3.0 -> 3, not 3.0 (same value, as other JSON writers print it)
            if (d == 0 && 1 / d < 0) {
                sb.setLength(sb.length() - 1);
                sb.append("-0");
            }
        } else {
            sb.append(d); // shortest repr that round-trips; may use E notation, which JSON allows
        }
    }

    /// Appends `s` as a JSON string literal.
    public static void quote(CharSequence s, StringBuilder sb) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029'
                            || (Character.isSurrogate(c) && !pairedSurrogate(s, i))) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /// Whether the surrogate at `i` is half of a valid pair (a lone one is escaped so the output stays valid UTF-8).
    private static boolean pairedSurrogate(CharSequence s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) {
            return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        }
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }

    /// `s` as a JSON string literal.
    public static String quote(CharSequence s) {
        StringBuilder sb = new StringBuilder(s.length() + 2);
        quote(s, sb);
        return sb.toString();
    }
}
