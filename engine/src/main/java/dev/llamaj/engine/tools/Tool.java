package dev.llamaj.engine.tools;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/// A function the model may call: its name, what it does, and its parameters as a JSON Schema object.
///
/// The model's own chat template shows it the tools (as OpenAI's `{"type": "function", "function": {...}}`
/// objects, which is what templates written for Hugging Face expect), and a call's arguments are checked against
/// nothing here: constraining them to the schema is the sampler's job.
///
/// @param name        `[A-Za-z0-9_-]`, 1 to 64 characters (OpenAI's rule)
/// @param description what the function does, for the model; may be null
/// @param parameters  the JSON Schema of the arguments, as parsed JSON (maps keep their order); an object
///                    schema with no properties when the function takes none
public record Tool(String name, String description, Map<String, Object> parameters) {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    public Tool {
        Objects.requireNonNull(name, "name");
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("a tool name must be 1 to 64 letters, digits, '_' or '-', got '"
                    + name + "'");
        }
        parameters = parameters == null ? emptyObjectSchema() : parameters;
    }

    /// A tool whose parameter schema is given as JSON text.
    ///
    /// @throws IllegalArgumentException if the name is not valid or `parametersJson` is not a JSON object
    public static Tool of(String name, String description, String parametersJson) {
        Object schema;
        try {
            schema = JsonText.parse(parametersJson);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("the parameters of tool '" + name + "' are not valid JSON: "
                    + e.getMessage(), e);
        }
        if (!(schema instanceof Map<?, ?> map)) {
            throw new IllegalArgumentException("the parameters of tool '" + name + "' must be a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) map;
        return new Tool(name, description, m);
    }

    /// Whether `name` is a valid tool name.
    public static boolean isValidName(String name) {
        return name != null && NAME.matcher(name).matches();
    }

    private static Map<String, Object> emptyObjectSchema() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "object");
        m.put("properties", new LinkedHashMap<>());
        return m;
    }

    /// The tool as chat templates take it: `{"type": "function", "function": {"name", "description",
    /// "parameters"}}`.
    public Map<String, Object> toTemplateValue() {
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", name);
        if (description != null) {
            function.put("description", description);
        }
        function.put("parameters", parameters);
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", function);
        return tool;
    }
}
