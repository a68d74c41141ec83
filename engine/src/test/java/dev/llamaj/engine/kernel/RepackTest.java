package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import dev.llamaj.gguf.GGMLType;

/// The four-row layout of `Q4_0` and `Q8_0` gives bit for bit the GGUF layout's results: dequantization, matVec on
/// any thread count, matMul; so do the lane layouts of `Q2_K`, `Q3_K`, `Q4_K` and `Q6_K`; except that the integer
/// matVec kernels (`Q4_0` and the lane layouts, with 512-bit vectors) multiply with `x` rounded to 8 bits, and are checked against
/// the reference on that `x`; the copy of float matrices is the same matrix; warm kernels allocate nothing.
class RepackTest {

    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q8_0"})
    void fourRowLayoutGivesTheSameResultsBitForBit(GGMLType type) {
        try (Arena arena = Arena.ofShared(); Parallel one = new Parallel(1); Parallel two = new Parallel(2);
             Parallel three = new Parallel(3)) {
            for (int[] shape : new int[][] {{4, 32}, {36, 96}, {64, 512}, {172, 64}}) {
                int rows = shape[0];
                int cols = shape[1];
                Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, rows + cols),
                        rows, cols);
                assertThat(Repack.applies(m)).isTrue();
                Matrix p = Repack.repack(m, arena, two);
                assertThat(p.layout()).isEqualTo(Matrix.Layout.ROWS4);
                assertThat(p.data().byteSize()).isEqualTo(Repack.groupBlockBytes(type) * (cols / 32) * (rows / 4));
                float[] a = new float[cols];
                float[] b = new float[cols];
                for (int r = 0; r < rows; r++) {
                    m.dequantizeRow(r, a, 0);
                    p.dequantizeRow(r, b, 0);
                    assertThat(b).as("%s row %d of %dx%d", type, r, rows, cols).isEqualTo(a);
                }
                float[] x = RandomWeights.floats(cols + 3, 7);
                float[] want = new float[rows + 1];
                Kernels.matVec(one, m, x, 3, want, 1);
                if (Input.quantizes(type, p.layout())) {
                    // the integer kernel multiplies with x rounded to 8 bits: against the reference on that x
                    float[] seen = Input.roundTrip(x, 3, cols, Input.roundTripBlock(type));
                    for (int r = 0; r < rows; r++) {
                        want[1 + r] = (float) KernelsTest.referenceOf(type).dot(m.data(), r * m.rowBytes(), seen, 0,
                                cols);
                    }
                    float[] got = new float[rows + 1];
                    Kernels.matVec(one, p, x, 3, got, 1);
                    for (int r = 0; r < rows; r++) {
                        double tol = KernelsTest.tolerance(type)
                                * KernelsTest.magnitude(type, m.data(), r * m.rowBytes(), seen, 0, cols) + 1e-30;
                        assertThat((double) got[1 + r]).as("%s %dx%d row %d", type, rows, cols, r)
                                .isCloseTo(want[1 + r], org.assertj.core.api.Assertions.within(tol));
                    }
                    want = got;
                }
                for (Parallel pool : new Parallel[] {one, two, three}) {
                    float[] got = new float[rows + 1];
                    Kernels.matVec(pool, p, x, 3, got, 1);
                    assertThat(got).as("%s %dx%d matVec on %d threads", type, rows, cols, pool.threads())
                            .isEqualTo(want);
                }
                int tokens = 37;
                float[] tx = RandomWeights.floats(Kernels.tiledSize(cols, tokens), 8);
                float[] mm = new float[Kernels.tiledSize(rows, tokens)];
                float[] pm = new float[mm.length];
                Kernels.matMul(two, m, tx, 0, mm, 0, tokens);
                Kernels.matMul(three, p, tx, 0, pm, 0, tokens);
                assertThat(pm).as("%s %dx%d matMul", type, rows, cols).isEqualTo(mm);
            }
        }
    }

    @Test
    void onlyWholeGroupsOfTheTwoFormatsAreRepacked() {
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix odd = new Matrix(GGMLType.Q4_0, RandomWeights.segment(arena, GGMLType.Q4_0, 0, 6 * 32, 1), 6, 32);
            assertThat(Repack.applies(odd)).isFalse();
            assertThat(Repack.repack(odd, arena, pool)).isSameAs(odd);
            Matrix k = new Matrix(GGMLType.Q5_K, RandomWeights.segment(arena, GGMLType.Q5_K, 0, 8 * 256, 1), 8, 256);
            assertThat(Repack.applies(k)).isFalse();
            for (GGMLType t : new GGMLType[] {GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q6_K}) {
                Matrix lanes = new Matrix(t, RandomWeights.segment(arena, t, 0, 5 * 256, 1), 5, 256);
                assertThat(Repack.applies(lanes)).as("%s, any row count, with 512-bit vectors", t)
                        .isEqualTo(Simd.L == 16);
            }
            Matrix f = new Matrix(GGMLType.F16, RandomWeights.segment(arena, GGMLType.F16, 0, 8 * 64, 2), 8, 64);
            assertThat(Repack.copies(f)).isTrue();
            Matrix c = Repack.copy(f, arena, pool);
            assertThat(c.data().asByteBuffer()).isEqualTo(f.data().asByteBuffer());
            assertThat(c.layout()).isEqualTo(Matrix.Layout.GGUF);
        }
    }

    @Test
    void allRepacksIntoOneAllocationAsOneByOne() {
        try (Arena arena = Arena.ofShared(); Parallel pool = new Parallel(2)) {
            java.util.List<Matrix> sources = new java.util.ArrayList<>();
            for (GGMLType t : new GGMLType[] {GGMLType.Q4_0, GGMLType.F16, GGMLType.Q5_K, GGMLType.Q8_0,
                    GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q2_K, GGMLType.Q3_K}) {
                int rows = 12;
                int cols = 256;
                sources.add(new Matrix(t, RandomWeights.segment(arena, t, 0, (long) rows * cols, rows), rows, cols));
            }
            java.util.List<Matrix> all = Repack.all(sources, arena, pool);
            assertThat(all).hasSameSizeAs(sources);
            long previousEnd = -1;
            for (int i = 0; i < sources.size(); i++) {
                Matrix source = sources.get(i);
                Matrix packed = all.get(i);
                Matrix alone = Repack.applies(source) ? Repack.repack(source, arena, pool)
                        : Repack.copies(source) ? Repack.copy(source, arena, pool) : source;
                if (alone == source) {
                    assertThat(packed).isSameAs(source);
                    continue;
                }
                assertThat(packed.layout()).isEqualTo(alone.layout());
                assertThat(packed.data().byteSize()).isEqualTo(Repack.bytes(source));
                assertThat(packed.data().asByteBuffer()).isEqualTo(alone.data().asByteBuffer());
                long start = packed.data().address();
                assertThat(start % 64).isZero();
                if (previousEnd >= 0) {
                    assertThat(start).as("one allocation, in order").isBetween(previousEnd, previousEnd + 63);
                }
                previousEnd = start + packed.data().byteSize();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q2_K", "Q3_K", "Q4_K", "Q6_K"})
    void laneLayoutDequantizesBitForBitAndMultipliesLikeTheReference(GGMLType type) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Simd.L == 16, "the lane layout needs 512-bit vectors");
        try (Arena arena = Arena.ofShared(); Parallel one = new Parallel(1); Parallel two = new Parallel(2);
             Parallel three = new Parallel(3)) {
            for (int[] shape : new int[][] {{1, 256}, {5, 512}, {37, 768}, {70, 2048}}) {
                int rows = shape[0];
                int cols = shape[1];
                Matrix m = new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, rows + cols),
                        rows, cols);
                Matrix p = Repack.repack(m, arena, two);
                assertThat(p.layout()).isEqualTo(Matrix.Layout.LANES);
                assertThat(p.data().byteSize()).isEqualTo(Matrix.laneBytes(type) * (cols / 256) * rows);
                float[] a = new float[cols];
                float[] b = new float[cols];
                float[] c = new float[cols + 3];
                for (int r = 0; r < rows; r++) {
                    m.dequantizeRow(r, a, 0);
                    p.dequantizeRow(r, b, 0);
                    assertThat(b).as("row %d of %dx%d", r, rows, cols).isEqualTo(a);
                    MatMul.dequantizer(type, Matrix.Layout.LANES).dequantize(p.data(), r * p.stride(), c, 3, cols);
                    assertThat(java.util.Arrays.copyOfRange(c, 3, cols + 3)).as("unpacked row %d", r).isEqualTo(a);
                }
                float[] x = RandomWeights.floats(cols + 3, 7);
                float[] seen = Input.roundTrip(x, 3, cols, 256);
                float[] want = new float[rows + 1];
                Kernels.matVec(one, p, x, 3, want, 1);
                for (int r = 0; r < rows; r++) {
                    double ref = KernelsTest.referenceOf(type).dot(m.data(), r * m.rowBytes(), seen, 0, cols);
                    double tol = KernelsTest.tolerance(type)
                            * KernelsTest.magnitude(type, m.data(), r * m.rowBytes(), seen, 0, cols) + 1e-30;
                    assertThat((double) want[1 + r]).as("%dx%d row %d", rows, cols, r)
                            .isCloseTo(ref, org.assertj.core.api.Assertions.within(tol));
                }
                for (Parallel pool : new Parallel[] {two, three}) {
                    float[] got = new float[rows + 1];
                    Kernels.matVec(pool, p, x, 3, got, 1);
                    assertThat(got).as("%dx%d matVec on %d threads", rows, cols, pool.threads()).isEqualTo(want);
                }
                int tokens = 37;
                float[] tx = RandomWeights.floats(Kernels.tiledSize(cols, tokens), 8);
                float[] mm = new float[Kernels.tiledSize(rows, tokens)];
                float[] pm = new float[mm.length];
                Kernels.matMul(two, m, tx, 0, mm, 0, tokens);
                Kernels.matMul(three, p, tx, 0, pm, 0, tokens);
                assertThat(pm).as("%dx%d matMul", rows, cols).isEqualTo(mm);
            }
        }
    }

    /// The `Q4_0` and `Q6_K` integer kernels read several row groups (rows) per pass, and a chunk's remaining rows
    /// one at a time; which loop a row takes depends on where the thread split cuts. Every row must come out bit
    /// for bit the same either way: the whole range at once against one group (row) per call.
    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q6_K"})
    void multiRowPassesGiveTheOneRowResultsBitForBit(GGMLType type) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Simd.L == 16, "the integer kernels need 512-bit vectors");
        int rows = 52; // Q4_0: three passes of four groups and one group; Q6_K: 17 passes of three rows and one row
        int cols = 512;
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            Matrix p = Repack.repack(new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, 11),
                    rows, cols), arena, pool);
            float[] x = RandomWeights.floats(cols, 12);
            Input in = new Input();
            in.begin(x, 0);
            in.prepare(type, p.layout(), cols);
            Kernels.RowKernel kernel = WeightFormat.of(p).matVec();
            int step = type == GGMLType.Q4_0 ? 4 : 1;
            float[] whole = new float[rows];
            kernel.matVec(p.data(), p.stride(), cols, x, 0, whole, 0, 0, rows, in);
            float[] pieces = new float[rows];
            for (int r = 0; r < rows; r += step) {
                kernel.matVec(p.data(), p.stride(), cols, x, 0, pieces, 0, r, r + step, in);
            }
            assertThat(whole).as("%s: rows in passes against one at a time", type).isEqualTo(pieces);
            assertThat(whole).as("%s: some row computed", type).isNotEqualTo(new float[rows]);
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q6_K"})
    void warmRepackedMatVecAllocatesNothing(GGMLType type) {
        int rows = 36;
        int cols = 1024;
        try (Arena arena = Arena.ofConfined(); Parallel pool = new Parallel(1)) {
            org.junit.jupiter.api.Assumptions.assumeTrue(Matrix.laneBytes(type) == 0 || Simd.L == 16,
                    "the lane layouts need 512-bit vectors");
            Matrix m = Repack.repack(new Matrix(type, RandomWeights.segment(arena, type, 0, (long) rows * cols, 3),
                    rows, cols), arena, pool);
            float[] x = RandomWeights.floats(cols, 4);
            float[] out = new float[rows];
            long allocated = AllocationTest.allocatedWhenWarm(() -> Kernels.matVec(pool, m, x, 0, out, 0), 2_000, 100);
            assertThat(allocated).as("bytes allocated by 100 warm repacked %s matVec calls", type).isZero();
        }
    }
}
