package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static dev.llamaj.cli.server.TestServer.number;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.cli.Json;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import java.io.ByteArrayOutputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// The sampling fields of both completion endpoints over HTTP: `n`, `logprobs`/`top_logprobs`, `logit_bias`,
/// `presence_penalty` and `frequency_penalty`, their bad values, and their effect checked against the engine.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServerSamplingTest {
    static final String PROMPT = "Once upon a time";
    static TestServer t;

    @BeforeAll
    static void start() throws Exception {
        t = TestServer.start(TestServer.config().parallel(1).queueLimit(8).build());
    }

    @AfterAll
    static void stop() {
        if (t != null) {
            t.close();
        }
    }

    static Map<String, Object> body(Object... keyValues) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put((String) keyValues[i], keyValues[i + 1]);
        }
        return m;
    }

    static List<Map<String, Object>> user(String text) {
        return List.of(Map.of("role", "user", "content", text));
    }

    static Map<String, Object> ok(HttpResponse<String> r) {
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return json(r);
    }

    static void assertBad(String path, Map<String, Object> body, String param) throws Exception {
        HttpResponse<String> r = t.post(path, body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
        Map<String, Object> error = map(json(r).get("error"));
        assertThat(error).containsEntry("type", "invalid_request_error").containsEntry("param", param);
        assertThat((String) error.get("message")).isNotBlank().doesNotContain("Exception");
    }

    /// The engine's own completion of `PROMPT` with these settings, for comparison.
    static Completion engine(Sampler.Settings settings, int maxTokens) {
        try (Session s = t.model.newSession(t.server.contextLength())) {
            return s.generate(s.encode(PROMPT), maxTokens, Sampler.create(settings), List.of(), _ -> {}, null);
        }
    }

    @Test
    void badValuesNameTheField() throws Exception {
        String c = "/v1/completions";
        String chat = "/v1/chat/completions";
        assertBad(c, body("prompt", PROMPT, "n", 0), "n");
        assertBad(c, body("prompt", PROMPT, "n", 9), "n");
        assertBad(c, body("prompt", PROMPT, "n", "2"), "n");
        assertBad(c, body("prompt", PROMPT, "n", 1.5), "n");
        assertBad(c, body("prompt", PROMPT, "presence_penalty", 2.5), "presence_penalty");
        assertBad(c, body("prompt", PROMPT, "presence_penalty", "high"), "presence_penalty");
        assertBad(chat, body("messages", user("hi"), "frequency_penalty", -2.01), "frequency_penalty");
        assertBad(c, body("prompt", PROMPT, "logit_bias", List.of(1, 2)), "logit_bias");
        assertBad(c, body("prompt", PROMPT, "logit_bias", Map.of("abc", 1)), "logit_bias");
        assertBad(c, body("prompt", PROMPT, "logit_bias", Map.of("512", 1)), "logit_bias");
        assertBad(c, body("prompt", PROMPT, "logit_bias", Map.of("-1", 1)), "logit_bias");
        assertBad(c, body("prompt", PROMPT, "logit_bias", Map.of("5", 101)), "logit_bias");
        assertBad(chat, body("messages", user("hi"), "logit_bias", Map.of("5", "x")), "logit_bias.5");
        Map<String, Object> many = new HashMap<>();
        for (int i = 0; i < 1025; i++) {
            many.put(String.valueOf(i % 512) + " ".repeat(i / 512), 1);
        }
        assertBad(c, body("prompt", PROMPT, "logit_bias", many), "logit_bias");
        assertBad(chat, body("messages", user("hi"), "logprobs", "yes"), "logprobs");
        assertBad(chat, body("messages", user("hi"), "logprobs", true, "top_logprobs", 21), "top_logprobs");
        assertBad(chat, body("messages", user("hi"), "logprobs", true, "top_logprobs", -1), "top_logprobs");
        assertBad(chat, body("messages", user("hi"), "top_logprobs", 2), "top_logprobs");
        assertBad(c, body("prompt", PROMPT, "logprobs", 21), "logprobs");
        assertBad(c, body("prompt", PROMPT, "logprobs", -1), "logprobs");
        assertBad(c, body("prompt", PROMPT, "logprobs", true), "logprobs");
    }

    @Test
    void chatLogprobsDescribeEveryTokenOfTheAnswer() throws Exception {
        Map<String, Object> r = ok(t.post("/v1/chat/completions", body("messages", user("Tell a story"),
                "max_tokens", 12, "seed", 4, "logprobs", true, "top_logprobs", 3)));
        Map<String, Object> choice = map(list(r.get("choices")).getFirst());
        String content = (String) map(choice.get("message")).get("content");
        List<Object> entries = list(map(choice.get("logprobs")).get("content"));
        assertThat(entries).hasSize((int) number(map(r.get("usage")).get("completion_tokens")));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (Object o : entries) {
            Map<String, Object> e = map(o);
            double logprob = ((Number) e.get("logprob")).doubleValue();
            assertThat(logprob).isLessThanOrEqualTo(0);
            for (Object b : list(e.get("bytes"))) {
                bytes.write((int) number(b));
            }
            List<Object> top = list(e.get("top_logprobs"));
            assertThat(top).isNotEmpty().hasSizeLessThanOrEqualTo(3);
            double previous = 0;
            for (Object a : top) {
                double lp = ((Number) map(a).get("logprob")).doubleValue();
                assertThat(lp).isLessThanOrEqualTo(previous);
                previous = lp;
                assertThat(map(a)).containsKeys("token", "bytes");
            }
            assertThat(((Number) map(top.getFirst()).get("logprob")).doubleValue()).isGreaterThanOrEqualTo(logprob);
        }
        assertThat(bytes.toString(StandardCharsets.UTF_8)).isEqualTo(content);

        // without logprobs the field stays null
        Map<String, Object> plain = ok(t.post("/v1/chat/completions", body("messages", user("Tell a story"),
                "max_tokens", 3)));
        assertThat(map(list(plain.get("choices")).getFirst())).containsEntry("logprobs", null);
    }

    @Test
    void greedyCompletionLogprobsAreTheEnginesSoftmax() throws Exception {
        Map<String, Object> r = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 8,
                "temperature", 0, "logprobs", 2)));
        Map<String, Object> choice = map(list(r.get("choices")).getFirst());
        Map<String, Object> lp = map(choice.get("logprobs"));
        List<Object> tokens = list(lp.get("tokens"));
        List<Object> logprobs = list(lp.get("token_logprobs"));
        List<Object> offsets = list(lp.get("text_offset"));
        List<Object> tops = list(lp.get("top_logprobs"));
        assertThat(tokens).hasSize(8);
        assertThat(String.join("", tokens.stream().map(String.class::cast).toList())).isEqualTo(choice.get("text"));
        // the same tokens and log-probabilities as the engine's greedy decoding reports
        List<Completion.Token> expected = new ArrayList<>();
        try (Session s = t.model.newSession(t.server.contextLength())) {
            s.generate(s.encode(PROMPT), 8, Sampler.greedy().topLogprobs(2), List.of(), _ -> {}, expected::add);
        }
        int offset = 0;
        for (int i = 0; i < 8; i++) {
            // within rounding: the server's slot may compute the prompt in other batches than a fresh session
            assertThat(((Number) logprobs.get(i)).floatValue()).isCloseTo(expected.get(i).logprob(), within(1e-4f));
            assertThat(number(offsets.get(i))).isEqualTo(offset);
            offset += ((String) tokens.get(i)).codePointCount(0, ((String) tokens.get(i)).length());
            Map<String, Object> top = map(tops.get(i));
            assertThat(top).hasSizeBetween(1, 2).containsKey((String) tokens.get(i)); // greedy: the best is chosen
        }
    }

    @Test
    void severalChoicesAreTheSingleChoicesOfConsecutiveSeeds() throws Exception {
        Map<String, Object> both = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 20,
                "seed", 100, "n", 2, "temperature", 1.0)));
        List<Object> choices = list(both.get("choices"));
        assertThat(choices).hasSize(2);
        for (int i = 0; i < 2; i++) {
            Map<String, Object> single = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 20,
                    "seed", 100 + i, "temperature", 1.0)));
            Map<String, Object> choice = map(choices.get(i));
            assertThat(number(choice.get("index"))).isEqualTo(i);
            assertThat(choice.get("text")).isEqualTo(map(list(single.get("choices")).getFirst()).get("text"));
        }
        assertThat(map(choices.get(0)).get("text")).isNotEqualTo(map(choices.get(1)).get("text"));
        Map<String, Object> usage = map(both.get("usage"));
        assertThat(number(usage.get("completion_tokens"))).isEqualTo(40);
        assertThat(number(usage.get("prompt_tokens"))).isEqualTo(t.model.tokenizer().encode(PROMPT).length + 1);
    }

    @Test
    void streamingSeveralChoicesWithLogprobsMatchesTheWholeAnswer() throws Exception {
        Map<String, Object> request = body("messages", user("Tell a story"), "max_tokens", 10, "seed", 7, "n", 3,
                "logprobs", true, "top_logprobs", 1);
        Map<String, Object> whole = ok(t.post("/v1/chat/completions", request));
        request.put("stream", true);
        HttpResponse<String> r = t.post("/v1/chat/completions", request);
        assertThat(r.statusCode()).isEqualTo(200);
        Map<Long, StringBuilder> text = new TreeMap<>();
        Map<Long, List<Object>> logprobs = new TreeMap<>();
        Map<Long, String> finish = new TreeMap<>();
        List<String> events = TestServer.events(r.body());
        assertThat(events.getLast()).isEqualTo("[DONE]");
        for (String e : events.subList(0, events.size() - 1)) {
            Map<String, Object> choice = map(list(map(Json.parse(e)).get("choices")).getFirst());
            long index = number(choice.get("index"));
            Object content = map(choice.get("delta")).get("content");
            text.computeIfAbsent(index, _ -> new StringBuilder()).append(content == null ? "" : content);
            if (choice.get("logprobs") != null) {
                logprobs.computeIfAbsent(index, _ -> new ArrayList<>())
                        .addAll(list(map(choice.get("logprobs")).get("content")));
            }
            if (choice.get("finish_reason") != null) {
                assertThat(finish.put(index, (String) choice.get("finish_reason"))).isNull();
            }
        }
        List<Object> choices = list(whole.get("choices"));
        assertThat(text.keySet()).containsExactly(0L, 1L, 2L);
        assertThat(finish.keySet()).containsExactly(0L, 1L, 2L);
        for (int i = 0; i < 3; i++) {
            Map<String, Object> choice = map(choices.get(i));
            assertThat(text.get((long) i).toString()).isEqualTo(map(choice.get("message")).get("content"));
            List<Object> expected = list(map(choice.get("logprobs")).get("content"));
            List<Object> streamed = logprobs.get((long) i);
            assertThat(streamed).hasSameSizeAs(expected);
            for (int k = 0; k < expected.size(); k++) {
                // the prefix cache makes the second request compute its prompt in other batches: equal to rounding
                Map<String, Object> e = map(expected.get(k));
                Map<String, Object> got = map(streamed.get(k));
                assertThat(got.get("token")).isEqualTo(e.get("token"));
                assertThat(got.get("bytes")).isEqualTo(e.get("bytes"));
                assertThat(((Number) got.get("logprob")).doubleValue())
                        .isCloseTo(((Number) e.get("logprob")).doubleValue(), within(1e-4));
                assertThat(list(got.get("top_logprobs"))).hasSameSizeAs(list(e.get("top_logprobs")));
            }
            assertThat(finish.get((long) i)).isEqualTo(choice.get("finish_reason"));
        }
    }

    @Test
    void logitBiasBansAndForcesTokens() throws Exception {
        Completion greedy = engine(Sampler.Settings.greedy(), 6);
        int first = firstGreedyToken();
        Map<String, Object> banned = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 6,
                "temperature", 0, "logit_bias", Map.of(String.valueOf(first), -100), "logprobs", 0)));
        Map<String, Object> choice = map(list(banned.get("choices")).getFirst());
        assertThat(choice.get("text")).isNotEqualTo(greedy.text());
        String expected = engine(Sampler.Settings.greedy().withLogitBias(Map.of(first, -100f)), 6).text();
        assertThat(choice.get("text")).isEqualTo(expected);

        int forced = t.model.tokenizer().encode(" dog")[0];
        Map<String, Object> r = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 4,
                "temperature", 0.8, "seed", 1, "logit_bias", Map.of(String.valueOf(forced), 100))));
        String piece = new String(t.model.tokenizer().bytes(forced), StandardCharsets.UTF_8);
        assertThat(map(list(r.get("choices")).getFirst()).get("text")).isEqualTo(piece.repeat(4));
    }

    private static int firstGreedyToken() {
        List<Completion.Token> tokens = new ArrayList<>();
        try (Session s = t.model.newSession(t.server.contextLength())) {
            s.generate(s.encode(PROMPT), 1, Sampler.greedy(), List.of(), _ -> {}, tokens::add);
        }
        return tokens.getFirst().id();
    }

    @Test
    void penaltiesReachTheSampler() throws Exception {
        for (float[] p : new float[][] {{0f, 1.5f}, {1.5f, 0f}, {-0.5f, 0.5f}}) {
            Map<String, Object> r = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 40,
                    "temperature", 0, "presence_penalty", p[0], "frequency_penalty", p[1])));
            String expected = engine(Sampler.Settings.greedy().withPenalties(p[0], p[1]), 40).text();
            assertThat(map(list(r.get("choices")).getFirst()).get("text")).isEqualTo(expected);
        }
        // and they change the text: 40 greedy tokens of stories260K repeat themselves
        assertThat(engine(Sampler.Settings.greedy().withPenalties(0f, 1.5f), 40).text())
                .isNotEqualTo(engine(Sampler.Settings.greedy(), 40).text());
    }

    static final Map<String, Object> YES_NO = Map.of("type", "json_schema", "json_schema", Map.of("name", "answer",
            "strict", true, "schema", Json.parse("""
                    {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}},
                     "required": ["answer"], "additionalProperties": false}""")));

    @Test
    void responseFormatBadValuesNameTheField() throws Exception {
        String chat = "/v1/chat/completions";
        assertBad(chat, body("messages", user("hi"), "response_format", "json"), "response_format");
        assertBad(chat, body("messages", user("hi"), "response_format", Map.of()), "response_format.type");
        assertBad(chat, body("messages", user("hi"), "response_format", Map.of("type", "xml")),
                "response_format.type");
        assertBad(chat, body("messages", user("hi"), "response_format", Map.of("type", "json_schema")),
                "response_format.json_schema");
        assertBad(chat, body("messages", user("hi"), "response_format", Map.of("type", "json_schema",
                "json_schema", Map.of("name", "x"))), "response_format.json_schema.schema");
        assertBad(chat, body("messages", user("hi"), "response_format", Map.of("type", "json_schema",
                "json_schema", Map.of("name", "x", "schema", 5))), "response_format.json_schema.schema");
        assertBad(chat, body("messages", user("hi"), "response_format", Map.of("type", "json_schema",
                "json_schema", Map.of("name", "x", "strict", "yes", "schema", Map.of()))),
                "response_format.json_schema.strict");
        assertBad(chat, body("messages", user("hi"), "grammar", "root ::= (\"a\""), "grammar");
        assertBad(chat, body("messages", user("hi"), "grammar", 5), "grammar");
        assertBad(chat, body("messages", user("hi"), "json_schema", "{}"), "json_schema");
        assertBad(chat, body("messages", user("hi"), "json_schema", Map.of("multipleOf", 2)), "json_schema");
        assertBad(chat, body("messages", user("hi"), "grammar", "root ::= \"a\"", "response_format", YES_NO),
                "grammar");
        HttpResponse<String> r = t.post("/v1/completions", body("prompt", PROMPT, "response_format",
                Map.of("type", "json_schema", "json_schema", Map.of("name", "x", "schema",
                        Map.of("type", "array", "uniqueItems", true)))));
        assertThat(r.statusCode()).isEqualTo(400);
        Map<String, Object> error = map(json(r).get("error"));
        assertThat(error).containsEntry("param", "response_format.json_schema.schema");
        assertThat((String) error.get("message")).contains("uniqueItems").contains("/uniqueItems");
    }

    @Test
    void responseFormatHoldsTheOutputToTheSchema() throws Exception {
        for (int seed = 0; seed < 3; seed++) {
            Map<String, Object> chat = ok(t.post("/v1/chat/completions", body("messages", user("Yes or no?"),
                    "max_tokens", 60, "seed", seed, "response_format", YES_NO)));
            Map<String, Object> choice = map(list(chat.get("choices")).getFirst());
            String content = (String) map(choice.get("message")).get("content");
            assertThat(Json.parse(content.strip())).isIn(Map.of("answer", "yes"), Map.of("answer", "no"));
            assertThat(choice.get("finish_reason")).isEqualTo("stop");

            Map<String, Object> completion = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 60,
                    "seed", seed, "temperature", 1.5, "response_format", YES_NO)));
            String text = (String) map(list(completion.get("choices")).getFirst()).get("text");
            assertThat(Json.parse(text.strip())).isIn(Map.of("answer", "yes"), Map.of("answer", "no"));
        }
        // streamed, with several choices: each one valid on its own
        HttpResponse<String> r = t.post("/v1/chat/completions", body("messages", user("Yes or no?"),
                "max_tokens", 60, "seed", 5, "n", 2, "stream", true, "response_format", YES_NO));
        Map<Long, StringBuilder> text = new TreeMap<>();
        List<String> events = TestServer.events(r.body());
        for (String e : events.subList(0, events.size() - 1)) {
            Map<String, Object> choice = map(list(map(Json.parse(e)).get("choices")).getFirst());
            Object content = map(choice.get("delta")).get("content");
            text.computeIfAbsent(number(choice.get("index")), _ -> new StringBuilder())
                    .append(content == null ? "" : content);
        }
        assertThat(text).hasSize(2);
        for (StringBuilder sb : text.values()) {
            assertThat(Json.parse(sb.toString().strip())).isIn(Map.of("answer", "yes"), Map.of("answer", "no"));
        }
        // llama.cpp's extensions: GBNF in 'grammar', a schema in 'json_schema'
        for (int seed = 0; seed < 3; seed++) {
            Map<String, Object> g = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 20,
                    "seed", seed, "grammar", "root ::= \"The \" (\"red\" | \"blue\") \" dog.\"")));
            Map<String, Object> choice = map(list(g.get("choices")).getFirst());
            assertThat((String) choice.get("text")).matches("The (red|blue) dog\\.");
            assertThat(choice.get("finish_reason")).isEqualTo("stop");
            Map<String, Object> j = ok(t.post("/v1/chat/completions", body("messages", user("Yes or no?"),
                    "max_tokens", 60, "seed", seed, "json_schema", map(map(YES_NO.get("json_schema")).get("schema")))));
            String content = (String) map(map(list(j.get("choices")).getFirst()).get("message")).get("content");
            assertThat(Json.parse(content.strip())).isIn(Map.of("answer", "yes"), Map.of("answer", "no"));
        }
        // json_object: an object from the first character; text: no constraint
        Map<String, Object> object = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 8,
                "response_format", Map.of("type", "json_object"))));
        assertThat(((String) map(list(object.get("choices")).getFirst()).get("text")).strip()).startsWith("{");
        ok(t.post("/v1/chat/completions", body("messages", user("hi"), "max_tokens", 2,
                "response_format", Map.of("type", "text"))));
    }

    @Test
    void streamedLegacyLogprobsContinueTheWholeAnswer() throws Exception {
        Map<String, Object> request = body("prompt", PROMPT, "max_tokens", 24, "seed", 11, "logprobs", 2);
        Map<String, Object> lp = map(map(list(ok(t.post("/v1/completions", request)).get("choices")).getFirst())
                .get("logprobs"));
        request.put("stream", true);
        HttpResponse<String> r = t.post("/v1/completions", request);
        List<Object> tokens = new ArrayList<>();
        List<Object> offsets = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        List<String> events = TestServer.events(r.body());
        for (String e : events.subList(0, events.size() - 1)) {
            Map<String, Object> choice = map(list(map(Json.parse(e)).get("choices")).getFirst());
            text.append((String) choice.get("text"));
            if (choice.get("logprobs") != null) {
                Map<String, Object> chunk = map(choice.get("logprobs"));
                tokens.addAll(list(chunk.get("tokens")));
                offsets.addAll(list(chunk.get("text_offset")));
                assertThat(list(chunk.get("top_logprobs"))).hasSameSizeAs(list(chunk.get("tokens")));
            }
        }
        assertThat(tokens).isEqualTo(lp.get("tokens"));
        assertThat(offsets).isEqualTo(lp.get("text_offset"));
        assertThat(String.join("", tokens.stream().map(String.class::cast).toList())).isEqualTo(text.toString());
    }

    @Test
    void theTokensOfAStopStringAreDropped() throws Exception {
        List<Completion.Token> greedy = new ArrayList<>();
        try (Session s = t.model.newSession(t.server.contextLength())) {
            s.generate(s.encode(PROMPT), 40, Sampler.greedy(), List.of(), _ -> {}, greedy::add);
        }
        // a stop string made of whole tokens k and k + 1 that does not occur earlier: the answer ends before it,
        // and its log-probabilities list exactly the k tokens before it
        StringBuilder text = new StringBuilder();
        int k = -1;
        String stop = null;
        for (int i = 0; i + 1 < greedy.size(); i++) {
            String candidate = piece(greedy.get(i)) + piece(greedy.get(i + 1));
            if (i >= 5 && candidate.strip().length() >= 3 && text.indexOf(candidate) < 0
                    && (text + candidate).indexOf(candidate) == text.length()) {
                k = i;
                stop = candidate;
                break;
            }
            text.append(piece(greedy.get(i)));
        }
        assertThat(k).as("a stop string in the greedy text").isPositive();
        Map<String, Object> r = ok(t.post("/v1/completions", body("prompt", PROMPT, "max_tokens", 40,
                "temperature", 0, "stop", stop, "logprobs", 0)));
        Map<String, Object> choice = map(list(r.get("choices")).getFirst());
        assertThat(choice.get("text")).isEqualTo(text.toString());
        assertThat(choice.get("finish_reason")).isEqualTo("stop");
        assertThat(list(map(choice.get("logprobs")).get("tokens"))).hasSize(k);
    }

    private static String piece(Completion.Token token) {
        return new String(t.model.tokenizer().bytes(token.id()), StandardCharsets.UTF_8);
    }
}
