package dev.llamaj.engine.grammar;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/// The engine's strict JSON reader (RFC 8259), for schemas given as text and for what tool calling reads (a
/// model's call, a tool's parameters): objects become `LinkedHashMap` (keys in document order, which is the order
/// properties are generated in), arrays `ArrayList`, numbers `Long` or `BigDecimal`. Duplicate keys and nesting
/// deeper than 256 levels are refused. Errors are `IllegalArgumentException`s naming the line and column.
public final class JsonReader {
    private static final int MAX_DEPTH = 256;
    private final String s;
    private int i;

    private JsonReader(String s) {
        this.s = s;
    }

    /// Reads the one JSON value that fills `text` (whitespace around it allowed).
    ///
    /// @throws IllegalArgumentException if `text` is not exactly one valid JSON value
    public static Object parse(String text) {
        JsonReader reader = new JsonReader(text);
        reader.space();
        Object value = reader.value(0);
        reader.space();
        if (reader.i < text.length()) {
            throw reader.error("unexpected text after the value");
        }
        return value;
    }

    private Object value(int depth) {
        if (depth > MAX_DEPTH) {
            throw error("nested more than " + MAX_DEPTH + " levels");
        }
        if (i >= s.length()) {
            throw error("unexpected end of the text");
        }
        char c = s.charAt(i);
        switch (c) {
            case '{' -> {
                i++;
                Map<String, Object> object = new LinkedHashMap<>();
                space();
                if (peek('}')) {
                    return object;
                }
                do {
                    space();
                    if (i >= s.length() || s.charAt(i) != '"') {
                        throw error("expected a string key");
                    }
                    String key = string();
                    space();
                    expect(':');
                    space();
                    if (object.containsKey(key)) {
                        throw error("duplicate key \"" + key + "\"");
                    }
                    object.put(key, value(depth + 1));
                    space();
                } while (peek(','));
                expect('}');
                return object;
            }
            case '[' -> {
                i++;
                List<Object> array = new ArrayList<>();
                space();
                if (peek(']')) {
                    return array;
                }
                do {
                    space();
                    array.add(value(depth + 1));
                    space();
                } while (peek(','));
                expect(']');
                return array;
            }
            case '"' -> {
                return string();
            }
            case 't' -> {
                return word("true", Boolean.TRUE);
            }
            case 'f' -> {
                return word("false", Boolean.FALSE);
            }
            case 'n' -> {
                return word("null", null);
            }
            default -> {
                return number();
            }
        }
    }

    private Object word(String word, Object value) {
        if (!s.startsWith(word, i)) {
            throw error("unexpected character");
        }
        i += word.length();
        return value;
    }

    private Object number() {
        int start = i;
        if (peek('-')) {
            // sign consumed
        }
        if (peek('0')) {
            // a single zero
        } else if (i < s.length() && s.charAt(i) >= '1' && s.charAt(i) <= '9') {
            digits();
        } else {
            throw error("unexpected character");
        }
        boolean integer = true;
        if (peek('.')) {
            integer = false;
            if (digits() == 0) {
                throw error("expected digits after '.'");
            }
        }
        if (i < s.length() && (s.charAt(i) == 'e' || s.charAt(i) == 'E')) {
            integer = false;
            i++;
            if (!peek('+')) {
                peek('-');
            }
            if (digits() == 0) {
                throw error("expected digits in the exponent");
            }
        }
        String text = s.substring(start, i);
        if (integer && text.length() < 19) {
            return Long.parseLong(text);
        }
        return new BigDecimal(text);
    }

    private int digits() {
        int start = i;
        while (i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
            i++;
        }
        return i - start;
    }

    private String string() {
        i++; // the opening quote
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (i >= s.length()) {
                throw error("unterminated string");
            }
            char c = s.charAt(i++);
            if (c == '"') {
                return sb.toString();
            }
            if (c < 0x20) {
                throw error("control character in a string");
            }
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            if (i >= s.length()) {
                throw error("unterminated string");
            }
            char e = s.charAt(i++);
            switch (e) {
                case '"', '\\', '/' -> sb.append(e);
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'n' -> sb.append('\n');
                case 'r' -> sb.append('\r');
                case 't' -> sb.append('\t');
                case 'u' -> {
                    if (i + 4 > s.length()) {
                        throw error("bad unicode escape");
                    }
                    try {
                        sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                    } catch (NumberFormatException ex) {
                        throw error("bad unicode escape");
                    }
                    i += 4;
                }
                default -> throw error("bad escape '\\" + e + "'");
            }
        }
    }

    private void space() {
        while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) == '\t' || s.charAt(i) == '\n'
                || s.charAt(i) == '\r')) {
            i++;
        }
    }

    private boolean peek(char c) {
        if (i < s.length() && s.charAt(i) == c) {
            i++;
            return true;
        }
        return false;
    }

    private void expect(char c) {
        if (!peek(c)) {
            throw error("expected '" + c + "'");
        }
    }

    private IllegalArgumentException error(String message) {
        int line = 1, column = 1;
        for (int k = 0; k < i && k < s.length(); k++) {
            if (s.charAt(k) == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        return new IllegalArgumentException("JSON " + line + ":" + column + ": " + message);
    }

    /// Writes `s` as a JSON string (the escapes this reader undoes), for what the engine writes back as JSON.
    public static void quote(String s, StringBuilder sb) {
        sb.append('"');
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
