package dev.llamaj.cli.server;

import dev.llamaj.cli.Json;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/// Sends an escalated request to the fallback API ([Fallback]) and hands its answer back unchanged.
///
/// Only this class opens outgoing connections, and only when `serve` was given `--fallback-url`. The key goes in
/// the `Authorization` header and nowhere else: no log line or error message contains it, nor the request's
/// content. A fallback that cannot be reached, or does not answer within [Fallback#timeout], is a 502 or 504 in
/// OpenAI's error shape, within that time.
final class FallbackClient implements AutoCloseable {
    private final Fallback config;
    private final HttpClient client;

    FallbackClient(Fallback config) {
        this.config = config;
        this.client = HttpClient.newBuilder().connectTimeout(config.timeout())
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    Fallback config() {
        return config;
    }

    /// The fallback's answer: its status and content type, and its body: whole in `bytes` for a request that
    /// does not stream, else open in `stream` (which the caller must close).
    record Answer(int status, String contentType, byte[] bytes, InputStream stream) {}

    /// POSTs `body` (the client's request, `route` removed, `model` replaced if configured) to `path` below the
    /// base URL and waits for the answer's head (and, when `stream` is false, its whole body) at most the timeout.
    Answer send(String path, Map<String, Object> body, boolean stream) throws ApiException, InterruptedException {
        Map<String, Object> forwarded = new LinkedHashMap<>(body);
        forwarded.remove("route");
        if (config.model() != null) {
            forwarded.put("model", config.model());
        }
        HttpRequest.Builder request = HttpRequest.newBuilder(config.endpoint(path)).timeout(config.timeout())
                .header("Content-Type", "application/json")
                .header("Accept", stream ? "text/event-stream" : "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(Json.write(forwarded), StandardCharsets.UTF_8));
        if (config.key() != null) {
            request.header("Authorization", "Bearer " + config.key());
        }
        // the request's own timeout ends at the answer's head; the future's bounds the whole wait
        CompletableFuture<Answer> pending = stream
                ? client.sendAsync(request.build(), HttpResponse.BodyHandlers.ofInputStream())
                        .thenApply(r -> new Answer(r.statusCode(), contentType(r), null, r.body()))
                : client.sendAsync(request.build(), HttpResponse.BodyHandlers.ofByteArray())
                        .thenApply(r -> new Answer(r.statusCode(), contentType(r), r.body(), null));
        long seconds = config.timeout().toSeconds();
        try {
            return pending.get(config.timeout().toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            pending.cancel(true);
            throw timeout(seconds);
        } catch (InterruptedException e) {
            pending.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof HttpTimeoutException) {
                throw timeout(seconds);
            }
            String why = cause instanceof ConnectException ? "the connection was refused or could not be made"
                    : cause instanceof IOException ? "the connection failed (" + cause.getClass().getSimpleName() + ")"
                    : "the request failed (" + cause.getClass().getSimpleName() + ")";
            throw new ApiException(502, "server_error", null, "fallback_unreachable",
                    "This request was escalated to the fallback API, which could not be reached: " + why + ".");
        }
    }

    private static String contentType(HttpResponse<?> r) {
        return r.headers().firstValue("Content-Type").orElse("application/json");
    }

    private static ApiException timeout(long seconds) {
        return new ApiException(504, "server_error", null, "fallback_timeout",
                "This request was escalated to the fallback API, which did not answer within " + seconds + " s.");
    }

    @Override
    public void close() {
        client.shutdownNow();
    }
}
