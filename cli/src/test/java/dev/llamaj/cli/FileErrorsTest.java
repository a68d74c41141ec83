package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// Input and output files that are not what a command expects: each error names what is actually wrong (a
/// directory, a device that never ends, a full device), where every one of them used to be "no such file". The
/// devices are Linux's `/dev/zero` (endless zeros) and `/dev/full` (every write fails with ENOSPC).
class FileErrorsTest {
    @TempDir
    Path dir;

    static String model() {
        return SharedData.require("models/stories260K.gguf").toString();
    }

    /// The result's stderr, whose last line must be the one error (earlier lines are progress).
    private static String error(LlamaCommandTest.Result r) {
        assertThat(r.code()).as(r.err()).isEqualTo(1);
        assertThat(r.err()).doesNotContain("\tat ").doesNotContain("Exception");
        return r.err().strip().lines().reduce((a, b) -> b).orElse("");
    }

    private static void assumeDevice(String device) {
        Path p = Path.of(device);
        Assumptions.assumeTrue(Files.exists(p) && !Files.isRegularFile(p), "skipping: no " + device);
    }

    @Test
    void aDirectoryGivenAsAFileIsSaidToBeOne() {
        assertThat(error(LlamaCommandTest.run("--model", model(), "--file", dir.toString())))
                .isEqualTo("llama: " + dir + ": is a directory");
        assertThat(error(LlamaCommandTest.run("perplexity", "--model", model(), "--file", dir.toString())))
                .isEqualTo("llama: " + dir + ": is a directory");
    }

    @Test
    void anEndlessDeviceIsBoundedOrRefused() {
        assumeDevice("/dev/zero");
        assertThat(error(LlamaCommandTest.run("--model", model(), "--file", "/dev/zero")))
                .isEqualTo("llama: /dev/zero: not a regular file, and longer than the 67108864 bytes a prompt file"
                        + " may have");
        assertThat(error(LlamaCommandTest.run("batch", "--model", model(), "--input", "/dev/zero", "--output",
                dir.resolve("out.jsonl").toString())))
                .isEqualTo("llama: /dev/zero: not a regular file (a device, pipe or socket)");
    }

    @Test
    void aFullDeviceIsSaidToBeFull() throws Exception {
        assumeDevice("/dev/full");
        Path in = Files.writeString(dir.resolve("in.jsonl"), "{\"id\": 1, \"prompt\": \"Once\", \"max_tokens\": 2}\n");
        assertThat(error(LlamaCommandTest.run("batch", "--model", model(), "--input", in.toString(), "--output",
                "/dev/full"))).isEqualTo("llama: /dev/full: no space left on device");
        Path golden = Files.writeString(dir.resolve("g.jsonl"),
                "{\"id\": 1, \"prompt\": \"Once\", \"expected\": \"x\", \"max_tokens\": 2}\n");
        assertThat(error(LlamaCommandTest.run("eval", "--model", model(), "--golden", golden.toString(), "--output",
                "/dev/full"))).isEqualTo("llama: /dev/full: no space left on device");
        // synth writes beside its output and renames at the end: onto a device, that replaced the device
        assertThat(error(LlamaCommandTest.run("synth", "--shape", "tiny", "--type", "Q8_0", "--output",
                "/dev/full"))).isEqualTo("llama: /dev/full: no space left on device");
        assertThat(Files.isRegularFile(Path.of("/dev/full"))).as("/dev/full is still a device").isFalse();
        assertThat(error(LlamaCommandTest.run("eval", "--model", model(), "--golden", golden.toString(), "--output",
                dir.resolve("no/such/dir/report.json").toString())))
                .isEqualTo("llama: " + dir.resolve("no/such/dir/report.json") + ": no such directory");
    }
}
