package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.LE;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/// Candidate `Q4_0` matrix-vector kernels over the four-row layout, measured against the engine's
/// [Q4_0#matVec4Int] with [KernelLab]: the variants its doc comment lists, losers included, and two ablations that
/// compute wrong results on purpose to show where the time goes (`noScale`: no float work; `noMul`: adds for the
/// multiplies). Each is written inline (no vector helpers, see [Simd]); 512-bit vectors only.
final class Q40Lab {
    private Q40Lab() {
    }

    /// `java -cp bench/target/benchmarks.jar --add-modules jdk.incubator.vector dev.llamaj.engine.kernel.Q40Lab
    /// ROWS COLS DRAM(true|false)`
    public static void main(String[] args) {
        int rows = Integer.parseInt(args[0]);
        int cols = Integer.parseInt(args[1]);
        boolean dram = Boolean.parseBoolean(args[2]);
        java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared();
        Parallel pool = new Parallel(1);
        MemorySegment gguf = arena.allocate(dev.llamaj.gguf.GGMLType.Q4_0.byteSize((long) rows * cols), 64);
        dev.llamaj.engine.synth.SyntheticModel.randomWeights(dev.llamaj.gguf.GGMLType.Q4_0, gguf, 42);
        Matrix first = Repack.repack(new Matrix(dev.llamaj.gguf.GGMLType.Q4_0, gguf, rows, cols), arena, pool);
        long bytes = first.data().byteSize();
        int copies = dram ? (int) ((768L << 20) / bytes + 1) : 1;
        MemorySegment[] data = new MemorySegment[copies];
        data[0] = first.data();
        for (int i = 1; i < copies; i++) {
            data[i] = Memory.allocate(bytes, arena).copyFrom(first.data());
        }
        float[] x = new float[cols];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(1);
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextDouble(-1, 1);
        }
        Input in = new Input();
        in.begin(x, 0);
        in.prepare(dev.llamaj.gguf.GGMLType.Q4_0, Matrix.Layout.ROWS4, cols);
        ShortInput si = new ShortInput();
        si.prepare(x, cols);
        float[] out = new float[rows];
        int[] next = {0};
        java.util.function.Supplier<MemorySegment> w = () -> {
            MemorySegment m = data[next[0]];
            next[0] = next[0] + 1 == copies ? 0 : next[0] + 1;
            return m;
        };
        MemorySegment xqa = arena.allocate(4L * in.pairs40.length, 64);
        MemorySegment.copy(in.pairs40, 0, xqa, java.lang.foreign.ValueLayout.JAVA_INT, 0, in.pairs40.length);
        float[] want = new float[rows];
        oneGroup(data[0], cols, want, 0, rows, in);
        check("engine", want, o -> Q4_0.matVec4Int(data[0], cols, o, 0, 0, rows, in));
        check("shortMul", want, o -> shortMul(data[0], cols, o, 0, rows, si));
        check("twoGroups", want, o -> twoGroups(data[0], cols, o, 0, rows, in));
        check("fourGroups", want, o -> fourGroups(data[0], cols, o, 0, rows, in));
        check("aligned", want, o -> fourGroupsAligned(data[0], cols, o, 0, rows, in, xqa));
        check("eightGroups", want, o -> eightGroups(data[0], cols, o, 0, rows, in));
        check("prefetch", want, o -> prefetch(data[0], cols, o, 0, rows, in, 512));
        new KernelLab(bytes, rows / 4.0 * cols / 32)
                .add("oneGroup", () -> oneGroup(w.get(), cols, out, 0, rows, in))
                .add("engine", () -> Q4_0.matVec4Int(w.get(), cols, out, 0, 0, rows, in))
                .add("twoGroups", () -> twoGroups(w.get(), cols, out, 0, rows, in))
                .add("fourGroups", () -> fourGroups(w.get(), cols, out, 0, rows, in))
                .add("shortMul", () -> shortMul(w.get(), cols, out, 0, rows, si))
                .add("pf512", () -> prefetch(w.get(), cols, out, 0, rows, in, 512))
                .add("pf4096", () -> prefetch(w.get(), cols, out, 0, rows, in, 4096))
                .add("noScale", () -> noScale(w.get(), cols, out, 0, rows, in))
                .add("noMul", () -> noMul(w.get(), cols, out, 0, rows, in))
                .add("aligned4", () -> fourGroupsAligned(w.get(), cols, out, 0, rows, in, xqa))
                .add("eightGroups", () -> eightGroups(w.get(), cols, out, 0, rows, in))
                .add("loadOnly", () -> loadOnly(w.get(), cols, out, 0, rows, in))
                .run(30, Math.max(1, (int) (20_000_000L / bytes)), 3.43);
    }

    static final VectorSpecies<Short> S32 = ShortVector.SPECIES_512;
    private static final int NIBBLES = 0x000F000F;
    private static final VectorShuffle<Float> ROW_SCALES = VectorShuffle.fromOp(F, i -> i / 4);
    private static final VectorShuffle<Float> ROW_SUMS = VectorShuffle.fromOp(F, i -> 4 * (i & 3));

    /// The activations of [#shortMul]: per block 4 × 32 shorts, extraction `e` (shift `4e`) of short lane `j`
    /// multiplies weight `w(e, j % 8)`, and per block `−2·Σq` (each row has four int lanes after widening).
    static final class ShortInput {
        short[] xs;
        int[] bias;
        float[] scale;

        void prepare(float[] x, int cols) {
            int blocks = cols / 32;
            xs = new short[blocks * 128];
            bias = new int[blocks];
            scale = new float[blocks];
            int[] q = new int[32];
            for (int b = 0; b < blocks; b++) {
                scale[b] = Input.quantizeBlock(x, 32 * b, q, 0, 32);
                int sum = 0;
                for (int v : q) {
                    sum += v;
                }
                bias[b] = -2 * sum;
                for (int e = 0; e < 4; e++) {
                    for (int j = 0; j < 32; j++) {
                        int k = j % 8;
                        int w = switch (e) {
                            case 0 -> 2 * k;
                            case 1 -> 16 + 2 * k;
                            case 2 -> 2 * k + 1;
                            default -> 17 + 2 * k;
                        };
                        xs[128 * b + 32 * e + j] = (short) q[w];
                    }
                }
            }
        }
    }

    /// 16-bit lanes: one nibble per lane per extraction (`vpmullw`), four products summed in shorts, then each int
    /// lane's two shorts added (sign-extend the low one).
    static void shortMul(MemorySegment w, int cols, float[] out, int from, int to, ShortInput in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        short[] xs = in.xs;
        int[] bias = in.bias;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                int p = 128 * b;
                ShortVector v = ShortVector.fromMemorySegment(S32, w, o + 16, LE);
                ShortVector s = v.and((short) 0xF).mul(ShortVector.fromArray(S32, xs, p))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and((short) 0xF)
                                .mul(ShortVector.fromArray(S32, xs, p + 32)))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and((short) 0xF)
                                .mul(ShortVector.fromArray(S32, xs, p + 64))
                                .add(v.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S32, xs, p + 96))));
                IntVector t = s.reinterpretAsInts();
                IntVector sum = t.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                        .add(t.lanewise(VectorOperators.ASHR, 16)).add(bias[b]);
                FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dx[b]);
                acc = ((FloatVector) sum.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
            }
            acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
            acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
            acc.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
        }
    }

    /// [Q4_0#matVec4Int] with two four-row groups per pass (two independent chains).
    static void twoGroups(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 8) {
            long g = (r >>> 2) * groupBytes;
            long h = g + groupBytes;
            FloatVector acc = FloatVector.zero(F);
            FloatVector acc2 = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                long o2 = h + (long) b * Q4_0.GROUP_BYTES;
                int p = 64 * b;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                int bb = bias[b];
                float dxb = dx[b];
                IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
                IntVector u = IntVector.fromMemorySegment(I, w, o2 + 16, LE);
                IntVector s = v.and(NIBBLES).mul(x0)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3))
                                .add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                IntVector s2 = u.and(NIBBLES).mul(x0)
                        .add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3))
                                .add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dxb);
                FloatVector d2 = FloatVector.fromMemorySegment(F, w, o2, LE).rearrange(ROW_SCALES).mul(dxb);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
                acc2 = ((FloatVector) s2.convertShape(VectorOperators.I2F, F, 0)).fma(d2, acc2);
            }
            acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
            acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
            acc.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
            acc2.rearrange(ROW_SUMS).intoArray(out, r + 4, Simd.FIRST4);
        }
    }

    /// [Q4_0#matVec4Int] minus the scales (ablation: what the per-block float work costs; wrong results).
    static void noScale(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            IntVector acc = IntVector.zero(I);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                int p = 64 * b;
                IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
                IntVector s = v.and(NIBBLES).mul(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                        .mul(IntVector.fromArray(I, xq, p + 48)))
                                .add(bias[b]))
                        .lanewise(VectorOperators.ASHR, 16);
                acc = s.add(acc);
            }
            FloatVector f = (FloatVector) acc.convertShape(VectorOperators.I2F, F, 0);
            f.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
        }
    }

    static void check(String name, float[] want, java.util.function.Consumer<float[]> kernel) {
        float[] got = new float[want.length];
        kernel.accept(got);
        for (int i = 0; i < want.length; i++) {
            if (Math.abs(want[i] - got[i]) > 1e-4f * Math.max(1, Math.abs(want[i]))) {
                throw new AssertionError(name + " row " + i + ": " + got[i] + " != " + want[i]);
            }
        }
    }

    /// The kernel before eight-group passes: one group at a time (one stream).
    static void oneGroup(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                int p = 64 * b;
                IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
                IntVector s = v.and(NIBBLES).mul(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                        .mul(IntVector.fromArray(I, xq, p + 48)))
                                .add(bias[b]))
                        .lanewise(VectorOperators.ASHR, 16);
                FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dx[b]);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
            }
            acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
            acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
            acc.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
        }
    }

    /// [#fourGroups] with the activation pairs read from a 64-byte-aligned native segment instead of the `int[]`
    /// (whose vectors may straddle cache lines).
    static void fourGroupsAligned(MemorySegment w, int cols, float[] out, int from, int to, Input in,
                                  MemorySegment xq) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 16) {
            long g0 = (r >>> 2) * groupBytes;
            long g1 = g0 + groupBytes;
            long g2 = g1 + groupBytes;
            long g3 = g2 + groupBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int b = 0; b < nb; b++) {
                long o = (long) b * Q4_0.GROUP_BYTES;
                long p = 256L * b;
                IntVector x0 = IntVector.fromMemorySegment(I, xq, p, LE);
                IntVector x1 = IntVector.fromMemorySegment(I, xq, p + 64, LE);
                IntVector x2 = IntVector.fromMemorySegment(I, xq, p + 128, LE);
                IntVector x3 = IntVector.fromMemorySegment(I, xq, p + 192, LE);
                int bb = bias[b];
                float dxb = dx[b];
                IntVector v = IntVector.fromMemorySegment(I, w, g0 + o + 16, LE);
                IntVector s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g0 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc0);
                v = IntVector.fromMemorySegment(I, w, g1 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g1 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc1);
                v = IntVector.fromMemorySegment(I, w, g2 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g2 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc2);
                v = IntVector.fromMemorySegment(I, w, g3 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g3 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc3);
            }
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_EIGHTH));
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_SIXTEENTH));
            acc0.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_EIGHTH));
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_SIXTEENTH));
            acc1.rearrange(ROW_SUMS).intoArray(out, r + 4, Simd.FIRST4);
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
            acc2.rearrange(ROW_SUMS).intoArray(out, r + 8, Simd.FIRST4);
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_EIGHTH));
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_SIXTEENTH));
            acc3.rearrange(ROW_SUMS).intoArray(out, r + 12, Simd.FIRST4);
        }
    }

    /// Keeps the touch-ahead loads alive.
    static int sink;

    /// [Q4_0#matVec4Int] plus one scalar load `ahead` bytes in front of each block (software prefetch by touching).
    static void prefetch(MemorySegment w, int cols, float[] out, int from, int to, Input in, long ahead) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        long last = w.byteSize() - 1;
        int touch = 0;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                touch += w.get(java.lang.foreign.ValueLayout.JAVA_BYTE, Math.min(o + ahead, last));
                int p = 64 * b;
                IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
                IntVector s = v.and(NIBBLES).mul(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                        .mul(IntVector.fromArray(I, xq, p + 48)))
                                .add(bias[b]))
                        .lanewise(VectorOperators.ASHR, 16);
                FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dx[b]);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
            }
            acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
            acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
            acc.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
        }
        sink = touch;
    }

    /// Four four-row groups per pass: four streams, four chains.
    static void fourGroups(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 16) {
            long g0 = (r >>> 2) * groupBytes;
            long g1 = g0 + groupBytes;
            long g2 = g1 + groupBytes;
            long g3 = g2 + groupBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int b = 0; b < nb; b++) {
                long o = (long) b * Q4_0.GROUP_BYTES;
                int p = 64 * b;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                int bb = bias[b];
                float dxb = dx[b];
                IntVector v = IntVector.fromMemorySegment(I, w, g0 + o + 16, LE);
                IntVector s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g0 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc0);
                v = IntVector.fromMemorySegment(I, w, g1 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g1 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc1);
                v = IntVector.fromMemorySegment(I, w, g2 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g2 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc2);
                v = IntVector.fromMemorySegment(I, w, g3 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g3 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc3);
            }
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_EIGHTH));
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_SIXTEENTH));
            acc0.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_EIGHTH));
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_SIXTEENTH));
            acc1.rearrange(ROW_SUMS).intoArray(out, r + 4, Simd.FIRST4);
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
            acc2.rearrange(ROW_SUMS).intoArray(out, r + 8, Simd.FIRST4);
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_EIGHTH));
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_SIXTEENTH));
            acc3.rearrange(ROW_SUMS).intoArray(out, r + 12, Simd.FIRST4);
        }
    }

    /// Eight four-row groups per pass: eight streams, eight chains.
    static void eightGroups(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 32) {
            long g0 = (r >>> 2) * groupBytes;
            long g1 = g0 + groupBytes;
            long g2 = g1 + groupBytes;
            long g3 = g2 + groupBytes;
            long g4 = g3 + groupBytes;
            long g5 = g4 + groupBytes;
            long g6 = g5 + groupBytes;
            long g7 = g6 + groupBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            FloatVector acc4 = acc0;
            FloatVector acc5 = acc0;
            FloatVector acc6 = acc0;
            FloatVector acc7 = acc0;
            for (int b = 0; b < nb; b++) {
                long o = (long) b * Q4_0.GROUP_BYTES;
                int p = 64 * b;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                int bb = bias[b];
                float dxb = dx[b];
                IntVector v;
                IntVector s;
                v = IntVector.fromMemorySegment(I, w, g0 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g0 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc0);
                v = IntVector.fromMemorySegment(I, w, g1 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g1 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc1);
                v = IntVector.fromMemorySegment(I, w, g2 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g2 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc2);
                v = IntVector.fromMemorySegment(I, w, g3 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g3 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc3);
                v = IntVector.fromMemorySegment(I, w, g4 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc4 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g4 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc4);
                v = IntVector.fromMemorySegment(I, w, g5 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc5 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g5 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc5);
                v = IntVector.fromMemorySegment(I, w, g6 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc6 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g6 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc6);
                v = IntVector.fromMemorySegment(I, w, g7 + o + 16, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)).add(bb))
                        .lanewise(VectorOperators.ASHR, 16);
                acc7 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.fromMemorySegment(F, w, g7 + o, LE).rearrange(ROW_SCALES).mul(dxb), acc7);
            }
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_EIGHTH));
            acc0 = acc0.add(acc0.rearrange(Simd.SWAP_SIXTEENTH));
            acc0.rearrange(ROW_SUMS).intoArray(out, r + 0, Simd.FIRST4);
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_EIGHTH));
            acc1 = acc1.add(acc1.rearrange(Simd.SWAP_SIXTEENTH));
            acc1.rearrange(ROW_SUMS).intoArray(out, r + 4, Simd.FIRST4);
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_EIGHTH));
            acc2 = acc2.add(acc2.rearrange(Simd.SWAP_SIXTEENTH));
            acc2.rearrange(ROW_SUMS).intoArray(out, r + 8, Simd.FIRST4);
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_EIGHTH));
            acc3 = acc3.add(acc3.rearrange(Simd.SWAP_SIXTEENTH));
            acc3.rearrange(ROW_SUMS).intoArray(out, r + 12, Simd.FIRST4);
            acc4 = acc4.add(acc4.rearrange(Simd.SWAP_EIGHTH));
            acc4 = acc4.add(acc4.rearrange(Simd.SWAP_SIXTEENTH));
            acc4.rearrange(ROW_SUMS).intoArray(out, r + 16, Simd.FIRST4);
            acc5 = acc5.add(acc5.rearrange(Simd.SWAP_EIGHTH));
            acc5 = acc5.add(acc5.rearrange(Simd.SWAP_SIXTEENTH));
            acc5.rearrange(ROW_SUMS).intoArray(out, r + 20, Simd.FIRST4);
            acc6 = acc6.add(acc6.rearrange(Simd.SWAP_EIGHTH));
            acc6 = acc6.add(acc6.rearrange(Simd.SWAP_SIXTEENTH));
            acc6.rearrange(ROW_SUMS).intoArray(out, r + 24, Simd.FIRST4);
            acc7 = acc7.add(acc7.rearrange(Simd.SWAP_EIGHTH));
            acc7 = acc7.add(acc7.rearrange(Simd.SWAP_SIXTEENTH));
            acc7.rearrange(ROW_SUMS).intoArray(out, r + 28, Simd.FIRST4);
        }
    }

    /// Ablation: [Q4_0#matVec4Int] with the multiplies replaced by adds (what `vpmulld` costs; wrong results).
    static void noMul(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        int[] xq = in.pairs40;
        int[] bias = in.bias40;
        float[] dx = in.scale32;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            FloatVector acc = FloatVector.zero(F);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                int p = 64 * b;
                IntVector v = IntVector.fromMemorySegment(I, w, o + 16, LE);
                IntVector s = v.and(NIBBLES).add(IntVector.fromArray(I, xq, p))
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).add(IntVector.fromArray(I, xq, p + 16)))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).add(IntVector.fromArray(I, xq, p + 32))
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES)
                                        .add(IntVector.fromArray(I, xq, p + 48)))
                                .add(bias[b]))
                        .lanewise(VectorOperators.ASHR, 16);
                FloatVector d = FloatVector.fromMemorySegment(F, w, o, LE).rearrange(ROW_SCALES).mul(dx[b]);
                acc = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0)).fma(d, acc);
            }
            acc = acc.add(acc.rearrange(Simd.SWAP_EIGHTH));
            acc = acc.add(acc.rearrange(Simd.SWAP_SIXTEENTH));
            acc.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
        }
    }

    /// Ablation: only the weight loads and one add per block (the memory floor of the loop; wrong results).
    static void loadOnly(MemorySegment w, int cols, float[] out, int from, int to, Input in) {
        int nb = cols / 32;
        long groupBytes = (long) nb * Q4_0.GROUP_BYTES;
        for (int r = from; r < to; r += 4) {
            long g = (r >>> 2) * groupBytes;
            IntVector acc = IntVector.zero(I);
            IntVector acc2 = IntVector.zero(I);
            for (int b = 0; b < nb; b++) {
                long o = g + (long) b * Q4_0.GROUP_BYTES;
                acc = IntVector.fromMemorySegment(I, w, o + 16, LE).add(acc);
                acc2 = IntVector.fromMemorySegment(I, w, o, LE).add(acc2);
            }
            FloatVector f = (FloatVector) acc.add(acc2).convertShape(VectorOperators.I2F, F, 0);
            f.rearrange(ROW_SUMS).intoArray(out, r, Simd.FIRST4);
        }
    }
}
