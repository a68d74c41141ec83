package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.gguf.SharedData;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// `--logit-bias`, `--presence-penalty`, `--frequency-penalty` and `--output-format` of `llama`, on stories260K.
class SamplingOptionsTest {
    static final String PROMPT = "Once upon a time";
    static Path model;

    @BeforeAll
    static void find() {
        model = SharedData.require("models/stories260K.gguf");
    }

    static LlamaCommandTest.Result run(String... args) {
        String[] all = new String[args.length + 6];
        System.arraycopy(new String[] {"--model", model.toString(), "--prompt", PROMPT, "-t", "1"}, 0, all, 0, 6);
        System.arraycopy(args, 0, all, 6, args.length);
        return LlamaCommandTest.run(all);
    }

    static void assertOneLineError(LlamaCommandTest.Result r, int code, String fragment) {
        assertThat(r.code()).as(r.err()).isEqualTo(code);
        assertThat(r.err().lines().findFirst().orElse("")).startsWith("llama: ").contains(fragment);
        assertThat(r.err()).doesNotContain("\tat ").doesNotContain("Exception");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> json(LlamaCommandTest.Result r) {
        assertThat(r.code()).as(r.err()).isZero();
        return (Map<String, Object>) Json.parse(r.out().strip());
    }

    /// The engine's own greedy completion with `settings`.
    static Completion engine(Sampler.Settings settings, int n) throws Exception {
        try (LlamaModel m = LlamaModel.load(model, 1); Session s = m.newSession(256)) {
            return s.generate(s.encode(PROMPT), n, Sampler.create(settings), List.of(), _ -> {}, null);
        }
    }

    @Test
    void badValuesAreOneLine() {
        assertOneLineError(run("--logit-bias", "600=1"), 1, "--logit-bias: token 600 is outside the vocabulary (0 to 511)");
        assertOneLineError(run("--logit-bias", "abc"), 1, "--logit-bias abc: expected TOKEN=BIAS");
        assertOneLineError(run("--logit-bias", "5=+inf"), 1, "--logit-bias 5=+inf: a bias must be finite or -inf");
        assertOneLineError(run("--logit-bias", "5=1e99"), 1, "a bias must be finite");
        assertOneLineError(run("--logit-bias", "5"), 1, "expected TOKEN=BIAS");
        assertOneLineError(run("--presence-penalty", "3"), 1, "--presence-penalty must be between -2 and 2, got 3");
        assertOneLineError(run("--frequency-penalty", "NaN"), 1, "--frequency-penalty must be between -2 and 2");
        assertOneLineError(run("--presence-penalty", "x"), 2, "--presence-penalty");
        assertOneLineError(run("--output-format", "xml"), 2, "--output-format");
        assertOneLineError(run("--chat", "--output-format", "json"), 1, "does not apply to --chat");
    }

    @Test
    void jsonReportCarriesTheLogprobs() {
        Map<String, Object> r = json(run("-n", "8", "--temperature", "0", "--output-format", "json"));
        assertThat(((Number) r.get("mean_logprob")).doubleValue()).isNegative();
        assertThat(((Number) r.get("min_logprob")).doubleValue())
                .isLessThanOrEqualTo(((Number) r.get("mean_logprob")).doubleValue());
        assertThat((List<?>) r.get("generated_ids")).hasSize(8);
    }

    @Test
    void logitBiasBansTheGreedyChoice() throws Exception {
        Map<String, Object> plain = json(run("-n", "6", "--temperature", "0", "--output-format", "json"));
        long first = ((Number) ((List<?>) plain.get("generated_ids")).getFirst()).longValue();
        for (String form : List.of(first + "=-inf", first + "-100", first + " = -100")) {
            Map<String, Object> banned = json(run("-n", "6", "--temperature", "0", "--output-format", "json",
                    "--logit-bias", form));
            List<?> ids = (List<?>) banned.get("generated_ids");
            assertThat(((Number) ids.getFirst()).longValue()).as(form).isNotEqualTo(first);
            assertThat(banned.get("text")).isEqualTo(engine(Sampler.Settings.greedy()
                    .withLogitBias(Map.of((int) first, Float.NEGATIVE_INFINITY)), 6).text());
        }
    }

    @Test
    void penaltiesReachTheSampler() throws Exception {
        Map<String, Object> r = json(run("-n", "40", "--temperature", "0", "--output-format", "json",
                "--frequency-penalty", "1.5", "--presence-penalty", "0.5"));
        String expected = engine(Sampler.Settings.greedy().withPenalties(0.5f, 1.5f), 40).text();
        assertThat(r.get("text")).isEqualTo(expected).isNotEqualTo(engine(Sampler.Settings.greedy(), 40).text());
    }
}
