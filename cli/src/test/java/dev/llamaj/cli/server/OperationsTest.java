package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.map;
import static dev.llamaj.cli.server.TestServer.number;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Json;
import dev.llamaj.gguf.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// The server in production: `/metrics` (read by independent parsers), `/ready` and `/health`, and the JSON
/// access log.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OperationsTest {
    static final String PROMPT = "Once upon a time";

    /// A log that tests can read, line by line.
    static final class Lines {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream stream = new PrintStream(bytes, true, StandardCharsets.UTF_8);

        List<String> lines() {
            return bytes.toString(StandardCharsets.UTF_8).lines().toList();
        }
    }

    static TestServer start(ServerConfig config, Operations ops, PrintStream log) throws Exception {
        return TestServer.start(config, TestServer.TEMPLATE, SharedData.require("models/stories260K.gguf"), ops,
                log);
    }

    static Map<String, PrometheusText.Family> scrape(TestServer t) throws Exception {
        HttpResponse<String> r = t.get("/metrics");
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type")).hasValue("text/plain; version=0.0.4; charset=utf-8");
        return PrometheusText.parse(r.body());
    }

    /// The value of one series (0 when absent, as Prometheus treats a counter not yet seen).
    static double value(Map<String, PrometheusText.Family> families, String family, String sample,
                        Map<String, String> labels) {
        return families.get(family).samples().stream()
                .filter(s -> s.name().equals(sample) && s.labels().equals(labels))
                .mapToDouble(PrometheusText.Sample::value).findFirst().orElse(0);
    }

    static double value(Map<String, PrometheusText.Family> families, String name) {
        return value(families, name, name, Map.of());
    }

    @Test
    void metricsCountWhatTheRequestsDid() throws Exception {
        try (TestServer t = start(TestServer.config().parallel(2).contextLength(128).build(), Operations.NONE,
                null)) {
            Map<String, PrometheusText.Family> before = scrape(t);
            assertThat(value(before, "llamaj_slots")).isEqualTo(2);
            assertThat(value(before, "llamaj_ready")).isEqualTo(1);
            assertThat(value(before, "llamaj_kv_cache_capacity_tokens")).isEqualTo(256);
            assertThat(value(before, "llamaj_generated_tokens_total")).isZero();
            assertThat(before.get("llamaj_time_to_first_token_seconds").type()).isEqualTo("histogram");

            HttpResponse<String> a = t.post("/v1/completions", Map.of("prompt", PROMPT, "max_tokens", 12,
                    "temperature", 0));
            HttpResponse<String> b = t.post("/v1/chat/completions", Map.of("messages", OpenAiServerTest.user("Hi"),
                    "max_tokens", 7, "stream", true, "stream_options", Map.of("include_usage", true)));
            assertThat(t.post("/v1/completions", Map.of("prompt", PROMPT, "max_tokens", 0)).statusCode())
                    .isEqualTo(400);
            assertThat(t.get("/nowhere/" + "x".repeat(50)).statusCode()).isEqualTo(404);
            Map<String, Object> usageA = map(json(a).get("usage"));
            Map<String, Object> usageB = TestServer.parseStream(b.body(), true).usage();
            long generated = number(usageA.get("completion_tokens")) + number(usageB.get("completion_tokens"));
            long prompt = number(usageA.get("prompt_tokens")) + number(usageB.get("prompt_tokens"));

            Map<String, PrometheusText.Family> after = scrape(t);
            assertThat(value(after, "llamaj_requests_total", "llamaj_requests_total",
                    Map.of("endpoint", "/v1/completions", "status", "200"))).isEqualTo(1);
            assertThat(value(after, "llamaj_requests_total", "llamaj_requests_total",
                    Map.of("endpoint", "/v1/completions", "status", "400"))).isEqualTo(1);
            assertThat(value(after, "llamaj_requests_total", "llamaj_requests_total",
                    Map.of("endpoint", "/v1/chat/completions", "status", "200"))).isEqualTo(1);
            // an unknown path is counted as "other", not under its own name
            assertThat(value(after, "llamaj_requests_total", "llamaj_requests_total",
                    Map.of("endpoint", "other", "status", "404"))).isEqualTo(1);
            // the first scrape itself was counted
            assertThat(value(after, "llamaj_requests_total", "llamaj_requests_total",
                    Map.of("endpoint", "/metrics", "status", "200"))).isEqualTo(1);
            assertThat(value(after, "llamaj_generated_tokens_total")).isEqualTo(generated);
            assertThat(value(after, "llamaj_prompt_tokens_total")).isEqualTo(prompt);
            assertThat(value(after, "llamaj_time_to_first_token_seconds",
                    "llamaj_time_to_first_token_seconds_count", Map.of())).isEqualTo(2);
            assertThat(value(after, "llamaj_time_per_output_token_seconds",
                    "llamaj_time_per_output_token_seconds_count", Map.of())).isEqualTo(generated - 2);
            assertThat(value(after, "llamaj_queue_wait_seconds", "llamaj_queue_wait_seconds_count", Map.of()))
                    .isEqualTo(2);
            assertThat(value(after, "llamaj_generation_tokens_per_second")).isPositive();
            // idle slots keep their contexts for the next prompt: the cache holds both conversations
            assertThat(value(after, "llamaj_kv_cache_tokens")).isBetween((double) prompt, (double) prompt + generated);
            assertThat(value(after, "llamaj_kv_cache_usage_ratio"))
                    .isEqualTo(value(after, "llamaj_kv_cache_tokens") / 256);
            assertThat(value(after, "llamaj_slots_busy")).isZero();
            assertThat(value(after, "llamaj_queue_depth")).isZero();
            assertThat(after.get("llamaj_escalations_total").samples()).as("no fallback, no reasons").isEmpty();
        }
    }

    @Test
    void busySlotsAndQueueDepthAreLive() throws Exception {
        try (TestServer t = start(TestServer.config().parallel(1).queueLimit(4).build(), Operations.NONE, null)) {
            t.server.pausePerPiece(Duration.ofMillis(30));
            CompletableFuture<HttpResponse<String>> first = CompletableFuture.supplyAsync(() -> post(t, 40));
            TestServer.await("the slot is busy", Duration.ofSeconds(10), () -> t.server.busySlots() == 1);
            CompletableFuture<HttpResponse<String>> second = CompletableFuture.supplyAsync(() -> post(t, 2));
            TestServer.await("one request waits", Duration.ofSeconds(10), () -> t.server.queuedRequests() == 1);
            Map<String, PrometheusText.Family> during = scrape(t);
            assertThat(value(during, "llamaj_slots_busy")).isEqualTo(1);
            assertThat(value(during, "llamaj_queue_depth")).isEqualTo(1);
            // the running slot's context grows once its prompt is in
            TestServer.await("the running slot's cache shows", Duration.ofSeconds(10), () -> {
                try {
                    return value(scrape(t), "llamaj_kv_cache_tokens") > 0;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            assertThat(first.get().statusCode()).isEqualTo(200);
            assertThat(second.get().statusCode()).isEqualTo(200);
        }
    }

    private static HttpResponse<String> post(TestServer t, int maxTokens) {
        try {
            return t.post("/v1/completions", Map.of("prompt", PROMPT, "max_tokens", maxTokens, "temperature", 0));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void readyOnlyAfterTheWarmUpAndNotWhileDraining() throws Exception {
        Lines log = new Lines();
        OpenAiServer.warmupDelayMillisForTests = 1500;
        TestServer t;
        try {
            t = start(TestServer.config().build(), new Operations(null, false, true, null), log.stream);
        } finally {
            OpenAiServer.warmupDelayMillisForTests = 0;
        }
        try (t) {
            HttpResponse<String> notYet = t.get("/ready");
            assertThat(notYet.statusCode()).isEqualTo(503);
            assertThat(json(notYet)).containsEntry("status", "warming_up");
            // alive all the same: a liveness probe must not kill a server that is warming up
            HttpResponse<String> health = t.get("/health");
            assertThat(health.statusCode()).isEqualTo(200);
            assertThat(json(health)).containsEntry("status", "ok").containsEntry("ready", false);
            assertThat(value(scrape(t), "llamaj_ready")).isZero();

            TestServer.await("ready", Duration.ofSeconds(20), () -> {
                try {
                    return t.get("/ready").statusCode() == 200;
                } catch (Exception e) {
                    return false;
                }
            });
            assertThat(json(t.get("/ready"))).containsEntry("status", "ready");
            assertThat(json(t.get("/health"))).containsEntry("ready", true);
            assertThat(log.lines()).anyMatch(l -> l.matches("llama: warmed up in [0-9.]+ s"));
            assertThat(t.get("/ready").headers().firstValue("Content-Type")).hasValue("application/json");
            for (String path : List.of("/ready", "/metrics")) {
                HttpResponse<String> head = t.client.send(t.request(path).method("HEAD",
                        java.net.http.HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(head.statusCode()).as("HEAD " + path).isEqualTo(200);
                assertThat(head.body()).isEmpty();
                HttpResponse<String> post = t.post(path, "{}");
                assertThat(post.statusCode()).as("POST " + path).isEqualTo(405);
                assertThat(post.headers().firstValue("Allow")).hasValue("GET, HEAD");
            }

            // draining: a request in flight, then shutdown; the open connection asks /ready again
            t.server.pausePerPiece(Duration.ofMillis(50));
            CompletableFuture<HttpResponse<String>> inFlight = CompletableFuture.supplyAsync(() -> post(t, 30));
            TestServer.await("generating", Duration.ofSeconds(10), () -> t.server.busySlots() == 1);
            try (Socket s = t.rawSocket()) {
                assertThat(rawGet(s, "/ready")).startsWith("HTTP/1.1 200");
                Thread stopper = Thread.ofPlatform().start(() -> t.server.shutdown(Duration.ofSeconds(10)));
                TestServer.await("draining", Duration.ofSeconds(10), () -> !t.server.ready());
                assertThat(rawGet(s, "/ready")).startsWith("HTTP/1.1 503").contains("\"shutting_down\"");
                assertThat(inFlight.get().statusCode()).as("the request in flight finishes").isEqualTo(200);
                stopper.join();
            }
        }
    }

    /// GET on an open keep-alive connection; returns the whole response (its body is short).
    private static String rawGet(Socket s, String path) throws Exception {
        OutputStream out = s.getOutputStream();
        out.write(("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
        InputStream in = s.getInputStream();
        String head = TestServer.readUntil(in, "\r\n\r\n");
        int length = Integer.parseInt(head.replaceAll("(?si).*content-length: *(\\d+).*", "$1"));
        return head + new String(in.readNBytes(length), StandardCharsets.UTF_8);
    }

    @Test
    void accessLogHasOneJsonLinePerRequestAndNoContent() throws Exception {
        Lines access = new Lines();
        Lines log = new Lines();
        String secret = "The secret password is hunter2";
        try (TestServer t = start(TestServer.config().parallel(1).build(),
                new Operations(access.stream, false, false, null), log.stream)) {
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", secret, "max_tokens", 5,
                    "temperature", 0));
            String text = (String) map(TestServer.list(json(r).get("choices")).getFirst()).get("text");
            assertThat(r.headers().firstValue("X-Request-Id")).hasValue((String) json(r).get("id"));
            t.post("/v1/chat/completions", Map.of("messages", OpenAiServerTest.user(secret), "max_tokens", 3,
                    "stream", true));
            t.post("/v1/completions", Map.of("prompt", secret, "max_tokens", -1));
            t.get("/health");

            // each line is written once its response is complete
            TestServer.await("4 access log lines", Duration.ofSeconds(5), () -> access.lines().size() == 4);
            List<String> lines = access.lines();
            for (String line : lines) {
                assertThat(line).doesNotContain("secret").doesNotContain("hunter2");
                if (!text.isBlank()) {
                    assertThat(line).doesNotContain(text.strip());
                }
            }
            // (each line is written when its response is complete: in order here, but that is not what is tested)
            List<Map<String, Object>> parsed = lines.stream().map(Json::parseObject).toList();
            Map<String, Object> first = one(parsed, l -> json(r).get("id").equals(l.get("id")));
            assertThat(first).containsEntry("id", json(r).get("id")).containsEntry("method", "POST")
                    .containsEntry("path", "/v1/completions").containsEntry("status", 200L)
                    .containsEntry("route", "local")
                    .containsEntry("prompt_tokens", map(json(r).get("usage")).get("prompt_tokens"))
                    .containsEntry("cached_tokens", 0L).containsEntry("completion_tokens", 5L)
                    .containsEntry("remote", "127.0.0.1").containsKeys("time", "queue_ms", "ttft_ms", "total_ms")
                    .doesNotContainKeys("prompt", "output");
            assertThat(((Number) first.get("ttft_ms")).doubleValue())
                    .isLessThanOrEqualTo(((Number) first.get("total_ms")).doubleValue());
            assertThat(java.time.Instant.parse((String) first.get("time"))).isNotNull();
            Map<String, Object> streamed = one(parsed, l -> "/v1/chat/completions".equals(l.get("path")));
            assertThat(streamed).containsEntry("path", "/v1/chat/completions").containsEntry("status", 200L)
                    .containsEntry("completion_tokens", 3L).containsKey("ttft_ms");
            Map<String, Object> refused = one(parsed, l -> Long.valueOf(400).equals(l.get("status")));
            assertThat(refused).containsEntry("status", 400L).containsEntry("error", "invalid_request_error")
                    .doesNotContainKeys("route", "completion_tokens");
            assertThat(one(parsed, l -> "/health".equals(l.get("path")))).containsEntry("status", 200L)
                    .doesNotContainKey("id");
            // the access log replaces the plain request lines
            assertThat(log.lines()).noneMatch(l -> l.contains("/v1/completions"));
        }
    }

    private static Map<String, Object> one(List<Map<String, Object>> lines,
                                           java.util.function.Predicate<Map<String, Object>> which) {
        List<Map<String, Object>> found = lines.stream().filter(which).toList();
        assertThat(found).as("one line of %s", lines).hasSize(1);
        return found.getFirst();
    }

    @Test
    void aClientThatLeavesBeforeItsAnswerIsCountedAs499() throws Exception {
        Lines access = new Lines();
        try (TestServer t = start(TestServer.config().build(), new Operations(access.stream, false, false, null),
                null)) {
            try (Socket s = t.rawSocket()) {
                s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                        + "{\"prompt\": \"Once").getBytes(StandardCharsets.US_ASCII));
                s.getOutputStream().flush();
            } // closed with 85 bytes of the body unsent
            TestServer.await("the access log line", Duration.ofSeconds(10), () -> !access.lines().isEmpty());
            assertThat(Json.parseObject(access.lines().getFirst())).containsEntry("status", 499L)
                    .containsEntry("path", "/v1/completions");
            assertThat(value(scrape(t), "llamaj_requests_total", "llamaj_requests_total",
                    Map.of("endpoint", "/v1/completions", "status", "499"))).isEqualTo(1);
        }
    }

    @Test
    void logContentPutsThePromptAndTheAnswerInTheAccessLog() throws Exception {
        Lines access = new Lines();
        try (TestServer t = start(TestServer.config().build(), new Operations(access.stream, true, false, null),
                null)) {
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", PROMPT, "max_tokens", 6,
                    "temperature", 0));
            String text = (String) map(TestServer.list(json(r).get("choices")).getFirst()).get("text");
            t.post("/v1/chat/completions", Map.of("messages", OpenAiServerTest.user("Hi there"), "max_tokens", 2));
            TestServer.await("2 access log lines", Duration.ofSeconds(5), () -> access.lines().size() == 2);
            List<Map<String, Object>> parsed = access.lines().stream().map(Json::parseObject).toList();
            Map<String, Object> line = one(parsed, l -> "/v1/completions".equals(l.get("path")));
            assertThat(line).containsEntry("prompt", PROMPT).containsEntry("output", text);
            Map<String, Object> chat = one(parsed, l -> "/v1/chat/completions".equals(l.get("path")));
            assertThat(chat.get("prompt")).isEqualTo(List.of(Map.of("role", "user", "content", "Hi there")));
        }
    }
}
