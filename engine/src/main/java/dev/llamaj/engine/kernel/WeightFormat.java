package dev.llamaj.engine.kernel;

import dev.llamaj.gguf.GGMLType;
import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.Map;

/// Everything the kernels know about one weight type in one layout, in one table: which kernel multiplies a row,
/// how a prompt batch's panels are decoded, the scalar reference decoding, whether the kernel reads the activations
/// rounded to 8 bits, and, per type, what loading does with it (repack into four-row groups or lanes, copy into
/// huge pages, or leave it mapped).
///
/// A new weight type is one case of the exhaustive `switch` in [#table]: the compiler lists every place a type
/// must be described, and nothing else in the kernels dispatches on the type.
///
/// @param matVec         the matrix-vector row kernel
/// @param unpack         decodes whole blocks from a byte offset, for the matrix-matrix panels (not [Matrix.Layout#ROWS4],
///                       whose panels decode through `rows4`)
/// @param reference      the scalar reference decoding of a whole row, bit for bit ggml's `dequantize_row_*`
/// @param rows4          decodes part of a row of a four-row group ([Matrix.Layout#ROWS4] only, else null)
/// @param quantizesInput whether the kernel multiplies with the activations rounded to 8-bit integers ([Input])
/// @param packedBlockBytes bytes of a block of a four-row group ([Matrix.Layout#ROWS4]) or of a 256-weight
///                  super-block in the lane layout ([Matrix.Layout#LANES]); 0 in the GGUF layout
public record WeightFormat(GGMLType type, Matrix.Layout layout, Kernels.RowKernel matVec, MatMul.Dequantizer unpack,
                           RowDecoder reference, Rows4Decoder rows4, boolean quantizesInput, long packedBlockBytes) {

    /// What loading does with a matrix of a type ([Repack]).
    public enum Load {
        /// left in the file's mapping
        MAPPED,
        /// copied unchanged into huge pages (float types: bound by memory bandwidth)
        COPIED,
        /// repacked into four-row groups ([Matrix.Layout#ROWS4]) when the rows are a multiple of 4
        ROWS4,
        /// repacked row by row into the integer kernel's lane layout ([Matrix.Layout#LANES]), with 512-bit vectors
        LANES
    }

    /// Decodes row `row` of a matrix into `out[outOffset .. outOffset + cols)`.
    @FunctionalInterface
    public interface RowDecoder {
        void decode(MemorySegment data, long offset, float[] out, int outOffset, int n);
    }

    /// Decodes weights `[col, col + n)` of row `row` of a four-row-group matrix of `cols` columns; `unbiased` as the
    /// kernels' panels want them.
    @FunctionalInterface
    public interface Rows4Decoder {
        void decode(MemorySegment data, int cols, int row, int col, int n, float[] out, int outOffset, boolean panel);
    }

    /// Writes a repacked matrix: four-row group `g`, or row `r`, from the file's bytes.
    @FunctionalInterface
    interface GroupPacker {
        void pack(MemorySegment src, long rowBytes, int cols, int index, MemorySegment dst, long dstStride);
    }

    private record Entry(WeightFormat gguf, WeightFormat packed, Load load, GroupPacker packer) {}

    private static final Map<GGMLType, Entry> TABLE = new EnumMap<>(GGMLType.class);

    static {
        for (GGMLType t : GGMLType.values()) {
            Entry e = table(t);
            if (e != null) {
                TABLE.put(t, e);
            }
        }
    }

    /// The table: one case per type, every type named, so a type added to [GGMLType] does not compile until it is
    /// described here (or listed as unsupported).
    private static Entry table(GGMLType t) {
        boolean wide = Simd.L == 16; // the integer kernels need 512-bit vectors
        return switch (t) {
            case F32 -> plain(t, F32::matVec, F32::dequantize, F32::dequantize, Load.COPIED);
            case F16 -> plain(t, F16::matVec, F16::unpack, F16::dequantize, Load.COPIED);
            case BF16 -> plain(t, BF16::matVec, BF16::unpack, BF16::dequantize, Load.COPIED);
            case Q4_0 -> new Entry(gguf(t, Q4_0::matVec, Q4_0::unpack, Q4_0::dequantize),
                    new WeightFormat(t, Matrix.Layout.ROWS4, Q4_0::matVec4, null, null, Q4_0::dequantize4, wide,
                            Q4_0.GROUP_BYTES),
                    Load.ROWS4, (src, rowBytes, cols, g, dst, stride) -> Q4_0.repackGroup(src, rowBytes, cols, g, dst));
            case Q8_0 -> new Entry(gguf(t, Q8_0::matVec, Q8_0::unpack, Q8_0::dequantize),
                    new WeightFormat(t, Matrix.Layout.ROWS4, Q8_0::matVec4, null, null, Q8_0::dequantize4, false,
                            Q8_0.GROUP_BYTES),
                    Load.ROWS4, (src, rowBytes, cols, g, dst, stride) -> Q8_0.repackGroup(src, rowBytes, cols, g, dst));
            case Q4_1 -> plain(t, Q4_1::matVec, Q4_1::dequantize, Q4_1::dequantize, Load.MAPPED);
            case Q5_0 -> plain(t, Q5_0::matVec, Q5_0::dequantize, Q5_0::dequantize, Load.MAPPED);
            case Q5_1 -> plain(t, Q5_1::matVec, Q5_1::dequantize, Q5_1::dequantize, Load.MAPPED);
            case Q2_K -> new Entry(gguf(t, Q2_K::matVec, Q2_K::unpack, Q2_K::dequantize),
                    new WeightFormat(t, Matrix.Layout.LANES, Q2_K::matVecLanes, Q2_K::unpackLanes,
                            Q2_K::dequantizeLanes, null, wide, Q2_K.LANE_BYTES),
                    wide ? Load.LANES : Load.MAPPED,
                    (src, rowBytes, cols, r, dst, stride) -> Q2_K.repackRow(src, r * rowBytes, dst, r * stride, cols));
            case Q3_K -> new Entry(gguf(t, Q3_K::matVec, Q3_K::unpack, Q3_K::dequantize),
                    new WeightFormat(t, Matrix.Layout.LANES, Q3_K::matVecLanes, Q3_K::unpackLanes,
                            Q3_K::dequantizeLanes, null, wide, Q3_K.LANE_BYTES),
                    wide ? Load.LANES : Load.MAPPED,
                    (src, rowBytes, cols, r, dst, stride) -> Q3_K.repackRow(src, r * rowBytes, dst, r * stride, cols));
            case Q5_K -> plain(t, Q5_K::matVec, Q5_K::unpack, Q5_K::dequantize, Load.MAPPED);
            case Q4_K -> new Entry(gguf(t, Q4_K::matVec, Q4_K::unpack, Q4_K::dequantize),
                    new WeightFormat(t, Matrix.Layout.LANES, Q4_K::matVecLanes, Q4_K::unpackLanes,
                            Q4_K::dequantizeLanes, null, wide, Q4_K.LANE_BYTES),
                    wide ? Load.LANES : Load.MAPPED,
                    (src, rowBytes, cols, r, dst, stride) -> Q4_K.repackRow(src, r * rowBytes, dst, r * stride, cols));
            case Q6_K -> new Entry(
                    new WeightFormat(t, Matrix.Layout.GGUF, Q6_K::matVec, Q6_K::unpack, Q6_K::dequantize, null, wide, 0),
                    new WeightFormat(t, Matrix.Layout.LANES, Q6_K::matVecLanes, Q6_K::unpackLanes,
                            Q6_K::dequantizeLanes, null, wide, Q6_K.LANE_BYTES),
                    wide ? Load.LANES : Load.MAPPED,
                    (src, rowBytes, cols, r, dst, stride) -> Q6_K.repackRow(src, r * rowBytes, dst, r * stride, cols));
            case Q8_1, Q8_K, IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, I8, I16, I32, I64, F64,
                 IQ1_M, TQ1_0, TQ2_0, MXFP4 -> null;
        };
    }

    private static WeightFormat gguf(GGMLType t, Kernels.RowKernel matVec, MatMul.Dequantizer unpack,
                                     RowDecoder reference) {
        return new WeightFormat(t, Matrix.Layout.GGUF, matVec, unpack, reference, null, false, 0);
    }

    private static Entry plain(GGMLType t, Kernels.RowKernel matVec, MatMul.Dequantizer unpack, RowDecoder reference,
                               Load load) {
        return new Entry(gguf(t, matVec, unpack, reference), null, load, null);
    }

    /// Whether the kernels can compute with `type`.
    public static boolean supports(GGMLType type) {
        return TABLE.containsKey(type);
    }

    /// The format of `type` in `layout`.
    ///
    /// @throws IllegalArgumentException if the type has no kernels or no such layout
    public static WeightFormat of(GGMLType type, Matrix.Layout layout) {
        Entry e = TABLE.get(type);
        if (e == null) {
            throw Kernels.unsupported(type);
        }
        WeightFormat f = layout == Matrix.Layout.GGUF ? e.gguf : e.packed;
        if (f == null || f.layout != layout) {
            throw new IllegalArgumentException("no " + layout + " layout for " + type);
        }
        return f;
    }

    /// The format of `m`.
    public static WeightFormat of(Matrix m) {
        return of(m.type(), m.layout());
    }

    /// What loading does with matrices of `type` ([Load#MAPPED] for a type without kernels).
    public static Load load(GGMLType type) {
        Entry e = TABLE.get(type);
        return e == null ? Load.MAPPED : e.load;
    }

    /// Bytes of a 256-weight super-block of `type` in the lane layout; 0 for a type without one.
    static long laneBytes(GGMLType type) {
        Entry e = TABLE.get(type);
        return e != null && e.packed != null && e.packed.layout == Matrix.Layout.LANES ? e.packed.packedBlockBytes : 0;
    }

    /// The function that writes a repacked group or row of `type` ([Load#ROWS4], [Load#LANES]).
    static GroupPacker packer(GGMLType type) {
        return TABLE.get(type).packer;
    }
}
