package dev.llamaj.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;

/// A LangChain4j [ChatModel] that runs a GGUF model inside this JVM with llamaj: no server, no HTTP.
///
/// ```java
/// ChatModel model = LlamajChatModel.builder()
///         .modelPath(Path.of("Llama-3.2-1B-Instruct-Q4_0.gguf")).contextLength(4096).temperature(0.2).build();
/// String answer = model.chat("Name three JVM languages.");
/// ```
///
/// Thread-safe: up to [LlamajChatBuilder#sessions] requests run at once, the others wait. Each session keeps the
/// tokens of its last conversation, so a follow-up turn (LangChain4j's chat memory sends the whole conversation
/// again) computes only what is new. Close it to free the sessions (and the model, if it loaded it).
public final class LlamajChatModel implements ChatModel, AutoCloseable {
    private final InProcessChat chat;

    private LlamajChatModel(InProcessChat chat) {
        this.chat = chat;
    }

    public static Builder builder() {
        return new Builder();
    }

    /// Builds a [LlamajChatModel]; see [LlamajChatBuilder] for the settings.
    public static final class Builder extends LlamajChatBuilder<Builder> {
        private Builder() {}

        /// Loads the model (if given by path) and checks the settings.
        ///
        /// @throws IllegalArgumentException for a bad setting or a model file that cannot be loaded
        public LlamajChatModel build() {
            return new LlamajChatModel(buildChat());
        }
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        return chat.chat(request, _ -> {});
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return chat.defaults();
    }

    /// JSON-schema response formats are enforced by a grammar, so AiServices asks for structured outputs natively.
    @Override
    public java.util.Set<Capability> supportedCapabilities() {
        return java.util.Set.of(Capability.RESPONSE_FORMAT_JSON_SCHEMA);
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    @Override
    public void close() {
        chat.close();
    }
}
