package dev.llamaj.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.engine.BatchExecutor;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.template.Message;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// Spark's local mode on stories260K: two worker threads (`local[2,3]`: a task may fail twice before the job
/// does), one session for the whole class since Spark takes seconds to start.
///
/// Rows generated with batching (more than one sequence, the default) are compared with sessions of a batch
/// executor, and rows generated without (one sequence, or `withBatching(false)`) with plain sessions: the two
/// kinds of session differ in rounding (other kernels), and each row must equal what the plain Java API gives it
/// through the same kind of session.
class LlamaSparkTest {
    private static final String[] STARTS = {
        "Once upon a time", "The little dog", "Lily wanted to", "One day, a big", "Tom and his mom",
        "The sun was", "There was a girl who", "The cat saw", "Max liked to play", "In the park,",
    };
    private static final long SEED = 7;

    private static Path modelPath;
    private static SparkSession spark;
    private static LlamaModel model;
    /// The test's own executor: the reference for batched rows (its sessions run here one row at a time).
    private static BatchExecutor batch;

    @BeforeAll
    static void start() throws Exception {
        modelPath = SharedData.require("models/stories260K.gguf");
        model = LlamaModel.load(modelPath, 1);
        batch = model.newBatchExecutor();
        spark = SparkSession.builder().master("local[2,3]").appName("LlamaSparkTest")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .getOrCreate();
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
        if (batch != null) {
            batch.close();
        }
        if (model != null) {
            model.close();
        }
        ExecutorModels.closeAll();
    }

    private static GenerationOptions options() {
        return GenerationOptions.of(modelPath.toString()).withIdColumn("id").withSeed(SEED).withThreads(1);
    }

    /// 300 rows: id, prompt, max_tokens (6 to 16), on every fifth row the stop string ".", and on rows 1, 51,
    /// 101... temperature 0 (greedy).
    private static Dataset<Row> prompts() {
        StructType schema = new StructType()
                .add("id", DataTypes.LongType)
                .add("prompt", DataTypes.StringType)
                .add("max_tokens", DataTypes.IntegerType)
                .add("stop", DataTypes.createArrayType(DataTypes.StringType))
                .add("temperature", DataTypes.DoubleType);
        List<Row> rows = new ArrayList<>();
        for (long id = 0; id < 300; id++) {
            rows.add(RowFactory.create(id, STARTS[(int) (id % STARTS.length)], 6 + (int) (id % 11),
                    id % 5 == 0 ? List.of(".") : null, greedy(id) ? 0.0 : null));
        }
        return spark.createDataFrame(rows, schema).repartition(6);
    }

    private static boolean greedy(long id) {
        return id % 50 == 1;
    }

    private static Map<Long, Row> byId(Dataset<Row> results) {
        Map<Long, Row> map = new TreeMap<>();
        for (Row r : results.collectAsList()) {
            map.put(r.getLong(r.fieldIndex("id")), r);
        }
        return map;
    }

    @Test
    void everyRowEqualsThePlainApiWithTheRowsSeed() {
        // two sequences per task without batching: plain sessions, each on its own thread
        Map<Long, Row> results = byId(LlamaSpark.generate(prompts(), options().withSequences(2).withBatching(false)));
        assertThat(results).hasSize(300);
        try (Session session = model.newSession()) {
            checkAgainstTheApi(results, session);
        }
    }

    @Test
    void batchedRowsEqualRowsRunOneAtATimeThroughAnExecutor() {
        BatchExecutor.Stats before = ExecutorModels.batchStats();
        // four sequences per task, two tasks at once: their sessions share the JVM's one executor
        Map<Long, Row> results = byId(LlamaSpark.generate(prompts(), options().withSequences(4)));
        BatchExecutor.Stats after = ExecutorModels.batchStats();
        assertThat(results).hasSize(300);
        long steps = after.steps() - before.steps();
        long decodeTokens = after.decodeTokens() - before.decodeTokens();
        assertThat(steps).as("the rows ran through the shared executor").isPositive();
        assertThat((double) decodeTokens / steps).as("generated tokens per step: rows shared steps")
                .isGreaterThan(1.5);
        try (Session session = batch.newSession()) { // alone in its executor: every step holds this row only
            checkAgainstTheApi(results, session);
        }
    }

    /// Checks every row of [#prompts] against `session` generating that row alone, with the row's seed.
    private static void checkAgainstTheApi(Map<Long, Row> results, Session session) {
        Set<String> continuationsOfOneStart = new HashSet<>();
        for (Map.Entry<Long, Row> e : results.entrySet()) {
            long id = e.getKey();
            Row r = e.getValue();
            String prompt = STARTS[(int) (id % STARTS.length)];
            int maxTokens = 6 + (int) (id % 11);
            List<String> stops = id % 5 == 0 ? List.of(".") : List.of();
            session.reset();
            Sampler.Settings settings = Sampler.Settings.defaults(LlamaSpark.rowSeed(id, SEED));
            if (greedy(id)) {
                settings = new Sampler.Settings(0f, 40, 0.95f, 0.05f, 1f, 64, settings.seed());
            }
            Sampler sampler = Sampler.create(settings);
            Completion c = session.generate(session.encode(prompt), maxTokens, sampler, stops, _ -> {});
            assertThat(r.<String>getAs("error")).as("row %d", id).isNull();
            assertThat(r.<String>getAs("text")).as("row %d", id).isEqualTo(c.text());
            assertThat(r.<Integer>getAs("prompt_tokens")).isEqualTo(c.promptTokens());
            assertThat(r.<Integer>getAs("completion_tokens")).as("row %d", id).isEqualTo(c.generatedTokens());
            assertThat(r.<String>getAs("finish_reason")).as("row %d", id).isEqualTo(
                    switch (c.stopReason()) {
                        case END_OF_GENERATION, STOP_STRING -> "stop";
                        default -> "length";
                    });
            assertThat(r.<String>getAs("model")).isEqualTo("stories260K.gguf");
            assertThat(r.<String>getAs("model_sha256")).isEqualTo(model.file().sha256());
            if (id % STARTS.length == 1) { // 30 rows with the same prompt and no stop string
                continuationsOfOneStart.add(c.text());
            }
            if (greedy(id)) { // greedy log-probabilities are the model's own: rescoring the tokens agrees
                checkLogprobs(session.tokens(), c.promptTokens(), c.generatedTokens(), r);
            } else {
                assertThat(r.<Double>getAs("mean_logprob")).as("row %d", id)
                        .isCloseTo(c.meanLogprob(), within(1e-9))
                        .isBetween(r.<Double>getAs("min_logprob"), 0.0);
            }
        }
        // the id seeds the row: the same prompt gives different stories
        assertThat(continuationsOfOneStart).hasSizeGreaterThan(15);
    }

    /// Computes the mean and minimum log-probability of `tokens[promptTokens..]` by running the whole sequence
    /// through a fresh session with a logits listener, independently of the generation loop.
    private static void checkLogprobs(int[] tokens, int promptTokens, int generated, Row r) {
        assertThat(generated).isPositive();
        double[] lp = new double[tokens.length];
        try (Session s = model.newSession()) {
            s.ingest(tokens, (i, logits) -> {
                if (i + 1 < tokens.length) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (float v : logits) {
                        max = Math.max(max, v);
                    }
                    double sum = 0;
                    for (float v : logits) {
                        sum += Math.exp(v - max);
                    }
                    lp[i + 1] = logits[tokens[i + 1]] - max - Math.log(sum);
                }
            });
        }
        double mean = 0;
        double min = 0;
        for (int i = promptTokens; i < promptTokens + generated; i++) {
            mean += lp[i] / generated;
            min = Math.min(min, lp[i]);
        }
        assertThat(r.<Double>getAs("mean_logprob")).isCloseTo(mean, within(1e-3));
        assertThat(r.<Double>getAs("min_logprob")).isCloseTo(min, within(1e-3));
        assertThat(r.<Double>getAs("min_logprob")).isLessThanOrEqualTo(r.<Double>getAs("mean_logprob"));
    }

    /// Counts the injected failures (local mode: the tasks run in this JVM).
    static final AtomicInteger INJECTED = new AtomicInteger();

    @Test
    void aTaskThatFailsIsRetriedWithIdenticalRows() {
        GenerationOptions options = options().withMaxTokens(12).withSequences(2); // batched
        Dataset<Row> input = prompts().drop("max_tokens");
        Map<Long, Row> clean = byId(LlamaSpark.generate(input, options));

        INJECTED.set(0);
        StructType schema = LlamaSpark.resultSchema(input.schema());
        // the failure comes after generation, in the same stage: the whole task (its generated rows too) runs again
        Dataset<Row> failing = LlamaSpark.generate(input, options).map((MapFunction<Row, Row>) row -> {
            if (row.getLong(0) == 123 && TaskContext.get().attemptNumber() == 0) {
                INJECTED.incrementAndGet();
                throw new IllegalStateException("injected failure on the first attempt");
            }
            return row;
        }, Encoders.row(schema));
        Map<Long, Row> retried = byId(failing);

        assertThat(INJECTED.get()).isEqualTo(1);
        assertThat(ExecutorModels.borrowedSessions()).as("sessions not given back").isZero();
        assertThat(retried.keySet()).isEqualTo(clean.keySet());
        for (long id : clean.keySet()) {
            assertThat(retried.get(id)).as("row %d", id).isEqualTo(clean.get(id));
        }
    }

    @Test
    void aTaskStoppedEarlyGivesItsSessionsBack() {
        // limit stops reading the partition while rows are still in flight: the task's end cancels them
        Dataset<Row> one = prompts().repartition(1);
        for (boolean batching : new boolean[] {true, false}) {
            GenerationOptions options = options().withSequences(2).withBatching(batching).withMaxTokens(64);
            List<Row> first = LlamaSpark.generate(one, options).limit(3).collectAsList();
            assertThat(first).hasSize(3);
            assertThat(ExecutorModels.borrowedSessions()).as("sessions not given back").isZero();
        }
    }

    @Test
    void aJsonSchemaOrGrammarConstrainsTheOutput() {
        String animals = "{\"enum\": [\"cat\", \"dog\", \"bird\"]}";
        StructType schema = new StructType().add("id", DataTypes.IntegerType).add("prompt", DataTypes.StringType)
                .add("json_schema", DataTypes.StringType).add("grammar", DataTypes.StringType);
        List<Row> rows = new ArrayList<>();
        for (int id = 0; id < 24; id++) {
            String start = STARTS[id % STARTS.length];
            rows.add(switch (id % 4) {
                case 0 -> RowFactory.create(id, start, null, null); // the options' schema
                case 1 -> RowFactory.create(id, start, "{\"type\": \"boolean\"}", null);
                case 2 -> RowFactory.create(id, start, null, "root ::= \"Yes\" | \"No\" | \"Maybe\"");
                default -> RowFactory.create(id, start, "{\"type\": \"integer\", \"minimum\": 0, \"maximum\": 99}",
                        null);
            });
        }
        rows.add(RowFactory.create(100, "Once", "{\"type\": \"object\", \"multipleOf\": 3}", null));
        rows.add(RowFactory.create(101, "Once", null, "root ::= missing"));
        rows.add(RowFactory.create(102, "Once", "true", "root ::= \"x\""));
        GenerationOptions options = options().withJsonSchema(animals).withMaxTokens(32).withTemperature(1.2f)
                .withSequences(2); // two constrained rows at once on one grammar, batched
        Map<Integer, Row> out = new TreeMap<>();
        for (Row r : LlamaSpark.generate(spark.createDataFrame(rows, schema), options).collectAsList()) {
            out.put(r.getInt(0), r);
        }

        try (Session session = batch.newSession()) {
            for (int id = 0; id < 24; id++) {
                Row r = out.get(id);
                String text = r.getAs("text");
                assertThat(r.<String>getAs("finish_reason")).as("row %d: %s", id, text).isEqualTo("stop");
                switch (id % 4) {
                    case 0 -> assertThat(text).isIn("\"cat\"", "\"dog\"", "\"bird\"");
                    case 1 -> assertThat(text).isIn("true", "false");
                    case 2 -> assertThat(text).isIn("Yes", "No", "Maybe");
                    default -> assertThat(Integer.parseInt(text)).isBetween(0, 99);
                }
                Grammar grammar = switch (id % 4) { // the same constraint through the plain API
                    case 0 -> Grammar.fromJsonSchema(animals);
                    case 1 -> Grammar.fromJsonSchema("{\"type\": \"boolean\"}");
                    case 2 -> Grammar.parse("root ::= \"Yes\" | \"No\" | \"Maybe\"");
                    default -> Grammar.fromJsonSchema("{\"type\": \"integer\", \"minimum\": 0, \"maximum\": 99}");
                };
                Sampler.Settings settings = new Sampler.Settings(1.2f, 40, 0.95f, 0.05f, 1f, 64,
                        LlamaSpark.rowSeed(id, SEED));
                session.reset();
                Completion c = session.generate(session.encode(STARTS[id % STARTS.length]), 32,
                        Sampler.create(settings, grammar.newConstraint(model.tokenizer())), _ -> {});
                assertThat(text).as("row %d", id).isEqualTo(c.text());
            }
        }
        assertThat(out.get(100).<String>getAs("error")).startsWith("json_schema: ").contains("multipleOf");
        assertThat(out.get(101).<String>getAs("error")).startsWith("grammar: ").contains("missing");
        assertThat(out.get(102).<String>getAs("error"))
                .isEqualTo("grammar and json_schema exclude each other: give one");

        Dataset<Row> plain = spark.createDataFrame(rows.subList(0, 1), schema).drop("json_schema", "grammar");
        assertThatThrownBy(() -> LlamaSpark.generate(plain, options().withJsonSchema("{\"type\": \"nothing\"}")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("jsonSchema: ");
        assertThatThrownBy(() -> LlamaSpark.generate(plain, options().withGrammar("root ::= (")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("grammar: 1:");
    }

    @Test
    void chatMessagesAreRenderedWithTheTemplate() {
        StructType message = new StructType().add("role", DataTypes.StringType).add("content", DataTypes.StringType);
        StructType schema = new StructType().add("id", DataTypes.StringType)
                .add("messages", DataTypes.createArrayType(message));
        List<Row> rows = List.of(
                RowFactory.create("a", List.of(RowFactory.create("user", "Tell me a story"))),
                RowFactory.create("b", List.of(RowFactory.create("system", "Be kind."),
                        RowFactory.create("user", "What did the dog do?"))),
                RowFactory.create("c", List.of(RowFactory.create("narrator", "Hello"))));
        GenerationOptions options = options().withChatTemplate("plain").withMaxTokens(16);
        Map<String, Row> out = new TreeMap<>();
        for (Row r : LlamaSpark.generate(spark.createDataFrame(rows, schema), options).collectAsList()) {
            out.put(r.getString(0), r);
        }

        ChatFormat chat = ChatFormat.of(model, ChatFormat.builtin("plain").orElseThrow());
        try (Session session = model.newSession()) {
            for (String id : List.of("a", "b")) {
                List<Message> messages = id.equals("a") ? List.of(Message.user("Tell me a story"))
                        : List.of(Message.system("Be kind."), Message.user("What did the dog do?"));
                session.reset();
                Completion c = session.generate(chat.render(messages, true), 16,
                        Sampler.create(Sampler.Settings.defaults(LlamaSpark.rowSeed(id, SEED))), _ -> {});
                assertThat(out.get(id).<String>getAs("text")).isEqualTo(c.text());
                assertThat(out.get(id).<Integer>getAs("prompt_tokens")).isEqualTo(c.promptTokens());
            }
        }
        Row bad = out.get("c");
        assertThat(bad.<String>getAs("finish_reason")).isEqualTo("error");
        assertThat(bad.<String>getAs("error")).startsWith("messages[0]: ").contains("narrator");
        assertThat(bad.<String>getAs("text")).isNull();

        // stories260K has no template of its own
        Row noTemplate = LlamaSpark.generate(spark.createDataFrame(rows.subList(0, 1), schema), options())
                .collectAsList().getFirst();
        assertThat(noTemplate.<String>getAs("error")).isEqualTo(modelPath + ": the model has no chat template: give "
                + "one with GenerationOptions.withChatTemplate (chatml, llama3, plain or Jinja source)");
    }

    @Test
    void badRowValuesAreReportedInTheErrorColumn() {
        StructType schema = new StructType().add("id", DataTypes.IntegerType).add("prompt", DataTypes.StringType)
                .add("max_tokens", DataTypes.LongType).add("temperature", DataTypes.DoubleType)
                .add("top_p", DataTypes.FloatType).add("top_k", DataTypes.IntegerType)
                .add("stop", DataTypes.createArrayType(DataTypes.StringType))
                .add("presence_penalty", DataTypes.DoubleType).add("frequency_penalty", DataTypes.FloatType)
                .add("logit_bias", DataTypes.createMapType(DataTypes.IntegerType, DataTypes.DoubleType));
        // row 1 bans the token that greedy decoding with its penalties would write first
        Sampler.Settings rowOne = new Sampler.Settings(0f, 40, 0.95f, 0.05f, 1f, 64, 0).withPenalties(1.5f, 0.5f);
        int banned;
        try (Session session = model.newSession()) {
            int[] prompt = session.encode("Once upon a time");
            session.generate(prompt, 1, Sampler.create(rowOne), _ -> {});
            banned = session.tokens()[prompt.length];
        }
        String longPrompt = "Once upon a time ".repeat(40);
        List<Row> rows = List.of(
                RowFactory.create(1, "Once upon a time", 4L, 0.0, null, null, null, 1.5, 0.5f, Map.of(banned, -100.0)),
                RowFactory.create(2, "Once upon a time", -5L, null, null, null, null, null, null, null),
                RowFactory.create(3, "Once upon a time", null, -1.0, null, null, null, null, null, null),
                RowFactory.create(4, "Once upon a time", null, null, 2f, null, null, null, null, null),
                RowFactory.create(5, "Once upon a time", null, null, null, -3, null, null, null, null),
                RowFactory.create(6, null, null, null, null, null, null, null, null, null),
                RowFactory.create(7, longPrompt, null, null, null, null, null, null, null, null),
                RowFactory.create(8, "Once upon a time", null, null, null, null, List.of(""), null, null, null),
                RowFactory.create(9, "Once upon a time", null, null, null, null, null, 2.5, null, null),
                RowFactory.create(10, "Once upon a time", null, null, null, null, null, null, Float.NaN, null),
                RowFactory.create(11, "Once upon a time", null, null, null, null, null, null, null, Map.of(999, 1.0)),
                RowFactory.create(12, "Once upon a time", null, null, null, null, null, null, null, Map.of(-1, 1.0)));
        Map<Integer, Row> out = new TreeMap<>();
        for (Row r : LlamaSpark.generate(spark.createDataFrame(rows, schema), options().withContextLength(64))
                .collectAsList()) {
            out.put(r.getInt(0), r);
        }
        assertThat(out.get(1).<String>getAs("error")).isNull();
        assertThat(out.get(1).<Integer>getAs("completion_tokens")).isEqualTo(4);
        assertThat(out.get(1).<String>getAs("finish_reason")).isEqualTo("length");
        try (Session session = model.newSession()) { // row 1's penalties and bias reach the sampler
            int[] prompt = session.encode("Once upon a time");
            Completion c = session.generate(prompt, 4,
                    Sampler.create(rowOne.withLogitBias(Map.of(banned, -100f))), _ -> {});
            assertThat(out.get(1).<String>getAs("text")).isEqualTo(c.text());
            assertThat(session.tokens()[prompt.length]).isNotEqualTo(banned);
        }
        assertThat(out.get(2).<String>getAs("error")).isEqualTo(
                "max_tokens must be -1 (until the context is full) or more, got -5");
        assertThat(out.get(3).<String>getAs("error")).isEqualTo("temperature must be 0 or more, got -1.0");
        assertThat(out.get(4).<String>getAs("error")).isEqualTo("top_p must be in (0, 1], got 2.0");
        assertThat(out.get(5).<String>getAs("error")).isEqualTo("top_k must be 0 or more, got -3");
        assertThat(out.get(6).<String>getAs("error")).isEqualTo("prompt is null");
        assertThat(out.get(7).<String>getAs("error")).matches("prompt is \\d+ tokens but only 64 fit in the context");
        assertThat(out.get(8).<String>getAs("error")).isEqualTo("stop: a stop string is empty or null");
        assertThat(out.get(9).<String>getAs("error")).isEqualTo("presence_penalty must be between -2 and 2, got 2.5");
        assertThat(out.get(10).<String>getAs("error")).isEqualTo("frequency_penalty must be between -2 and 2, got NaN");
        assertThat(out.get(11).<String>getAs("error")).isEqualTo("logit bias: token 999 is outside the vocabulary "
                + "(size 512)");
        assertThat(out.get(12).<String>getAs("error")).isEqualTo("logit_bias: token id must be 0 or more, got -1");
        for (int id = 2; id <= 12; id++) {
            assertThat(out.get(id).<String>getAs("finish_reason")).isEqualTo("error");
            assertThat(out.get(id).<Object>getAs("completion_tokens")).isNull();
            assertThat(out.get(id).<String>getAs("model_sha256")).hasSize(64);
        }
    }

    @Test
    void theExampleJobWritesOneJsonLinePerPrompt(@TempDir Path dir) throws Exception {
        int banned; // the greedy continuation's first token, which row 2 bans
        try (Session session = model.newSession()) {
            int[] prompt = session.encode("The little dog");
            session.generate(prompt, 1, Sampler.greedy(), _ -> {});
            banned = session.tokens()[prompt.length];
        }
        Path input = dir.resolve("prompts.jsonl");
        Files.writeString(input, """
                {"id": 1, "prompt": "Once upon a time", "max_tokens": 12}
                {"id": 2, "prompt": "The little dog", "temperature": 0, "logit_bias": {"%d": -100}}
                {"id": 3, "messages": [{"role": "user", "content": "Tell me a story"}]}
                """.formatted(banned));
        Path output = dir.resolve("out");
        GenerateJob.Job job = GenerateJob.parse(new String[] {"--model", modelPath.toString(), "--input",
            input.toString(), "--output", output.toString(), "--id-column", "id", "--seed", "42",
            "--max-tokens", "20", "--chat-template", "plain", "--partitions", "2"});
        assertThat(GenerateJob.run(job, spark)).isEqualTo(3);

        Map<Long, Row> rows = byId(spark.read().json(output.toString()));
        assertThat(rows.keySet()).containsExactly(1L, 2L, 3L);
        assertThat(rows.get(1L).<Long>getAs("completion_tokens")).isEqualTo(12);
        try (Session session = model.newSession()) { // a JSON object of token ids reaches the sampler as a bias
            Sampler.Settings greedyWithBan = Sampler.Settings.greedy().withLogitBias(Map.of(banned, -100f));
            Completion c = session.generate(session.encode("The little dog"), 20, Sampler.create(greedyWithBan),
                    _ -> {});
            assertThat(rows.get(2L).<String>getAs("text")).isEqualTo(c.text());
        }
        for (Row r : rows.values()) { // Spark's JSON writer leaves null fields out: no row has an error
            assertThat(r.schema().fieldNames()).doesNotContain("error");
            assertThat(r.<String>getAs("finish_reason")).isIn("stop", "length");
            assertThat(r.<String>getAs("model_sha256")).isEqualTo(model.file().sha256());
        }
    }

    @Test
    void aModelTheExecutorsCannotLoadFailsTheJobWithTheFileNamed() {
        GenerationOptions missing = GenerationOptions.of("/nonexistent/model.gguf");
        Dataset<Row> two = spark.range(0, 2, 1, 2).selectExpr("concat('Once upon a time ', id) as prompt");
        Dataset<Row> none = two.filter("length(prompt) > 100"); // two tasks run, on empty partitions
        assertThat(LlamaSpark.generate(none, missing).count()).as("empty partitions load nothing").isZero();
        assertThatThrownBy(() -> LlamaSpark.generate(two, missing).collectAsList())
                .hasMessageContaining("model /nonexistent/model.gguf: ");
    }

    @Test
    void aWrongSchemaFailsBeforeAnyTaskWithTheColumnNamed() {
        Dataset<Row> numbers = spark.range(3).toDF("id");
        assertThatThrownBy(() -> LlamaSpark.generate(numbers, options()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("the input has neither a 'prompt' column (string) nor a 'messages' column "
                        + "(array<struct<role: string, content: string>>); its columns are [id]");
        assertThatThrownBy(() -> LlamaSpark.generate(numbers.selectExpr("id", "id as prompt"), options()))
                .hasMessage("column 'prompt' must be string, but it is bigint");
        assertThatThrownBy(() -> LlamaSpark.generate(numbers.selectExpr("id", "'x' as messages"), options()))
                .hasMessage("column 'messages' must be array<struct<role: string, content: string>>, "
                        + "but it is string");
        assertThatThrownBy(() -> LlamaSpark.generate(numbers.selectExpr("'x' as prompt"), options()))
                .hasMessage("idColumn: the input has no column 'id'; its columns are [prompt]");
        assertThatThrownBy(() -> LlamaSpark.generate(
                numbers.selectExpr("array(id) as id", "'x' as prompt"), options()))
                .hasMessage("column 'id' must be string or integer (the row's id, hashed into its seed), "
                        + "but it is array<bigint>");
        assertThatThrownBy(() -> LlamaSpark.generate(numbers.selectExpr("id", "'x' as prompt", "'a' as text"),
                options()))
                .hasMessage("the input already has a column named 'text', which generation adds: "
                        + "rename or drop it first");
        assertThatThrownBy(() -> LlamaSpark.generate(
                numbers.selectExpr("id", "'x' as prompt", "'8' as max_tokens"), options()))
                .hasMessage("column 'max_tokens' must be an integer type, but it is string");
        assertThatThrownBy(() -> LlamaSpark.generate(
                numbers.selectExpr("id", "'x' as prompt", "'hot' as temperature"), options()))
                .hasMessage("column 'temperature' must be a number, but it is string");
        assertThatThrownBy(() -> LlamaSpark.generate(
                numbers.selectExpr("id", "'x' as prompt", "'.' as stop"), options()))
                .hasMessage("column 'stop' must be array<string>, but it is string");
        assertThatThrownBy(() -> LlamaSpark.generate(
                numbers.selectExpr("id", "'x' as prompt", "map('type', 'object') as json_schema"), options()))
                .hasMessage("column 'json_schema' must be string, but it is map<string,string>");
        assertThatThrownBy(() -> LlamaSpark.generate(
                numbers.selectExpr("id", "'x' as prompt", "map('13', -100) as logit_bias"), options()))
                .hasMessage("column 'logit_bias' must be map<integer type, number> (token id to bias), "
                        + "but it is map<string,int>");
    }
}
