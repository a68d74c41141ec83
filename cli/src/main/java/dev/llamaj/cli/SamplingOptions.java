package dev.llamaj.cli;

import dev.llamaj.engine.Sampler;
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

    /// These options with `seed`.
    Sampler.Settings settings(long seed) {
        return new Sampler.Settings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed);
    }
}
