package dev.llamaj.spark;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.template.Message;
import java.io.Serial;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;

/// The executor side of [LlamaSpark#generate]: one partition's rows in, the same rows with the results appended
/// out, in the same order.
///
/// The task takes the JVM's shared model ([ExecutorModels]) and borrows `sequences` sessions from it. With one
/// sequence the rows are generated on the task's own thread, one after the other; with more, a small pool of
/// threads generates up to `sequences` rows at once while the task's thread hands back the finished rows in input
/// order (a window of twice that many rows is read ahead). Those sessions are, with batching, the model's batch
/// executor's, whose steps compute them together with the other tasks' on the JVM's cores (the pool's threads only
/// sample); without, plain sessions each on its share of the task's cores. Whatever way the task ends (done,
/// failed, killed), the sessions go back to the model for the next task.
final class GeneratePartition implements MapPartitionsFunction<Row, Row> {
    @Serial
    private static final long serialVersionUID = 1L;

    private final GenerationOptions options;
    private final InputColumns columns;
    /// The driver's hash of the model file, or null when the executors compute it (once per JVM).
    private final String modelSha256;

    GeneratePartition(GenerationOptions options, InputColumns columns, String modelSha256) {
        this.options = options;
        this.columns = columns;
        this.modelSha256 = modelSha256;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> input) {
        if (!input.hasNext()) { // filters leave many partitions empty: they need no model and no session
            return input;
        }
        TaskContext task = TaskContext.get();
        int cpus = task != null ? task.cpus() : 1;
        ExecutorModels.Loaded loaded = ExecutorModels.get(options.model(),
                options.loadOptions(cpus, options.batched() ? ExecutorModels.jvmCores(cpus) : cpus));
        Rows rows = new Rows(input, loaded, modelSha256 != null ? modelSha256 : loaded.sha256());
        if (task != null) {
            task.addTaskCompletionListener((TaskCompletionListener) _ -> rows.close());
        }
        return rows;
    }

    /// The output iterator of one task.
    private final class Rows implements Iterator<Row>, AutoCloseable {
        private final Iterator<Row> input;
        private final ExecutorModels.Loaded loaded;
        private final String sha256;
        private final BlockingQueue<Session> sessions;
        private final ExecutorService pool;
        private final ArrayDeque<Future<Row>> window = new ArrayDeque<>();
        private final AtomicBoolean closed = new AtomicBoolean();

        Rows(Iterator<Row> input, ExecutorModels.Loaded loaded, String sha256) {
            this.input = input;
            this.loaded = loaded;
            this.sha256 = sha256;
            int n = options.sequences();
            int context = loaded.contextLength(options.contextLength());
            this.sessions = new ArrayBlockingQueue<>(n);
            try {
                for (int i = 0; i < n; i++) {
                    sessions.add(loaded.borrow(context, options.batched()));
                }
            } catch (RuntimeException e) { // no heap for one more key/value cache: keep none
                for (Session s; (s = sessions.poll()) != null; ) {
                    loaded.giveBack(s);
                }
                throw e;
            }
            AtomicInteger count = new AtomicInteger();
            this.pool = n == 1 ? null : Executors.newFixedThreadPool(n, r -> {
                Thread t = new Thread(r, "llamaj-spark-sequence-" + count.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
        }

        @Override
        public boolean hasNext() {
            if (pool == null) {
                if (input.hasNext()) {
                    return true;
                }
                close();
                return false;
            }
            while (window.size() < 2 * options.sequences() && input.hasNext()) {
                Row row = input.next();
                window.addLast(pool.submit(() -> generate(row)));
            }
            if (window.isEmpty()) {
                close();
                return false;
            }
            return true;
        }

        @Override
        public Row next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            if (pool == null) {
                return generate(input.next());
            }
            try {
                return window.pollFirst().get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted: the task was killed");
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException r) {
                    throw r;
                }
                if (e.getCause() instanceof Error err) {
                    throw err;
                }
                throw new IllegalStateException(e.getCause());
            }
        }

        /// One row through a session of this task's (there is always one free: at most `sequences` rows run).
        private Row generate(Row row) {
            Session session = sessions.poll();
            if (session == null) {
                throw new IllegalStateException("no free session: more rows in flight than sequences");
            }
            try {
                return GeneratePartition.this.generate(row, session, loaded, sha256);
            } finally {
                sessions.add(session);
            }
        }

        /// Stops the pool (interrupting rows in progress, which then stop at their next token) and gives the
        /// sessions back to the model. Idempotent.
        @Override
        public void close() {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            if (pool != null) {
                pool.shutdownNow();
                try {
                    if (!pool.awaitTermination(1, TimeUnit.MINUTES)) {
                        return; // a row is still running: its sessions cannot be reused safely
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            for (Session s; (s = sessions.poll()) != null; ) {
                loaded.giveBack(s);
            }
        }
    }

    /// `row` followed by its results.
    private Row generate(Row row, Session session, ExecutorModels.Loaded loaded, String sha256) {
        int width = columns.width();
        Object[] values = new Object[width + LlamaSpark.RESULT_FIELDS.length];
        for (int i = 0; i < width; i++) {
            values[i] = row.get(i);
        }
        values[width + 6] = loaded.fileName;
        values[width + 7] = sha256;
        try {
            int[] prompt = prompt(row, session, loaded);
            Grammar grammar = grammar(row);
            Sampler sampler = Sampler.create(settings(row),
                    grammar == null ? null : grammar.newConstraint(loaded.model.tokenizer()));
            Completion c = generate(session, prompt, maxTokens(row), sampler, stops(row));
            values[width] = c.text();
            values[width + 1] = switch (c.stopReason()) {
                case END_OF_GENERATION, STOP_STRING -> "stop";
                case MAX_TOKENS, CONTEXT_FULL -> "length";
                case CANCELLED -> throw new AssertionError("handled by generate");
            };
            values[width + 2] = c.promptTokens();
            values[width + 3] = c.generatedTokens();
            values[width + 4] = c.generatedTokens() == 0 ? null : c.meanLogprob();
            values[width + 5] = c.generatedTokens() == 0 ? null : (double) c.minLogprob();
        } catch (IllegalArgumentException e) { // this row's own data: a bad setting, prompt, role, grammar, length
            values[width + 1] = "error";
            values[width + 8] = e.getMessage();
        }
        return RowFactory.create(values);
    }

    /// Generates from `prompt` in `session`, emptied first: rows never share context, so a row's output depends
    /// only on its own prompt, settings and seed, not on which rows ran before it in the same session.
    /// `maxTokens` -1 runs until the context is full.
    ///
    /// @throws IllegalArgumentException if the prompt is empty or does not fit in the context
    /// @throws CancellationException    if the thread was interrupted (the task is being killed): a row cut short
    ///                                  must not be written as if it had finished
    private static Completion generate(Session session, int[] prompt, int maxTokens, Sampler sampler,
                                       List<String> stops) {
        session.reset();
        Completion c = session.generate(prompt, maxTokens < 0 ? session.contextLength() : maxTokens, sampler,
                stops, _ -> {});
        if (c.stopReason() == Completion.StopReason.CANCELLED) {
            throw new CancellationException("interrupted: the task was killed");
        }
        return c;
    }

    /// The grammar of the row's `grammar` or `json_schema` column, else the options', or null.
    private Grammar grammar(Row row) {
        String gbnf = columns.grammar() >= 0 && !row.isNullAt(columns.grammar())
                ? row.getString(columns.grammar()) : null;
        String schema = columns.jsonSchema() >= 0 && !row.isNullAt(columns.jsonSchema())
                ? row.getString(columns.jsonSchema()) : null;
        if (gbnf != null && schema != null) {
            throw new IllegalArgumentException("grammar and json_schema exclude each other: give one");
        }
        if (gbnf != null || schema != null) {
            return Grammars.of(gbnf, "grammar", schema, "json_schema");
        }
        return Grammars.of(options.grammar(), "grammar", options.jsonSchema(), "jsonSchema");
    }

    /// The row's prompt tokens: its `messages` rendered with the chat template when present, else its `prompt`
    /// with BOS when the vocabulary asks for one.
    private int[] prompt(Row row, Session session, ExecutorModels.Loaded loaded) {
        if (columns.messages() >= 0 && !row.isNullAt(columns.messages())) {
            List<Row> list = row.getList(columns.messages());
            List<Message> messages = new ArrayList<>(list.size());
            for (int i = 0; i < list.size(); i++) {
                Row m = list.get(i);
                if (m == null || m.isNullAt(columns.role()) || m.isNullAt(columns.content())) {
                    throw new IllegalArgumentException("messages[" + i + "]: role and content are required");
                }
                messages.add(new Message(m.getString(columns.role()), m.getString(columns.content())));
            }
            if (messages.isEmpty()) {
                throw new IllegalArgumentException("messages is empty");
            }
            ChatFormat chat;
            try {
                chat = loaded.chatFormat(options.chatTemplateSource());
            } catch (ChatFormat.NoTemplateException e) {
                throw new IllegalArgumentException(e.getMessage() + ": give one with "
                        + "GenerationOptions.withChatTemplate (chatml, llama3, plain or Jinja source)", e);
            }
            return chat.render(messages, true);
        }
        if (columns.prompt() < 0 || row.isNullAt(columns.prompt())) {
            throw new IllegalArgumentException(columns.messages() >= 0 ? "both prompt and messages are null"
                    : "prompt is null");
        }
        session.reset(); // BOS goes at the start of an empty context
        return session.encode(row.getString(columns.prompt()));
    }

    private int maxTokens(Row row) {
        if (columns.maxTokens() < 0 || row.isNullAt(columns.maxTokens())) {
            return options.maxTokens();
        }
        long v = ((Number) row.get(columns.maxTokens())).longValue();
        if (v < -1 || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("max_tokens must be -1 (until the context is full) or more, got " + v);
        }
        return (int) v;
    }

    private Sampler.Settings settings(Row row) {
        long seed;
        if (columns.seed() >= 0 && !row.isNullAt(columns.seed())) {
            seed = ((Number) row.get(columns.seed())).longValue();
        } else {
            seed = LlamaSpark.rowSeed(columns.id() >= 0 ? row.get(columns.id()) : null, options.seed());
        }
        long topK = integer(row, columns.topK(), options.topK());
        if (topK < 0 || topK > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("top_k must be 0 or more, got " + topK);
        }
        float temperature = number(row, columns.temperature(), options.temperature());
        float topP = number(row, columns.topP(), options.topP());
        float minP = number(row, columns.minP(), options.minP());
        float penalty = number(row, columns.repeatPenalty(), options.repeatPenalty());
        float presence = number(row, columns.presencePenalty(), options.presencePenalty());
        float frequency = number(row, columns.frequencyPenalty(), options.frequencyPenalty());
        if (!(presence >= -2 && presence <= 2)) {
            throw new IllegalArgumentException("presence_penalty must be between -2 and 2, got " + presence);
        }
        if (!(frequency >= -2 && frequency <= 2)) {
            throw new IllegalArgumentException("frequency_penalty must be between -2 and 2, got " + frequency);
        }
        try {
            return new Sampler.Settings(temperature, (int) topK, topP, minP, penalty, options.repeatLastN(), seed)
                    .withPenalties(presence, frequency).withLogitBias(logitBias(row));
        } catch (IllegalArgumentException e) { // the sampler's words are "top-p", "repeat penalty": name the column
            throw new IllegalArgumentException(e.getMessage().replace("top-p", "top_p").replace("min-p", "min_p")
                    .replace("repeat penalty", "repeat_penalty").replace("logit bias", "logit_bias"), e);
        }
    }

    /// The row's `logit_bias` map, else the options'. A token outside the vocabulary is refused when generation
    /// starts (`logit bias: token N is outside the vocabulary`).
    private Map<Integer, Float> logitBias(Row row) {
        if (columns.logitBias() < 0 || row.isNullAt(columns.logitBias())) {
            return options.logitBias();
        }
        Map<Integer, Float> bias = new HashMap<>();
        for (Map.Entry<Object, Object> e : row.<Object, Object>getJavaMap(columns.logitBias()).entrySet()) {
            long token = ((Number) e.getKey()).longValue();
            if (token < 0 || token > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("logit_bias: token id must be 0 or more, got " + token);
            }
            if (e.getValue() == null) {
                throw new IllegalArgumentException("logit_bias: the bias of token " + token + " is null");
            }
            bias.put((int) token, ((Number) e.getValue()).floatValue());
        }
        return bias;
    }

    private List<String> stops(Row row) {
        if (columns.stop() < 0 || row.isNullAt(columns.stop())) {
            return options.stop();
        }
        List<String> stops = row.getList(columns.stop());
        for (String s : stops) {
            if (s == null || s.isEmpty()) {
                throw new IllegalArgumentException("stop: a stop string is empty or null");
            }
        }
        return stops;
    }

    private static long integer(Row row, int column, long otherwise) {
        return column < 0 || row.isNullAt(column) ? otherwise : ((Number) row.get(column)).longValue();
    }

    private static float number(Row row, int column, float otherwise) {
        return column < 0 || row.isNullAt(column) ? otherwise : ((Number) row.get(column)).floatValue();
    }
}
