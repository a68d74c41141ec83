package dev.llamaj.cli;

import dev.llamaj.engine.Architecture;
import dev.llamaj.engine.synth.SyntheticModel.Shape;
import dev.llamaj.engine.synth.SyntheticModel.Type;
import dev.llamaj.engine.synth.SyntheticModel;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/// `llama synth`: writes a GGUF model of a real shape with random weights ([SyntheticModel]), so that `bench` and
/// the JMH benchmarks run at real sizes without a download.
@Command(name = "synth", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Writes a GGUF model of a real shape with random weights (for benchmarks).")
final class SynthCommand implements Callable<Integer> {
    @ParentCommand
    LlamaCommand parent;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--shape", required = true, paramLabel = "SHAPE", converter = ShapeConverter.class,
            description = "tiny, llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, tinyllama-1.1b, qwen2.5-7b, qwen3-8b, "
                    + "gemma-3-4b, phi-4-mini, mistral-nemo-12b or granite-3-8b")
    Shape shape;

    @Option(names = "--arch", paramLabel = "ARCH",
            description = "the model family, if not the shape's own: llama, qwen2, qwen3, gemma2, gemma3, phi3, "
                    + "granite, olmo2, mistral3, smollm3 (the shape's dimensions with the family's tensors)")
    String arch;

    @Option(names = "--type", required = true, paramLabel = "TYPE", converter = TypeConverter.class,
            description = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (every matrix "
                    + "in that type) or the llama.cpp mixes Q3_K_M, Q4_K_M, Q5_K_M")
    Type type;

    @Option(names = "--vocab", paramLabel = "FILE",
            description = "take the vocabulary from this GGUF file (e.g. a vocabulary-only one); default: a "
                    + "generated SentencePiece vocabulary of the shape's size")
    Path vocab;

    @Option(names = {"-s", "--seed"}, paramLabel = "N", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "the GGUF file to write")
    Path output;

    @Option(names = "--verbose", description = "show stack traces of errors")
    boolean verbose;

    @Override
    public Integer call() throws IOException {
        Shape chosen = shape;
        if (arch != null) {
            Architecture family = Arrays.stream(Architecture.values())
                    .filter(a -> a.ggufName.equals(arch.toLowerCase(Locale.ROOT))).findFirst()
                    .orElseThrow(() -> new CommandLine.ParameterException(spec.commandLine(), "--arch: unknown "
                            + "architecture '" + arch + "' (known: " + Architecture.supportedNames() + ")"));
            chosen = shape.withArchitecture(family);
        }
        SyntheticModel model = SyntheticModel.of(chosen, type).withSeed(seed);
        if (vocab != null) {
            model = model.withVocabulary(vocab);
        }
        if (Files.isDirectory(output)) {
            throw new IOException(output + ": is a directory");
        }
        long start = System.nanoTime();
        if (CliFiles.isSpecial(output)) {
            // a device or pipe is written in place: renaming onto it would replace it (it did: /dev/full became a
            // regular file)
            try {
                model.write(output);
            } catch (IOException e) {
                throw CliFiles.writeError(output, e);
            }
            parent.out.printf(Locale.ROOT, "%s: %s %s written in %.1f s%n", output, shape.name(), type,
                    (System.nanoTime() - start) / 1e9);
            return 0;
        }
        // written beside the target and renamed at the end, so an interrupted run leaves no half-written model
        Path partial = output.resolveSibling(output.getFileName() + ".part");
        try {
            try {
                model.write(partial);
            } catch (IOException e) {
                throw CliFiles.writeError(output, e);
            }
            try {
                Files.move(partial, output, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial, output, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(partial);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long size = Files.size(output);
        parent.out.printf(Locale.ROOT, "%s: %s %s, %s parameters, %d tensors, %,d bytes (%s), vocabulary %s (%d "
                        + "tokens), seed %d, written in %.1f s%n",
                output, chosen.name() + (arch != null ? " as " + chosen.architecture().ggufName : ""), type,
                BenchCommand.formatCount(model.parameterCount()), model.tensors().size(),
                size, BenchCommand.formatBytes(size), vocab != null ? vocab.getFileName() : "generated",
                model.vocabSize(), seed, seconds);
        return 0;
    }

    static final class ShapeConverter implements CommandLine.ITypeConverter<Shape> {
        @Override
        public Shape convert(String value) {
            try {
                return Shape.named(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    static final class TypeConverter implements CommandLine.ITypeConverter<Type> {
        @Override
        public Type convert(String value) {
            try {
                return Type.named(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
