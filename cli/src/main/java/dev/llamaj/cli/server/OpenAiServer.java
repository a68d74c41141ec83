package dev.llamaj.cli.server;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.llamaj.cli.Json;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.PrefixCache;
import dev.llamaj.engine.tools.ToolCalling;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/// An HTTP server speaking the OpenAI API (`/v1/chat/completions`, `/v1/completions`, `/v1/responses`,
/// `/v1/embeddings` (see [Embeddings]), `/v1/models`) plus `/health`, on the JDK's built-in
/// `com.sun.net.httpserver`; CORS for the origins configured ([Cors]).
///
/// Requests are read and answered on virtual threads; generation runs on the [SlotPool]'s slot threads, so the
/// number of requests served at once is the number of slots, whatever the number of connections. Every error is
/// answered in OpenAI's JSON shape; nothing internal (stack traces, paths) reaches a client.
///
/// Limits: request bodies above `maxBodyBytes` get 413 without being read; a client has `headerTimeout` to send
/// its whole request and `responseTimeout` to take its answer; connections beyond `maxConnections` are closed at
/// once (see [HttpLimits]). An API key is compared in constant time.
public final class OpenAiServer implements AutoCloseable {
    private static final String CHAT = "/v1/chat/completions";
    private static final String COMPLETIONS = "/v1/completions";
    private static final String MODELS = "/v1/models";
    private static final String RESPONSES = "/v1/responses";
    private static final String EMBEDDINGS = "/v1/embeddings";
    private static final String HEALTH = "/health";
    private static final String READY = "/ready";
    private static final String METRICS = "/metrics";
    /// The response header that says whether the answer was generated here or by the fallback API.
    static final String ROUTE_HEADER = "X-Llamaj-Route";

    private final ServerConfig config;
    private final SlotPool pool;
    private final RequestParser parser;
    private final LogprobsJson logprobsJson;
    private final RequestMemory memory;
    private final Embeddings embeddings;
    /// Platform threads that render and tokenize prompts (see [#prepare]).
    private final java.util.concurrent.ThreadPoolExecutor promptPool;
    private volatile String lastPromptThread;
    /// The listener; replaced by a new one if one of its threads dies (see [#watch]).
    private volatile HttpServer http;
    /// The JDK server's own threads for `http`: its dispatcher and the two timers that run its timeouts.
    private volatile List<Thread> httpThreads = List.of();
    private final AtomicInteger listenerRestarts = new AtomicInteger();
    private Thread watchdog;
    private final ExecutorService executor;
    private final PrintStream log;
    private final byte[] keyDigest;
    private final Cors cors;
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicInteger activeExchanges = new AtomicInteger();
    private volatile boolean shuttingDown;
    private boolean stopped;
    private final Operations ops;
    private final ServerMetrics metrics;
    /// Null unless requests may be escalated.
    private final FallbackClient fallback;
    /// The model is loaded and warmed (see [Operations#warmup]).
    private volatile boolean warm;

    private OpenAiServer(ServerConfig config, SlotPool pool, RequestParser parser, ExecutorService executor,
                         PrintStream log, Operations ops) {
        this.config = config;
        this.ops = ops;
        this.fallback = ops.fallback() == null ? null : new FallbackClient(ops.fallback());
        this.warm = !ops.warmup();
        java.util.Set<String> reasons = new java.util.TreeSet<>();
        if (ops.fallback() != null) {
            ops.fallback().rules().forEach(r -> reasons.add(r.label));
        }
        this.metrics = new ServerMetrics(pool.parallel(), pool::busy, pool::queued, pool::cachedTokens,
                (long) pool.parallel() * pool.contextLength(), () -> ready() ? 1 : 0, reasons);
        if (pool.batchStats().isPresent()) {
            metrics.batchSteps(() -> pool.batchStats().map(dev.llamaj.engine.BatchExecutor.Stats::meanBatch)
                    .orElse(0.0));
        }
        if (pool.shared() != null) {
            PrefixCache shared = pool.shared();
            metrics.registry.gauge("llamaj_prefix_cache_bytes", "Bytes of prompt blocks held in the shared prefix"
                    + " cache (at most --cache-budget).", () -> shared.stats().bytes());
            metrics.registry.gauge("llamaj_prefix_cache_blocks", "Prompt blocks of 64 positions held in the shared"
                    + " prefix cache.", () -> shared.stats().blocks());
        }
        this.pool = pool;
        this.parser = parser;
        this.logprobsJson = new LogprobsJson(pool.model().tokenizer());
        this.embeddings = new Embeddings(pool.model(), config.pooling(), pool.contextLength(), config.queueLimit(),
                config.queueTimeout(), config.modelId());
        int promptThreads = Math.max(1, Math.min(config.parallel(), Runtime.getRuntime().availableProcessors()));
        this.promptPool = new java.util.concurrent.ThreadPoolExecutor(promptThreads, promptThreads, 0,
                TimeUnit.SECONDS, new java.util.concurrent.ArrayBlockingQueue<>(config.parallel() + config.queueLimit()),
                Thread.ofPlatform().name("llamaj-prompt-", 0).daemon(true).factory(),
                new java.util.concurrent.ThreadPoolExecutor.AbortPolicy());
        promptPool.prestartAllCoreThreads(); // a fixed set of threads from the start
        this.memory = new RequestMemory(config.requestMemory() > 0 ? config.requestMemory()
                : RequestMemory.defaultBudget(config.maxBodyBytes()));
        this.executor = executor;
        this.log = log;
        this.keyDigest = config.apiKey() == null ? null : sha256(config.apiKey());
        this.cors = new Cors(config.corsOrigins());
    }

    /// Opens the slots (one session each on `model`) and starts listening.
    ///
    /// @param chatFormat how chat messages become a prompt; null if the model has no chat template (then
    ///                   `/v1/chat/completions` answers 400 saying so)
    /// @param log        one line per request and warnings; null for none
    /// @throws IOException if the address cannot be bound
    /// @throws IllegalArgumentException if the slots' contexts do not fit in memory
    public static OpenAiServer start(LlamaModel model, ChatFormat chatFormat, ServerConfig config, PrintStream log)
            throws IOException {
        return start(model, chatFormat, config, log, Operations.NONE);
    }

    /// Generates with speculative decoding from now on: each slot gets the speculation `perSlot` makes for its
    /// session.
    public void speculate(java.util.function.Function<dev.llamaj.engine.Session, dev.llamaj.engine.Speculation>
                                  perSlot) {
        pool.speculate(perSlot);
    }

    /// [#start(LlamaModel, ChatFormat, ServerConfig, PrintStream)] with access logs, warm-up and hybrid routing
    /// as `ops` says.
    public static OpenAiServer start(LlamaModel model, ChatFormat chatFormat, ServerConfig config, PrintStream log,
                                     Operations ops) throws IOException {
        int context = config.contextLength() > 0 ? config.contextLength() : model.defaultContextLength();
        HttpLimits.apply(config, log);
        long budget = config.cacheBudget() < 0 ? PrefixCache.defaultBudget() : config.cacheBudget();
        PrefixCache shared = config.prefixCache() && budget > 0 ? new PrefixCache(model, budget) : null;
        SlotPool pool = new SlotPool(model, config.parallel(), context, config.queueLimit(), config.prefixCache(),
                config.batched(), shared, log);
        ExecutorService executor = Executors.newThreadPerTaskExecutor(
                Thread.ofVirtual().name("llamaj-http-", 0).factory());
        OpenAiServer server = new OpenAiServer(config, pool, new RequestParser(model.tokenizer(), chatFormat, context),
                executor, log, ops);
        try {
            server.listen(new InetSocketAddress(config.host(), config.port()));
        } catch (IOException | RuntimeException e) {
            server.promptPool.shutdownNow();
            executor.shutdownNow();
            pool.close();
            if (server.fallback != null) {
                server.fallback.close();
            }
            throw e;
        }
        server.watchdog = Thread.ofPlatform().name("llamaj-http-watchdog").daemon(true).start(server::watch);
        if (ops.warmup()) {
            Thread.ofPlatform().name("llamaj-warmup").daemon(true).start(() -> server.warmUp(model));
        }
        return server;
    }

    /// Thread names of the JDK server (`sun.net.httpserver.ServerImpl`): the dispatcher accepts connections and
    /// reads requests into exchanges; the timeouts (request, response, idle) run on two `java.util.Timer`s.
    private static final Set<String> HTTP_THREAD_NAMES = Set.of("HTTP-Dispatcher", "idle-timeout-task",
            "req-rsp-timeout-task");

    /// Creates, binds and starts the JDK server on `address`, and notes which threads are its own.
    private void listen(InetSocketAddress address) throws IOException {
        // the threads are told apart from other servers' by being new: one server is created at a time
        synchronized (HTTP_THREAD_NAMES) {
            Set<Thread> before = Thread.getAllStackTraces().keySet();
            HttpServer server = HttpServer.create(address, 128);
            server.createContext("/", this::handle);
            server.setExecutor(executor);
            server.start();
            List<Thread> own = new ArrayList<>();
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (HTTP_THREAD_NAMES.contains(t.getName()) && !before.contains(t)) {
                    own.add(t);
                }
            }
            http = server;
            httpThreads = List.copyOf(own);
        }
    }

    /// The watchdog: a `java.util.Timer` whose task throws is dead for good, and the JDK server's timer tasks
    /// allocate (an `OutOfMemoryError` anywhere in the JVM can land there), as can its dispatcher, which catches
    /// only `Exception`. Their deaths are silent: a dead timer means slow clients are never cut off again, a dead
    /// dispatcher that no connection is accepted. Nothing outside the JDK can restart them, so when one of them
    /// has died this replaces the whole listener (its open connections are closed) with a new one on the same
    /// port. It survives anything itself.
    private void watch() {
        while (!shuttingDown) {
            try {
                Thread.sleep(WATCH_INTERVAL_MILLIS);
                if (shuttingDown) {
                    return;
                }
                Thread dead = null;
                for (Thread t : httpThreads) {
                    if (!t.isAlive()) {
                        dead = t;
                    }
                }
                if (dead != null) {
                    restartListener(dead.getName());
                }
            } catch (InterruptedException e) {
                return;
            } catch (Throwable t) {
                // an OutOfMemoryError here too: try again next time
            }
        }
    }

    static final long WATCH_INTERVAL_MILLIS = 500;

    private void restartListener(String deadThread) throws InterruptedException {
        HttpServer old = http;
        InetSocketAddress address = new InetSocketAddress(old.getAddress().getAddress(), old.getAddress().getPort());
        if (log != null) {
            log.println("llama: the HTTP server's thread '" + deadThread + "' has died; restarting the listener on"
                    + " port " + address.getPort());
        }
        synchronized (this) {
            if (stopped) {
                return;
            }
            old.stop(0);
            for (int attempt = 0; ; attempt++) {
                try {
                    listen(address);
                    listenerRestarts.incrementAndGet();
                    return;
                } catch (IOException e) {
                    if (attempt >= 20) {
                        if (log != null) {
                            log.println("llama: cannot listen on port " + address.getPort() + " again: " + e);
                        }
                        return;
                    }
                    Thread.sleep(100);
                }
            }
        }
    }

    /// The warm-up: one short generation through a slot (prompt processing in a batch, then a few tokens), so that
    /// the JIT has compiled the kernels and the weights are in memory before `/ready` says so. A failure is
    /// logged and the server becomes ready anyway: a real request will report the problem.
    private void warmUp(LlamaModel model) {
        long start = System.nanoTime();
        try {
            Thread.sleep(warmupDelayMillisForTests);
            int[] prompt = model.tokenizer().encode("Once upon a time, in a warm-up far away, a server got ready.");
            if (prompt.length == 0) {
                prompt = new int[] {0};
            }
            prompt = java.util.Arrays.copyOf(prompt, Math.min(prompt.length, Math.max(1, pool.contextLength() / 2)));
            GenerationRequest request = new GenerationRequest(false, prompt,
                    Math.max(1, Math.min(8, pool.contextLength() - prompt.length)),
                    dev.llamaj.engine.Sampler.Settings.greedy(), List.of(), false, false);
            SlotPool.Job job;
            while ((job = pool.submit(request)) == null) {
                Thread.sleep(50); // a full queue already: real requests are warming it up
            }
            Object event;
            do {
                event = job.events.take(); // STARTED, text pieces, then the end
            } while (!(event instanceof SlotPool.Job.Finished) && !(event instanceof SlotPool.Job.Failed));
            if (log != null) {
                log.printf(Locale.ROOT, "llama: warmed up in %.2f s%n", (System.nanoTime() - start) / 1e9);
            }
        } catch (Throwable t) {
            if (log != null) {
                log.println("llama: warm-up failed (" + t.getClass().getSimpleName() + "); ready anyway");
            }
        } finally {
            warm = true;
        }
    }

    /// Whether `/ready` answers 200: warmed, not shutting down, and not failing every request.
    boolean ready() {
        return warm && !shuttingDown && pool.consecutiveFailures() < UNHEALTHY_AFTER_FAILURES;
    }

    /// The address the server listens on (with the actual port when 0 was asked for).
    public InetSocketAddress address() {
        return http.getAddress();
    }

    public int port() {
        return http.getAddress().getPort();
    }

    /// Tokens in each slot's context.
    public int contextLength() {
        return pool.contextLength();
    }

    /// Stops the server: no new connections or requests (503 on open connections), in-flight requests get up to
    /// `grace` to finish and are then aborted (their clients get an error), then the slots are closed. Returns
    /// within about `grace` plus a few seconds. Safe to call more than once.
    public void shutdown(Duration grace) {
        synchronized (this) {
            if (stopped) {
                return;
            }
            stopped = true;
        }
        shuttingDown = true;
        if (watchdog != null) {
            watchdog.interrupt();
        }
        pool.stopAccepting();
        HttpServer http = this.http;
        // HttpServer.stop closes the listening socket at once, then waits for open exchanges (up to its delay)
        // before closing every connection; it is interrupted below as soon as this server's own requests are done
        // (its count of exchanges never drops for a request whose client vanished before any response)
        int httpDelay = (int) Math.min(Integer.MAX_VALUE, grace.toSeconds() + 5);
        Thread stopper = Thread.ofPlatform().name("llamaj-http-stop").start(() -> http.stop(httpDelay));
        try {
            if (!pool.awaitIdle(grace)) {
                if (log != null) {
                    log.println("llama: aborting " + (pool.busy() + pool.queued()) + " request(s) still running");
                }
                pool.abortAll();
                pool.awaitIdle(Duration.ofSeconds(2));
            }
            // the handlers send their last bytes (a client that does not read is cut off when stop closes all)
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            while (activeExchanges.get() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            stopper.interrupt();
            stopper.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        promptPool.shutdownNow();
        embeddings.close();
        executor.shutdown();
        try {
            if (!executor.awaitTermination(2, TimeUnit.SECONDS)) {
                executor.shutdownNow();
            }
        } catch (InterruptedException e) {
            executor.shutdownNow();
            Thread.currentThread().interrupt();
        }
        pool.close();
        if (fallback != null) {
            fallback.close();
        }
    }

    /// Stops every running and waiting request now (their clients get an error); for a second Ctrl-C.
    public void abortInFlight() {
        pool.abortAll();
    }

    /// [#shutdown] with the configured shutdown timeout.
    @Override
    public void close() {
        shutdown(config.shutdownTimeout());
    }

    // ---------------------------------------------------------------- for tests

    int busySlots() {
        return pool.busy();
    }

    int queuedRequests() {
        return pool.queued();
    }

    int activeExchanges() {
        return activeExchanges.get();
    }

    /// Watches `thread` as if it were one of the JDK server's own, until the listener is replaced.
    void watchAlso(Thread thread) {
        List<Thread> all = new ArrayList<>(httpThreads);
        all.add(thread);
        httpThreads = List.copyOf(all);
    }

    List<String> httpThreadNames() {
        return httpThreads.stream().map(Thread::getName).sorted().toList();
    }

    /// The thread that prepared the last prompt.
    String lastPromptThread() {
        return lastPromptThread;
    }

    int listenerRestarts() {
        return listenerRestarts.get();
    }

    long requestMemoryUsed() {
        return memory.used();
    }

    /// Test hook: a pause before the warm-up, so that tests can see the server not ready yet.
    static volatile long warmupDelayMillisForTests;

    /// Slows generation down (a pause after each piece of text), so that tests can interrupt it.
    void pausePerPiece(Duration pause) {
        pool.pauseNanosPerPiece = pause.toNanos();
    }

    // ---------------------------------------------------------------- routing

    private void handle(HttpExchange ex) {
        activeExchanges.incrementAndGet();
        String method = ex.getRequestMethod();
        String path = String.valueOf(ex.getRequestURI().getPath()); // decoded (the JDK rejects malformed URIs)
        Outcome outcome = new Outcome();
        try {
            route(ex, method, path, outcome);
        } catch (ApiException e) {
            outcome.status = e.status;
            outcome.note = e.getMessage();
            outcome.error = e.code != null ? e.code : e.type;
            trySendError(ex, e);
        } catch (IOException e) {
            outcome.note = "client gone (" + e.getClass().getSimpleName() + ")";
        } catch (InterruptedException e) {
            outcome.note = "interrupted";
        } catch (Throwable e) {
            // an OutOfMemoryError too: this request fails, the server goes on (and nothing here may throw)
            outcome.status = 500;
            try {
                outcome.note = "internal error: " + e;
            } catch (Throwable ignored) {
                outcome.note = "internal error";
            }
            trySendError(ex, ApiException.internal());
        } finally {
            try {
                ex.close();
            } catch (Throwable ignored) {
                // the connection is gone either way
            }
            activeExchanges.decrementAndGet();
            try {
                long nanos = System.nanoTime() - outcome.start;
                metrics.requests.inc(ServerMetrics.endpoint(path), Integer.toString(reportedStatus(ex, outcome)));
                if (outcome.id != null) {
                    metrics.requestDuration.observe(nanos / 1e9);
                }
                logRequest(ex, method, path, outcome, nanos);
            } catch (Throwable ignored) {
                // no log line rather than a dead thread
            }
        }
    }

    /// What to log about a request (the access log, the metrics) and what routing needs of it; -1 for what does
    /// not apply.
    private static final class Outcome {
        final long start = System.nanoTime();
        /// the request may be sent to the fallback (one is configured, and neither --local-only nor route: local)
        boolean escalable;
        /// the request body, kept when it may be forwarded
        Map<String, Object> body;
        /// set when the request is to be escalated before it reaches a slot
        Fallback.Rule escalateFor;
        int status;
        String note;
        /// the completion's id, null for requests that are not completions
        String id;
        /// the error code of an error answer
        String error;
        /// `local` or `fallback` for completions
        String route;
        /// the rule that escalated it
        String escalation;
        int promptTokens = -1;
        int cachedTokens = -1;
        int completionTokens = -1;
        long queueNanos = -1;
        long firstTokenNanos = -1;
        /// with --log-content only: the request's prompt or messages, and the generated text
        Object prompt;
        String output;
    }

    private void route(HttpExchange ex, String method, String path, Outcome outcome)
            throws ApiException, IOException, InterruptedException {
        checkRequestHead(ex);
        if (cors.apply(ex, method)) {
            outcome.status = ex.getResponseCode();
            return;
        }
        if (path.length() > 1 && path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        if (path.equals(HEALTH)) {
            allow(ex, method, "GET", "HEAD");
            health(ex, method, outcome);
            return;
        }
        if (path.equals(READY)) {
            allow(ex, method, "GET", "HEAD");
            readiness(ex, method, outcome);
            return;
        }
        if (path.equals(METRICS)) {
            allow(ex, method, "GET", "HEAD");
            byte[] text = metrics.registry.scrape().getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            outcome.status = 200;
            if (method.equals("HEAD")) {
                ex.sendResponseHeaders(200, -1);
            } else {
                ex.sendResponseHeaders(200, text.length);
                ex.getResponseBody().write(text);
            }
            return;
        }
        authorize(ex);
        if (shuttingDown) {
            throw ApiException.shuttingDown();
        }
        switch (path) {
            case CHAT, COMPLETIONS, RESPONSES -> {
                allow(ex, method, "POST");
                complete(ex, !path.equals(COMPLETIONS), path.equals(RESPONSES), outcome);
            }
            case EMBEDDINGS -> {
                allow(ex, method, "POST");
                Embeddings.Request request = readBody(ex, embeddings::parse);
                outcome.status = sendJson(ex, 200, embeddings.run(request));
                outcome.note = request.inputs().size() + " input(s), " + embeddings.pooling() + " pooling";
            }
            case MODELS -> {
                allow(ex, method, "GET", "HEAD");
                Map<String, Object> list = new LinkedHashMap<>();
                list.put("object", "list");
                list.put("data", List.of(modelObject()));
                outcome.status = sendJson(ex, 200, list);
            }
            default -> {
                if (path.startsWith(MODELS + "/")) {
                    allow(ex, method, "GET", "HEAD");
                    String id = path.substring(MODELS.length() + 1);
                    if (!id.equals(config.modelId())) {
                        throw ApiException.notFound("The model '" + id + "' does not exist.", "model_not_found");
                    }
                    outcome.status = sendJson(ex, 200, modelObject());
                    return;
                }
                throw ApiException.notFound("Unknown request URL: " + method + " " + path
                        + ". This server serves " + CHAT + ", " + COMPLETIONS + ", " + RESPONSES + ", " + EMBEDDINGS
                        + ", " + MODELS + ", " + HEALTH + ", " + READY + " and " + METRICS + ".", "unknown_url");
            }
        }
    }

    private static final java.util.regex.Pattern HTTP_VERSION = java.util.regex.Pattern.compile("HTTP/\\d\\.\\d");

    /// The JDK server accepts any protocol version (`HTTP/2.0`, `HTTP/9.9`, `FOO`) and answers in HTTP/1.1; and
    /// it cuts off request heads beyond its own limits unanswered, which are twice this server's (see
    /// [HttpLimits]).
    private static void checkRequestHead(HttpExchange ex) throws ApiException {
        String version = ex.getProtocol();
        if (!version.equals("HTTP/1.1") && !version.equals("HTTP/1.0")) {
            ex.getResponseHeaders().set("Connection", "close");
            if (HTTP_VERSION.matcher(version).matches()) {
                throw new ApiException(505, "invalid_request_error", null, "http_version_not_supported",
                        "HTTP version " + version + " is not supported; this server speaks HTTP/1.1 and HTTP/1.0.");
            }
            throw new ApiException(400, "invalid_request_error", null, "bad_request", "The request line does not"
                    + " end with an HTTP version (HTTP/1.1).");
        }
        Headers headers = ex.getRequestHeaders();
        long bytes = ex.getRequestMethod().length() + ex.getRequestURI().getRawPath().length()
                + (ex.getRequestURI().getRawQuery() == null ? 0 : ex.getRequestURI().getRawQuery().length() + 1)
                + version.length() + 4;
        int lines = 0;
        for (Map.Entry<String, List<String>> e : headers.entrySet()) {
            for (String value : e.getValue()) {
                lines++;
                bytes += e.getKey().length() + 2 + value.length() + 2;
            }
        }
        if (lines > HttpLimits.MAX_HEADER_LINES || bytes > HttpLimits.MAX_HEADER_BYTES) {
            ex.getResponseHeaders().set("Connection", "close");
            throw new ApiException(431, "invalid_request_error", null, "request_header_fields_too_large",
                    "The request line and headers are " + lines + " header lines and " + bytes + " bytes; this"
                            + " server accepts at most " + HttpLimits.MAX_HEADER_LINES + " lines and "
                            + HttpLimits.MAX_HEADER_BYTES + " bytes.");
        }
    }

    private static void allow(HttpExchange ex, String method, String... allowed) throws ApiException {
        for (String a : allowed) {
            if (a.equals(method)) {
                return;
            }
        }
        ex.getResponseHeaders().set("Allow", String.join(", ", allowed));
        throw new ApiException(405, "invalid_request_error", null, "method_not_allowed", "Method " + method
                + " is not allowed here; use " + String.join(" or ", allowed) + ".");
    }

    private void authorize(HttpExchange ex) throws ApiException {
        if (keyDigest == null) {
            return;
        }
        String header = ex.getRequestHeaders().getFirst("Authorization");
        if (header == null || header.length() < 7 || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            ex.getResponseHeaders().set("WWW-Authenticate", "Bearer");
            throw new ApiException(401, "invalid_request_error", null, null, "You didn't provide an API key. You"
                    + " need to provide your API key in an Authorization header using Bearer auth (i.e."
                    + " Authorization: Bearer YOUR_KEY).");
        }
        // digests of both, compared with MessageDigest.isEqual: time depends neither on where they differ nor
        // on the length of the key
        if (!MessageDigest.isEqual(sha256(header.substring(7).strip()), keyDigest)) {
            ex.getResponseHeaders().set("WWW-Authenticate", "Bearer error=\"invalid_token\"");
            throw new ApiException(401, "invalid_request_error", null, "invalid_api_key",
                    "Incorrect API key provided.");
        }
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /// Completions failing in a row with an internal error after which `/health` says the server is unhealthy.
    static final int UNHEALTHY_AFTER_FAILURES = 3;

    private void health(HttpExchange ex, String method, Outcome outcome) throws IOException {
        Map<String, Object> body = new LinkedHashMap<>();
        int failures = pool.consecutiveFailures();
        boolean failing = failures >= UNHEALTHY_AFTER_FAILURES;
        body.put("status", shuttingDown ? "shutting_down" : failing ? "error" : "ok");
        if (failing && !shuttingDown) {
            // the exception's class only: its message may hold paths, and /health needs no key
            body.put("reason", "the last " + failures + " completions failed with an internal error ("
                    + pool.lastFailure() + "); the model file may be damaged, see the server's log");
        }
        body.put("ready", ready());
        body.put("slots", pool.parallel());
        body.put("slots_busy", pool.busy());
        body.put("queued", pool.queued());
        outcome.status = shuttingDown || failing ? 503 : 200;
        if (method.equals("HEAD")) {
            ex.sendResponseHeaders(outcome.status, -1);
        } else {
            sendJson(ex, outcome.status, body);
        }
    }

    /// `/ready`: 200 once the model is loaded and warmed; 503 before, while shutting down (so that a load balancer
    /// stops sending requests during the drain) and while completions keep failing (see [#health]).
    private void readiness(HttpExchange ex, String method, Outcome outcome) throws IOException {
        boolean ready = ready();
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("status", ready ? "ready" : shuttingDown ? "shutting_down" : !warm ? "warming_up" : "error");
        outcome.status = ready ? 200 : 503;
        if (method.equals("HEAD")) {
            ex.sendResponseHeaders(outcome.status, -1);
        } else {
            sendJson(ex, outcome.status, body);
        }
    }

    private Map<String, Object> modelObject() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", config.modelId());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "llamaj");
        return m;
    }

    // ---------------------------------------------------------------- completions

    /// A completion on `/v1/chat/completions` (`chat`), `/v1/completions`, or `/v1/responses` (`responses`, which
    /// is a chat request in another shape, see [ResponsesApi]).
    private void complete(HttpExchange ex, boolean chat, boolean responses, Outcome outcome)
            throws ApiException, IOException, InterruptedException {
        java.util.concurrent.atomic.AtomicReference<Map<String, Object>> original =
                new java.util.concurrent.atomic.AtomicReference<>();
        // the answer's id, and the request's in the access log and X-Request-Id (a response has its own id too)
        String id = (responses ? "req-" : chat ? "chatcmpl-" : "cmpl-") + randomId();
        outcome.id = id;
        ex.getResponseHeaders().set("X-Request-Id", id);
        GenerationRequest request = readRequest(ex, chat, responses ? original::set : null, outcome);
        if (request == null) {
            escalate(ex, chat, outcome, outcome.escalateFor);
            return;
        }
        SlotPool.Job job = pool.submit(request);
        if (job == null && escalates(outcome, Fallback.Rule.QUEUE_FULL)) {
            escalate(ex, chat, outcome, Fallback.Rule.QUEUE_FULL);
            return;
        }
        if (job == null) {
            ex.getResponseHeaders().set("Retry-After", "1");
            throw ApiException.busy("All " + pool.parallel() + " slots are busy and " + config.queueLimit()
                    + " requests are already waiting; retry later.");
        }
        boolean done = false;
        try {
            long queued = System.nanoTime();
            if (!job.awaitStart(config.queueTimeout())) {
                if (escalates(outcome, Fallback.Rule.QUEUE_FULL)) {
                    done = true; // withdrawn from the queue already
                    escalate(ex, chat, outcome, Fallback.Rule.QUEUE_FULL);
                    return;
                }
                ex.getResponseHeaders().set("Retry-After", "1");
                throw ApiException.busy("No slot became free within " + config.queueTimeout().toSeconds()
                        + " s; retry later.");
            }
            outcome.queueNanos = System.nanoTime() - queued;
            metrics.queueWait.observe(outcome.queueNanos / 1e9);
            outcome.route = "local";
            ex.getResponseHeaders().set(ROUTE_HEADER, "local");
            long createdAt = System.currentTimeMillis() / 1000;
            if (responses) {
                ResponsesApi api = new ResponsesApi(original.get(), config.modelId(), request);
                if (request.stream()) {
                    streamResponse(ex, job, api, outcome);
                } else {
                    respondResponse(ex, job, api, outcome);
                }
            } else if (request.stream()) {
                stream(ex, job, id, createdAt, outcome);
            } else {
                respond(ex, job, id, createdAt, outcome);
            }
            done = true;
        } finally {
            if (!done) {
                job.cancel();
            }
        }
    }

    /// Reads, parses and validates a completion request; the prompt is rendered and tokenized on the prompt
    /// threads. The body's memory stays reserved until its prompt is made.
    ///
    /// @param responses for `/v1/responses`: receives the body as sent, which is then translated into a chat one
    private GenerationRequest readRequest(HttpExchange ex, boolean chat,
                                          java.util.function.Consumer<Map<String, Object>> responses, Outcome outcome)
            throws ApiException, IOException, InterruptedException {
        return readBody(ex, body -> {
            // /v1/responses is answered here: its shape is not what a fallback's chat endpoint takes
            outcome.escalable = routing(body) && responses == null;
            if (outcome.escalable) {
                // kept to be forwarded, beyond the body's reservation: like the prompt's tokens, it lives as long
                // as its request, and requests in flight are bounded by the slots, the queue and the connections
                outcome.body = body;
            }
            if (ops.logContent()) {
                outcome.prompt = body.get(responses != null ? "input" : chat ? "messages" : "prompt");
            }
            if (responses != null) {
                responses.accept(body);
                try {
                    return prepare(chat, ResponsesApi.toChatBody(body));
                } catch (ApiException e) {
                    throw ResponsesApi.inResponsesTerms(e);
                }
            }
            try {
                return prepare(chat, body);
            } catch (ApiException e) {
                // a prompt too long for the context, or too many prompts being prepared: the fallback may answer
                Fallback.Rule rule = "context_length_exceeded".equals(e.code) ? Fallback.Rule.TOO_LONG
                        : "server_busy".equals(e.code) ? Fallback.Rule.QUEUE_FULL : null;
                if (rule != null && escalates(outcome, rule)) {
                    outcome.escalateFor = rule;
                    return null;
                }
                throw e;
            }
        });
    }

    /// What a request does with its parsed body while the body's memory is still reserved.
    @FunctionalInterface
    private interface BodyUse<T> {
        T apply(Map<String, Object> body) throws ApiException, InterruptedException;
    }

    /// Reads and parses the JSON body within the request-memory budget and hands it to `use`.
    private <T> T readBody(HttpExchange ex, BodyUse<T> use) throws ApiException, IOException, InterruptedException {
        long max = config.maxBodyBytes();
        long declared = -1;
        String length = ex.getRequestHeaders().getFirst("Content-Length");
        if (length != null) {
            try {
                declared = Long.parseLong(length.strip());
            } catch (NumberFormatException e) {
                declared = -1;
            }
            if (declared > max) {
                throw tooLarge(ex, max);
            }
        }
        // the heap this body may take while read and parsed, reserved before a byte of it is read
        long reserved = RequestMemory.cost(declared >= 0 ? declared : max);
        if (!memory.tryReserve(reserved)) {
            // the body is read and dropped (no heap, and --header-timeout bounds the time), so that the client,
            // still sending it, gets the answer rather than a reset connection
            drain(ex.getRequestBody(), max);
            ex.getResponseHeaders().set("Retry-After", "1");
            throw ApiException.busy("The server is reading as many request bodies as its memory allows; retry"
                    + " later.");
        }
        try {
            Map<String, Object> body = parseBody(ex, max);
            return use.apply(body);
        } finally {
            memory.release(reserved);
        }
    }

    /// Runs [RequestParser#parse] (template rendering and tokenizing: up to seconds of CPU for a long prompt) on
    /// the prompt threads, not on this virtual thread: the HTTP server's virtual threads share a carrier thread per
    /// core, and reading every other request's headers waits while those are busy. Beyond their queue, 503.
    private GenerationRequest prepare(boolean chat, Map<String, Object> body)
            throws ApiException, InterruptedException {
        java.util.concurrent.Future<GenerationRequest> f;
        try {
            f = promptPool.submit(() -> {
                lastPromptThread = Thread.currentThread().getName();
                return parser.parse(chat, body);
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            throw ApiException.busy("Too many prompts are being prepared; retry later.");
        }
        try {
            return f.get();
        } catch (java.util.concurrent.ExecutionException e) {
            switch (e.getCause()) {
                case ApiException api -> throw api;
                case RuntimeException r -> throw r;
                case Error err -> throw err;
                default -> throw new IllegalStateException(e.getCause());
            }
        } catch (InterruptedException e) {
            f.cancel(true);
            throw e;
        }
    }

    private static void drain(InputStream in, long max) throws IOException {
        byte[] buffer = new byte[8192];
        long left = max + 1;
        int n;
        while (left > 0 && (n = in.read(buffer, 0, (int) Math.min(buffer.length, left))) > 0) {
            left -= n;
        }
    }

    private static Map<String, Object> parseBody(HttpExchange ex, long max) throws ApiException, IOException {
        InputStream in = ex.getRequestBody();
        byte[] bytes = in.readNBytes((int) max + 1);
        if (bytes.length > max) {
            throw tooLarge(ex, max);
        }
        // decoded straight into a compact string (no char buffer of twice the size); a strict decoder only when
        // the lenient one replaced something
        String text = new String(bytes, StandardCharsets.UTF_8);
        if (text.indexOf('\uFFFD') >= 0) {
            try {
                StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes));
            } catch (CharacterCodingException e) {
                throw ApiException.invalid(null, "invalid_json", "The request body is not valid UTF-8.");
            }
        }
        int bodyBytes = bytes.length;
        bytes = null; // garbage from here on, while the values are built
        if (text.isBlank()) {
            throw ApiException.invalid(null, "invalid_json", "The request body is empty; send a JSON object.");
        }
        Object value;
        try {
            value = Json.parse(text, RequestMemory.limits(bodyBytes));
        } catch (Json.LimitException e) {
            throw new ApiException(413, "invalid_request_error", null, "request_too_large",
                    "The JSON of the request body is beyond this server's limits: " + e.getMessage() + ".");
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(null, "invalid_json", "We could not parse the JSON body of your request: "
                    + e.getMessage() + ".");
        }
        if (!(value instanceof Map<?, ?> map)) {
            throw ApiException.invalid(null, "invalid_json", "The request body must be a JSON object, not "
                    + ApiException.describe(value) + ".");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> object = (Map<String, Object>) map;
        return object;
    }

    private static ApiException tooLarge(HttpExchange ex, long max) {
        // the rest of the body is not read: close the connection rather than drain it
        ex.getResponseHeaders().set("Connection", "close");
        return new ApiException(413, "invalid_request_error", null, "request_too_large",
                "The request body is larger than the " + max + " bytes this server accepts.");
    }

    /// Waits for the whole generation, then answers with one JSON object.
    private void respond(HttpExchange ex, SlotPool.Job job, String id, long createdAt, Outcome outcome)
            throws ApiException, IOException, InterruptedException {
        GenerationRequest r = job.request;
        List<Object> choices = new ArrayList<>(r.n());
        List<Completion.Token> tokens = new ArrayList<>();
        while (true) {
            Object e = job.events.take();
            if (e instanceof String) {
                firstToken(outcome);
            } else if (e instanceof Completion.Token t) {
                tokens.add(t);
            } else if (e instanceof SlotPool.Job.ChoiceDone done) {
                choices.add(choice(r, done.index(), done.completion(), tokens));
                tokens = new ArrayList<>();
            } else if (e instanceof SlotPool.Job.Finished f) {
                Completion c = f.completion();
                if (job.aborted || c == null || c.stopReason() == Completion.StopReason.CANCELLED) {
                    throw ApiException.shuttingDown();
                }
                finished(f, outcome);
                Fallback.Rule rule = judge(outcome, f.choices());
                if (rule != null) {
                    escalate(ex, r.chat(), outcome, rule);
                    return;
                }
                choices.add(choice(r, choices.size(), c, tokens));
                Map<String, Object> body = envelope(id, r.chat() ? "chat.completion" : "text_completion", createdAt);
                body.put("choices", choices);
                body.put("usage", usage(f));
                outcome.status = sendJson(ex, 200, body);
                @SuppressWarnings("unchecked")
                Object finish = ((Map<String, Object>) choices.getLast()).get("finish_reason");
                outcome.note = summary(f, (String) finish);
                return;
            } else if (e instanceof SlotPool.Job.Failed failed) {
                throw failure(failed);
            }
            // text pieces: the completion carries the whole text
        }
    }

    /// One choice of a whole answer; `tokens` are its generated tokens when log-probabilities were asked for.
    private Map<String, Object> choice(GenerationRequest r, int index, Completion c, List<Completion.Token> tokens) {
        Map<String, Object> choice = new LinkedHashMap<>();
        choice.put("index", index);
        String finishReason = finishReason(c);
        if (r.chat()) {
            Map<String, Object> message = new LinkedHashMap<>();
            message.put("role", "assistant");
            ToolCalling.Result answer = r.tools() == null ? null : r.tools().parse(c.text());
            if (answer != null && answer.hasCalls()) {
                message.put("content", answer.content());
                message.put("tool_calls", ToolDeltas.calls(answer.calls()));
                finishReason = "tool_calls";
            } else {
                message.put("content", c.text());
            }
            choice.put("message", message);
        } else {
            choice.put("text", c.text());
        }
        choice.put("logprobs", logprobs(r, logprobsJson.visible(tokens, c), 0));
        choice.put("finish_reason", finishReason);
        return choice;
    }

    /// The `logprobs` value of a choice or chunk: null unless the request asked for log-probabilities.
    private Object logprobs(GenerationRequest r, List<Completion.Token> tokens, int textOffset) {
        if (r.logprobs() < 0) {
            return null;
        }
        return r.chat() ? logprobsJson.chat(tokens) : logprobsJson.legacy(tokens, textOffset);
    }

    /// Streams the generation as Server-Sent Events: `data: {chunk}` per piece of text (with the log-probabilities
    /// of the tokens that made it, if asked for), a chunk with the finish reason at the end of each choice, a
    /// usage chunk if asked for, `data: [DONE]`. Choices (`n` > 1) follow one another, each chunk carrying its
    /// choice's `index`. A failed write means the client is gone: the caller cancels the job, which frees the slot
    /// after the current token.
    private void stream(HttpExchange ex, SlotPool.Job job, String id, long createdAt, Outcome outcome)
            throws IOException, InterruptedException {
        GenerationRequest r = job.request;
        Headers h = ex.getResponseHeaders();
        h.set("Content-Type", "text/event-stream; charset=utf-8");
        h.set("Cache-Control", "no-cache");
        h.set("X-Accel-Buffering", "no");
        ex.sendResponseHeaders(200, 0);
        outcome.status = 200;
        OutputStream out = ex.getResponseBody();
        int index = 0;
        int textOffset = 0; // code points of the choice's text sent so far, for the legacy text_offset
        List<Completion.Token> pending = new ArrayList<>();
        // with tools, a choice's text goes through the call parser, which makes content and tool-call deltas
        ToolDeltas deltas = r.tools() == null ? null : new ToolDeltas(r.tools());
        sendRole(out, r, id, createdAt, index);
        while (true) {
            Object e = job.events.take();
            if (e instanceof Completion.Token t) {
                pending.add(t);
            } else if (e instanceof String piece) {
                firstToken(outcome);
                StringBuilder text = new StringBuilder(piece);
                while (job.events.peek() instanceof String) {
                    text.append((String) job.events.poll());
                }
                if (deltas != null) {
                    // the log-probabilities of the tokens so far go with the first delta they produced
                    for (Map<String, Object> delta : deltas.feed(text.toString())) {
                        send(out, chunk(r, id, createdAt, index, delta, logprobs(r, pending, 0), null));
                        pending.clear();
                    }
                    continue;
                }
                Object content = r.chat() ? Map.of("content", text.toString()) : text.toString();
                send(out, chunk(r, id, createdAt, index, content, logprobs(r, pending, textOffset), null));
                textOffset += logprobsJson.codePoints(pending);
                pending.clear();
            } else if (e instanceof SlotPool.Job.ChoiceDone done) {
                sendEnd(out, r, id, createdAt, index, done.completion(), pending, textOffset, deltas);
                index++;
                textOffset = 0;
                pending.clear();
                deltas = r.tools() == null ? null : new ToolDeltas(r.tools());
                sendRole(out, r, id, createdAt, index);
            } else if (e instanceof SlotPool.Job.Finished f) {
                Completion c = f.completion();
                if (job.aborted || c == null || c.stopReason() == Completion.StopReason.CANCELLED) {
                    send(out, ApiException.shuttingDown().body());
                    outcome.note = "aborted";
                    return;
                }
                finished(f, outcome);
                String finish = sendEnd(out, r, id, createdAt, index, c, pending, textOffset, deltas);
                if (r.includeUsage()) {
                    Map<String, Object> last = envelope(id, r.chat() ? "chat.completion.chunk" : "text_completion",
                            createdAt);
                    last.put("choices", List.of());
                    last.put("usage", usage(f));
                    send(out, last);
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                outcome.note = summary(f, finish);
                return;
            } else if (e instanceof SlotPool.Job.Failed failed) {
                ApiException error = failure(failed);
                outcome.note = error.getMessage();
                send(out, error.body());
                return;
            }
        }
    }

    /// A chat choice's first chunk: the assistant's role.
    private void sendRole(OutputStream out, GenerationRequest r, String id, long createdAt, int index)
            throws IOException {
        if (r.chat()) {
            Map<String, Object> delta = new LinkedHashMap<>();
            delta.put("role", "assistant");
            delta.put("content", "");
            send(out, chunk(r, id, createdAt, index, delta, null, null));
        }
    }

    /// A choice's last chunk: its finish reason, with the log-probabilities of tokens whose text never came (text
    /// held back and flushed at the end; the tokens of a stop string are dropped, as their text is). With tools,
    /// the deltas of what the call parser held back come first, and a choice that called ends with `tool_calls`.
    private String sendEnd(OutputStream out, GenerationRequest r, String id, long createdAt, int index, Completion c,
                           List<Completion.Token> pending, int textOffset, ToolDeltas deltas) throws IOException {
        List<Completion.Token> rest = c.stopReason() == Completion.StopReason.STOP_STRING ? List.of() : pending;
        String finishReason = finishReason(c);
        if (deltas != null) {
            for (Map<String, Object> delta : deltas.finish()) {
                send(out, chunk(r, id, createdAt, index, delta, null, null));
            }
            if (deltas.called()) {
                finishReason = "tool_calls";
            }
        }
        send(out, chunk(r, id, createdAt, index, r.chat() ? Map.of() : "", logprobs(r, rest, textOffset),
                finishReason));
        return finishReason;
    }

    /// A `/v1/responses` answer, whole.
    private void respondResponse(HttpExchange ex, SlotPool.Job job, ResponsesApi api, Outcome outcome)
            throws ApiException, IOException, InterruptedException {
        while (true) {
            Object e = job.events.take();
            if (e instanceof String) {
                firstToken(outcome);
            }
            if (e instanceof SlotPool.Job.Finished f) {
                Completion c = f.completion();
                if (job.aborted || c == null || c.stopReason() == Completion.StopReason.CANCELLED) {
                    throw ApiException.shuttingDown();
                }
                finished(f, outcome);
                outcome.status = sendJson(ex, 200, api.complete(f));
                outcome.note = summary(f, api.outcome(f));
                return;
            }
            if (e instanceof SlotPool.Job.Failed failed) {
                throw failure(failed);
            }
        }
    }

    /// A `/v1/responses` answer as its typed events (`event: TYPE` and `data: {...}`); the stream ends after
    /// `response.completed` (or `response.incomplete`, or an `error` event), with no `[DONE]`.
    private void streamResponse(HttpExchange ex, SlotPool.Job job, ResponsesApi api, Outcome outcome)
            throws IOException, InterruptedException {
        Headers h = ex.getResponseHeaders();
        h.set("Content-Type", "text/event-stream; charset=utf-8");
        h.set("Cache-Control", "no-cache");
        h.set("X-Accel-Buffering", "no");
        ex.sendResponseHeaders(200, 0);
        outcome.status = 200;
        OutputStream out = ex.getResponseBody();
        sendEvents(out, api.start());
        while (true) {
            Object e = job.events.take();
            if (e instanceof String piece) {
                firstToken(outcome);
                StringBuilder text = new StringBuilder(piece);
                while (job.events.peek() instanceof String) {
                    text.append((String) job.events.poll());
                }
                sendEvents(out, api.text(text.toString()));
            } else if (e instanceof SlotPool.Job.Finished f) {
                Completion c = f.completion();
                if (job.aborted || c == null || c.stopReason() == Completion.StopReason.CANCELLED) {
                    sendEvents(out, List.of(api.error(ApiException.shuttingDown())));
                    outcome.note = "aborted";
                    return;
                }
                finished(f, outcome);
                sendEvents(out, api.finish(f));
                outcome.note = summary(f, api.outcome(f));
                return;
            } else if (e instanceof SlotPool.Job.Failed failed) {
                ApiException error = failure(failed);
                outcome.note = error.getMessage();
                sendEvents(out, List.of(api.error(error)));
                return;
            }
        }
    }

    private static void sendEvents(OutputStream out, List<Map<String, Object>> events) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Map<String, Object> event : events) {
            sb.append("event: ").append(event.get("type")).append("\ndata: ").append(Json.write(event)).append("\n\n");
        }
        if (!sb.isEmpty()) {
            out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
    }

    private void firstToken(Outcome outcome) {
        if (outcome.firstTokenNanos < 0) {
            outcome.firstTokenNanos = System.nanoTime() - outcome.start;
            metrics.timeToFirstToken.observe(outcome.firstTokenNanos / 1e9);
        }
    }

    /// A local generation ended: counted in the metrics and noted for the access log.
    private void finished(SlotPool.Job.Finished f, Outcome outcome) {
        Completion c = f.completion();
        outcome.promptTokens = f.promptTokens();
        outcome.cachedTokens = f.cachedTokens();
        outcome.completionTokens = f.generatedTokens();
        if (ops.logContent()) {
            outcome.output = c.text();
        }
        for (Completion choice : f.choices()) {
            metrics.generation(choice == f.choices().getFirst() ? f.promptTokens() : 0,
                    choice == f.choices().getFirst() ? f.cachedTokens() : 0, choice.generatedTokens(),
                    choice.generationNanos());
        }
    }

    // ---------------------------------------------------------------- hybrid routing

    /// Reads the request's `route` (`auto`, the default, or `local`) and says whether the request may be
    /// escalated at all: a fallback is configured and the request does not insist on staying here.
    private boolean routing(Map<String, Object> body) throws ApiException {
        Object route = body.get("route");
        if (route != null && !(route instanceof String)) {
            throw ApiException.wrongType("route", "a string ('auto' or 'local')", route);
        }
        if (route != null && !route.equals("auto") && !route.equals("local")) {
            throw ApiException.invalid("route", "invalid_value", "Invalid value for 'route': '" + route
                    + "'; use 'auto' (this server, or its fallback by the server's rules) or 'local' (this server"
                    + " only).");
        }
        return fallback != null && !"local".equals(route);
    }

    private boolean escalates(Outcome outcome, Fallback.Rule rule) {
        return outcome.escalable && fallback.config().rules().contains(rule);
    }

    /// The rules that judge a local answer once it is complete (non-streaming requests only: a streamed answer
    /// has already been sent); with `n` > 1, one failing choice sends the whole request. Null when it stands.
    private Fallback.Rule judge(Outcome outcome, List<Completion> choices) {
        if (!outcome.escalable) {
            return null;
        }
        Fallback f = fallback.config();
        for (Completion c : choices) {
            if (f.rules().contains(Fallback.Rule.SCHEMA_FAILURE) && Routing.asksForJson(outcome.body)
                    && !Routing.isJson(c.text())) {
                return Fallback.Rule.SCHEMA_FAILURE;
            }
            if (f.rules().contains(Fallback.Rule.LOW_CONFIDENCE) && Routing.lowConfidence(c, f)) {
                return Fallback.Rule.LOW_CONFIDENCE;
            }
        }
        return null;
    }

    /// Sends the request to the fallback API and its answer to the client, marked `X-Llamaj-Route: fallback`
    /// (and in `usage.route` when the answer is a JSON completion). The escalation is logged with its reason and
    /// counted; neither the log nor the metrics hold the request's content.
    private void escalate(HttpExchange ex, boolean chat, Outcome outcome, Fallback.Rule rule)
            throws ApiException, IOException, InterruptedException {
        metrics.escalations.inc(rule.label);
        outcome.route = "fallback";
        outcome.escalation = rule.label;
        outcome.output = null;
        if (log != null) {
            log.println("llama: " + outcome.id + " escalated to the fallback: " + rule.label);
        }
        ex.getResponseHeaders().set(ROUTE_HEADER, "fallback");
        boolean stream = Boolean.TRUE.equals(outcome.body.get("stream"));
        FallbackClient.Answer answer;
        try {
            answer = fallback.send(chat ? "chat/completions" : "completions", outcome.body, stream);
        } catch (ApiException e) {
            metrics.fallbackErrors.inc(e.code);
            if (log != null) {
                log.println("llama: " + outcome.id + ": the fallback failed: " + e.code);
            }
            throw e;
        }
        outcome.status = answer.status();
        ex.getResponseHeaders().set("Content-Type", answer.contentType());
        if (answer.stream() != null) {
            try (InputStream in = answer.stream()) {
                ex.sendResponseHeaders(answer.status(), 0);
                OutputStream out = ex.getResponseBody();
                byte[] buffer = new byte[8192];
                for (int n; (n = in.read(buffer)) > 0; ) {
                    out.write(buffer, 0, n);
                    out.flush(); // events as they come
                }
            }
            return;
        }
        Routing.Marked marked = Routing.markRoute(answer.bytes(), rule.label);
        outcome.promptTokens = marked.promptTokens();
        outcome.cachedTokens = -1;
        outcome.completionTokens = marked.completionTokens();
        if (ops.logContent()) {
            outcome.output = marked.text();
        }
        byte[] bytes = marked.bytes();
        ex.sendResponseHeaders(answer.status(), bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            ex.getResponseBody().write(bytes);
        }
    }

    private ApiException failure(SlotPool.Job.Failed failed) {
        if (failed.cause() instanceof ApiException api) {
            return api;
        }
        if (log != null) {
            log.println("llama: generation failed: " + failed.cause());
        }
        return ApiException.internal();
    }

    /// One streaming chunk of choice `index`; `content` is the chat delta (a map) or the completion text.
    private Map<String, Object> chunk(GenerationRequest r, String id, long createdAt, int index, Object content,
                                      Object logprobs, String finishReason) {
        Map<String, Object> chunk = envelope(id, r.chat() ? "chat.completion.chunk" : "text_completion", createdAt);
        Map<String, Object> choice = new LinkedHashMap<>();
        choice.put("index", index);
        choice.put(r.chat() ? "delta" : "text", content);
        choice.put("logprobs", logprobs);
        choice.put("finish_reason", finishReason);
        chunk.put("choices", List.of(choice));
        if (r.includeUsage()) {
            chunk.put("usage", null);
        }
        return chunk;
    }

    private Map<String, Object> envelope(String id, String object, long createdAt) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("object", object);
        m.put("created", createdAt);
        m.put("model", config.modelId());
        return m;
    }

    private static Map<String, Object> usage(SlotPool.Job.Finished f) {
        int completion = f.generatedTokens();
        Map<String, Object> usage = new LinkedHashMap<>();
        usage.put("prompt_tokens", f.promptTokens());
        usage.put("completion_tokens", completion);
        usage.put("total_tokens", f.promptTokens() + completion);
        usage.put("prompt_tokens_details", Map.of("cached_tokens", f.cachedTokens()));
        usage.put("route", "local");
        return usage;
    }

    static String finishReason(Completion c) {
        return switch (c.stopReason()) {
            case END_OF_GENERATION, STOP_STRING -> "stop";
            case MAX_TOKENS, CONTEXT_FULL -> "length";
            case CANCELLED -> null;
        };
    }

    /// The log line's account of a generation, with the finish reason as answered (`tool_calls` included).
    private static String summary(SlotPool.Job.Finished f, String finishReason) {
        return String.format(Locale.ROOT, "prompt %d tokens (%d cached) + %d generated, %s", f.promptTokens(),
                f.cachedTokens(), f.generatedTokens(), finishReason)
                + (f.choices().size() > 1 ? " (" + f.choices().size() + " choices)" : "");
    }

    private static void send(OutputStream out, Object json) throws IOException {
        out.write(("data: " + Json.write(json) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static int sendJson(HttpExchange ex, int status, Object body) throws IOException {
        byte[] bytes = Json.write(body).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.sendResponseHeaders(status, -1);
            return status;
        }
        ex.sendResponseHeaders(status, bytes.length);
        OutputStream out = ex.getResponseBody();
        out.write(bytes);
        out.flush();
        return status;
    }

    /// Sends an error unless a response has already started (then the connection just ends).
    private void trySendError(HttpExchange ex, ApiException e) {
        if (ex.getResponseCode() != -1) {
            return;
        }
        if (shuttingDown) {
            ex.getResponseHeaders().set("Connection", "close");
        }
        try {
            sendJson(ex, e.status, e.body());
        } catch (Throwable ignored) {
            // the client is gone
        }
    }

    /// The status a request ended with, for the metrics and the access log: 499 (nginx's "client closed request")
    /// when the client went away before any answer.
    private static int reportedStatus(HttpExchange ex, Outcome outcome) {
        int status = outcome.status != 0 ? outcome.status : ex.getResponseCode();
        return status > 0 ? status : 499;
    }

    private void logRequest(HttpExchange ex, String method, String path, Outcome outcome, long nanos) {
        int status = outcome.status != 0 ? outcome.status : ex.getResponseCode();
        InetSocketAddress remote = ex.getRemoteAddress();
        if (ops.accessLog() != null) {
            status = reportedStatus(ex, outcome);
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("time", java.time.Instant.now().toString());
            line.put("id", outcome.id);
            line.put("remote", remote == null ? null : remote.getAddress().getHostAddress());
            line.put("method", method);
            line.put("path", path);
            line.put("status", status);
            line.put("route", outcome.route);
            line.put("escalation", outcome.escalation);
            line.put("error", outcome.error);
            putIfKnown(line, "prompt_tokens", outcome.promptTokens);
            putIfKnown(line, "cached_tokens", outcome.cachedTokens);
            putIfKnown(line, "completion_tokens", outcome.completionTokens);
            putMillis(line, "queue_ms", outcome.queueNanos);
            putMillis(line, "ttft_ms", outcome.firstTokenNanos);
            putMillis(line, "total_ms", nanos);
            if (ops.logContent()) {
                line.put("prompt", outcome.prompt);
                line.put("output", outcome.output);
            }
            line.values().removeIf(java.util.Objects::isNull);
            ops.accessLog().println(Json.write(line)); // one println: lines of concurrent requests never mix
            return;
        }
        if (log == null) {
            return;
        }
        log.println(String.format(Locale.ROOT, "llama: %s %s %s %d %.3f s%s",
                remote == null ? "-" : remote.getAddress().getHostAddress(), method, clip(path), status, nanos / 1e9,
                outcome.note == null ? "" : " " + clip(outcome.note)));
    }

    private static void putIfKnown(Map<String, Object> line, String key, int value) {
        if (value >= 0) {
            line.put(key, value);
        }
    }

    private static void putMillis(Map<String, Object> line, String key, long nanos) {
        if (nanos >= 0) {
            line.put(key, Math.round(nanos / 1e4) / 100.0);
        }
    }

    private static String clip(String s) {
        String oneLine = s.replaceAll("[\\p{Cntrl}]", "?");
        return oneLine.length() > 200 ? oneLine.substring(0, 200) + "..." : oneLine;
    }

    private static String randomId() {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        ThreadLocalRandom random = ThreadLocalRandom.current();
        StringBuilder sb = new StringBuilder(24);
        for (int i = 0; i < 24; i++) {
            sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return sb.toString();
    }
}
