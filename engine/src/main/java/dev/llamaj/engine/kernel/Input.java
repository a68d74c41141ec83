package dev.llamaj.engine.kernel;

import java.util.Arrays;

import dev.llamaj.gguf.GGMLType;

/// The vector `x` of one matrix-vector product, prepared once per product (before the rows are split across
/// threads) in the forms the row kernels read, so that no row repeats the work.
///
/// **Float group sums** (`Q4_K` in the GGUF layout, `Q5_K`): per 256-weight
/// super-block, 8 zeros then the sums of its eight 32-weight groups ([Kernels#superBlockSums]); the kernels multiply
/// them with the groups' minimums.
///
/// **8-bit integers** (with 512-bit vectors: `Q2_K`, `Q3_K` and `Q4_K` in their lane layouts, `Q6_K`, `Q4_0` in the
/// four-row layout): `x`
/// quantized as ggml's `block_q8_K` is, one float scale per 256 values (per 32 for `Q4_0`, as `block_q8_0`) and
/// integers in −127..127, which is also what llama.cpp's CPU kernels multiply these formats with. The Vector API
/// has no 8-bit dot-product instruction, so the integer kernels use 32-bit lanes that each carry two products: the
/// kernel packs two weights of a lane as `a0 + a1·2¹⁶` and this class packs the two matching activations as `b1 +
/// b0·2¹⁶`; the 32-bit product is then `a0·b1 + (a0·b0 + a1·b1)·2¹⁶` (mod 2³²), so its upper half is the two-term
/// dot product. A sum of such products plus `2¹⁵`, shifted right arithmetically by 16, is the exact sum of the dot
/// products as long as the lower terms `Σ a0·b1` stay within ±2¹⁵ and the dot products within ±2¹⁵: up to 8
/// multiplies per shift for 4-bit weights (≤ 15,240 and 30,480), 2 for 6-bit ones (≤ 16,002 and 32,004). Against
/// the float path this halves the vector operations per weight; the cost is the rounding of `x` to 8 bits (relative
/// error of the product ~10⁻³), as in llama.cpp.
///
/// The pairs follow the byte order of the weights' blocks (`Q6_K` in the GGUF layout, `Q4_K` in its lane layout;
/// `Q4_0`'s four-row groups alike, with one vector per block; the 2-bit lane layouts of `Q2_K` and `Q3_K` have
/// their own order, [#Q2K_LANE_PAIRS]): for vector `v` (0..1, the 64-byte halves of the
/// super-block's 4-bit quants) and extraction `e` (0..3), int lane `i` holds the activations of the nibbles the
/// kernel extracts from bytes `64v + 4i + k`: `e = 0`: low nibbles of bytes `k = 0, 2`; `e = 1`: low nibbles of `k
/// = 1, 3`; `e = 2`, `e = 3`: the high nibbles of the same bytes. They are stored at `128·superBlock + 64v + 16e +
/// i`.
final class Input {
    /// Activations per quantization block (ggml's `QK_K`).
    static final int BLOCK = 256;
    /// The bias that makes the arithmetic shift round the packed products' upper halves exactly (see above).
    static final int PAIR_BIAS = 0x8000;

    private float[] x;
    private int xOffset;
    private int cols;
    private boolean sumsReady;
    private boolean quantized;
    private boolean q4Ready;
    private boolean q6Ready;
    private boolean q6LanesReady;
    private boolean q40Ready;
    private boolean q2Ready;

    /// [Kernels#superBlockSums] of `x`.
    float[] groupSums = new float[0];
    /// Per super-block, the scale `d` of the 8-bit integers: `x ≈ d·q`.
    float[] scale = new float[0];
    /// `x` as 8-bit integers.
    private int[] q = new int[0];
    /// The packed pairs of the `Q4_K` kernel, in the byte order of its lane layout ([Q4_K#laneWeight]).
    int[] pairs4 = new int[0];
    /// Per super-block, 16 ints: lane `2g + 1` holds the integer sum of its 32-value group `g` (multiplied with the
    /// `Q4_K` minimums), the even lanes are unused.
    int[] sums32 = new int[0];
    /// The packed pairs of the `Q6_K` kernels: in the byte order of `ql` (GGUF layout), or of the lane layout's
    /// bytes, one per weight.
    int[] pairs6 = new int[0];
    int[] pairs6Lanes = new int[0];
    /// The packed pairs of the `Q2_K` and `Q3_K` lane-layout kernels ([#Q2K_LANE_PAIRS]).
    int[] pairs2 = new int[0];
    /// Per super-block, the integer sums of its sixteen 16-value groups (for `Q6_K`'s offset of −32, `Q3_K`'s of −4
    /// and the `Q2_K` minimums).
    int[] sums16 = new int[0];
    /// For the four-row `Q4_0` kernel, `x` quantized per 32 values (as ggml's `block_q8_0`): the scales,
    float[] scale32 = new float[0];
    /// per block 4 × 16 packed pairs (lane `i` serves bytes `4·(i % 4) .. + 3` of a row's block, four rows per
    /// vector), and per block the bias that also folds in `Q4_0`'s offset of 8: `2¹⁵ − 2·Σq·2¹⁶` (the kernel's
    /// four lanes per row each subtract `2·Σq`, `8·Σq` in all).
    int[] pairs40 = new int[0];
    int[] bias40 = new int[0];
    private int[] q32 = new int[0];

    /// Starts a product of `x[xOffset ..]`; nothing is computed until [#prepare] says what is needed.
    void begin(float[] x, int xOffset) {
        this.x = x;
        this.xOffset = xOffset;
        this.cols = 0;
        sumsReady = false;
        quantized = false;
        q4Ready = false;
        q6Ready = false;
        q6LanesReady = false;
        q40Ready = false;
        q2Ready = false;
    }

    /// Computes what the kernel of `type` in `layout` reads for `cols` columns, unless an earlier matrix of the
    /// product needed it.
    void prepare(GGMLType type, Matrix.Layout layout, int cols) {
        this.cols = cols;
        if (quantizes(type, layout)) {
            switch (type) {
                case Q4_K -> packQ4K();
                case Q6_K -> packQ6K(layout == Matrix.Layout.LANES);
                case Q2_K, Q3_K -> packQ2K();
                default -> packQ40(); // Q4_0
            }
        } else if (type == GGMLType.Q4_K || type == GGMLType.Q5_K) {
            sums();
        }
    }

    /// Whether the kernel of `type` in `layout` multiplies with `x` rounded to 8-bit integers ([#roundTrip]) rather
    /// than with `x` itself: with 512-bit vectors, `Q2_K`, `Q3_K` and `Q4_K` in their lane layouts, `Q6_K`, and
    /// `Q4_0` in four-row groups.
    static boolean quantizes(GGMLType type, Matrix.Layout layout) {
        return WeightFormat.supports(type) && WeightFormat.of(type, layout).quantizesInput();
    }

    /// Drops the reference to the caller's vector.
    void clear() {
        x = null;
    }

    private void sums() {
        if (sumsReady) {
            return;
        }
        if (groupSums.length < cols / 16) {
            groupSums = new float[cols / 16];
        }
        Kernels.superBlockSums(x, xOffset, cols, groupSums);
        sumsReady = true;
    }

    private void packQ4K() {
        if (q4Ready) {
            return;
        }
        quantize();
        int blocks = cols / BLOCK;
        if (pairs4.length < cols / 2) {
            pairs4 = new int[cols / 2];
            sums32 = new int[blocks * 16];
        }
        for (int sb = 0; sb < blocks; sb++) {
            pack(q, sb * BLOCK, Q4K_PAIRS, pairs4, 128 * sb);
            for (int g = 0; g < 8; g++) {
                sums32[16 * sb + 2 * g] = 0;
                sums32[16 * sb + 2 * g + 1] = sum(q, sb * BLOCK + 32 * g, 32);
            }
        }
        q4Ready = true;
    }

    private void packQ6K(boolean lanes) {
        if (lanes ? q6LanesReady : q6Ready) {
            return;
        }
        quantize();
        int blocks = cols / BLOCK;
        if (sums16.length < blocks * 16) {
            sums16 = new int[blocks * 16];
        }
        int[] pairs = lanes ? pairs6Lanes : pairs6;
        if (pairs.length < cols / 2) {
            pairs = new int[cols / 2];
            if (lanes) {
                pairs6Lanes = pairs;
            } else {
                pairs6 = pairs;
            }
        }
        for (int sb = 0; sb < blocks; sb++) {
            pack(q, sb * BLOCK, lanes ? Q6K_LANE_PAIRS : Q6K_PAIRS, pairs, 128 * sb);
            for (int g = 0; g < 16; g++) {
                sums16[16 * sb + g] = sum(q, sb * BLOCK + 16 * g, 16);
            }
        }
        if (lanes) {
            q6LanesReady = true;
        } else {
            q6Ready = true;
        }
    }

    private void packQ2K() {
        if (q2Ready) {
            return;
        }
        quantize();
        int blocks = cols / BLOCK;
        if (pairs2.length < cols / 2) {
            pairs2 = new int[cols / 2];
        }
        if (sums16.length < blocks * 16) {
            sums16 = new int[blocks * 16];
        }
        for (int sb = 0; sb < blocks; sb++) {
            pack(q, sb * BLOCK, Q2K_LANE_PAIRS, pairs2, 128 * sb);
            for (int g = 0; g < 16; g++) {
                sums16[16 * sb + g] = sum(q, sb * BLOCK + 16 * g, 16);
            }
        }
        q2Ready = true;
    }

    private void packQ40() {
        if (q40Ready) {
            return;
        }
        int blocks = cols / 32;
        if (q32.length < cols) {
            q32 = new int[cols];
            scale32 = new float[blocks];
            pairs40 = new int[blocks * 64];
            bias40 = new int[blocks];
        }
        for (int b = 0; b < blocks; b++) {
            scale32[b] = quantizeBlock(x, xOffset + 32 * b, q32, 32 * b, 32);
            bias40[b] = PAIR_BIAS - 2 * sum(q32, 32 * b, 32) * 65536;
            pack(q32, 32 * b, Q40_PAIRS, pairs40, 64 * b);
        }
        q40Ready = true;
    }

    private static int sum(int[] v, int from, int n) {
        int s = 0;
        for (int j = 0; j < n; j++) {
            s += v[from + j];
        }
        return s;
    }

    /// `pairs[at + j] = q[base + w1] + q[base + w0]·2¹⁶` for the weight pairs `(w0, w1)` of `order`
    /// ([#pairOrder]).
    private static void pack(int[] q, int base, int[] order, int[] pairs, int at) {
        for (int j = 0; j < order.length; j++) {
            int w = order[j];
            pairs[at + j] = q[base + (w >>> 16)] + (q[base + (w & 0xFFFF)] << 16);
        }
    }

    /// The weight of the low (`high = 0`) or high nibble of byte `b` of a block's quants, per kernel layout.
    @FunctionalInterface
    private interface NibbleWeight {
        int of(int b, int high);
    }

    /// For the `vectors` 64-byte loads of a block's quants, the weights `w0 + w1·2¹⁶` each packed pair serves, in
    /// the order described above (vector, extraction, lane); `extractions` is 4 for nibbles, 2 for bytes (whose
    /// "low nibble" is the byte).
    private static int[] pairOrder(int vectors, int extractions, NibbleWeight weight) {
        int[] order = new int[16 * extractions * vectors];
        int at = 0;
        for (int v = 0; v < vectors; v++) {
            for (int e = 0; e < extractions; e++) {
                int high = e >>> 1;      // e = 2, 3: high nibbles
                int k0 = e & 1;          // e = 0, 2: bytes 0 and 2 of the lane; e = 1, 3: bytes 1 and 3
                for (int i = 0; i < 16; i++) {
                    int b0 = 64 * v + 4 * i + k0;
                    order[at++] = weight.of(b0, high) | weight.of(b0 + 2, high) << 16;
                }
            }
        }
        return order;
    }

    private static final int[] Q4K_PAIRS = pairOrder(2, 4, Q4_K::laneWeight);
    /// `Q6_K`'s `ql` byte `b`: low nibble weight `128·(b/64) + b%64`, high nibble 64 more.
    private static final int[] Q6K_PAIRS = pairOrder(2, 4, (b, high) -> 128 * (b >>> 6) + 64 * high + (b & 63));
    /// `Q6_K`'s lane layout: byte `b` is weight [Q6_K#laneWeight]`(b)`.
    private static final int[] Q6K_LANE_PAIRS = pairOrder(4, 2, (b, high) -> Q6_K.laneWeight(b));
    /// The 2-bit lane layouts of `Q2_K` and `Q3_K` ([Q2_K#repackRow]): int lane `g` holds group `g`'s 16 weights in
    /// order, 2 bits each, and extraction `t` (0..7) takes bits `2t` and `16 + 2t`: weights `16g + t` and
    /// `16g + 8 + t`, stored at `128·superBlock + 16t + g`.
    private static final int[] Q2K_LANE_PAIRS = crumbPairs();

    private static int[] crumbPairs() {
        int[] order = new int[128];
        for (int t = 0; t < 8; t++) {
            for (int g = 0; g < 16; g++) {
                order[16 * t + g] = (16 * g + t) | (16 * g + 8 + t) << 16;
            }
        }
        return order;
    }

    /// `Q4_0`, four rows per load: lane `i` serves bytes `4·(i % 4) .. + 3` of its row's 16, whose low nibbles are
    /// weights 0..15 and high nibbles 16..31.
    private static final int[] Q40_PAIRS = pairOrder(1, 4, (b, high) -> (b & 15) + 16 * high);

    /// `x` to 8-bit integers per super-block: `d = max|x| / 127`, `q = round(x / d)`. A block holding NaN or an
    /// infinity gets the scale NaN, so the products it feeds are NaN as in float arithmetic.
    private void quantize() {
        if (quantized) {
            return;
        }
        int blocks = cols / BLOCK;
        if (q.length < cols) {
            q = new int[cols];
            scale = new float[blocks];
        }
        for (int sb = 0; sb < blocks; sb++) {
            int from = xOffset + sb * BLOCK;
            scale[sb] = quantizeBlock(x, from, q, sb * BLOCK, BLOCK);
        }
        quantized = true;
    }

    /// One block of [#quantize]: writes `n` integers to `q[qOffset ..]`, returns the scale. Also the tests' reference.
    static float quantizeBlock(float[] x, int from, int[] q, int qOffset, int n) {
        float amax = 0;
        for (int j = 0; j < n; j++) {
            amax = Math.max(amax, Math.abs(x[from + j]));
        }
        if (!(amax < Float.POSITIVE_INFINITY)) {
            Arrays.fill(q, qOffset, qOffset + n, 0);
            return Float.NaN;
        }
        if (amax == 0) {
            Arrays.fill(q, qOffset, qOffset + n, 0);
            return 0;
        }
        float inverse = 127 / amax;
        for (int j = 0; j < n; j++) {
            q[qOffset + j] = Math.clamp(Math.round(x[from + j] * inverse), -127, 127);
        }
        return amax / 127;
    }

    /// `x` as the integer kernels see it, `d·q` per block of `block` values (256, or 32 for `Q4_0`), for tests'
    /// references.
    static float[] roundTrip(float[] x, int xOffset, int n, int block) {
        float[] out = new float[n];
        int[] q = new int[block];
        for (int b = 0; b < n / block; b++) {
            float d = quantizeBlock(x, xOffset + b * block, q, 0, block);
            for (int j = 0; j < block; j++) {
                out[b * block + j] = d * q[j];
            }
        }
        return out;
    }

    /// The block length of [#roundTrip] for the kernel of `type`.
    static int roundTripBlock(GGMLType type) {
        return type == GGMLType.Q4_0 ? 32 : BLOCK;
    }
}
