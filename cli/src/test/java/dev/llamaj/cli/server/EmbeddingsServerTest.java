package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.Pooling;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// `POST /v1/embeddings` on stories260K: every form of `input`, both encodings, usage, the server's pooling, and
/// a 400 naming the field for every bad value.
class EmbeddingsServerTest {
    static TestServer server;

    @BeforeAll
    static void start() throws Exception {
        server = TestServer.start(TestServer.config().contextLength(64).build());
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    static float[] vector(Object item) {
        List<Object> values = list(map(item).get("embedding"));
        float[] v = new float[values.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = ((Number) values.get(i)).floatValue();
        }
        return v;
    }

    @Test
    void stringsTokensAndBatchesGiveTheEnginesEmbeddings() throws Exception {
        List<String> texts = List.of("Once upon a time", "The cat sat on the mat.");
        float[][] expected = server.model.embed(texts, Pooling.MEAN);

        HttpResponse<String> one = server.post("/v1/embeddings", Map.of("input", texts.getFirst(), "model", "x"));
        assertThat(one.statusCode()).as(one.body()).isEqualTo(200);
        Map<String, Object> body = json(one);
        assertThat(body.get("object")).isEqualTo("list");
        assertThat(body.get("model")).isEqualTo("stories260K");
        List<Object> data = list(body.get("data"));
        assertThat(data).hasSize(1);
        assertThat(map(data.getFirst()).get("object")).isEqualTo("embedding");
        assertThat(map(data.getFirst()).get("index")).isEqualTo(0L);
        assertThat(vector(data.getFirst())).isEqualTo(expected[0]); // shortest float text round-trips exactly
        int[] tokens = server.model.encodeForEmbedding(texts.getFirst());
        assertThat(map(body.get("usage"))).containsEntry("prompt_tokens", (long) tokens.length)
                .containsEntry("total_tokens", (long) tokens.length);

        Map<String, Object> batch = json(server.post("/v1/embeddings", Map.of("input", texts)));
        assertThat(list(batch.get("data"))).hasSize(2);
        assertThat(vector(list(batch.get("data")).get(1))).isEqualTo(expected[1]);
        assertThat(map(list(batch.get("data")).get(1)).get("index")).isEqualTo(1L);

        List<Integer> ids = java.util.Arrays.stream(tokens).boxed().toList();
        Map<String, Object> byIds = json(server.post("/v1/embeddings", Map.of("input", ids)));
        assertThat(vector(list(byIds.get("data")).getFirst())).isEqualTo(expected[0]);
        Map<String, Object> byIdLists = json(server.post("/v1/embeddings", Map.of("input", List.of(ids, ids))));
        assertThat(list(byIdLists.get("data"))).hasSize(2);
        assertThat(vector(list(byIdLists.get("data")).get(1))).isEqualTo(expected[0]);
    }

    @Test
    void base64IsLittleEndianFloat32() throws Exception {
        float[] expected = server.model.embed(List.of("Once upon a time"), Pooling.MEAN)[0];
        Map<String, Object> body = json(server.post("/v1/embeddings",
                Map.of("input", "Once upon a time", "encoding_format", "base64", "dimensions", 64)));
        String encoded = (String) map(list(body.get("data")).getFirst()).get("embedding");
        ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(encoded)).order(ByteOrder.LITTLE_ENDIAN);
        float[] got = new float[b.remaining() / 4];
        b.asFloatBuffer().get(got);
        assertThat(got).isEqualTo(expected);
    }

    @Test
    void theServersPoolingIsUsed() throws Exception {
        try (TestServer last = TestServer.start(TestServer.config().contextLength(64).pooling(Pooling.LAST).build())) {
            float[] expected = last.model.embed(List.of("Once upon a time"), Pooling.LAST)[0];
            Map<String, Object> body = json(last.post("/v1/embeddings", Map.of("input", "Once upon a time")));
            assertThat(vector(list(body.get("data")).getFirst())).isEqualTo(expected);
        }
    }

    @Test
    void badValuesAre400NamingTheField() throws Exception {
        bad(Map.of(), "input", "You must provide an 'input'.");
        bad(Map.of("input", 5), "input", "Invalid type for 'input': expected a string or an array, but got a number"
                + " instead.");
        bad(Map.of("input", ""), "input", "'input' is an empty string; an input needs some text.");
        bad(Map.of("input", List.of()), "input", "'input' is an empty array; give at least one input.");
        bad(Map.of("input", List.of("a", 3)), "input[1]", null);
        bad(Map.of("input", List.of("a", "")), "input[1]", null);
        bad(Map.of("input", List.of(true)), "input[0]", null);
        bad(Map.of("input", List.of(1, 512)), "input[1]", "Invalid token id in 'input[1]': 512; token ids are"
                + " integers from 0 to 511.");
        bad(Map.of("input", List.of(1, -1)), "input[1]", null);
        bad(Map.of("input", List.of(1, 2.5)), "input[1]", null);
        bad(Map.of("input", List.of(List.of(1, 2), List.of())), "input[1]", null);
        bad(Map.of("input", List.of(List.of(1), "a")), "input[1]", null);
        bad(Map.of("input", java.util.Collections.nCopies(2049, "a")), "input", null);
        bad(Map.of("input", java.util.Collections.nCopies(65, 1)), "input", "'input' is 65 tokens; this server"
                + " embeds at most 64 (its context; start it with a larger --context).");
        bad(Map.of("input", List.of("a", "word ".repeat(100))), "input[1]", null);
        bad(Map.of("input", "x".repeat(200_000)), "input", "'input' is 200000 characters, more than the 64 tokens"
                + " this server embeds at most can hold (its context; start it with a larger --context).");
        bad(Map.of("input", "a", "encoding_format", "int8"), "encoding_format", "Invalid value for"
                + " 'encoding_format': 'int8'; use 'float' or 'base64'.");
        bad(Map.of("input", "a", "encoding_format", 1), "encoding_format", null);
        bad(Map.of("input", "a", "dimensions", 32), "dimensions", "This model's embeddings have 64 dimensions and"
                + " cannot be shortened: 'dimensions' may only be 64, got 32.");
        bad(Map.of("input", "a", "dimensions", "64"), "dimensions", null);
        bad(Map.of("input", "a", "model", 7), "model", null);

        HttpResponse<String> get = server.get("/v1/embeddings");
        assertThat(get.statusCode()).isEqualTo(405);
        // the server still answers after all that
        assertThat(server.post("/v1/embeddings", Map.of("input", "ok")).statusCode()).isEqualTo(200);
    }

    private static void bad(Map<String, ?> body, String param, String message) throws Exception {
        HttpResponse<String> r = server.post("/v1/embeddings", new LinkedHashMap<>(body));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        Map<String, Object> error = map(json(r).get("error"));
        assertThat(error.get("param")).as(r.body()).isEqualTo(param);
        assertThat(error.get("type")).isEqualTo("invalid_request_error");
        if (message != null) {
            assertThat(error.get("message")).isEqualTo(message);
        }
    }
}
