package dev.llamaj.engine.kernel;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

import dev.llamaj.gguf.GGMLType;

/// A row-major weight matrix in its GGUF encoding: `rows` rows of `cols` weights, each row `rowBytes()` bytes of
/// `type` blocks, row `r` starting at byte `r × rowBytes()` of `data` ([Layout#GGUF]); or, for `Q4_0` and `Q8_0`,
/// repacked at load time into groups of four rows ([Layout#ROWS4], see [Repack]); or, for `Q2_K`, `Q3_K`, `Q4_K` and
/// `Q6_K`, row by row in their integer kernels' lane layouts ([Layout#LANES]).
///
/// `cols` is ggml's `ne0`, the contiguous dimension (`shape[0]` of a GGUF tensor), and `rows` is `ne1`. A matrix
/// multiplies a vector of `cols` floats into `rows` outputs. The constructor checks the geometry once, so kernels can
/// trust it: hostile files are rejected here, not in a hot loop.
///
/// @param type the ggml element type of every row; any type may be described, [Kernels#supports] says which
///             ones can be computed with
/// @param data the bytes, at least `rows × rowBytes()` of them (typically a zero-copy slice of the mapped file)
/// @param rows number of rows (ggml `ne1`), positive
/// @param cols weights per row (ggml `ne0`), positive and a multiple of the type's block size
/// @param layout how the rows are laid out in `data`
public record Matrix(GGMLType type, MemorySegment data, int rows, int cols, Layout layout) {

    /// How the blocks of the rows are arranged in `data`.
    public enum Layout {
        /// As in the GGUF file: row after row, each `rowBytes()` bytes of `type` blocks.
        GGUF,
        /// `Q4_0` or `Q8_0` repacked in groups of four rows, block by block: for block `b` of rows `4g .. 4g+3`, the
        /// four scales as f32 then the four rows' quants (16 or 32 bytes each), [Repack#groupBlockBytes] bytes in
        /// all; one group's blocks after another. `rows` is a multiple of 4.
        ROWS4,
        /// `Q2_K`, `Q3_K`, `Q4_K` or `Q6_K` super-blocks rewritten for the integer kernels ([Q2_K#repackRow]: 88
        /// bytes each instead of 84; [Q3_K#repackRow]: 116 instead of 110; [Q4_K#repackRow]: 152 instead of 144;
        /// [Q6_K#repackRow]: 276 instead of 210), row after row, [#stride] bytes apart.
        LANES
    }

    /// A matrix in the GGUF layout.
    public Matrix(GGMLType type, MemorySegment data, int rows, int cols) {
        this(type, data, rows, cols, Layout.GGUF);
    }

    /// @throws IllegalArgumentException if a dimension is not positive, `cols` is not a whole number of blocks, or
    ///                                  `data` is shorter than the layout needs
    /// @throws NullPointerException     if `type`, `data` or `layout` is null
    public Matrix {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(layout, "layout");
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException("a matrix needs positive dimensions, got " + rows + " x " + cols);
        }
        if (cols % type.blockSize() != 0) {
            throw new IllegalArgumentException("a row of " + cols + " " + type + " weights is not a whole number of "
                    + type.blockSize() + "-weight blocks");
        }
        long need = Math.multiplyExact(type.byteSize(cols), (long) rows);
        if (layout == Layout.ROWS4) {
            if (!Repack.supports(type) || rows % 4 != 0) {
                throw new IllegalArgumentException("no four-row layout for " + rows + " rows of " + type);
            }
            need = Math.multiplyExact(Repack.groupBlockBytes(type) * (long) (cols / type.blockSize()), rows / 4L);
        } else if (layout == Layout.LANES) {
            if (laneBytes(type) == 0 || Simd.L != 16) {
                throw new IllegalArgumentException("no lane layout for " + type
                        + (laneBytes(type) != 0 ? " without 512-bit vectors" : ""));
            }
            need = Math.multiplyExact(laneBytes(type) * (cols / 256), (long) rows);
        }
        if (data.byteSize() < need) {
            throw new IllegalArgumentException(rows + " x " + cols + " " + type + " weights need " + need
                    + " bytes but the segment has " + data.byteSize());
        }
    }

    /// Bytes per row in the GGUF encoding: `cols / blockSize × bytesPerBlock` (whatever the layout).
    public long rowBytes() {
        return type.byteSize(cols);
    }

    /// Bytes from the start of one row to the next in `data` for the row-by-row layouts ([Layout#GGUF],
    /// [Layout#LANES]); for [Layout#ROWS4], [#rowBytes].
    public long stride() {
        return layout == Layout.LANES ? WeightFormat.of(type, layout).packedBlockBytes() * (cols / 256) : rowBytes();
    }

    /// Bytes of a 256-weight super-block of `type` in the lane layout, 0 for types without one.
    static long laneBytes(GGMLType type) {
        return WeightFormat.laneBytes(type);
    }

    /// Decodes row `row` into `out[outOffset .. outOffset + cols)` with the scalar reference dequantization, which
    /// reproduces ggml's `dequantize_row_*` bit for bit.
    ///
    /// @throws IllegalArgumentException  if [Kernels#supports] is false for `type`
    /// @throws IndexOutOfBoundsException if `row` is not in `[0, rows)` or `out` is too short
    public void dequantizeRow(int row, float[] out, int outOffset) {
        Objects.checkIndex(row, rows);
        Objects.checkFromIndexSize(outOffset, cols, out.length);
        WeightFormat format = WeightFormat.of(type, layout);
        if (format.rows4() != null) {
            format.rows4().decode(data, cols, row, 0, cols, out, outOffset, false);
        } else {
            format.reference().decode(data, row * stride(), out, outOffset, cols);
        }
    }
}
