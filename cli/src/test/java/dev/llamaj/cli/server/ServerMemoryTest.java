package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/// Request bodies built to take much more heap than their size, many at once, against a server in a child JVM
/// with a small heap: nothing may run out of memory, and afterwards the server must still cut off slow clients
/// (its timeouts run on threads an `OutOfMemoryError` kills) and serve.
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ServerMemoryTest {
    static final int MAX_BODY = 2 << 20;
    static final int CLIENTS = 16;
    static final int HEADER_TIMEOUT = 2;

    @TempDir
    Path dir;

    /// `{"prompt":"x","a":[{},{},...]}` of exactly `bytes` bytes: an empty object (about 64 bytes of heap) per
    /// three bytes.
    static String amplificationBody(int bytes) {
        StringBuilder sb = new StringBuilder(bytes);
        sb.append("{\"prompt\":\"x\",\"a\":[{}");
        while (sb.length() + 3 + 2 <= bytes) {
            sb.append(",{}");
        }
        sb.append("]}");
        while (sb.length() < bytes) {
            sb.insert(sb.length() - 2, ' ');
        }
        assertThat(sb.length()).isEqualTo(bytes);
        return sb.toString();
    }

    @Test
    void amplifyingBodiesAtTheSizeLimitInParallelRunNothingOutOfMemory() throws Exception {
        try (ChildServer server = ChildServer.start(dir, List.of("-Xmx96m"), List.of("--header-timeout",
                String.valueOf(HEADER_TIMEOUT), "--idle-timeout", "3"))) {
            Map<String, Integer> statuses = burst(server, CLIENTS);
            System.out.println("amplification bodies under -Xmx96m: " + statuses);
            // each body is refused: by its JSON limits (413) or because the memory for bodies is taken (503)
            assertThat(statuses.keySet()).as(server.log()).isSubsetOf("413", "503");
            assertServes(server);
        }
    }

    /// Without the server-wide budget, the bodies do run the heap out: whatever the `OutOfMemoryError`s hit (the
    /// JDK server's timer threads among others, sometimes; `ServerLimitsTest` checks the recovery from that
    /// deterministically), the server's timeouts must still work afterwards, and it must serve.
    @Test
    void afterOutOfMemoryErrorsTimeoutsStillFire() throws Exception {
        try (ChildServer server = ChildServer.start(dir, List.of("-Xmx32m"), List.of("--header-timeout",
                String.valueOf(HEADER_TIMEOUT), "--idle-timeout", "3", "--request-memory", "100000000000"))) {
            Map<String, Integer> statuses = burst(server, 2 * CLIENTS);
            System.out.println("amplification bodies under -Xmx32m without a budget: " + statuses);
            assertServes(server);
            String log = server.log();
            System.out.println("out of memory " + log.split("OutOfMemoryError", -1).length + " time(s) less one;"
                    + " listener restarts: " + (log.split("restarting the listener", -1).length - 1));
        }
    }

    private static Map<String, Integer> burst(ChildServer server, int clients) throws Exception {
        String body = amplificationBody(MAX_BODY);
        Map<String, Integer> statuses = new TreeMap<>();
        try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            List<CompletableFuture<String>> all = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                all.add(client.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port
                                + "/v1/completions")).timeout(Duration.ofSeconds(30))
                                .POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                        HttpResponse.BodyHandlers.ofString())
                        .thenApply(r -> String.valueOf(r.statusCode()))
                        .exceptionally(e -> e.getCause() == null ? e.toString() : e.getCause().toString()));
            }
            for (CompletableFuture<String> f : all) {
                statuses.merge(f.get(60, TimeUnit.SECONDS), 1, Integer::sum);
            }
        }
        return statuses;
    }

    /// Slow clients are cut off after the header timeout, `/health` and a completion answer 200.
    private static void assertServes(ChildServer server) throws IOException, InterruptedException {
        // A connection made while a listener is being replaced is closed at once, by the replacement rather than
        // by a timeout: try again (a few times at most) until the connection met the new listener.
        double cut = server.secondsUntilASlowClientIsCutOff(HEADER_TIMEOUT + 10);
        for (int attempt = 0; attempt < 3 && cut >= 0 && cut < HEADER_TIMEOUT / 2.0; attempt++) {
            Thread.sleep(500);
            cut = server.secondsUntilASlowClientIsCutOff(HEADER_TIMEOUT + 10);
        }
        System.out.printf("then a slow client was cut off after %.1f s (header timeout %d s)%n", cut, HEADER_TIMEOUT);
        assertThat(cut).as("the slow client was cut off by the header timeout; " + server.log())
                .isBetween(HEADER_TIMEOUT / 2.0, HEADER_TIMEOUT + 3.0);
        try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            URI base = URI.create("http://127.0.0.1:" + server.port);
            HttpResponse<String> health = client.send(HttpRequest.newBuilder(base.resolve("/health"))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(health.statusCode()).as(health.body()).isEqualTo(200);
            HttpResponse<String> completion = client.send(HttpRequest.newBuilder(base.resolve("/v1/completions"))
                    .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\":\"Once upon a time\",\"max_tokens\":5}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(completion.statusCode()).as(completion.body()).isEqualTo(200);
        }
    }
}
