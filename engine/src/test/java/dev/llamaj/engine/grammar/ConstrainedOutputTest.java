package dev.llamaj.engine.grammar;

import static org.assertj.core.api.Assertions.assertThat;

import com.networknt.schema.Error;
import com.networknt.schema.ExecutionConfig;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/// The property that makes constrained decoding trustworthy: whatever the model wants, every output that the
/// constraint lets finish parses as JSON and validates against its schema, checked by an independent validator
/// (networknt's, with format assertions on). Outputs are drawn with random logits over real vocabularies
/// (stories260K's 512 tokens, with byte fallback; Llama 3's 128k byte-level tokens) and by the real stories260K
/// model, over schemas covering nested objects, bounded arrays, enums, anyOf/oneOf, recursive references,
/// patterns, formats and bounded numbers.
class ConstrainedOutputTest {
    static final List<String> SCHEMAS = List.of(
            """
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
             "age": {"type": "integer", "minimum": 0, "maximum": 150}, "email": {"type": "string", "format": "email"}},
             "required": ["name", "age"], "additionalProperties": false}""",
            """
            {"type": "object", "properties": {"person": {"type": "object", "properties": {"first": {"type": "string"},
             "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "minItems": 1, "maxItems": 3}},
             "required": ["first", "tags"]}}, "required": ["person"]}""",
            """
            {"enum": ["red", "green", "blue", 42, null, true, {"k": [1.5]}]}""",
            """
            {"anyOf": [{"type": "integer", "minimum": -20, "maximum": -3},
                       {"type": "string", "pattern": "^[A-Z]{2}-\\\\d{3}$"}]}""",
            """
            {"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
             "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
             "required": ["value"], "additionalProperties": false}}, "$ref": "#/$defs/node"}""",
            """
            {"type": "object", "properties": {"d": {"type": "string", "format": "date"},
             "t": {"type": "string", "format": "time"}, "dt": {"type": "string", "format": "date-time"},
             "u": {"type": "string", "format": "uuid"}}, "required": ["d", "t", "dt", "u"],
             "additionalProperties": false}""",
            """
            {"type": "array", "prefixItems": [{"type": "boolean"}, {"const": "x"}], "items": {"type": "number"},
             "minItems": 1, "maxItems": 4}""",
            """
            {"type": "number", "minimum": -2.5, "exclusiveMaximum": 7}""",
            """
            {"type": "integer", "exclusiveMinimum": 99, "maximum": 1234}""",
            "{}",
            """
            {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "boolean"}}""",
            """
            {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
             "required": ["id"]}""",
            """
            {"type": ["string", "null", "integer"], "maxLength": 3, "maximum": 5}""",
            """
            {"allOf": [{"type": "object", "properties": {"a": {"type": "string", "maxLength": 4}}, "required": ["a"]},
                       {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]}""",
            """
            {"type": "string", "pattern": "ab+c"}""",
            """
            {"type": "string", "pattern": "^(\\"|\\\\\\\\|[a-c]|\\\\n|é){1,4}$"}""",
            """
            {"oneOf": [{"type": "string", "maxLength": 2}, {"type": "array", "items": {"type": "integer"},
             "maxItems": 2}]}""",
            """
            {"type": "string", "minLength": 3, "maxLength": 6}""",
            """
            {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"},
             "y": {"type": "integer"}, "z": {"type": "string", "enum": ["p", "q"]}}, "additionalProperties": false},
             "maxItems": 3}""",
            """
            {"type": ["boolean", "null"]}""",
            """
            {"type": "integer", "minimum": -1000000, "maximum": -999}""",
            """
            {"const": {"a": [1, 2, {"b": null}]}}""",
            """
            {"type": "object", "required": ["k"]}""",
            """
            {"type": "string", "format": "date"}""",
            """
            {"type": "array", "items": {"$ref": "#"}, "maxItems": 3}""");

    private static final JsonMapper MAPPER = JsonMapper.builder().build();
    private static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);
    private static final ExecutionConfig FORMATS = ExecutionConfig.builder().formatAssertionsEnabled(true).build();

    /// Random logits over a vocabulary, with a per-output lean towards tokens that close things (quotes,
    /// brackets, digits) so that most outputs finish within the token budget; the mask decides the rest.
    @Test
    void everyFinishedOutputValidatesOnStories260KVocabulary() throws Exception {
        Tokenizer tokenizer = TokenMaskTest.tokenizer("models/stories260K.gguf");
        int validated = run(tokenizer, 60, 160, 1);
        assertThat(validated).isGreaterThan(SCHEMAS.size() * 60 * 8 / 10);
    }

    @Test
    void everyFinishedOutputValidatesOnLlama3Vocabulary() throws Exception {
        Tokenizer tokenizer = TokenMaskTest.tokenizer("tokenizer/llama3-bpe.gguf");
        int validated = run(tokenizer, 4, 80, 2);
        assertThat(validated).isGreaterThan(SCHEMAS.size() * 4 * 7 / 10);
    }

    private static int run(Tokenizer tokenizer, int perSchema, int maxTokens, long seed) throws Exception {
        int vocabulary = tokenizer.vocabulary().size();
        float[] closing = new float[vocabulary];
        for (int token = 0; token < vocabulary; token++) {
            for (byte b : tokenizer.bytes(token)) {
                if (b == '"' || b == ']' || b == '}' || b == ',' || b >= '0' && b <= '9') {
                    closing[token] = 1;
                }
            }
        }
        SplittableRandom random = new SplittableRandom(seed);
        // random logits are a random window of one long noise vector: drawing 128k Gaussians per step would
        // cost more than everything under test; with noise in the logits, their argmax is a random draw
        float[] noise = new float[2 * vocabulary];
        for (int i = 0; i < noise.length; i++) {
            noise[i] = (float) random.nextGaussian() * 2;
        }
        int validated = 0;
        for (String schemaText : SCHEMAS) {
            Grammar grammar = Grammar.fromJsonSchema(schemaText);
            Schema schema = REGISTRY.getSchema(schemaText);
            for (int n = 0; n < perSchema; n++) {
                float lean = (float) random.nextDouble(0, 6);
                TokenConstraint constraint = grammar.newConstraint(tokenizer);
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                float[] logits = new float[vocabulary];
                boolean finished = false;
                for (int step = 0; step < maxTokens; step++) {
                    int offset = random.nextInt(vocabulary);
                    for (int t = 0; t < vocabulary; t++) {
                        logits[t] = noise[offset + t] + lean * closing[t];
                    }
                    constraint.mask(logits);
                    int token = argmax(logits);
                    if (tokenizer.vocabulary().isEndOfGeneration(token)) {
                        finished = true;
                        break;
                    }
                    constraint.accept(token);
                    out.writeBytes(tokenizer.bytes(token));
                    if (constraint.isComplete() && random.nextInt(3) > 0) {
                        finished = true; // a caller may stop at any complete point too
                        break;
                    }
                }
                if (finished) {
                    assertValid(schemaText, schema, grammar, out.toString(StandardCharsets.UTF_8));
                    validated++;
                }
            }
        }
        return validated;
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int t = 1; t < logits.length; t++) {
            if (logits[t] > logits[best]) {
                best = t;
            }
        }
        return best;
    }

    /// Softmax sampling at temperature 1 over the unmasked logits.
    static int sample(float[] logits, SplittableRandom random) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double total = 0;
        for (float v : logits) {
            total += Math.exp(v - max);
        }
        double r = random.nextDouble() * total;
        int last = -1;
        for (int t = 0; t < logits.length; t++) {
            if (logits[t] == Float.NEGATIVE_INFINITY) {
                continue;
            }
            last = t;
            r -= Math.exp(logits[t] - max);
            if (r < 0) {
                return t;
            }
        }
        return last;
    }

    static void assertValid(String schemaText, Schema schema, Grammar grammar, String output) {
        JsonNode node;
        try {
            node = MAPPER.readTree(output);
        } catch (RuntimeException e) {
            throw new AssertionError("not JSON: " + output + "\nschema: " + schemaText, e);
        }
        List<Error> errors = schema.validate(node, context -> context.setExecutionConfig(FORMATS));
        assertThat(errors).as("output %s\nschema %s", output, schemaText).isEmpty();
        assertThat(grammar.matches(output)).as("the grammar's own matcher on %s", output).isTrue();
    }

    /// The real model, sampling at temperature 1 from its own distribution under the mask: what it wants to
    /// write (a story) is not what the schemas allow, so this is the mask doing its job on real logits.
    @Test
    void realGenerationOnStories260KValidates() throws Exception {
        try (LlamaModel model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1)) {
            Tokenizer tokenizer = model.tokenizer();
            SplittableRandom random = new SplittableRandom(3);
            int validated = 0, outputs = 0;
            for (String schemaText : SCHEMAS) {
                Grammar grammar = Grammar.fromJsonSchema(schemaText);
                Schema schema = REGISTRY.getSchema(schemaText);
                outputs++;
                try (Session session = model.newSession(256)) {
                    int[] prompt = session.encode("Once upon a time");
                    session.ingest(prompt);
                    TokenConstraint constraint = grammar.newConstraint(tokenizer);
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    for (int step = 0; step < 100; step++) {
                        float[] logits = session.logits().clone();
                        constraint.mask(logits);
                        int token = sample(logits, random);
                        if (tokenizer.vocabulary().isEndOfGeneration(token)) {
                            assertValid(schemaText, schema, grammar, out.toString(StandardCharsets.UTF_8));
                            validated++;
                            break;
                        }
                        constraint.accept(token);
                        out.writeBytes(tokenizer.bytes(token));
                        session.ingest(token);
                    }
                }
            }
            assertThat(validated).as("outputs that ended within 100 tokens").isGreaterThan(outputs / 3);
        }
    }

    /// The same through the engine's own path: `Sampler.create(settings, constraint)` and `Session.generate`.
    @Test
    void generationThroughTheSamplerValidates() throws Exception {
        try (LlamaModel model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1)) {
            int ended = 0;
            for (int i = 0; i < SCHEMAS.size(); i++) {
                String schemaText = SCHEMAS.get(i);
                Grammar grammar = Grammar.fromJsonSchema(schemaText);
                try (Session session = model.newSession(256)) {
                    Sampler sampler = Sampler.create(Sampler.Settings.defaults(i),
                            grammar.newConstraint(model.tokenizer()));
                    Completion c = session.generate("Once upon a time", 100, sampler, text -> { });
                    if (c.stopReason() == Completion.StopReason.END_OF_GENERATION) {
                        assertValid(schemaText, REGISTRY.getSchema(schemaText), grammar, c.text());
                        ended++;
                    } else {
                        assertThat(c.stopReason()).isEqualTo(Completion.StopReason.MAX_TOKENS);
                    }
                }
            }
            assertThat(ended).isGreaterThan(SCHEMAS.size() / 3);
        }
    }
}
