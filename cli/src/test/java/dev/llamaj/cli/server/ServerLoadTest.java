package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.OpenAiServerTest.body;
import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static dev.llamaj.cli.server.TestServer.number;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// Load and fault tests, bounded in time, on loopback: many clients at once must all get valid answers, and
/// clients that vanish mid-stream must leave no slot, thread or connection behind.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServerLoadTest {
    static final int CLIENTS = 8;
    static final int REQUESTS = 200;

    @Test
    void eightClientsTwoHundredMixedRequests() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(2).queueLimit(CLIENTS).build())) {
            // warm up (JIT) so that the numbers describe the server rather than the compiler
            for (int i = 0; i < 5; i++) {
                t.post("/v1/completions", body("prompt", "Once upon a time", "max_tokens", 16));
            }
            long threadsBefore = TestServer.llamajThreads();
            long heapBefore = usedHeapAfterGc();

            AtomicInteger next = new AtomicInteger();
            AtomicInteger failures = new AtomicInteger();
            AtomicLong generated = new AtomicLong();
            ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
            ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
            long start = System.nanoTime();
            try (ExecutorService clients = Executors.newFixedThreadPool(CLIENTS)) {
                List<Future<?>> done = new ArrayList<>();
                for (int c = 0; c < CLIENTS; c++) {
                    done.add(clients.submit(() -> {
                        int i;
                        while ((i = next.getAndIncrement()) < REQUESTS) {
                            long t0 = System.nanoTime();
                            try {
                                generated.addAndGet(oneRequest(t, i));
                                latencies.add(System.nanoTime() - t0);
                            } catch (Throwable e) {
                                failures.incrementAndGet();
                                problems.add("request " + i + ": " + e);
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get(50, TimeUnit.SECONDS);
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            List<Long> sorted = new ArrayList<>(latencies);
            Collections.sort(sorted);
            System.out.printf(Locale.ROOT, "load test: %d requests (streaming and not, both endpoints), %d concurrent"
                            + " clients, %d slots: %d failures; latency p50 %.0f ms, p99 %.0f ms, max %.0f ms;"
                            + " %.1f s, %.0f requests/s, %d tokens generated (%.0f tokens/s)%n",
                    REQUESTS, CLIENTS, 2, failures.get(), percentile(sorted, 50), percentile(sorted, 99),
                    percentile(sorted, 100), seconds, REQUESTS / seconds, generated.get(), generated.get() / seconds);
            assertThat(problems).as("failed requests").isEmpty();
            assertThat(latencies).hasSize(REQUESTS);

            // nothing left behind: slots, queue, exchanges, threads, heap
            TestServer.await("all idle", Duration.ofSeconds(5), () -> t.server.busySlots() == 0
                    && t.server.queuedRequests() == 0 && t.server.activeExchanges() == 0);
            assertThat(TestServer.llamajThreads()).isEqualTo(threadsBefore);
            long heapAfter = usedHeapAfterGc();
            System.out.printf(Locale.ROOT, "load test: heap after GC %.1f MiB before, %.1f MiB after%n",
                    heapBefore / 1048576.0, heapAfter / 1048576.0);
            assertThat(heapAfter).isLessThan(heapBefore + (64L << 20));
        }
    }

    /// One request of the mix, checked; returns the tokens generated.
    private static long oneRequest(TestServer t, int i) throws Exception {
        SplittableRandom random = new SplittableRandom(i);
        boolean chat = i % 2 == 0;
        boolean stream = (i / 2) % 2 == 0;
        int maxTokens = 8 + random.nextInt(25);
        Map<String, Object> request = chat
                ? body("messages", List.of(Map.of("role", "user", "content", "Tell story number " + i)))
                : body("prompt", "Once upon a time, story " + i);
        request.put("max_tokens", maxTokens);
        request.put("temperature", random.nextInt(3) * 0.5);
        request.put("seed", i);
        if (i % 5 == 0) {
            request.put("stop", List.of("."));
        }
        if (stream) {
            request.put("stream", true);
            request.put("stream_options", Map.of("include_usage", true));
        }
        HttpResponse<String> r = t.post(chat ? "/v1/chat/completions" : "/v1/completions", request);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        Map<String, Object> usage;
        String text;
        if (stream) {
            TestServer.Stream s = TestServer.parseStream(r.body(), chat);
            usage = s.usage();
            text = s.text();
        } else {
            Map<String, Object> c = json(r);
            assertThat(c.get("object")).isEqualTo(chat ? "chat.completion" : "text_completion");
            Map<String, Object> choice = map(list(c.get("choices")).getFirst());
            assertThat(choice.get("finish_reason")).isIn("stop", "length");
            text = chat ? (String) map(choice.get("message")).get("content") : (String) choice.get("text");
            usage = map(c.get("usage"));
        }
        assertThat(text).isNotNull();
        if (i % 5 == 0) {
            assertThat(text).doesNotContain(".");
        }
        long completion = number(usage.get("completion_tokens"));
        assertThat(completion).isBetween(0L, (long) maxTokens);
        assertThat(number(usage.get("total_tokens"))).isEqualTo(number(usage.get("prompt_tokens")) + completion);
        return completion;
    }

    @Test
    void fiftyClientsDisconnectingMidStreamLeaveEverySlotServing() throws Exception {
        int parallel = 2;
        try (TestServer t = TestServer.start(TestServer.config().parallel(parallel).queueLimit(64).contextLength(512)
                .build())) {
            t.post("/v1/completions", body("prompt", "Once", "max_tokens", 8));
            long threadsBefore = TestServer.llamajThreads();
            t.server.pausePerPiece(Duration.ofMillis(10)); // each stream would run 300 tokens x 10 ms = 3 s
            Map<String, Object> request = body("prompt", "Once upon a time", "max_tokens", 300, "temperature", 0.8,
                    "stream", true);
            AtomicInteger disconnected = new AtomicInteger();
            ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
            long start = System.nanoTime();
            try (ExecutorService clients = Executors.newFixedThreadPool(10)) {
                List<Future<?>> done = new ArrayList<>();
                for (int c = 0; c < 50; c++) {
                    int client = c;
                    done.add(clients.submit(() -> {
                        try {
                            if (client % 2 == 0) {
                                // the JDK client gives up on the response
                                HttpResponse<InputStream> r = t.open("/v1/completions", request);
                                assertThat(r.statusCode()).isEqualTo(200);
                                TestServer.readFirstEvent(r.body());
                                r.body().close();
                            } else {
                                // a process dies: the connection is reset
                                Socket s = t.rawSocket();
                                byte[] json = dev.llamaj.cli.Json.write(request).getBytes(StandardCharsets.UTF_8);
                                s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                                        + "Content-Type: application/json\r\nContent-Length: " + json.length
                                        + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                                s.getOutputStream().write(json);
                                String head = TestServer.readUntil(s.getInputStream(), "data: ");
                                assertThat(head).startsWith("HTTP/1.1 200");
                                s.setSoLinger(true, 0);
                                s.close();
                            }
                            disconnected.incrementAndGet();
                        } catch (Throwable e) {
                            problems.add("client " + client + ": " + e);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get(50, TimeUnit.SECONDS);
                }
            }
            TestServer.await("every slot free", Duration.ofSeconds(5), () -> t.server.busySlots() == 0
                    && t.server.queuedRequests() == 0);
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf(Locale.ROOT, "fault test: %d clients disconnected mid-stream (10 at a time) in %.1f s;"
                    + " slots busy afterwards: %d%n", disconnected.get(), seconds, t.server.busySlots());
            assertThat(problems).isEmpty();
            assertThat(disconnected.get()).isEqualTo(50);
            TestServer.await("no exchange left", Duration.ofSeconds(5), () -> t.server.activeExchanges() == 0);

            // every slot still serves: as many streams as slots, all at once, all complete
            t.server.pausePerPiece(Duration.ofMillis(10)); // 100 tokens: 1 s, time enough to see every slot busy
            List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> all = new ArrayList<>();
            for (int i = 0; i < parallel; i++) {
                all.add(t.client.sendAsync(t.request("/v1/completions").POST(java.net.http.HttpRequest.BodyPublishers
                        .ofString(dev.llamaj.cli.Json.write(body("prompt", "Once upon a time", "max_tokens", 100,
                                "temperature", 0, "stream", true)))).build(), HttpResponse.BodyHandlers.ofString()));
            }
            TestServer.await("all slots busy at once", Duration.ofSeconds(5),
                    () -> t.server.busySlots() == parallel);
            String first = null;
            for (var f : all) {
                HttpResponse<String> r = f.get(20, TimeUnit.SECONDS);
                assertThat(r.statusCode()).isEqualTo(200);
                String text = TestServer.parseStream(r.body(), false).text();
                if (first == null) {
                    first = text;
                }
                assertThat(text).isEqualTo(first); // greedy: every slot gives the same answer
            }
            TestServer.await("idle", Duration.ofSeconds(5), () -> t.server.busySlots() == 0);
            assertThat(TestServer.llamajThreads()).isEqualTo(threadsBefore);
        }
    }

    private static double percentile(List<Long> sortedNanos, int p) {
        if (sortedNanos.isEmpty()) {
            return Double.NaN;
        }
        int index = (int) Math.ceil(p / 100.0 * sortedNanos.size()) - 1;
        return sortedNanos.get(Math.max(0, Math.min(index, sortedNanos.size() - 1))) / 1e6;
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(50);
        }
        return memory.getHeapMemoryUsage().getUsed();
    }
}
