package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.IOTA;
import static dev.llamaj.engine.kernel.Simd.LE;

import dev.llamaj.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/// Candidate `Q4_K` lane-layout matrix-vector kernels against [Q4_K#matVecLanes] ([KernelLab]): `rows1` is the
/// kernel before, with the scale pair built from two float broadcasts; `p` marks the pair as one 64-bit broadcast (as
/// the engine now does), `s` the top nibble shifted as 16-bit lanes; `rowsN`: N rows per pass, one stream per row.
final class Q4KLab {
    private Q4KLab() {
    }

    private static final int BLOCK = 256;
    private static final int LANE_BYTES = Q4_K.LANE_BYTES;
    private static final VectorSpecies<Long> LL = LongVector.SPECIES_512;
    private static final int NIBBLES = 0x000F000F;
    private static final VectorShuffle<Integer> NEIGHBOUR = VectorShuffle.fromOp(I, i -> i ^ 1);
    private static final IntVector EVEN_LANES = IOTA.and(1).sub(1);
    private static final FloatVector EVEN_ONES = (FloatVector) IOTA.and(1).neg().add(1)
            .convertShape(VectorOperators.I2F, F, 0);
    private static final FloatVector ODD_ONES = (FloatVector) IOTA.and(1).convertShape(VectorOperators.I2F, F, 0);

    /// `ROWS COLS DRAM(true|false)`
    public static void main(String[] args) {
        int rows = Integer.parseInt(args[0]);
        int cols = Integer.parseInt(args[1]);
        boolean dram = Boolean.parseBoolean(args[2]);
        Arena arena = Arena.ofShared();
        Parallel pool = new Parallel(1);
        MemorySegment gguf = arena.allocate(GGMLType.Q4_K.byteSize((long) rows * cols), 64);
        dev.llamaj.engine.synth.SyntheticModel.randomWeights(GGMLType.Q4_K, gguf, 42);
        Matrix first = Repack.repack(new Matrix(GGMLType.Q4_K, gguf, rows, cols), arena, pool);
        long bytes = first.data().byteSize();
        long rowBytes = first.stride();
        int copies = dram ? (int) ((768L << 20) / bytes + 1) : 1;
        MemorySegment[] data = new MemorySegment[copies];
        data[0] = first.data();
        for (int i = 1; i < copies; i++) {
            data[i] = Memory.allocate(bytes, arena).copyFrom(first.data());
        }
        float[] x = new float[cols];
        SplittableRandom rnd = new SplittableRandom(1);
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextDouble(-1, 1);
        }
        Input in = new Input();
        in.begin(x, 0);
        in.prepare(GGMLType.Q4_K, Matrix.Layout.LANES, cols);
        float[] out = new float[rows];
        int[] next = {0};
        Supplier<MemorySegment> w = () -> {
            MemorySegment m = data[next[0]];
            next[0] = next[0] + 1 == copies ? 0 : next[0] + 1;
            return m;
        };
        float[] want = new float[rows];
        Q4_K.matVecLanes(data[0], rowBytes, cols, x, 0, want, 0, 0, rows, in);
        Q40Lab.check("rows1", want, o -> rows1(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows2", want, o -> rows2(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows4", want, o -> rows4(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows1p", want, o -> rows1p(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows4p", want, o -> rows4p(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows4ps", want, o -> rows4ps(data[0], rowBytes, cols, o, 0, 0, rows, in));
        new KernelLab(bytes, rows * (cols / 256.0))
                .add("rows1", () -> rows1(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("engine", () -> Q4_K.matVecLanes(w.get(), rowBytes, cols, x, 0, out, 0, 0, rows, in))
                .add("rows2", () -> rows2(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("rows4", () -> rows4(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("rows1p", () -> rows1p(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("rows4p", () -> rows4p(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("rows4ps", () -> rows4ps(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .run(30, Math.max(1, (int) (20_000_000L / bytes)), 3.43);
    }

    static void rows1(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 1) {
            long o0 = r * rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector sums = IntVector.fromArray(I, bs, 16 * i);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector u;
                IntVector s;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc0 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc0);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
        }
    }

    static void rows2(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 2) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector sums = IntVector.fromArray(I, bs, 16 * i);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector u;
                IntVector s;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc0 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc1 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc1);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
            v = acc1;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 1] = v.lane(0);
        }
    }

    static void rows4(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 4) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            long o2 = o1 + rowBytes;
            long o3 = o2 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector sums = IntVector.fromArray(I, bs, 16 * i);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector u;
                IntVector s;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc0 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc1 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc1);
                b = o2 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc2 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc2);
                b = o3 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc3 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b) * dxi).mul(EVEN_ONES)
                                .add(FloatVector.broadcast(F, w.get(Simd.FLOAT_LE, b + 4) * dxi).mul(ODD_ONES)), acc3);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
            v = acc1;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 1] = v.lane(0);
            v = acc2;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 2] = v.lane(0);
            v = acc3;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 3] = v.lane(0);
        }
    }

    static void rows1p(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 1) {
            long o0 = r * rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector sums = IntVector.fromArray(I, bs, 16 * i);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector u;
                IntVector s;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc0 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc0);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
        }
    }

    static void rows4p(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 4) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            long o2 = o1 + rowBytes;
            long o3 = o2 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector sums = IntVector.fromArray(I, bs, 16 * i);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector u;
                IntVector s;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc0 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc1 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc1);
                b = o2 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc2 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc2);
                b = o3 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.lanewise(VectorOperators.LSHR, 12).and(NIBBLES).mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc3 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc3);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
            v = acc1;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 1] = v.lane(0);
            v = acc2;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 2] = v.lane(0);
            v = acc3;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 3] = v.lane(0);
        }
    }

    static void rows4ps(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs4;
        int[] bs = in.sums32;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 4) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            long o2 = o1 + rowBytes;
            long o3 = o2 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            for (int i = 0; i < nb; i++) {
                long t = (long) i * LANE_BYTES;
                int p = 128 * i;
                IntVector x0 = IntVector.fromArray(I, xq, p);
                IntVector x1 = IntVector.fromArray(I, xq, p + 16);
                IntVector x2 = IntVector.fromArray(I, xq, p + 32);
                IntVector x3 = IntVector.fromArray(I, xq, p + 48);
                IntVector x4 = IntVector.fromArray(I, xq, p + 64);
                IntVector x5 = IntVector.fromArray(I, xq, p + 80);
                IntVector x6 = IntVector.fromArray(I, xq, p + 96);
                IntVector x7 = IntVector.fromArray(I, xq, p + 112);
                IntVector sums = IntVector.fromArray(I, bs, 16 * i);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector u;
                IntVector s;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                        .reinterpretAsInts().mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                                .reinterpretAsInts().mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc0 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                        .reinterpretAsInts().mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                                .reinterpretAsInts().mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc1 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc1);
                b = o2 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                        .reinterpretAsInts().mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                                .reinterpretAsInts().mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc2 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc2);
                b = o3 + t;
                v = IntVector.fromMemorySegment(I, w, b + 24, LE);
                u = IntVector.fromMemorySegment(I, w, b + 88, LE);
                s = v.and(NIBBLES).mul(x0).add(v.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x1))
                        .add(v.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x2)
                                .add(v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                        .reinterpretAsInts().mul(x3)))
                        .add(u.and(NIBBLES).mul(x4).add(u.lanewise(VectorOperators.LSHR, 8).and(NIBBLES).mul(x5))
                                .add(u.lanewise(VectorOperators.LSHR, 4).and(NIBBLES).mul(x6)
                                        .add(u.reinterpretAsShorts().lanewise(VectorOperators.LSHR, 12)
                                                .reinterpretAsInts().mul(x7)))
                                .add(Input.PAIR_BIAS))
                        .lanewise(VectorOperators.ASHR, 16);
                s = s.add(s.rearrange(NEIGHBOUR)).and(EVEN_LANES).add(sums);
                acc3 = ((FloatVector) s.mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 8, LE)
                                .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                        .convertShape(VectorOperators.I2F, F, 0))
                        .fma(((FloatVector) LongVector.broadcast(LL, w.get(ValueLayout.JAVA_LONG_UNALIGNED, b))
                                .reinterpretAsFloats()).mul(dxi), acc3);
            }
            // butterflies: fixed-order lane sums, then every lane holds its row's sum (see Simd)
            FloatVector v;
            v = acc0;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r] = v.lane(0);
            v = acc1;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 1] = v.lane(0);
            v = acc2;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 2] = v.lane(0);
            v = acc3;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 3] = v.lane(0);
        }
    }
}
