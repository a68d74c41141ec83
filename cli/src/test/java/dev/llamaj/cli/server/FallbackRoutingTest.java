package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// Hybrid routing over loopback: each rule escalates to a fallback (a recording stub, or a second server), the
/// answer says which way it went, `route: local` never escalates, and a fallback that is down or slow gives a
/// clear error within its timeout. Nothing of the request's content nor the key reaches the log.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FallbackRoutingTest {
    static final String KEY = "sk-fallback-secret-42";
    /// Far more than the local server's 64-token context.
    static final String LONG = "Once upon a time there was a little dog who liked to run in the park. ".repeat(12);

    final OperationsTest.Lines log = new OperationsTest.Lines();
    final OperationsTest.Lines access = new OperationsTest.Lines();
    StubFallback stub;
    TestServer local;

    @AfterEach
    void stop() {
        if (local != null) {
            local.close();
        }
        if (stub != null) {
            stub.close();
        }
    }

    static Fallback fallback(URI url, Set<Fallback.Rule> rules, Duration timeout) {
        return new Fallback(url, KEY, rules, Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY, timeout,
                "big-model");
    }

    /// A local server with a 64-token context, one slot and no queue, escalating on `rules` to `url`.
    TestServer local(URI url, Set<Fallback.Rule> rules, Duration timeout) throws Exception {
        local = TestServer.start(TestServer.config().parallel(1).queueLimit(0).contextLength(64).build(),
                TestServer.TEMPLATE, SharedData.require("models/stories260K.gguf"),
                new Operations(access.stream, false, false, fallback(url, rules, timeout)), log.stream);
        return local;
    }

    TestServer localWithStub() throws Exception {
        stub = new StubFallback();
        return local(stub.baseUrl(), EnumSet.of(Fallback.Rule.QUEUE_FULL, Fallback.Rule.TOO_LONG),
                Duration.ofSeconds(5));
    }

    static double escalations(TestServer t, String reason) throws Exception {
        return OperationsTest.value(OperationsTest.scrape(t), "llamaj_escalations_total", "llamaj_escalations_total",
                Map.of("reason", reason));
    }

    private void assertNothingSecretLogged() {
        for (String line : java.util.stream.Stream.concat(log.lines().stream(), access.lines().stream()).toList()) {
            assertThat(line).doesNotContain(KEY).doesNotContain("little dog").doesNotContain(StubFallback.TEXT);
        }
    }

    @Test
    void aPromptTooLongForTheContextIsAnsweredByTheFallback() throws Exception {
        TestServer t = localWithStub();
        HttpResponse<String> r = t.post("/v1/chat/completions", Map.of("model", "stories260K",
                "messages", OpenAiServerTest.user(LONG), "max_tokens", 5));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
        Map<String, Object> answer = json(r);
        assertThat(map(map(list(answer.get("choices")).getFirst()).get("message")))
                .containsEntry("content", StubFallback.TEXT);
        assertThat(map(answer.get("usage"))).containsEntry("route", "fallback")
                .containsEntry("escalation", "too-long").containsEntry("completion_tokens", 4L);

        // what the fallback got: the request, with its model name and the key, without "route"
        assertThat(stub.received).hasSize(1);
        StubFallback.Received sent = stub.received.getFirst();
        assertThat(sent.path()).isEqualTo("/v1/chat/completions");
        assertThat(sent.authorization()).isEqualTo("Bearer " + KEY);
        assertThat(sent.body()).containsEntry("model", "big-model").containsEntry("max_tokens", 5L)
                .containsEntry("messages", OpenAiServerTest.user(LONG)).doesNotContainKey("route");

        assertThat(escalations(t, "too-long")).isEqualTo(1);
        assertThat(escalations(t, "queue-full")).as("listed from the start").isZero();
        assertThat(log.lines()).anyMatch(l -> l.matches("llama: chatcmpl-\\w+ escalated to the fallback: too-long"));
        // the access log says which way it went, with the fallback's token counts
        TestServer.await("the access log line", Duration.ofSeconds(5), () -> !access.lines().isEmpty());
        Map<String, Object> line = dev.llamaj.cli.Json.parseObject(access.lines().getFirst());
        assertThat((String) line.get("id")).startsWith("chatcmpl-");
        assertThat(line).containsEntry("status", 200L).containsEntry("route", "fallback")
                .containsEntry("escalation", "too-long").containsEntry("completion_tokens", 4L)
                .doesNotContainKeys("queue_ms", "ttft_ms", "output", "prompt");
        assertThat(r.headers().firstValue("X-Request-Id")).hasValue((String) line.get("id"));
        assertNothingSecretLogged();
    }

    @Test
    void aStreamedEscalationIsPassedThroughAsItComes() throws Exception {
        TestServer t = localWithStub();
        HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", LONG, "max_tokens", 5, "stream", true,
                "route", "auto"));
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
        assertThat(r.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/event-stream");
        StringBuilder text = new StringBuilder();
        List<String> events = TestServer.events(r.body());
        assertThat(events.getLast()).isEqualTo("[DONE]");
        for (String e : events.subList(0, events.size() - 1)) {
            text.append((String) map(list(map(dev.llamaj.cli.Json.parse(e)).get("choices")).getFirst()).get("text"));
        }
        assertThat(text.toString()).isEqualTo(StubFallback.TEXT);
        assertThat(stub.received.getFirst().path()).isEqualTo("/v1/completions");
    }

    @Test
    void aFullQueueSendsTheNextRequestToTheFallback() throws Exception {
        TestServer t = localWithStub();
        t.server.pausePerPiece(Duration.ofMillis(50));
        HttpResponse<InputStream> busy = t.open("/v1/completions", Map.of("prompt", "Once", "max_tokens", 40,
                "stream", true));
        try (InputStream events = busy.body()) {
            TestServer.readFirstEvent(events); // the one slot is generating, and there is no queue
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", "Tom", "max_tokens", 3));
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
            assertThat(map(json(r).get("usage"))).containsEntry("escalation", "queue-full");

            // route: local stays here, and gets the 503 it would have got without a fallback
            HttpResponse<String> stays = t.post("/v1/completions", Map.of("prompt", "Tom", "max_tokens", 3,
                    "route", "local"));
            assertThat(stays.statusCode()).isEqualTo(503);
            assertThat(stays.headers().firstValue(OpenAiServer.ROUTE_HEADER)).isEmpty();
        }
        assertThat(stub.received).hasSize(1);
        assertThat(escalations(t, "queue-full")).isEqualTo(1);
    }

    @Test
    void aRequestThatWaitedTheQueueTimeoutGoesToTheFallback() throws Exception {
        stub = new StubFallback();
        local = TestServer.start(TestServer.config().parallel(1).queueLimit(1).queueTimeout(Duration.ofSeconds(1))
                        .build(), TestServer.TEMPLATE, SharedData.require("models/stories260K.gguf"),
                new Operations(null, false, false, fallback(stub.baseUrl(), EnumSet.of(Fallback.Rule.QUEUE_FULL),
                        Duration.ofSeconds(5))), log.stream);
        local.server.pausePerPiece(Duration.ofMillis(100));
        HttpResponse<InputStream> busy = local.open("/v1/completions", Map.of("prompt", "Once", "max_tokens", 60,
                "stream", true));
        try (InputStream events = busy.body()) {
            TestServer.readFirstEvent(events);
            long start = System.nanoTime();
            HttpResponse<String> r = local.post("/v1/completions", Map.of("prompt", "Tom", "max_tokens", 3));
            assertThat((System.nanoTime() - start) / 1e9).as("after the 1 s wait").isGreaterThan(0.9);
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(map(json(r).get("usage"))).containsEntry("escalation", "queue-full");
            assertThat(local.server.queuedRequests()).as("withdrawn from the queue").isZero();
        }
        assertThat(stub.received).hasSize(1);
    }

    @Test
    void jsonCutShortGoesToTheFallback() throws Exception {
        stub = new StubFallback();
        TestServer t = local(stub.baseUrl(), EnumSet.of(Fallback.Rule.SCHEMA_FAILURE), Duration.ofSeconds(5));
        // the grammar keeps the answer JSON, but 3 tokens cannot close it
        Map<String, Object> cut = Map.of("prompt", "Once", "max_tokens", 3, "response_format",
                Map.of("type", "json_object"));
        HttpResponse<String> r = t.post("/v1/completions", cut);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
        assertThat(map(json(r).get("usage"))).containsEntry("escalation", "schema-failure");
        assertThat(stub.received.getFirst().body()).containsEntry("response_format", Map.of("type", "json_object"));
        // without response_format the same cut answer is fine, and a stream is never judged
        HttpResponse<String> plain = t.post("/v1/completions", Map.of("prompt", "Once", "max_tokens", 3));
        assertThat(plain.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("local");
        Map<String, Object> streamed = new java.util.HashMap<>(cut);
        streamed.put("stream", true);
        assertThat(t.post("/v1/completions", streamed).headers().firstValue(OpenAiServer.ROUTE_HEADER))
                .hasValue("local");
        assertThat(stub.received).hasSize(1);
        assertThat(escalations(t, "schema-failure")).isEqualTo(1);
    }

    @Test
    void routeLocalNeverEscalates() throws Exception {
        TestServer t = localWithStub();
        HttpResponse<String> r = t.post("/v1/chat/completions", Map.of("messages", OpenAiServerTest.user(LONG),
                "route", "local"));
        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(map(json(r).get("error"))).containsEntry("code", "context_length_exceeded");
        assertThat(stub.received).isEmpty();
        assertThat(escalations(t, "too-long")).isZero();
    }

    @Test
    void localAnswersSayTheyAreLocal() throws Exception {
        TestServer t = localWithStub();
        HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", "Once upon a time", "max_tokens", 4));
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("local");
        assertThat(map(json(r).get("usage"))).containsEntry("route", "local");
        HttpResponse<String> s = t.post("/v1/chat/completions", Map.of("messages", OpenAiServerTest.user("Hi"),
                "max_tokens", 3, "stream", true, "stream_options", Map.of("include_usage", true)));
        assertThat(s.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("local");
        assertThat(TestServer.parseStream(s.body(), true).usage()).containsEntry("route", "local");
        assertThat(stub.received).isEmpty();
    }

    @Test
    void badRouteValuesAreRefused() throws Exception {
        TestServer t = localWithStub();
        for (Object bad : List.of("remote", "", 1, true, List.of("local"))) {
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", "Once", "route", bad));
            assertThat(r.statusCode()).as(String.valueOf(bad)).isEqualTo(400);
            assertThat(map(json(r).get("error"))).containsEntry("param", "route");
        }
        assertThat(stub.received).isEmpty();
    }

    @Test
    void aFallbackThatIsDownGivesA502AtOnce() throws Exception {
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = s.getLocalPort();
        }
        TestServer t = local(URI.create("http://127.0.0.1:" + closed + "/v1"), EnumSet.of(Fallback.Rule.TOO_LONG),
                Duration.ofSeconds(10));
        long start = System.nanoTime();
        HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", LONG));
        assertThat((System.nanoTime() - start) / 1e9).isLessThan(5);
        assertThat(r.statusCode()).isEqualTo(502);
        assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
        Map<String, Object> error = map(json(r).get("error"));
        assertThat(error).containsEntry("code", "fallback_unreachable");
        assertThat((String) error.get("message")).contains("could not be reached").doesNotContain(String.valueOf(closed));
        assertThat(OperationsTest.value(OperationsTest.scrape(t), "llamaj_fallback_errors_total",
                "llamaj_fallback_errors_total", Map.of("kind", "fallback_unreachable"))).isEqualTo(1);
    }

    @Test
    void aSlowFallbackGivesA504WithinItsTimeout() throws Exception {
        stub = new StubFallback();
        stub.delayMillis = 10_000;
        TestServer t = local(stub.baseUrl(), EnumSet.of(Fallback.Rule.TOO_LONG), Duration.ofSeconds(1));
        for (boolean stream : new boolean[] {false, true}) {
            long start = System.nanoTime();
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", LONG, "stream", stream));
            double seconds = (System.nanoTime() - start) / 1e9;
            assertThat(seconds).as("answered after the 1 s timeout, not the fallback's 10 s").isBetween(0.9, 4.0);
            assertThat(r.statusCode()).isEqualTo(504);
            assertThat(map(json(r).get("error"))).containsEntry("code", "fallback_timeout");
            assertThat((String) map(json(r).get("error")).get("message")).contains("within 1 s");
        }
        assertThat(stub.received).hasSize(2);
        assertNothingSecretLogged();
    }

    @Test
    void aSecondServerCanBeTheFallback() throws Exception {
        try (TestServer big = TestServer.start(TestServer.config().contextLength(512).build())) {
            TestServer t = local(URI.create("http://127.0.0.1:" + big.server.port() + "/v1"),
                    EnumSet.of(Fallback.Rule.TOO_LONG), Duration.ofSeconds(30));
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", LONG, "max_tokens", 6,
                    "temperature", 0));
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
            Map<String, Object> answer = json(r);
            assertThat(map(answer.get("usage"))).containsEntry("route", "fallback")
                    .containsEntry("escalation", "too-long").containsEntry("completion_tokens", 6L);
            assertThat((long) map(answer.get("usage")).get("prompt_tokens")).isGreaterThan(64);
            // the second server generated it: the same text as its own greedy answer
            HttpResponse<String> direct = big.post("/v1/completions", Map.of("prompt", LONG, "max_tokens", 6,
                    "temperature", 0));
            assertThat(map(list(answer.get("choices")).getFirst()).get("text"))
                    .isEqualTo(map(list(json(direct).get("choices")).getFirst()).get("text"));
        }
    }

    /// The mean and lowest log-probability of the greedy answer to `body`, as the server reports them.
    static double[] logprobs(TestServer t, Map<String, Object> body) throws Exception {
        Map<String, Object> withLogprobs = new java.util.HashMap<>(body);
        withLogprobs.put("logprobs", 0);
        withLogprobs.put("route", "local");
        HttpResponse<String> r = t.post("/v1/completions", withLogprobs);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        List<Object> values = list(map(map(list(json(r).get("choices")).getFirst()).get("logprobs"))
                .get("token_logprobs"));
        double[] v = values.stream().mapToDouble(o -> ((Number) o).doubleValue()).toArray();
        assertThat(v).hasSize(8);
        return new double[] {java.util.Arrays.stream(v).average().orElseThrow(),
                java.util.Arrays.stream(v).min().orElseThrow()};
    }

    TestServer confidence(double minMean, double minToken) throws Exception {
        if (local != null) {
            local.close();
        }
        local = TestServer.start(TestServer.config().parallel(1).contextLength(64).build(), TestServer.TEMPLATE,
                SharedData.require("models/stories260K.gguf"), new Operations(access.stream, false, false,
                        new Fallback(stub.baseUrl(), KEY, EnumSet.of(Fallback.Rule.LOW_CONFIDENCE), minMean,
                                minToken, Duration.ofSeconds(5), null)), log.stream);
        return local;
    }

    @Test
    void answersBelowTheConfidenceThresholdsGoToTheFallback() throws Exception {
        stub = new StubFallback();
        Map<String, Object> body = Map.of("prompt", "Once upon a time", "max_tokens", 8, "temperature", 0);
        double[] measured = logprobs(confidence(-1000, -1000), body);
        double mean = measured[0];
        double min = measured[1];
        assertThat(min).isLessThan(mean).isNegative();

        // just above the answer's mean: escalated; just below: answered here
        TestServer t = confidence(mean + 0.01, Double.NEGATIVE_INFINITY);
        HttpResponse<String> r = t.post("/v1/completions", body);
        assertThat(r.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("fallback");
        assertThat(map(json(r).get("usage"))).containsEntry("escalation", "low-confidence");
        assertThat(escalations(t, "low-confidence")).isEqualTo(1);
        // streamed answers are not judged (they are sent as they are made), and route: local is never escalated
        HttpResponse<String> streamed = t.post("/v1/completions", Map.of("prompt", "Once upon a time",
                "max_tokens", 8, "temperature", 0, "stream", true));
        assertThat(streamed.headers().firstValue(OpenAiServer.ROUTE_HEADER)).hasValue("local");
        Map<String, Object> pinned = new java.util.HashMap<>(body);
        pinned.put("route", "local");
        assertThat(t.post("/v1/completions", pinned).headers().firstValue(OpenAiServer.ROUTE_HEADER))
                .hasValue("local");
        assertThat(stub.received).hasSize(1);

        t = confidence(mean - 0.01, Double.NEGATIVE_INFINITY);
        assertThat(t.post("/v1/completions", body).headers().firstValue(OpenAiServer.ROUTE_HEADER))
                .hasValue("local");

        // the lowest token: just above it escalates, just below it does not
        t = confidence(Double.NEGATIVE_INFINITY, min + 0.01);
        assertThat(t.post("/v1/completions", body).headers().firstValue(OpenAiServer.ROUTE_HEADER))
                .hasValue("fallback");
        t = confidence(Double.NEGATIVE_INFINITY, min - 0.01);
        assertThat(t.post("/v1/completions", body).headers().firstValue(OpenAiServer.ROUTE_HEADER))
                .hasValue("local");
        assertThat(stub.received).hasSize(2);
        assertNothingSecretLogged();
    }

    @Test
    void badFallbackSettingsAreRefused() {
        URI url = URI.create("http://127.0.0.1:1/v1");
        Set<Fallback.Rule> rules = EnumSet.of(Fallback.Rule.TOO_LONG);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> fallback(URI.create("ftp://x/v1"), rules,
                Duration.ofSeconds(1))).hasMessageContaining("--fallback-url must be an http");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> fallback(URI.create("http://x/v1?a=b"), rules,
                Duration.ofSeconds(1))).hasMessageContaining("query");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> fallback(url, Set.of(), Duration.ofSeconds(1)))
                .hasMessageContaining("at least one rule");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> fallback(url, rules, Duration.ZERO))
                .hasMessageContaining("--fallback-timeout");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new Fallback(url, null,
                EnumSet.of(Fallback.Rule.LOW_CONFIDENCE), Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY,
                Duration.ofSeconds(1), null)).hasMessageContaining("--min-mean-logprob or --min-token-logprob");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new Fallback(url, null, rules, 0.5,
                Double.NEGATIVE_INFINITY, Duration.ofSeconds(1), null)).hasMessageContaining("0 or below");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Fallback.Rule.parse("queue-full,sometimes"))
                .hasMessage("--fallback-on: unknown rule 'sometimes' (use queue-full, too-long, low-confidence,"
                        + " schema-failure)");
        assertThat(Fallback.Rule.parse("too-long, QUEUE-FULL")).containsExactlyInAnyOrder(Fallback.Rule.TOO_LONG,
                Fallback.Rule.QUEUE_FULL);
        assertThat(fallback(url, rules, Duration.ofSeconds(1)).toString()).doesNotContain(KEY);
        assertThat(fallback(url, rules, Duration.ofSeconds(1)).endpoint("completions"))
                .isEqualTo(URI.create("http://127.0.0.1:1/v1/completions"));
    }

    @Test
    void schemaFailureMeansAnAnswerThatIsNotJson() {
        assertThat(Routing.asksForJson(Map.of("response_format", Map.of("type", "json_object")))).isTrue();
        assertThat(Routing.asksForJson(Map.of("response_format", Map.of("type", "json_schema")))).isTrue();
        assertThat(Routing.asksForJson(Map.of("response_format", Map.of("type", "text")))).isFalse();
        assertThat(Routing.asksForJson(Map.of())).isFalse();
        assertThat(Routing.asksForJson(Map.of("json_schema", Map.of("type", "object")))).isTrue();
        assertThat(Routing.asksForJson(Map.of("grammar", "root ::= \"a\""))).isFalse();
        assertThat(Routing.isJson(" {\"a\": [1, 2]}\n")).isTrue();
        assertThat(Routing.isJson("[true]")).isTrue();
        assertThat(Routing.isJson("{\"a\": [1, 2")).as("cut off by max_tokens").isFalse();
        assertThat(Routing.isJson("\"just a string\"")).isFalse();
        assertThat(Routing.isJson("Sure! {\"a\": 1}")).isFalse();
        byte[] marked = Routing.markRoute("{\"usage\":{\"prompt_tokens\":2},\"choices\":[]}"
                .getBytes(StandardCharsets.UTF_8), "schema-failure").bytes();
        assertThat(new String(marked, StandardCharsets.UTF_8)).contains("\"route\":\"fallback\"")
                .contains("\"escalation\":\"schema-failure\"");
        byte[] error = "{\"error\":{\"message\":\"no\"}}".getBytes(StandardCharsets.UTF_8);
        assertThat(Routing.markRoute(error, "too-long").bytes()).as("passed on as it came").isEqualTo(error);
    }
}
