package dev.llamaj.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.StructType;

/// A ready-made `spark-submit` job: JSON lines of prompts in, JSON lines of results out.
///
/// ```sh
/// spark-submit --class dev.llamaj.spark.GenerateJob llamaj-spark.jar \
///     --model /models/model.gguf --input prompts.jsonl --output completions --id-column id --seed 42
/// ```
///
/// Each input line is an object with `prompt` (or `messages`) and any per-row settings (`max_tokens`,
/// `temperature`, `top_p`, `top_k`, `min_p`, `repeat_penalty`, `presence_penalty`, `frequency_penalty`, `seed`,
/// `stop`, `logit_bias`, `grammar`, `json_schema`); the output directory gets Spark's part files, one JSON
/// object per row: the input fields and the result columns of [LlamaSpark#generate]. Options are checked before
/// Spark starts: a bad one prints one line and the usage, exit 2.
public final class GenerateJob {
    private GenerateJob() {}

    static final String USAGE = """
            usage: GenerateJob --model FILE --input PATH --output DIR [--id-column NAME] [--seed N]
                               [--max-tokens N] [--temperature T] [--presence-penalty P] [--frequency-penalty F]
                               [--logit-bias TOKEN=BIAS]... [--sequences N] [--no-batching] [--threads N]
                               [--context N] [--chat-template NAME|JINJA]
                               [--stop TEXT]... [--partitions N] [--grammar FILE | --json-schema FILE|JSON | --json]""";

    public static void main(String[] args) throws Exception {
        Job job;
        try {
            job = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("GenerateJob: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        SparkSession spark = SparkSession.builder().appName("llamaj GenerateJob").getOrCreate();
        try {
            long rows = run(job, spark);
            System.out.println("GenerateJob: " + rows + " rows written to " + job.output());
        } catch (Exception e) { // Scala's AnalysisException is checked for javac, but thrown unchecked
            if (!(e instanceof IllegalArgumentException || e instanceof AnalysisException)) {
                throw e;
            }
            // a bad input schema, a missing input, an output that exists: one line, not a stack trace
            System.err.println("GenerateJob: " + e.getMessage());
            spark.stop();
            System.exit(2);
        }
        spark.stop();
    }

    /// What `--json` asks for: any JSON object.
    static final String ANY_OBJECT = "{\"type\": \"object\"}";

    /// The parsed command line.
    record Job(GenerationOptions options, String input, String output, int partitions) {}

    /// Reads `job.input`, generates, writes `job.output` (which must not exist yet); returns the number of rows.
    static long run(Job job, SparkSession spark) {
        Dataset<Row> input = spark.read().json(job.input());
        if (input.schema().getFieldIndex("logit_bias").nonEmpty()
                && input.schema().apply("logit_bias").dataType() instanceof StructType) {
            // JSON objects are read as structs (one field per token id seen); generation wants token id -> bias
            input = input.withColumn("logit_bias", functions.expr("transform_keys(from_json(to_json(logit_bias), "
                    + "'map<string, double>'), (token, bias) -> cast(token as int))"));
        }
        if (job.partitions() > 0) {
            input = input.repartition(job.partitions());
        }
        LlamaSpark.generate(input, job.options()).write().json(job.output());
        // counted from what was written (one line a row): counting the generated Dataset would generate it again
        return spark.read().text(job.output()).count();
    }

    /// Parses the command line.
    ///
    /// @throws IllegalArgumentException naming the option, for an unknown option, a missing or bad value
    static Job parse(String[] args) {
        String model = null;
        String input = null;
        String output = null;
        String idColumn = null;
        String chatTemplate = null;
        String grammar = null;
        String jsonSchema = null;
        List<String> stop = new ArrayList<>();
        Long seed = null;
        Integer maxTokens = null;
        Float temperature = null;
        float presence = 0;
        float frequency = 0;
        Map<Integer, Float> bias = new HashMap<>();
        int sequences = 1;
        boolean batching = true;
        int threads = 0;
        int context = 0;
        int partitions = 0;
        for (int i = 0; i < args.length; i++) {
            String name = args[i];
            if (!name.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + name + "'");
            }
            if (name.equals("--json")) { // a flag without a value: any JSON object, as the CLI's --json
                jsonSchema = ANY_OBJECT;
                continue;
            }
            if (name.equals("--no-batching")) { // a flag without a value, as the CLI's
                batching = false;
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(name + " needs a value");
            }
            String value = args[++i];
            switch (name) {
                case "--model" -> model = value;
                case "--input" -> input = value;
                case "--output" -> output = value;
                case "--id-column" -> idColumn = value;
                case "--chat-template" -> chatTemplate = value;
                case "--stop" -> stop.add(value);
                case "--seed" -> seed = parseLong(name, value);
                case "--max-tokens" -> maxTokens = (int) parseLong(name, value);
                case "--temperature" -> temperature = parseFloat(name, value);
                case "--presence-penalty" -> presence = parseFloat(name, value);
                case "--frequency-penalty" -> frequency = parseFloat(name, value);
                case "--logit-bias" -> parseBias(value, bias);
                case "--sequences" -> sequences = (int) parseLong(name, value);
                case "--threads" -> threads = (int) parseLong(name, value);
                case "--context" -> context = (int) parseLong(name, value);
                case "--partitions" -> partitions = (int) parseLong(name, value);
                case "--grammar" -> grammar = readFile(name, value);
                case "--json-schema" -> jsonSchema = value.strip().startsWith("{") ? value : readFile(name, value);
                default -> throw new IllegalArgumentException("unknown option " + name);
            }
        }
        if (model == null || input == null || output == null) {
            throw new IllegalArgumentException("--model, --input and --output are required");
        }
        if (partitions < 0) {
            throw new IllegalArgumentException("--partitions must be 0 (as read) or more, got " + partitions);
        }
        GenerationOptions options;
        try {
            options = GenerationOptions.of(model).withSequences(sequences).withBatching(batching)
                    .withThreads(threads).withContextLength(context).withIdColumn(idColumn)
                    .withChatTemplate(chatTemplate).withStop(stop).withGrammar(grammar).withJsonSchema(jsonSchema)
                    .withPenalties(presence, frequency).withLogitBias(bias);
            if (seed != null) {
                options = options.withSeed(seed);
            }
            if (maxTokens != null) {
                options = options.withMaxTokens(maxTokens);
            }
            if (temperature != null) {
                options = options.withTemperature(temperature);
            }
        } catch (IllegalArgumentException e) { // the options' messages name their Java names: say the flag's
            throw new IllegalArgumentException("bad option: " + e.getMessage(), e);
        }
        return new Job(options, input, output, partitions);
    }

    /// A file read on the driver (the grammar then travels with the job).
    private static String readFile(String name, String file) {
        try {
            return Files.readString(Path.of(file));
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(name + ": cannot read " + file + " (" + e.getMessage() + ")", e);
        }
    }

    /// `TOKEN=BIAS` into `bias`; BIAS is a number, or `-inf` to ban the token.
    private static void parseBias(String value, Map<Integer, Float> bias) {
        int eq = value.indexOf('=');
        try {
            if (eq < 0) {
                throw new NumberFormatException();
            }
            String b = value.substring(eq + 1).strip();
            bias.put(Integer.parseInt(value.substring(0, eq).strip()),
                    b.equals("-inf") ? Float.NEGATIVE_INFINITY : Float.parseFloat(b));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--logit-bias " + value + ": expected TOKEN=BIAS, such as 13=-100", e);
        }
    }

    private static long parseLong(String name, String value) {
        try {
            long v = Long.parseLong(value);
            if (!name.equals("--seed") && (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE)) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be an integer, got '" + value + "'", e);
        }
    }

    private static float parseFloat(String name, String value) {
        try {
            return Float.parseFloat(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " must be a number, got '" + value + "'", e);
        }
    }
}
