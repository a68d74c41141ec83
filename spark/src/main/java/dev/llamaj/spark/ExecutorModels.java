package dev.llamaj.spark;

import dev.llamaj.engine.BatchExecutor;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.LoadOptions;
import dev.llamaj.engine.Session;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;

/// The models loaded in this JVM (an executor, or the driver in local mode), one per file and load options,
/// shared by every task the JVM runs.
///
/// Loading maps the file once; the weights are then shared by all the tasks' sessions (a `LlamaModel` is
/// thread-safe). Sessions, whose key/value caches are the other large allocation, are kept between tasks too:
/// a task borrows the sessions it needs and gives them back when it ends. Everything is closed when the JVM exits.
///
/// **Batching.** Tasks that generate several sequences at once borrow sessions of the model's one
/// [BatchExecutor], so that the sequences of all the tasks running in the JVM share each forward pass, as a
/// server's users do. One executor per model rather than per task because the weights are then read once per step
/// for every sequence in the JVM, not once per task: with `spark.executor.cores` 8 and one core per task, eight
/// tasks' sequences cost one read of the weights instead of eight. The executor therefore computes on the JVM's
/// cores ([#jvmCores]), not on one task's, and the tasks' own threads only sample and wait. A row's tokens do not
/// depend on which rows, of its task or another, share its steps (the executor guarantees it), so this keeps
/// Spark's retries and speculative copies writing identical rows.
final class ExecutorModels {
    private ExecutorModels() {}

    private record Key(String path, LoadOptions options) {}

    /// Idle sessions are kept apart by context length and by kind (batch executor's or plain).
    private record Pool(int contextLength, boolean batched) {}

    /// One loaded model with its idle sessions and chat formats.
    static final class Loaded {
        final LlamaModel model;
        final String fileName;
        private volatile String sha256;
        /// The batch executor of this model's batched sessions, started by the first task that wants one.
        private BatchExecutor executor;
        private final Map<Pool, ConcurrentLinkedDeque<Session>> idle = new ConcurrentHashMap<>();
        private final Map<String, ChatFormat> chatFormats = new ConcurrentHashMap<>();
        /// Sessions borrowed and not yet given back (0 whenever no task runs: tests check that none leaks).
        private final AtomicInteger borrowed = new AtomicInteger();

        private Loaded(LlamaModel model, Path path) {
            this.model = model;
            Path name = path.getFileName();
            this.fileName = name == null ? path.toString() : name.toString();
        }

        /// The file's SHA-256, computed on first use (every byte read once) and kept.
        String sha256() {
            String s = sha256;
            if (s == null) {
                synchronized (this) {
                    s = sha256;
                    if (s == null) {
                        s = sha256 = model.file().sha256();
                    }
                }
            }
            return s;
        }

        /// The context a session gets: `requested`, or the model's default for 0.
        int contextLength(int requested) {
            return requested > 0 ? requested : model.defaultContextLength();
        }

        /// An idle session with a cache of `contextLength` tokens, or a new one; `batched`: a session of the
        /// model's batch executor, otherwise a plain one.
        Session borrow(int contextLength, boolean batched) {
            Session s = idle.computeIfAbsent(new Pool(contextLength, batched), _ -> new ConcurrentLinkedDeque<>())
                    .pollFirst();
            if (s == null) {
                s = batched ? batchExecutor().newSession(contextLength) : model.newSession(contextLength);
            }
            borrowed.incrementAndGet();
            return s;
        }

        /// Returns a session for the next task; it must no longer be in use.
        void giveBack(Session session) {
            borrowed.decrementAndGet();
            idle.computeIfAbsent(new Pool(session.contextLength(), session.executor().isPresent()),
                    _ -> new ConcurrentLinkedDeque<>()).offerFirst(session);
        }

        private synchronized BatchExecutor batchExecutor() {
            if (executor == null) {
                executor = model.newBatchExecutor();
            }
            return executor;
        }

        /// The batch executor's counters, or null if no task batched yet.
        synchronized BatchExecutor.Stats batchStats() {
            return executor == null ? null : executor.stats();
        }

        int borrowedSessions() {
            return borrowed.get();
        }

        /// The chat format of `templateSource` (null: the model's own), parsed once.
        ChatFormat chatFormat(String templateSource) {
            String key = templateSource == null ? "" : templateSource;
            return chatFormats.computeIfAbsent(key,
                    _ -> templateSource == null ? ChatFormat.of(model) : ChatFormat.of(model, templateSource));
        }

        private void close() {
            for (ConcurrentLinkedDeque<Session> sessions : idle.values()) {
                for (Session s; (s = sessions.poll()) != null; ) {
                    s.close();
                }
            }
            synchronized (this) {
                if (executor != null) { // after its sessions
                    executor.close();
                }
            }
            model.close();
        }
    }

    private static final Map<Key, Loaded> MODELS = new HashMap<>();
    private static boolean hookInstalled;

    /// The model at `path` loaded with `options`, loading it if this JVM has not yet. Loads are serialized: tasks
    /// that start together wait for the first one's load instead of mapping the file several times.
    ///
    /// @throws UncheckedIOException if the file cannot be loaded (missing, malformed, unsupported)
    static synchronized Loaded get(String path, LoadOptions options) {
        Key key = new Key(path, options);
        Loaded loaded = MODELS.get(key);
        if (loaded == null) {
            Path file = Path.of(path);
            try {
                loaded = new Loaded(LlamaModel.load(file, options), file);
            } catch (IOException e) {
                throw new UncheckedIOException("model " + path + ": " + e.getMessage(), e);
            }
            MODELS.put(key, loaded);
            if (!hookInstalled) {
                Runtime.getRuntime().addShutdownHook(new Thread(ExecutorModels::closeAll, "llamaj-models-close"));
                hookInstalled = true;
            }
        }
        return loaded;
    }

    /// Closes every model and idle session (at JVM exit; tests call it too).
    static synchronized void closeAll() {
        List<Loaded> all = new ArrayList<>(MODELS.values());
        MODELS.clear();
        for (Loaded l : all) {
            l.close();
        }
    }

    /// The cores this JVM gives its tasks: `spark.executor.cores` on a cluster, N of a `local[N]` master, else the
    /// machine's processors (a standalone executor without `spark.executor.cores` takes them all); at least
    /// `taskCpus`. Outside Spark (no `SparkEnv`), `taskCpus`.
    static int jvmCores(int taskCpus) {
        SparkEnv env = SparkEnv.get();
        if (env == null) {
            return taskCpus;
        }
        return Math.max(taskCpus, cores(env.conf(), Runtime.getRuntime().availableProcessors()));
    }

    /// `local`, `local[N]`, `local[*]`, `local[N,F]`, `local[*,F]` (not `local-cluster[...]`, whose executors are
    /// separate JVMs with `spark.executor.cores`).
    private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\d+|\\*)(?:,\\d+)?])?");

    static int cores(SparkConf conf, int processors) {
        Matcher local = LOCAL.matcher(conf.get("spark.master", ""));
        if (local.matches()) {
            String n = local.group(1);
            return n == null ? 1 : n.equals("*") ? processors : Integer.parseInt(n);
        }
        return conf.getInt("spark.executor.cores", processors);
    }

    /// The batch executors' counters, summed over the models (tests read them to see that steps were shared).
    static synchronized BatchExecutor.Stats batchStats() {
        long steps = 0;
        long tokens = 0;
        long decode = 0;
        long prompt = 0;
        for (Loaded l : MODELS.values()) {
            BatchExecutor.Stats s = l.batchStats();
            if (s != null) {
                steps += s.steps();
                tokens += s.tokens();
                decode += s.decodeTokens();
                prompt += s.promptTokens();
            }
        }
        return new BatchExecutor.Stats(steps, tokens, decode, prompt);
    }

    /// Sessions borrowed from all the models and not given back.
    static synchronized int borrowedSessions() {
        int n = 0;
        for (Loaded l : MODELS.values()) {
            n += l.borrowedSessions();
        }
        return n;
    }
}
