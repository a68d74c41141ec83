package dev.llamaj.bench;

import dev.llamaj.engine.kernel.Attention;
import dev.llamaj.engine.kernel.Kernels;
import java.util.concurrent.TimeUnit;
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
import org.openjdk.jmh.annotations.Warmup;

/// The small float operations of a forward pass, single-threaded, at Llama sizes: RMSNorm over the residual
/// stream, softmax over an attention row, SwiGLU over the feed-forward width, RoPE of a prompt batch's queries
/// ([Kernels#ropeTiled]: the decoder rotates a single token's 2048 values with scalar code), and the attention of one layer over a
/// half-precision key/value cache of `context` positions with the decoder's kernel, [Attention#attend] (Llama 3.2 1B:
/// 32 query heads of 64 sharing 8 key/value heads; per head a dot product with every cached key, a softmax, and a
/// weighted sum of the values). Times are per call.
///
/// ```
/// java -jar bench/target/benchmarks.jar OpsBenchmark
/// java -jar bench/target/benchmarks.jar OpsBenchmark.attention -p context=4096
/// ```
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class OpsBenchmark {

    /// A residual-stream vector and its norm weights.
    @State(Scope.Thread)
    public static class Vector {
        @Param({"2048", "4096"})
        public int dim;

        float[] x;
        float[] weight;
        float[] out;

        @Setup(Level.Trial)
        public void setUp() {
            x = KernelBenchmark.random(dim, 1);
            weight = KernelBenchmark.random(dim, 2);
            out = new float[dim];
        }
    }

    /// Attention scores of one head over the context, and a whole layer's cache.
    @State(Scope.Thread)
    public static class Context {
        static final int HEADS = 32;
        static final int KV_HEADS = 8;
        static final int HEAD_SIZE = 64;

        @Param({"512", "4096"})
        public int context;

        float[] scores;
        float[] row;
        float[] q;
        short[] keys;
        short[] values;
        float[] att;
        float[] out;

        @Setup(Level.Trial)
        public void setUp() {
            scores = KernelBenchmark.random(context, 3);
            row = new float[context];
            q = KernelBenchmark.random(HEADS * HEAD_SIZE, 4);
            for (int i = 0; i < q.length; i++) {
                q[i] = Attention.half(q[i]);
            }
            keys = halves(KV_HEADS * Attention.paddedLength(context) * HEAD_SIZE, 5);
            values = halves(context * KV_HEADS * HEAD_SIZE, 6);
            att = new float[HEADS * Attention.paddedLength(context)];
            out = new float[HEADS * HEAD_SIZE];
        }

        private static short[] halves(int n, long seed) {
            float[] f = KernelBenchmark.random(n, seed);
            short[] h = new short[n];
            for (int i = 0; i < n; i++) {
                h[i] = Float.floatToFloat16(f[i]);
            }
            return h;
        }
    }

    /// The feed-forward gate and up projections, as SwiGLU gets them (Llama 3.2 1B's width).
    @State(Scope.Thread)
    public static class FeedForward {
        @Param({"8192"})
        public int width;

        float[] gate;
        float[] gateCopy;
        float[] up;

        @Setup(Level.Trial)
        public void setUp() {
            gate = KernelBenchmark.random(width, 7);
            gateCopy = gate.clone();
            up = KernelBenchmark.random(width, 8);
        }
    }

    /// The queries of a batch of prompt tokens in the tiled layout, and rotation tables of real angles (so the
    /// repeated in-place rotation keeps the values' size).
    @State(Scope.Thread)
    public static class Batch {
        static final int HEADS = 32;
        static final int HEAD_SIZE = 64;

        @Param({"512"})
        public int tokens;

        float[] q;
        float[] cos;
        float[] sin;
        int stride;

        @Setup(Level.Trial)
        public void setUp() {
            q = KernelBenchmark.random(Kernels.tiledSize(HEADS * HEAD_SIZE, tokens), 9);
            stride = tokens + Kernels.TILE;
            int pairs = HEAD_SIZE / 2;
            float[] angles = KernelBenchmark.random(pairs * stride, 10);
            cos = new float[angles.length];
            sin = new float[angles.length];
            for (int i = 0; i < angles.length; i++) {
                cos[i] = (float) Math.cos(4 * angles[i]);
                sin[i] = (float) Math.sin(4 * angles[i]);
            }
        }
    }

    @Benchmark
    public float rmsNorm(Vector v) {
        Kernels.rmsNorm(v.out, 0, v.x, 0, v.weight, v.dim, 1e-5f);
        return v.out[0];
    }

    @Benchmark
    public float softmax(Context a) {
        System.arraycopy(a.scores, 0, a.row, 0, a.context);
        Kernels.softmax(a.row, 0, a.context);
        return a.row[0];
    }

    @Benchmark
    public float swiGlu(FeedForward f) {
        System.arraycopy(f.gateCopy, 0, f.gate, 0, f.width);
        Kernels.swiGlu(f.gate, f.up, f.width);
        return f.gate[0];
    }

    /// RoPE of the queries of `tokens` prompt tokens (32 heads of 64, all pairs rotated), in place.
    @Benchmark
    public float rope(Batch b) {
        Kernels.ropeTiled(b.q, Batch.HEADS * Batch.HEAD_SIZE, Batch.HEADS, Batch.HEAD_SIZE, Batch.HEAD_SIZE / 2, 2, 1,
                b.tokens / Kernels.TILE, b.cos, b.sin, b.stride, 0);
        return b.q[0];
    }

    /// One layer's attention for one new token over `context` cached positions (all heads, one thread).
    @Benchmark
    public float attention(Context a) {
        int hs = Context.HEAD_SIZE;
        int group = Context.HEADS / Context.KV_HEADS;
        int padded = Attention.paddedLength(a.context);
        float scale = (float) (1 / Math.sqrt(hs));
        for (int h = 0; h < Context.KV_HEADS; h++) {
            int q0 = h * group * hs;
            Attention.attend(a.q, q0, group, hs, a.keys, h, padded, a.values, h * hs, Context.KV_HEADS * hs,
                    a.context, scale, a.att, h * group * padded, a.out, q0);
        }
        return a.out[0];
    }
}
