package dev.llamaj.cli;

import dev.llamaj.engine.KVCacheType;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.LoadOptions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.io.PrintStream;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/// Options shared by every command that loads a model.
final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "FILE",
            description = "GGUF model file (default: the built-in demo model, builtin:stories260K)")
    String model;

    /// The file `--model` resolved to, once [#model] has run.
    private Path resolved;

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = {"-t", "--threads"}, paramLabel = "N",
            description = "compute threads (default: available processors, ${DEFAULT-VALUE})")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = {"-b", "--batch-size"}, paramLabel = "N",
            description = "most prompt tokens per batch (default: ${DEFAULT-VALUE})")
    int batchSize = 512;

    @Option(names = "--no-repack", negatable = false,
            description = "run the weights where the file maps them instead of repacking them into the kernels' "
                    + "layouts at load (less memory, slower)")
    boolean noRepack;

    @Option(names = "--cache-type-k", paramLabel = "TYPE",
            description = "how the key/value cache stores keys: f16, q8_0 or q4_0 (default: f16)")
    String cacheTypeK = "f16";

    @Option(names = "--cache-type-v", paramLabel = "TYPE",
            description = "how the key/value cache stores values: f16, q8_0 or q4_0 (default: f16)")
    String cacheTypeV = "f16";

    @Option(names = "--no-cache-rotation", negatable = false,
            description = "store a quantized cache's keys and values as computed, without the Hadamard rotation "
                    + "applied by default where the head size is a multiple of 64 (llama.cpp's "
                    + "LLAMA_ATTN_ROT_DISABLE=1)")
    boolean noCacheRotation;

    @Option(names = "--verbose", description = "show stack traces of errors and model details")
    boolean verbose;

    @Option(names = "--sha256", paramLabel = "HEX",
            description = "refuse the model file unless its SHA-256 is HEX (64 hex digits); checked before loading")
    String sha256;

    /// Set once the file's digest has matched `--sha256`, so that later calls of [#model] do not read it again.
    private boolean verified;

    /// Whether the model is the built-in demo model (no `--model`, or `--model builtin:NAME`).
    boolean builtin() {
        return BuiltinModel.isBuiltin(model);
    }

    /// The model path: `--model`, or without it the built-in demo model, extracted to its cache file on first use
    /// (a line on stderr says which model runs, so nobody mistakes the toy for their own). With `--sha256`, the
    /// first call reads the whole file and throws (an [UncheckedIOException], reported as a one-line error)
    /// unless its digest matches, so every command that gets its model file here verifies it before loading
    /// anything.
    Path model() {
        if (resolved == null) {
            resolved = resolve();
        }
        Path model = resolved;
        if (sha256 != null && !verified) {
            String expected = sha256.toLowerCase(Locale.ROOT);
            if (!expected.matches("[0-9a-f]{64}")) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--sha256 must be 64 hexadecimal digits, got '" + sha256 + "'");
            }
            // A missing file, a directory... are left to the loader, which says so in its own words.
            if (Files.isRegularFile(model)) {
                try {
                    String actual = sha256Of(model, err());
                    if (!actual.equals(expected)) {
                        throw new IOException(model + ": SHA-256 mismatch: the file has " + actual + ", --sha256 expects "
                                + expected);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                verified = true;
            }
        }
        return model;
    }

    private Path resolve() {
        if (!builtin()) {
            try {
                return Path.of(model);
            } catch (java.nio.file.InvalidPathException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--model " + model + ": not a valid path");
            }
        }
        try {
            Path file = BuiltinModel.resolve(model);
            PrintStream err = err();
            if (err != null && model == null) {
                err.println("llama: no --model given: running the built-in demo model " + BuiltinModel.NAME
                        + " (a 260K-parameter toy that writes children's stories; --model FILE for a real one)");
            }
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /// The command line's error stream (the root command's), for progress.
    private PrintStream err() {
        return spec != null && spec.root().userObject() instanceof LlamaCommand root ? root.err : null;
    }

    /// Files from this size on get a progress display while they are hashed.
    static final long PROGRESS_FROM_BYTES = 256L << 20;

    /// The SHA-256 of a file as 64 lowercase hex digits, read in 1 MiB chunks (read, not mapped: mapping a large
    /// file and reading it through made the resident memory grow with it, 2 GB in 15 s on a 1 TB file). From
    /// [#PROGRESS_FROM_BYTES] on, a line on `err` says so and a progress display follows; Ctrl-C stops it (an
    /// `IOException` saying so).
    ///
    /// @param err where progress goes; null for none
    static String sha256Of(Path path, PrintStream err) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every Java platform provides SHA-256", e);
        }
        AtomicBoolean interrupted = new AtomicBoolean();
        try (FileChannel channel = FileChannel.open(path);
             Interrupts _ = Interrupts.onCtrlC(() -> {
                 interrupted.set(true);
                 return true;
             })) {
            long size = channel.size();
            long mib = (size + (1 << 20) - 1) >> 20;
            Progress progress = null;
            if (err != null && size >= PROGRESS_FROM_BYTES) {
                err.printf(Locale.ROOT, "llama: %s: computing the SHA-256 of %,d bytes (Ctrl-C stops)%n", path, size);
                progress = new Progress(err, "sha256", "MiB", mib, Progress.Mode.AUTO,
                        PROGRESS_LINE_INTERVAL_NANOS, System::nanoTime);
            }
            ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
            int n;
            while ((n = channel.read(buffer)) >= 0) {
                if (interrupted.get()) {
                    if (progress != null) {
                        progress.finish();
                    }
                    throw new IOException(path + ": SHA-256 interrupted (Ctrl-C) after "
                            + String.format(Locale.ROOT, "%,d", channel.position()) + " of "
                            + String.format(Locale.ROOT, "%,d", size) + " bytes");
                }
                buffer.flip();
                digest.update(buffer);
                buffer.clear();
                if (progress != null && n > 0) {
                    progress.advance(1, 0);
                }
            }
            if (progress != null) {
                progress.finish();
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /// Progress lines (when stderr is not a terminal) while hashing: every 5 s.
    static final long PROGRESS_LINE_INTERVAL_NANOS = 5_000_000_000L;

    LlamaModel load() throws IOException {
        return load(threads);
    }

    /// The model, with `sessionThreads` compute threads per session; a warning if it runs unrepacked for lack of
    /// memory.
    LlamaModel load(int sessionThreads) throws IOException {
        LlamaModel m = LlamaModel.load(model(), loadOptions(sessionThreads));
        m.repackSkipped().ifPresent(why -> spec.commandLine().getErr().println("llama: warning: " + m.file().path()
                + ": " + why));
        return m;
    }

    /// The load options these flags describe, with `sessionThreads` compute threads per session.
    LoadOptions loadOptions(int sessionThreads) {
        checkThreads(sessionThreads);
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be 1 or more, got " + batchSize);
        }
        return LoadOptions.defaults().withThreads(sessionThreads).withBatchSize(batchSize).withRepack(!noRepack)
                .withCacheTypeK(cacheType("--cache-type-k", cacheTypeK))
                .withCacheTypeV(cacheType("--cache-type-v", cacheTypeV))
                .withCacheRotation(!noCacheRotation);
    }

    /// For `--verbose`: the key/value cache's types and where it is rotated (llama.cpp logs the same as
    /// `attn_rot_k`/`attn_rot_v`), or "" for the default half-precision cache.
    static String cacheSummary(LlamaModel m) {
        LoadOptions o = m.options();
        if (o.cacheTypeK() == KVCacheType.F16 && o.cacheTypeV() == KVCacheType.F16) {
            return "";
        }
        String rotation = m.cacheRotationK() == 0 && m.cacheRotationV() == 0 ? "not rotated"
                : "rotated: keys " + (m.cacheRotationK() == 0 ? "no" : "by " + m.cacheRotationK())
                        + ", values " + (m.cacheRotationV() == 0 ? "no" : "by " + m.cacheRotationV());
        return ", key/value cache " + o.cacheTypeK().cliName() + "/" + o.cacheTypeV().cliName() + " " + rotation;
    }

    private static KVCacheType cacheType(String option, String value) {
        try {
            return KVCacheType.parse(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(option + ": " + e.getMessage());
        }
    }

    /// `--threads` is 1 to the processors available: more only makes threads wait for each other at every
    /// matrix (10,000 threads took a minute per token), so it is refused rather than capped silently.
    static void checkThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be 1 or more, got " + threads);
        }
        int processors = Runtime.getRuntime().availableProcessors();
        if (threads > processors) {
            throw new IllegalArgumentException("--threads " + threads + " is more than the " + processors
                    + " processor" + (processors == 1 ? "" : "s") + " available (use at most " + processors + ")");
        }
    }
}
