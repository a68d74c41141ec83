package dev.llamaj.bench;

import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.synth.SyntheticModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/// Generation through the public API ([LlamaModel], [Session#ingest], [Session#logits]) on a [SyntheticModel] of a
/// real shape, written once into `bench/target/` (or `target/` when run from `bench/`, or the directory named by
/// `-Dllamaj.bench.models=DIR`) and reused by later runs.
///
/// `decode` is one generated token (a single-token forward pass with logits), the context growing from 1 to
/// `window` tokens and then starting over: ops/s is tokens/s, as llama-bench's `tg` test. `prefill` is a whole
/// prompt of `prompt` random tokens into an empty context: its `tokens` secondary result is prompt tokens/s, as
/// llama-bench's `pp` test.
///
/// ```
/// java -jar bench/target/benchmarks.jar GenerationBenchmark
/// java -jar bench/target/benchmarks.jar GenerationBenchmark.decode -p quant=Q4_0,Q8_0,Q4_K_M -p threads=1,2
/// java -jar bench/target/benchmarks.jar GenerationBenchmark -p model=llama-3.1-8b -p quant=Q4_K_M
/// ```
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GenerationBenchmark {
    /// A [SyntheticModel.Shape] name.
    @Param({"llama-3.2-1b"})
    public String model;

    /// A [SyntheticModel.Type] name (a weight type or a llama.cpp mix such as `Q4_K_M`).
    @Param({"Q4_0"})
    public String quant;

    /// Threads per session; 0 means one per available processor.
    @Param({"0"})
    public int threads;

    /// Prompt tokens of `prefill`.
    @Param({"128"})
    public int prompt;

    /// Context length `decode` grows to before starting over.
    @Param({"128"})
    public int window;

    private LlamaModel llama;
    private Session session;
    private int[] promptTokens;
    private int vocab;
    private int bos;
    private int token;

    /// Prompt tokens processed, reported per second.
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Tokens {
        public long tokens;

        @Setup(Level.Iteration)
        public void clear() {
            tokens = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        Path file = modelFile(SyntheticModel.Shape.named(model), SyntheticModel.Type.named(quant));
        llama = LlamaModel.load(file, threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
        session = llama.newSession(Math.max(prompt, window));
        vocab = llama.config().vocabSize();
        bos = llama.tokenizer().vocabulary().bos();
        SplittableRandom r = new SplittableRandom(7);
        promptTokens = new int[prompt];
        for (int i = 0; i < prompt; i++) {
            promptTokens[i] = i == 0 && bos >= 0 ? bos : r.nextInt(vocab);
        }
        token = Math.max(bos, 0);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        session.close();
        llama.close();
    }

    /// One generated token.
    @Benchmark
    public float decode() {
        if (session.position() >= window) {
            session.reset();
        }
        session.ingest(token);
        float[] logits = session.logits();
        token = (int) ((token * 2654435761L + 12345) % vocab);
        return logits[0];
    }

    /// One prompt of `prompt` tokens.
    @Benchmark
    public float prefill(Tokens counter) {
        session.reset();
        session.ingest(promptTokens);
        counter.tokens += prompt;
        return session.logits()[0];
    }

    /// The synthetic model file for this shape and type (seed 0), written if it is not there yet.
    static Path modelFile(SyntheticModel.Shape shape, SyntheticModel.Type type) throws IOException {
        String property = System.getProperty("llamaj.bench.models");
        Path dir = property != null ? Path.of(property)
                : Files.isDirectory(Path.of("bench", "target")) ? Path.of("bench", "target") : Path.of("target");
        Files.createDirectories(dir);
        Path file = dir.resolve("synthetic-" + shape.name() + "-" + type.name().toLowerCase() + ".gguf");
        if (!Files.exists(file)) {
            Path partial = Files.createTempFile(dir, file.getFileName().toString(), ".part");
            try {
                SyntheticModel.of(shape, type).write(partial);
                Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(partial);
            }
        }
        return file;
    }
}
