package dev.llamaj.langchain4j;

import dev.langchain4j.model.chat.request.json.JsonAnyOfSchema;
import dev.langchain4j.model.chat.request.json.JsonArraySchema;
import dev.langchain4j.model.chat.request.json.JsonBooleanSchema;
import dev.langchain4j.model.chat.request.json.JsonEnumSchema;
import dev.langchain4j.model.chat.request.json.JsonIntegerSchema;
import dev.langchain4j.model.chat.request.json.JsonNullSchema;
import dev.langchain4j.model.chat.request.json.JsonNumberSchema;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonRawSchema;
import dev.langchain4j.model.chat.request.json.JsonReferenceSchema;
import dev.langchain4j.model.chat.request.json.JsonSchemaElement;
import dev.langchain4j.model.chat.request.json.JsonStringSchema;
import dev.langchain4j.exception.UnsupportedFeatureException;
import java.util.List;
import java.util.Map;

/// A LangChain4j schema tree written as JSON Schema text, for the engine's grammar.
///
/// Objects get `additionalProperties: false` unless the schema says `true`: what the grammar generates is then
/// the declared properties only (JSON Schema's own default, any other property, would let a model write keys
/// and values without end). With `requireAll`, every property is required, as OpenAI's strict mode has it: for
/// structured outputs, where LangChain4j describes a record or class without a `required` list but wants all of
/// it back. Raw schemas (`JsonRawSchema`) are copied as they are.
final class SchemaText {
    private SchemaText() {}

    static String of(JsonSchemaElement element, boolean requireAll) {
        StringBuilder sb = new StringBuilder();
        write(element, requireAll, sb);
        return sb.toString();
    }

    private static void write(JsonSchemaElement e, boolean requireAll, StringBuilder sb) {
        switch (e) {
            case JsonObjectSchema o -> {
                sb.append("{\"type\":\"object\"");
                description(o.description(), sb);
                Map<String, JsonSchemaElement> properties = o.properties() != null ? o.properties() : Map.of();
                sb.append(",\"properties\":{");
                boolean first = true;
                for (Map.Entry<String, JsonSchemaElement> p : properties.entrySet()) {
                    sb.append(first ? "" : ",");
                    first = false;
                    quote(p.getKey(), sb);
                    sb.append(':');
                    write(p.getValue(), requireAll, sb);
                }
                sb.append('}');
                List<String> required = requireAll ? List.copyOf(properties.keySet())
                        : o.required() != null ? o.required() : List.of();
                sb.append(",\"required\":");
                strings(required, sb);
                sb.append(",\"additionalProperties\":").append(Boolean.TRUE.equals(o.additionalProperties()));
                if (o.definitions() != null && !o.definitions().isEmpty()) {
                    sb.append(",\"$defs\":{");
                    first = true;
                    for (Map.Entry<String, JsonSchemaElement> d : o.definitions().entrySet()) {
                        sb.append(first ? "" : ",");
                        first = false;
                        quote(d.getKey(), sb);
                        sb.append(':');
                        write(d.getValue(), requireAll, sb);
                    }
                    sb.append('}');
                }
                sb.append('}');
            }
            case JsonStringSchema s -> simple("string", s.description(), sb);
            case JsonIntegerSchema i -> simple("integer", i.description(), sb);
            case JsonNumberSchema n -> simple("number", n.description(), sb);
            case JsonBooleanSchema b -> simple("boolean", b.description(), sb);
            case JsonNullSchema _ -> sb.append("{\"type\":\"null\"}");
            case JsonEnumSchema en -> {
                sb.append("{\"type\":\"string\"");
                description(en.description(), sb);
                sb.append(",\"enum\":");
                strings(en.enumValues(), sb);
                sb.append('}');
            }
            case JsonArraySchema a -> {
                sb.append("{\"type\":\"array\"");
                description(a.description(), sb);
                if (a.items() != null) {
                    sb.append(",\"items\":");
                    write(a.items(), requireAll, sb);
                }
                sb.append('}');
            }
            case JsonAnyOfSchema any -> {
                sb.append("{\"anyOf\":[");
                for (int i = 0; i < any.anyOf().size(); i++) {
                    sb.append(i == 0 ? "" : ",");
                    write(any.anyOf().get(i), requireAll, sb);
                }
                sb.append("]}");
            }
            case JsonReferenceSchema r -> {
                sb.append("{\"$ref\":");
                quote("#/$defs/" + r.reference(), sb);
                sb.append('}');
            }
            case JsonRawSchema raw -> sb.append(raw.schema());
            default -> throw new UnsupportedFeatureException("llamaj cannot turn a " + e.getClass().getSimpleName()
                    + " into a grammar");
        }
    }

    private static void simple(String type, String description, StringBuilder sb) {
        sb.append("{\"type\":\"").append(type).append('"');
        description(description, sb);
        sb.append('}');
    }

    private static void description(String description, StringBuilder sb) {
        if (description != null) {
            sb.append(",\"description\":");
            quote(description, sb);
        }
    }

    private static void strings(List<String> values, StringBuilder sb) {
        sb.append('[');
        for (int i = 0; i < values.size(); i++) {
            sb.append(i == 0 ? "" : ",");
            quote(values.get(i), sb);
        }
        sb.append(']');
    }

    private static void quote(String s, StringBuilder sb) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
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
