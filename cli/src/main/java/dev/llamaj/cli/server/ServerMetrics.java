package dev.llamaj.cli.server;

import java.util.Set;
import java.util.function.DoubleSupplier;

/// What `GET /metrics` reports: the families of [Metrics] this server keeps, and the points where requests record
/// into them. Names follow Prometheus' conventions (`llamaj_` prefix, base units: seconds and tokens, `_total` for
/// counters).
final class ServerMetrics {
    /// Time to first token and request durations: from 5 ms (a cached prompt on a tiny model) to 10 minutes.
    private static final double[] SECONDS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
            300, 600};
    /// Time per generated token: 1 ms (over 1000 tokens/s) to 2 s.
    private static final double[] TOKEN_SECONDS = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15,
            0.2, 0.3, 0.5, 1, 2};

    /// Endpoints named in the `endpoint` label; any other path counts as `other`, so that a client probing random
    /// URLs cannot grow the label set without bound.
    private static final Set<String> ENDPOINTS = Set.of("/v1/chat/completions", "/v1/completions", "/v1/models",
            "/v1/embeddings", "/v1/responses", "/health", "/ready", "/metrics");

    final Metrics registry = new Metrics();
    final Metrics.Counter requests;
    final Metrics.Counter promptTokens;
    final Metrics.Counter cachedTokens;
    final Metrics.Counter generatedTokens;
    final Metrics.Histogram timeToFirstToken;
    final Metrics.Histogram timePerToken;
    final Metrics.Histogram queueWait;
    final Metrics.Histogram requestDuration;
    final Metrics.Counter escalations;
    final Metrics.Counter fallbackErrors;
    private final TokenRate rate = new TokenRate();

    /// @param slots        generation slots
    /// @param busy         slots generating now
    /// @param queued       requests waiting for a slot
    /// @param kvTokens     tokens held in the slots' key/value caches
    /// @param kvCapacity   tokens the slots' caches can hold together
    /// @param ready        1 once the model is loaded and warmed and the server not draining, else 0
    /// @param reasons      escalation reasons in force (counted from 0 from the start, so that dashboards see
    ///                     them before the first escalation)
    ServerMetrics(int slots, DoubleSupplier busy, DoubleSupplier queued, DoubleSupplier kvTokens, long kvCapacity,
                  DoubleSupplier ready, Set<String> reasons) {
        requests = registry.counter("llamaj_requests_total", "HTTP requests answered, by endpoint and status code.",
                "endpoint", "status");
        registry.gauge("llamaj_ready", "1 when the model is loaded and warmed and the server accepts requests.",
                ready);
        registry.gauge("llamaj_slots", "Generation slots (requests generated at the same time).", () -> slots);
        registry.gauge("llamaj_slots_busy", "Slots generating now.", busy);
        registry.gauge("llamaj_queue_depth", "Requests waiting for a free slot.", queued);
        registry.gauge("llamaj_kv_cache_tokens", "Tokens held in the slots' key/value caches.", kvTokens);
        registry.gauge("llamaj_kv_cache_capacity_tokens", "Tokens the slots' key/value caches can hold together.",
                () -> kvCapacity);
        registry.gauge("llamaj_kv_cache_usage_ratio", "Share of the key/value cache capacity in use (0 to 1).",
                () -> kvCapacity == 0 ? 0 : kvTokens.getAsDouble() / kvCapacity);
        promptTokens = registry.counter("llamaj_prompt_tokens_total", "Prompt tokens of completed requests.");
        cachedTokens = registry.counter("llamaj_prompt_tokens_cached_total",
                "Prompt tokens reused from a slot's key/value cache or copied from the shared prefix cache instead"
                        + " of computed.");
        generatedTokens = registry.counter("llamaj_generated_tokens_total", "Tokens generated.");
        registry.gauge("llamaj_generation_tokens_per_second",
                "Tokens generated per second of generation time, over the requests finished in the last minute.",
                rate::perSecond);
        timeToFirstToken = registry.histogram("llamaj_time_to_first_token_seconds",
                "From the request's arrival to its first generated text.", SECONDS);
        timePerToken = registry.histogram("llamaj_time_per_output_token_seconds",
                "Generation time per token after the first (each token of a request counts its request's mean).",
                TOKEN_SECONDS);
        queueWait = registry.histogram("llamaj_queue_wait_seconds", "Time requests waited for a free slot.",
                SECONDS);
        requestDuration = registry.histogram("llamaj_request_duration_seconds",
                "Completion requests from arrival to the last byte of the answer.", SECONDS);
        escalations = registry.counter("llamaj_escalations_total",
                "Requests sent to the fallback API, by the rule that sent them.", "reason");
        for (String r : reasons) {
            escalations.add(0, r);
        }
        fallbackErrors = registry.counter("llamaj_fallback_errors_total",
                "Escalations the fallback API did not answer: unreachable, timeout.", "kind");
    }

    /// With batched slots: the tokens per batched forward step since the start (how many slots share a step, plus
    /// prompt chunks), from the batch executor.
    void batchSteps(DoubleSupplier tokensPerStep) {
        registry.gauge("llamaj_batch_tokens_per_step",
                "Tokens per batched forward step since the start (slots sharing a step, plus prompt chunks).",
                tokensPerStep);
    }

    /// The `endpoint` label of a request path.
    static String endpoint(String path) {
        if (path.length() > 1 && path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        if (path.startsWith("/v1/models/")) {
            return "/v1/models";
        }
        return ENDPOINTS.contains(path) ? path : "other";
    }

    /// A finished local generation.
    void generation(int prompt, int cached, int generated, long generationNanos) {
        promptTokens.add(prompt);
        cachedTokens.add(cached);
        generatedTokens.add(generated);
        if (generated > 1) {
            timePerToken.observe(generationNanos / 1e9 / (generated - 1), generated - 1);
        }
        rate.add(generated, generationNanos);
    }

    /// Generated tokens over generation time, for the requests of the last 60 one-second buckets.
    private static final class TokenRate {
        private final long[] tokens = new long[60];
        private final long[] nanos = new long[60];
        private final long[] second = new long[60];

        synchronized void add(long generated, long generationNanos) {
            int i = bucket(System.nanoTime() / 1_000_000_000L);
            tokens[i] += generated;
            nanos[i] += generationNanos;
        }

        private int bucket(long now) {
            int i = (int) Math.floorMod(now, 60L);
            if (second[i] != now) {
                second[i] = now;
                tokens[i] = 0;
                nanos[i] = 0;
            }
            return i;
        }

        synchronized double perSecond() {
            long now = System.nanoTime() / 1_000_000_000L;
            long t = 0;
            long n = 0;
            for (int i = 0; i < 60; i++) {
                if (now - second[i] < 60) {
                    t += tokens[i];
                    n += nanos[i];
                }
            }
            return n == 0 ? 0 : t * 1e9 / n;
        }
    }
}
