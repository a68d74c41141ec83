package dev.llamaj.cli;

import dev.llamaj.engine.Completion;
import dev.llamaj.engine.BatchExecutor;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.PrefixCache;
import dev.llamaj.engine.Session;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import dev.llamaj.cli.server.Fallback;
import dev.llamaj.cli.server.Routing;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/// `llama batch`: generates for every line of a JSONL file and appends one JSON result per line to the output
/// as soon as it is done, so a crash or Ctrl-C loses at most the lines in flight; run again, it skips the ids
/// already in the output.
///
/// The input is read twice: once up front to validate every line (a malformed line is reported with its number
/// and skipped, or stops the run with `--strict`, before any generation) and count the work, then streamed to
/// the workers. With `--parallel N`, N sessions share the one loaded model, each on its own thread, and their
/// forward passes run together in one [BatchExecutor] (continuous batching: each step reads the weights once for
/// all N sequences) on all `--threads` threads; `--no-batching` gives each session `--threads / N` threads of its
/// own instead. Results are appended in the order they finish.
@Command(name = "batch", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generates for every line of a JSONL file, appending one JSON result per line as soon as it "
                + "is done; a rerun skips the ids already in the output.")
final class BatchCommand implements Callable<Integer> {
    /// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
    static final int INTERRUPTED = 130;

    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = {"-i", "--input"}, paramLabel = "FILE", required = true,
            description = "requests, one JSON object per line: id, prompt or messages, optional settings")
    Path input;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", required = true,
            description = "results are appended here, one JSON object per line")
    Path output;

    @Option(names = "--parallel", paramLabel = "N",
            description = "sessions generating at once, their steps batched together (default: ${DEFAULT-VALUE})")
    int parallel = 1;

    @Option(names = "--no-batching",
            description = "with --parallel: run each session on its own share of the threads instead of batching "
                    + "their steps together")
    boolean noBatching;

    /// Whether the sessions' forward passes run together in one executor.
    private boolean batching() {
        return parallel > 1 && !noBatching;
    }

    @Option(names = "--cache-budget", paramLabel = "SIZE",
            description = "memory for prompt prefixes shared between lines (a long instruction common to every line is"
                    + " computed once): bytes, or K, M, G; 0 turns it off (default: " + CacheBudget.DEFAULT
                    + ", less on a small heap)")
    String cacheBudget;

    @Option(names = "--strict", description = "stop at the first malformed or failing line instead of skipping it")
    boolean strict;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N",
            description = "tokens to generate per line unless it sets max_tokens; -1 until the context is full "
                    + "(default: ${DEFAULT-VALUE})")
    int maxTokens = 256;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "context length of each session (default: the model's, at most 4096)")
    Integer context;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Mixin
    ConstraintOptions constraint = new ConstraintOptions();

    /// The grammar every line's output is held to, or null.
    private dev.llamaj.engine.grammar.Grammar grammar;

    @Option(names = {"-s", "--seed"}, paramLabel = "N",
            description = "seed of every line that sets none (default: a random seed per line, written in its result)")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "stop when the text contains TEXT (repeatable; "
            + "a line's own stop replaces these)")
    List<String> stops = new ArrayList<>();

    @Option(names = "--chat-template", paramLabel = "FILE|NAME",
            description = "chat template for lines with messages: a Jinja file or chatml, llama3, plain "
                    + "(default: the model's)")
    String chatTemplate;

    @Option(names = "--progress", paramLabel = "MODE", converter = Progress.ModeConverter.class,
            description = "progress on stderr: auto (a bar on a terminal, else a line every 10 s), bar, lines or off")
    Progress.Mode progressMode = Progress.Mode.AUTO;

    @Option(names = "--format", paramLabel = "FORMAT",
            description = "input format: llamaj (id, prompt or messages), openai (OpenAI Batch: custom_id, method,"
                    + " url, body), or auto, from the first line (default: ${DEFAULT-VALUE}); results follow it")
    String format = "auto";

    @Option(names = "--fallback-output", paramLabel = "FILE",
            description = "lines the --fallback-on rules reject are appended here as OpenAI Batch requests, for an"
                    + " external API, instead of to --output")
    Path fallbackOutput;

    @Option(names = "--fallback-on", paramLabel = "RULES",
            description = "with --fallback-output, comma-separated: too-long, low-confidence, schema-failure"
                    + " (default: too-long)")
    String fallbackOn;

    @Option(names = "--min-mean-logprob", paramLabel = "X",
            description = "low-confidence: a result whose mean token log-probability is below X")
    Double minMeanLogprob;

    @Option(names = "--min-token-logprob", paramLabel = "X",
            description = "low-confidence: a result with a token whose log-probability is below X")
    Double minTokenLogprob;

    @Option(names = "--fallback-model", paramLabel = "NAME",
            description = "the \"model\" of the requests in --fallback-output (default: the line's own, if any)")
    String fallbackModel;

    @Option(names = "--progress-interval", paramLabel = "SECONDS", hidden = true,
            description = "seconds between progress lines (default: ${DEFAULT-VALUE})")
    double progressInterval = 10;

    /// The model's name in OpenAI Batch results: its file name without `.gguf`, as `serve` names it.
    private String modelName;

    private static String defaultName(Path model) {
        String file = model.getFileName().toString();
        return file.toLowerCase(Locale.ROOT).endsWith(".gguf") ? file.substring(0, file.length() - 5) : file;
    }

    private static String randomId() {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
        StringBuilder sb = new StringBuilder(24);
        for (int i = 0; i < 24; i++) {
            sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return sb.toString();
    }

    /// What the validation pass found.
    private record Plan(BitSet todo, int todoCount, int alreadyDone, int skipped, int valid, boolean messages) {}

    @Override
    public Integer call() throws IOException, InterruptedException {
        PrintStream err = parent.err;
        modelOptions.model(); // a missing --model is a usage error, before any work
        if (parallel < 1) {
            throw new IllegalArgumentException("--parallel must be 1 or more, got " + parallel);
        }
        if (maxTokens < -1) {
            throw new IllegalArgumentException("--max-tokens must be -1 or more, got " + maxTokens);
        }
        ModelOptions.checkThreads(modelOptions.threads);
        if (cacheBudget != null) {
            CacheBudget.parse("--cache-budget", cacheBudget); // before loading the model
        }
        if (Files.isDirectory(output)) {
            throw new IOException(output + ": is a directory");
        }
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("--stop must not be empty");
            }
        }
        Sampler.Settings defaults = sampling.settings(0);
        grammar = constraint.grammar();
        if (Files.exists(input) && Files.exists(output) && Files.isSameFile(input, output)) {
            throw new IllegalArgumentException("--input and --output are the same file");
        }

        rules = routingRules();
        Set<String> done = readDoneIds(output, err);
        if (fallbackOutput != null) {
            done.addAll(readDoneIds(fallbackOutput, err));
        }
        Plan plan = validate(done, err);
        if (plan.todoCount() == 0) {
            err.printf(Locale.ROOT, "llama: nothing to do: %d of %d valid lines are already in %s%n",
                    plan.alreadyDone(), plan.valid(), output);
            return plan.skipped() > 0 ? skippedFailure(plan.skipped(), 0) : 0;
        }
        if (plan.alreadyDone() > 0) {
            err.printf(Locale.ROOT, "llama: resuming: %d lines already in %s, %d to do%n", plan.alreadyDone(), output,
                    plan.todoCount());
        }

        int threadsPerSession = batching() ? modelOptions.threads : Math.max(1, modelOptions.threads / parallel);
        try (LlamaModel model = modelOptions.load(threadsPerSession)) {
            sampling.checkVocabulary(model.config().vocabSize());
            int contextLength = context != null ? context : model.defaultContextLength();
            if (contextLength < 1) {
                throw new IllegalArgumentException("--context must be 1 or more, got " + contextLength);
            }
            if (modelOptions.verbose) {
                err.printf("llama: %s, %d session(s) %s %d threads%n", model.config(), parallel,
                        batching() ? "batched together on" : "of", threadsPerSession);
            }
            PrefixCache prefixCache = CacheBudget.create(model, "--cache-budget", cacheBudget);
            PromptLine.ChatTemplates chat = new PromptLine.ChatTemplates(model, chatTemplate);
            if (plan.messages()) {
                chat.format(); // no template, or a broken one, is the same for every line: say so before starting
            }
            Run run;
            try (FileChannel out = FileChannel.open(output, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND);
                 FileChannel escalated = fallbackOutput == null ? null : FileChannel.open(fallbackOutput,
                         StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
                 Source source = new Source(plan.todo())) {
                fallbackChannel = escalated;
                modelName = defaultName(modelOptions.model());
                Progress progress = new Progress(err, "batch", "lines", plan.todoCount(), progressMode,
                        (long) (progressInterval * 1e9), System::nanoTime);
                run = new Run(model, contextLength, chat, defaults, out, source, progress, err, prefixCache);
                long start = System.nanoTime();
                try (Interrupts _ = Interrupts.onCtrlC(run::interrupt)) {
                    run.start();
                    progress.show();
                    run.await();
                }
                progress.finish();
                double seconds = (System.nanoTime() - start) / 1e9;
                err.printf(Locale.ROOT, "llama: %d lines written to %s in %.1f s, %d tokens generated (%.1f tokens/s)%n",
                        run.written.get(), output, seconds, run.generated.get(), run.generated.get() / seconds);
                err.println("llama: " + run.promptSummary());
                if (fallbackOutput != null) {
                    err.printf(Locale.ROOT, "llama: %d lines for the fallback API written to %s%s%n",
                            run.escalated.values().stream().mapToInt(AtomicInteger::get).sum(), fallbackOutput,
                            run.escalatedSummary());
                }
            }
            Throwable f = run.failure.get();
            if (f instanceof IOException io) {
                throw io;
            } else if (f instanceof RuntimeException re) {
                throw re;
            } else if (f != null) {
                throw new IllegalStateException(f);
            }
            if (run.interrupted.get()) {
                err.println("llama: interrupted; run the same command again to resume");
                return INTERRUPTED;
            }
            if (plan.skipped() + run.failed.get() > 0) {
                return skippedFailure(plan.skipped(), run.failed.get());
            }
        }
        return 0;
    }

    private int skippedFailure(int malformed, int failed) {
        List<String> parts = new ArrayList<>();
        if (malformed > 0) {
            parts.add(malformed + (malformed == 1 ? " malformed input line was skipped" : " malformed input lines were skipped"));
        }
        if (failed > 0) {
            parts.add(failed + (failed == 1 ? " line failed" : " lines failed"));
        }
        throw new IllegalStateException(String.join(" and ", parts) + " (see the messages above)");
    }

    /// The ids already in the output. A last line cut short by a crash is removed; any other line that is not a
    /// result is an error, since then the file is probably not this command's output.
    private Set<String> readDoneIds(Path output, PrintStream err) throws IOException {
        Set<String> ids = new HashSet<>();
        if (!Files.exists(output) || CliFiles.isSpecial(output)) {
            return ids; // nothing to resume from a device or pipe (/dev/stdout)
        }
        long size = Files.size(output);
        boolean endsWithNewline = true;
        if (size > 0) {
            try (FileChannel ch = FileChannel.open(output, StandardOpenOption.READ)) {
                ByteBuffer last = ByteBuffer.allocate(1);
                ch.read(last, size - 1);
                endsWithNewline = last.get(0) == '\n';
            }
        }
        long validBytes = 0;
        try (JsonLines lines = new JsonLines(output)) {
            for (JsonLines.Line line; (line = lines.next()) != null; ) {
                String problem = line.error();
                Object id = null;
                if (problem == null && !line.isBlank()) {
                    try {
                        Map<String, Object> result = Json.parseObject(line.text());
                        // an OpenAI Batch line (a result, or a request in --fallback-output) has a custom_id
                        id = result.containsKey("custom_id") ? result.get("custom_id") : result.get("id");
                        if (!(id instanceof String) && !(id instanceof Long)) {
                            problem = "it has no string or integer \"id\" or \"custom_id\"";
                        }
                    } catch (Json.JsonException e) {
                        problem = "not valid JSON: " + e.getMessage();
                    }
                }
                boolean lastLine = validBytes + line.bytes() + 1 > size;
                if (problem != null) {
                    if (lastLine && !endsWithNewline) {
                        err.println("llama: " + output + ": removing its incomplete last line (line " + line.number()
                                + ", cut short by an interrupted run)");
                        try (FileChannel ch = FileChannel.open(output, StandardOpenOption.WRITE)) {
                            ch.truncate(validBytes);
                        }
                        return ids;
                    }
                    throw new IllegalArgumentException(output + " line " + line.number() + " is not a result line ("
                            + problem + "); --output and --fallback-output must be files this command wrote, to"
                            + " resume");
                }
                if (id != null) {
                    ids.add(Json.write(id));
                    if (id instanceof String s && s.matches("-?[0-9]{1,18}")) {
                        ids.add(s); // an integer id, written as a string custom_id in --fallback-output
                    }
                }
                validBytes += line.bytes() + 1;
            }
        }
        if (!endsWithNewline) {
            // a complete last result without its newline: add it, so the next result starts on a line of its own
            Files.writeString(output, "\n", StandardOpenOption.APPEND);
        }
        return ids;
    }

    /// Checks every input line; reports malformed ones (or throws with `--strict`).
    private Plan validate(Set<String> done, PrintStream err) throws IOException {
        BitSet todo = new BitSet();
        int todoCount = 0;
        int alreadyDone = 0;
        int skipped = 0;
        int valid = 0;
        boolean messages = false;
        Map<String, Integer> seen = new HashMap<>();
        try (JsonLines lines = new JsonLines(input)) {
            for (JsonLines.Line line; (line = lines.next()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                try {
                    if (line.error() != null) {
                        throw new PromptLine.Malformed(line.error());
                    }
                    if (openAi == null) {
                        openAi = detectOpenAi(line.text());
                    }
                    PromptLine request = parseLine(line.text());
                    Integer first = seen.putIfAbsent(request.idKey(), line.number());
                    if (first != null) {
                        throw new PromptLine.Malformed("duplicate id " + request.idKey() + " (first on line " + first
                                + ")");
                    }
                    valid++;
                    if (done.contains(request.idKey())) {
                        alreadyDone++;
                    } else {
                        todo.set(line.number());
                        todoCount++;
                        messages |= request.messages() != null;
                    }
                } catch (PromptLine.Malformed e) {
                    String message = input + " line " + line.number() + ": " + ErrorHandler.describe(e);
                    if (strict) {
                        throw new IllegalArgumentException(message);
                    }
                    err.println("llama: " + message + " (skipped)");
                    skipped++;
                }
            }
        }
        if (valid == 0 && skipped == 0) {
            throw new IllegalArgumentException(input + ": no requests (one JSON object per line)");
        }
        return new Plan(todo, todoCount, alreadyDone, skipped, valid, messages);
    }

    /// Whether the input is in the OpenAI Batch format: as `--format` says, or (auto) whether its first line has a
    /// `custom_id`.
    private boolean detectOpenAi(String firstLine) {
        return switch (format) {
            case "openai" -> true;
            case "llamaj" -> false;
            default -> {
                try {
                    yield Json.parseObject(firstLine).containsKey("custom_id");
                } catch (Json.JsonException e) {
                    yield false; // reported as malformed by the parse that follows
                }
            }
        };
    }

    private PromptLine parseLine(String text) {
        return Boolean.TRUE.equals(openAi) ? PromptLine.parseOpenAi(text) : PromptLine.parse(text);
    }

    /// The input's format, once its first line is read: true for OpenAI Batch.
    private Boolean openAi;

    /// What sends a line to `--fallback-output`; empty without it.
    private Set<Fallback.Rule> rules = Set.of();
    private FileChannel fallbackChannel;

    /// The `--fallback-*` options, checked.
    private Set<Fallback.Rule> routingRules() throws IOException {
        if (!format.equals("auto") && !format.equals("llamaj") && !format.equals("openai")) {
            throw new IllegalArgumentException("--format must be auto, llamaj or openai, got '" + format + "'");
        }
        if (fallbackOutput == null) {
            if (fallbackOn != null || minMeanLogprob != null || minTokenLogprob != null || fallbackModel != null) {
                throw new IllegalArgumentException("--fallback-on, --min-mean-logprob, --min-token-logprob and"
                        + " --fallback-model need --fallback-output");
            }
            return Set.of();
        }
        Set<Fallback.Rule> parsed = Fallback.Rule.parse(fallbackOn != null ? fallbackOn : "too-long");
        if (parsed.contains(Fallback.Rule.QUEUE_FULL)) {
            throw new IllegalArgumentException("--fallback-on queue-full is for serve: batch has no queue (use"
                    + " too-long, low-confidence, schema-failure)");
        }
        boolean thresholds = minMeanLogprob != null || minTokenLogprob != null;
        if (parsed.contains(Fallback.Rule.LOW_CONFIDENCE) != thresholds) {
            throw new IllegalArgumentException(thresholds ? "--min-mean-logprob and --min-token-logprob need"
                    + " --fallback-on low-confidence" : "--fallback-on low-confidence needs --min-mean-logprob or"
                    + " --min-token-logprob");
        }
        for (Double x : new Double[] {minMeanLogprob, minTokenLogprob}) {
            if (x != null && !(x <= 0)) {
                throw new IllegalArgumentException("--min-mean-logprob and --min-token-logprob must be 0 or below"
                        + " (log-probabilities are), got " + x);
            }
        }
        if (Files.isDirectory(fallbackOutput)) {
            throw new IOException(fallbackOutput + ": is a directory");
        }
        for (Path other : new Path[] {input, output}) {
            if (Files.exists(fallbackOutput) && Files.exists(other) && Files.isSameFile(fallbackOutput, other)) {
                throw new IllegalArgumentException("--fallback-output must be another file than --input and"
                        + " --output");
            }
        }
        return parsed;
    }

    /// Streams the lines to do to the workers, in file order.
    private final class Source implements AutoCloseable {
        private final BitSet todo;
        private final JsonLines lines;

        Source(BitSet todo) throws IOException {
            this.todo = todo;
            this.lines = new JsonLines(input);
        }

        /// The next line to generate for, or null when there are no more.
        synchronized Request next() throws IOException {
            for (JsonLines.Line line; (line = lines.next()) != null; ) {
                if (!todo.get(line.number())) {
                    continue;
                }
                try {
                    return new Request(line.number(), parseLine(line.text()));
                } catch (PromptLine.Malformed e) {
                    throw new IOException(input + " line " + line.number() + " changed while the batch ran: "
                            + e.getMessage());
                }
            }
            return null;
        }

        @Override
        public void close() throws IOException {
            lines.close();
        }
    }

    private record Request(int line, PromptLine prompt) {}

    /// The workers of one run and what they share.
    private final class Run {
        final LlamaModel model;
        final int contextLength;
        final PromptLine.ChatTemplates chat;
        final Sampler.Settings defaults;
        final FileChannel out;
        final Source source;
        final Progress progress;
        final PrintStream err;
        final List<Thread> threads = new ArrayList<>();
        final List<Session> sessions = new ArrayList<>();
        final AtomicBoolean stopping = new AtomicBoolean();
        final AtomicBoolean interrupted = new AtomicBoolean();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final AtomicInteger written = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        final AtomicLong generated = new AtomicLong();
        /// Prompt tokens of the lines generated, and those of them copied from the prefix cache.
        final AtomicLong promptTokens = new AtomicLong();
        final AtomicLong restoredTokens = new AtomicLong();
        /// Shared by every session (null: off).
        final PrefixCache prefixCache;
        final SplittableRandom seeds = new SplittableRandom();
        /// Lines written to --fallback-output, by rule.
        final Map<Fallback.Rule, AtomicInteger> escalated = new java.util.EnumMap<>(Fallback.Rule.class);

        {
            for (Fallback.Rule r : Fallback.Rule.values()) {
                escalated.put(r, new AtomicInteger());
            }
        }

        String escalatedSummary() {
            List<String> parts = new ArrayList<>();
            escalated.forEach((r, n) -> {
                if (n.get() > 0) {
                    parts.add(r.label + " " + n.get());
                }
            });
            return parts.isEmpty() ? "" : " (" + String.join(", ", parts) + ")";
        }

        /// The executor of the sessions' batched steps, with `--parallel` (null: each session computes alone).
        private BatchExecutor executor;

        Run(LlamaModel model, int contextLength, PromptLine.ChatTemplates chat, Sampler.Settings defaults,
            FileChannel out, Source source, Progress progress, PrintStream err, PrefixCache prefixCache) {
            this.model = model;
            this.prefixCache = prefixCache;
            this.contextLength = contextLength;
            this.chat = chat;
            this.defaults = defaults;
            this.out = out;
            this.source = source;
            this.progress = progress;
            this.err = err;
        }

        void start() {
            if (batching()) {
                executor = model.newBatchExecutor();
            }
            for (int i = 0; i < parallel; i++) {
                Session session = executor != null ? executor.newSession(contextLength)
                        : model.newSession(contextLength);
                sessions.add(session);
                if (prefixCache != null) {
                    session.usePrefixCache(prefixCache);
                }
                Thread t = Thread.ofPlatform().name("llama-batch-" + i).unstarted(() -> work(session));
                threads.add(t);
            }
            threads.forEach(Thread::start);
        }

        /// `prompt tokens: 80400 submitted, 1200 computed, 79200 (98.5%) copied from the prefix cache in 35.2 ms
        /// (12.0 MiB of 256.0 MiB held, 0 blocks evicted)`.
        String promptSummary() {
            long submitted = promptTokens.get();
            long restored = restoredTokens.get();
            String s = String.format(Locale.ROOT, "prompt tokens: %d submitted, %d computed", submitted,
                    submitted - restored);
            if (prefixCache == null) {
                return s + " (no prefix cache)";
            }
            PrefixCache.Stats st = prefixCache.stats();
            return s + String.format(Locale.ROOT, ", %d (%.1f%%) copied from the prefix cache in %.1f ms (%s of %s "
                    + "held, %d blocks evicted)", restored, submitted == 0 ? 0.0 : 100.0 * restored / submitted,
                    st.copyNanos() / 1e6, CacheBudget.mib(st.bytes()), CacheBudget.mib(prefixCache.budget()),
                    st.evictedBlocks());
        }

        void await() throws InterruptedException {
            try {
                for (Thread t : threads) {
                    t.join();
                }
            } finally {
                for (Session s : sessions) {
                    s.close();
                }
                if (executor != null) {
                    executor.close();
                }
            }
        }

        /// Ctrl-C: the first stops the run (lines in flight are cancelled and not written); a second one ends
        /// the process at once.
        boolean interrupt() {
            if (interrupted.getAndSet(true)) {
                return false;
            }
            stop();
            return true;
        }

        private void stop() {
            stopping.set(true);
            synchronized (sessions) {
                for (Session s : sessions) {
                    s.cancel();
                }
            }
        }

        private void work(Session session) {
            try {
                while (!stopping.get()) {
                    Request r = source.next();
                    if (r == null) {
                        return;
                    }
                    generate(session, r);
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t instanceof UncheckedIOException u ? u.getCause() : t);
                stop();
            }
        }

        private void generate(Session session, Request r) throws IOException {
            PromptLine p = r.prompt();
            long lineSeed = p.hasSeed() ? 0 : seed != null ? seed : nextSeed();
            Sampler.Settings settings;
            Completion c;
            try {
                settings = p.settings(defaults.withSeed(lineSeed));
                session.reset();
                int[] tokens = p.tokens(session, chat);
                int limit = p.maxTokens(maxTokens < 0 ? Integer.MAX_VALUE : maxTokens);
                List<String> lineStops = p.fields().get("stop") != null ? p.stops() : stops;
                Sampler sampler = Sampler.create(settings, ConstraintOptions.constraint(grammar, model.tokenizer()));
                c = session.generate(tokens, limit, sampler, lineStops, _ -> {});
                promptTokens.addAndGet(c.promptTokens());
                restoredTokens.addAndGet(session.restoredTokens());
            } catch (IllegalArgumentException e) {
                if (e instanceof dev.llamaj.engine.ContextLengthException && rules.contains(Fallback.Rule.TOO_LONG)) {
                    escalate(p, Fallback.Rule.TOO_LONG);
                    return;
                }
                String message = input + " line " + r.line() + " (id " + p.idKey() + "): " + ErrorHandler.describe(e);
                if (strict) {
                    throw new IllegalArgumentException(message);
                }
                failed.incrementAndGet();
                progress.println(err, "llama: " + message + " (skipped)");
                progress.advance(1, 0);
                return;
            }
            if (c.stopReason() == Completion.StopReason.CANCELLED) {
                return; // in flight when the run stopped: not written, a rerun does it again
            }
            if (rules.contains(Fallback.Rule.SCHEMA_FAILURE) && Routing.asksForJson(p.fields())
                    && !Routing.isJson(c.text())) {
                generated.addAndGet(c.generatedTokens());
                escalate(p, Fallback.Rule.SCHEMA_FAILURE);
                return;
            }
            if (rules.contains(Fallback.Rule.LOW_CONFIDENCE) && Routing.lowConfidence(c,
                    minMeanLogprob != null ? minMeanLogprob : Double.NEGATIVE_INFINITY,
                    minTokenLogprob != null ? minTokenLogprob : Double.NEGATIVE_INFINITY)) {
                generated.addAndGet(c.generatedTokens());
                escalate(p, Fallback.Rule.LOW_CONFIDENCE);
                return;
            }
            if (p.openAi()) {
                write(Json.write(openAiResult(p, c, session.restoredTokens())) + "\n");
                written.incrementAndGet();
                generated.addAndGet(c.generatedTokens());
                progress.advance(1, c.generatedTokens());
                return;
            }
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("id", p.id());
            result.put("text", c.text());
            result.put("stop_reason", c.stopReason().name().toLowerCase(Locale.ROOT));
            result.put("prompt_tokens", c.promptTokens());
            result.put("generated_tokens", c.generatedTokens());
            if (settings.temperature() > 0) {
                result.put("seed", settings.seed());
            }
            write(Json.write(result) + "\n");
            written.incrementAndGet();
            generated.addAndGet(c.generatedTokens());
            progress.advance(1, c.generatedTokens());
        }

        /// Appends the line to --fallback-output as an OpenAI Batch request, instead of a result to --output.
        private void escalate(PromptLine p, Fallback.Rule rule) throws IOException {
            Map<String, Object> request = new LinkedHashMap<>();
            Map<String, Object> body = new LinkedHashMap<>();
            if (fallbackModel != null) {
                body.put("model", fallbackModel);
            }
            if (p.openAi()) {
                body.putAll(p.fields()); // the request as it came, bar the model name
                if (fallbackModel != null) {
                    body.put("model", fallbackModel);
                }
                request.put("custom_id", p.id());
                request.put("method", "POST");
                request.put("url", p.url());
            } else {
                // the line's settings that the OpenAI API has (top_k, min_p, repeat_penalty are not among them)
                if (p.prompt() != null) {
                    body.put("prompt", p.prompt());
                } else {
                    List<Map<String, Object>> messages = new ArrayList<>();
                    for (var m : p.messages()) {
                        messages.add(Map.of("role", m.role(), "content", m.content()));
                    }
                    body.put("messages", messages);
                }
                for (String key : List.of("max_tokens", "temperature", "top_p", "stop", "seed", "response_format")) {
                    if (p.fields().get(key) != null) {
                        body.put(key, p.fields().get(key));
                    }
                }
                request.put("custom_id", p.id() instanceof String s ? s : String.valueOf(p.id()));
                request.put("method", "POST");
                request.put("url", p.prompt() != null ? PromptLine.COMPLETIONS_URL : PromptLine.CHAT_URL);
            }
            request.put("body", body);
            ByteBuffer bytes = ByteBuffer.wrap((Json.write(request) + "\n").getBytes(StandardCharsets.UTF_8));
            synchronized (fallbackChannel) {
                try {
                    while (bytes.hasRemaining()) {
                        fallbackChannel.write(bytes);
                    }
                } catch (IOException e) {
                    throw CliFiles.writeError(fallbackOutput, e);
                }
            }
            escalated.get(rule).incrementAndGet();
            progress.advance(1, 0);
        }

        /// A result line of the OpenAI Batch output format, the body shaped as the API's own answer.
        private Map<String, Object> openAiResult(PromptLine p, Completion c, int cachedTokens) {
            boolean chat = p.url().equals(PromptLine.CHAT_URL);
            String finish = switch (c.stopReason()) {
                case END_OF_GENERATION, STOP_STRING -> "stop";
                default -> "length";
            };
            Map<String, Object> choice = new LinkedHashMap<>();
            choice.put("index", 0);
            if (chat) {
                choice.put("message", Map.of("role", "assistant", "content", c.text()));
            } else {
                choice.put("text", c.text());
            }
            choice.put("logprobs", null);
            choice.put("finish_reason", finish);
            Map<String, Object> usage = new LinkedHashMap<>();
            usage.put("prompt_tokens", c.promptTokens());
            usage.put("completion_tokens", c.generatedTokens());
            usage.put("total_tokens", c.promptTokens() + c.generatedTokens());
            usage.put("prompt_tokens_details", Map.of("cached_tokens", cachedTokens));
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("id", (chat ? "chatcmpl-" : "cmpl-") + randomId());
            body.put("object", chat ? "chat.completion" : "text_completion");
            body.put("created", System.currentTimeMillis() / 1000);
            body.put("model", modelName);
            body.put("choices", List.of(choice));
            body.put("usage", usage);
            Map<String, Object> response = new LinkedHashMap<>();
            response.put("status_code", 200);
            response.put("request_id", "req_" + randomId());
            response.put("body", body);
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("id", "batch_req_" + randomId());
            line.put("custom_id", p.id());
            line.put("response", response);
            line.put("error", null);
            return line;
        }

        private long nextSeed() {
            synchronized (seeds) {
                return seeds.nextLong() & Long.MAX_VALUE;
            }
        }

        /// Appends one whole line; the channel writes straight to the file, so it survives the process ending.
        private void write(String line) throws IOException {
            ByteBuffer bytes = ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8));
            synchronized (out) {
                try {
                    while (bytes.hasRemaining()) {
                        out.write(bytes);
                    }
                } catch (IOException e) {
                    throw CliFiles.writeError(output, e);
                }
            }
        }
    }
}
