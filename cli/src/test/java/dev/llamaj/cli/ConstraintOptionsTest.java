package dev.llamaj.cli;

import static dev.llamaj.cli.SamplingOptionsTest.assertOneLineError;
import static dev.llamaj.cli.SamplingOptionsTest.json;
import static dev.llamaj.cli.SamplingOptionsTest.run;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.gguf.SharedData;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `--grammar`, `--json-schema` and `--json` of `llama` and `llama batch`, on stories260K, whose stories are
/// nothing like JSON: whatever it writes must follow the grammar.
class ConstraintOptionsTest {
    static final String YES_NO = """
            {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}},
             "required": ["answer"], "additionalProperties": false}""";

    @TempDir
    Path dir;

    @BeforeAll
    static void find() {
        SamplingOptionsTest.find();
    }

    @Test
    void anInlineSchemaShapesTheOutput() {
        for (String seed : new String[] {"1", "2", "3"}) {
            Map<String, Object> r = json(run("-n", "60", "--seed", seed, "--output-format", "json",
                    "--json-schema", YES_NO));
            Object parsed = Json.parse(((String) r.get("text")).strip());
            assertThat(parsed).isIn(Map.of("answer", "yes"), Map.of("answer", "no"));
            assertThat(r.get("stop_reason")).isEqualTo("end_of_generation");
        }
    }

    @Test
    void aSchemaFileAndAGrammarFile() throws Exception {
        Path schema = Files.writeString(dir.resolve("schema.json"), YES_NO);
        Map<String, Object> r = json(run("-n", "60", "--temperature", "0", "--output-format", "json",
                "--json-schema", schema.toString()));
        assertThat(Json.parse(((String) r.get("text")).strip())).isIn(Map.of("answer", "yes"),
                Map.of("answer", "no"));

        Path grammar = Files.writeString(dir.resolve("colour.gbnf"), """
                root ::= "The " colour " dog."
                colour ::= "red" | "green" | "blue"
                """);
        for (String seed : new String[] {"4", "5"}) {
            Map<String, Object> g = json(run("-n", "40", "--seed", seed, "--output-format", "json", "--grammar",
                    grammar.toString()));
            assertThat((String) g.get("text")).matches("The (red|green|blue) dog\\.");
            assertThat(g.get("stop_reason")).isEqualTo("end_of_generation");
        }
    }

    @Test
    void jsonGivesAnObject() {
        Map<String, Object> r = json(run("-n", "200", "--temperature", "0", "--output-format", "json", "--json"));
        String text = ((String) r.get("text")).strip();
        assertThat(text).startsWith("{");
        if (r.get("stop_reason").equals("end_of_generation")) {
            assertThat(Json.parse(text)).isInstanceOf(Map.class);
        }
    }

    @Test
    void badGrammarsAreOneLine() throws Exception {
        Path bad = Files.writeString(dir.resolve("bad.gbnf"), "root ::= \"a\" | \n  ( \"b\"\n");
        assertOneLineError(run("--grammar", bad.toString()), 1, "--grammar " + bad + ": ");
        assertOneLineError(run("--grammar", dir.resolve("none.gbnf").toString()), 1, "none.gbnf: no such file");
        assertOneLineError(run("--json-schema", "{\"type\": \"array\", \"uniqueItems\": true}"), 1,
                "--json-schema: schema /uniqueItems: unsupported JSON Schema keyword 'uniqueItems'");
        assertOneLineError(run("--json-schema", "{\"type\": "), 1, "--json-schema: not valid JSON");
        assertOneLineError(run("--json-schema", dir.resolve("none.json").toString()), 1, "no such file");
        assertOneLineError(run("--json", "--json-schema", YES_NO), 1,
                "give one of --grammar, --json-schema and --json");
    }

    @Test
    void chatHoldsEveryAnswerToTheSchema() throws Exception {
        try (LlamaModel model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
             Session session = model.newSession(512)) {
            Grammar grammar = Grammar.fromJsonSchema(YES_NO);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ChatRepl repl = new ChatRepl(session, ChatFormat.of(model, ChatFormat.builtin("chatml").orElseThrow()),
                    Sampler.create(Sampler.Settings.defaults(3)), () -> grammar.newConstraint(model.tokenizer()), 60,
                    List.of(), null, new PrintStream(out, true, StandardCharsets.UTF_8),
                    new PrintStream(OutputStream.nullOutputStream()));
            repl.run(new BufferedReader(new StringReader("Is the sky blue?\nAnd the grass?\n/exit\n")));
            // each answer follows the "> " prompt; the last prompt waits for input that never comes
            List<String> answers = out.toString(StandardCharsets.UTF_8).lines().map(l -> l.replaceFirst("^> ", ""))
                    .filter(l -> !l.isBlank()).toList();
            assertThat(answers).hasSize(2);
            for (String answer : answers) {
                assertThat(Json.parse(answer.strip())).isIn(Map.of("answer", "yes"),
                        Map.of("answer", "no"));
            }
        }
    }

    @Test
    void batchHoldsEveryLineToTheSchema() throws Exception {
        Path in = Files.writeString(dir.resolve("in.jsonl"), """
                {"id": 1, "prompt": "Once upon a time", "max_tokens": 60}
                {"id": 2, "prompt": "Tom and Lily", "max_tokens": 60, "temperature": 1.5}
                """);
        Path out = dir.resolve("out.jsonl");
        LlamaCommandTest.Result r = LlamaCommandTest.run("batch", "--model",
                SharedData.require("models/stories260K.gguf").toString(), "--input", in.toString(), "--output",
                out.toString(), "-t", "1", "--seed", "9", "--json-schema", YES_NO);
        assertThat(r.code()).as(r.err()).isZero();
        for (String line : Files.readAllLines(out)) {
            @SuppressWarnings("unchecked")
            Map<String, Object> result = (Map<String, Object>) Json.parse(line);
            assertThat(Json.parse(((String) result.get("text")).strip())).isIn(Map.of("answer", "yes"),
                    Map.of("answer", "no"));
        }
    }
}
