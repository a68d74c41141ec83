package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.B;
import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.FLOAT_LE;
import static dev.llamaj.engine.kernel.Simd.I;
import static dev.llamaj.engine.kernel.Simd.LE;

import dev.llamaj.gguf.GGMLType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/// Candidate `Q6_K` lane-layout matrix-vector kernels against [Q6_K#matVecLanes] (three rows per pass; two
/// before), with [KernelLab]: more rows per pass, one DRAM stream per row.
final class Q6KLab {
    private Q6KLab() {
    }

    private static final int BLOCK = 256;
    private static final int LANE_BYTES = Q6_K.LANE_BYTES;
    private static final int BYTES_0_2 = 0x00FF00FF;

    /// `ROWS COLS DRAM(true|false)`
    public static void main(String[] args) {
        int rows = Integer.parseInt(args[0]);
        int cols = Integer.parseInt(args[1]);
        boolean dram = Boolean.parseBoolean(args[2]);
        Arena arena = Arena.ofShared();
        Parallel pool = new Parallel(1);
        MemorySegment gguf = arena.allocate(GGMLType.Q6_K.byteSize((long) rows * cols), 64);
        dev.llamaj.engine.synth.SyntheticModel.randomWeights(GGMLType.Q6_K, gguf, 42);
        Matrix first = Repack.repack(new Matrix(GGMLType.Q6_K, gguf, rows, cols), arena, pool);
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
        in.prepare(GGMLType.Q6_K, Matrix.Layout.LANES, cols);
        float[] out = new float[rows];
        int[] next = {0};
        Supplier<MemorySegment> w = () -> {
            MemorySegment m = data[next[0]];
            next[0] = next[0] + 1 == copies ? 0 : next[0] + 1;
            return m;
        };
        float[] want = new float[rows];
        Q6_K.matVecLanes(data[0], rowBytes, cols, x, 0, want, 0, 0, rows, in);
        Q40Lab.check("rows2", want, o -> rows2(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows4", want, o -> rows4(data[0], rowBytes, cols, o, 0, 0, rows, in));
        Q40Lab.check("rows8", want, o -> rows8(data[0], rowBytes, cols, o, 0, 0, rows, in));
        new KernelLab(bytes, rows * (cols / 256.0))
                .add("rows2", () -> rows2(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("engine", () -> Q6_K.matVecLanes(w.get(), rowBytes, cols, x, 0, out, 0, 0, rows, in))
                .add("rows4", () -> rows4(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .add("rows8", () -> rows8(w.get(), rowBytes, cols, out, 0, 0, rows, in))
                .run(30, Math.max(1, (int) (20_000_000L / bytes)), 3.43);
    }

    static void rows2(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs6Lanes;
        int[] bs = in.sums16;
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
                IntVector offset = IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 5);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector s;
                IntVector u;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc1);
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
        int[] xq = in.pairs6Lanes;
        int[] bs = in.sums16;
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
                IntVector offset = IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 5);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector s;
                IntVector u;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc1);
                b = o2 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc2);
                b = o3 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc3);
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

    static void rows8(MemorySegment w, long rowBytes, int cols, float[] out, int outOffset, int from, int to,
            Input in) {
        int nb = cols / BLOCK;
        int[] xq = in.pairs6Lanes;
        int[] bs = in.sums16;
        float[] dx = in.scale;
        for (int r = from; r < to; r += 8) {
            long o0 = r * rowBytes;
            long o1 = o0 + rowBytes;
            long o2 = o1 + rowBytes;
            long o3 = o2 + rowBytes;
            long o4 = o3 + rowBytes;
            long o5 = o4 + rowBytes;
            long o6 = o5 + rowBytes;
            long o7 = o6 + rowBytes;
            FloatVector acc0 = FloatVector.zero(F);
            FloatVector acc1 = acc0;
            FloatVector acc2 = acc0;
            FloatVector acc3 = acc0;
            FloatVector acc4 = acc0;
            FloatVector acc5 = acc0;
            FloatVector acc6 = acc0;
            FloatVector acc7 = acc0;
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
                IntVector offset = IntVector.fromArray(I, bs, 16 * i).lanewise(VectorOperators.LSHL, 5);
                float dxi = dx[i];
                long b;
                IntVector v;
                IntVector s;
                IntVector u;
                b = o0 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc0 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc0);
                b = o1 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc1 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc1);
                b = o2 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc2 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc2);
                b = o3 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc3 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc3);
                b = o4 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc4 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc4);
                b = o5 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc5 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc5);
                b = o6 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc6 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc6);
                b = o7 + t;
                v = IntVector.fromMemorySegment(I, w, b + 20, LE);
                s = v.and(BYTES_0_2).mul(x0).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x1))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 84, LE);
                u = v.and(BYTES_0_2).mul(x2).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x3))
                        .lanewise(VectorOperators.ASHR, 16);
                v = IntVector.fromMemorySegment(I, w, b + 148, LE);
                s = v.and(BYTES_0_2).mul(x4).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x5))
                        .lanewise(VectorOperators.ASHR, 16).add(s);
                v = IntVector.fromMemorySegment(I, w, b + 212, LE);
                u = v.and(BYTES_0_2).mul(x6).add(Input.PAIR_BIAS)
                        .add(v.lanewise(VectorOperators.LSHR, 8).and(BYTES_0_2).mul(x7))
                        .lanewise(VectorOperators.ASHR, 16).add(u);
                s = s.add(u).sub(offset).mul((IntVector) ByteVector.fromMemorySegment(B, w, b + 4, LE)
                        .convertShape(VectorOperators.B2I, I, 0));
                acc7 = ((FloatVector) s.convertShape(VectorOperators.I2F, F, 0))
                        .fma(FloatVector.broadcast(F, w.get(FLOAT_LE, b) * dxi), acc7);
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
            v = acc4;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 4] = v.lane(0);
            v = acc5;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 5] = v.lane(0);
            v = acc6;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 6] = v.lane(0);
            v = acc7;
            v = v.add(v.rearrange(Simd.SWAP_HALF));
            v = v.add(v.rearrange(Simd.SWAP_QUARTER));
            v = v.add(v.rearrange(Simd.SWAP_EIGHTH));
            v = v.add(v.rearrange(Simd.SWAP_SIXTEENTH));
            out[outOffset + r + 7] = v.lane(0);
        }
    }
}
