package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.GGUFWriter;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// Runs the command line in-process with captured streams: exit codes and one-line messages.
class LlamaCommandTest {
    @TempDir
    Path dir;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static void assertOneLineError(Result r, int code, String fragment) {
        assertThat(r.code()).as(r.err()).isEqualTo(code);
        String firstLine = r.err().lines().findFirst().orElse("");
        assertThat(firstLine).startsWith("llama: ").contains(fragment);
        assertThat(r.err()).doesNotContain("\tat ").doesNotContain("Exception in");
    }

    @Test
    void missingFile() {
        Path missing = dir.resolve("missing.gguf");
        Result r = run("--model", missing.toString(), "--prompt", "hi");
        assertOneLineError(r, 1, missing + ": no such file");
        assertThat(r.err().lines().count()).isEqualTo(1);
    }

    @Test
    void directory() {
        assertOneLineError(run("--model", dir.toString(), "--prompt", "hi"), 1, "is a directory");
    }

    @Test
    void emptyFile() throws Exception {
        Path empty = Files.createFile(dir.resolve("empty.gguf"));
        assertOneLineError(run("--model", empty.toString(), "--prompt", "hi"), 1, "not a GGUF file (the file is empty)");
    }

    @Test
    void notAGGUFFile() throws Exception {
        Path text = Files.writeString(dir.resolve("notes.txt"), "hello, this is not a model\n");
        assertOneLineError(run("--model", text.toString(), "--prompt", "hi"), 1, "not a GGUF file (magic");
    }

    @Test
    void truncatedGGUF() throws Exception {
        byte[] model = Files.readAllBytes(SharedData.require("models/stories260K.gguf"));
        Path truncated = Files.write(dir.resolve("truncated.gguf"), Arrays.copyOf(model, model.length / 2));
        assertOneLineError(run("--model", truncated.toString(), "--prompt", "hi"), 1, "lies outside the file");
        Path header = Files.write(dir.resolve("header.gguf"), Arrays.copyOf(model, 1000));
        assertOneLineError(run("--model", header.toString(), "--prompt", "hi"), 1, "truncated at byte 1000");
    }

    @Test
    void unsupportedTensorType() throws Exception {
        Path source = SharedData.require("models/stories260K.gguf");
        Path bad = dir.resolve("iq4.gguf");
        try (GGUFFile f = GGUFFile.open(source)) {
            GGUFWriter w = new GGUFWriter().putAll(f.metadata(), _ -> true);
            for (TensorInfo t : f.tensors()) {
                if (t.name().equals("blk.0.attn_q.weight")) {
                    w.addTensor(t.name(), GGMLType.IQ4_NL, t.shape(), new byte[(int) GGMLType.IQ4_NL.byteSize(t.elementCount())]);
                } else {
                    w.addTensor(t.name(), t.type(), t.shape(), f.tensorData(t));
                }
            }
            w.write(bad);
        }
        assertOneLineError(run("--model", bad.toString(), "--prompt", "hi"), 1,
                "tensor 'blk.0.attn_q.weight' has type IQ4_NL, which llamaj cannot run (supported: ");
    }

    @Test
    void unknownOptionIsAUsageError() {
        Result r = run("--model", "x.gguf", "--frobnicate");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).startsWith("llama: Unknown option: '--frobnicate'");
    }

    @Test
    void withoutModelTheBuiltinDemoModelRunsAndSaysSo() {
        Result r = run("--prompt", "hi", "-n", "4", "-t", "1");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("no --model given: running the built-in demo model stories260K");
    }

    @Test
    void promptLongerThanTheContext() {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Result r = run("--model", model, "--context", "8", "--prompt", "Once upon a time there was a girl named Lily who");
        assertOneLineError(r, 1, "tokens but only 8 fit in the context (raise --context)");
    }

    @Test
    void badNumbersAreClearErrors() {
        String model = SharedData.require("models/stories260K.gguf").toString();
        assertOneLineError(run("--model", model, "--prompt", "a", "--threads", "0"), 1, "--threads must be 1 or more");
        assertOneLineError(run("--model", model, "--prompt", "a", "--temperature", "-1"), 1, "temperature must be 0 or more");
        assertThat(run("--model", model, "--prompt", "a", "--max-tokens", "lots").code()).isEqualTo(2);
    }

    @Test
    void moreThreadsThanProcessorsAreRefused() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        int processors = Runtime.getRuntime().availableProcessors();
        String expected = "--threads 10000 is more than the " + processors + " processor"
                + (processors == 1 ? "" : "s") + " available (use at most " + processors + ")";
        assertOneLineError(run("--model", model, "--prompt", "a", "--threads", "10000"), 1, expected);
        assertOneLineError(run("serve", "--model", model, "--port", "0", "--threads", "10000"), 1, expected);
        assertOneLineError(run("bench", "--model", model, "--threads", "10000"), 1, expected);
        assertOneLineError(run("batch", "--model", model, "--input", "in.jsonl", "--output",
                dir.resolve("out.jsonl").toString(), "--threads", "10000"), 1, expected);
        String text = java.nio.file.Files.writeString(dir.resolve("x.txt"), "Once upon a time. ".repeat(50)).toString();
        assertOneLineError(run("perplexity", "--model", model, "--file", text, "--threads", "10000"), 1, expected);
    }

    @Test
    void verboseShowsTheStackTrace() {
        Result r = run("--model", dir.resolve("missing.gguf").toString(), "--prompt", "hi", "--verbose");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).contains("\tat ");
    }

    @Test
    void generatesGreedily() {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Result r = run("--model", model, "--prompt", "Once upon a time", "--temperature", "0", "-n", "20");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith(", there was a little girl named Lily.");
        assertThat(r.err()).contains("generated 20 tokens").contains("stop: max tokens");
    }

    @Test
    void tokenizePrintsIdsAndPieces() {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Result ids = run("tokenize", "--model", model, "--ids", "Once upon");
        assertThat(ids.code()).as(ids.err()).isZero();
        assertThat(ids.out().strip()).startsWith("[1, ");
        Result pieces = run("tokenize", "--model", model, "--no-bos", "Once");
        assertThat(pieces.out()).doesNotContain("'<s>'").contains("->");
    }

    @Test
    void inspectPrintsMetadataAndTensors() {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Result r = run("inspect", "--model", model);
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("general.architecture").contains("\"llama\"")
                .contains("blk.4.ffn_down.weight").contains("F32").contains("[172, 64]");
    }
}
