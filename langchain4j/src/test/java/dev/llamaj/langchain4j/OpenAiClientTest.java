package dev.llamaj.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.agent.tool.Tool;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiEmbeddingModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.service.AiServices;
import dev.langchain4j.service.TokenStream;
import dev.llamaj.cli.server.OpenAiServer;
import dev.llamaj.cli.server.ServerConfig;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Pooling;
import dev.llamaj.gguf.SharedData;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// `llama serve` with LangChain4j's OpenAI module as a real HTTP client: chat through an AiService, streaming,
/// embeddings. Each answer must be the in-process model's for the same request (greedy, same template).
class OpenAiClientTest {
    static LlamaModel model;
    static OpenAiServer server;
    static LlamajChatModel local;
    static String base;

    interface Storyteller {
        String tell(String prompt);
    }

    interface StreamingStoryteller {
        TokenStream tell(String prompt);
    }

    @BeforeAll
    static void start() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
        ChatFormat plain = ChatFormat.of(model, ChatFormat.builtin("plain").orElseThrow());
        server = OpenAiServer.start(model, plain, ServerConfig.builder().host("127.0.0.1").port(0)
                .modelId("stories260K").contextLength(1024).shutdownTimeout(Duration.ofSeconds(2)).build(),
                new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8));
        base = "http://127.0.0.1:" + server.port() + "/v1";
        local = LlamajChatModel.builder().model(model).chatTemplate("plain").temperature(0.0).maxOutputTokens(24)
                .contextLength(256).build();
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
            local.close();
            model.close();
        }
    }

    @Test
    void chatThroughAnAiService() {
        OpenAiChatModel remote = OpenAiChatModel.builder().baseUrl(base).apiKey("none").modelName("stories260K")
                .temperature(0.0).maxTokens(24).build();
        Storyteller teller = AiServices.builder(Storyteller.class).chatModel(remote).build();
        String answer = teller.tell("Tell me a story about a cat.");
        assertThat(answer).isNotBlank().isEqualTo(local.chat("Tell me a story about a cat."));
    }

    /// OpenAI's penalties, sent by the client and applied by the server's sampler, as the in-process model applies
    /// them.
    @Test
    void penaltiesOverHttpAreTheInProcessOnes() {
        OpenAiChatModel remote = OpenAiChatModel.builder().baseUrl(base).apiKey("none").modelName("stories260K")
                .temperature(0.0).maxTokens(24).frequencyPenalty(1.5).presencePenalty(1.0).build();
        ChatResponse local = OpenAiClientTest.local.chat(ChatRequest.builder()
                .messages(UserMessage.from("Tell me a story.")).frequencyPenalty(1.5).presencePenalty(1.0).build());
        assertThat(remote.chat("Tell me a story.")).isEqualTo(local.aiMessage().text())
                .isNotEqualTo(OpenAiClientTest.local.chat("Tell me a story."));
    }

    enum Mood { HAPPY, SAD }

    record Review(Mood mood, boolean recommended) {}

    interface Reviewer {
        Review review(String text);
    }

    /// A record from an AiService over HTTP: the client sends the record's JSON schema as `response_format`
    /// (strict, as LangChain4j writes it for OpenAI), and the server's grammar makes stories260K's answer fit it.
    @Test
    void structuredOutputThroughAnAiService() {
        OpenAiChatModel remote = OpenAiChatModel.builder().baseUrl(base).apiKey("none").modelName("stories260K")
                .temperature(0.7).seed(7).maxTokens(200).supportedCapabilities(Capability.RESPONSE_FORMAT_JSON_SCHEMA)
                .strictJsonSchema(true).build();
        Reviewer reviewer = AiServices.builder(Reviewer.class).chatModel(remote).build();
        for (String text : List.of("The cat was happy.", "Tom lost his ball and cried.")) {
            Review review = reviewer.review(text);
            assertThat(review.mood()).isNotNull();
        }
    }

    interface Assistant {
        String ask(String question);
    }

    static final class Calculator {
        final List<int[]> calls = new ArrayList<>();

        @Tool("Adds two integers")
        int add(int a, int b) {
            calls.add(new int[] {a, b});
            return a + b;
        }
    }

    /// Asks for a call on the first turn (`tool_choice: required`), lets the model answer after the result.
    static final class FirstTurnCallsATool implements ChatModel {
        final ChatModel delegate;
        final List<List<ChatMessage>> requests = new ArrayList<>();

        FirstTurnCallsATool(ChatModel delegate) {
            this.delegate = delegate;
        }

        @Override
        public ChatResponse doChat(ChatRequest request) {
            requests.add(request.messages());
            boolean first = !(request.messages().getLast() instanceof ToolExecutionResultMessage);
            return delegate.chat(ChatRequest.builder().messages(request.messages())
                    .parameters(request.parameters().overrideWith(ChatRequestParameters.builder()
                            .toolChoice(first ? ToolChoice.REQUIRED : ToolChoice.AUTO).build())).build());
        }
    }

    /// A `@Tool` over HTTP: the client sends the tool and `tool_choice`, the server's grammar makes stories260K's
    /// call valid, LangChain4j runs the tool and sends its result back as a `tool` message. `strictTools(true)`
    /// makes the client send `additionalProperties: false`: without it the parameter schema allows any other
    /// property, and the grammar lets the model write them, here without end.
    @Test
    void toolsThroughAnAiService() {
        OpenAiChatModel remote = OpenAiChatModel.builder().baseUrl(base).apiKey("none").modelName("stories260K")
                .temperature(0.0).maxTokens(400).parallelToolCalls(false).strictTools(true).build();
        Calculator calculator = new Calculator();
        FirstTurnCallsATool forcing = new FirstTurnCallsATool(remote);
        String answer = AiServices.builder(Assistant.class).chatModel(forcing).tools(calculator).build()
                .ask("What is 2 plus 3?");
        assertThat(calculator.calls).as("the tool ran").isNotEmpty();
        assertThat(answer).isNotNull();
        ChatMessage result = forcing.requests.get(1).getLast();
        assertThat(result).isInstanceOf(ToolExecutionResultMessage.class);
        int[] args = calculator.calls.getFirst();
        assertThat(((ToolExecutionResultMessage) result).text()).isEqualTo(String.valueOf(args[0] + args[1]));
    }

    @Test
    void streamingThroughAnAiService() throws Exception {
        OpenAiStreamingChatModel remote = OpenAiStreamingChatModel.builder().baseUrl(base).apiKey("none")
                .modelName("stories260K").temperature(0.0).maxTokens(24).build();
        StreamingStoryteller teller = AiServices.builder(StreamingStoryteller.class).streamingChatModel(remote)
                .build();
        List<String> pieces = new ArrayList<>();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        teller.tell("Tell me a story about a dog.").onPartialResponse(pieces::add)
                .onCompleteResponse(done::complete).onError(done::completeExceptionally).start();
        ChatResponse response = done.get(60, TimeUnit.SECONDS);
        // (the server sends what has been generated since its last write as one event: on a quiet machine the
        // whole answer can be one piece)
        assertThat(pieces).isNotEmpty();
        assertThat(String.join("", pieces)).isEqualTo(response.aiMessage().text())
                .isEqualTo(local.chat("Tell me a story about a dog."));
    }

    @Test
    void embeddings() {
        OpenAiEmbeddingModel remote = OpenAiEmbeddingModel.builder().baseUrl(base).apiKey("none")
                .modelName("stories260K").build();
        List<String> texts = List.of("The cat sat on the mat.", "Tom had a big red ball.");
        List<Embedding> got = remote.embedAll(texts.stream().map(TextSegment::from).toList()).content();
        float[][] expected = model.embed(texts, Pooling.MEAN);
        assertThat(got).hasSize(2);
        for (int i = 0; i < texts.size(); i++) {
            assertThat(got.get(i).vector()).isEqualTo(expected[i]);
        }
    }
}
