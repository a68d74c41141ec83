package dev.llamaj.engine.tools;

import java.util.Objects;

/// A call the model made: which function, with which arguments.
///
/// @param id        the call's id, which the tool's result refers to (`call_...`, or 9 letters and digits for
///                  Mistral's templates, which require that)
/// @param name      the function's name
/// @param arguments the arguments as JSON text (an object), as the model wrote them
public record ToolCall(String id, String name, String arguments) {
    public ToolCall {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
    }

    /// The arguments parsed (a `Map` for an object), for templates and callers.
    ///
    /// @throws IllegalArgumentException if they are not valid JSON
    public Object parsedArguments() {
        return JsonText.parse(arguments);
    }
}
