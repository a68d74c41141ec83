package dev.llamaj.bench;

import dev.llamaj.engine.kernel.Kernels;
import dev.llamaj.engine.kernel.Matrix;
import dev.llamaj.engine.kernel.Parallel;
import dev.llamaj.engine.kernel.Repack;
import dev.llamaj.engine.synth.SyntheticModel;
import dev.llamaj.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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

/// The weight kernels at the matrix shapes of real models: `matVec` (one token: generation) and `matMul` (a batch of
/// tokens: prompt processing), for every weight type, on random valid blocks ([SyntheticModel#randomWeights]).
///
/// Shapes are `rows x cols` (`cols` is ggml's `ne0`): Llama 3.2 1B's `attn_q`/`attn_output` (2048x2048), `ffn_gate`/
/// `ffn_up` (8192x2048), `ffn_down` (2048x8192) and classifier (128256x2048), and Llama 3.1 8B's `ffn_down`
/// (4096x14336). Unless `cache=true`, enough copies of the matrix are cycled through (at least 512 MiB) that every
/// product streams its weights from DRAM, as in generation, where the whole model is far larger than the caches.
///
/// Besides ops/s, two secondary results are reported per second: `weightGB` (10⁹ bytes of weights read: compare
/// with the memory bandwidth `llama.jar bench` measures) and `gflop` (10⁹ floating-point operations, 2 per weight
/// and token: compare with the FP32 peak).
///
/// ```
/// java -jar bench/target/benchmarks.jar KernelBenchmark.matVec -p type=Q4_0,Q8_0 -p shape=2048x8192
/// java -jar bench/target/benchmarks.jar KernelBenchmark.matMul -p type=Q4_0 -p shape=4096x14336 -p tokens=128
/// java -jar bench/target/benchmarks.jar KernelBenchmark -p threads=1,2 -rf json -rff kernels.json
/// ```
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "-Xmx4g"})
public class KernelBenchmark {
    /// Matrices cycled through in DRAM mode add up to at least this.
    static final long DRAM_BYTES = 512L << 20;

    @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    public String type;

    @Param({"2048x2048", "8192x2048", "2048x8192", "128256x2048", "4096x14336"})
    public String shape;

    /// Threads of the pool; 0 means one per available processor.
    @Param({"0"})
    public int threads;

    /// `true` multiplies one matrix over and over (it may sit in the caches); `false` cycles through copies in DRAM.
    @Param({"false"})
    public boolean cache;

    /// `true` (as loading a model does) repacks the matrices whose type has a load-time layout (`Q4_0`, `Q8_0`, and
    /// with 512-bit vectors `Q2_K`, `Q3_K`, `Q4_K`, `Q6_K`; see `Repack`) and copies float ones into huge pages;
    /// `false` keeps the GGUF layout.
    @Param({"true"})
    public boolean repack;

    private Arena arena;
    private Matrix[] matrices;
    private int next;
    private Parallel pool;
    private float[] x;
    private float[] out;
    double weightGBPerProduct;
    double gflopPerToken;

    /// Tokens of the batch for `matMul`.
    @State(Scope.Benchmark)
    public static class Batch {
        @Param({"128", "512"})
        public int tokens;

        float[] x;
        float[] out;

        @Setup(Level.Trial)
        public void setUp(KernelBenchmark k) {
            Matrix m = k.matrices[0];
            x = random(Kernels.tiledSize(m.cols(), tokens), 2);
            out = new float[Kernels.tiledSize(m.rows(), tokens)];
        }
    }

    /// Secondary results, per second: weight gigabytes read and gigaflops.
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Traffic {
        public double weightGB;
        public double gflop;

        @Setup(Level.Iteration)
        public void clear() {
            weightGB = 0;
            gflop = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        String[] rc = shape.split("x");
        int rows = Integer.parseInt(rc[0]);
        int cols = Integer.parseInt(rc[1]);
        GGMLType t = GGMLType.valueOf(type);
        long bytes = t.byteSize((long) rows * cols);
        int copies = cache ? 1 : (int) Math.max(1, (DRAM_BYTES + bytes - 1) / bytes);
        arena = Arena.ofShared();
        MemorySegment first = arena.allocate(bytes, 64);
        SyntheticModel.randomWeights(t, first, 42);
        matrices = new Matrix[copies];
        for (int i = 0; i < copies; i++) {
            MemorySegment s = i == 0 ? first : arena.allocate(bytes, 64).copyFrom(first);
            matrices[i] = new Matrix(t, s, rows, cols);
        }
        pool = new Parallel(threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
        if (repack) {
            for (int i = 0; i < copies; i++) {
                Matrix m = matrices[i];
                matrices[i] = Repack.applies(m) ? Repack.repack(m, arena, pool)
                        : Repack.copies(m) ? Repack.copy(m, arena, pool) : m;
            }
        }
        x = random(cols, 1);
        out = new float[rows];
        weightGBPerProduct = bytes / 1e9;
        gflopPerToken = 2.0 * rows * cols / 1e9;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }

    private Matrix nextMatrix() {
        Matrix m = matrices[next];
        next = next + 1 == matrices.length ? 0 : next + 1;
        return m;
    }

    /// One matrix-vector product (one token).
    @Benchmark
    public float matVec(Traffic traffic) {
        Kernels.matVec(pool, nextMatrix(), x, 0, out, 0);
        traffic.weightGB += weightGBPerProduct;
        traffic.gflop += gflopPerToken;
        return out[0];
    }

    /// One matrix-matrix product (a batch of `tokens` tokens).
    @Benchmark
    public float matMul(Batch batch, Traffic traffic) {
        Kernels.matMul(pool, nextMatrix(), batch.x, 0, batch.out, 0, batch.tokens);
        traffic.weightGB += weightGBPerProduct;
        traffic.gflop += gflopPerToken * batch.tokens;
        return batch.out[0];
    }

    /// The small-batch product of batched decoding (`tokens` sequences, one token each): run with `-p tokens=1,4,8`.
    @Benchmark
    public float matMulFew(Batch batch, Traffic traffic) {
        Kernels.matMulFew(pool, nextMatrix(), batch.x, 0, batch.out, 0, batch.tokens);
        traffic.weightGB += weightGBPerProduct;
        traffic.gflop += gflopPerToken * batch.tokens;
        return batch.out[0];
    }

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextDouble(-1, 1);
        }
        return v;
    }
}
