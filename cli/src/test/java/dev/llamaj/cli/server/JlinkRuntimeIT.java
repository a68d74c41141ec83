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
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// What `deploy/Dockerfile` builds, without Docker: a `jlink` runtime of the modules in
/// `deploy/jlink-modules.txt` (checked against what `jdeps` finds in `llama.jar`), on which `llama.jar serve`
/// starts without relaunching itself, becomes ready, serves a completion and `/metrics`, and stops on SIGTERM.
/// About 20 s (jdeps 7, jlink 10), so it runs with the other integration tests in `mvn verify`.
class JlinkRuntimeIT {
    @TempDir
    Path dir;

    static String tool(String name) {
        return System.getProperty("java.home") + File.separator + "bin" + File.separator + name;
    }

    static String run(List<String> command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(String.join(" ", command) + "\n" + out).isZero();
        return out;
    }

    @Test
    void theJlinkRuntimeServes() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Path jar = Path.of(System.getProperty("llamaj.jar", "target/llama.jar"));
        assertThat(jar).exists();
        Path listFile = Path.of("..", "deploy", "jlink-modules.txt");
        assertThat(listFile).exists();
        String modules = Files.readString(listFile).replaceAll("\\s", "");

        // the list holds every module the jar needs (jdeps' answer for the classes of Java 25)
        long t0 = System.nanoTime();
        String needed = run(List.of(tool("jdeps"), "--multi-release", "25", "--ignore-missing-deps",
                "--print-module-deps", jar.toString())).lines().filter(l -> !l.startsWith("Warning")).reduce("",
                (a, b) -> b).strip();
        assertThat(new TreeSet<>(Arrays.asList(modules.split(","))))
                .as("deploy/jlink-modules.txt against jdeps: %s", needed)
                .containsAll(Arrays.asList(needed.split(",")));

        long t1 = System.nanoTime();
        Path image = dir.resolve("runtime");
        run(List.of(tool("jlink"), "--add-modules", modules, "--add-options=--add-modules=jdk.incubator.vector",
                "--strip-debug", "--no-man-pages", "--no-header-files", "--output", image.toString()));
        long t2 = System.nanoTime();
        String java = image.resolve("bin").resolve("java").toString();
        assertThat(run(List.of(java, "--list-modules"))).doesNotContain("java.desktop", "java.sql");

        Path errFile = dir.resolve("serve.err");
        ProcessBuilder pb = new ProcessBuilder(java, "-jar", jar.toString(), "serve", "--model", model, "--port", "0",
                "--threads", "1", "--access-log", "-").redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(errFile.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process p = pb.start();
        try {
            Pattern serving = Pattern.compile("llama: serving stories260K on (http://127\\.0\\.0\\.1:\\d+)/v1 .*");
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
            // the runtime has the Vector API module in its boot layer: the launcher did not start a second JVM
            assertThat(p.toHandle().children().count()).isZero();
            try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
                int ready = 0;
                while (ready != 200 && System.nanoTime() < deadline) {
                    ready = client.send(HttpRequest.newBuilder(URI.create(base + "/ready")).build(),
                            HttpResponse.BodyHandlers.ofString()).statusCode();
                    Thread.sleep(50);
                }
                assertThat(ready).as("/ready").isEqualTo(200);
                HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                        .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(Json.write(
                                Map.of("prompt", "Once upon a time", "max_tokens", 12, "temperature", 0))))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                assertThat(r.body()).contains(", there was a little girl named Lily.");
                HttpResponse<String> metrics = client.send(HttpRequest.newBuilder(URI.create(base + "/metrics"))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertThat(metrics.body()).contains("llamaj_generated_tokens_total 12");
            }
            p.destroy(); // SIGTERM
            assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
            String err = Files.readString(errFile);
            assertThat(p.exitValue()).as(err).isZero();
            assertThat(err).contains("llama: warmed up in", "\"path\":\"/v1/completions\"", "llama: stopped")
                    .doesNotContain("Exception");
            System.out.printf("jlink runtime: jdeps %.1f s, jlink %.1f s, served and stopped in %.1f s%n",
                    (t1 - t0) / 1e9, (t2 - t1) / 1e9, (System.nanoTime() - t2) / 1e9);
        } finally {
            p.destroyForcibly();
        }
    }
}
