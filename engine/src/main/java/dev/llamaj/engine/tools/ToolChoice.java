package dev.llamaj.engine.tools;

import java.util.Objects;

/// Whether and which tool the model must call, as OpenAI's `tool_choice`.
///
/// @param mode     `AUTO` (the model decides), `NONE` (it may not call: tools are not shown to it), `REQUIRED` (it
///                 must call one or more), `FUNCTION` (it must call `function`)
/// @param function the function's name for `FUNCTION`, else null
public record ToolChoice(Mode mode, String function) {
    public enum Mode { AUTO, NONE, REQUIRED, FUNCTION }

    public static final ToolChoice AUTO = new ToolChoice(Mode.AUTO, null);
    public static final ToolChoice NONE = new ToolChoice(Mode.NONE, null);
    public static final ToolChoice REQUIRED = new ToolChoice(Mode.REQUIRED, null);

    public ToolChoice {
        Objects.requireNonNull(mode, "mode");
        if ((mode == Mode.FUNCTION) != (function != null)) {
            throw new IllegalArgumentException("a function name goes with Mode.FUNCTION, and only with it");
        }
    }

    public static ToolChoice function(String name) {
        return new ToolChoice(Mode.FUNCTION, Objects.requireNonNull(name, "name"));
    }

    /// Whether the output must start with a call.
    public boolean forced() {
        return mode == Mode.REQUIRED || mode == Mode.FUNCTION;
    }
}
