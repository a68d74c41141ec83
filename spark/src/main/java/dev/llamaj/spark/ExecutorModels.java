package dev.llamaj.spark;

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

/// The models loaded in this JVM (an executor, or the driver in local mode), one per file and load options,
/// shared by every task the JVM runs.
///
/// Loading maps the file once; the weights are then shared by all the tasks' sessions (a `LlamaModel` is
/// thread-safe). Sessions, whose key/value caches are the other large allocation, are kept between tasks too:
/// a task borrows the sessions it needs and gives them back when it ends. Everything is closed when the JVM exits.
final class ExecutorModels {
    private ExecutorModels() {}

    private record Key(String path, LoadOptions options) {}

    /// One loaded model with its idle sessions and chat formats.
    static final class Loaded {
        final LlamaModel model;
        final String fileName;
        private volatile String sha256;
        private final Map<Integer, ConcurrentLinkedDeque<Session>> idle = new ConcurrentHashMap<>();
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

        /// An idle session with a cache of `contextLength` tokens, or a new one.
        Session borrow(int contextLength) {
            Session s = idle.computeIfAbsent(contextLength, _ -> new ConcurrentLinkedDeque<>()).pollFirst();
            if (s == null) {
                s = model.newSession(contextLength);
            }
            borrowed.incrementAndGet();
            return s;
        }

        /// Returns a session for the next task; it must no longer be in use.
        void giveBack(Session session) {
            borrowed.decrementAndGet();
            idle.computeIfAbsent(session.contextLength(), _ -> new ConcurrentLinkedDeque<>()).offerFirst(session);
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

    /// Sessions borrowed from all the models and not given back.
    static synchronized int borrowedSessions() {
        int n = 0;
        for (Loaded l : MODELS.values()) {
            n += l.borrowedSessions();
        }
        return n;
    }
}
