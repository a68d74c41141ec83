package dev.llamaj.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.langchain4j.agent.tool.Tool;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.service.AiServices;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.gguf.Json;
import dev.llamaj.gguf.SharedData;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// A LangChain4j `@Tool` through AiServices on stories260K, a model that knows nothing of tools: its template
/// has no tool support (the generic format shows the tools in a system message), and the grammar is what makes
/// its call and the call's arguments valid, so this passes only if the constraint is applied.
class ToolCallingTest {
    static LlamaModel model;

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

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    /// A model that asks for a tool call on the first turn (`REQUIRED`) and lets the model answer after the
    /// result (`AUTO`), as an application forcing one lookup would; it records what it is sent.
    static final class FirstTurnCallsATool implements ChatModel {
        final List<List<ChatMessage>> requests = new ArrayList<>();
        /// Greedy, one call per answer: the model writes whitespace generously where the grammar allows it, and
        /// would add call after call to a list.
        final LlamajChatModel chat = LlamajChatModel.builder().model(model).chatTemplate("plain").temperature(0.0)
                .parallelToolCalls(false).maxOutputTokens(400).contextLength(1024).build();

        @Override
        public ChatResponse doChat(ChatRequest request) {
            requests.add(request.messages());
            boolean first = !(request.messages().getLast() instanceof ToolExecutionResultMessage);
            ChatRequestParameters p = request.parameters().overrideWith(ChatRequestParameters.builder()
                    .toolChoice(first ? ToolChoice.REQUIRED : ToolChoice.AUTO).build());
            return chat.chat(ChatRequest.builder().messages(request.messages()).parameters(p).build());
        }

        @Override
        public Set<Capability> supportedCapabilities() {
            return chat.supportedCapabilities();
        }
    }

    @Test
    void anAiServiceCallsATool() {
        Calculator calculator = new Calculator();
        FirstTurnCallsATool forcing = new FirstTurnCallsATool();
        Assistant assistant = AiServices.builder(Assistant.class).chatModel(forcing).tools(calculator).build();
        String answer = assistant.ask("What is 2 plus 3?");
        assertThat(calculator.calls).as("the tool ran, with integer arguments the grammar forced").isNotEmpty();
        assertThat(answer).isNotNull();
        assertThat(forcing.requests).hasSizeGreaterThanOrEqualTo(2);
        List<ChatMessage> second = forcing.requests.get(1);
        assertThat(second.getLast()).isInstanceOf(ToolExecutionResultMessage.class);
        int[] args = calculator.calls.getFirst();
        assertThat(((ToolExecutionResultMessage) second.getLast()).text())
                .isEqualTo(String.valueOf(args[0] + args[1]));
        forcing.chat.close();
    }

    /// Streaming with a required call: no piece of the call reaches `onPartialResponse` as text, and the complete
    /// response carries the call, its arguments valid JSON of the schema.
    @Test
    void aStreamedCallComesWholeInTheCompleteResponse() throws Exception {
        ToolSpecification add = ToolSpecification.builder().name("add").description("Adds two integers")
                .parameters(JsonObjectSchema.builder().addIntegerProperty("a").addIntegerProperty("b")
                        .required("a", "b").build()).build();
        try (LlamajStreamingChatModel streaming = LlamajStreamingChatModel.builder().model(model)
                .chatTemplate("plain").temperature(0.0).parallelToolCalls(false).maxOutputTokens(400)
                .contextLength(1024).build()) {
            List<String> pieces = new ArrayList<>();
            CompletableFuture<ChatResponse> done = new CompletableFuture<>();
            streaming.chat(ChatRequest.builder().messages(UserMessage.from("What is 2 plus 3?"))
                    .toolSpecifications(add).toolChoice(ToolChoice.REQUIRED).build(),
                    new StreamingChatResponseHandler() {
                        @Override
                        public void onPartialResponse(String piece) {
                            pieces.add(piece);
                        }

                        @Override
                        public void onCompleteResponse(ChatResponse response) {
                            done.complete(response);
                        }

                        @Override
                        public void onError(Throwable error) {
                            done.completeExceptionally(error);
                        }
                    });
            ChatResponse response = done.get(120, TimeUnit.SECONDS);
            assertThat(response.finishReason()).isEqualTo(FinishReason.TOOL_EXECUTION);
            assertThat(String.join("", pieces)).doesNotContain("\"add\"");
            ToolExecutionRequest call = response.aiMessage().toolExecutionRequests().getFirst();
            assertThat(call.name()).isEqualTo("add");
            @SuppressWarnings("unchecked")
            Map<String, Object> arguments = (Map<String, Object>) Json.parse(call.arguments());
            assertThat(arguments.keySet()).containsExactlyInAnyOrder("a", "b");
            assertThat(call.id()).startsWith("call_");
        }
    }
}
