package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.Json;
import dev.llamaj.gguf.SharedData;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/// Runs the built `llama.jar` as a user would: `java -jar llama.jar ...`, with no extra JVM flags.
class EndToEndIT {
    @TempDir
    Path dir;

    record Run(int code, String out, String err) {}

    static Run java(String javaHome, String... args) throws Exception {
        Path jar = Path.of(System.getProperty("llamaj.jar", "target/llama.jar"));
        assertThat(jar).exists();
        List<String> command = new ArrayList<>();
        command.add(javaHome + File.separator + "bin" + File.separator + "java");
        command.add("-jar");
        command.add(jar.toString());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().put("LC_ALL", "C");
        Path out = Files.createTempFile("llama", ".out");
        Path err = Files.createTempFile("llama", ".err");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("llama.jar finished in time").isTrue();
        Run r = new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        Files.delete(out);
        Files.delete(err);
        return r;
    }

    static Stream<Arguments> references() throws Exception {
        Path p = SharedData.require("reference/stories260K-greedy.json");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> cases = (List<Map<String, Object>>) Json.parse(Files.readString(p));
        return cases.stream().map(c -> Arguments.of(c.get("prompt"), ((Double) c.get("max_tokens")).intValue(),
                c.get("expected_continuation")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("references")
    void jarReproducesLlamaCppGreedyContinuation(String prompt, int maxTokens, String expected) throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Run r = java(System.getProperty("java.home"), "--model", model, "--prompt", prompt,
                "--temperature", "0", "-n", String.valueOf(maxTokens), "--context", "512");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().stripTrailing()).isEqualTo(expected);
        assertThat(r.err()).contains("generated " + maxTokens + " tokens");
    }

    @Test
    void promptFromFile() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Path prompt = Files.writeString(dir.resolve("prompt.txt"), "Once upon a time");
        Run r = java(System.getProperty("java.home"), "--model", model, "--file", prompt.toString(),
                "--temperature", "0", "-n", "8");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith(", there was a little girl");
    }

    @Test
    void oldJavaGetsOneLineNamingTheVersion() throws Exception {
        Path jdk17 = Path.of("/usr/lib/jvm/java-17-openjdk-amd64");
        assumeTrue(Files.isExecutable(jdk17.resolve("bin/java")), "skipping: no JDK 17 at " + jdk17);
        Run r = java(jdk17.toString(), "--help");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).startsWith("llama: llamaj needs Java 25 or newer, but this is Java 17");
        assertThat(r.err().lines().count()).isEqualTo(1);
    }

    @Test
    void helpAndVersion() throws Exception {
        Run help = java(System.getProperty("java.home"), "--help");
        assertThat(help.code()).isZero();
        assertThat(help.out()).contains("--model").contains("--max-tokens").contains("tokenize").contains("inspect");
        Run version = java(System.getProperty("java.home"), "--version");
        assertThat(version.out()).startsWith("llamaj ");
    }
}
