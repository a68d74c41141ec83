package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.Json;
import dev.llamaj.gguf.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/// stories260K, greedy, BOS + prompt, 120 tokens: the continuation must equal llama.cpp's exactly.
///
/// The model's own context is 128 tokens, and one reference prompt needs 12 + 120, so the sessions get 512 (as
/// llama.cpp's run did, which is why its continuation goes on past 128 positions).
class GreedyReferenceTest {
    private static LlamaModel model;

    @BeforeAll
    static void load() throws Exception {
        model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 2);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    static Stream<Arguments> references() throws Exception {
        Path p = SharedData.require("reference/stories260K-greedy.json");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> cases = (List<Map<String, Object>>) Json.parse(Files.readString(p));
        return cases.stream().map(c -> Arguments.of(c.get("prompt"), ((Double) c.get("max_tokens")).intValue(),
                c.get("expected_continuation")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("references")
    void reproducesLlamaCppGreedyContinuation(String prompt, int maxTokens, String expected) {
        try (Session session = model.newSession(512)) {
            StringBuilder streamed = new StringBuilder();
            Completion c = session.generate(prompt, maxTokens, Sampler.greedy(), streamed::append);
            assertThat(c.text().stripTrailing()).isEqualTo(expected);
            assertThat(streamed.toString()).isEqualTo(c.text());
            assertThat(c.generatedTokens()).isEqualTo(maxTokens);
            assertThat(c.stopReason()).isEqualTo(Completion.StopReason.MAX_TOKENS);
        }
    }
}
