package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.math.BigDecimal;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void parsesEveryKindOfValue() {
        Object v = Json.parse(" {\"s\": \"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\", \"i\": -12, \"big\": 123456789012345678901234,"
                + " \"d\": 0.1, \"e\": 1e3, \"t\": true, \"f\": false, \"n\": null, \"a\": [1, [], {}]}\n");
        assertThat(v).isInstanceOf(Map.class);
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) v;
        assertThat(m.keySet()).containsExactly("s", "i", "big", "d", "e", "t", "f", "n", "a");
        assertThat(m.get("s")).isEqualTo("a\"b\\c/\né😀");
        assertThat(m.get("i")).isEqualTo(-12L);
        assertThat(m.get("big")).isEqualTo(new BigDecimal("123456789012345678901234"));
        assertThat(m.get("d")).isEqualTo(new BigDecimal("0.1"));
        assertThat(m.get("e")).isEqualTo(new BigDecimal("1e3"));
        assertThat(m.get("t")).isEqualTo(true);
        assertThat(m.get("f")).isEqualTo(false);
        assertThat(m.containsKey("n")).isTrue();
        assertThat(m.get("n")).isNull();
        assertThat(m.get("a")).isEqualTo(List.of(1L, List.of(), Map.of()));
        assertThat(Json.parse("-0")).isEqualTo(0L);
        assertThat(Json.parse("9223372036854775807")).isEqualTo(Long.MAX_VALUE);
        assertThat(Json.parse("9223372036854775808")).isEqualTo(new BigDecimal("9223372036854775808"));
    }

    @Test
    void errorsSayWhatAndWhere() {
        assertError("{\"a\": 1,}", "expected a string key but found '}' at line 1, column 9 (offset 8)");
        assertError("{\"a\" 1}", "expected ':' after an object key but found '1' at line 1, column 6");
        assertError("[1 2]", "expected ',' or ']' in an array but found '2' at line 1, column 4");
        assertError("{\"a\":\n  tru}", "expected a JSON value but found 't' at line 2, column 3");
        assertError("\"abc", "unterminated string starting at line 1, column 1");
        assertError("\"a\tb\"", "unescaped control character U+0009 in a string");
        assertError("\"\\x\"", "bad escape '\\x' in a string");
        assertError("\"\\u12g4\"", "bad \\u escape");
        assertError("01", "leading zero in a number");
        assertError("1.", "expected a digit after the decimal point");
        assertError("-", "expected a digit in a number but found end of input");
        assertError("{} x", "unexpected 'x' after the JSON value");
        assertError("", "expected a JSON value but found end of input");
        assertError("{\"a\": 1, \"a\": 2}", "duplicate key \"a\"");
        assertError("[".repeat(Json.MAX_DEPTH + 1), "nested more than");
        assertThatThrownBy(() -> Json.parseObject("[1]")).isInstanceOf(Json.JsonException.class)
                .hasMessage("expected a JSON object, got an array");
    }

    @Test
    void limitsBoundWhatAParseBuilds() {
        // an empty object per three characters: about 64 bytes of heap each, 72 with the array's reference
        String objects = "[" + "{},".repeat(100_000) + "{}]";
        Json.Limits limits = new Json.Limits(64, 1 << 20, 1000, 6L * objects.length());
        assertThatThrownBy(() -> Json.parse(objects, limits)).isInstanceOf(Json.LimitException.class)
                .hasMessageStartingWith("JSON values taking more than " + 6L * objects.length() + " bytes of memory");
        assertThat((List<?>) Json.parse(objects, new Json.Limits(64, 1 << 20, 1000, 8_000_000))).hasSize(100_001);
        assertThatThrownBy(() -> Json.parse("[1,2,3,4]", new Json.Limits(64, 4, 1000, 1 << 20)))
                .isInstanceOf(Json.LimitException.class).hasMessageStartingWith("more than 4 JSON values");
        assertThatThrownBy(() -> Json.parse("[\"abcdef\"]", new Json.Limits(64, 10, 5, 1 << 20)))
                .isInstanceOf(Json.LimitException.class).hasMessageStartingWith("string longer than 5 characters");
        assertThat(Json.parse("[\"abcde\"]", new Json.Limits(64, 10, 5, 1 << 20))).isEqualTo(List.of("abcde"));
        // nesting is malformed rather than large: a plain JsonException
        assertThatThrownBy(() -> Json.parse("[[[[]]]]", new Json.Limits(3, 10, 5, 1 << 20)))
                .isInstanceOf(Json.JsonException.class).isNotInstanceOf(Json.LimitException.class)
                .hasMessageStartingWith("JSON nested more than 3 levels deep");
    }

    private static void assertError(String text, String message) {
        assertThatThrownBy(() -> Json.parse(text)).isInstanceOf(Json.JsonException.class).hasMessageContaining(message);
    }

    @Test
    void writesWithEscaping() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("text", "line\n\"quoted\" \\ tab\t \u0001 \u2028 é 😀");
        m.put("n", 3);
        m.put("l", 12345678901L);
        m.put("d", 2.5);
        m.put("whole", 3.0);
        m.put("nan", Double.NaN);
        m.put("b", true);
        m.put("null", null);
        m.put("list", List.of(1, "a"));
        m.put("array", new int[] {1, 2});
        m.put("enum", Progress.Mode.BAR);
        String json = Json.write(m);
        assertThat(json).isEqualTo("{\"text\":\"line\\n\\\"quoted\\\" \\\\ tab\\t \\u0001 \\u2028 é 😀\",\"n\":3,"
                + "\"l\":12345678901,\"d\":2.5,\"whole\":3,\"nan\":null,\"b\":true,\"null\":null,\"list\":[1,\"a\"],"
                + "\"array\":[1,2],\"enum\":\"BAR\"}");
        assertThat(json).doesNotContain("\n");
        // and back
        Map<String, Object> back = Json.parseObject(json);
        assertThat(back.get("text")).isEqualTo(m.get("text"));
        assertThat(Json.write("\ud800")).isEqualTo("\"\\ud800\""); // a lone surrogate stays valid UTF-8
    }

    @Test
    void prettyPrints() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("a", List.of(1, 2));
        m.put("b", Map.of());
        assertThat(Json.writePretty(m)).isEqualTo("{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
        assertThat(Json.parse(Json.writePretty(m))).isEqualTo(Json.parse(Json.write(m)));
    }

    @Test
    void roundTripsEveryCharacter() {
        char[] chars = new char[0x3000];
        Arrays.setAll(new int[chars.length], i -> chars[i] = (char) i);
        String s = new String(chars).replaceAll("[\\ud800-\\udfff]", "");
        assertThat(Json.parse(Json.write(s))).isEqualTo(s);
    }
}
