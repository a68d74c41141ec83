package dev.llamaj.template;

import java.util.Objects;

/// One turn of a conversation, as chat templates see it: `message.role` and `message.content`.
///
/// Templates that need richer messages (tool calls, reasoning content) are rendered with
/// [ChatTemplate#render(java.util.Map)], whose `messages` may be plain maps.
///
/// @param role    `system`, `user`, `assistant`, `tool`, ... (templates decide which they accept)
/// @param content the text; `null` becomes Python's `None`, as for an assistant turn that only calls tools
public record Message(String role, String content) {
    public Message {
        Objects.requireNonNull(role, "role");
    }

    public static Message system(String content) {
        return new Message("system", content);
    }

    public static Message user(String content) {
        return new Message("user", content);
    }

    public static Message assistant(String content) {
        return new Message("assistant", content);
    }
}
