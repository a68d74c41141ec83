package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

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

/// The README's first commands on a machine with nothing downloaded: the built jar, no `--model`, no `../shared`
/// (these tests need none of it), and an empty cache directory.
class BuiltinModelIT {
    @TempDir
    Path dir;

    private ProcessBuilder jar(Path cache, String... args) {
        Path jar = Path.of(System.getProperty("llamaj.jar", "target/llama.jar"));
        assertThat(jar).exists();
        List<String> command = new ArrayList<>(List.of(System.getProperty("java.home") + File.separator + "bin"
                + File.separator + "java", "-jar", jar.toString()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().put("XDG_CACHE_HOME", cache.toString());
        return pb;
    }

    @Test
    void theFirstCommandOfTheReadmeStreamsAStory() throws Exception {
        Path cache = dir.resolve("cache");
        for (int run = 0; run < 2; run++) { // the first run extracts the model, the second reuses it
            Path out = dir.resolve("out" + run);
            Path err = dir.resolve("err" + run);
            Process p = jar(cache, "--prompt", "Once upon a time", "--temperature", "0", "-n", "24")
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            p.getOutputStream().close();
            assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
            String stderr = Files.readString(err);
            assertThat(p.exitValue()).as(stderr).isZero();
            assertThat(Files.readString(out)).startsWith(", there was a little girl named Lily.");
            assertThat(stderr).contains("llama: no --model given: running the built-in demo model stories260K")
                    .contains("generated 24 tokens");
        }
        try (var files = Files.list(cache.resolve("llamaj"))) {
            assertThat(files.map(f -> f.getFileName().toString()).toList())
                    .containsExactly("stories260K-047bf464.gguf");
        }
    }

    @Test
    void serveWithoutAModelAnswersChatAndCompletions() throws Exception {
        Path errFile = dir.resolve("serve.err");
        Process p = jar(dir.resolve("cache"), "serve", "--port", "0", "--threads", "1")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(errFile.toFile()).start();
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
                HttpResponse<String> chat = client.send(HttpRequest.newBuilder(URI.create(base + "/chat/completions"))
                        .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(Json.write(Map.of(
                                "messages", List.of(Map.of("role", "user", "content", "Tell me a story")),
                                "max_tokens", 10)))).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(chat.statusCode()).as(chat.body()).isEqualTo(200);
                assertThat(chat.body()).contains("\"object\":\"chat.completion\"")
                        .contains("\"model\":\"stories260K\"");
                HttpResponse<String> completion = client.send(HttpRequest.newBuilder(URI.create(base + "/completions"))
                        .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(Json.write(Map.of(
                                "prompt", "Once upon a time", "max_tokens", 8, "temperature", 0)))).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertThat(completion.statusCode()).as(completion.body()).isEqualTo(200);
                assertThat(completion.body()).contains(", there was a little girl");
            }
        } finally {
            p.destroy();
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }
}
