package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Json;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.gguf.SharedData;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/// A server on an ephemeral loopback port over `../shared/models/stories260K.gguf`, and an HTTP client for it.
///
/// The JDK HTTP server's timeouts and connection limit are per JVM (see [HttpLimits]), so every test server uses
/// the same ones: [#HEADER_TIMEOUT], [#IDLE_TIMEOUT] and [#MAX_CONNECTIONS].
final class TestServer implements AutoCloseable {
    static final Duration HEADER_TIMEOUT = Duration.ofSeconds(2);
    static final Duration IDLE_TIMEOUT = Duration.ofSeconds(3);
    static final int MAX_CONNECTIONS = 64;
    static final String KEY = "sk-test-0123456789";

    /// A chat template that needs no special tokens: `role: content` lines, then `assistant:`.
    static final String TEMPLATE = """
            {% for m in messages %}{{ m.role }}: {{ m.content }}
            {% endfor %}{% if add_generation_prompt %}assistant:{% endif %}""";

    final LlamaModel model;
    final OpenAiServer server;
    final HttpClient client;
    final String apiKey;
    final URI base;

    private TestServer(LlamaModel model, OpenAiServer server, String apiKey) {
        this.model = model;
        this.server = server;
        this.apiKey = apiKey;
        this.base = URI.create("http://127.0.0.1:" + server.port());
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
    }

    /// The shared settings: ephemeral port, the JVM-wide limits, no key.
    static ServerConfig.Builder config() {
        return ServerConfig.builder().host("127.0.0.1").port(0).modelId("stories260K")
                .headerTimeout(HEADER_TIMEOUT).idleTimeout(IDLE_TIMEOUT).maxConnections(MAX_CONNECTIONS)
                .responseTimeout(Duration.ofSeconds(60)).shutdownTimeout(Duration.ofSeconds(5));
    }

    static TestServer start(ServerConfig config) throws IOException {
        return start(config, TEMPLATE);
    }

    /// A server whose chat template is `template` (null: none, like stories260K itself).
    static TestServer start(ServerConfig config, String template) throws IOException {
        return start(config, template, SharedData.require("models/stories260K.gguf"));
    }

    /// A server on the model file `modelFile`.
    static TestServer start(ServerConfig config, String template, java.nio.file.Path modelFile) throws IOException {
        return start(config, template, modelFile, Operations.NONE,
                new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8));
    }

    /// A server with access logs, warm-up or a fallback as `ops` says, logging to `log`.
    static TestServer start(ServerConfig config, String template, java.nio.file.Path modelFile, Operations ops,
                            PrintStream log) throws IOException {
        LlamaModel model = LlamaModel.load(modelFile, 1);
        try {
            OpenAiServer server = OpenAiServer.start(model, template == null ? null : ChatFormat.of(model, template),
                    config, log, ops);
            return new TestServer(model, server, config.apiKey());
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    @Override
    public void close() {
        server.shutdown(Duration.ofSeconds(2));
        client.close();
        model.close();
    }

    HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(30));
        if (apiKey != null) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        return b;
    }

    HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return client.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
        return client.send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> post(String path, Map<String, ?> body) throws IOException, InterruptedException {
        return post(path, Json.write(body));
    }

    /// Starts a streaming request and returns the open response (the caller reads or closes it).
    HttpResponse<InputStream> open(String path, Map<String, ?> body) throws IOException, InterruptedException {
        return client.send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(Json.write(body))).build(),
                HttpResponse.BodyHandlers.ofInputStream());
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> json(HttpResponse<String> r) {
        return (Map<String, Object>) Json.parse(r.body());
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        return (List<Object>) o;
    }

    static long number(Object o) {
        return ((Number) o).longValue();
    }

    /// The `data:` payloads of an event stream, in order (`[DONE]` included as is).
    static List<String> events(String body) {
        List<String> events = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            if (block.isBlank()) {
                continue;
            }
            assertThat(block).startsWith("data: ");
            events.add(block.substring("data: ".length()));
        }
        return events;
    }

    /// A parsed stream: its chunks, and the concatenated text (chat deltas or completion texts).
    record Stream(List<Map<String, Object>> chunks, String text, String finishReason, Map<String, Object> usage) {}

    /// Checks an event stream against OpenAI's chunk format and returns what it says.
    static Stream parseStream(String body, boolean chat) {
        List<String> events = events(body);
        assertThat(events).isNotEmpty();
        assertThat(events.getLast()).isEqualTo("[DONE]");
        List<Map<String, Object>> chunks = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        String finish = null;
        Map<String, Object> usage = null;
        String id = null;
        for (String e : events.subList(0, events.size() - 1)) {
            Map<String, Object> chunk = map(Json.parse(e));
            chunks.add(chunk);
            assertThat(chunk.get("object")).isEqualTo(chat ? "chat.completion.chunk" : "text_completion");
            assertThat((String) chunk.get("id")).startsWith(chat ? "chatcmpl-" : "cmpl-");
            if (id == null) {
                id = (String) chunk.get("id");
            }
            assertThat(chunk.get("id")).isEqualTo(id);
            assertThat(chunk.get("model")).isEqualTo("stories260K");
            assertThat(number(chunk.get("created"))).isPositive();
            List<Object> choices = list(chunk.get("choices"));
            if (choices.isEmpty()) {
                usage = map(chunk.get("usage"));
                continue;
            }
            assertThat(finish).as("no text after the finish reason").isNull();
            Map<String, Object> choice = map(choices.getFirst());
            assertThat(number(choice.get("index"))).isZero();
            if (chat) {
                Map<String, Object> delta = map(choice.get("delta"));
                if (delta.get("content") != null) {
                    text.append((String) delta.get("content"));
                }
            } else {
                text.append((String) choice.get("text"));
            }
            finish = (String) choice.get("finish_reason");
        }
        assertThat(finish).as("a finish reason").isIn("stop", "length");
        return new Stream(chunks, text.toString(), finish, usage);
    }

    /// Waits until `condition` holds, failing after `timeout`.
    static void await(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(10);
        }
    }

    /// Reads an event stream up to and including the first event, which it returns.
    static String readFirstEvent(InputStream in) throws IOException {
        StringBuilder sb = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0) {
            sb.append((char) c);
            if (sb.length() >= 2 && sb.charAt(sb.length() - 1) == '\n' && sb.charAt(sb.length() - 2) == '\n') {
                return sb.toString();
            }
        }
        throw new IOException("the stream ended before its first event");
    }

    /// Reads until `marker` has been seen (or the stream ends), and returns what was read.
    static String readUntil(InputStream in, String marker) throws IOException {
        StringBuilder sb = new StringBuilder();
        int c;
        while (sb.indexOf(marker) < 0 && (c = in.read()) >= 0) {
            sb.append((char) c);
        }
        return sb.toString();
    }

    /// A raw HTTP/1.1 request on a fresh socket (for what HttpClient will not send).
    Socket rawSocket() throws IOException {
        Socket s = new Socket("127.0.0.1", server.port());
        s.setSoTimeout(10_000);
        return s;
    }

    /// Platform threads of llamaj (slots and their compute workers).
    static long llamajThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("llamaj-")).count();
    }
}
