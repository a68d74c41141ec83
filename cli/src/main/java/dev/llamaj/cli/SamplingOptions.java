package dev.llamaj.cli;

import dev.llamaj.engine.Sampler;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/// The sampling options `llama` (generate, chat) and `llama batch` share, with llama.cpp's defaults.
final class SamplingOptions {
    @Option(names = "--temperature", paramLabel = "T", description = "0 for greedy (default: ${DEFAULT-VALUE})")
    float temperature = 0.8f;

    @Option(names = "--top-k", paramLabel = "K", description = "0 to disable (default: ${DEFAULT-VALUE})")
    int topK = 40;

    @Option(names = "--top-p", paramLabel = "P", description = "1 to disable (default: ${DEFAULT-VALUE})")
    float topP = 0.95f;

    @Option(names = "--min-p", paramLabel = "P", description = "0 to disable (default: ${DEFAULT-VALUE})")
    float minP = 0.05f;

    @Option(names = "--repeat-penalty", paramLabel = "X", description = "1 to disable (default: ${DEFAULT-VALUE})")
    float repeatPenalty = 1.0f;

    @Option(names = "--repeat-last-n", paramLabel = "N",
            description = "recent tokens the penalty looks at (default: ${DEFAULT-VALUE})")
    int repeatLastN = 64;

    @Option(names = "--presence-penalty", paramLabel = "X",
            description = "subtract X from the logit of every token already generated (OpenAI's; default: 0)")
    float presencePenalty = 0f;

    @Option(names = "--frequency-penalty", paramLabel = "X",
            description = "subtract X times the count of each token already generated (OpenAI's; default: 0)")
    float frequencyPenalty = 0f;

    @Option(names = "--logit-bias", paramLabel = "TOKEN=BIAS",
            description = "add BIAS to the logit of token id TOKEN (repeatable; -100 or less, or -inf, bans it)")
    List<String> logitBias = new ArrayList<>();

    /// These options with `seed`.
    ///
    /// @throws IllegalArgumentException naming the option with a bad value
    Sampler.Settings settings(long seed) {
        checkPenalty("--presence-penalty", presencePenalty);
        checkPenalty("--frequency-penalty", frequencyPenalty);
        return new Sampler.Settings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed)
                .withPenalties(presencePenalty, frequencyPenalty)
                .withLogitBias(logitBias());
    }

    /// OpenAI's range: beyond it a penalty drowns the model's own preferences (and it keeps NaN out).
    private static void checkPenalty(String option, float value) {
        if (!(value >= -2 && value <= 2)) {
            throw new IllegalArgumentException(option + " must be between -2 and 2, got " + value);
        }
    }

    /// Fails unless every `--logit-bias` token is in a vocabulary of `size` tokens.
    void checkVocabulary(int size) {
        for (int token : logitBias().keySet()) {
            if (token >= size) {
                throw new IllegalArgumentException("--logit-bias: token " + token + " is outside the vocabulary (0 to "
                        + (size - 1) + ")");
            }
        }
    }

    /// `--logit-bias` values: `TOKEN=BIAS`, or llama.cpp's `TOKEN+BIAS` / `TOKEN-BIAS`; BIAS a number or `inf`.
    private Map<Integer, Float> logitBias() {
        Map<Integer, Float> bias = new LinkedHashMap<>();
        for (String value : logitBias) {
            java.util.regex.Matcher m = BIAS.matcher(value.strip());
            if (!m.matches()) {
                throw new IllegalArgumentException("--logit-bias " + value + ": expected TOKEN=BIAS, such as 13=-100"
                        + " or 29871=2.5");
            }
            int token = Integer.parseInt(m.group(1));
            String number = m.group(3);
            boolean negative = number.startsWith("-") != m.group(2).equals("-");
            String magnitude = number.replaceFirst("^[-+]", "");
            float b = magnitude.equalsIgnoreCase("inf") ? Float.POSITIVE_INFINITY : Float.parseFloat(magnitude);
            if (negative) {
                b = -b;
            }
            if (!Float.isFinite(b) && b != Float.NEGATIVE_INFINITY) {
                throw new IllegalArgumentException("--logit-bias " + value + ": a bias must be finite or -inf (use 100"
                        + " to force a token)");
            }
            bias.put(token, b);
        }
        return bias;
    }

    /// `TOKEN` `=`, `+` or `-` `BIAS`; with `=` the sign belongs to BIAS.
    private static final java.util.regex.Pattern BIAS = java.util.regex.Pattern.compile(
            "(\\d{1,9})\\s*(=|\\+|-)\\s*([-+]?(?:inf|[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?))",
            java.util.regex.Pattern.CASE_INSENSITIVE);
}
