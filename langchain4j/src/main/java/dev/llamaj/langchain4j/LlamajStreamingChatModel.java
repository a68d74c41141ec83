package dev.llamaj.langchain4j;

import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/// A LangChain4j [StreamingChatModel] over the in-process llamaj engine: the answer's text reaches
/// `onPartialResponse` as it is generated (whole UTF-8 characters; text that could begin a stop sequence is held
/// back until decided), then `onCompleteResponse` gets the whole response.
///
/// `chat` returns at once: each request runs on a platform thread of this model's (generation is CPU work, which
/// does not belong on the caller's thread or a virtual thread), and its handler is called there. Otherwise as
/// [LlamajChatModel].
public final class LlamajStreamingChatModel implements StreamingChatModel, AutoCloseable {
    private final InProcessChat chat;
    private final ExecutorService executor = Executors.newThreadPerTaskExecutor(
            Thread.ofPlatform().name("llamaj-langchain4j-", 0).daemon(true).factory());

    private LlamajStreamingChatModel(InProcessChat chat) {
        this.chat = chat;
    }

    public static Builder builder() {
        return new Builder();
    }

    /// Builds a [LlamajStreamingChatModel]; see [LlamajChatBuilder] for the settings.
    public static final class Builder extends LlamajChatBuilder<Builder> {
        private Builder() {}

        /// Loads the model (if given by path) and checks the settings.
        ///
        /// @throws IllegalArgumentException for a bad setting or a model file that cannot be loaded
        public LlamajStreamingChatModel build() {
            return new LlamajStreamingChatModel(buildChat());
        }
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        executor.execute(() -> {
            ChatResponse response;
            try {
                response = chat.chat(request, handler::onPartialResponse);
            } catch (Throwable t) {
                handler.onError(t);
                return;
            }
            handler.onCompleteResponse(response);
        });
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

    /// Waits for requests in progress to finish, then frees the sessions (and the model, if it loaded it).
    @Override
    public void close() {
        executor.close();
        chat.close();
    }
}
