package dev.llamaj.engine.grammar;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/// JSON Schema to grammar: what each supported keyword lets through and keeps out, and the errors. The
/// property that every constrained output validates is [ConstrainedOutputTest].
class JsonSchemaTest {

    private static void accepts(String schema, String... documents) {
        Grammar grammar = Grammar.fromJsonSchema(schema);
        for (String document : documents) {
            assertThat(grammar.matches(document)).as("%s should accept %s\n%s", schema, document, grammar.gbnf())
                    .isTrue();
        }
    }

    private static void refuses(String schema, String... documents) {
        Grammar grammar = Grammar.fromJsonSchema(schema);
        for (String document : documents) {
            assertThat(grammar.matches(document)).as("%s should refuse %s\n%s", schema, document, grammar.gbnf())
                    .isFalse();
        }
    }

    @Test
    void objectsWithRequiredAndOptionalPropertiesInDeclarationOrder() {
        String schema = """
                {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                 "c": {"type": "boolean"}}, "required": ["b"], "additionalProperties": false}""";
        accepts(schema, "{\"b\":\"x\"}", "{\"a\":1,\"b\":\"\"}", "{\"b\":\"x\",\"c\":true}",
                "{\"a\": -5, \"b\": \"y\", \"c\": false}", "{\n  \"b\": \"x\"\n}");
        refuses(schema, "{}", "{\"a\":1}", "{\"b\":\"x\",\"a\":1}", "{\"b\":\"x\",}", "{,\"b\":\"x\"}",
                "{\"b\":\"x\",\"d\":1}", "{\"b\":\"x\"} ");
    }

    @Test
    void additionalPropertiesAllowedByDefaultButNeverADeclaredName() {
        String schema = "{\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}}}";
        accepts(schema, "{}", "{\"id\":1}", "{\"id\":1,\"other\":[1,{}]}", "{\"i\":\"s\"}", "{\"idx\":null}",
                "{\"other\":2}");
        refuses(schema, "{\"id\":\"not an integer\"}", "{\"id\":1,\"id\":2}");
        String typed = "{\"type\": \"object\", \"additionalProperties\": {\"type\": \"boolean\"}}";
        accepts(typed, "{}", "{\"x\":true,\"y\":false}");
        refuses(typed, "{\"x\":1}");
    }

    @Test
    void arraysWithBoundsAndPrefixItems() {
        String bounded = "{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 2, \"maxItems\": 3}";
        accepts(bounded, "[1,2]", "[1, 2, 3]", "[ 1 ,2 ]");
        refuses(bounded, "[]", "[1]", "[1,2,3,4]", "[1,\"a\"]");
        String prefix = "{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"null\"}],"
                + " \"items\": false}";
        accepts(prefix, "[]", "[\"a\"]", "[\"a\",null]");
        refuses(prefix, "[null]", "[\"a\",null,1]");
        accepts("{\"type\": \"array\", \"maxItems\": 0}", "[]");
        String many = "{\"type\": \"array\", \"items\": {\"const\": 0}, \"minItems\": 20000, \"maxItems\": 20001}";
        accepts(many, "[" + "0,".repeat(19_999) + "0]", "[" + "0,".repeat(20_000) + "0]");
        refuses(many, "[" + "0,".repeat(19_998) + "0]", "[" + "0,".repeat(20_001) + "0]");
        String tuple = "{\"type\": \"array\", \"prefixItems\": [{\"const\": 1}, {\"const\": 2}, {\"const\": 3}],"
                + " \"items\": {\"const\": 9}, \"minItems\": 2, \"maxItems\": 5}";
        accepts(tuple, "[1,2]", "[1,2,3]", "[1,2,3,9]", "[1,2,3,9,9]");
        String upTo3 = "{\"type\": \"array\", \"items\": {\"const\": 0}, \"maxItems\": 3}";
        accepts(upTo3, "[]", "[0]", "[0,0,0]");
        refuses(upTo3, "[0,0,0,0]");
        refuses(tuple, "[1]", "[1,3]", "[1,2,9]", "[1,2,3,9,9,9]");
        refuses("{\"type\": \"array\", \"maxItems\": 0}", "[1]");
    }

    @Test
    void stringsLengthsPatternsAndFormats() {
        accepts("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}", "\"ab\"", "\"a\\\"c\"", "\"日本語\"");
        refuses("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}", "\"a\"", "\"abcd\"");
        accepts("{\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-\\\\d+$\"}", "\"AB-1\"", "\"XY-123\"");
        refuses("{\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-\\\\d+$\"}", "\"AB-\"", "\"ab-1\"", "\"AB-1x\"");
        accepts("{\"type\": \"string\", \"pattern\": \"b+\"}", "\"b\"", "\"abba\"", "\"xxbyy\"");
        refuses("{\"type\": \"string\", \"pattern\": \"b+\"}", "\"\"", "\"acd\"");
        accepts("{\"type\": \"string\", \"pattern\": \"^(\\\"|\\\\\\\\|\\\\n)$\"}", "\"\\\"\"", "\"\\\\\"", "\"\\n\"");
        accepts("{\"format\": \"date\"}", "\"2024-02-29\"", "\"2023-12-31\"", "\"2000-02-29\"");
        refuses("{\"format\": \"date\"}", "\"2023-02-29\"", "\"1900-02-29\"", "\"2023-04-31\"", "\"2023-13-01\"");
        accepts("{\"format\": \"time\"}", "\"23:59:59Z\"", "\"00:00:00.123+05:30\"");
        refuses("{\"format\": \"time\"}", "\"24:00:00Z\"", "\"12:00:00\"");
        accepts("{\"format\": \"date-time\"}", "\"2024-01-02T03:04:05Z\"");
        accepts("{\"format\": \"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"");
        refuses("{\"format\": \"uuid\"}", "\"123e4567e89b12d3a456426614174000\"");
        accepts("{\"format\": \"email\"}", "\"jane.doe@example.com\"");
        refuses("{\"format\": \"email\"}", "\"jane@\"", "\"@example.com\"");
    }

    @Test
    void integersWithinBoundsDigitByDigit() {
        String schema = "{\"type\": \"integer\", \"minimum\": -15, \"exclusiveMaximum\": 120}";
        Grammar grammar = Grammar.fromJsonSchema(schema);
        for (int n = -200; n <= 200; n++) {
            assertThat(grammar.matches(Integer.toString(n))).as("%d", n).isEqualTo(n >= -15 && n < 120);
        }
        refuses(schema, "-0", "007", "1.5", "+3");
        Grammar positive = Grammar.fromJsonSchema("{\"type\": \"integer\", \"exclusiveMinimum\": 0}");
        assertThat(positive.matches("0")).isFalse();
        assertThat(positive.matches("1")).isTrue();
        assertThat(positive.matches("9999999999999999")).isTrue();
        assertThat(positive.matches("-1")).isFalse();
        for (int lo : new int[] {0, 7, 98, 100, 999}) {
            for (int hi : new int[] {lo, lo + 1, lo + 9, lo + 95, 1203, 10_000}) {
                Grammar range = Grammar.fromJsonSchema("{\"type\": \"integer\", \"minimum\": " + lo
                        + ", \"maximum\": " + hi + "}");
                for (int n = Math.max(0, lo - 20); n <= hi + 20; n += Math.max(1, (hi - lo) / 200)) {
                    assertThat(range.matches(Integer.toString(n))).as("%d in [%d, %d]", n, lo, hi)
                            .isEqualTo(n >= lo && n <= hi);
                }
            }
        }
    }

    @Test
    void boundedNumbers() {
        String schema = "{\"type\": \"number\", \"minimum\": -2.5, \"exclusiveMaximum\": 3}";
        accepts(schema, "-2", "0", "2.999", "-1.5", "2", "-0.25");
        refuses(schema, "3", "3.5", "-3", "-2.75", "1e2");
        accepts("{\"type\": \"number\"}", "1", "-0.5", "1.5e-7", "0E+2");
        refuses("{\"type\": \"number\"}", "01", ".5", "1.", "--1", "NaN");
    }

    @Test
    void enumsConstsTypeArraysAndAnyOf() {
        accepts("{\"enum\": [\"a\", 1, null, {\"k\": [true]}]}", "\"a\"", "1", "null", "{\"k\":[true]}");
        refuses("{\"enum\": [\"a\", 1, null]}", "\"b\"", "2", "\"null\"");
        accepts("{\"const\": \"x\\\"y\"}", "\"x\\\"y\"");
        accepts("{\"type\": [\"integer\", \"null\"]}", "1", "null");
        refuses("{\"type\": [\"integer\", \"null\"]}", "\"1\"", "1.5");
        accepts("{\"anyOf\": [{\"type\": \"boolean\"}, {\"type\": \"string\", \"maxLength\": 1}]}", "true", "\"z\"");
        refuses("{\"anyOf\": [{\"type\": \"boolean\"}, {\"type\": \"string\", \"maxLength\": 1}]}", "\"zz\"", "0");
    }

    @Test
    void referencesAndRecursion() {
        String tree = """
                {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                  "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v"],
                  "additionalProperties": false}}, "$ref": "#/$defs/node"}""";
        accepts(tree, "{\"v\":1}", "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3}]},{\"v\":4}]}");
        refuses(tree, "{\"v\":1,\"kids\":[{}]}", "{\"kids\":[]}");
        accepts("{\"definitions\": {\"n\": {\"type\": \"null\"}}, \"type\": \"array\", \"items\": {\"$ref\":"
                + " \"#/definitions/n\"}}", "[null,null]");
        accepts("{\"type\": \"array\", \"items\": {\"$ref\": \"#\"}, \"maxItems\": 2}", "[[],[[]]]");
        // a fragment is %-escaped UTF-8 ('+' stays a plus), then JSON-pointer escaped (~1 is '/', ~0 is '~')
        accepts("{\"$defs\": {\"a b/+é~\": {\"const\": 1}}, \"$ref\": \"#/$defs/a%20b~1+%C3%A9~0\"}", "1");
        refuses("{\"$defs\": {\"a b/+é~\": {\"const\": 1}}, \"$ref\": \"#/$defs/a%20b~1+%C3%A9~0\"}", "2");
    }

    @Test
    void allOfMerges() {
        String schema = """
                {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                           {"properties": {"b": {"type": "integer"}}, "required": ["b"],
                            "additionalProperties": false}]}""";
        accepts(schema, "{\"a\":\"x\",\"b\":1}");
        refuses(schema, "{\"a\":\"x\"}", "{\"b\":1}", "{\"a\":\"x\",\"b\":1,\"c\":2}");
    }

    @Test
    void emptySchemaAndTheBuiltInGrammarsTakeAnyJson() {
        for (Grammar any : List.of(Grammar.fromJsonSchema("{}"), Grammar.fromJsonSchema("true"),
                Grammar.anyJsonValue())) {
            assertThat(any.matches("{\"a\": [1, 2.5e3, \"x\", null, true, {}]}")).isTrue();
            assertThat(any.matches("\"just a string\"")).isTrue();
            assertThat(any.matches("{\"a\" 1}")).isFalse();
        }
        assertThat(Grammar.anyJsonObject().matches("{\"k\": []}")).isTrue();
        assertThat(Grammar.anyJsonObject().matches("[]")).isFalse();
    }

    @Test
    void whitespaceIsBounded() {
        Grammar grammar = Grammar.anyJsonObject();
        assertThat(grammar.matches("{\n" + " ".repeat(20) + "\"a\": 1\n}")).isTrue();
        assertThat(grammar.matches("{\n" + " ".repeat(21) + "\"a\": 1\n}")).isFalse();
        assertThat(grammar.matches("{  \"a\": 1}")).isFalse();
        assertThat(grammar.matches("{\n\n\"a\": 1}")).isFalse();
    }

    @ParameterizedTest
    @CsvSource(delimiterString = "=>", quoteCharacter = '`', textBlock = """
            {"type": "integer", "multipleOf": 3}                  => schema /multipleOf: unsupported JSON Schema keyword 'multipleOf'
            {"properties": {"a": {"uniqueItems": true}}}          => schema /properties/a/uniqueItems: unsupported JSON Schema keyword 'uniqueItems'
            {"type": "strin"}                                     => schema /type: unknown type "strin"
            {"type": "string", "minLength": -1}                   => schema /minLength: 'minLength' must be an integer from 0
            {"type": "string", "maxLength": 1.5}                  => schema /maxLength: 'maxLength' must be an integer from 0
            {"type": "array", "minItems": 3, "maxItems": 2}       => schema /maxItems: maxItems 2 is below minItems 3
            {"type": "string", "pattern": "(a)\\\\1"}               => schema /pattern: pattern "(a)\\1": backreferences
            {"type": "string", "pattern": "a(?=b)"}               => schema /pattern: pattern "a(?=b)": lookarounds
            {"type": "string", "pattern": "a\\\\bc"}                => schema /pattern: pattern "a\\bc": word boundaries
            {"type": "string", "pattern": "a^b"}                  => schema /pattern: pattern "a^b": '^' is supported only at the start
            {"type": "string", "pattern": "(ab"}                  => schema /pattern: pattern "(ab": unterminated group
            {"type": "string", "format": "hostname"}              => schema /format: unsupported format 'hostname'
            {"$ref": "https://example.com/s.json"}                => schema /$ref: only local references
            {"$ref": "#/$defs/missing"}                           => schema /$ref: '#/$defs/missing' points to nothing
            {"$defs": {"a": {}}, "$ref": "#/$defs/a%2"}           => schema /$ref: '#/$defs/a%2' has a malformed %-escape
            {"$defs": {"l": []}, "$ref": "#/$defs/l/99999999999"} => schema /$ref: '#/$defs/l/99999999999' points to nothing
            {"type": "integer", "minimum": 5, "maximum": 4}       => schema (root): no integer satisfies the bounds
            {"type": "integer", "minimum": true}                  => schema /minimum: 'minimum' must be a number
            {"anyOf": [{"type": "null"}], "type": "object"}       => schema /type: 'type' next to 'anyOf' is not supported
            {"allOf": [{"type": "string"}, {"type": "integer"}]} => schema /allOf/1/type: 'allOf' members disagree on 'type'
            {"minLength": 1, "minimum": 1}                        => schema (root): keywords of several types (string, number)
            {"enum": [1], "minimum": 0}                           => schema /minimum: 'minimum' next to 'enum' is not supported
            {"type": "object", "required": ["x"], "additionalProperties": false} => schema /required: 'x' is required but not among the properties
            {"type": "string"                                     => schema JSON 1:18: expected '}'
            false                                                 => schema (root): the schema 'false' accepts no value
            """)
    void unsupportedOrBadSchemasAreRefusedNamingTheKeyword(String schema, String message) {
        assertThatThrownBy(() -> Grammar.fromJsonSchema(schema))
                .isInstanceOf(GrammarException.class)
                .hasMessageStartingWith(message)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @Test
    void theSameSchemaGivesTheSameCompiledGrammar() {
        String schema = "{\"type\": \"object\", \"properties\": {\"reused\": {\"type\": \"boolean\"}}}";
        Grammar first = Grammar.fromJsonSchema(schema);
        assertThat(Grammar.fromJsonSchema(schema)).isSameAs(first);
        assertThat(Grammar.parse(first.gbnf())).isSameAs(first);
        for (int i = 0; i < Grammar.RECENT_GRAMMARS + 1; i++) {
            Grammar.parse("root ::= \"other " + i + "\"");
        }
        assertThat(Grammar.fromJsonSchema(schema)).isNotSameAs(first).satisfies(g -> assertThat(g.gbnf())
                .isEqualTo(first.gbnf()));
    }

    @Test
    void annotationsAreIgnored() {
        accepts("""
                {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "T",
                 "description": "D", "$comment": "c", "examples": [1], "default": 2, "type": "integer"}""", "7");
    }
}
