package dev.llamaj.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.json.JsonIntegerSchema;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.service.AiServices;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.gguf.Json;
import dev.llamaj.gguf.SharedData;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// Structured outputs through AiServices and JSON-schema response formats on stories260K, a model that knows
/// nothing of JSON: the grammar is what makes its answers parse, so these pass only if the constraint is applied.
class StructuredOutputTest {
    static LlamaModel model;
    static LlamajChatModel chat;

    enum Mood { HAPPY, SAD }

    record Review(Mood mood, boolean recommended) {}

    interface Reviewer {
        Review review(String text);
    }

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
        chat = LlamajChatModel.builder().model(model).chatTemplate("plain").temperature(0.7).seed(7L)
                .maxOutputTokens(200).contextLength(512).build();
    }

    @AfterAll
    static void close() {
        if (chat != null) {
            chat.close();
            model.close();
        }
    }

    @Test
    void aRecordComesBackFromAnAiService() {
        assertThat(chat.supportedCapabilities()).contains(Capability.RESPONSE_FORMAT_JSON_SCHEMA);
        Reviewer reviewer = AiServices.builder(Reviewer.class).chatModel(chat).build();
        for (String text : List.of("The cat was happy.", "Tom lost his ball and cried.", "A day at the park.")) {
            Review review = reviewer.review(text);
            assertThat(review.mood()).isNotNull();
        }
    }

    /// Many seeds, one schema: every answer parses and has the schema's shape (checked here with a JSON parser,
    /// not the grammar).
    @Test
    void everyAnswerToASchemaParses() {
        JsonSchema schema = JsonSchema.builder().name("point").rootElement(JsonObjectSchema.builder()
                .addProperty("x", JsonIntegerSchema.builder().build())
                .addProperty("y", JsonIntegerSchema.builder().build())
                .required("x", "y").additionalProperties(false).build()).build();
        for (long seed = 0; seed < 8; seed++) {
            try (LlamajChatModel seeded = LlamajChatModel.builder().model(model).chatTemplate("plain")
                    .temperature(1.0).seed(seed).maxOutputTokens(120).build()) {
                ChatResponse r = seeded.chat(ChatRequest.builder().messages(UserMessage.from("Where is the cat?"))
                        .responseFormat(ResponseFormat.builder().type(ResponseFormatType.JSON).jsonSchema(schema)
                                .build()).build());
                assertThat(r.finishReason()).as(r.aiMessage().text()).isEqualTo(FinishReason.STOP);
                @SuppressWarnings("unchecked")
                Map<String, Object> point = (Map<String, Object>) Json.parse(r.aiMessage().text());
                assertThat(point.keySet()).containsExactlyInAnyOrder("x", "y");
                assertThat(point.values())
                        .allMatch(v -> v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()));
            }
        }
    }
}
