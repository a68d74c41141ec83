package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Json;
import dev.llamaj.gguf.SharedData;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// Hybrid routing between two real `llama serve` processes on loopback, configured by their command lines: a
/// small-context server escalates a prompt too long for it to a larger one, says so, and with `--local-only`
/// does not.
class HybridServeIT {
    @TempDir
    Path dir;

    /// A `llama.jar serve` process and the base URL it printed.
    record Served(Process process, String base, Path err) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            process.destroy();
            if (!process.waitFor(20, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    Served serve(String name, String... options) throws Exception {
        Path jar = Path.of(System.getProperty("llamaj.jar", "target/llama.jar"));
        assertThat(jar).exists();
        List<String> command = new ArrayList<>(List.of(System.getProperty("java.home") + File.separator + "bin"
                + File.separator + "java", "-jar", jar.toString(), "serve", "--model",
                SharedData.require("models/stories260K.gguf").toString(), "--port", "0", "--threads", "1"));
        command.addAll(List.of(options));
        Path err = dir.resolve(name + ".err");
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(err.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process p = pb.start();
        Pattern serving = Pattern.compile("llama: serving stories260K on (http://127\\.0\\.0\\.1:\\d+/v1) .*");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline && p.isAlive()) {
            for (String line : Files.readAllLines(err, StandardCharsets.UTF_8)) {
                Matcher m = serving.matcher(line);
                if (m.matches()) {
                    return new Served(p, m.group(1), err);
                }
            }
            Thread.sleep(50);
        }
        p.destroyForcibly();
        throw new AssertionError(name + " did not start: " + Files.readString(err));
    }

    @Test
    void aSmallServerEscalatesToABigOneUnlessLocalOnly() throws Exception {
        String prompt = "Once upon a time there was a little dog who liked to run in the park. ".repeat(10);
        Path key = Files.writeString(dir.resolve("key"), "sk-big-server\n");
        try (Served big = serve("big", "--context", "512", "--api-key-file", key.toString());
             Served small = serve("small", "--context", "64", "--fallback-url", big.base(), "--fallback-key-file",
                     key.toString(), "--fallback-on", "too-long", "--access-log", "-");
             Served pinned = serve("pinned", "--context", "64", "--fallback-url", big.base(), "--fallback-on",
                     "too-long", "--local-only");
             HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            String body = Json.write(Map.of("prompt", prompt, "max_tokens", 5, "temperature", 0));
            HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(small.base() + "/completions"))
                    .timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(r.headers().firstValue("X-Llamaj-Route")).hasValue("fallback");
            assertThat(r.body()).contains("\"route\":\"fallback\"", "\"escalation\":\"too-long\"",
                    "\"completion_tokens\":5");

            HttpResponse<String> refused = client.send(HttpRequest.newBuilder(URI.create(pinned.base()
                    + "/completions")).timeout(Duration.ofSeconds(60))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(refused.statusCode()).isEqualTo(400);
            assertThat(refused.body()).contains("context_length_exceeded");

            String smallErr = Files.readString(small.err());
            assertThat(smallErr).contains("llama: escalating to " + big.base() + " on: too-long")
                    .containsPattern("llama: cmpl-\\w+ escalated to the fallback: too-long")
                    .contains("\"route\":\"fallback\",\"escalation\":\"too-long\"")
                    .doesNotContain("sk-big-server").doesNotContain("little dog");
            assertThat(Files.readString(pinned.err())).contains("--local-only: no request leaves this server")
                    .doesNotContain("escalat");
            // the big server answered exactly one request: the escalated one
            assertThat(Files.readString(big.err())).containsOnlyOnce("POST /v1/completions 200");
        }
    }
}
