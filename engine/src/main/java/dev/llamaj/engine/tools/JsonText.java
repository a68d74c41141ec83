package dev.llamaj.engine.tools;

import dev.llamaj.engine.grammar.JsonReader;
import java.math.BigDecimal;
import java.util.List;
import java.util.Map;

/// The little JSON that tool calling needs inside the engine: reading a model's call (and a tool's parameter
/// schema) into maps that keep their key order (through [JsonReader], the engine's one reader), writing values
/// back, and finding where a JSON value ends in text that is still arriving. Objects become `LinkedHashMap`s,
/// arrays `ArrayList`s, integers `Long`s, other numbers `BigDecimal`s.
final class JsonText {
    private JsonText() {
    }

    /// Parses one JSON value that fills `text` (surrounding whitespace allowed), with the engine's one reader.
    ///
    /// @throws IllegalArgumentException if it is not exactly one valid JSON value
    static Object parse(String text) {
        return JsonReader.parse(text);
    }

    /// Whether `text` is one valid JSON value.
    static boolean isValid(String text) {
        try {
            parse(text);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /// JSON text of a value made of maps, lists, strings, numbers, booleans and null; `", "` and `": "`
    /// separators, as Python's `json.dumps` writes them (the text models saw in training).
    static String write(Object v) {
        StringBuilder sb = new StringBuilder();
        write(v, sb);
        return sb.toString();
    }

    private static void write(Object v, StringBuilder sb) {
        switch (v) {
            case null -> sb.append("null");
            case String str -> JsonReader.quote(str, sb);
            case Boolean b -> sb.append(b);
            case BigDecimal d -> sb.append(d.toString());
            case Number n -> sb.append(n);
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    JsonReader.quote(String.valueOf(e.getKey()), sb);
                    sb.append(": ");
                    write(e.getValue(), sb);
                }
                sb.append('}');
            }
            case List<?> l -> {
                sb.append('[');
                for (int k = 0; k < l.size(); k++) {
                    if (k > 0) {
                        sb.append(", ");
                    }
                    write(l.get(k), sb);
                }
                sb.append(']');
            }
            default -> throw new IllegalArgumentException("not a JSON value: " + v.getClass().getName());
        }
    }

    /// Follows JSON text one character at a time to find where a value ends, without parsing it: strings (with
    /// their escapes) and the nesting of objects and arrays. Used on a model's output as it arrives.
    static final class Scanner {
        private int depth;
        private boolean inString;
        private boolean escaped;
        private boolean started;
        private boolean done;

        /// Feeds one character; returns true when it completes the value (the closing brace, bracket or quote).
        /// A bare number or literal (`true`) cannot end by itself: see [#endsBefore].
        boolean feed(char c) {
            if (done) {
                return false;
            }
            if (inString) {
                if (escaped) {
                    escaped = false;
                } else if (c == '\\') {
                    escaped = true;
                } else if (c == '"') {
                    inString = false;
                    if (depth == 0) {
                        return done = true;
                    }
                }
                return false;
            }
            switch (c) {
                case '"' -> {
                    started = true;
                    inString = true;
                }
                case '{', '[' -> {
                    started = true;
                    depth++;
                }
                case '}', ']' -> {
                    depth--;
                    if (depth <= 0) {
                        return done = true;
                    }
                }
                default -> {
                    if (!Character.isWhitespace(c)) {
                        started = true;
                    }
                }
            }
            return false;
        }

        /// Whether a bare scalar (number, `true`...) that has started ends before `c` (a delimiter outside any
        /// container).
        boolean endsBefore(char c) {
            return started && !done && depth == 0 && !inString
                    && (c == ',' || c == '}' || c == ']' || Character.isWhitespace(c));
        }

        boolean inContainerOrString() {
            return depth > 0 || inString;
        }
    }
}
