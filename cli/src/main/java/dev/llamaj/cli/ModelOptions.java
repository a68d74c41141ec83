package dev.llamaj.cli;

import dev.llamaj.engine.LlamaModel;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/// Options shared by every command that loads a model.
final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "FILE", description = "GGUF model file (required)")
    Path model;

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = {"-t", "--threads"}, paramLabel = "N",
            description = "compute threads (default: available processors, ${DEFAULT-VALUE})")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--verbose", description = "show stack traces of errors and model details")
    boolean verbose;

    /// The model path; a missing `--model` is a usage error.
    Path model() {
        if (model == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Missing required option: '--model=FILE'");
        }
        return model;
    }

    LlamaModel load() throws IOException {
        Path path = model();
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be 1 or more, got " + threads);
        }
        return LlamaModel.load(path, threads);
    }
}
