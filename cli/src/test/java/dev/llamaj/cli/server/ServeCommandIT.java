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

/// `java -jar llama.jar serve` as a real process: it serves, and SIGTERM stops it cleanly with exit code 0.
class ServeCommandIT {
    @TempDir
    Path dir;

    @Test
    void servesAndStopsCleanlyOnSigterm() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Path jar = Path.of(System.getProperty("llamaj.jar", "target/llama.jar"));
        assertThat(jar).exists();
        Path key = Files.writeString(dir.resolve("key"), "sk-it-key\n");
        List<String> command = new ArrayList<>(List.of(System.getProperty("java.home") + File.separator + "bin"
                + File.separator + "java", "-jar", jar.toString(), "serve", "--model", model, "--port", "0",
                "--parallel", "2", "--threads", "2", "--chat-template", "plain", "--api-key-file", key.toString(),
                "--shutdown-timeout", "5"));
        // stderr to a file: Process.destroy closes the pipes, and the last lines are written after it
        Path errFile = dir.resolve("serve.err");
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(errFile.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process p = pb.start();
        try {
            Pattern serving = Pattern.compile("llama: serving stories260K on (http://127\\.0\\.0\\.1:\\d+/v1) .*");
            String base = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (base == null && System.nanoTime() < deadline && p.isAlive()) {
                for (String line : Files.readAllLines(errFile, StandardCharsets.UTF_8)) {
                    Matcher m = serving.matcher(line);
                    if (m.matches()) {
                        base = m.group(1);
                    }
                }
                Thread.sleep(50);
            }
            assertThat(base).as("serve printed its address; stderr: " + Files.readString(errFile)).isNotNull();

            try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
                HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + "/chat/completions"))
                        .header("Authorization", "Bearer sk-it-key").timeout(Duration.ofSeconds(30))
                        .POST(HttpRequest.BodyPublishers.ofString(Json.write(Map.of("messages",
                                List.of(Map.of("role", "user", "content", "Tell me a story")), "max_tokens", 10))))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                assertThat(r.body()).contains("\"object\":\"chat.completion\"");
                HttpResponse<String> denied = client.send(HttpRequest.newBuilder(URI.create(base + "/models"))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertThat(denied.statusCode()).isEqualTo(401);
            }

            long stop = System.nanoTime();
            p.destroy(); // SIGTERM
            assertThat(p.waitFor(20, TimeUnit.SECONDS)).as("stopped in time").isTrue();
            List<String> err = Files.readAllLines(errFile, StandardCharsets.UTF_8);
            System.out.printf("serve: SIGTERM to exit took %.1f s%n", (System.nanoTime() - stop) / 1e9);
            assertThat(p.exitValue()).as(String.join("\n", err)).isZero();
            assertThat(err).contains("llama: shutting down", "llama: stopped");
            assertThat(String.join("\n", err)).doesNotContain("Exception");
        } finally {
            p.destroyForcibly();
        }
    }

    /// `kill -9` of the `java -jar` launcher: the JVM it started (the server) must not live on holding the port.
    @Test
    void theServerEndsWhenItsLauncherIsKilled() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Path jar = Path.of(System.getProperty("llamaj.jar", "target/llama.jar"));
        assertThat(jar).exists();
        Path errFile = dir.resolve("killed.err");
        ProcessBuilder pb = new ProcessBuilder(System.getProperty("java.home") + File.separator + "bin"
                + File.separator + "java", "-jar", jar.toString(), "serve", "--model", model, "--port", "0",
                "--threads", "1").redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(errFile.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process launcher = pb.start();
        ProcessHandle child = null;
        try {
            Pattern serving = Pattern.compile("llama: serving .* on http://127\\.0\\.0\\.1:(\\d+)/v1 .*");
            int port = -1;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (port < 0 && System.nanoTime() < deadline && launcher.isAlive()) {
                for (String line : Files.readAllLines(errFile, StandardCharsets.UTF_8)) {
                    Matcher m = serving.matcher(line);
                    if (m.matches()) {
                        port = Integer.parseInt(m.group(1));
                    }
                }
                Thread.sleep(50);
            }
            assertThat(port).as("serve printed its address; stderr: " + Files.readString(errFile)).isPositive();
            child = launcher.toHandle().children().findFirst().orElseThrow();

            long killed = System.nanoTime();
            launcher.destroyForcibly(); // SIGKILL: no handler runs in the launcher
            assertThat(launcher.waitFor(10, TimeUnit.SECONDS)).isTrue();
            assertThat(child.onExit().get(10, TimeUnit.SECONDS).isAlive()).isFalse();
            System.out.printf("serve: the child JVM ended %.1f s after its launcher was killed%n",
                    (System.nanoTime() - killed) / 1e9);
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                throw new AssertionError("port " + port + " is still open");
            } catch (java.net.ConnectException expected) {
                // the port is free
            }
            assertThat(Files.readString(errFile)).contains("the launcher process (pid " + launcher.pid()
                    + ") has ended; exiting");
        } finally {
            launcher.destroyForcibly();
            if (child != null) {
                child.destroyForcibly();
            }
        }
    }
}
