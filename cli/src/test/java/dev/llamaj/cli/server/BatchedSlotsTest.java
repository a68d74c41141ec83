package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/// `serve --parallel N` batches the busy slots' steps together: concurrent requests get exactly the answers they get
/// one at a time (greedy and seeded sampling), the steps really are shared (`/metrics`), and `--no-batching` still
/// serves.
class BatchedSlotsTest {
    private static final String[] PROMPTS = {
        "Once upon a time", "The little dog", "Lily wanted to play", "One day, a big red ball"
    };

    @Test
    void concurrentRequestsGetTheAnswersTheyGetAlone() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(4).queueLimit(8).build())) {
            assertThat(t.server.busySlots()).isZero();
            List<String> alone = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                alone.add(text(t, i));
            }
            List<String> together = new ArrayList<>();
            try (ExecutorService clients = Executors.newFixedThreadPool(PROMPTS.length)) {
                CountDownLatch go = new CountDownLatch(1);
                List<Future<String>> futures = new ArrayList<>();
                for (int i = 0; i < PROMPTS.length; i++) {
                    int k = i;
                    futures.add(clients.submit(() -> {
                        go.await();
                        return text(t, k);
                    }));
                }
                go.countDown();
                for (Future<String> f : futures) {
                    together.add(f.get());
                }
            }
            assertThat(together).isEqualTo(alone);
            String metrics = t.get("/metrics").body();
            double perStep = metrics.lines().filter(l -> l.startsWith("llamaj_batch_tokens_per_step "))
                    .mapToDouble(l -> Double.parseDouble(l.substring(l.indexOf(' ') + 1))).findFirst()
                    .orElseThrow();
            assertThat(perStep).as("tokens per batched step").isGreaterThan(1.2);
        }
    }

    @Test
    void withoutBatchingTheSlotsStillServe() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(2).batching(false).build())) {
            assertThat(text(t, 0)).isNotEmpty();
            assertThat(t.get("/metrics").body()).doesNotContain("llamaj_batch_tokens_per_step");
        }
    }

    /// Prompt `i`: greedy for even `i`, sampled with a seed for odd `i`.
    private static String text(TestServer t, int i) throws Exception {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("prompt", PROMPTS[i]);
        body.put("max_tokens", 48);
        if (i % 2 == 0) {
            body.put("temperature", 0);
        } else {
            body.put("temperature", 0.8);
            body.put("seed", 42 + i);
        }
        HttpResponse<String> r = t.post("/v1/completions", body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return (String) TestServer.map(TestServer.list(TestServer.json(r).get("choices")).getFirst()).get("text");
    }
}
