package dev.llamaj.engine.tools;

import dev.llamaj.template.Message;
import java.util.List;
import java.util.Objects;

/// A turn of a conversation with tools: a [Message]'s role and content, plus the calls an assistant turn made or
/// the call a `tool` turn answers.
///
/// @param role       `system`, `user`, `assistant`, `tool`...
/// @param content    the text; null for an assistant turn that only calls tools
/// @param toolCalls  the calls of an assistant turn (empty otherwise)
/// @param toolCallId for a `tool` turn, the id of the call it answers; else null
/// @param name       for a `tool` turn, the function's name if known; else null
public record ChatMessage(String role, String content, List<ToolCall> toolCalls, String toolCallId, String name) {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
    }

    public static ChatMessage of(Message m) {
        return new ChatMessage(m.role(), m.content(), List.of(), null, null);
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content, List.of(), null, null);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content, List.of(), null, null);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content, List.of(), null, null);
    }

    /// An assistant turn that called tools (with the text it wrote before them, or null).
    public static ChatMessage assistant(String content, List<ToolCall> calls) {
        return new ChatMessage("assistant", content, calls, null, null);
    }

    /// A tool's result for the call `callId` (of the function `name`, which some templates show).
    public static ChatMessage toolResult(String callId, String name, String content) {
        return new ChatMessage("tool", content, List.of(), Objects.requireNonNull(callId, "callId"), name);
    }
}
