package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.LlamaCommandTest.Result;
import dev.llamaj.gguf.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `--sha256 HEX` on every command that loads a model: the file is verified before it is loaded, a mismatch is a
/// one-line error naming both digests (exit 1), a malformed digest a usage error (exit 2). `inspect --hash` prints
/// the digest; plain `inspect` reads only the header and metadata (see [InspectLargeFileTest]).
class ModelChecksumTest {
    private static final String WRONG = "0".repeat(64);

    @TempDir
    Path dir;

    private Path model;
    private String sha256;

    @BeforeEach
    void setUp() throws Exception {
        model = SharedData.require("models/stories260K.gguf");
        sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(model)));
    }

    /// Every command that takes `--model`, with the arguments it needs to get as far as loading it.
    private List<List<String>> commands() throws Exception {
        String m = model.toString();
        Path prompts = Files.writeString(dir.resolve("in.jsonl"), "{\"prompt\": \"Once\"}\n");
        Path golden = Files.writeString(dir.resolve("golden.jsonl"), "{\"prompt\": \"Once\", \"answer\": \"upon\"}\n");
        Path text = Files.writeString(dir.resolve("text.txt"), "Once upon a time there was a little girl.\n");
        List<List<String>> commands = new ArrayList<>();
        commands.add(List.of("--model", m, "--prompt", "Once", "-n", "2", "--temperature", "0"));
        commands.add(List.of("tokenize", "--model", m, "Once"));
        commands.add(List.of("inspect", "--model", m));
        commands.add(List.of("bench", "--model", m, "-p", "4", "-n", "2", "-r", "1", "--no-warmup"));
        commands.add(List.of("batch", "--model", m, "-i", prompts.toString(), "-o", dir.resolve("out.jsonl").toString()));
        commands.add(List.of("eval", "--model", m, "-g", golden.toString()));
        commands.add(List.of("perplexity", "--model", m, "-f", text.toString()));
        commands.add(List.of("serve", "--model", m, "--port", "0"));
        return commands;
    }

    private static Result run(List<String> command, String... more) {
        List<String> args = new ArrayList<>(command);
        args.addAll(List.of(more));
        return LlamaCommandTest.run(args.toArray(String[]::new));
    }

    @Test
    void aWrongDigestStopsEveryCommandBeforeLoading() throws Exception {
        for (List<String> command : commands()) {
            Result r = run(command, "--sha256", WRONG);
            String what = String.join(" ", command);
            assertThat(r.code()).as(what + "\n" + r.err()).isEqualTo(1);
            assertThat(r.err()).as(what).isEqualTo("llama: " + model + ": SHA-256 mismatch: the file has " + sha256
                    + ", --sha256 expects " + WRONG + System.lineSeparator());
            assertThat(r.out()).as(what).isEmpty();
        }
        assertThat(Files.exists(dir.resolve("out.jsonl"))).as("batch wrote nothing").isFalse();
    }

    /// The right digest, in either case, lets the quick commands run as usual.
    @Test
    void theRightDigestLetsCommandsRun() throws Exception {
        for (List<String> command : commands().subList(0, 3)) {
            for (String hex : new String[] {sha256, sha256.toUpperCase(Locale.ROOT)}) {
                Result r = run(command, "--sha256", hex);
                assertThat(r.code()).as(String.join(" ", command) + "\n" + r.err()).isZero();
                assertThat(r.out()).isNotEmpty();
            }
        }
    }

    @Test
    void aMalformedDigestIsAUsageError() {
        for (String bad : new String[] {"abc", sha256 + "0", "g".repeat(64)}) {
            Result r = LlamaCommandTest.run("tokenize", "--model", model.toString(), "--sha256", bad, "Once");
            assertThat(r.code()).as(bad).isEqualTo(2);
            assertThat(r.err()).startsWith("llama: --sha256 must be 64 hexadecimal digits, got '" + bad + "'");
        }
    }

    /// With a file that is not there, the usual message: the digest is not the problem.
    @Test
    void aMissingFileIsStillNoSuchFile() {
        Path missing = dir.resolve("missing.gguf");
        Result r = LlamaCommandTest.run("--model", missing.toString(), "--prompt", "hi", "--sha256", WRONG);
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("llama: " + missing + ": no such file" + System.lineSeparator());
    }

    @Test
    void inspectPrintsTheDigest() {
        Result r = LlamaCommandTest.run("inspect", "--model", model.toString(), "--hash");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().lines().skip(1).findFirst()).hasValue("SHA-256: " + sha256);
        assertThat(LlamaCommandTest.run("inspect", "--model", model.toString()).out()).doesNotContain("SHA-256");
    }
}
