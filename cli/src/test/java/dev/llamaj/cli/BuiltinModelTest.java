package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.gguf.SharedData;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// The demo model inside the jar: its bytes, its extraction to a cache file, and the commands that use it.
class BuiltinModelTest {
    @TempDir
    Path dir;

    @Test
    void theResourceIsTheSharedModelWithItsDigestAndLicence() throws Exception {
        byte[] bytes;
        try (InputStream in = BuiltinModel.class.getResourceAsStream(BuiltinModel.RESOURCE)) {
            assertThat(in).as("the model is a resource of the cli module").isNotNull();
            bytes = in.readAllBytes();
        }
        assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes)))
                .isEqualTo(BuiltinModel.SHA256);
        try (InputStream in = BuiltinModel.class.getResourceAsStream(
                "/dev/llamaj/cli/models/stories260K.LICENSE.txt")) {
            assertThat(in).isNotNull();
            assertThat(new String(in.readAllBytes())).contains("MIT License").contains(BuiltinModel.SHA256);
        }
        Path shared = SharedData.require("models/stories260K.gguf");
        assertThat(Files.readAllBytes(shared)).isEqualTo(bytes);
    }

    @Test
    void extractsOnceAndReusesTheVerifiedFile() throws Exception {
        Path cache = dir.resolve("a/b");
        Path file = BuiltinModel.extract(List.of(cache));
        assertThat(file.getParent()).isEqualTo(cache);
        assertThat(file.getFileName().toString()).isEqualTo("stories260K-047bf464.gguf");
        assertThat(ModelOptions.sha256Of(file, null)).isEqualTo(BuiltinModel.SHA256);
        long modified = Files.getLastModifiedTime(file).toMillis();
        Thread.sleep(20);
        assertThat(BuiltinModel.extract(List.of(cache))).isEqualTo(file);
        assertThat(Files.getLastModifiedTime(file).toMillis()).as("not written again").isEqualTo(modified);
        try (var files = Files.list(cache)) {
            assertThat(files.toList()).as("no temporary file left").containsExactly(file);
        }
    }

    @Test
    void aDamagedOrTruncatedCacheFileIsReplaced() throws Exception {
        Path file = BuiltinModel.extract(List.of(dir));
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length / 2] ^= 1;
        Files.write(file, bytes);
        assertThat(BuiltinModel.extract(List.of(dir))).isEqualTo(file);
        assertThat(ModelOptions.sha256Of(file, null)).isEqualTo(BuiltinModel.SHA256);
        Files.write(file, new byte[100]);
        BuiltinModel.extract(List.of(dir));
        assertThat(ModelOptions.sha256Of(file, null)).isEqualTo(BuiltinModel.SHA256);
    }

    @Test
    void aDirectoryThatCannotBeCreatedFallsBackToTheNext() throws Exception {
        Path blocker = Files.writeString(dir.resolve("not-a-dir"), "x");
        Path next = dir.resolve("next");
        assertThat(BuiltinModel.extract(List.of(blocker.resolve("cache"), next)).getParent()).isEqualTo(next);
        assertThatThrownBy(() -> BuiltinModel.extract(List.of(blocker.resolve("cache"))))
                .hasMessageStartingWith("cannot extract the built-in model stories260K to " + blocker.resolve("cache"))
                .hasMessageEndingWith("(set -Dllamaj.cache.dir=DIR, or give --model FILE)");
    }

    @Test
    void concurrentExtractionsAllSeeACompleteFile() throws Exception {
        Path cache = dir.resolve("shared-cache");
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<String>> digests = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                Callable<String> task = () -> ModelOptions.sha256Of(BuiltinModel.extract(List.of(cache)), null);
                digests.add(pool.submit(task));
            }
            for (Future<String> d : digests) {
                assertThat(d.get()).isEqualTo(BuiltinModel.SHA256);
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void noArgumentsPrintUsageAndTheFirstCommandToTry() {
        SynthCommandTest.Result r = SynthCommandTest.run();
        assertThat(r.code()).isZero();
        assertThat(r.out()).startsWith("Usage: llama").contains("--prompt").contains("serve")
                .contains("Try: llama --prompt \"Once upon a time\"");
        assertThat(r.err()).isEmpty();
    }

    @Test
    void commandsWithoutModelRunTheBuiltinOne() throws Exception {
        String previous = System.getProperty(BuiltinModel.CACHE_DIR_PROPERTY);
        System.setProperty(BuiltinModel.CACHE_DIR_PROPERTY, dir.toString());
        try {
            SynthCommandTest.Result r = SynthCommandTest.run("--prompt", "Once upon a time", "--temperature", "0",
                    "-n", "12", "-t", "1");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).startsWith(", there was a little girl");
            assertThat(r.err()).contains("no --model given: running the built-in demo model stories260K");

            r = SynthCommandTest.run("tokenize", "--model", "builtin:stories260K", "--ids", "Once upon");
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out().strip()).isEqualTo("[1, 403, 407]");
            assertThat(r.err()).as("named explicitly: no notice").isEmpty();

            r = SynthCommandTest.run("tokenize", "--model", "builtin:llama-70b", "x");
            assertThat(r.code()).isEqualTo(1);
            assertThat(r.err().strip()).isEqualTo(
                    "llama: --model builtin:llama-70b: no such built-in model (built-in: builtin:stories260K)");
        } finally {
            if (previous == null) {
                System.clearProperty(BuiltinModel.CACHE_DIR_PROPERTY);
            } else {
                System.setProperty(BuiltinModel.CACHE_DIR_PROPERTY, previous);
            }
        }
    }
}
