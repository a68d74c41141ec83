package dev.llamaj.engine.tools;

import java.util.List;

/// How a family of models writes tool calls, and so how its output is parsed back into [ToolCall]s.
///
/// The format is read off the chat template ([#detect]): the templates of models trained for tools show the
/// model how to call, in the text they write around the tool list.
public enum ToolFormat {
    /// Llama 3.1, 3.2 and 3.3: a JSON object `{"name": ..., "parameters": {...}}`, usually the whole answer
    /// (after `<|python_tag|>` when the model writes it, which is a control token and so not part of the text);
    /// found anywhere, as llama.cpp does, since the tag leaves no trace in the text.
    LLAMA3(List.of("<|python_tag|>"), List.of("{\"name\"", "{\"type\"", "{\"parameters\""),
            List.of("{\"name\"")),
    /// Qwen 2.5, Qwen 3, Hermes 2 and 3 (and other ChatML models trained the Hermes way): each call is
    /// `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, anywhere in the answer, several for parallel
    /// calls.
    HERMES(List.of("<tool_call>"), List.of("{\"name\""), List.of()),
    /// Mistral v0.3, Nemo, Small (before 3.1): `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.
    /// `[TOOL_CALLS]` is a control token, so the text may start with the bare array.
    MISTRAL(List.of("[TOOL_CALLS]"), List.of("[{\"name\""), List.of()),
    /// Newer Mistral templates (Magistral, Mistral Small 3.2, Ministral 3, Devstral):
    /// `[TOOL_CALLS]name[ARGS]{...}`, repeated for parallel calls.
    MISTRAL_NAME_ARGS(List.of("[TOOL_CALLS]"), List.of(), List.of()),
    /// Templates that know nothing of tools: the tool list goes into a system message written here, with the
    /// instruction to answer with `{"name": ..., "arguments": {...}}` (or an array of those) and nothing else.
    GENERIC(List.of(), List.of("{\"name\"", "{\"arguments\"", "[{\"name\""), List.of());

    /// Texts that start a call wherever they appear in the answer.
    final List<String> triggers;
    /// How an answer that is a call starts, whitespace left out (a call may only start the answer this way).
    final List<String> starts;
    /// Texts that begin a call object wherever they appear (the object starts with them).
    final List<String> objectStarts;

    ToolFormat(List<String> triggers, List<String> starts, List<String> objectStarts) {
        this.triggers = triggers;
        this.starts = starts;
        this.objectStarts = objectStarts;
    }

    /// The format a chat template shows its model, from the template's text: `<tool_call>` (Hermes, Qwen),
    /// `[TOOL_CALLS]` (Mistral; with `[ARGS]`, the newer form), Llama 3's headers with a `tools` list, else
    /// [#GENERIC].
    public static ToolFormat detect(String templateSource) {
        if (templateSource == null) {
            return GENERIC;
        }
        if (templateSource.contains("<tool_call>")) {
            return HERMES;
        }
        if (templateSource.contains("[TOOL_CALLS]")) {
            return templateSource.contains("[ARGS]") ? MISTRAL_NAME_ARGS : MISTRAL;
        }
        if (templateSource.contains("<|start_header_id|>") && templateSource.contains("tools")
                && (templateSource.contains("\"parameters\"") || templateSource.contains("<|python_tag|>"))) {
            return LLAMA3;
        }
        return GENERIC;
    }

    /// Whether the template shows the tools itself (else they go into a system message, see [#GENERIC]).
    public boolean templateRendersTools() {
        return this != GENERIC;
    }

    /// Whether the model may call several functions in one answer.
    public boolean allowsParallelCalls() {
        // Llama 3.1's template refuses a turn with more than one call
        return this != LLAMA3;
    }

    /// Whether call ids must be 9 letters and digits (Mistral's templates refuse any other).
    boolean shortIds() {
        return this == MISTRAL || this == MISTRAL_NAME_ARGS;
    }
}
