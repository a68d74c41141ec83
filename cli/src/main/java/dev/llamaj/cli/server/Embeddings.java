package dev.llamaj.cli.server;

import dev.llamaj.engine.ContextLengthException;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Pooling;
import dev.llamaj.engine.Session;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/// `POST /v1/embeddings`: the model's embeddings of the inputs ([Session#embed]: final hidden states pooled by
/// `pooling`, unit length), in OpenAI's shape.
///
/// Embeddings run beside the generation slots, on one platform thread of their own with one session (created
/// on the first request, so a server that never embeds pays nothing; its key/value cache holds a slot's context).
/// Requests are computed one at a time, in order; up to `queueLimit` wait, more get 503, and one that waited
/// longer than `queueTimeout` for the thread gets 503 too. They share the processors with the slots.
final class Embeddings implements AutoCloseable {
    /// Inputs per request at most (OpenAI's limit).
    static final int MAX_INPUTS = 2048;

    private final LlamaModel model;
    private final Pooling pooling;
    private final int contextLength;
    private final Duration queueTimeout;
    private final String modelId;
    private final ThreadPoolExecutor worker;
    /// More characters than this cannot fit in the context whatever they are: refused before tokenizing.
    private final long maxChars;
    /// Used on the worker thread only.
    private Session session;

    Embeddings(LlamaModel model, Pooling pooling, int contextLength, int queueLimit, Duration queueTimeout,
               String modelId) {
        this.model = model;
        this.pooling = pooling != null ? pooling : Pooling.of(model);
        this.contextLength = contextLength;
        this.queueTimeout = queueTimeout;
        this.modelId = modelId;
        this.maxChars = dev.llamaj.cli.PromptBound.maxChars(model.tokenizer().vocabulary(), contextLength);
        this.worker = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(Math.max(1, queueLimit)),
                Thread.ofPlatform().name("llamaj-embeddings").daemon(true).factory(),
                new ThreadPoolExecutor.AbortPolicy());
    }

    Pooling pooling() {
        return pooling;
    }

    /// What a request asks for: each input is a `String` or an `int[]` of token ids.
    record Request(List<Object> inputs, boolean base64) {}

    /// Validates the body: `input` (a string, an array of strings, an array of token ids, or an array of such
    /// arrays), `encoding_format` (`float` or `base64`), `dimensions` (only the model's own), `model`, `user`.
    Request parse(Map<String, Object> body) throws ApiException {
        RequestParser.Fields f = new RequestParser.Fields(body, "");
        f.string("model");
        f.string("user");
        String format = f.string("encoding_format");
        if (format != null && !format.equals("float") && !format.equals("base64")) {
            throw ApiException.invalid("encoding_format", "invalid_value", "Invalid value for 'encoding_format': '"
                    + format + "'; use 'float' or 'base64'.");
        }
        Long dimensions = f.integer("dimensions");
        int width = model.config().embeddingLength();
        if (dimensions != null && dimensions != width) {
            throw ApiException.unsupported("dimensions", "This model's embeddings have " + width
                    + " dimensions and cannot be shortened: 'dimensions' may only be " + width + ", got "
                    + dimensions + ".");
        }
        return new Request(inputs(f.get("input")), "base64".equals(format));
    }

    private List<Object> inputs(Object input) throws ApiException {
        if (input == null) {
            throw ApiException.invalid("input", "missing_required_parameter", "You must provide an 'input'.");
        }
        if (input instanceof String s) {
            return List.of(text("input", s));
        }
        if (!(input instanceof List<?> list)) {
            throw ApiException.wrongType("input", "a string or an array", input);
        }
        if (list.isEmpty()) {
            throw ApiException.invalid("input", "'input' is an empty array; give at least one input.");
        }
        // the first element says which of the three array forms this is; the rest must follow it
        List<Object> inputs = new ArrayList<>();
        switch (list.getFirst()) {
            case String _ -> {
                checkCount(list.size());
                for (int i = 0; i < list.size(); i++) {
                    if (!(list.get(i) instanceof String s)) {
                        throw ApiException.wrongType("input[" + i + "]", "a string, like input[0]", list.get(i));
                    }
                    inputs.add(text("input[" + i + "]", s));
                }
            }
            case Number _ -> inputs.add(tokens("input", list));
            case List<?> _ -> {
                checkCount(list.size());
                for (int i = 0; i < list.size(); i++) {
                    if (!(list.get(i) instanceof List<?> ids)) {
                        throw ApiException.wrongType("input[" + i + "]", "an array of token ids, like input[0]",
                                list.get(i));
                    }
                    inputs.add(tokens("input[" + i + "]", ids));
                }
            }
            default -> throw ApiException.wrongType("input[0]", "a string, a token id or an array of token ids",
                    list.getFirst());
        }
        return inputs;
    }

    private static void checkCount(int n) throws ApiException {
        if (n > MAX_INPUTS) {
            throw ApiException.invalid("input", "'input' holds " + n + " inputs; at most " + MAX_INPUTS
                    + " are allowed per request.");
        }
    }

    private String text(String param, String s) throws ApiException {
        if (s.isEmpty()) {
            throw ApiException.invalid(param, "'" + param + "' is an empty string; an input needs some text.");
        }
        if (s.length() > maxChars) {
            throw ApiException.invalid(param, "context_length_exceeded", "'" + param + "' is " + s.length()
                    + " characters, more than the " + contextLength + " tokens this server embeds at most can hold"
                    + " (its context; start it with a larger --context).");
        }
        return s;
    }

    private int[] tokens(String param, List<?> ids) throws ApiException {
        if (ids.isEmpty()) {
            throw ApiException.invalid(param, "'" + param + "' is an empty array of token ids.");
        }
        checkLength(param, ids.size());
        int vocab = model.tokenizer().vocabulary().size();
        int[] tokens = new int[ids.size()];
        for (int i = 0; i < tokens.length; i++) {
            Object id = ids.get(i);
            if (!(id instanceof Long l) || l < 0 || l >= vocab) {
                throw ApiException.invalid(param + "[" + i + "]", "invalid_value", "Invalid token id in '" + param
                        + "[" + i + "]': " + (id instanceof Number ? id : ApiException.describe(id))
                        + "; token ids are integers from 0 to " + (vocab - 1) + ".");
            }
            tokens[i] = (int) (long) l;
        }
        return tokens;
    }

    private void checkLength(String param, int tokens) throws ApiException {
        if (tokens > contextLength) {
            throw ApiException.invalid(param, "context_length_exceeded", "'" + param + "' is " + tokens
                    + " tokens; this server embeds at most " + contextLength + " (its context; start it with a"
                    + " larger --context).");
        }
    }

    /// Computes the embeddings on the worker thread and returns the response body.
    ///
    /// @throws ApiException 503 when the queue is full or the wait too long, 400 for an input too long
    Map<String, Object> run(Request request) throws ApiException, InterruptedException {
        long submitted = System.nanoTime();
        Future<Map<String, Object>> f;
        try {
            f = worker.submit(() -> {
                if (System.nanoTime() - submitted > queueTimeout.toNanos()) {
                    throw ApiException.busy("The embeddings worker did not become free within "
                            + queueTimeout.toSeconds() + " s; retry later.");
                }
                return compute(request);
            });
        } catch (RejectedExecutionException e) {
            throw ApiException.busy("The embeddings worker is busy and its queue is full; retry later.");
        }
        try {
            return f.get();
        } catch (ExecutionException e) {
            switch (e.getCause()) {
                case ApiException api -> throw api;
                case RuntimeException r -> throw r;
                case Error err -> throw err;
                default -> throw new IllegalStateException(e.getCause());
            }
        } catch (InterruptedException e) {
            f.cancel(true); // the worker stops between inputs
            throw e;
        }
    }

    private Map<String, Object> compute(Request request) throws ApiException, InterruptedException {
        if (session == null) {
            try {
                session = model.newSession(contextLength);
            } catch (ContextLengthException e) {
                throw ApiException.busy("Not enough memory for the embeddings worker's context: " + e.getMessage());
            }
        }
        List<Object> data = new ArrayList<>();
        long tokens = 0;
        List<Object> inputs = request.inputs();
        for (int i = 0; i < inputs.size(); i++) {
            if (Thread.interrupted()) {
                throw new InterruptedException();
            }
            int[] ids = inputs.get(i) instanceof String s ? model.encodeForEmbedding(s) : (int[]) inputs.get(i);
            checkLength(inputs.size() == 1 ? "input" : "input[" + i + "]", ids.length);
            float[] embedding = session.embed(ids, pooling);
            tokens += ids.length;
            Map<String, Object> item = new LinkedHashMap<>();
            item.put("object", "embedding");
            item.put("index", i);
            item.put("embedding", request.base64() ? base64(embedding) : floats(embedding));
            data.add(item);
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("object", "list");
        body.put("data", data);
        body.put("model", modelId);
        Map<String, Object> usage = new LinkedHashMap<>();
        usage.put("prompt_tokens", tokens);
        usage.put("total_tokens", tokens);
        body.put("usage", usage);
        return body;
    }

    /// The values as JSON numbers in their shortest float form (`0.123`, not the double `0.12300000339746475`).
    private static List<Object> floats(float[] v) {
        List<Object> out = new ArrayList<>(v.length);
        for (float x : v) {
            out.add(new BigDecimal(Float.toString(x)));
        }
        return out;
    }

    /// OpenAI's base64 form: the float32 values, little-endian, base64-encoded.
    static String base64(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return Base64.getEncoder().encodeToString(b.array());
    }

    @Override
    public void close() {
        worker.shutdownNow(); // interrupts a request between inputs
        try {
            // a session still computing a batch is left to finish alone rather than closed under it
            if (worker.awaitTermination(5, TimeUnit.SECONDS) && session != null) {
                session.close();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
