package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `perplexity` and `batch` through the built `llama.jar`, in a process of their own: the real streams, and a
/// real Ctrl-C (SIGINT) in the middle of a batch.
class QualityCommandsIT {
    @TempDir
    Path dir;

    static List<String> java(String... args) {
        List<String> command = new ArrayList<>();
        command.add(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java");
        // straight to the JVM that does the work, so that the signal below reaches it (not a launcher parent)
        command.add("--add-modules");
        command.add("jdk.incubator.vector");
        command.add("-jar");
        command.add(Path.of(System.getProperty("llamaj.jar", "target/llama.jar")).toString());
        command.addAll(List.of(args));
        return command;
    }

    @Test
    void perplexityThroughTheJar() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        String text = SharedData.require("reference/ppl-garden.txt").toString();
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        Process p = new ProcessBuilder(java("perplexity", "-m", model, "-f", text, "-c", "64", "-t", "2"))
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(Files.readString(err)).isZero();
        String stdout = Files.readString(out, StandardCharsets.UTF_8);
        assertThat(stdout).contains("[15]").containsPattern("Final estimate: PPL = 4\\.13[0-9]{2} \\+/- 0\\.[0-9]{5}");
        double ppl = Double.parseDouble(stdout.replaceAll("(?s).*Final estimate: PPL = ([0-9.]+).*", "$1"));
        assertThat(ppl).isBetween(4.1336 - 0.0005, 4.1336 + 0.0005); // llama.cpp: 4.1336
        // stderr is not a terminal here: plain progress lines, no carriage returns
        assertThat(Files.readString(err)).contains("llama: perplexity 15/15 (100%)").doesNotContain("\r");
    }

    @Test
    void ctrlCLosesAtMostTheLinesInFlight() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Path in = dir.resolve("in.jsonl");
        StringBuilder sb = new StringBuilder();
        int lines = 100;
        for (int i = 0; i < lines; i++) {
            sb.append("{\"id\": ").append(i).append(", \"prompt\": \"Once upon a time\"}\n");
        }
        Files.writeString(in, sb.toString());
        Path out = dir.resolve("out.jsonl");
        Path err = dir.resolve("err.txt");
        Process p = new ProcessBuilder(java("batch", "-m", model, "-i", in.toString(), "-o", out.toString(),
                "-c", "512", "-n", "300", "--parallel", "2", "-t", "2"))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline && p.isAlive()
                && (!Files.exists(out) || Files.readAllLines(out).size() < 2)) {
            Thread.sleep(20);
        }
        assertThat(p.isAlive()).as("still running after 2 lines (else the test proves nothing)").isTrue();
        Process kill = new ProcessBuilder("kill", "-INT", String.valueOf(p.pid())).start();
        assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String stderr = Files.readString(err);
        assertThat(p.exitValue()).as(stderr).isEqualTo(BatchCommand.INTERRUPTED);
        assertThat(stderr).contains("llama: interrupted; run the same command again to resume");

        String written = Files.readString(out);
        assertThat(written).endsWith("\n");
        Set<Object> ids = new HashSet<>();
        for (String line : written.lines().toList()) {
            assertThat(Json.parseObject(line).get("stop_reason")).isNotEqualTo("cancelled");
            assertThat(ids.add(Json.parseObject(line).get("id"))).isTrue();
        }
        assertThat(ids.size()).isBetween(2, lines - 1);

        // resume: the rest, and nothing twice
        Process again = new ProcessBuilder(java("batch", "-m", model, "-i", in.toString(), "-o", out.toString(),
                "-c", "512", "--parallel", "2", "-t", "2", "-n", "2"))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
        assertThat(again.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(again.exitValue()).as(Files.readString(err)).isZero();
        assertThat(Files.readString(err)).contains("resuming: " + ids.size() + " lines already in");
        Set<Object> all = new HashSet<>();
        for (String line : Files.readAllLines(out)) {
            assertThat(all.add(Json.parseObject(line).get("id"))).isTrue();
        }
        assertThat(all).hasSize(lines);
    }
}
