package dev.llamaj.langchain4j;

import dev.llamaj.engine.LlamaModel;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/// The settings [LlamajChatModel] and [LlamajStreamingChatModel] share: which model, how it runs, and the default
/// sampling of every request (a request's own parameters override them).
///
/// @param <B> the concrete builder, so that chained calls keep its type
public abstract class LlamajChatBuilder<B extends LlamajChatBuilder<B>> {
    Path modelPath;
    LlamaModel model;
    Integer threads;
    Integer contextLength;
    String chatTemplate;
    int sessions = 1;
    String modelName;
    Double temperature;
    Double topP;
    Integer topK;
    double minP = 0.05;
    double repeatPenalty = 1.0;
    Long seed;
    Integer maxOutputTokens;
    List<String> stopSequences = List.of();
    boolean parallelToolCalls = true;

    LlamajChatBuilder() {}

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }

    /// The GGUF file to load; the built model owns it and unmaps it on `close()`.
    public B modelPath(Path modelPath) {
        this.modelPath = Objects.requireNonNull(modelPath, "modelPath");
        return self();
    }

    /// A model already loaded, shared with other users (a chat model and an embedding model on one file); its
    /// owner closes it, after the models built on it.
    public B model(LlamaModel model) {
        this.model = Objects.requireNonNull(model, "model");
        return self();
    }

    /// Compute threads per request (with [#modelPath]; default: the available processors).
    public B threads(int threads) {
        this.threads = threads;
        return self();
    }

    /// Tokens of context (conversation and answer) per session; default: the model's, at most 4096.
    public B contextLength(int contextLength) {
        this.contextLength = contextLength;
        return self();
    }

    /// A built-in template (`chatml`, `llama3`, `plain`) or the Jinja source of one; default: the model's own.
    public B chatTemplate(String chatTemplate) {
        this.chatTemplate = chatTemplate;
        return self();
    }

    /// Requests served at once, each in a session of its own (a key/value cache of [#contextLength] tokens);
    /// more wait. Default 1.
    public B sessions(int sessions) {
        this.sessions = sessions;
        return self();
    }

    /// The name responses carry; default: the file name without `.gguf`.
    public B modelName(String modelName) {
        this.modelName = modelName;
        return self();
    }

    /// 0 is greedy; default 0.8.
    public B temperature(Double temperature) {
        this.temperature = temperature;
        return self();
    }

    /// Nucleus sampling; default 0.95.
    public B topP(Double topP) {
        this.topP = topP;
        return self();
    }

    /// Sample among the K most likely tokens; 0 disables; default 40.
    public B topK(Integer topK) {
        this.topK = topK;
        return self();
    }

    /// Drop tokens less likely than `minP` times the best (llama.cpp's min-p; not a LangChain4j parameter);
    /// default 0.05.
    public B minP(double minP) {
        this.minP = minP;
        return self();
    }

    /// llama.cpp's repetition penalty (1 disables, the default).
    public B repeatPenalty(double repeatPenalty) {
        this.repeatPenalty = repeatPenalty;
        return self();
    }

    /// A fixed seed makes sampling reproducible; default: a new random seed per request.
    public B seed(Long seed) {
        this.seed = seed;
        return self();
    }

    /// Tokens generated at most per answer; default: until the context is full.
    public B maxOutputTokens(Integer maxOutputTokens) {
        this.maxOutputTokens = maxOutputTokens;
        return self();
    }

    /// Answers end before the first of these strings.
    public B stopSequences(List<String> stopSequences) {
        this.stopSequences = List.copyOf(stopSequences);
        return self();
    }

    /// Whether one answer may call several tools, where the model's call format allows it (OpenAI's
    /// `parallel_tool_calls`); default true. With false, generation stops as soon as the first call is complete,
    /// which keeps small models from adding call after call.
    public B parallelToolCalls(boolean parallelToolCalls) {
        this.parallelToolCalls = parallelToolCalls;
        return self();
    }

    InProcessChat buildChat() {
        return new InProcessChat(this);
    }
}
