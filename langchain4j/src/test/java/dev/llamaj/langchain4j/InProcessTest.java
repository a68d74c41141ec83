package dev.llamaj.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.message.ImageContent;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.memory.chat.MessageWindowChatMemory;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.json.JsonRawSchema;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.service.AiServices;
import dev.langchain4j.service.TokenStream;
import dev.langchain4j.store.embedding.EmbeddingSearchRequest;
import dev.langchain4j.store.embedding.EmbeddingMatch;
import dev.langchain4j.store.embedding.inmemory.InMemoryEmbeddingStore;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Pooling;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.template.Message;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// The LangChain4j models over the in-process engine, driven as an application would (AiServices, chat memory,
/// TokenStream, an embedding store), on stories260K with greedy sampling; each answer is checked against the
/// engine run directly on the same conversation.
class InProcessTest {
    static LlamaModel model;
    static LlamajChatModel chat;
    static LlamajStreamingChatModel streaming;

    interface Storyteller {
        String tell(String prompt);
    }

    interface StreamingStoryteller {
        TokenStream tell(String prompt);
    }

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
        chat = LlamajChatModel.builder().model(model).chatTemplate("plain").temperature(0.0)
                .maxOutputTokens(24).contextLength(256).build();
        streaming = LlamajStreamingChatModel.builder().model(model).chatTemplate("plain").temperature(0.0)
                .maxOutputTokens(24).contextLength(256).build();
    }

    @AfterAll
    static void close() {
        if (chat != null) {
            chat.close();
            streaming.close();
            model.close();
        }
    }

    /// The engine's own greedy answer to `conversation`, 24 tokens at most, in a fresh session.
    static String direct(List<Message> conversation) {
        ChatFormat format = ChatFormat.of(model, ChatFormat.builtin("plain").orElseThrow());
        try (Session s = model.newSession(256)) {
            return s.generate(format.render(conversation, true), 24, Sampler.greedy(), _ -> {}).text();
        }
    }

    @Test
    void anAiServiceAnswersAsTheEngineDoes() {
        Storyteller teller = AiServices.builder(Storyteller.class).chatModel(chat).build();
        String answer = teller.tell("Tell me a story about a cat.");
        assertThat(answer).isNotBlank().isEqualTo(direct(List.of(Message.user("Tell me a story about a cat."))));
    }

    /// With chat memory the second call sends the whole conversation again; the session reuses the cached prefix,
    /// and the answer must be what a fresh session gives for the whole conversation.
    @Test
    void aConversationWithMemoryReusesTheCacheCorrectly() {
        Storyteller teller = AiServices.builder(Storyteller.class).chatModel(chat)
                .chatMemory(MessageWindowChatMemory.withMaxMessages(10)).build();
        String first = teller.tell("Hello.");
        String second = teller.tell("And then?");
        assertThat(first).isEqualTo(direct(List.of(Message.user("Hello."))));
        assertThat(second).isEqualTo(direct(List.of(Message.user("Hello."), Message.assistant(first),
                Message.user("And then?"))));
    }

    @Test
    void streamingDeliversTheSameAnswerPieceByPiece() throws Exception {
        StreamingStoryteller teller = AiServices.builder(StreamingStoryteller.class).streamingChatModel(streaming)
                .build();
        List<String> pieces = new ArrayList<>();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        teller.tell("Tell me a story about a dog.").onPartialResponse(pieces::add)
                .onCompleteResponse(done::complete).onError(done::completeExceptionally).start();
        ChatResponse response = done.get(60, TimeUnit.SECONDS);
        assertThat(pieces.size()).isGreaterThan(1);
        assertThat(String.join("", pieces)).isEqualTo(response.aiMessage().text())
                .isEqualTo(direct(List.of(Message.user("Tell me a story about a dog."))));
        assertThat(response.finishReason()).isIn(FinishReason.LENGTH, FinishReason.STOP);
        assertThat(response.tokenUsage().outputTokenCount()).isPositive();
    }

    @Test
    void requestParametersOverrideTheDefaults() {
        ChatResponse r = chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi")).maxOutputTokens(3)
                .stopSequences(List.of("zzz")).build());
        assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(3);
        assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(r.modelName()).isEqualTo("stories260K");
    }

    /// Penalties reach the engine's sampler: the answer is the engine's own with the same settings, and differs
    /// from the unpenalised one (stories260K repeats itself within 24 tokens).
    @Test
    void penaltiesAreTheEnginesPenalties() {
        ChatResponse r = chat.chat(ChatRequest.builder().messages(UserMessage.from("Tell me a story."))
                .frequencyPenalty(1.5).presencePenalty(1.0).build());
        ChatFormat format = ChatFormat.of(model, ChatFormat.builtin("plain").orElseThrow());
        String expected;
        try (Session s = model.newSession(256)) {
            Sampler sampler = Sampler.create(Sampler.Settings.greedy().withPenalties(1.0f, 1.5f));
            expected = s.generate(format.render(List.of(Message.user("Tell me a story.")), true), 24, sampler,
                    _ -> {}).text();
        }
        assertThat(r.aiMessage().text()).isEqualTo(expected)
                .isNotEqualTo(direct(List.of(Message.user("Tell me a story."))));
    }

    @Test
    void whatTheEngineCannotDoIsRefusedByName() {
        ToolSpecification tool = ToolSpecification.builder().name("weather").description("the weather").build();
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi"))
                .toolSpecifications(tool).responseFormat(ResponseFormat.JSON).build()))
                .isInstanceOf(UnsupportedFeatureException.class)
                .hasMessageContaining("tools and a JSON response format in one request");
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi"))
                .toolSpecifications(ToolSpecification.builder().name("bad name!").build()).build()))
                .isInstanceOf(InvalidRequestException.class).hasMessageStartingWith("tool 'bad name!': ");
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from(
                        ImageContent.from("https://example.invalid/cat.png"))).build()))
                .isInstanceOf(UnsupportedFeatureException.class).hasMessageContaining("IMAGE content is not supported");
        JsonSchema unenforceable = JsonSchema.builder().name("x")
                .rootElement(JsonRawSchema.from("{\"type\": \"string\", \"multipleOf\": 3}")).build();
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi"))
                .responseFormat(ResponseFormat.builder().type(ResponseFormatType.JSON).jsonSchema(unenforceable)
                        .build()).build()))
                .isInstanceOf(InvalidRequestException.class).hasMessageContaining("multipleOf");
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi"))
                .frequencyPenalty(2.5).build()))
                .isInstanceOf(InvalidRequestException.class).hasMessage("frequencyPenalty must be -2 to 2, got 2.5");
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi"))
                .presencePenalty(-3.0).build()))
                .isInstanceOf(InvalidRequestException.class).hasMessage("presencePenalty must be -2 to 2, got -3.0");
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi"))
                .temperature(5.0).build()))
                .isInstanceOf(InvalidRequestException.class).hasMessage("temperature must be 0 to 2, got 5.0");
        assertThatThrownBy(() -> chat.chat(ChatRequest.builder().messages(UserMessage.from("word ".repeat(400)))
                .build()))
                .isInstanceOf(InvalidRequestException.class).hasMessageContaining("the context is 256 tokens");
        assertThatThrownBy(() -> LlamajChatModel.builder().model(model).chatTemplate("plain").topP(0.0).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessage("topP must be above 0, at most 1, got 0.0");
        assertThatThrownBy(() -> LlamajChatModel.builder().model(model).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("has no chat template");
        assertThatThrownBy(() -> LlamajChatModel.builder().chatTemplate("plain").build())
                .isInstanceOf(IllegalArgumentException.class).hasMessage("give either modelPath or model");
        // still answers afterwards
        assertThat(chat.chat("Hi")).isNotNull();
    }

    @Test
    void embeddingsAreTheEnginesAndWorkInAStore() {
        try (LlamajEmbeddingModel embeddings = LlamajEmbeddingModel.builder().model(model).build()) {
            assertThat(embeddings.dimension()).isEqualTo(64);
            List<String> texts = List.of("The cat sat on the mat.", "Tom had a big red ball.", "The sun was hot.");
            List<Embedding> got = embeddings.embedAll(texts.stream().map(TextSegment::from).toList()).content();
            float[][] expected = model.embed(texts, Pooling.MEAN);
            for (int i = 0; i < texts.size(); i++) {
                assertThat(got.get(i).vector()).isEqualTo(expected[i]);
            }
            InMemoryEmbeddingStore<TextSegment> store = new InMemoryEmbeddingStore<>();
            store.addAll(got, texts.stream().map(TextSegment::from).toList());
            List<EmbeddingMatch<TextSegment>> matches = store.search(EmbeddingSearchRequest.builder()
                    .queryEmbedding(embeddings.embed("Tom had a big red ball.").content()).maxResults(1).build())
                    .matches();
            assertThat(matches.getFirst().embedded().text()).isEqualTo("Tom had a big red ball.");
            assertThat(matches.getFirst().score()).isGreaterThan(0.999);
        }
        try (LlamajEmbeddingModel last = LlamajEmbeddingModel.builder().model(model).pooling(Pooling.LAST).build()) {
            assertThat(last.embed("Once upon a time").content().vector())
                    .isEqualTo(model.embed(List.of("Once upon a time"), Pooling.LAST)[0]);
        }
    }
}
