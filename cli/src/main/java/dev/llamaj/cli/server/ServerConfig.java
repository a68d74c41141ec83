package dev.llamaj.cli.server;

import dev.llamaj.engine.Pooling;
import java.time.Duration;
import dev.llamaj.engine.PrefixCache;
import java.util.Objects;

/// Settings of an [OpenAiServer]; build one with [#builder()].
///
/// @param host            address to listen on (`127.0.0.1` by default: loopback only)
/// @param port            TCP port; 0 picks a free one
/// @param parallel        generation slots: requests served at the same time, each with its own session (context
///                        and key/value cache) on the one shared model
/// @param contextLength   tokens in each slot's context (prompt and answer together); 0 means the model's default
/// @param queueLimit      requests that may wait for a free slot; beyond, requests are refused with 503
/// @param queueTimeout    how long a request may wait for a free slot before it is refused with 503
/// @param maxBodyBytes    largest request body accepted (413 beyond)
/// @param apiKey          the key clients must send as `Authorization: Bearer KEY`; null for none
/// @param modelId         the model's name in responses and `/v1/models`
/// @param headerTimeout   time a client has to send a whole request (headers and body), counted from its first
///                        byte; a connection that sends nothing is closed after this too
/// @param idleTimeout     how long an idle keep-alive connection stays open
/// @param responseTimeout longest time a response may take (generation and sending); zero for no limit. This is
///                        what closes a connection whose client stops reading
/// @param maxConnections  open connections at most; further connections are closed at once
/// @param shutdownTimeout on shutdown, how long in-flight requests may still run before they are aborted
/// @param prefixCache     reuse the part of a slot's context that a new prompt shares with the previous one
/// @param requestMemory   heap that the bodies of requests being read and parsed may take together, in bytes
///                        (each counts [RequestMemory#cost], about 9 times its size); a request beyond gets 503.
///                        0 for a quarter of the heap
/// @param corsOrigins     origins whose web pages may call the server (`*` for any); empty for none (no CORS)
/// @param pooling         how `/v1/embeddings` pools a text's hidden states; null for the model's own ([Pooling#of])
/// @param batching        with several slots, run their forward passes together in one batch executor (continuous
///                        batching) on all the threads, rather than each slot on its own share of them
/// @param cacheBudget     bytes of prompt blocks shared between the slots ([PrefixCache]); 0 for none, -1 for
///                        [PrefixCache#defaultBudget]. Only with `prefixCache`
public record ServerConfig(String host, int port, int parallel, int contextLength, int queueLimit,
                           Duration queueTimeout, long maxBodyBytes, String apiKey, String modelId,
                           Duration headerTimeout, Duration idleTimeout, Duration responseTimeout,
                           int maxConnections, Duration shutdownTimeout, boolean prefixCache, long requestMemory,
                           java.util.List<String> corsOrigins, Pooling pooling, boolean batching,
                           long cacheBudget) {
    public ServerConfig {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(modelId, "modelId");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port must be 0 to 65535, got " + port);
        }
        if (parallel < 1) {
            throw new IllegalArgumentException("--parallel must be 1 or more, got " + parallel);
        }
        if (contextLength < 0) {
            throw new IllegalArgumentException("--context must be 1 or more, got " + contextLength);
        }
        if (queueLimit < 0) {
            throw new IllegalArgumentException("--queue must be 0 or more, got " + queueLimit);
        }
        if (maxBodyBytes < 1 || maxBodyBytes > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("--max-body must be 1 to " + (Integer.MAX_VALUE - 16) + " bytes, got "
                    + maxBodyBytes);
        }
        if (requestMemory < 0 || (requestMemory > 0 && requestMemory < RequestMemory.cost(maxBodyBytes))) {
            throw new IllegalArgumentException("--request-memory must be at least " + RequestMemory.cost(maxBodyBytes)
                    + " bytes (one body of --max-body " + maxBodyBytes + " bytes while parsed), got " + requestMemory);
        }
        if (maxConnections < 1) {
            throw new IllegalArgumentException("--max-connections must be 1 or more, got " + maxConnections);
        }
        if (apiKey != null && apiKey.isEmpty()) {
            throw new IllegalArgumentException("the API key is empty");
        }
        requireSeconds("--queue-timeout", queueTimeout, false);
        requireSeconds("--header-timeout", headerTimeout, false);
        requireSeconds("--idle-timeout", idleTimeout, false);
        requireSeconds("--response-timeout", responseTimeout, true);
        requireSeconds("--shutdown-timeout", shutdownTimeout, true);
        corsOrigins = corsOrigins == null ? java.util.List.of() : java.util.List.copyOf(corsOrigins);
        corsOrigins.forEach(Cors::validate);
        if (cacheBudget < -1) {
            throw new IllegalArgumentException("--cache-budget must be 0 or more bytes, got " + cacheBudget);
        }
    }

    private static void requireSeconds(String option, Duration d, boolean zeroAllowed) {
        Objects.requireNonNull(d, option);
        if (d.isNegative() || (!zeroAllowed && d.isZero())) {
            throw new IllegalArgumentException(option + " must be " + (zeroAllowed ? "0" : "1") + " second"
                    + (zeroAllowed ? "s" : "") + " or more, got " + d.toSeconds());
        }
    }

    @Override
    public String toString() {
        // never print the key
        return "ServerConfig[host=" + host + ", port=" + port + ", parallel=" + parallel + ", context="
                + contextLength + ", queue=" + queueLimit + ", apiKey=" + (apiKey == null ? "none" : "set") + "]";
    }

    /// Whether the slots' forward passes run together in one batch executor.
    public boolean batched() {
        return batching && parallel > 1;
    }

    public static Builder builder() {
        return new Builder();
    }

    /// Defaults: `127.0.0.1:8080`, 1 slot, the model's context, a queue of 16 waiting at most 60 s, 2 MiB bodies,
    /// no key, 20 s to send a request, 30 s keep-alive, 600 s per response, 128 connections, 10 s to shut down, a
    /// quarter of the heap for request bodies in flight.
    public static final class Builder {
        private String host = "127.0.0.1";
        private int port = 8080;
        private int parallel = 1;
        private int contextLength;
        private int queueLimit = 16;
        private Duration queueTimeout = Duration.ofSeconds(60);
        private long maxBodyBytes = 2L << 20;
        private String apiKey;
        private String modelId = "model";
        private Duration headerTimeout = Duration.ofSeconds(20);
        private Duration idleTimeout = Duration.ofSeconds(30);
        private Duration responseTimeout = Duration.ofSeconds(600);
        private int maxConnections = 128;
        private Duration shutdownTimeout = Duration.ofSeconds(10);
        private boolean prefixCache = true;
        private long requestMemory;
        private java.util.List<String> corsOrigins = java.util.List.of();
        private Pooling pooling;
        private boolean batching = true;
        private long cacheBudget = -1;

        private Builder() {}

        public Builder host(String v) { host = v; return this; }
        public Builder port(int v) { port = v; return this; }
        public Builder parallel(int v) { parallel = v; return this; }
        public Builder contextLength(int v) { contextLength = v; return this; }
        public Builder queueLimit(int v) { queueLimit = v; return this; }
        public Builder queueTimeout(Duration v) { queueTimeout = v; return this; }
        public Builder maxBodyBytes(long v) { maxBodyBytes = v; return this; }
        public Builder apiKey(String v) { apiKey = v; return this; }
        public Builder modelId(String v) { modelId = v; return this; }
        public Builder headerTimeout(Duration v) { headerTimeout = v; return this; }
        public Builder idleTimeout(Duration v) { idleTimeout = v; return this; }
        public Builder responseTimeout(Duration v) { responseTimeout = v; return this; }
        public Builder maxConnections(int v) { maxConnections = v; return this; }
        public Builder shutdownTimeout(Duration v) { shutdownTimeout = v; return this; }
        public Builder prefixCache(boolean v) { prefixCache = v; return this; }
        public Builder requestMemory(long v) { requestMemory = v; return this; }
        public Builder corsOrigins(java.util.List<String> v) { corsOrigins = v; return this; }
        public Builder pooling(Pooling v) { pooling = v; return this; }
        public Builder batching(boolean v) { batching = v; return this; }
        public Builder cacheBudget(long v) { cacheBudget = v; return this; }

        public ServerConfig build() {
            return new ServerConfig(host, port, parallel, contextLength, queueLimit, queueTimeout, maxBodyBytes,
                    apiKey, modelId, headerTimeout, idleTimeout, responseTimeout, maxConnections, shutdownTimeout,
                    prefixCache, requestMemory, corsOrigins, pooling, batching, cacheBudget);
        }
    }
}
