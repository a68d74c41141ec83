package dev.llamaj.cli;

import dev.llamaj.engine.BatchExecutor;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.Speculation;
import dev.llamaj.engine.kernel.Bandwidth;
import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.TensorInfo;
import dev.llamaj.tokenizer.Vocabulary;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.function.LongSupplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/// `llama bench`: tokens per second of prompt processing and generation, in the manner of llama.cpp's
/// `llama-bench`, set against the machine's memory bandwidth.
///
/// Two tests, each warmed up (run untimed until it stops getting faster, see [#warmUp]) and then run `-r` times:
/// `ppN` ingests `N` random tokens (BOS first if the vocabulary adds it) into an empty session in one
/// [Session#ingest] call; `tgN` ingests `N` tokens one at a time (BOS, then random ones), each producing logits, as
/// generation does. Each run starts from an empty context. The table gives the mean ± sample standard deviation of
/// the per-run tokens/s, like llama-bench's.
///
/// Generation reads every weight once per token, so its ceiling is the memory bandwidth. Before loading the
/// model, `bench` measures the bandwidth with [Bandwidth] (1 thread and `-t` threads) and reports the bytes read
/// per generated token (`LlamaModel.bytesPerToken()` plus the average key/value cache read over the test's
/// positions), the speed those bytes allow (the roofline), and the share of it reached. It also reports the
/// resident memory (`VmRSS`) during generation (read after each run), against the file size plus the key/value cache.
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measures prompt processing and generation speed (like llama.cpp's llama-bench).")
final class BenchCommand implements Callable<Integer> {
    static final int BANDWIDTH_REPETITIONS = 10;
    static final int MAX_WARMUP_RUNS = 10;
    static final long WARMUP_NANOS = 60_000_000_000L;
    static final double WARMUP_GAIN = 0.05;

    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = {"-p", "--n-prompt"}, paramLabel = "N",
            description = "prompt tokens to process in the prompt test; 0 skips it (default: ${DEFAULT-VALUE})")
    int prompt = 512;

    @Option(names = {"-n", "--n-gen"}, paramLabel = "N",
            description = "tokens to generate in the generation test; 0 skips it (default: ${DEFAULT-VALUE})")
    int generate = 128;

    @Option(names = {"-r", "--repetitions"}, paramLabel = "N",
            description = "timed runs of each test (default: ${DEFAULT-VALUE})")
    int repetitions = 5;

    @Option(names = {"-d", "--n-depth"}, paramLabel = "N",
            description = "tokens already in the context when each test starts, ingested untimed (default: ${DEFAULT-VALUE})")
    int depth;

    @Option(names = {"-o", "--output-format"}, paramLabel = "FORMAT",
            description = "text (a table, the default) or json (one JSON object), as llama-bench's -o")
    OutputFormat outputFormat = OutputFormat.text;

    /// The former name of `--output-format json`, kept (hidden) for scripts written against it.
    @Option(names = "--json", hidden = true)
    boolean legacyJson;

    private boolean json() {
        return legacyJson || outputFormat == OutputFormat.json;
    }

    @Option(names = "--no-warmup", description = "skip the untimed warm-up runs of each test")
    boolean noWarmup;

    @Option(names = "--bandwidth-mib", paramLabel = "MIB",
            description = "size of the buffer the memory bandwidth is measured with; 0 skips the measurement "
                    + "(default: ${DEFAULT-VALUE})")
    int bandwidthMib = (int) (Bandwidth.DEFAULT_BYTES >> 20);

    @Option(names = "--parallel", split = ",", paramLabel = "N[,N...]",
            description = "concurrency sweep: for each N, N sequences each ingest -p prompt tokens and generate -n "
                    + "tokens at once through one batch executor (continuous batching); reports aggregate and "
                    + "per-stream tokens/s, like llama-batched-bench (replaces the prompt test)")
    List<Integer> parallel;

    @Option(names = "--long-prompt", paramLabel = "N",
            description = "with --parallel: a second generation phase per level, during which one more session "
                    + "ingests N prompt tokens; reports how much longer the generating sequences' steps get")
    int longPrompt;

    /// Most sequences of a sweep level.
    static final int MAX_PARALLEL = 256;

    @Mixin
    SpeculationOptions speculation = new SpeculationOptions();

    @Option(names = "--spec-prompt", paramLabel = "TEXT",
            description = "with --draft-model or --lookup: the prompt the speculation test continues (default: '"
                    + "${DEFAULT-VALUE}')")
    String specPrompt = "Once upon a time";

    @Option(names = "--spec-prompt-file", paramLabel = "FILE",
            description = "with --draft-model or --lookup: read that prompt from FILE")
    String specPromptFile;

    @Option(names = "--spec-executor", description = "with --draft-model or --lookup: run the speculation test's "
            + "session in a batch executor (continuous batching's small-batch steps), with and without speculation")
    boolean specExecutor;

    /// Keeps logits live so no forward pass can be skipped.
    private static volatile float sink;

    /// One test's timed runs; `warmUpRuns` untimed ones came before.
    record Test(String name, int promptTokens, int generatedTokens, int depth, long[] samplesNanos, int warmUpRuns) {
        int tokens() {
            return promptTokens + generatedTokens;
        }

        double[] samplesTokensPerSecond() {
            double[] ts = new double[samplesNanos.length];
            for (int i = 0; i < ts.length; i++) {
                ts[i] = tokens() * 1e9 / samplesNanos[i];
            }
            return ts;
        }

        double mean() {
            double sum = 0;
            for (double v : samplesTokensPerSecond()) {
                sum += v;
            }
            return sum / samplesNanos.length;
        }

        /// Sample standard deviation (0 for a single run), as llama-bench's `stdev`.
        double standardDeviation() {
            double[] ts = samplesTokensPerSecond();
            if (ts.length < 2) {
                return 0;
            }
            double mean = mean();
            double sq = 0;
            for (double v : ts) {
                sq += (v - mean) * (v - mean);
            }
            return Math.sqrt(sq / (ts.length - 1));
        }
    }

    @Override
    public Integer call() throws IOException {
        Path path = modelOptions.model();
        if (prompt < 0 || generate < 0) {
            throw new IllegalArgumentException("-p and -n must be 0 or more, got " + prompt + " and " + generate);
        }
        if (prompt == 0 && generate == 0) {
            throw new IllegalArgumentException("nothing to measure: -p and -n are both 0");
        }
        if (depth < 0) {
            throw new IllegalArgumentException("--n-depth must be 0 or more, got " + depth);
        }
        if (repetitions < 1) {
            throw new IllegalArgumentException("--repetitions must be 1 or more, got " + repetitions);
        }
        ModelOptions.checkThreads(modelOptions.threads);
        if (bandwidthMib < 0) {
            throw new IllegalArgumentException("--bandwidth-mib must be 0 or more, got " + bandwidthMib);
        }
        if (parallel != null) {
            for (int n : parallel) {
                if (n < 1 || n > MAX_PARALLEL) {
                    throw new IllegalArgumentException("--parallel takes sequence counts from 1 to " + MAX_PARALLEL
                            + ", got " + n);
                }
            }
            if (generate == 0) {
                throw new IllegalArgumentException("--parallel measures generation: -n must be 1 or more");
            }
            if (depth > 0) {
                throw new IllegalArgumentException("--parallel does not support --n-depth");
            }
        }
        if (longPrompt < 0) {
            throw new IllegalArgumentException("--long-prompt must be 0 or more, got " + longPrompt);
        }
        if (longPrompt > 0 && parallel == null) {
            throw new IllegalArgumentException("--long-prompt needs --parallel");
        }
        if (!Files.isRegularFile(path)) {
            throw new IOException(path + (Files.isDirectory(path) ? ": is a directory" : ": no such file"));
        }
        boolean speculating = speculation.enabled();
        if (!speculating && (specPromptFile != null || specExecutor)) {
            throw new IllegalArgumentException((specExecutor ? "--spec-executor" : "--spec-prompt-file")
                    + " needs --draft-model FILE or --lookup");
        }
        String speculationPrompt = !speculating ? null : specPromptFile == null ? specPrompt
                : LlamaCommand.decodeUtf8(CliFiles.readBounded(Path.of(specPromptFile),
                        LlamaCommand.MAX_PROMPT_FILE_BYTES, "prompt file"), specPromptFile);
        if (speculating && generate == 0) {
            throw new IllegalArgumentException("the speculation test generates -n tokens: -n must be 1 or more");
        }
        PrintStream out = parent.out;
        int threads = modelOptions.threads;

        // Measured before the model is loaded, and freed before the tests, so its buffer is not in the RSS figure.
        List<Bandwidth.Result> bandwidth = new ArrayList<>();
        if (bandwidthMib > 0) {
            try (Bandwidth b = Bandwidth.allocate((long) bandwidthMib << 20)) {
                bandwidth.add(b.measure(1, BANDWIDTH_REPETITIONS));
                if (threads > 1) {
                    bandwidth.add(b.measure(threads, BANDWIDTH_REPETITIONS));
                }
            }
        }

        try (LlamaModel model = modelOptions.load()) {
            ModelInfo info = ModelInfo.of(model);
            int contextLength = depth + Math.max(1, Math.max(prompt, generate));
            List<Test> tests = new ArrayList<>();
            List<Integer> warmUps = new ArrayList<>();
            long rss = -1;
            long heap = -1;
            if (!json()) {
                printHeader(out);
            }
            List<ParallelSweep.Row> sweep = new ArrayList<>();
            try (Session session = model.newSession(contextLength)) {
                SplittableRandom random = new SplittableRandom(1234);
                if (prompt > 0 && parallel == null) {
                    if (!noWarmup) {
                        warmUps.add(warmUp(() -> runPrompt(session, depth, prompt, random)));
                    }
                    long[] ns = new long[repetitions];
                    for (int r = 0; r < repetitions; r++) {
                        ns[r] = runPrompt(session, depth, prompt, random);
                    }
                    tests.add(new Test("pp" + prompt + atDepth(), prompt, 0, depth, ns,
                            noWarmup ? 0 : warmUps.getLast()));
                    if (!json()) {
                        printRow(out, info, threads, tests.getLast());
                    }
                }
                if (generate > 0) {
                    if (!noWarmup) {
                        warmUps.add(warmUp(() -> runGeneration(session, depth, generate, random)));
                    }
                    long[] ns = new long[repetitions];
                    for (int r = 0; r < repetitions; r++) {
                        ns[r] = runGeneration(session, depth, generate, random);
                        long resident = residentBytes();
                        if (resident > rss) {
                            rss = resident;
                            heap = Runtime.getRuntime().totalMemory();
                        }
                    }
                    tests.add(new Test("tg" + generate + atDepth(), 0, generate, depth, ns,
                            noWarmup ? 0 : warmUps.getLast()));
                    if (!json()) {
                        printRow(out, info, threads, tests.getLast());
                    }
                }
            }
            if (parallel != null) {
                SplittableRandom random = new SplittableRandom(5678);
                for (int n : parallel) {
                    ParallelSweep.Row row;
                    try {
                        row = ParallelSweep.run(model, n, prompt, generate, repetitions, noWarmup ? 0 : 1, longPrompt,
                                random);
                    } catch (Exception e) {
                        throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
                    }
                    sweep.add(row);
                    if (prompt > 0) {
                        tests.add(new Test("pp" + prompt + "@" + n, n * prompt, 0, 0, row.promptNanos(),
                                noWarmup ? 0 : 1));
                        if (!json()) {
                            printRow(out, info, threads, tests.getLast());
                        }
                    }
                    tests.add(new Test("tg" + generate + "@" + n, 0, n * generate, 0, row.genNanos(),
                            noWarmup ? 0 : 1));
                    if (!json()) {
                        printRow(out, info, threads, tests.getLast());
                    }
                }
            }
            SpeculationResult spec = null;
            if (speculating) {
                spec = runSpeculation(model, speculationPrompt);
                if (!json()) {
                    printRow(out, info, threads, spec.plain());
                    printRow(out, info, threads, spec.speculative());
                }
            }
            Report report = new Report(path, info, threads, repetitions, !noWarmup, bandwidth, tests,
                    model.bytesPerToken(), generate > 0 ? kvReadPerToken(model, depth, generate) : 0, rss, heap,
                    model.kvCacheBytes(contextLength), contextLength, sweep, spec);
            if (json()) {
                out.println(report.json());
            } else {
                report.printSummary(out);
                report.printSweep(out);
                report.printSpeculation(out);
            }
        }
        return 0;
    }

    /// The speculation test: greedy generation of `-n` tokens after the prompt, without and with speculation.
    ///
    /// @param plain       generation without speculation (`sgN`)
    /// @param speculative the same with it (`sgN +lookup`, `sgN +draft`)
    /// @param proposed    draft tokens proposed over the timed speculative runs
    /// @param accepted    of which accepted
    /// @param passes      verification passes
    /// @param identical   whether every speculative run generated the plain run's tokens
    record SpeculationResult(String description, Test plain, Test speculative, long proposed, long accepted,
                             long passes, boolean identical) {
        double acceptanceRate() {
            return proposed == 0 ? 0 : (double) accepted / proposed;
        }

        double speedUp() {
            return speculative.mean() / plain.mean();
        }

        /// Tokens generated per verification pass (the first token, from the prompt's pass, not counted).
        double tokensPerPass() {
            return passes == 0 ? 0 : (double) (accepted + passes) / passes;
        }
    }

    /// Greedy generation of `-n` tokens after `promptText`, plain and speculative runs alternating (so that a
    /// change in the machine's load falls on both alike), each warmed up first. End-of-generation tokens are banned
    /// so that every run generates exactly `-n` tokens.
    private SpeculationResult runSpeculation(LlamaModel model, String promptText) throws IOException {
        Vocabulary v = model.tokenizer().vocabulary();
        java.util.Map<Integer, Float> ban = new java.util.HashMap<>();
        for (int t = 0; t < v.size(); t++) {
            if (v.isEndOfGeneration(t)) {
                ban.put(t, Float.NEGATIVE_INFINITY);
            }
        }
        Sampler.Settings greedy = Sampler.Settings.greedy().withLogitBias(ban);
        int[] prompt;
        try (Session probe = model.newSession(1)) {
            prompt = probe.encode(promptText);
        }
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the speculation test's prompt is empty");
        }
        int contextLength = prompt.length + generate;
        // in an executor, the session computes through continuous batching's small-batch steps
        try (BatchExecutor executor = specExecutor ? model.newBatchExecutor() : null;
             Session session = executor != null ? executor.newSession(contextLength) : model.newSession(contextLength);
             SpeculationOptions.Speculator speculator = speculation.open(model, contextLength, modelOptions)) {
            Speculation spec = speculator.speculation();
            int[][] reference = new int[1][];
            java.util.function.Function<Speculation, int[]> run = s -> {
                session.reset();
                int[] ids = new int[generate];
                int[] n = {0};
                Completion c = session.generate(prompt, generate, Sampler.create(greedy), List.of(), _ -> {},
                        t -> ids[n[0]++] = t.id(), s);
                lastNanos = c.generationNanos();
                return ids;
            };
            int plainWarm = noWarmup ? 0 : warmUp(() -> {
                run.apply(null);
                return lastNanos;
            });
            int specWarm = noWarmup ? 0 : warmUp(() -> {
                run.apply(spec);
                return lastNanos;
            });
            spec.resetCounts();
            long[] plainNs = new long[repetitions];
            long[] specNs = new long[repetitions];
            boolean identical = true;
            for (int r = 0; r < repetitions; r++) {
                reference[0] = run.apply(null);
                plainNs[r] = lastNanos;
                identical &= Arrays.equals(run.apply(spec), reference[0]);
                specNs[r] = lastNanos;
            }
            String name = "sg" + generate;
            return new SpeculationResult(speculation.describe() + (specExecutor ? ", in a batch executor" : ""),
                    new Test(name, 0, generate, prompt.length, plainNs, plainWarm),
                    new Test(name + (speculation.draftModel != null ? " +draft" : " +lookup"), 0, generate,
                            prompt.length, specNs, specWarm),
                    spec.drafted(), spec.accepted(), spec.rounds(), identical);
        }
    }

    /// The generation time of the last run of [#runSpeculation]'s generator.
    private long lastNanos;

    /// Runs a test untimed until it stops getting faster: the JIT compiles the kernels while they run, and a Java
    /// engine can take several runs to reach its steady speed (llama-bench's single warm-up run is not enough).
    /// Stops when a run is less than [#WARMUP_GAIN] faster than the one before, after [#MAX_WARMUP_RUNS] runs, or
    /// once [#WARMUP_NANOS] have passed; returns the number of runs.
    static int warmUp(LongSupplier run) {
        long deadline = System.nanoTime() + WARMUP_NANOS;
        long previous = run.getAsLong();
        int runs = 1;
        while (runs < MAX_WARMUP_RUNS && System.nanoTime() < deadline) {
            long nanos = run.getAsLong();
            runs++;
            if (nanos >= previous * (1 - WARMUP_GAIN)) {
                break;
            }
            previous = nanos;
        }
        return runs;
    }

    /// llama-bench's suffix of a test run at a depth: ` @ d4096`.
    private String atDepth() {
        return depth > 0 ? " @ d" + depth : "";
    }

    /// Starts a test: an empty context, then `depth` random tokens (BOS first) ingested in one untimed call.
    static void startAt(Session session, int depth, SplittableRandom random) {
        session.reset();
        if (depth > 0) {
            Vocabulary v = session.model().tokenizer().vocabulary();
            int[] tokens = new int[depth];
            for (int i = 0; i < depth; i++) {
                tokens[i] = i == 0 && v.addBos() ? v.bos() : random.nextInt(v.size());
            }
            session.ingest(tokens);
        }
    }

    /// One prompt test: `n` tokens into a context holding `depth` tokens, in one call; returns the nanoseconds it
    /// took.
    static long runPrompt(Session session, int depth, int n, SplittableRandom random) {
        Vocabulary v = session.model().tokenizer().vocabulary();
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = i == 0 && depth == 0 && v.addBos() ? v.bos() : random.nextInt(v.size());
        }
        startAt(session, depth, random);
        long start = System.nanoTime();
        session.ingest(tokens);
        sink += session.logits()[0];
        return System.nanoTime() - start;
    }

    /// One generation test: `n` single-token forward passes after `depth` tokens; returns the nanoseconds.
    static long runGeneration(Session session, int depth, int n, SplittableRandom random) {
        Vocabulary v = session.model().tokenizer().vocabulary();
        int vocab = v.size();
        startAt(session, depth, random);
        int token = depth == 0 && v.addBos() ? v.bos() : random.nextInt(vocab);
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            session.ingest(token);
            sink += session.logits()[0];
            token = random.nextInt(vocab);
        }
        return System.nanoTime() - start;
    }

    /// Average bytes of key/value cache a generated token reads over positions `depth .. depth + n - 1` (position
    /// `p` attends to `p + 1` cached positions).
    static long kvReadPerToken(LlamaModel model, int depth, int n) {
        return Math.round(model.kvBytesPerPosition() * (depth + (n + 1) / 2.0));
    }

    /// `VmRSS` of this process, or -1 where `/proc/self/status` does not exist.
    static long residentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    String[] parts = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /// What the table says about the model: llama-bench's "model", "size", "params" and "type" columns.
    record ModelInfo(String description, String type, long tensorBytes, long parameters, long fileBytes,
                     long repackedExtraBytes, long repackNanos) {
        static ModelInfo of(LlamaModel model) throws IOException {
            GGUFFile f = model.file();
            long bytes = 0;
            long params = 0;
            Map<GGMLType, Long> byType = new EnumMap<>(GGMLType.class);
            for (TensorInfo t : f.tensors()) {
                bytes += t.byteSize();
                params += t.elementCount();
                byType.merge(t.type(), t.byteSize(), Long::sum);
            }
            String arch = f.metadata().string("general.architecture");
            String type = fileTypeName((int) f.metadata().integer("general.file_type", -1));
            if (type == null) { // the type holding most bytes
                type = byType.entrySet().stream().max(Map.Entry.comparingByValue()).map(e -> e.getKey().name())
                        .orElse("?");
            }
            return new ModelInfo(arch + " " + sizeLabel(params), type, bytes, params, f.fileSize(),
                    model.repackedExtraBytes(), model.repackNanos());
        }
    }

    /// llama.cpp's name of a `general.file_type` (`llama_ftype`) value, or null if unknown.
    static String fileTypeName(int fileType) {
        return switch (fileType) {
            case 0 -> "F32";
            case 1 -> "F16";
            case 2 -> "Q4_0";
            case 3 -> "Q4_1";
            case 7 -> "Q8_0";
            case 8 -> "Q5_0";
            case 9 -> "Q5_1";
            case 10 -> "Q2_K";
            case 11 -> "Q3_K_S";
            case 12 -> "Q3_K_M";
            case 13 -> "Q3_K_L";
            case 14 -> "Q4_K_S";
            case 15 -> "Q4_K_M";
            case 16 -> "Q5_K_S";
            case 17 -> "Q5_K_M";
            case 18 -> "Q6_K";
            case 32 -> "BF16";
            default -> null;
        };
    }

    /// A rounded size label like llama.cpp's model types: `1B`, `8B`, `260K`.
    static String sizeLabel(long parameters) {
        if (parameters >= 1_000_000_000L) {
            return Math.round(parameters / 1e9) + "B";
        }
        if (parameters >= 1_000_000L) {
            return Math.round(parameters / 1e6) + "M";
        }
        return Math.round(parameters / 1e3) + "K";
    }

    /// `727.75 MiB`, `4.58 GiB`, as llama-bench prints sizes.
    static String formatBytes(long bytes) {
        if (bytes >= 1L << 30) {
            return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
        }
        if (bytes >= 1L << 20) {
            return String.format(Locale.ROOT, "%.2f MiB", bytes / (double) (1L << 20));
        }
        return String.format(Locale.ROOT, "%.2f KiB", bytes / 1024.0);
    }

    /// `1.24 B`, `292.42 K`, as llama-bench prints parameter counts.
    static String formatCount(long n) {
        if (n >= 1_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f B", n / 1e9);
        }
        if (n >= 1_000_000L) {
            return String.format(Locale.ROOT, "%.2f M", n / 1e6);
        }
        return String.format(Locale.ROOT, "%.2f K", n / 1e3);
    }

    private static final String ROW = "| %-20s | %10s | %10s | %-8s | %7s | %13s | %20s |%n";

    static void printHeader(PrintStream out) {
        out.printf(ROW, "model", "size", "params", "type", "threads", "test", "t/s");
        out.printf("| %s | %s: | %s: | %s | %s: | %s: | %s: |%n", "-".repeat(20), "-".repeat(9), "-".repeat(9),
                "-".repeat(8), "-".repeat(6), "-".repeat(12), "-".repeat(19));
        out.flush();
    }

    static void printRow(PrintStream out, ModelInfo m, int threads, Test t) {
        out.printf(ROW, m.description(), formatBytes(m.tensorBytes()), formatCount(m.parameters()), m.type(),
                threads, t.name(), String.format(Locale.ROOT, "%.2f ± %.2f", t.mean(), t.standardDeviation()));
        out.flush();
    }

    /// Everything measured, printed as the summary under the table or as one JSON object.
    record Report(Path path, ModelInfo model, int threads, int repetitions, boolean warmup,
                  List<Bandwidth.Result> bandwidth, List<Test> tests, long weightBytesPerToken,
                  long kvBytesPerToken, long rssBytes, long heapBytes, long kvCacheBytes, int contextLength,
                  List<ParallelSweep.Row> sweep, SpeculationResult speculation) {

        /// The bandwidth measured with the test's thread count, or null.
        Bandwidth.Result bandwidthAtThreads() {
            return bandwidth.stream().filter(b -> b.threads() == threads).findFirst().orElse(null);
        }

        Test generation() {
            return tests.stream().filter(t -> t.generatedTokens() > 0).findFirst().orElse(null);
        }

        void printSummary(PrintStream out) {
            out.println();
            out.printf(Locale.ROOT, "model: %s: %,d bytes, %,d bytes of tensors, %,d parameters, type %s%n", path,
                    model.fileBytes(), model.tensorBytes(), model.parameters(), model.type());
            if (model.repackNanos() > 0) {
                out.printf(Locale.ROOT, "repacked at load into kernel layouts: %s %s memory than the file's, "
                                + "%.2f s (--no-repack turns it off)%n",
                        formatBytes(Math.abs(model.repackedExtraBytes())),
                        model.repackedExtraBytes() < 0 ? "less" : "more", model.repackNanos() / 1e9);
            }
            if (bandwidth.isEmpty()) {
                out.println("memory bandwidth: not measured (--bandwidth-mib 0)");
            } else {
                StringBuilder sb = new StringBuilder("memory bandwidth (read):");
                for (Bandwidth.Result b : bandwidth) {
                    sb.append(String.format(Locale.ROOT, " %d thread%s %.1f GB/s (median %.1f);", b.threads(),
                            b.threads() == 1 ? "" : "s", b.bestGBps(), b.medianGBps()));
                }
                Bandwidth.Result first = bandwidth.getFirst();
                sb.append(String.format(Locale.ROOT, " %d MiB x %d%s", first.bytes() >> 20, first.repetitions(),
                        first.hugePages() ? ", huge pages requested" : ""));
                out.println(sb);
            }
            if (warmup) {
                StringBuilder w = new StringBuilder("warm-up (untimed runs until one was less than 5% faster than the "
                        + "one before):");
                for (Test t : tests) {
                    w.append(' ').append(t.name()).append(' ').append(t.warmUpRuns())
                            .append(t.warmUpRuns() == 1 ? " run;" : " runs;");
                }
                out.println(w.substring(0, w.length() - 1));
            }
            Test g = generation();
            if (g != null) {
                long kv = kvBytesPerToken;
                long perToken = weightBytesPerToken + kv;
                out.printf(Locale.ROOT, "generation %s: %.1f MB read per token (weights %.1f MB + key/value cache "
                        + "%.1f MB on average)", g.name(), perToken / 1e6, weightBytesPerToken / 1e6, kv / 1e6);
                Bandwidth.Result b = bandwidthAtThreads();
                if (b != null) {
                    double achieved = g.mean() * perToken / 1e9;
                    out.printf(Locale.ROOT, "; at %.2f t/s that is %.1f GB/s, %.0f%% of the %d-thread bandwidth "
                                    + "(roofline %.1f t/s)", g.mean(), achieved, 100 * achieved / b.bestGBps(),
                            threads, b.bestGBps() * 1e9 / perToken);
                }
                out.println();
                if (rssBytes >= 0) {
                    // the weights' own size: the file's, with what repacking added (see LlamaModel)
                    long extra = model.repackedExtraBytes();
                    long weights = model.fileBytes() + extra;
                    long expected = weights + kvCacheBytes;
                    out.printf(Locale.ROOT, "resident memory during generation: %s = weights %s (file%s) + key/value "
                                    + "cache %s (%d tokens) %s (Java heap committed: %s)%n", formatBytes(rssBytes),
                            formatBytes(weights), extra == 0 ? ""
                                    : (extra < 0 ? " - " : " + ") + "repacking " + formatBytes(Math.abs(extra)),
                            formatBytes(kvCacheBytes), contextLength, signedBytes(rssBytes - expected),
                            formatBytes(heapBytes));
                }
            }
        }

        /// The concurrency sweep's table: aggregate and per-stream speeds, and the gain over one plain stream.
        void printSweep(PrintStream out) {
            if (sweep.isEmpty()) {
                return;
            }
            Test single = generation();
            out.println();
            out.printf(Locale.ROOT, "concurrency sweep (continuous batching; per sequence %d prompt and %d generated "
                    + "tokens; %d threads):%n", sweep.getFirst().prompt(), sweep.getFirst().generate(), threads);
            boolean interfered = sweep.getFirst().longPrompt() > 0;
            out.println("| sequences | pp t/s, all | tg t/s, all | tg t/s, per stream | tg vs one plain stream "
                    + "| tokens per step | ms per token" + (interfered ? " | with a long prompt | slowdown |" : " |"));
            out.println("| --------: | ----------: | ----------: | -----------------: | ---------------------: "
                    + "| --------------: | -----------:" + (interfered ? " | -----------------: | -------: |" : " |"));
            for (ParallelSweep.Row r : sweep) {
                double pp = r.prompt() == 0 ? Double.NaN : aggregate(r.promptNanos(), r.sequences() * r.prompt());
                double tg = aggregate(r.genNanos(), r.sequences() * r.generate());
                out.printf(Locale.ROOT, "| %9d | %11.2f | %11.2f | %18.2f | %21.2fx | %15.1f | %12.2f |", r.sequences(),
                        pp, tg, r.perStreamTs(), single == null ? Double.NaN : tg / single.mean(), r.meanBatch(),
                        r.tokenGapNanos() / 1e6);
                if (interfered) {
                    out.printf(Locale.ROOT, " %18.2f | %7.2fx |", r.tokenGapWithPromptNanos() / 1e6, r.slowdown());
                }
                out.println();
            }
            if (interfered) {
                ParallelSweep.Row last = sweep.getLast();
                out.printf(Locale.ROOT, "(a long prompt: %d tokens ingested alongside the generations, in %.2f s at "
                                + "%d sequences)%n", last.longPrompt(), last.longPromptNanos() / 1e9,
                        last.sequences());
            }
            if (single != null) {
                out.printf(Locale.ROOT, "(one plain stream: %s %.2f t/s, a session outside any executor)%n",
                        single.name(), single.mean());
            }
        }

        /// Mean over runs of `tokens` per run's seconds.
        static double aggregate(long[] nanos, int tokens) {
            double sum = 0;
            for (long n : nanos) {
                sum += tokens * 1e9 / n;
            }
            return sum / nanos.length;
        }

        /// The speculation test's lines (nothing without one).
        void printSpeculation(PrintStream out) {
            SpeculationResult s = speculation;
            if (s == null) {
                return;
            }
            out.printf(Locale.ROOT, "speculation %s (%s; greedy, after a %d-token prompt): %,d of %,d proposed "
                            + "tokens accepted (%.1f%%), %.2f tokens per verification pass; %.2f -> %.2f t/s, "
                            + "speed-up %.2fx; output %s%n", s.speculative().name(), s.description(),
                    s.plain().depth(), s.accepted(), s.proposed(), 100 * s.acceptanceRate(), s.tokensPerPass(),
                    s.plain().mean(), s.speculative().mean(), s.speedUp(), s.identical()
                            ? "identical to plain generation" : "DIFFERS from plain generation (batch rounding: "
                            + "--draft-exact verifies token at a time)");
        }

        /// `bytes` as a term of a sum: "+ 1.50 MiB" or "- 1.50 MiB".
        private static String signedBytes(long bytes) {
            return (bytes < 0 ? "- " : "+ ") + formatBytes(Math.abs(bytes));
        }

        String json() {
            JsonWriter j = new JsonWriter();
            j.begin();
            j.field("build", "llamaj " + version());
            j.field("java", Runtime.version().toString());
            j.field("cpu_threads", Runtime.getRuntime().availableProcessors());
            j.key("model").begin();
            j.field("filename", path.toString());
            j.field("desc", model.description());
            j.field("type", model.type());
            j.field("file_size", model.fileBytes());
            j.field("size", model.tensorBytes());
            j.field("n_params", model.parameters());
            j.end();
            j.field("n_threads", threads);
            j.field("repetitions", repetitions);
            j.field("warmup", warmup);
            j.key("bandwidth").beginArray();
            for (Bandwidth.Result b : bandwidth) {
                j.begin();
                j.field("threads", b.threads());
                j.field("best_gbps", b.bestGBps());
                j.field("median_gbps", b.medianGBps());
                j.field("bytes", b.bytes());
                j.field("repetitions", b.repetitions());
                j.field("huge_pages", b.hugePages());
                j.end();
            }
            j.endArray();
            j.key("tests").beginArray();
            for (Test t : tests) {
                j.begin();
                j.field("name", t.name());
                j.field("n_prompt", t.promptTokens());
                j.field("n_gen", t.generatedTokens());
                j.field("n_depth", t.depth());
                j.field("warmup_runs", t.warmUpRuns());
                j.key("samples_ns").array(t.samplesNanos());
                j.key("samples_ts").array(t.samplesTokensPerSecond());
                j.field("avg_ts", t.mean());
                j.field("stddev_ts", t.standardDeviation());
                if (t.generatedTokens() > 0 && !t.name().matches(".*@\\d+")) { // not a sweep level's aggregate
                    long kv = kvBytesPerToken;
                    long perToken = weightBytesPerToken + kv;
                    j.field("weight_bytes_per_token", weightBytesPerToken);
                    j.field("kv_bytes_per_token", kv);
                    j.field("bytes_per_token", perToken);
                    Bandwidth.Result b = bandwidthAtThreads();
                    if (b != null) {
                        j.field("roofline_ts", b.bestGBps() * 1e9 / perToken);
                        j.field("roofline_fraction", t.mean() * perToken / 1e9 / b.bestGBps());
                    }
                }
                j.end();
            }
            j.endArray();
            if (!sweep.isEmpty()) {
                Test single = generation();
                j.key("parallel").beginArray();
                for (ParallelSweep.Row r : sweep) {
                    double tg = aggregate(r.genNanos(), r.sequences() * r.generate());
                    j.begin();
                    j.field("sequences", r.sequences());
                    j.field("n_prompt", r.prompt());
                    j.field("n_gen", r.generate());
                    if (r.prompt() > 0) {
                        j.field("pp_ts", aggregate(r.promptNanos(), r.sequences() * r.prompt()));
                    }
                    j.field("tg_ts", tg);
                    j.field("tg_per_stream_ts", r.perStreamTs());
                    if (single != null) {
                        j.field("tg_vs_single_stream", tg / single.mean());
                    }
                    j.field("tokens_per_step", r.meanBatch());
                    j.field("token_gap_ms", r.tokenGapNanos() / 1e6);
                    if (r.longPrompt() > 0) {
                        j.field("long_prompt", r.longPrompt());
                        j.field("long_prompt_s", r.longPromptNanos() / 1e9);
                        j.field("token_gap_with_long_prompt_ms", r.tokenGapWithPromptNanos() / 1e6);
                        j.field("long_prompt_slowdown", r.slowdown());
                    }
                    j.end();
                }
                j.endArray();
            }
            if (speculation != null) {
                SpeculationResult s = speculation;
                j.key("speculation").begin();
                j.field("method", s.description());
                j.field("n_prompt", s.plain().depth());
                j.field("n_gen", s.plain().generatedTokens());
                j.field("proposed", s.proposed());
                j.field("accepted", s.accepted());
                j.field("acceptance_rate", s.acceptanceRate());
                j.field("passes", s.passes());
                j.field("tokens_per_pass", s.tokensPerPass());
                j.key("plain_samples_ns").array(s.plain().samplesNanos());
                j.key("speculative_samples_ns").array(s.speculative().samplesNanos());
                j.field("plain_avg_ts", s.plain().mean());
                j.field("speculative_avg_ts", s.speculative().mean());
                j.field("speedup", s.speedUp());
                j.field("identical_output", s.identical());
                j.end();
            }
            j.key("memory").begin();
            j.field("rss_bytes", rssBytes);
            j.field("file_bytes", model.fileBytes());
            j.field("repacked_extra_bytes", model.repackedExtraBytes());
            j.field("repack_ns", model.repackNanos());
            j.field("kv_cache_bytes", kvCacheBytes);
            j.field("heap_committed_bytes", heapBytes);
            j.field("context_length", contextLength);
            j.end();
            j.end();
            return j.toString();
        }
    }

    static String version() {
        String v = BenchCommand.class.getPackage().getImplementationVersion();
        return v != null ? v : "(development build)";
    }

    /// A minimal JSON writer: objects, arrays, strings, numbers and booleans, commas placed automatically.
    static final class JsonWriter {
        private final StringBuilder sb = new StringBuilder();
        private boolean needComma;

        JsonWriter begin() {
            comma();
            sb.append('{');
            needComma = false;
            return this;
        }

        JsonWriter end() {
            sb.append('}');
            needComma = true;
            return this;
        }

        JsonWriter beginArray() {
            comma();
            sb.append('[');
            needComma = false;
            return this;
        }

        JsonWriter endArray() {
            sb.append(']');
            needComma = true;
            return this;
        }

        JsonWriter key(String key) {
            comma();
            string(key);
            sb.append(':');
            needComma = false;
            return this;
        }

        void field(String key, String value) {
            key(key);
            string(value);
            needComma = true;
        }

        void field(String key, long value) {
            key(key);
            sb.append(value);
            needComma = true;
        }

        void field(String key, double value) {
            key(key);
            number(value);
            needComma = true;
        }

        void field(String key, boolean value) {
            key(key);
            sb.append(value);
            needComma = true;
        }

        void array(long[] values) {
            sb.append('[');
            for (int i = 0; i < values.length; i++) {
                sb.append(i > 0 ? "," : "").append(values[i]);
            }
            sb.append(']');
            needComma = true;
        }

        void array(double[] values) {
            sb.append('[');
            for (int i = 0; i < values.length; i++) {
                sb.append(i > 0 ? "," : "");
                number(values[i]);
            }
            sb.append(']');
            needComma = true;
        }

        private void number(double v) {
            sb.append(Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null");
        }

        private void comma() {
            if (needComma) {
                sb.append(',');
            }
        }

        private void string(String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                    }
                }
            }
            sb.append('"');
        }

        @Override
        public String toString() {
            return sb.toString();
        }
    }
}
