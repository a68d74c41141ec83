package dev.llamaj.spark;

import java.io.Serial;
import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/// Where an input row keeps what generation reads, checked once on the driver against the Dataset's schema so
/// that a wrong column fails the job before any task starts, with one line naming the column.
///
/// A row carries a `prompt` (string) or `messages` (array of struct with string fields `role` and `content`); when
/// the input has both columns, a row with non-null `messages` is a chat and any other uses its `prompt`. The
/// optional per-row settings override the options for that row when not null: `max_tokens`, `top_k`, `seed`
/// (integers), `temperature`, `top_p`, `min_p`, `repeat_penalty`, `presence_penalty`, `frequency_penalty`
/// (numbers), `logit_bias` (map from token id to number), `stop` (array of strings), and
/// `grammar` (GBNF) or `json_schema` (JSON text) constraining the output.
///
/// Indices are -1 for absent columns.
record InputColumns(int width, int prompt, int messages, int role, int content, int id, int maxTokens, int topK,
                    int seed, int temperature, int topP, int minP, int repeatPenalty, int presencePenalty,
                    int frequencyPenalty, int logitBias, int stop, int grammar, int jsonSchema)
        implements Serializable {
    @Serial
    private static final long serialVersionUID = 1L;

    static final String PROMPT = "prompt";
    static final String MESSAGES = "messages";

    /// Resolves `schema` for `options`.
    ///
    /// @throws IllegalArgumentException naming the column, if one has the wrong type, neither `prompt` nor
    ///                                  `messages` is there, the id column is missing, or a result column's name
    ///                                  is already taken
    static InputColumns resolve(StructType schema, GenerationOptions options) {
        for (StructField f : LlamaSpark.RESULT_FIELDS) {
            if (find(schema, f.name()) >= 0) {
                throw new IllegalArgumentException("the input already has a column named '" + f.name()
                        + "', which generation adds: rename or drop it first");
            }
        }
        int prompt = find(schema, PROMPT);
        if (prompt >= 0 && !(type(schema, prompt) instanceof StringType)) {
            throw wrongType(schema, prompt, "string");
        }
        int messages = find(schema, MESSAGES);
        int role = -1;
        int content = -1;
        if (messages >= 0) {
            String expected = "array<struct<role: string, content: string>>";
            if (!(type(schema, messages) instanceof ArrayType array)
                    || !(array.elementType() instanceof StructType message)) {
                throw wrongType(schema, messages, expected);
            }
            role = find(message, "role");
            content = find(message, "content");
            if (role < 0 || content < 0 || !(type(message, role) instanceof StringType)
                    || !(type(message, content) instanceof StringType)) {
                throw wrongType(schema, messages, expected);
            }
        }
        if (prompt < 0 && messages < 0) {
            throw new IllegalArgumentException("the input has neither a 'prompt' column (string) nor a 'messages' "
                    + "column (array<struct<role: string, content: string>>); its columns are "
                    + Arrays.toString(schema.fieldNames()));
        }
        int id = -1;
        if (options.idColumn() != null) {
            id = find(schema, options.idColumn());
            if (id < 0) {
                throw new IllegalArgumentException("idColumn: the input has no column '" + options.idColumn()
                        + "'; its columns are " + Arrays.toString(schema.fieldNames()));
            }
            if (!isIntegral(type(schema, id)) && !(type(schema, id) instanceof StringType)) {
                throw wrongType(schema, id, "string or integer (the row's id, hashed into its seed)");
            }
        }
        return new InputColumns(schema.fields().length, prompt, messages, role, content, id,
                integral(schema, "max_tokens"), integral(schema, "top_k"), integral(schema, "seed"),
                numeric(schema, "temperature"), numeric(schema, "top_p"), numeric(schema, "min_p"),
                numeric(schema, "repeat_penalty"), numeric(schema, "presence_penalty"),
                numeric(schema, "frequency_penalty"), bias(schema, "logit_bias"), strings(schema, "stop"),
                string(schema, "grammar"), string(schema, "json_schema"));
    }

    private static int integral(StructType schema, String name) {
        int i = find(schema, name);
        if (i >= 0 && !isIntegral(type(schema, i))) {
            throw wrongType(schema, i, "an integer type");
        }
        return i;
    }

    private static int numeric(StructType schema, String name) {
        int i = find(schema, name);
        if (i >= 0 && !isNumber(type(schema, i))) {
            throw wrongType(schema, i, "a number");
        }
        return i;
    }

    private static boolean isNumber(DataType t) {
        return isIntegral(t) || t instanceof FloatType || t instanceof DoubleType || t instanceof DecimalType;
    }

    private static int bias(StructType schema, String name) {
        int i = find(schema, name);
        if (i >= 0 && !(type(schema, i) instanceof MapType m && isIntegral(m.keyType()) && isNumber(m.valueType()))) {
            throw wrongType(schema, i, "map<integer type, number> (token id to bias)");
        }
        return i;
    }

    private static int string(StructType schema, String name) {
        int i = find(schema, name);
        if (i >= 0 && !(type(schema, i) instanceof StringType)) {
            throw wrongType(schema, i, "string");
        }
        return i;
    }

    private static int strings(StructType schema, String name) {
        int i = find(schema, name);
        if (i >= 0 && !(type(schema, i) instanceof ArrayType a && a.elementType() instanceof StringType)) {
            throw wrongType(schema, i, "array<string>");
        }
        return i;
    }

    private static boolean isIntegral(DataType t) {
        return t instanceof ByteType || t instanceof ShortType || t instanceof IntegerType || t instanceof LongType;
    }

    /// The index of field `name`, or -1; Spark's own rule (case-insensitive unless `spark.sql.caseSensitive`) is
    /// not applied: columns are matched by their exact name.
    private static int find(StructType struct, String name) {
        String[] names = struct.fieldNames();
        for (int i = 0; i < names.length; i++) {
            if (names[i].equals(name)) {
                return i;
            }
        }
        return -1;
    }

    private static DataType type(StructType struct, int index) {
        return struct.fields()[index].dataType();
    }

    private static IllegalArgumentException wrongType(StructType schema, int index, String expected) {
        StructField f = schema.fields()[index];
        return new IllegalArgumentException("column '" + f.name() + "' must be " + expected + ", but it is "
                + f.dataType().simpleString());
    }
}
