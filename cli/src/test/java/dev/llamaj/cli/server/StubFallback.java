package dev.llamaj.cli.server;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.llamaj.cli.Json;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/// A stand-in for an OpenAI-compatible API on a loopback port: it records what it receives and answers with a
/// fixed completion (JSON, or an event stream when asked), after `delayMillis`.
final class StubFallback implements AutoCloseable {
    static final String TEXT = "from the fallback";

    /// One request as received.
    record Received(String path, String authorization, Map<String, Object> body) {}

    final List<Received> received = new CopyOnWriteArrayList<>();
    volatile long delayMillis;
    private final HttpServer server;

    StubFallback() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/", this::handle);
        server.start();
    }

    /// The base URL, as `--fallback-url` takes it.
    URI baseUrl() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/v1");
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            Map<String, Object> body = Json.parseObject(new String(ex.getRequestBody().readAllBytes(),
                    StandardCharsets.UTF_8));
            received.add(new Received(ex.getRequestURI().getPath(),
                    ex.getRequestHeaders().getFirst("Authorization"), body));
            try {
                Thread.sleep(delayMillis);
            } catch (InterruptedException e) {
                return;
            }
            boolean chat = ex.getRequestURI().getPath().endsWith("/chat/completions");
            if (Boolean.TRUE.equals(body.get("stream"))) {
                ex.getResponseHeaders().set("Content-Type", "text/event-stream");
                ex.sendResponseHeaders(200, 0);
                OutputStream out = ex.getResponseBody();
                for (String piece : TEXT.split("(?= )")) {
                    Map<String, Object> choice = chat ? Map.of("index", 0, "delta", Map.of("content", piece))
                            : Map.of("index", 0, "text", piece);
                    out.write(("data: " + Json.write(Map.of("id", "stub-1", "object", chat
                            ? "chat.completion.chunk" : "text_completion", "choices", List.of(choice))) + "\n\n")
                            .getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                return;
            }
            Map<String, Object> choice = chat
                    ? Map.of("index", 0, "message", Map.of("role", "assistant", "content", TEXT), "finish_reason",
                            "stop")
                    : Map.of("index", 0, "text", TEXT, "finish_reason", "stop");
            byte[] answer = Json.write(Map.of("id", "stub-1", "object", chat ? "chat.completion" : "text_completion",
                    "model", String.valueOf(body.get("model")), "choices", List.of(choice), "usage",
                    Map.of("prompt_tokens", 3, "completion_tokens", 4, "total_tokens", 7)))
                    .getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "application/json");
            ex.sendResponseHeaders(200, answer.length);
            ex.getResponseBody().write(answer);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
