package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.OpenAiServerTest.assertError;
import static dev.llamaj.cli.server.OpenAiServerTest.body;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.Socket;
import java.net.SocketException;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/// The server under pressure: full slots and queue, clients that vanish mid-stream, clients that trickle, too
/// many connections, and shutdown with requests in flight. Generation is slowed down (a pause per piece of text)
/// so that requests last long enough to be interfered with.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServerLimitsTest {
    static final Map<String, Object> LONG_STREAM = body("prompt", "Once upon a time", "max_tokens", 400,
            "temperature", 0.8, "seed", 1, "stream", true);

    @Test
    void withoutAChatTemplateChatIsRefusedAndCompletionsWork() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().build(), null)) {
            assertError(t.post("/v1/chat/completions", body("messages", OpenAiServerTest.user("Hi"))), 400,
                    "chat_template_missing");
            assertThat(t.post("/v1/completions", body("prompt", "Once", "max_tokens", 3)).statusCode()).isEqualTo(200);
        }
    }

    @Test
    void busyBeyondTheQueueIs503() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).queueLimit(1).contextLength(512).build())) {
            t.server.pausePerPiece(Duration.ofMillis(20));
            HttpResponse<InputStream> running = t.open("/v1/completions", LONG_STREAM);
            TestServer.readFirstEvent(running.body());
            CompletableFuture<HttpResponse<String>> queued = CompletableFuture.supplyAsync(() -> {
                try {
                    return t.post("/v1/completions", body("prompt", "Once", "max_tokens", 3));
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            TestServer.await("one request waits", Duration.ofSeconds(5), () -> t.server.queuedRequests() == 1);

            HttpResponse<String> refused = t.post("/v1/completions", body("prompt", "Once", "max_tokens", 3));
            assertError(refused, 503, "server_busy");
            assertThat(refused.headers().firstValue("Retry-After")).isPresent();

            running.body().close(); // the running stream's client leaves: its slot goes to the queued request
            HttpResponse<String> served = queued.get(10, TimeUnit.SECONDS);
            assertThat(served.statusCode()).as(served.body()).isEqualTo(200);
            TestServer.await("idle", Duration.ofSeconds(5), () -> t.server.busySlots() == 0);
        }
    }

    @Test
    void disconnectMidStreamFreesTheSlotAtOnce() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).contextLength(512).build())) {
            t.server.pausePerPiece(Duration.ofMillis(20)); // 400 tokens would take 8 s
            HttpResponse<InputStream> r = t.open("/v1/completions", LONG_STREAM);
            assertThat(r.statusCode()).isEqualTo(200);
            TestServer.readFirstEvent(r.body());
            TestServer.readFirstEvent(r.body());
            assertThat(t.server.busySlots()).isEqualTo(1);
            long closed = System.nanoTime();
            r.body().close(); // the JDK client closes an HTTP/1.1 connection whose body was not read to the end
            TestServer.await("the slot is free", Duration.ofSeconds(2), () -> t.server.busySlots() == 0);
            long freedMillis = (System.nanoTime() - closed) / 1_000_000;
            System.out.println("disconnect: slot freed " + freedMillis + " ms after the client closed");
            t.server.pausePerPiece(Duration.ZERO);
            HttpResponse<String> next = t.post("/v1/completions", body("prompt", "Once", "max_tokens", 5));
            assertThat(next.statusCode()).isEqualTo(200);
            TestServer.await("no exchange left", Duration.ofSeconds(2), () -> t.server.activeExchanges() == 0);
        }
    }

    @Test
    void aClientTricklingItsRequestHoldsNoSlotAndIsCutOff() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build())) {
            List<Socket> tricklers = new ArrayList<>();
            try {
                // one trickles its headers, one its body, a byte every 200 ms
                Socket headers = t.rawSocket();
                Socket body = t.rawSocket();
                tricklers.add(headers);
                tricklers.add(body);
                body.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n"
                        + "\r\n{").getBytes(StandardCharsets.US_ASCII));
                headers.getOutputStream().write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(
                        StandardCharsets.US_ASCII));
                long start = System.nanoTime();
                boolean headersCut = false;
                boolean bodyCut = false;
                for (int i = 0; i < 50 && !(headersCut && bodyCut); i++) {
                    if (!headersCut) {
                        headersCut = !trickle(headers.getOutputStream(), (byte) 'a');
                    }
                    if (!bodyCut) {
                        bodyCut = !trickle(body.getOutputStream(), (byte) ' ');
                    }
                    // the slot stays free for everyone else meanwhile
                    if (i == 3) {
                        assertThat(t.post("/v1/completions", body("prompt", "Once", "max_tokens", 3)).statusCode())
                                .isEqualTo(200);
                        assertThat(t.server.busySlots()).isZero();
                    }
                    Thread.sleep(200);
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                System.out.printf("trickling clients cut off after %.1f s (header timeout %d s)%n", seconds,
                        TestServer.HEADER_TIMEOUT.toSeconds());
                assertThat(headersCut).as("the header trickler was cut off").isTrue();
                assertThat(bodyCut).as("the body trickler was cut off").isTrue();
                assertThat(seconds).isLessThan(TestServer.HEADER_TIMEOUT.toSeconds() + 4);
            } finally {
                for (Socket s : tricklers) {
                    s.close();
                }
            }
            TestServer.await("no exchange left", Duration.ofSeconds(3), () -> t.server.activeExchanges() == 0);
        }
    }

    /// Sends one byte; false once the server has closed the connection (the write fails, or the read side
    /// shows the end).
    private static boolean trickle(OutputStream out, byte b) {
        try {
            out.write(b);
            out.flush();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /// The JDK server's timeouts run on two `java.util.Timer` threads that die for good if their task throws (an
    /// `OutOfMemoryError` from elsewhere can land there); the watchdog then replaces the listener. A thread that
    /// has ended stands in for a dead timer here.
    @Test
    void aDeadHttpServerThreadGetsTheListenerReplacedAndTimeoutsFireAgain() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build())) {
            assertThat(t.server.httpThreadNames()).as("the JDK server's threads are known by name")
                    .containsExactly("HTTP-Dispatcher", "idle-timeout-task", "req-rsp-timeout-task");
            int port = t.server.port();
            Thread dead = Thread.ofPlatform().start(() -> { });
            dead.join();
            t.server.watchAlso(dead);
            TestServer.await("the listener is replaced", Duration.ofSeconds(5), () -> t.server.listenerRestarts() == 1);
            assertThat(t.server.port()).isEqualTo(port);
            assertThat(t.server.httpThreadNames()).hasSize(3);
            assertThat(t.get("/health").statusCode()).isEqualTo(200);
            try (Socket slow = t.rawSocket()) {
                slow.getOutputStream().write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(
                        StandardCharsets.US_ASCII));
                long start = System.nanoTime();
                int read;
                try {
                    read = slow.getInputStream().read();
                } catch (SocketException e) {
                    read = -1;
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                assertThat(read).isEqualTo(-1);
                assertThat(seconds).isLessThan(TestServer.HEADER_TIMEOUT.toSeconds() + 3);
            }
        }
    }

    /// The JSON limits refuse bodies that build much more heap than their size, but not dense legitimate ones:
    /// 100,000 one-digit token ids (two bytes each) are refused for the context, not as too large.
    @Test
    void jsonLimitsRefuseAmplificationButNotDenseTokenIds() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build())) {
            String ids = "[" + "1,".repeat(99_999) + "1]";
            assertError(t.post("/v1/completions", "{\"prompt\": " + ids + "}"), 400, "context_length_exceeded");
            String objects = "{\"prompt\": \"x\", \"a\": [" + "{},".repeat(99_999) + "{}]}";
            assertError(t.post("/v1/completions", objects), 413, "request_too_large");
            assertThat(t.server.requestMemoryUsed()).as("every reservation was given back").isZero();
        }
    }

    /// A chat template (from the model file: untrusted) that writes a million characters whatever the messages:
    /// the rendered prompt is refused by its length before it is tokenized (which took seconds per request), and
    /// prompts are prepared on the prompt threads, not on the HTTP server's virtual threads.
    @Test
    void aTemplateThatRendersMegabytesIsRefusedBeforeTokenizing() throws Exception {
        String hostile = "{% for i in range(100000) %}0123456789{% endfor %}{{ messages[0].content }}";
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).contextLength(128).build(), hostile)) {
            HttpResponse<String> r = t.post("/v1/chat/completions", body("messages", OpenAiServerTest.user("Hi")));
            assertThat(assertError(r, 400, "context_length_exceeded").get("message").toString())
                    .contains("resulted in 1000002 characters once the chat template was applied");
            assertThat(t.server.lastPromptThread()).startsWith("llamaj-prompt-");
            // a template that writes little is served as before, its prompt made on a prompt thread too
        }
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build())) {
            HttpResponse<String> ok = t.post("/v1/chat/completions", body("messages", OpenAiServerTest.user("Hi"),
                    "max_tokens", 3));
            assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
            assertThat(t.server.lastPromptThread()).startsWith("llamaj-prompt-");
        }
    }

    /// The model file cut short under the running server: every completion then fails (the mapped pages are
    /// gone), and `/health` must say so rather than `ok`.
    @Test
    void healthTurnsUnhealthyWhenCompletionsKeepFailing(@TempDir Path dir) throws Exception {
        Path copy = dir.resolve("model.gguf");
        Files.copy(dev.llamaj.gguf.SharedData.require("models/stories260K.gguf"), copy);
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build(), null, copy)) {
            assertThat(t.post("/v1/completions", body("prompt", "Once", "max_tokens", 3)).statusCode()).isEqualTo(200);
            assertThat(t.get("/health").statusCode()).isEqualTo(200);
            try (FileChannel ch = FileChannel.open(copy, StandardOpenOption.WRITE)) {
                ch.truncate(100_000); // the header and vocabulary stay; the weights are gone
            }
            for (int i = 0; i < OpenAiServer.UNHEALTHY_AFTER_FAILURES; i++) {
                assertError(t.post("/v1/completions", body("prompt", "Once upon a time", "max_tokens", 3)), 500,
                        "internal_error");
            }
            HttpResponse<String> health = t.get("/health");
            assertThat(health.statusCode()).as(health.body()).isEqualTo(503);
            assertThat(TestServer.json(health)).containsEntry("status", "error");
            assertThat((String) TestServer.json(health).get("reason")).startsWith("the last 3 completions failed")
                    .doesNotContain(dir.toString());
        }
    }

    @Test
    void oversizedHeadersGet431AndUnknownVersions505() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build())) {
            String big = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(70_000) + "\r\n\r\n";
            assertThat(rawStatusLine(t, big)).startsWith("HTTP/1.1 431 ");
            StringBuilder many = new StringBuilder("GET /health HTTP/1.1\r\nHost: x\r\n");
            for (int i = 0; i < 150; i++) {
                many.append("X-H").append(i).append(": v\r\n");
            }
            assertThat(rawStatusLine(t, many.append("\r\n").toString())).startsWith("HTTP/1.1 431 ");
            String longUri = "GET /health?" + "a".repeat(70_000) + " HTTP/1.1\r\nHost: x\r\n\r\n";
            assertThat(rawStatusLine(t, longUri)).startsWith("HTTP/1.1 431 ");
            // at the limit, served
            String fits = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(60_000) + "\r\n\r\n";
            assertThat(rawStatusLine(t, fits)).startsWith("HTTP/1.1 200 ");
            assertThat(rawStatusLine(t, "GET /health HTTP/2.0\r\nHost: x\r\n\r\n")).startsWith("HTTP/1.1 505 ");
            assertThat(rawStatusLine(t, "GET /health HTTP/9.9\r\nHost: x\r\n\r\n")).startsWith("HTTP/1.1 505 ");
            assertThat(rawStatusLine(t, "GET /health FOO\r\nHost: x\r\n\r\n")).startsWith("HTTP/1.1 400 ");
            assertThat(rawStatusLine(t, "GET /health HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.1 200 ");
        }
    }

    /// Sends `request` on a new connection and returns the status line of the answer (or what went wrong).
    private static String rawStatusLine(TestServer t, String request) throws IOException {
        try (Socket s = t.rawSocket()) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            String answer = TestServer.readUntil(s.getInputStream(), "\r\n");
            return answer.isEmpty() ? "(closed unanswered)" : answer;
        } catch (SocketException e) {
            return "(" + e + ")";
        }
    }

    @Test
    void connectionsBeyondTheLimitAreClosed() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).build())) {
            List<Socket> sockets = new ArrayList<>();
            try {
                for (int i = 0; i < TestServer.MAX_CONNECTIONS; i++) {
                    sockets.add(t.rawSocket());
                }
                Thread.sleep(300); // let the server accept them all
                try (Socket extra = t.rawSocket()) {
                    extra.setSoTimeout(1500);
                    OutputStream out = extra.getOutputStream();
                    InputStream in = extra.getInputStream();
                    int read;
                    try {
                        out.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                        read = in.read();
                    } catch (SocketException e) {
                        read = -1; // reset
                    }
                    assertThat(read).as("the connection over the limit is closed unanswered").isEqualTo(-1);
                }
            } finally {
                for (Socket s : sockets) {
                    s.close();
                }
            }
            TestServer.await("connections served again", Duration.ofSeconds(5), () -> {
                try {
                    return t.get("/health").statusCode() == 200;
                } catch (IOException e) {
                    return false;
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
        }
    }

    @Test
    void shutdownFinishesOrAbortsInFlightRequestsInBoundedTime() throws Exception {
        TestServer t = TestServer.start(TestServer.config().parallel(1).queueLimit(2).contextLength(512).build());
        try {
            t.server.pausePerPiece(Duration.ofMillis(20)); // 8 s of generation: longer than the grace period
            HttpResponse<InputStream> running = t.open("/v1/completions", LONG_STREAM);
            TestServer.readFirstEvent(running.body());
            CompletableFuture<HttpResponse<String>> waiting = CompletableFuture.supplyAsync(() -> {
                try {
                    return t.post("/v1/completions", body("prompt", "Once", "max_tokens", 3));
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            TestServer.await("one request waits", Duration.ofSeconds(5), () -> t.server.queuedRequests() == 1);

            long start = System.nanoTime();
            CompletableFuture<Void> shutdown = CompletableFuture.runAsync(() -> t.server.shutdown(Duration.ofSeconds(1)));
            // no new connections
            TestServer.await("the listening socket is closed", Duration.ofSeconds(3), () -> {
                try (Socket s = new Socket("127.0.0.1", t.server.port())) {
                    return false;
                } catch (ConnectException e) {
                    return true;
                } catch (IOException e) {
                    return false;
                }
            });
            // the running stream ends with an error event, the waiting request with 503
            String rest = OpenAiServerTest.readAll(running.body());
            assertThat(rest).contains("shutting_down");
            assertError(waiting.get(10, TimeUnit.SECONDS), 503, "shutting_down");
            shutdown.get(10, TimeUnit.SECONDS);
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("shutdown with 2 requests in flight took %.1f s (grace 1 s)%n", seconds);
            assertThat(seconds).isLessThan(6);
        } finally {
            t.close();
        }
        TestServer.await("slot threads gone", Duration.ofSeconds(5),
                () -> Thread.getAllStackTraces().keySet().stream().noneMatch(
                        th -> th.isAlive() && th.getName().startsWith("llamaj-slot-")));
    }

    @Test
    void shutdownLetsShortRequestsFinish() throws Exception {
        TestServer t = TestServer.start(TestServer.config().parallel(1).build());
        try {
            t.server.pausePerPiece(Duration.ofMillis(20));
            CompletableFuture<HttpResponse<String>> request = CompletableFuture.supplyAsync(() -> {
                try {
                    return t.post("/v1/completions", body("prompt", "Once", "max_tokens", 20, "stream", true));
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            TestServer.await("generating", Duration.ofSeconds(5), () -> t.server.busySlots() == 1);
            t.server.shutdown(Duration.ofSeconds(5));
            HttpResponse<String> r = request.get(10, TimeUnit.SECONDS);
            assertThat(r.statusCode()).isEqualTo(200);
            TestServer.Stream s = TestServer.parseStream(r.body(), false);
            assertThat(s.finishReason()).isIn("stop", "length");
        } finally {
            t.close();
        }
    }
}
