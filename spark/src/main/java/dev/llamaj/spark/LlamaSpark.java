package dev.llamaj.spark;

import dev.llamaj.gguf.GGUFFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/// Batch generation over a Spark `Dataset`: every row's prompt (or chat messages) through a GGUF model, the results
/// appended as columns.
///
/// ```java
/// Dataset<Row> prompts = spark.read().json("prompts.jsonl");          // id, prompt (or messages), ...
/// Dataset<Row> out = LlamaSpark.generate(prompts,
///         GenerationOptions.of("/models/model.gguf").withIdColumn("id").withSeed(42).withMaxTokens(128));
/// out.write().parquet("completions");
/// ```
///
/// Each executor JVM loads the model once (memory-mapped from `options.model()`, a path every executor can read) and
/// shares it between its tasks; each task generates `options.sequences()` rows at a time, in order (more than one:
/// batched with the other tasks' rows in the JVM's one batch executor of the model, unless
/// [GenerationOptions#withBatching] turns it off). The result is deterministic: a row's seed comes from its own `seed`
/// column, else from its id ([#rowSeed]), and its tokens do not depend on the rows sharing its batched steps, so a
/// task that Spark runs again (a lost executor, speculation) writes the same rows.
///
/// Rows whose own data is unusable (no prompt, a bad setting, a prompt longer than the context, a role the chat
/// template refuses) do not fail the job: their `error` column says why and the other results are null. Anything
/// else (the model cannot be loaded, the engine fails) fails the task, which Spark retries as usual.
public final class LlamaSpark {
    private LlamaSpark() {}

    /// The columns appended to the input, in this order.
    static final StructField[] RESULT_FIELDS = {
        DataTypes.createStructField("text", DataTypes.StringType, true),
        DataTypes.createStructField("finish_reason", DataTypes.StringType, true),
        DataTypes.createStructField("prompt_tokens", DataTypes.IntegerType, true),
        DataTypes.createStructField("completion_tokens", DataTypes.IntegerType, true),
        DataTypes.createStructField("mean_logprob", DataTypes.DoubleType, true),
        DataTypes.createStructField("min_logprob", DataTypes.DoubleType, true),
        DataTypes.createStructField("model", DataTypes.StringType, false),
        DataTypes.createStructField("model_sha256", DataTypes.StringType, false),
        DataTypes.createStructField("error", DataTypes.StringType, true),
    };

    /// `input` with the result columns appended: `text`, `finish_reason` (`stop` or `length`, as OpenAI names them;
    /// `error` for a row that could not run), `prompt_tokens`, `completion_tokens`, `mean_logprob` and
    /// `min_logprob` (natural log-probabilities of the generated tokens in the distribution the sampler drew from,
    /// as `Completion` reports them; null when none was generated), `model` (the file's name), `model_sha256`, and
    /// `error` (null, or why the row could not run). With a grammar or JSON Schema (the options' or the row's),
    /// the text matches it unless generation stopped early.
    ///
    /// Lazy, as every Dataset transformation: nothing is generated until an action (write, collect, count...).
    /// The schema is checked now.
    ///
    /// @throws IllegalArgumentException naming the column, if the input has no usable `prompt` or `messages`
    ///                                  column, a settings column of the wrong type, no `options.idColumn()`,
    ///                                  already a column of a result's name, or the options' grammar or JSON
    ///                                  Schema does not compile (`jsonSchema: ...`)
    public static Dataset<Row> generate(Dataset<Row> input, GenerationOptions options) {
        StructType schema = input.schema();
        InputColumns columns = InputColumns.resolve(schema, options);
        Grammars.of(options.grammar(), "grammar", options.jsonSchema(), "jsonSchema"); // fails here, not in a task
        String sha256 = options.modelSha256() != null ? options.modelSha256() : driverSha256(options.model());
        StructType out = resultSchema(schema);
        return input.mapPartitions(new GeneratePartition(options, columns, sha256), Encoders.row(out));
    }

    /// `input` followed by the result columns.
    public static StructType resultSchema(StructType input) {
        StructType s = input;
        for (StructField f : RESULT_FIELDS) {
            s = s.add(f);
        }
        return s;
    }

    /// The seed of a row whose id is `id` (a string, or an integer in decimal: `42` and `"42"` give the same seed)
    /// under the global `seed`: the first 8 bytes (big-endian) of the SHA-256 of the global seed (8 bytes,
    /// big-endian) followed by the id's UTF-8 bytes. Stable across JVMs, machines and versions; a null id gives the
    /// global seed itself. Use it to reproduce one row with the plain API:
    /// `Sampler.create(new Sampler.Settings(t, k, p, minP, 1, 64, LlamaSpark.rowSeed(id, 42)))`.
    public static long rowSeed(Object id, long seed) {
        if (id == null) {
            return seed;
        }
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every Java platform provides SHA-256", e);
        }
        for (int shift = 56; shift >= 0; shift -= 8) {
            sha.update((byte) (seed >>> shift));
        }
        byte[] digest = sha.digest(id.toString().getBytes(StandardCharsets.UTF_8));
        long s = 0;
        for (int i = 0; i < 8; i++) {
            s = (s << 8) | (digest[i] & 0xFF);
        }
        return s;
    }

    private record FileVersion(Path path, long size, long modified) {}

    private static final Map<FileVersion, String> DRIVER_HASHES = new ConcurrentHashMap<>();

    /// The model file's SHA-256 if the driver can read the file (computed once per version of the file), so that
    /// executors need not read the whole file again; null when the file is only on the executors.
    private static String driverSha256(String model) {
        Path path = Path.of(model);
        if (!Files.isRegularFile(path) || !Files.isReadable(path)) {
            return null;
        }
        try {
            BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
            FileVersion version = new FileVersion(path.toAbsolutePath(), a.size(), a.lastModifiedTime().toMillis());
            String known = DRIVER_HASHES.get(version);
            if (known != null) {
                return known;
            }
            String sha;
            try (GGUFFile file = GGUFFile.open(path)) {
                sha = file.sha256();
            }
            DRIVER_HASHES.put(version, sha);
            return sha;
        } catch (IOException e) {
            throw new UncheckedIOException("model " + model + ": " + e.getMessage(), e);
        }
    }
}
