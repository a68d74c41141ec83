package dev.llamaj.engine.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import dev.llamaj.gguf.GGMLType;

/// The load-time repack of `Q4_0` and `Q8_0` matrices into groups of four rows ([Matrix.Layout#ROWS4]), and of
/// `Q2_K`, `Q3_K`, `Q4_K` and `Q6_K` matrices into the lane layouts of their integer kernels ([Matrix.Layout#LANES],
/// [Q2_K#repackRow], [Q3_K#repackRow], [Q4_K#repackRow], [Q6_K#repackRow]).
///
/// In the GGUF layout a four-row kernel reads four streams a row apart, each only a row long (1.1 KiB for a `Q4_0`
/// row of 2048 weights): the hardware prefetchers never get going, and the decode kernels reached half the memory
/// bandwidth or less. Repacked, block `b` of rows `4g .. 4g+3` is their four scales (converted to f32 once) followed
/// by their four blocks of quants, and the groups follow each other: a thread's rows are one sequential stream, and
/// a scale is one load instead of a half-to-float conversion. The kernels do the same arithmetic in the same order,
/// so results are bit for bit those of the GGUF layout. Measured on the 2-core test machine, 2048×2048 `Q4_0`
/// from DRAM: 10.9 → 28 GB/s (in GGUF bytes).
///
/// The cost: `Q4_0` blocks grow from 18 to 20 bytes (+11%), `Q8_0` from 34 to 36 (+6%), held in anonymous memory
/// (huge pages requested); the file's pages are dropped from the resident set after copying ([Memory#release]),
/// so resident memory grows by the percentages above, not by a second copy. Loading a 1B `Q4_0` model repacks
/// ~0.7 GB in a few hundred milliseconds where fresh memory is cheap (on the test VM, where the host hands out
/// memory slowly, first touch costs ~2.4 s/GB: load takes +1.8 s for 1B `Q4_0`, +5 s for 1B `F16`).
/// `Q4_K` super-blocks grow from 144 to 152 bytes (+5.6%): the scales and minimums decoded to bytes, `d` and `dmin`
/// as f32, the quants reordered so that every int lane of the integer kernel holds one group (see
/// [Q4_K#repackRow]); it made `Q4_K` decode products about 1.6x faster than the float kernel on the GGUF layout
/// (2048×2048 on one thread, in cache: 37 → 23 cycles per super-block), mostly through the integer arithmetic
/// ([Input]) the layout lets the kernel use cheaply. Float matrices are copied unchanged into huge pages
/// ([#copies]). Off with `LoadOptions.withRepack(false)` (`--no-repack`).
///
/// `Q6_K` super-blocks grow from 210 to 276 bytes (+31%): one byte per quant, f32 `d` ([Q6_K#repackRow]). With the
/// integer kernel this pays (2048×2048 on one thread in cache: 42 → 29 cycles per super-block; Llama-3.2-1B
/// `Q4_K_M` generation +10%), where a float kernel over int8 quants had not (7.9 vs 10.5 GB/s: widening and
/// converting each weight stayed the bottleneck).
///
/// `Q2_K` and `Q3_K` super-blocks grow from 84 to 88 bytes (+4.8%) and from 110 to 116 (+5.5%): f32 `d` (and
/// `dmin`), `Q3_K`'s 6-bit scales decoded to signed bytes, and the 2-bit quants in weight order so that an int lane
/// holds one 16-weight group ([Q2_K#repackRow], [Q3_K#repackRow]). Their integer kernels are 6-9x faster than the
/// float kernels on the GGUF layout (2048×2048 and 8192×2048 from DRAM, 2 threads, on a busy machine), which widen
/// and convert every weight.
public final class Repack {

    private Repack() {
    }

    /// Whether `type` has a four-row layout.
    public static boolean supports(GGMLType type) {
        return WeightFormat.load(type) == WeightFormat.Load.ROWS4;
    }

    /// Whether [#repack] would change `m`: `Q4_0` or `Q8_0` in the GGUF layout with a multiple of 4 rows, or `Q2_K`,
    /// `Q3_K`, `Q4_K` or `Q6_K` in the GGUF layout on a machine with 512-bit vectors (the integer kernels of the lane layouts need
    /// them).
    public static boolean applies(Matrix m) {
        if (m.layout() != Matrix.Layout.GGUF) {
            return false;
        }
        return switch (WeightFormat.load(m.type())) {
            case LANES -> true;
            case ROWS4 -> m.rows() % 4 == 0;
            case MAPPED, COPIED -> false;
        };
    }

    /// Bytes of one block of a four-row group of `type` (a [#supports] type).
    static long groupBlockBytes(GGMLType type) {
        return WeightFormat.of(type, Matrix.Layout.ROWS4).packedBlockBytes();
    }

    /// Bytes [#repack] or [#copy] writes for `m`; 0 when neither applies.
    public static long bytes(Matrix m) {
        if (applies(m)) {
            long blocks = m.cols() / m.type().blockSize();
            return WeightFormat.load(m.type()) == WeightFormat.Load.LANES
                    ? Matrix.laneBytes(m.type()) * (m.cols() / 256) * m.rows()
                    : groupBlockBytes(m.type()) * blocks * (m.rows() / 4);
        }
        return copies(m) ? m.data().byteSize() : 0;
    }

    /// Bytes [#all] would allocate for `matrices`.
    public static long totalBytes(List<Matrix> matrices) {
        long total = 0;
        for (Matrix m : matrices) {
            total += align(bytes(m));
        }
        return total;
    }

    /// Bytes of memory the system can give now (see [Memory#availableBytes]).
    public static long availableBytes() {
        return Memory.availableBytes();
    }

    /// Every matrix of `matrices` repacked ([#applies]) or copied ([#copies]), or itself, in order; the new ones
    /// share one allocation of `arena`, each starting on a 64-byte boundary. One allocation rather than one per
    /// matrix: each allocation is rounded up to whole 2 MiB huge pages, and over the hundred-odd matrices of a
    /// model that slack was ~100 MiB of resident memory.
    public static List<Matrix> all(List<Matrix> matrices, Arena arena, Parallel pool) {
        long total = 0;
        for (Matrix m : matrices) {
            total += align(bytes(m));
        }
        MemorySegment memory = total == 0 ? MemorySegment.NULL : Memory.allocate(total, arena);
        List<Matrix> out = new ArrayList<>(matrices.size());
        long at = 0;
        for (Matrix m : matrices) {
            long n = bytes(m);
            if (n == 0) {
                out.add(m);
                continue;
            }
            MemorySegment dst = memory.asSlice(at, n);
            at += align(n);
            out.add(applies(m) ? repack(m, dst, pool) : copy(m, dst, pool));
        }
        return out;
    }

    private static long align(long bytes) {
        return (bytes + 63) & -64L;
    }

    /// `m` repacked into memory of `arena`, or `m` itself if [#applies] is false. The source is left untouched
    /// (see [#release]).
    public static Matrix repack(Matrix m, Arena arena, Parallel pool) {
        return applies(m) ? repack(m, Memory.allocate(bytes(m), arena), pool) : m;
    }

    /// `m` (for which [#applies] holds) repacked into `dst`, at least [#bytes] long: four-row groups or lanes
    /// written in parallel on `pool`.
    private static Matrix repack(Matrix m, MemorySegment dst, Parallel pool) {
        if (WeightFormat.load(m.type()) == WeightFormat.Load.LANES) {
            return lanes(m, dst, pool);
        }
        int groups = m.rows() / 4;
        MemorySegment src = m.data();
        long rowBytes = m.rowBytes();
        int cols = m.cols();
        WeightFormat.GroupPacker packer = WeightFormat.packer(m.type());
        pool.forRange(groups, 64, (from, to) -> {
            for (int g = from; g < to; g++) {
                packer.pack(src, rowBytes, cols, g, dst, 0);
            }
        });
        return new Matrix(m.type(), dst, m.rows(), m.cols(), Matrix.Layout.ROWS4);
    }

    /// `m`, a matrix of a type with a lane layout ([Q4_K#repackRow], [Q6_K#repackRow], ...), rows written in
    /// parallel on `pool`.
    private static Matrix lanes(Matrix m, MemorySegment dst, Parallel pool) {
        long stride = Matrix.laneBytes(m.type()) * (m.cols() / 256);
        MemorySegment src = m.data();
        long rowBytes = m.rowBytes();
        int cols = m.cols();
        WeightFormat.GroupPacker packer = WeightFormat.packer(m.type());
        pool.forRange(m.rows(), 64, (from, to) -> {
            for (int r = from; r < to; r++) {
                packer.pack(src, rowBytes, cols, r, dst, stride);
            }
        });
        return new Matrix(m.type(), dst, m.rows(), m.cols(), Matrix.Layout.LANES);
    }

    /// Whether loading copies `m` unchanged into huge pages ([#copy]): the float types, whose decode kernels are
    /// bound by memory bandwidth. Measured on the 2-core test machine, Llama-3.2-1B-shaped files: generation
    /// F16 8.9 → 11.3 tokens/s, BF16 11.9 → 13.5 (`K`-quant kernels are compute-bound: no gain, not copied).
    public static boolean copies(Matrix m) {
        return m.layout() == Matrix.Layout.GGUF && WeightFormat.load(m.type()) == WeightFormat.Load.COPIED;
    }

    /// `m` copied, layout unchanged, into memory of `arena` with huge pages requested ([Memory#allocate]).
    public static Matrix copy(Matrix m, Arena arena, Parallel pool) {
        return copy(m, Memory.allocate(m.data().byteSize(), arena), pool);
    }

    private static Matrix copy(Matrix m, MemorySegment dst, Parallel pool) {
        long bytes = m.data().byteSize();
        MemorySegment src = m.data();
        long chunk = 1 << 22;
        int chunks = (int) ((bytes + chunk - 1) / chunk);
        pool.forRange(chunks, 1, (from, to) -> {
            for (int c = from; c < to; c++) {
                long o = c * chunk;
                MemorySegment.copy(src, o, dst, o, Math.min(chunk, bytes - o));
            }
        });
        return new Matrix(m.type(), dst, m.rows(), m.cols(), m.layout());
    }

    /// Drops the pages of a repacked matrix's source (a file mapping) from the resident set; best effort.
    public static void release(Matrix source) {
        Memory.release(source.data());
    }

    /// Scalar dequantization of weights `[col, col + n)` of `row` of a four-row matrix.
    static void dequantizeRow(Matrix m, int row, int col, int n, float[] out, int outOffset) {
        WeightFormat.of(m).rows4().decode(m.data(), m.cols(), row, col, n, out, outOffset, false);
    }
}
