package dev.llamaj.engine.kernel;

import static dev.llamaj.engine.kernel.Simd.F;
import static dev.llamaj.engine.kernel.Simd.L;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import dev.llamaj.gguf.GGMLType;
import jdk.incubator.vector.FloatVector;

/// Matrix-matrix products for prompt processing: `Y = W · X` for a batch of tokens, any weight type.
///
/// **Layout.** Activations are *tiled*: tokens are grouped in tiles of [#TILE] (two float vectors), and a tile of
/// a `width`-feature batch is `width × TILE` floats, feature-major: token `t`, feature `f` is at
/// `(t / TILE · width + f) · TILE + t % TILE`. So one feature of a whole tile is two vector loads, and the product
/// needs no transposition of either operand.
///
/// **Blocking** (as in a BLAS `gemm`): the rows are split across threads; a thread walks `KC`-column slices and,
/// within them, `MC`-row blocks, dequantizes the block once into an `MC × KC` float panel (its own, L2-resident),
/// then runs the microkernel over every token tile: 8 rows × 1 tile (16 vector accumulators), each step one
/// broadcast weight per row and two activation loads for 16 FMAs. The tile of activations (`KC × TILE` floats)
/// stays in L1 across the row groups of a block. Each weight is dequantized once per product, whatever the
/// number of tokens.
///
/// **Numerics.** Every output is one FMA chain over the columns in order (`KC` slices continue the same chain
/// through the stored partial sum), with weights dequantized exactly as the scalar reference does. The result for
/// a token therefore depends neither on the thread count nor on the other tokens of the batch, nor on its place in
/// it. It does differ in rounding from `matVec`, which sums lanes in another order.
final class MatMul {
    /// Tokens per tile: two float vectors.
    static final int TILE = 2 * L;
    /// Rows per microkernel call.
    static final int MR = 8;
    /// Columns per slice: a multiple of every block size (256), small enough that a tile slice (`KC × TILE`
    /// floats) stays in L1.
    static final int KC = Integer.getInteger("llamaj.matmul.kc", 256);
    /// Rows per dequantized block: `MC × KC` floats per thread.
    static final int MC = Integer.getInteger("llamaj.matmul.mc", 64);

    private MatMul() {
    }

    /// Dequantizes `n` weights (whole blocks) from byte `offset` into `out[outOffset ..]`.
    @FunctionalInterface
    interface Dequantizer {
        void dequantize(MemorySegment w, long offset, float[] out, int outOffset, int n);
    }

    static Dequantizer dequantizer(GGMLType type, Matrix.Layout layout) {
        return WeightFormat.of(type, layout).unpack();
    }

    /// Floats in `tokens` tokens of `width` features in the tiled layout (whole tiles).
    static long tiledSize(int width, int tokens) {
        return (long) ((tokens + TILE - 1) / TILE) * width * TILE;
    }

    /// The per-session state of products: per-thread panels, and the arguments of the product in flight.
    static final class Task implements Parallel.RangeTask {
        private final Parallel pool;
        private final float[][] panels;
        private final float[][] partial;
        // one product
        private Matrix w;
        private WeightFormat format;
        private float[] x;
        private int xOffset;
        private float[] out;
        private int outOffset;
        private int tiles;
        private int tokens;

        Task(Parallel pool) {
            this.pool = pool;
            this.panels = new float[pool.threads()][];
            this.partial = new float[pool.threads()][];
        }

        void run(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int tokens) {
            this.w = w;
            this.format = WeightFormat.of(w);
            this.x = x;
            this.xOffset = xOffset;
            this.out = out;
            this.outOffset = outOffset;
            this.tiles = (tokens + TILE - 1) / TILE;
            this.tokens = tokens;
            try {
                pool.forRange(w.rows(), MC, this);
            } finally {
                this.w = null;
                this.x = null;
                this.out = null;
            }
        }

        @Override
        public void run(int from, int to) {
            int t = pool.threadIndex();
            float[] panel = panels[t];
            if (panel == null) {
                panel = panels[t] = new float[MC * KC];
                partial[t] = new float[MR * TILE];
            }
            compute(w, format, x, xOffset, out, outOffset, tokens, from, to, panel, partial[t]);
        }
    }

    /// Rows `[from, to)` of `out = w · x` over the tiles of `tokens` tokens. A last tile with at most `L` tokens
    /// runs the half-width microkernel ([#kernelHalf]): a prompt of a few tokens costs half a tile, not a tile.
    static void compute(Matrix w, WeightFormat format, float[] x, int xOffset, float[] out, int outOffset,
                        int tokens, int from, int to, float[] panel, float[] partial) {
        Dequantizer dq = format.unpack();
        int tiles = (tokens + TILE - 1) / TILE;
        boolean halfLast = tokens - (tiles - 1) * TILE <= L;
        int rows = w.rows();
        int cols = w.cols();
        MemorySegment data = w.data();
        long rowBytes = w.stride();
        GGMLType type = w.type();
        boolean lanes = w.layout() == Matrix.Layout.LANES;
        for (int kc = 0; kc < cols; kc += KC) {
            int kn = Math.min(KC, cols - kc);
            long colBytes = lanes ? format.packedBlockBytes() * (kc / 256) : type.byteSize(kc);
            boolean accumulate = kc > 0;
            for (int mc = from; mc < to; mc += MC) {
                int mn = Math.min(MC, to - mc);
                if (format.rows4() != null) {
                    for (int r = 0; r < mn; r++) {
                        format.rows4().decode(data, cols, mc + r, kc, kn, panel, r * KC, true);
                    }
                } else {
                    for (int r = 0; r < mn; r++) {
                        dq.dequantize(data, (mc + r) * rowBytes + colBytes, panel, r * KC, kn);
                    }
                }
                int padded = (mn + MR - 1) / MR * MR;
                for (int r = mn; r < padded; r++) {
                    Arrays.fill(panel, r * KC, r * KC + kn, 0f);
                }
                for (int tile = 0; tile < tiles; tile++) {
                    int xBase = xOffset + (tile * cols + kc) * TILE;
                    int yTile = outOffset + tile * rows * TILE;
                    for (int r = 0; r < mn; r += MR) {
                        boolean half = halfLast && tile == tiles - 1;
                        if (r + MR <= mn) {
                            if (half) {
                                kernelHalf(panel, r * KC, x, xBase, out, yTile + (mc + r) * TILE, kn, accumulate);
                            } else {
                                kernel(panel, r * KC, x, xBase, out, yTile + (mc + r) * TILE, kn, accumulate);
                            }
                        } else { // the last rows of the matrix: through a scratch tile
                            int valid = mn - r;
                            int y = yTile + (mc + r) * TILE;
                            if (accumulate) {
                                System.arraycopy(out, y, partial, 0, valid * TILE);
                            }
                            if (half) {
                                kernelHalf(panel, r * KC, x, xBase, partial, 0, kn, accumulate);
                            } else {
                                kernel(panel, r * KC, x, xBase, partial, 0, kn, accumulate);
                            }
                            System.arraycopy(partial, 0, out, y, valid * TILE);
                        }
                    }
                }
            }
        }
    }

    /// The microkernel: rows `0..7` of the panel (row stride [#KC], from `a`) times `kn` features of one token tile
    /// (`x` from `xBase`, stride [#TILE]) into 8 rows of a tile of `y` (from `yBase`, stride `TILE`), added to
    /// what `y` holds if `accumulate`.
    static void kernel(float[] a, int a0, float[] x, int xBase, float[] y, int yBase, int kn, boolean accumulate) {
        final int s = KC;
        FloatVector c00;
        FloatVector c01;
        FloatVector c10;
        FloatVector c11;
        FloatVector c20;
        FloatVector c21;
        FloatVector c30;
        FloatVector c31;
        FloatVector c40;
        FloatVector c41;
        FloatVector c50;
        FloatVector c51;
        FloatVector c60;
        FloatVector c61;
        FloatVector c70;
        FloatVector c71;
        if (accumulate) {
            c00 = FloatVector.fromArray(F, y, yBase);
            c01 = FloatVector.fromArray(F, y, yBase + L);
            c10 = FloatVector.fromArray(F, y, yBase + TILE);
            c11 = FloatVector.fromArray(F, y, yBase + TILE + L);
            c20 = FloatVector.fromArray(F, y, yBase + 2 * TILE);
            c21 = FloatVector.fromArray(F, y, yBase + 2 * TILE + L);
            c30 = FloatVector.fromArray(F, y, yBase + 3 * TILE);
            c31 = FloatVector.fromArray(F, y, yBase + 3 * TILE + L);
            c40 = FloatVector.fromArray(F, y, yBase + 4 * TILE);
            c41 = FloatVector.fromArray(F, y, yBase + 4 * TILE + L);
            c50 = FloatVector.fromArray(F, y, yBase + 5 * TILE);
            c51 = FloatVector.fromArray(F, y, yBase + 5 * TILE + L);
            c60 = FloatVector.fromArray(F, y, yBase + 6 * TILE);
            c61 = FloatVector.fromArray(F, y, yBase + 6 * TILE + L);
            c70 = FloatVector.fromArray(F, y, yBase + 7 * TILE);
            c71 = FloatVector.fromArray(F, y, yBase + 7 * TILE + L);
        } else {
            FloatVector z = FloatVector.zero(F);
            c00 = z;
            c01 = z;
            c10 = z;
            c11 = z;
            c20 = z;
            c21 = z;
            c30 = z;
            c31 = z;
            c40 = z;
            c41 = z;
            c50 = z;
            c51 = z;
            c60 = z;
            c61 = z;
            c70 = z;
            c71 = z;
        }
        for (int k = 0; k < kn; k++) {
            int xo = xBase + k * TILE;
            FloatVector x0 = FloatVector.fromArray(F, x, xo);
            FloatVector x1 = FloatVector.fromArray(F, x, xo + L);
            int ak = a0 + k;
            FloatVector b = FloatVector.broadcast(F, a[ak]);
            c00 = x0.fma(b, c00);
            c01 = x1.fma(b, c01);
            b = FloatVector.broadcast(F, a[ak + s]);
            c10 = x0.fma(b, c10);
            c11 = x1.fma(b, c11);
            b = FloatVector.broadcast(F, a[ak + 2 * s]);
            c20 = x0.fma(b, c20);
            c21 = x1.fma(b, c21);
            b = FloatVector.broadcast(F, a[ak + 3 * s]);
            c30 = x0.fma(b, c30);
            c31 = x1.fma(b, c31);
            b = FloatVector.broadcast(F, a[ak + 4 * s]);
            c40 = x0.fma(b, c40);
            c41 = x1.fma(b, c41);
            b = FloatVector.broadcast(F, a[ak + 5 * s]);
            c50 = x0.fma(b, c50);
            c51 = x1.fma(b, c51);
            b = FloatVector.broadcast(F, a[ak + 6 * s]);
            c60 = x0.fma(b, c60);
            c61 = x1.fma(b, c61);
            b = FloatVector.broadcast(F, a[ak + 7 * s]);
            c70 = x0.fma(b, c70);
            c71 = x1.fma(b, c71);
        }
        c00.intoArray(y, yBase);
        c01.intoArray(y, yBase + L);
        c10.intoArray(y, yBase + TILE);
        c11.intoArray(y, yBase + TILE + L);
        c20.intoArray(y, yBase + 2 * TILE);
        c21.intoArray(y, yBase + 2 * TILE + L);
        c30.intoArray(y, yBase + 3 * TILE);
        c31.intoArray(y, yBase + 3 * TILE + L);
        c40.intoArray(y, yBase + 4 * TILE);
        c41.intoArray(y, yBase + 4 * TILE + L);
        c50.intoArray(y, yBase + 5 * TILE);
        c51.intoArray(y, yBase + 5 * TILE + L);
        c60.intoArray(y, yBase + 6 * TILE);
        c61.intoArray(y, yBase + 6 * TILE + L);
        c70.intoArray(y, yBase + 7 * TILE);
        c71.intoArray(y, yBase + 7 * TILE + L);
    }

    /// [#kernel] for the first `L` tokens of the tile only (the other half of the tile's outputs is left as is).
    static void kernelHalf(float[] a, int a0, float[] x, int xBase, float[] y, int yBase, int kn,
                           boolean accumulate) {
        final int s = KC;
        FloatVector c0;
        FloatVector c1;
        FloatVector c2;
        FloatVector c3;
        FloatVector c4;
        FloatVector c5;
        FloatVector c6;
        FloatVector c7;
        if (accumulate) {
            c0 = FloatVector.fromArray(F, y, yBase);
            c1 = FloatVector.fromArray(F, y, yBase + TILE);
            c2 = FloatVector.fromArray(F, y, yBase + 2 * TILE);
            c3 = FloatVector.fromArray(F, y, yBase + 3 * TILE);
            c4 = FloatVector.fromArray(F, y, yBase + 4 * TILE);
            c5 = FloatVector.fromArray(F, y, yBase + 5 * TILE);
            c6 = FloatVector.fromArray(F, y, yBase + 6 * TILE);
            c7 = FloatVector.fromArray(F, y, yBase + 7 * TILE);
        } else {
            FloatVector z = FloatVector.zero(F);
            c0 = z;
            c1 = z;
            c2 = z;
            c3 = z;
            c4 = z;
            c5 = z;
            c6 = z;
            c7 = z;
        }
        for (int k = 0; k < kn; k++) {
            FloatVector x0 = FloatVector.fromArray(F, x, xBase + k * TILE);
            int ak = a0 + k;
            c0 = x0.fma(FloatVector.broadcast(F, a[ak]), c0);
            c1 = x0.fma(FloatVector.broadcast(F, a[ak + s]), c1);
            c2 = x0.fma(FloatVector.broadcast(F, a[ak + 2 * s]), c2);
            c3 = x0.fma(FloatVector.broadcast(F, a[ak + 3 * s]), c3);
            c4 = x0.fma(FloatVector.broadcast(F, a[ak + 4 * s]), c4);
            c5 = x0.fma(FloatVector.broadcast(F, a[ak + 5 * s]), c5);
            c6 = x0.fma(FloatVector.broadcast(F, a[ak + 6 * s]), c6);
            c7 = x0.fma(FloatVector.broadcast(F, a[ak + 7 * s]), c7);
        }
        c0.intoArray(y, yBase);
        c1.intoArray(y, yBase + TILE);
        c2.intoArray(y, yBase + 2 * TILE);
        c3.intoArray(y, yBase + 3 * TILE);
        c4.intoArray(y, yBase + 4 * TILE);
        c5.intoArray(y, yBase + 5 * TILE);
        c6.intoArray(y, yBase + 6 * TILE);
        c7.intoArray(y, yBase + 7 * TILE);
    }

    /// Scalar reference for tests: `out` (tiled) `= w · x` (tiled) with each weight from the scalar dequantization
    /// and sums in double.
    static void reference(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int tokens) {
        int rows = w.rows();
        int cols = w.cols();
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            w.dequantizeRow(r, row, 0);
            for (int t = 0; t < tokens; t++) {
                int xt = xOffset + t / TILE * cols * TILE + t % TILE;
                double sum = 0;
                for (int c = 0; c < cols; c++) {
                    sum += (double) row[c] * x[xt + c * TILE];
                }
                out[outOffset + (t / TILE * rows + r) * TILE + t % TILE] = (float) sum;
            }
        }
    }
}
