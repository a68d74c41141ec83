package dev.llamaj.engine.tools;

import static org.assertj.core.api.Assertions.assertThat;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.json.JsonMapper;

/// With the tool constraint, every finished answer is calls of the given functions whose arguments validate
/// against the functions' schemas (checked by an independent validator, networknt's), in every format, whatever
/// the logits: random ones over real vocabularies, and stories260K's own.
class ToolConstraintTest {
    static final List<Tool> TOOLS = List.of(
            Tool.of("get_weather", "Weather of a city", """
                    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                     "unit": {"enum": ["C", "F"]}}, "required": ["city"], "additionalProperties": false}"""),
            Tool.of("book", null, """
                    {"type": "object", "properties": {"nights": {"type": "integer", "minimum": 1, "maximum": 14},
                     "guests": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
                     "breakfast": {"type": "boolean"}}, "required": ["nights", "breakfast"],
                     "additionalProperties": false}"""),
            Tool.of("ping", "No arguments", "{\"type\": \"object\", \"properties\": {}, \"additionalProperties\": false}"));

    static final JsonMapper MAPPER = JsonMapper.builder().build();
    static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    static Tokenizer tokenizer(String path) throws Exception {
        try (GGUFFile file = GGUFFile.open(SharedData.require(path))) {
            return Tokenizer.from(file.metadata());
        }
    }

    static ToolConstraint constraint(ToolFormat format, List<Tool> tools, boolean parallel, boolean forced,
                                     Tokenizer tokenizer) {
        return new ToolConstraint(format, tools, parallel, forced, tokenizer,
                schema -> Grammar.fromJsonSchema(schema).gbnf(), gbnf -> Grammar.parse(gbnf).newConstraint(tokenizer));
    }

    /// Reads `text` as `format` and checks it is nothing but valid calls of `tools`; returns how many.
    static int assertValidCalls(ToolFormat format, List<Tool> tools, boolean parallel, String text) {
        List<String[]> calls = new ArrayList<>();
        StringBuilder content = new StringBuilder();
        ToolCallParser parser = new ToolCallParser(format,
                tools.stream().map(Tool::name).collect(java.util.stream.Collectors.toSet()), parallel, () -> "id",
                new ToolCallParser.Listener() {
                    @Override
                    public void content(String t) {
                        content.append(t);
                    }

                    @Override
                    public void callStarted(int index, String id, String name) {
                        calls.add(new String[] {name, ""});
                    }

                    @Override
                    public void arguments(int index, String fragment) {
                        calls.get(index)[1] += fragment;
                    }
                });
        parser.feed(text);
        parser.finish();
        assertThat(parser.incomplete()).as(text).isFalse();
        assertThat(parser.malformed()).as(text).isFalse();
        assertThat(content.toString()).as(text).isBlank();
        assertThat(calls).as(text).isNotEmpty();
        if (!parallel) {
            assertThat(calls).as(text).hasSize(1);
        }
        for (String[] call : calls) {
            Tool tool = tools.stream().filter(t -> t.name().equals(call[0])).findFirst().orElseThrow();
            Schema schema = REGISTRY.getSchema(JsonText.write(tool.parameters()));
            List<Error> errors = schema.validate(MAPPER.readTree(call[1]));
            assertThat(errors).as("arguments %s of %s in %s", call[1], call[0], text).isEmpty();
        }
        return calls.size();
    }

    /// Random logits leaning towards tokens that close things (and the end), masked by the constraint; returns
    /// the answers that ended.
    static List<String> generate(Tokenizer tokenizer, ToolFormat format, List<Tool> tools, boolean parallel,
                                 int answers, int maxTokens, long seed, int[] before) {
        int vocabulary = tokenizer.vocabulary().size();
        float[] closing = new float[vocabulary];
        for (int token = 0; token < vocabulary; token++) {
            for (byte b : tokenizer.bytes(token)) {
                if (b == '"' || b == ']' || b == '}' || b == '>' || b == ',' || b >= '0' && b <= '9') {
                    closing[token] = 1;
                }
            }
            if (tokenizer.vocabulary().isEndOfGeneration(token)) {
                closing[token] = 1;
            }
        }
        SplittableRandom random = new SplittableRandom(seed);
        float[] noise = new float[2 * vocabulary];
        for (int i = 0; i < noise.length; i++) {
            noise[i] = (float) random.nextGaussian() * 2;
        }
        List<String> ended = new ArrayList<>();
        for (int n = 0; n < answers; n++) {
            float lean = (float) random.nextDouble(1, 6);
            ToolConstraint constraint = constraint(format, tools, parallel, before == null, tokenizer);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            if (before != null) {
                // text written before a call, then its trigger: unconstrained until the trigger
                for (int t : before) {
                    constraint.mask(new float[vocabulary]);
                    constraint.accept(t);
                    out.writeBytes(tokenizer.vocabulary().isControl(t) ? new byte[0] : tokenizer.bytes(t));
                }
                assertThat(constraint.constrained()).isTrue();
            }
            float[] logits = new float[vocabulary];
            for (int step = 0; step < maxTokens; step++) {
                int offset = random.nextInt(vocabulary);
                for (int t = 0; t < vocabulary; t++) {
                    logits[t] = noise[offset + t] + lean * closing[t];
                }
                constraint.mask(logits);
                int token = argmax(logits);
                assertThat(logits[token]).isGreaterThan(Float.NEGATIVE_INFINITY);
                if (tokenizer.vocabulary().isEndOfGeneration(token)) {
                    assertThat(constraint.isComplete()).isTrue();
                    ended.add(out.toString(StandardCharsets.UTF_8));
                    break;
                }
                constraint.accept(token);
                out.writeBytes(tokenizer.bytes(token));
            }
        }
        return ended;
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

    @Test
    void forcedCallsValidateInEveryFormat() throws Exception {
        Tokenizer tokenizer = tokenizer("models/stories260K.gguf");
        long seed = 1;
        for (ToolFormat format : List.of(ToolFormat.HERMES, ToolFormat.LLAMA3, ToolFormat.MISTRAL,
                ToolFormat.GENERIC)) {
            for (boolean parallel : new boolean[] {false, true}) {
                List<String> ended = generate(tokenizer, format, TOOLS, parallel, 25, 400, seed++, null);
                assertThat(ended.size()).as("%s parallel=%s: answers that ended", format, parallel)
                        .isGreaterThan(15);
                for (String text : ended) {
                    assertValidCalls(format, TOOLS, parallel, text);
                }
            }
        }
    }

    @Test
    void forcedCallsOnLlama3Vocabulary() throws Exception {
        Tokenizer tokenizer = tokenizer("tokenizer/llama3-bpe.gguf");
        for (ToolFormat format : List.of(ToolFormat.LLAMA3, ToolFormat.HERMES)) {
            List<String> ended = generate(tokenizer, format, TOOLS, false, 6, 200, 5, null);
            assertThat(ended).isNotEmpty();
            for (String text : ended) {
                assertValidCalls(format, TOOLS, false, text);
            }
        }
    }

    /// Text first, then the trigger: the grammar takes over from there.
    @Test
    void callAfterTextIsConstrainedFromItsTrigger() throws Exception {
        Tokenizer tokenizer = tokenizer("tokenizer/qwen2.gguf");
        int[] before = tokenizer.encode("Let me check.\n<tool_call>"); // <tool_call> is one token here
        for (String text : generate(tokenizer, ToolFormat.HERMES, TOOLS, true, 6, 200, 9, before)) {
            assertThat(text).startsWith("Let me check.\n<tool_call>");
            assertThat(assertValidCallsAfter(text, "Let me check.\n")).isPositive();
        }
    }

    static int assertValidCallsAfter(String text, String prefix) {
        assertThat(text).startsWith(prefix);
        return assertValidCalls(ToolFormat.HERMES, TOOLS, true, text.substring(prefix.length()));
    }

    /// The real model, sampling from its own distribution under the constraint (named function: one tool).
    @Test
    void stories260KWritesValidCalls() throws Exception {
        try (LlamaModel model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1)) {
            Tokenizer tokenizer = model.tokenizer();
            SplittableRandom random = new SplittableRandom(4);
            int ended = 0;
            for (int n = 0; n < 6; n++) {
                List<Tool> one = List.of(TOOLS.get(n % 2));
                TokenConstraint constraint = constraint(ToolFormat.GENERIC, one, false, true, tokenizer);
                try (Session session = model.newSession(512)) {
                    session.ingest(session.encode("Once upon a time"));
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    for (int step = 0; step < 300; step++) {
                        float[] logits = session.logits().clone();
                        constraint.mask(logits);
                        int token = sample(logits, random);
                        if (tokenizer.vocabulary().isEndOfGeneration(token)) {
                            assertValidCalls(ToolFormat.GENERIC, one, false, out.toString(StandardCharsets.UTF_8));
                            ended++;
                            break;
                        }
                        constraint.accept(token);
                        out.writeBytes(tokenizer.bytes(token));
                        session.ingest(token);
                    }
                }
            }
            assertThat(ended).isGreaterThanOrEqualTo(3);
        }
    }

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
}
