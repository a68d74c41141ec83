package dev.llamaj.cli;

import dev.llamaj.cli.server.Fallback;
import dev.llamaj.cli.server.OpenAiServer;
import dev.llamaj.cli.server.Operations;
import dev.llamaj.cli.server.ServerConfig;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Pooling;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/// `llama serve --model x.gguf`: an OpenAI-compatible HTTP server (see [OpenAiServer]).
///
/// Runs until SIGTERM or Ctrl-C: then it stops accepting connections, lets in-flight requests finish for up to
/// `--shutdown-timeout` seconds, aborts the rest, and exits 0. A second signal aborts in-flight requests at once.
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
        description = "Serves the model over HTTP with the OpenAI API: /v1/chat/completions, /v1/completions,"
                + " /v1/embeddings, /v1/models, /health.")
final class ServeCommand implements Callable<Integer> {
    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    SpeculationOptions speculation = new SpeculationOptions();

    @Option(names = "--host", paramLabel = "ADDRESS",
            description = "address to listen on (default: ${DEFAULT-VALUE}, this machine only)")
    String host = "127.0.0.1";

    @Option(names = "--port", paramLabel = "N", description = "TCP port; 0 picks a free one (default: ${DEFAULT-VALUE})")
    int port = 8080;

    @Option(names = {"-np", "--parallel"}, paramLabel = "N",
            description = "requests generated at the same time, each in its own slot, their steps batched together "
                    + "(default: ${DEFAULT-VALUE})")
    int parallel = 1;

    @Option(names = "--no-batching",
            description = "with --parallel: run each slot on its own share of the threads instead of batching the "
                    + "slots' steps together")
    boolean noBatching;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "context length of each slot in tokens (default: the model's, at most 4096)")
    Integer context;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "require 'Authorization: Bearer KEY' (default: no key)")
    String apiKey;

    @Option(names = "--api-key-file", paramLabel = "FILE",
            description = "read the key from FILE (keeps it out of the process list)")
    Path apiKeyFile;

    @Option(names = "--chat-template", paramLabel = "FILE|NAME",
            description = "Jinja chat template file, or a built-in one: chatml, llama3, plain (default: the model's)")
    String chatTemplate;

    @Option(names = "--alias", paramLabel = "NAME",
            description = "the model's name in the API (default: the file name without .gguf)")
    String alias;

    @Option(names = "--queue", paramLabel = "N",
            description = "requests that may wait for a slot; more get 503 (default: ${DEFAULT-VALUE})")
    int queue = 16;

    @Option(names = "--queue-timeout", paramLabel = "SECONDS",
            description = "longest wait for a slot before 503 (default: ${DEFAULT-VALUE})")
    long queueTimeout = 60;

    @Option(names = "--max-body", paramLabel = "BYTES",
            description = "largest request body; larger gets 413 (default: ${DEFAULT-VALUE})")
    long maxBody = 2L << 20;

    @Option(names = "--request-memory", paramLabel = "BYTES",
            description = "heap the bodies of requests being read may take together, each counting about 9 times"
                    + " its size; beyond, 503 (default: a quarter of the heap)")
    long requestMemory;

    @Option(names = "--max-connections", paramLabel = "N",
            description = "open connections at most (default: ${DEFAULT-VALUE})")
    int maxConnections = 128;

    @Option(names = "--header-timeout", paramLabel = "SECONDS",
            description = "time a client has to send a whole request, headers and body (default: ${DEFAULT-VALUE})")
    long headerTimeout = 20;

    @Option(names = "--idle-timeout", paramLabel = "SECONDS",
            description = "idle keep-alive connections are closed after this (default: ${DEFAULT-VALUE})")
    long idleTimeout = 30;

    @Option(names = "--response-timeout", paramLabel = "SECONDS",
            description = "longest time one response may take, 0 for no limit (default: ${DEFAULT-VALUE})")
    long responseTimeout = 600;

    @Option(names = "--shutdown-timeout", paramLabel = "SECONDS",
            description = "on SIGTERM/Ctrl-C, how long in-flight requests may finish (default: ${DEFAULT-VALUE})")
    long shutdownTimeout = 10;

    @Option(names = "--no-prefix-cache", description = "recompute every prompt from the start")
    boolean noPrefixCache;

    @Option(names = "--cache-budget", paramLabel = "SIZE",
            description = "memory for prompt prefixes shared between the slots (a system prompt computed in one is"
                    + " copied by the others): bytes, or K, M, G; 0 turns it off (default: " + CacheBudget.DEFAULT
                    + ", less on a small heap)")
    String cacheBudget;

    @Option(names = "--cors-origin", paramLabel = "ORIGIN",
            description = "let web pages from ORIGIN (scheme://host[:port]) call the server; repeatable, * for any"
                    + " (default: none)")
    java.util.List<String> corsOrigins = new java.util.ArrayList<>();

    @Option(names = "--access-log", paramLabel = "FILE|-",
            description = "one JSON line per request, appended to FILE, or to stderr with '-' (default: a plain line"
                    + " on stderr)")
    String accessLog;

    @Option(names = "--log-content", description = "put prompts and generated text in the access log (off: they"
            + " are often confidential)")
    boolean logContent;

    @Option(names = "--no-warmup", description = "report /ready at once instead of after a short warm-up generation")
    boolean noWarmup;

    @Option(names = "--fallback-url", paramLabel = "URL",
            description = "an OpenAI-compatible API (base URL, e.g. https://api.example.com/v1) that requests are"
                    + " escalated to by the --fallback-on rules (default: none)")
    String fallbackUrl;

    @Option(names = "--fallback-key-file", paramLabel = "FILE",
            description = "the fallback API's key, sent as a bearer token")
    Path fallbackKeyFile;

    @Option(names = "--fallback-on", paramLabel = "RULES",
            description = "when to escalate, comma-separated: queue-full, too-long, low-confidence, schema-failure"
                    + " (default: ${DEFAULT-VALUE})")
    String fallbackOn = "queue-full,too-long";

    @Option(names = "--min-mean-logprob", paramLabel = "X",
            description = "low-confidence: escalate when the answer's mean token log-probability is below X")
    Double minMeanLogprob;

    @Option(names = "--min-token-logprob", paramLabel = "X",
            description = "low-confidence: escalate when any answer token's log-probability is below X")
    Double minTokenLogprob;

    @Option(names = "--fallback-timeout", paramLabel = "SECONDS",
            description = "how long the fallback has to answer before the client gets 504 (default: ${DEFAULT-VALUE})")
    long fallbackTimeout = 60;

    @Option(names = "--fallback-model", paramLabel = "NAME",
            description = "the model name sent to the fallback (default: the client's)")
    String fallbackModel;

    @Option(names = "--local-only", description = "never escalate, whatever the other --fallback options say")
    boolean localOnly;

    @Option(names = "--pooling", paramLabel = "mean|last",
            description = "how /v1/embeddings pools a text's hidden states (default: the model's <arch>.pooling_type"
                    + " if it says mean or last, else mean)")
    String pooling;

    @Override
    public Integer call() throws IOException, InterruptedException {
        int threads = modelOptions.threads;
        ModelOptions.checkThreads(threads);
        if (context != null && context < 1) {
            throw new IllegalArgumentException("--context must be 1 or more, got " + context);
        }
        String key = apiKey();
        InetAddress address;
        try {
            address = InetAddress.getByName(host);
        } catch (java.net.UnknownHostException e) {
            throw new IllegalArgumentException("--host " + host + ": unknown host");
        }
        Pooling poolingValue = pooling == null ? null : Pooling.parse(pooling).orElseThrow(
                () -> new IllegalArgumentException("--pooling must be mean or last, got '" + pooling + "'"));
        Path modelPath = modelOptions.model();
        String name = alias != null ? alias : modelOptions.builtin() ? BuiltinModel.NAME : defaultAlias(modelPath);
        ServerConfig config = ServerConfig.builder()
                .host(host).port(port).parallel(parallel).contextLength(context != null ? context : 0)
                .queueLimit(queue).queueTimeout(seconds("--queue-timeout", queueTimeout)).maxBodyBytes(maxBody)
                .apiKey(key).modelId(name).headerTimeout(seconds("--header-timeout", headerTimeout))
                .idleTimeout(seconds("--idle-timeout", idleTimeout))
                .responseTimeout(seconds("--response-timeout", responseTimeout)).maxConnections(maxConnections)
                .shutdownTimeout(seconds("--shutdown-timeout", shutdownTimeout)).prefixCache(!noPrefixCache)
                .requestMemory(requestMemory).corsOrigins(corsOrigins).pooling(poolingValue).batching(!noBatching)
                .cacheBudget(cacheBudget == null ? -1 : CacheBudget.budget("--cache-budget", cacheBudget)).build();
        Fallback fallback = fallback();
        // batched slots compute together on every thread; otherwise the threads are shared out between them
        int perSlot = config.batched() ? threads : Math.max(1, threads / parallel);
        modelOptions.threads = perSlot;
        // SIGTERM and Ctrl-C are caught from here on: one that comes while the model loads ends the command
        // before the server starts, still with exit code 0
        CountDownLatch stop = new CountDownLatch(1);
        AtomicInteger signals = new AtomicInteger();
        AtomicReference<OpenAiServer> running = new AtomicReference<>();
        SignalHandler handler = _ -> {
            if (signals.incrementAndGet() == 1) {
                stop.countDown();
            } else if (running.get() != null) {
                running.get().abortInFlight(); // a second signal: do not wait for in-flight requests
            }
        };
        SignalHandler previousTerm = handle("TERM", handler);
        SignalHandler previousInt = handle("INT", handler);
        PrintStream access = accessLog();
        Operations ops = new Operations(access, logContent, !noWarmup, fallback);
        speculation.check();
        try (LlamaModel model = modelOptions.load(); PrintStream _ = access == parent.err ? null : access;
             SpeculationOptions.Speculator speculator = speculation.open(model, 0, modelOptions)) {
            ChatFormat chat = chatFormat(model);
            if (stop.getCount() == 0) {
                return 0;
            }
            OpenAiServer server;
            try {
                server = OpenAiServer.start(model, chat, config, parent.err, ops);
            } catch (java.net.BindException e) {
                throw new IOException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
            }
            running.set(server);
            if (speculator != null) {
                server.speculate(session -> speculator.newSpeculation(session.contextLength()));
                parent.err.println("llama: speculative decoding: " + speculation.describe());
            }
            String shown = server.address().getAddress().isAnyLocalAddress() ? "0.0.0.0"
                    : server.address().getAddress().getHostAddress();
            parent.err.printf("llama: serving %s on http://%s:%d/v1 (%d slot%s %s %d thread%s, context %d tokens)%n",
                    name, shown.contains(":") ? "[" + shown + "]" : shown, server.port(), parallel,
                    parallel == 1 ? "" : "s", config.batched() ? "batched together on" : "x", perSlot,
                    perSlot == 1 ? "" : "s", server.contextLength());
            if (fallback != null) {
                parent.err.printf("llama: escalating to %s on: %s%n", fallback.baseUrl(), fallbackOn);
                if (fallback.key() != null && fallback.baseUrl().getScheme().equalsIgnoreCase("http")
                        && !isLoopback(fallback.baseUrl().getHost())) {
                    parent.err.println("llama: warning: --fallback-url is plain http: the fallback key and the"
                            + " escalated requests cross the network unencrypted");
                }
            } else if (localOnly) {
                parent.err.println("llama: --local-only: no request leaves this server");
            }
            if (!address.isLoopbackAddress() && key == null) {
                parent.err.println("llama: warning: listening beyond this machine without --api-key: anyone who"
                        + " can reach the port can use the model");
            }
            stop.await();
            parent.err.println("llama: shutting down");
            server.shutdown(config.shutdownTimeout());
            parent.err.println("llama: stopped");
        } finally {
            restore("TERM", previousTerm);
            restore("INT", previousInt);
        }
        return 0;
    }

    /// Installs a signal handler (`sun.misc.Signal` is the only JDK way to catch SIGTERM without the JVM
    /// exiting with 143); returns the previous one.
    private SignalHandler handle(String signal, SignalHandler handler) {
        try {
            return Signal.handle(new Signal(signal), handler);
        } catch (IllegalArgumentException e) {
            // the JVM keeps this signal (-Xrs): it ends the process as usual
            parent.err.println("llama: warning: cannot handle SIG" + signal + ": " + e.getMessage());
            return null;
        }
    }

    private static void restore(String signal, SignalHandler previous) {
        if (previous != null) {
            Signal.handle(new Signal(signal), previous);
        }
    }

    private String apiKey() throws IOException {
        if (apiKey != null && apiKeyFile != null) {
            throw new IllegalArgumentException("give either --api-key or --api-key-file, not both");
        }
        String key = apiKey;
        if (apiKeyFile != null) {
            if (!Files.isRegularFile(apiKeyFile)) {
                throw new IOException(apiKeyFile + ": no such file");
            }
            key = LlamaCommand.decodeUtf8(Files.readAllBytes(apiKeyFile), apiKeyFile.toString()).strip();
        }
        if (key != null && key.isBlank()) {
            throw new IllegalArgumentException("the API key is empty");
        }
        return key;
    }

    /// Whether a URL's host is this machine, by its name alone (no DNS lookup at startup).
    static boolean isLoopback(String host) {
        String h = host.toLowerCase(java.util.Locale.ROOT);
        return h.equals("localhost") || h.matches("127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}") || h.equals("[::1]")
                || h.equals("::1");
    }

    /// The access log's stream: stderr for `-`, else the file, appended to.
    private PrintStream accessLog() throws IOException {
        if (accessLog == null) {
            return null;
        }
        if (accessLog.equals("-")) {
            return parent.err;
        }
        Path file = Path.of(accessLog);
        if (Files.isDirectory(file)) {
            throw new IOException("--access-log " + file + ": is a directory");
        }
        try {
            return new PrintStream(Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND), true, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IOException("--access-log " + file + ": cannot open it (" + e.getClass().getSimpleName() + ")");
        }
    }

    /// The hybrid routing settings, or null when there is no fallback or --local-only forbids it.
    Fallback fallback() throws IOException {
        boolean routingOptions = fallbackKeyFile != null || minMeanLogprob != null || minTokenLogprob != null
                || fallbackModel != null;
        if (fallbackUrl == null) {
            if (routingOptions) {
                throw new IllegalArgumentException("--fallback-key-file, --fallback-model, --min-mean-logprob and"
                        + " --min-token-logprob need --fallback-url");
            }
            return null;
        }
        Set<Fallback.Rule> rules = Fallback.Rule.parse(fallbackOn);
        URI url;
        try {
            url = new URI(fallbackUrl);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("--fallback-url " + fallbackUrl + ": not a URL (" + e.getReason() + ")");
        }
        String fallbackKey = null;
        if (fallbackKeyFile != null) {
            if (!Files.isRegularFile(fallbackKeyFile)) {
                throw new IOException("--fallback-key-file " + fallbackKeyFile + ": no such file");
            }
            fallbackKey = LlamaCommand.decodeUtf8(Files.readAllBytes(fallbackKeyFile), fallbackKeyFile.toString())
                    .strip();
            if (fallbackKey.isEmpty()) {
                throw new IllegalArgumentException("--fallback-key-file " + fallbackKeyFile + ": the key is empty");
            }
        }
        if (!rules.contains(Fallback.Rule.LOW_CONFIDENCE) && (minMeanLogprob != null || minTokenLogprob != null)) {
            throw new IllegalArgumentException("--min-mean-logprob and --min-token-logprob need --fallback-on"
                    + " low-confidence");
        }
        Fallback f = new Fallback(url, fallbackKey, rules,
                minMeanLogprob != null ? minMeanLogprob : Double.NEGATIVE_INFINITY,
                minTokenLogprob != null ? minTokenLogprob : Double.NEGATIVE_INFINITY,
                seconds("--fallback-timeout", fallbackTimeout), fallbackModel);
        return localOnly ? null : f; // checked all the same, so that a typo shows before it matters
    }

    private ChatFormat chatFormat(LlamaModel model) throws IOException {
        if (chatTemplate == null && modelOptions.builtin()) {
            return LlamaCommand.chatFormat(model, BuiltinModel.CHAT_TEMPLATE);
        }
        if (chatTemplate == null) {
            try {
                return ChatFormat.of(model);
            } catch (IllegalArgumentException e) {
                parent.err.println("llama: warning: " + ErrorHandler.describe(e)
                        + "; /v1/chat/completions will answer 400");
                return null;
            }
        }
        return LlamaCommand.chatFormat(model, chatTemplate);
    }

    private static String defaultAlias(Path model) {
        String file = model.getFileName().toString();
        return file.toLowerCase(java.util.Locale.ROOT).endsWith(".gguf") ? file.substring(0, file.length() - 5) : file;
    }

    private static Duration seconds(String option, long value) {
        if (value < 0 || value > 1_000_000_000L) {
            throw new IllegalArgumentException(option + " must be 0 or more seconds, got " + value);
        }
        return Duration.ofSeconds(value);
    }
}
