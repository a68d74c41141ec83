package dev.llamaj.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.engine.grammar.Grammar;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// The command line of the `spark-submit` example job (its run is in `LlamaSparkTest`).
class GenerateJobTest {
    private static final String[] REQUIRED = {"--model", "m.gguf", "--input", "in.jsonl", "--output", "out"};

    private static String[] with(String... more) {
        String[] all = new String[REQUIRED.length + more.length];
        System.arraycopy(REQUIRED, 0, all, 0, REQUIRED.length);
        System.arraycopy(more, 0, all, REQUIRED.length, more.length);
        return all;
    }

    @Test
    void parsesEveryOption() {
        GenerateJob.Job job = GenerateJob.parse(with("--id-column", "key", "--seed", "-9", "--max-tokens", "32",
                "--temperature", "0", "--presence-penalty", "0.5", "--frequency-penalty", "-1",
                "--logit-bias", "13=-100", "--logit-bias", "7=-inf", "--sequences", "2", "--no-batching",
                "--threads", "3", "--context", "512",
                "--chat-template", "chatml", "--stop", "\n", "--stop", "END", "--partitions", "8"));
        GenerationOptions o = job.options();
        assertThat(o.model()).isEqualTo("m.gguf");
        assertThat(job.input()).isEqualTo("in.jsonl");
        assertThat(job.output()).isEqualTo("out");
        assertThat(job.partitions()).isEqualTo(8);
        assertThat(o.idColumn()).isEqualTo("key");
        assertThat(o.seed()).isEqualTo(-9);
        assertThat(o.maxTokens()).isEqualTo(32);
        assertThat(o.temperature()).isZero();
        assertThat(o.presencePenalty()).isEqualTo(0.5f);
        assertThat(o.frequencyPenalty()).isEqualTo(-1f);
        assertThat(o.logitBias()).isEqualTo(Map.of(13, -100f, 7, Float.NEGATIVE_INFINITY));
        assertThat(o.sequences()).isEqualTo(2);
        assertThat(o.batching()).isFalse();
        assertThat(GenerateJob.parse(with("--sequences", "2")).options().batching()).isTrue();
        assertThat(o.threads()).isEqualTo(3);
        assertThat(o.contextLength()).isEqualTo(512);
        assertThat(o.chatTemplate()).isEqualTo("chatml");
        assertThat(o.stop()).isEqualTo(List.of("\n", "END"));
        assertThat(GenerateJob.parse(REQUIRED).options()).isEqualTo(GenerationOptions.of("m.gguf"));
    }

    @Test
    void grammarsComeFromFilesAsInTheCli(@TempDir Path dir) throws Exception {
        Path schema = Files.writeString(dir.resolve("schema.json"), "{\"type\": \"boolean\"}");
        assertThat(GenerateJob.parse(with("--json-schema", schema.toString())).options().jsonSchema())
                .isEqualTo("{\"type\": \"boolean\"}");
        assertThat(GenerateJob.parse(with("--json-schema", " {\"enum\": [1]}")).options().jsonSchema())
                .isEqualTo(" {\"enum\": [1]}");
        assertThat(GenerateJob.parse(with("--json")).options().jsonSchema()).isEqualTo(GenerateJob.ANY_OBJECT);
        Grammar anyObject = Grammar.fromJsonSchema(GenerateJob.ANY_OBJECT);
        assertThat(anyObject.matches("{\"a\": [1, \"b\"]}")).isTrue();
        assertThat(anyObject.matches("[1]")).isFalse();
        Path gbnf = Files.writeString(dir.resolve("g.gbnf"), "root ::= \"a\"");
        assertThat(GenerateJob.parse(with("--grammar", gbnf.toString())).options().grammar())
                .isEqualTo("root ::= \"a\"");
        assertThatThrownBy(() -> GenerateJob.parse(with("--grammar", dir.resolve("none").toString())))
                .hasMessageStartingWith("--grammar: cannot read " + dir.resolve("none"));
        assertThatThrownBy(() -> GenerateJob.parse(with("--json-schema", "schema.json")))
                .hasMessageStartingWith("--json-schema: cannot read schema.json");
        assertThatThrownBy(() -> GenerateJob.parse(with("--grammar", gbnf.toString(), "--json")))
                .hasMessage("bad option: grammar and jsonSchema exclude each other: give one");
    }

    @Test
    void badCommandLinesAreOneLineNamingTheOption() {
        assertThatThrownBy(() -> GenerateJob.parse(new String[] {"--model", "m.gguf"}))
                .hasMessage("--model, --input and --output are required");
        assertThatThrownBy(() -> GenerateJob.parse(with("--top", "3"))).hasMessage("unknown option --top");
        assertThatThrownBy(() -> GenerateJob.parse(with("extra"))).hasMessage("unexpected argument 'extra'");
        assertThatThrownBy(() -> GenerateJob.parse(with("--seed"))).hasMessage("--seed needs a value");
        assertThatThrownBy(() -> GenerateJob.parse(with("--max-tokens", "ten")))
                .hasMessage("--max-tokens must be an integer, got 'ten'");
        assertThatThrownBy(() -> GenerateJob.parse(with("--sequences", "99999999999")))
                .hasMessage("--sequences must be an integer, got '99999999999'");
        assertThatThrownBy(() -> GenerateJob.parse(with("--temperature", "warm")))
                .hasMessage("--temperature must be a number, got 'warm'");
        assertThatThrownBy(() -> GenerateJob.parse(with("--temperature", "-1")))
                .hasMessage("bad option: temperature must be 0 or more, got -1.0");
        assertThatThrownBy(() -> GenerateJob.parse(with("--presence-penalty", "3")))
                .hasMessage("bad option: presencePenalty must be between -2 and 2, got 3.0");
        assertThatThrownBy(() -> GenerateJob.parse(with("--frequency-penalty", "x")))
                .hasMessage("--frequency-penalty must be a number, got 'x'");
        assertThatThrownBy(() -> GenerateJob.parse(with("--logit-bias", "13")))
                .hasMessage("--logit-bias 13: expected TOKEN=BIAS, such as 13=-100");
        assertThatThrownBy(() -> GenerateJob.parse(with("--logit-bias", "a=1")))
                .hasMessage("--logit-bias a=1: expected TOKEN=BIAS, such as 13=-100");
        assertThatThrownBy(() -> GenerateJob.parse(with("--logit-bias", "-3=1")))
                .hasMessage("bad option: logit bias: token id must be 0 or more, got -3");
        assertThatThrownBy(() -> GenerateJob.parse(with("--sequences", "0")))
                .hasMessage("bad option: sequences must be 1 or more, got 0");
        assertThatThrownBy(() -> GenerateJob.parse(with("--no-batching", "true")))
                .as("a flag without a value").hasMessage("unexpected argument 'true'");
        assertThatThrownBy(() -> GenerateJob.parse(with("--partitions", "-1")))
                .hasMessage("--partitions must be 0 (as read) or more, got -1");
    }
}
