package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/// A valid model at the start of a 1 TB sparse file (it takes 1 MB of disk): `inspect` reads only the header,
/// metadata and tensor table (it hashed the whole file through the mapping before, its resident memory growing
/// by gigabytes), and hashing it for `--sha256` shows progress and stops on Ctrl-C.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InspectLargeFileTest {
    static final long TERABYTE = 1L << 40;

    @TempDir
    Path dir;

    private Path sparseModel() throws IOException {
        Path file = dir.resolve("huge.gguf");
        Files.copy(SharedData.require("models/stories260K.gguf"), file);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(TERABYTE);
        } catch (IOException e) {
            Assumptions.abort("skipping: this file system cannot hold a sparse 1 TB file (" + e.getMessage() + ")");
        }
        return file;
    }

    @Test
    void inspectReadsOnlyTheHeaderOfATerabyteFile() throws Exception {
        Path file = sparseModel();
        LlamaCommandTest.Result r = LlamaCommandTest.run("inspect", "--model", file.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith(file + ": GGUF v3, ").contains("1,099,511,627,776 bytes")
                .contains("48 tensors").doesNotContain("SHA-256");
    }

    /// In a child JVM, which gets the SIGINT.
    @Test
    void hashingATerabyteShowsProgressAndStopsOnCtrlC() throws Exception {
        Path file = sparseModel();
        Path err = dir.resolve("err.txt");
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                "dev.llamaj.cli.Main", "inspect", "--model", file.toString(), "--sha256", "0".repeat(64));
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(err.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process p = pb.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.readString(err).contains("(Ctrl-C stops)") && p.isAlive()
                    && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(Files.readString(err)).contains("llama: " + file + ": computing the SHA-256 of "
                    + "1,099,511,627,776 bytes (Ctrl-C stops)");
            Thread.sleep(500);
            new ProcessBuilder("kill", "-INT", String.valueOf(p.pid())).inheritIO().start().waitFor();
            assertThat(p.waitFor(10, TimeUnit.SECONDS)).as("stopped after Ctrl-C").isTrue();
            String text = Files.readString(err, StandardCharsets.UTF_8);
            assertThat(p.exitValue()).as(text).isEqualTo(1);
            assertThat(text).containsPattern("llama: " + java.util.regex.Pattern.quote(file.toString())
                    + ": SHA-256 interrupted \\(Ctrl-C\\) after [\\d,]+ of 1,099,511,627,776 bytes");
            assertThat(text).doesNotContain("Exception");
        } finally {
            p.destroyForcibly();
        }
    }
}
