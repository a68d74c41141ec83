package dev.llamaj.engine.grammar;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/// Translates a JSON Schema (as parsed JSON: `Map`, `List`, `String`, `Number`, `Boolean`, `null`) into GBNF
/// whose every complete match is a JSON document valid against the schema.
///
/// Every keyword is either turned into grammar, ignored because it is an annotation (`title`, `description`,
/// `examples`, `default`, `$schema`, `$id`, `$comment`, `deprecated`, `readOnly`, `writeOnly`), or refused with
/// a [GrammarException] naming it and where it is (a JSON pointer): nothing is silently dropped. Where the
/// grammar can only produce a subset of what the schema allows, the subset is chosen to stay valid (for
/// example, integers have at most 16 digits; object properties come in declaration order).
///
/// The output is deterministic: one rule per schema node (named after where it is), shared primitives
/// (`ws`, `string`, `number`, ...) defined once.
final class JsonSchemaConverter {
    /// Whitespace between JSON tokens: nothing, one space, or a newline and up to 20 spaces or tabs. Bounded,
    /// so a model cannot emit whitespace forever, and enough for the pretty-printing models do.
    static final String WS = "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}";
    /// The longest integer part (and fraction) of a generated number, so digits cannot run forever either.
    static final int MAX_DIGITS = 16;
    private static final BigInteger MAX_INTEGER = BigInteger.TEN.pow(MAX_DIGITS).subtract(BigInteger.ONE);

    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "examples", "default",
            "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly");
    private static final Set<String> GENERIC = Set.of("type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
            "$defs", "definitions");
    private static final Set<String> OBJECT = Set.of("properties", "required", "additionalProperties");
    private static final Set<String> ARRAY = Set.of("items", "prefixItems", "minItems", "maxItems");
    private static final Set<String> STRING = Set.of("minLength", "maxLength", "pattern", "format");
    private static final Set<String> NUMBER = Set.of("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");
    private static final Set<String> TYPES = Set.of("object", "array", "string", "number", "integer", "boolean",
            "null");

    /// The primitives, added to the grammar when first used.
    private static final Map<String, String> PRIMITIVES = new LinkedHashMap<>();

    static {
        PRIMITIVES.put("ws", WS);
        PRIMITIVES.put("value", "value ::= object | array | string | number | boolean | null");
        PRIMITIVES.put("object", "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws"
                + " value ws )* )? \"}\"");
        PRIMITIVES.put("array", "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"");
        PRIMITIVES.put("string", "string ::= \"\\\"\" char* \"\\\"\"");
        // any character but the quote, the backslash and controls, or an escape; \\u escapes name no surrogate
        PRIMITIVES.put("char", "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" ( [0-9a-cA-CefEF]"
                + " hex{3} | [dD] [0-7] hex{2} ) )");
        PRIMITIVES.put("hex", "hex ::= [0-9a-fA-F]");
        PRIMITIVES.put("number", "number ::= \"-\"? integral ( \".\" [0-9]{1," + MAX_DIGITS + "} )?"
                + " ( [eE] [-+]? [0-9]{1,2} )?");
        PRIMITIVES.put("integral", "integral ::= \"0\" | [1-9] [0-9]{0," + (MAX_DIGITS - 1) + "}");
        PRIMITIVES.put("integer", "integer ::= \"-\"? integral");
        PRIMITIVES.put("boolean", "boolean ::= \"true\" | \"false\"");
        PRIMITIVES.put("null", "null ::= \"null\"");
        // a nonzero fraction: the value lies strictly between two integers
        PRIMITIVES.put("fraction", "fraction ::= \".\" [0-9]{0," + (MAX_DIGITS - 1) + "} [1-9]");
        PRIMITIVES.put("date", "date ::= year \"-\" ( month31 \"-\" day31 | month30 \"-\" day30 | \"02-\" day28 )"
                + " | leap-year \"-02-29\"");
        PRIMITIVES.put("year", "year ::= [0-9]{4}");
        // divisible by 4 and not by 100, or by 400
        PRIMITIVES.put("leap-year", "leap-year ::= [0-9]{2} ( \"0\" [48] | [2468] [048] | [13579] [26] )"
                + " | ( [02468] [048] | [13579] [26] ) \"00\"");
        PRIMITIVES.put("month31", "month31 ::= \"01\" | \"03\" | \"05\" | \"07\" | \"08\" | \"10\" | \"12\"");
        PRIMITIVES.put("month30", "month30 ::= \"04\" | \"06\" | \"09\" | \"11\"");
        PRIMITIVES.put("day28", "day28 ::= \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8]");
        PRIMITIVES.put("day30", "day30 ::= \"0\" [1-9] | [12] [0-9] | \"30\"");
        PRIMITIVES.put("day31", "day31 ::= \"0\" [1-9] | [12] [0-9] | \"3\" [01]");
        PRIMITIVES.put("time", "time ::= ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9]"
                + " ( \".\" [0-9]{1,9} )? ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )");
        PRIMITIVES.put("uuid", "uuid ::= hex{8} \"-\" hex{4} \"-\" hex{4} \"-\" hex{4} \"-\" hex{12}");
        // a conservative address: up to four dot-separated atoms of letters, digits and _+- (at most 63
        // characters, under RFC 5321's 64), at a domain of letter/digit labels (hyphens inside) under a common
        // top-level domain (validators check it against IANA's list)
        PRIMITIVES.put("email", "email ::= email-atom ( \".\" email-atom ){0,3} \"@\" ( label \".\" ){1,3} tld");
        PRIMITIVES.put("email-atom", "email-atom ::= [a-zA-Z0-9_+-]{1,15}");
        PRIMITIVES.put("tld", "tld ::= \"com\" | \"org\" | \"net\" | \"edu\" | \"gov\" | \"io\" | \"dev\" | \"ai\""
                + " | \"info\" | \"co\" | \"uk\" | \"de\" | \"fr\" | \"jp\"");
        PRIMITIVES.put("label", "label ::= [a-zA-Z0-9] ( [a-zA-Z0-9-]{0,30} [a-zA-Z0-9] )?");
    }

    /// Which primitives each primitive uses, so that adding one adds what it needs.
    private static final Map<String, List<String>> NEEDS = Map.ofEntries(
            Map.entry("value", List.of("object", "array", "string", "number", "boolean", "null")),
            Map.entry("object", List.of("ws", "string", "value")),
            Map.entry("array", List.of("ws", "value")),
            Map.entry("string", List.of("char")),
            Map.entry("char", List.of("hex")),
            Map.entry("number", List.of("integral")),
            Map.entry("integer", List.of("integral")),
            Map.entry("date", List.of("year", "leap-year", "month31", "month30", "day28", "day30", "day31")),
            Map.entry("uuid", List.of("hex")),
            Map.entry("email", List.of("email-atom", "label", "tld")));

    private final Object root;
    private final Map<String, String> rules = new LinkedHashMap<>();
    private final Set<String> primitivesUsed = new LinkedHashSet<>();
    private final Map<String, String> refRules = new HashMap<>();
    private final Map<String, Integer> nameCounts = new HashMap<>();
    private final Map<String, String> characterRules = new HashMap<>();

    private JsonSchemaConverter(Object root) {
        this.root = root;
    }

    /// GBNF for the schema.
    static String toGbnf(Object schema) {
        JsonSchemaConverter converter = new JsonSchemaConverter(schema);
        String top = converter.visit(schema, "root", "");
        StringBuilder out = new StringBuilder();
        out.append("root ::= ").append(top).append('\n');
        converter.rules.forEach((name, body) -> out.append(name).append(" ::= ").append(body).append('\n'));
        for (String primitive : PRIMITIVES.keySet()) {
            if (converter.primitivesUsed.contains(primitive)) {
                out.append(PRIMITIVES.get(primitive)).append('\n');
            }
        }
        return out.toString();
    }

    /// GBNF for any JSON value (`objectOnly`: any JSON object), with the same whitespace policy.
    static String anyJson(boolean objectOnly) {
        JsonSchemaConverter converter = new JsonSchemaConverter(Map.of());
        converter.use(objectOnly ? "object" : "value");
        StringBuilder out = new StringBuilder("root ::= " + (objectOnly ? "object" : "value") + "\n");
        for (String primitive : PRIMITIVES.keySet()) {
            if (converter.primitivesUsed.contains(primitive)) {
                out.append(PRIMITIVES.get(primitive)).append('\n');
            }
        }
        return out.toString();
    }

    private String use(String primitive) {
        if (primitivesUsed.add(primitive)) {
            for (String needed : NEEDS.getOrDefault(primitive, List.of())) {
                use(needed);
            }
        }
        return primitive;
    }

    /// A rule name for a new rule, unique, made of `hint`'s word characters.
    private String newRule(String hint, String body) {
        String base = hint.replaceAll("[^a-zA-Z0-9-]+", "-").replaceAll("^-+|-+$", "");
        if (base.isEmpty()) {
            base = "schema";
        }
        base = base + "-s"; // never collides with a primitive
        int n = nameCounts.merge(base, 1, Integer::sum);
        String name = n == 1 ? base : base + n;
        rules.put(name, body);
        return name;
    }

    // ---------------------------------------------------------------- schemas

    /// The GBNF expression (usually a rule name) for the values the schema at `pointer` accepts.
    private String visit(Object schemaNode, String hint, String pointer) {
        if (schemaNode instanceof Boolean b) {
            if (!b) {
                throw error(pointer, "the schema 'false' accepts no value");
            }
            return use("value");
        }
        Map<String, Object> schema = object(schemaNode, pointer);
        for (String key : schema.keySet()) {
            if (!ANNOTATIONS.contains(key) && !GENERIC.contains(key) && !OBJECT.contains(key)
                    && !ARRAY.contains(key) && !STRING.contains(key) && !NUMBER.contains(key)) {
                throw error(pointer + "/" + key, "unsupported JSON Schema keyword '" + key + "'"
                        + (key.equals("multipleOf") || key.equals("uniqueItems") || key.equals("patternProperties")
                        || key.equals("minProperties") || key.equals("maxProperties") || key.equals("not")
                        || key.equals("if") || key.equals("contains") || key.equals("propertyNames")
                        || key.equals("dependentRequired") || key.equals("dependentSchemas")
                        ? " (it has no grammar here)" : ""));
            }
        }
        if (schema.containsKey("$ref")) {
            onlyWith(schema, pointer, "$ref", Set.of("$defs", "definitions"));
            return ref(string(schema.get("$ref"), pointer + "/$ref"), pointer);
        }
        if (schema.containsKey("allOf")) {
            onlyWith(schema, pointer, "allOf", Set.of("$defs", "definitions"));
            return visit(mergeAll(list(schema.get("allOf"), pointer + "/allOf"), pointer + "/allOf"), hint, pointer);
        }
        for (String key : List.of("anyOf", "oneOf")) {
            if (schema.containsKey(key)) {
                onlyWith(schema, pointer, key, Set.of("$defs", "definitions"));
                List<Object> branches = list(schema.get(key), pointer + "/" + key);
                if (branches.isEmpty()) {
                    throw error(pointer + "/" + key, "'" + key + "' needs at least one schema");
                }
                List<String> alternatives = new ArrayList<>();
                for (int i = 0; i < branches.size(); i++) {
                    alternatives.add(visit(branches.get(i), hint + "-" + i, pointer + "/" + key + "/" + i));
                }
                return newRule(hint, String.join(" | ", alternatives));
            }
        }
        if (schema.containsKey("const") || schema.containsKey("enum")) {
            return constants(schema, hint, pointer);
        }
        List<String> types = types(schema, pointer);
        List<String> alternatives = new ArrayList<>();
        for (String type : types) {
            alternatives.add(switch (type) {
                case "object" -> objectRule(schema, hint, pointer);
                case "array" -> arrayRule(schema, hint, pointer);
                case "string" -> stringRule(schema, hint, pointer);
                case "integer" -> numberRule(schema, hint, pointer, true);
                case "number" -> numberRule(schema, hint, pointer, false);
                case "boolean" -> use("boolean");
                default -> use("null");
            });
        }
        return alternatives.size() == 1 ? alternatives.getFirst() : newRule(hint, String.join(" | ", alternatives));
    }

    /// The types a schema's values may have: its `type` (a name or a list), or, without one, the types its
    /// keywords constrain (none: any value).
    private List<String> types(Map<String, Object> schema, String pointer) {
        Object type = schema.get("type");
        List<String> types = new ArrayList<>();
        if (type == null) {
            for (String key : schema.keySet()) {
                String implied = OBJECT.contains(key) ? "object" : ARRAY.contains(key) ? "array"
                        : STRING.contains(key) ? "string" : NUMBER.contains(key) ? "number" : null;
                if (implied != null && !types.contains(implied)) {
                    types.add(implied);
                }
            }
            if (types.size() > 1) {
                throw error(pointer, "keywords of several types (" + String.join(", ", types)
                        + ") without a 'type' that says which value is meant");
            }
            if (types.isEmpty()) {
                return List.of("object", "array", "string", "number", "boolean", "null");
            }
            return types;
        }
        List<Object> names = type instanceof List<?> l ? new ArrayList<>(l) : List.of(type);
        if (names.isEmpty()) {
            throw error(pointer + "/type", "'type' is an empty list");
        }
        for (Object name : names) {
            if (!(name instanceof String s) || !TYPES.contains(s)) {
                throw error(pointer + "/type", "unknown type " + json(name) + " (known: " + String.join(", ",
                        new java.util.TreeSet<>(TYPES)) + ")");
            }
            types.add(s);
        }
        return types;
    }

    /// `const` or `enum`: the values' compact JSON texts, those of the schema's `type` if it has one.
    private String constants(Map<String, Object> schema, String hint, String pointer) {
        List<Object> values;
        if (schema.containsKey("const")) {
            if (schema.containsKey("enum")) {
                throw error(pointer, "both 'const' and 'enum'");
            }
            values = new ArrayList<>();
            values.add(schema.get("const"));
        } else {
            values = list(schema.get("enum"), pointer + "/enum");
        }
        for (String key : schema.keySet()) {
            if (!key.equals("const") && !key.equals("enum") && !key.equals("type") && !ANNOTATIONS.contains(key)
                    && !key.equals("$defs") && !key.equals("definitions")) {
                throw error(pointer + "/" + key, "'" + key + "' next to '" + (schema.containsKey("const")
                        ? "const" : "enum") + "' is not supported (list only the values that satisfy it)");
            }
        }
        List<String> types = schema.containsKey("type") ? types(schema, pointer) : null;
        List<String> literals = new ArrayList<>();
        for (Object value : values) {
            if (types == null || types.contains(typeOf(value))
                    || typeOf(value).equals("integer") && types.contains("number")) {
                literals.add(literal(json(value)));
            }
        }
        if (literals.isEmpty()) {
            throw error(pointer, "no value of 'enum'/'const' has the schema's 'type'");
        }
        return newRule(hint, String.join(" | ", literals));
    }

    private static String typeOf(Object value) {
        return switch (value) {
            case null -> "null";
            case Map<?, ?> m -> "object";
            case List<?> l -> "array";
            case String s -> "string";
            case Boolean b -> "boolean";
            case Number n -> isInteger(n) ? "integer" : "number";
            default -> "unknown";
        };
    }

    private static boolean isInteger(Number n) {
        BigDecimal d = decimal(n);
        return d != null && d.stripTrailingZeros().scale() <= 0;
    }

    // ---------------------------------------------------------------- objects

    /// Properties in declaration order, the required ones always, the optional ones possibly left out; then,
    /// unless `additionalProperties` is false, any number of other keys (not one of the declared names).
    private String objectRule(Map<String, Object> schema, String hint, String pointer) {
        Map<String, Object> properties = schema.containsKey("properties")
                ? object(schema.get("properties"), pointer + "/properties") : Map.of();
        Set<String> required = new LinkedHashSet<>();
        if (schema.containsKey("required")) {
            for (Object name : list(schema.get("required"), pointer + "/required")) {
                required.add(string(name, pointer + "/required"));
            }
        }
        Object additional = schema.getOrDefault("additionalProperties", Boolean.TRUE);
        if (!(additional instanceof Boolean) && !(additional instanceof Map)) {
            throw error(pointer + "/additionalProperties", "must be true, false or a schema");
        }
        boolean extra = !Boolean.FALSE.equals(additional);
        Map<String, Object> all = new LinkedHashMap<>(properties);
        for (String name : required) {
            if (!all.containsKey(name)) {
                if (!extra) {
                    throw error(pointer + "/required", "'" + name + "' is required but not among the properties, "
                            + "and additionalProperties is false");
                }
                all.put(name, additional);
            }
        }
        use("ws");
        List<String> names = new ArrayList<>(all.keySet());
        List<String> members = new ArrayList<>();
        for (String name : names) {
            String value = visit(all.get(name), hint + "-" + name, pointer + "/properties/" + escapePointer(name));
            members.add(literal(json(name)) + " ws \":\" ws " + value + " ws");
        }
        String extraMember = null;
        if (extra) {
            String value = visit(additional, hint + "-additional", pointer + "/additionalProperties");
            extraMember = newRule(hint + "-additional-kv",
                    otherKey(names, hint) + " ws \":\" ws " + value + " ws");
        }
        // rest(i, after): properties i.. where `after` says whether one was written (so a comma comes first)
        String[][] rest = new String[names.size() + 1][2];
        for (int after = 0; after < 2; after++) {
            rest[names.size()][after] = extraMember == null ? null
                    : newRule(hint + "-rest", after == 1 ? "( \",\" ws " + extraMember + " )*"
                    : "( " + extraMember + " ( \",\" ws " + extraMember + " )* )?");
        }
        for (int i = names.size() - 1; i >= 0; i--) {
            for (int after = 0; after < 2; after++) {
                String comma = after == 1 ? "\",\" ws " : "";
                String next = rest[i + 1][1];
                String present = comma + members.get(i) + (next == null ? "" : " " + next);
                String body;
                if (required.contains(names.get(i))) {
                    body = present;
                } else {
                    String skipped = rest[i + 1][after];
                    body = present + " | " + (skipped == null ? "\"\"" : skipped); // "": nothing
                }
                rest[i][after] = newRule(hint + "-rest", body);
            }
        }
        String inside = rest[0][0];
        return newRule(hint, "\"{\" ws " + (inside == null ? "" : inside + " ") + "\"}\"");
    }

    /// A JSON string key that is none of `names`, written without escapes (so its text is its value): a trie
    /// of the names, leaving it at any character that no name continues with, or ending where no name ends.
    private String otherKey(List<String> names, String hint) {
        use("string");
        if (names.isEmpty()) {
            return "\"\\\"\" [^\"\\\\\\x00-\\x1F]* \"\\\"\"";
        }
        return "\"\\\"\" " + notAmong(names.stream().map(s -> s.codePoints().toArray()).toList(), 0, hint)
                + " \"\\\"\"";
    }

    private String notAmong(List<int[]> names, int depth, String hint) {
        String free = "[^\"\\\\\\x00-\\x1F]*";
        TreeMap<Integer, List<int[]>> byNext = new TreeMap<>();
        boolean endsHere = false;
        for (int[] name : names) {
            if (name.length == depth) {
                endsHere = true;
            } else {
                byNext.computeIfAbsent(name[depth], k -> new ArrayList<>()).add(name);
            }
        }
        List<String> alternatives = new ArrayList<>();
        if (!endsHere) {
            alternatives.add("\"\"");
        }
        int[] continuing = new int[2 * byNext.size()];
        int k = 0;
        for (int c : byNext.keySet()) {
            continuing[k++] = c;
            continuing[k++] = c;
        }
        int[] other = Ranges.minus(Ranges.complement(Ranges.normalize(continuing)),
                new int[] {0, 0x1F, '"', '"', '\\', '\\'});
        if (!Ranges.isEmpty(other)) {
            alternatives.add(charClass(other) + " " + free);
        }
        for (Map.Entry<Integer, List<int[]>> e : byNext.entrySet()) {
            int c = e.getKey();
            if (c < 0x20 || c == '"' || c == '\\') {
                continue; // such a name is written with an escape, which other keys never use
            }
            alternatives.add(charClass(new int[] {c, c}) + " " + notAmong(e.getValue(), depth + 1, hint));
        }
        return newRule(hint + "-key", String.join(" | ", alternatives));
    }

    // ---------------------------------------------------------------- arrays

    /// `prefixItems` then `items`, between `minItems` and `maxItems` elements. Elements past `minItems` are
    /// optional one after the other, so a bounded array is a bounded grammar.
    private String arrayRule(Map<String, Object> schema, String hint, String pointer) {
        List<Object> prefix = schema.containsKey("prefixItems")
                ? list(schema.get("prefixItems"), pointer + "/prefixItems") : List.of();
        Object items = schema.getOrDefault("items", Boolean.TRUE);
        if (items instanceof List) {
            throw error(pointer + "/items", "'items' as a list is the draft-07 form of 'prefixItems'; use "
                    + "'prefixItems'");
        }
        int minItems = count(schema, "minItems", pointer, 0);
        int maxItems = count(schema, "maxItems", pointer, -1);
        if (maxItems >= 0 && maxItems < minItems) {
            throw error(pointer + "/maxItems", "maxItems " + maxItems + " is below minItems " + minItems);
        }
        boolean more = !Boolean.FALSE.equals(items);
        int max = more ? maxItems : maxItems < 0 ? prefix.size() : Math.min(maxItems, prefix.size());
        if (max >= 0 && minItems > max) {
            throw error(pointer + "/minItems", "minItems " + minItems + " needs more than the " + prefix.size()
                    + " prefixItems, and items is false");
        }
        use("ws");
        List<String> elements = new ArrayList<>();
        for (int i = 0; i < prefix.size(); i++) {
            elements.add(visit(prefix.get(i), hint + "-" + i, pointer + "/prefixItems/" + i));
        }
        String item = more ? visit(items, hint + "-item", pointer + "/items") : null;
        String inside = max == 0 ? "" : element(0, elements, item) + " ws " + arrayTail(1, elements, item,
                minItems, max);
        if (minItems == 0 && !inside.isEmpty()) {
            inside = "( " + inside.strip() + " )?";
        }
        return newRule(hint, "\"[\" ws " + (inside.isBlank() ? "" : inside.strip() + " ") + "\"]\"");
    }

    private static String element(int i, List<String> prefix, String item) {
        return i < prefix.size() ? prefix.get(i) : item;
    }

    /// What may follow element `i - 1`: the required elements up to `minItems` in a row, then the optional ones
    /// each inside the one before (`( "," x ( "," y )? )?`), then the repeated `item`. Built in one pass (a large
    /// `minItems` is a long sequence, not a deep recursion).
    private static String arrayTail(int i, List<String> prefix, String item, int minItems, int max) {
        int end = Math.max(prefix.size(), minItems); // from here on, elements are all `item` and all optional
        if (max >= 0) {
            end = Math.min(end, max);
        }
        StringBuilder out = new StringBuilder();
        int k = i;
        for (; k < Math.min(minItems, end); k++) {
            out.append("\",\" ws ").append(element(k, prefix, item)).append(" ws ");
        }
        int opened = 0;
        for (; k < end; k++, opened++) {
            out.append("( \",\" ws ").append(element(k, prefix, item)).append(" ws ");
        }
        int from = Math.max(i, end); // the index of the first repeated item
        if (max < 0 || from < max) {
            out.append("( \",\" ws ").append(item).append(" ws )").append(max < 0 ? "*" : "{0," + (max - from) + "}");
        }
        out.append(" )?".repeat(opened));
        return out.toString().strip();
    }

    private int count(Map<String, Object> schema, String key, String pointer, int absent) {
        if (!schema.containsKey(key)) {
            return absent;
        }
        Object v = schema.get(key);
        if (!(v instanceof Number n) || !isInteger(n) || decimal(n).signum() < 0
                || decimal(n).compareTo(BigDecimal.valueOf(RuleSet.MAX_REPEAT)) > 0) {
            throw error(pointer + "/" + key, "'" + key + "' must be an integer from 0 to " + RuleSet.MAX_REPEAT
                    + ", got " + json(v));
        }
        return n.intValue();
    }

    // ---------------------------------------------------------------- strings

    private String stringRule(Map<String, Object> schema, String hint, String pointer) {
        int minLength = count(schema, "minLength", pointer, 0);
        int maxLength = count(schema, "maxLength", pointer, -1);
        if (maxLength >= 0 && maxLength < minLength) {
            throw error(pointer + "/maxLength", "maxLength " + maxLength + " is below minLength " + minLength);
        }
        boolean lengths = schema.containsKey("minLength") || schema.containsKey("maxLength");
        if (schema.containsKey("pattern")) {
            if (lengths || schema.containsKey("format")) {
                throw error(pointer + "/pattern", "'pattern' together with "
                        + (lengths ? "minLength/maxLength" : "'format'") + " is not supported (put the length in "
                        + "the pattern)");
            }
            String pattern = string(schema.get("pattern"), pointer + "/pattern");
            return newRule(hint, "\"\\\"\" " + RegexConverter.convert(pattern, pointer + "/pattern", this::jsonCharacters,
                    use("char")) + " \"\\\"\"");
        }
        if (schema.containsKey("format")) {
            String format = string(schema.get("format"), pointer + "/format");
            if (lengths) {
                throw error(pointer + "/format", "'format' together with minLength/maxLength is not supported");
            }
            String rule = switch (format) {
                case "date" -> use("date");
                case "time" -> use("time");
                case "date-time" -> {
                    use("date");
                    use("time");
                    yield "date \"T\" time";
                }
                case "uuid" -> use("uuid");
                case "email" -> use("email");
                default -> throw error(pointer + "/format", "unsupported format '" + format
                        + "' (supported: date, time, date-time, uuid, email)");
            };
            return newRule(hint, "\"\\\"\" " + rule + " \"\\\"\"");
        }
        if (!lengths) {
            return use("string");
        }
        use("char");
        return newRule(hint, "\"\\\"\" char{" + minLength + "," + (maxLength < 0 ? "" : maxLength) + "} \"\\\"\"");
    }

    /// A rule for the JSON spellings of a set of characters inside a string: the characters themselves, except
    /// `"`, `\` and the controls U+0000-001F, which JSON writes as escapes (`\"`, `\\`, `\n`, `\u0001`).
    private String jsonCharacters(int[] ranges) {
        String key = java.util.Arrays.toString(ranges);
        String known = characterRules.get(key);
        if (known != null) {
            return known;
        }
        List<String> alternatives = new ArrayList<>();
        int[] plain = Ranges.minus(ranges, new int[] {0, 0x1F, '"', '"', '\\', '\\'});
        if (!Ranges.isEmpty(plain)) {
            alternatives.add(charClass(plain));
        }
        if (Ranges.contains(ranges, '"')) {
            alternatives.add(literal("\\\""));
        }
        if (Ranges.contains(ranges, '\\')) {
            alternatives.add(literal("\\\\"));
        }
        for (int c = 0; c < 0x20; c++) {
            if (Ranges.contains(ranges, c)) {
                alternatives.add(literal(switch (c) {
                    case '\b' -> "\\b";
                    case '\f' -> "\\f";
                    case '\n' -> "\\n";
                    case '\r' -> "\\r";
                    case '\t' -> "\\t";
                    default -> String.format("\\u%04x", c);
                }));
            }
        }
        String rule = alternatives.size() == 1 && plain.length > 0 ? alternatives.getFirst()
                : newRule("chars", String.join(" | ", alternatives));
        characterRules.put(key, rule);
        return rule;
    }

    // ---------------------------------------------------------------- numbers

    /// Numbers and integers, with bounds. An integer in `[min, max]` is spelled digit by digit (the classic
    /// range-to-pattern construction); a bounded number is such an integer or a decimal whose integer part
    /// keeps it strictly inside the bounds (no exponent). Unbounded sides stop at 16 digits.
    private String numberRule(Map<String, Object> schema, String hint, String pointer, boolean integer) {
        boolean bounded = NUMBER.stream().anyMatch(schema::containsKey);
        if (!bounded) {
            return use(integer ? "integer" : "number");
        }
        BigDecimal lo = bound(schema, "minimum", pointer), hi = bound(schema, "maximum", pointer);
        BigDecimal xlo = bound(schema, "exclusiveMinimum", pointer), xhi = bound(schema, "exclusiveMaximum", pointer);
        // integer bounds, inclusive: the smallest and largest integers allowed
        BigInteger intLo = null, intHi = null;
        if (lo != null) {
            intLo = lo.setScale(0, RoundingMode.CEILING).toBigInteger();
        }
        if (xlo != null) {
            BigInteger x = xlo.setScale(0, RoundingMode.FLOOR).toBigInteger().add(BigInteger.ONE);
            intLo = intLo == null ? x : intLo.max(x);
        }
        if (hi != null) {
            intHi = hi.setScale(0, RoundingMode.FLOOR).toBigInteger();
        }
        if (xhi != null) {
            BigInteger x = xhi.setScale(0, RoundingMode.CEILING).toBigInteger().subtract(BigInteger.ONE);
            intHi = intHi == null ? x : intHi.min(x);
        }
        BigInteger floor = MAX_INTEGER.negate();
        BigInteger a = intLo == null ? floor : intLo.max(floor), b = intHi == null ? MAX_INTEGER : intHi.min(MAX_INTEGER);
        List<String> alternatives = new ArrayList<>();
        if (a.compareTo(b) <= 0) {
            alternatives.add(integerRange(a, b));
        }
        if (!integer) {
            // decimals m.f (f nonzero) lie strictly between m and m + 1: need lower <= m and m + 1 <= upper,
            // where lower/upper are the (real) bounds rounded inwards to integers
            BigInteger lower = ceil(lo, xlo), upper = floorOf(hi, xhi);
            BigInteger mLo = lower == null ? BigInteger.ZERO : lower.max(BigInteger.ZERO);
            BigInteger mHi = (upper == null ? MAX_INTEGER.add(BigInteger.ONE) : upper).subtract(BigInteger.ONE)
                    .min(MAX_INTEGER);
            use("fraction");
            if (mLo.compareTo(mHi) <= 0) {
                alternatives.add(integerRange(mLo, mHi) + " fraction");
            }
            // negative: -(m.f) lies in (-(m+1), -m): need -(m+1) >= lower and -m <= upper
            BigInteger nLo = (upper == null ? BigInteger.ZERO : upper.negate().max(BigInteger.ZERO));
            BigInteger nHi = (lower == null ? MAX_INTEGER.add(BigInteger.ONE) : lower.negate()).subtract(BigInteger.ONE)
                    .min(MAX_INTEGER);
            if (nLo.compareTo(nHi) <= 0) {
                alternatives.add("\"-\" " + integerRange(nLo, nHi) + " fraction");
            }
        }
        if (alternatives.isEmpty()) {
            throw error(pointer, "no " + (integer ? "integer" : "number") + " satisfies the bounds"
                    + (intLo != null && intLo.abs().compareTo(MAX_INTEGER) > 0 || intHi != null
                    && intHi.abs().compareTo(MAX_INTEGER) > 0 ? " within " + MAX_DIGITS + " digits" : ""));
        }
        return newRule(hint, String.join(" | ", alternatives));
    }

    private static BigInteger ceil(BigDecimal inclusive, BigDecimal exclusive) {
        BigDecimal v = inclusive == null ? exclusive : exclusive == null ? inclusive : inclusive.max(exclusive);
        return v == null ? null : v.setScale(0, RoundingMode.CEILING).toBigInteger();
    }

    private static BigInteger floorOf(BigDecimal inclusive, BigDecimal exclusive) {
        BigDecimal v = inclusive == null ? exclusive : exclusive == null ? inclusive : inclusive.min(exclusive);
        return v == null ? null : v.setScale(0, RoundingMode.FLOOR).toBigInteger();
    }

    private BigDecimal bound(Map<String, Object> schema, String key, String pointer) {
        if (!schema.containsKey(key)) {
            return null;
        }
        Object v = schema.get(key);
        BigDecimal d = v instanceof Number n ? decimal(n) : null;
        if (d == null) {
            throw error(pointer + "/" + key, "'" + key + "' must be a number, got " + json(v)
                    + (v instanceof Boolean ? " (the draft-04 boolean form is not supported)" : ""));
        }
        return d;
    }

    /// Integers in `[a, b]` (at most 16 digits each side).
    static String integerRange(BigInteger a, BigInteger b) {
        List<String> alternatives = new ArrayList<>();
        if (a.signum() < 0) {
            BigInteger magnitudeLo = b.signum() < 0 ? b.negate() : BigInteger.ONE;
            alternatives.add("\"-\" " + naturalRange(magnitudeLo, a.negate()));
        }
        if (b.signum() >= 0) {
            alternatives.add(naturalRange(a.max(BigInteger.ZERO), b));
        }
        return alternatives.size() == 1 ? alternatives.getFirst() : "( " + String.join(" | ", alternatives) + " )";
    }

    /// Non-negative integers in `[a, b]`, without leading zeros: split by digit count, then digit by digit.
    private static String naturalRange(BigInteger a, BigInteger b) {
        List<String> alternatives = new ArrayList<>();
        String as = a.toString(), bs = b.toString();
        for (int length = as.length(); length <= bs.length(); length++) {
            String lo = length == as.length() ? as : "1" + "0".repeat(length - 1);
            String hi = length == bs.length() ? bs : "9".repeat(length);
            alternatives.add(sameLength(lo, hi));
        }
        return alternatives.size() == 1 ? alternatives.getFirst() : "( " + String.join(" | ", alternatives) + " )";
    }

    /// Digit strings of one length from `lo` to `hi`.
    private static String sameLength(String lo, String hi) {
        if (lo.isEmpty()) {
            return "";
        }
        if (lo.equals(hi)) {
            return "\"" + lo + "\"";
        }
        char a = lo.charAt(0), b = hi.charAt(0);
        String loRest = lo.substring(1), hiRest = hi.substring(1);
        int r = loRest.length();
        if (a == b) {
            return "\"" + a + "\" " + sameLength(loRest, hiRest);
        }
        String anyRest = r == 0 ? "" : " [0-9]{" + r + "}";
        boolean loZeros = loRest.chars().allMatch(c -> c == '0'), hiNines = hiRest.chars().allMatch(c -> c == '9');
        List<String> alternatives = new ArrayList<>();
        char first = a, last = b;
        if (!loZeros) {
            alternatives.add("\"" + a + "\" " + sameLength(loRest, "9".repeat(r)));
            first++;
        }
        if (first <= (hiNines ? last : (char) (last - 1))) {
            char end = hiNines ? last : (char) (last - 1);
            alternatives.add((first == end ? "\"" + first + "\"" : "[" + first + "-" + end + "]") + anyRest);
        }
        if (!hiNines) {
            alternatives.add("\"" + b + "\" " + sameLength("0".repeat(r), hiRest));
        }
        return alternatives.size() == 1 ? alternatives.getFirst() : "( " + String.join(" | ", alternatives) + " )";
    }

    // ---------------------------------------------------------------- references and allOf

    private String ref(String ref, String pointer) {
        String known = refRules.get(ref);
        if (known != null) {
            return known;
        }
        if (!ref.startsWith("#")) {
            throw error(pointer + "/$ref", "only local references (#/...) are supported, got '" + ref + "'");
        }
        Object target = resolve(ref, pointer);
        String hint = ref.substring(ref.lastIndexOf('/') + 1);
        // the rule is named before its body exists, so that the target may refer back to itself
        String name = newRule(hint.isEmpty() ? "root-ref" : hint, "");
        refRules.put(ref, name);
        String body = visit(target, hint + "-def", ref.substring(1));
        rules.put(name, body);
        return name;
    }

    private Object resolve(String ref, String pointer) {
        Object node = root;
        String path = ref.substring(1);
        if (path.isEmpty()) {
            return node;
        }
        if (!path.startsWith("/")) {
            throw error(pointer + "/$ref", "'" + ref + "' is not a JSON pointer (#/...)");
        }
        for (String part : path.substring(1).split("/", -1)) {
            String key = percentDecoded(part, pointer, ref).replace("~1", "/").replace("~0", "~");
            if (node instanceof Map<?, ?> m && m.containsKey(key)) {
                node = m.get(key);
            } else if (node instanceof List<?> l && key.matches("\\d{1,9}") && Integer.parseInt(key) < l.size()) {
                node = l.get(Integer.parseInt(key));
            } else {
                throw error(pointer + "/$ref", "'" + ref + "' points to nothing");
            }
        }
        return node;
    }

    /// A `$ref` fragment is a URI fragment: `%XX` escapes are UTF-8 bytes (and `+` is a plus, unlike in forms).
    /// Decoded here rather than with `java.net`'s form decoder, which the engine does not use (no networking API).
    private static String percentDecoded(String part, String pointer, String ref) {
        if (part.indexOf('%') < 0) {
            return part;
        }
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < part.length(); ) {
            int c = part.codePointAt(i);
            if (c != '%') {
                bytes.writeBytes(Character.toString(c).getBytes(java.nio.charset.StandardCharsets.UTF_8));
                i += Character.charCount(c);
                continue;
            }
            int hi = i + 2 < part.length() ? Character.digit(part.charAt(i + 1), 16) : -1;
            int lo = hi >= 0 ? Character.digit(part.charAt(i + 2), 16) : -1;
            if (lo < 0) {
                throw error(pointer + "/$ref", "'" + ref + "' has a malformed %-escape");
            }
            bytes.write(hi * 16 + lo);
            i += 3;
        }
        return bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    /// `allOf` as one schema: the members' keywords merged, where they do not conflict. References are followed;
    /// properties and required lists are joined, equal keywords kept, different ones refused.
    private Map<String, Object> mergeAll(List<Object> members, String pointer) {
        Map<String, Object> merged = new LinkedHashMap<>();
        for (int i = 0; i < members.size(); i++) {
            String at = pointer + "/" + i;
            Object member = members.get(i);
            Set<String> seen = new HashSet<>();
            while (member instanceof Map<?, ?> m && m.containsKey("$ref")) {
                String ref = string(m.get("$ref"), at + "/$ref");
                if (!seen.add(ref) || !ref.startsWith("#")) {
                    throw error(at + "/$ref", "'allOf' can only merge local, non-recursive references");
                }
                onlyWith(object(member, at), at, "$ref", Set.of());
                member = resolve(ref, at);
            }
            Map<String, Object> schema = object(member, at);
            if (schema.containsKey("allOf")) {
                schema = new LinkedHashMap<>(schema);
                Map<String, Object> inner = mergeAll(list(schema.remove("allOf"), at + "/allOf"), at + "/allOf");
                schema = mergeTwo(schema, inner, at);
            }
            merged = mergeTwo(merged, schema, at);
        }
        return merged;
    }

    private Map<String, Object> mergeTwo(Map<String, Object> a, Map<String, Object> b, String pointer) {
        Map<String, Object> out = new LinkedHashMap<>(a);
        for (Map.Entry<String, Object> e : b.entrySet()) {
            String key = e.getKey();
            Object value = e.getValue();
            if (ANNOTATIONS.contains(key)) {
                continue;
            }
            if (!out.containsKey(key)) {
                out.put(key, value);
            } else if (key.equals("properties")) {
                Map<String, Object> properties = new LinkedHashMap<>(object(out.get(key), pointer));
                for (Map.Entry<String, Object> p : object(value, pointer + "/properties").entrySet()) {
                    Object previous = properties.putIfAbsent(p.getKey(), p.getValue());
                    if (previous != null && !previous.equals(p.getValue())) {
                        throw error(pointer + "/properties/" + escapePointer(p.getKey()), "'allOf' gives property '"
                                + p.getKey() + "' two different schemas, which cannot be merged simply");
                    }
                }
                out.put(key, properties);
            } else if (key.equals("required")) {
                Set<Object> required = new LinkedHashSet<>(list(out.get(key), pointer));
                required.addAll(list(value, pointer + "/required"));
                out.put(key, new ArrayList<>(required));
            } else if (!Objects.equals(out.get(key), value)) {
                throw error(pointer + "/" + key, "'allOf' members disagree on '" + key
                        + "', which cannot be merged simply");
            }
        }
        return out;
    }

    private void onlyWith(Map<String, Object> schema, String pointer, String keyword, Set<String> allowed) {
        for (String key : schema.keySet()) {
            if (!key.equals(keyword) && !allowed.contains(key) && !ANNOTATIONS.contains(key)) {
                throw error(pointer + "/" + key, "'" + key + "' next to '" + keyword + "' is not supported "
                        + "(move it into the " + (keyword.equals("$ref") ? "referenced schema" : "branches") + ")");
            }
        }
    }

    // ---------------------------------------------------------------- JSON helpers

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object node, String pointer) {
        if (node instanceof Map<?, ?> m) {
            for (Object key : m.keySet()) {
                if (!(key instanceof String)) {
                    throw error(pointer, "object keys must be strings");
                }
            }
            return (Map<String, Object>) m;
        }
        throw error(pointer, "expected a schema object, got " + json(node));
    }

    private static List<Object> list(Object node, String pointer) {
        if (node instanceof List<?> l) {
            return new ArrayList<>(l);
        }
        throw error(pointer, "expected an array, got " + json(node));
    }

    private static String string(Object node, String pointer) {
        if (node instanceof String s) {
            return s;
        }
        throw error(pointer, "expected a string, got " + json(node));
    }

    static BigDecimal decimal(Number n) {
        return switch (n) {
            case BigDecimal d -> d;
            case BigInteger i -> new BigDecimal(i);
            case Long l -> BigDecimal.valueOf(l);
            case Integer i -> BigDecimal.valueOf(i);
            case Short s -> BigDecimal.valueOf(s);
            case Byte b -> BigDecimal.valueOf(b);
            default -> Double.isFinite(n.doubleValue()) ? new BigDecimal(Double.toString(n.doubleValue())) : null;
        };
    }

    /// Compact JSON text of a parsed value (for `enum`/`const` literals and messages).
    static String json(Object value) {
        StringBuilder sb = new StringBuilder();
        writeJson(value, sb);
        return sb.toString();
    }

    private static void writeJson(Object value, StringBuilder sb) {
        switch (value) {
            case null -> sb.append("null");
            case String s -> JsonReader.quote(s, sb);
            case Boolean b -> sb.append(b);
            case Number n -> {
                BigDecimal d = decimal(n);
                if (d == null) {
                    throw new GrammarException("a schema value is not a finite number: " + n);
                }
                sb.append(n instanceof Double || n instanceof Float ? d.stripTrailingZeros().toString()
                        .replace("E+", "E") : d.toString());
            }
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    sb.append(first ? "" : ",");
                    first = false;
                    JsonReader.quote(String.valueOf(e.getKey()), sb);
                    sb.append(':');
                    writeJson(e.getValue(), sb);
                }
                sb.append('}');
            }
            case Collection<?> c -> {
                sb.append('[');
                boolean first = true;
                for (Object o : c) {
                    sb.append(first ? "" : ",");
                    first = false;
                    writeJson(o, sb);
                }
                sb.append(']');
            }
            default -> throw new GrammarException("a schema holds a " + value.getClass().getSimpleName()
                    + ", which is not a JSON value");
        }
    }

    /// A GBNF literal matching exactly `text`.
    static String literal(String text) {
        StringBuilder sb = new StringBuilder("\"");
        text.codePoints().forEach(c -> {
            if (c == '"' || c == '\\') {
                sb.append('\\').appendCodePoint(c);
            } else if (c < 0x20 || c == 0x7F) {
                sb.append(String.format("\\x%02X", c));
            } else {
                sb.appendCodePoint(c);
            }
        });
        return sb.append('"').toString();
    }

    /// A GBNF character class for ranges of code points.
    static String charClass(int[] ranges) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < ranges.length; i += 2) {
            classChar(ranges[i], sb);
            if (ranges[i + 1] != ranges[i]) {
                sb.append('-');
                classChar(ranges[i + 1], sb);
            }
        }
        return sb.append(']').toString();
    }

    private static void classChar(int c, StringBuilder sb) {
        if (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
            sb.append((char) c);
        } else if (c <= 0xFF) {
            sb.append(String.format("\\x%02X", c));
        } else if (c <= 0xFFFF) {
            sb.append(String.format("\\u%04X", c));
        } else {
            sb.append(String.format("\\U%08X", c));
        }
    }

    private static String escapePointer(String name) {
        return name.replace("~", "~0").replace("/", "~1");
    }

    static GrammarException error(String pointer, String message) {
        return new GrammarException("schema " + (pointer.isEmpty() ? "(root)" : pointer) + ": " + message);
    }
}
