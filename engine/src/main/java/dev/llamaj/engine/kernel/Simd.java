package dev.llamaj.engine.kernel;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/// The vector species every kernel uses, fixed once per JVM as `static final` constants so that C2 folds them.
///
/// `F` is the platform's preferred float shape (512 bits with AVX-512, 256 with AVX2, 128 with NEON), clamped to
/// 128..512 bits; the quantized kernels assume a float vector holds at most 16 lanes, so one lane group never straddles
/// the 16- and 32-weight sub-blocks of the ggml formats. `I`, `D` share `F`'s shape; `S` has `F`'s lane count (a
/// short load widened to one float vector). `B` is always 16 bytes: the quantized kernels load 16 quant bytes at a
/// time and widen them to `BYTE_PARTS = 16 / L` int or float vectors (1 with AVX-512, 2 with AVX2, 4 with NEON).
///
/// **Loop shape.** Kernels handle part 0 straight-line and parts 1.. in a `for (p = 1; p < BYTE_PARTS; p++)` loop,
/// which folds away on 512-bit machines. A loop that runs exactly once is *not* free: it keeps C2 from unrolling
/// the enclosing loop (measured 20-25% slower on `Q4_K`).
///
/// **Determinism.** The Vector API leaves the order of `reduceLanes(ADD)` unspecified, and C2's intrinsic and the Java
/// fallback (used by the interpreter and C1 before a kernel is hot) really do add in different orders; `EXP` likewise
/// differs between the intrinsic and the fallback. A product would then change in its last bits once the JIT compiles
/// it, and greedy decoding could change between runs. So kernels reduce with a fixed butterfly of lane swaps (`SWAP_*`:
/// strides L/2, L/4, ... 1; then every lane holds the same sum, read as `lane(0)`: a `reduceLanes(MAX)` there, exact
/// too, cost a fifth of the whole `Q4_K` kernel on 2048-column rows) and exponentiate with [#map] (a polynomial of
/// exactly rounded operations): the same bits in every execution mode and on every thread count. The butterfly is
/// written out inline in each kernel, never as a helper taking a vector: past C2's inlining node budget such a call
/// boxes its argument on the heap (6-100x slower).
///
/// **No merged vector as a receiver.** Inside a loop, a vector carried from one iteration to the next is never the
/// receiver of a Vector API call: `acc = fresh.add(acc)`, not `acc = acc.add(fresh)`; and no `c ? v1 : v2` of
/// vectors feeds a call. While parsing, C2 types such a merge (a phi) as the abstract `FloatVector`, and inlines a
/// call on it only by speculating on the receiver type its profile recorded. Where that profile is missing (a kernel
/// compiled straight from unprofiled tier-2 code on a busy machine) or its speculation was given up (a shared
/// method past its trap limit), the call stays virtual and boxes every vector it touches. As an argument the merge is
/// harmless: the call is bound by its fresh receiver, and its intrinsic is retried once the phi's type is known.
/// `AllocationTest` runs with `-XX:-UseTypeProfile`, so a kernel that breaks the rule fails there every time.
///
/// The one knob, for tests only: `-Dllamaj.vectorBits=256` (or 128) narrows the shape below the preferred one, so the
/// narrower code paths can be exercised on a wide machine.
final class Simd {
    /// Preferred float species, possibly narrowed by `llamaj.vectorBits`.
    static final VectorSpecies<Float> F;
    /// Int lanes of `F`'s shape, for nibble and bit unpacking.
    static final VectorSpecies<Integer> I;
    /// Double lanes of `F`'s shape, for sums kept in double.
    static final VectorSpecies<Double> D;
    /// Short lanes, as many as `F` has lanes: one load widens to one float vector.
    static final VectorSpecies<Short> S;
    /// 16 byte lanes: one load widens to `BYTE_PARTS` float vectors.
    static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    /// Float lanes per vector.
    static final int L;
    /// Float vectors per 16-byte load: `16 / L`.
    static final int BYTE_PARTS;

    /// Lane swaps `i ↔ i ^ (L/2)`, `i ^ (L/4)`, `i ^ (L/8)`, `i ^ (L/16)` (identity where the stride is below 1):
    /// the butterfly that reduces a vector to its lane sum in a fixed order (see "Determinism" above).
    static final VectorShuffle<Float> SWAP_HALF;
    static final VectorShuffle<Float> SWAP_QUARTER;
    static final VectorShuffle<Float> SWAP_EIGHTH;
    static final VectorShuffle<Float> SWAP_SIXTEENTH;
    /// Lanes whose index has bit `L/2` (resp. `L/4`) set: where the merged four-row butterfly keeps rows 1 and 3
    /// (resp. 2 and 3).
    static final VectorMask<Float> HALF_LANES;
    static final VectorMask<Float> QUARTER_LANES;
    /// Moves the four row sums of the merged butterfly (lanes 0, L/2, L/4, 3L/4) to lanes 0..3.
    static final VectorShuffle<Float> GATHER4;
    /// Lanes 0..3.
    static final VectorMask<Float> FIRST4;
    /// Lane indices `0, 1, .. L−1` as ints.
    static final IntVector IOTA;

    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);

    static {
        int bits = Math.clamp(FloatVector.SPECIES_PREFERRED.vectorBitSize(), 128, 512);
        String forced = System.getProperty("llamaj.vectorBits");
        if (forced != null) {
            int want = Integer.parseInt(forced.trim());
            if (want != 128 && want != 256 && want != 512) {
                throw new IllegalArgumentException("llamaj.vectorBits must be 128, 256 or 512, not " + forced);
            }
            bits = Math.min(bits, want);
        }
        VectorShape shape = VectorShape.forBitSize(bits);
        F = FloatVector.SPECIES_PREFERRED.withShape(shape);
        I = IntVector.SPECIES_PREFERRED.withShape(shape);
        D = DoubleVector.SPECIES_PREFERRED.withShape(shape);
        L = F.length();
        S = ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(16 * L));
        BYTE_PARTS = 16 / L;
        int half = L / 2;
        int quarter = L / 4;
        SWAP_HALF = VectorShuffle.fromOp(F, i -> i ^ half);
        SWAP_QUARTER = VectorShuffle.fromOp(F, i -> i ^ quarter);
        SWAP_EIGHTH = VectorShuffle.fromOp(F, i -> L >= 8 ? i ^ (L / 8) : i);
        SWAP_SIXTEENTH = VectorShuffle.fromOp(F, i -> L >= 16 ? i ^ (L / 16) : i);
        boolean[] halfLanes = new boolean[L];
        boolean[] quarterLanes = new boolean[L];
        for (int i = 0; i < L; i++) {
            halfLanes[i] = (i & half) != 0;
            quarterLanes[i] = (i & quarter) != 0;
        }
        HALF_LANES = VectorMask.fromArray(F, halfLanes, 0);
        QUARTER_LANES = VectorMask.fromArray(F, quarterLanes, 0);
        int[] gather = new int[L];
        gather[1] = half;
        gather[2] = quarter;
        gather[3] = half + quarter;
        GATHER4 = VectorShuffle.fromArray(F, gather, 0);
        FIRST4 = F.indexInRange(0, 4);
        IOTA = (IntVector) I.iotaShuffle(0, 1, false).toVector();
    }

    private static final float LOG2E = 1.44269502f;
    private static final float LN2_HI = 0.693145752f;   // 0x3f317200: ln 2 with 12 low zero bits, n × LN2_HI exact
    private static final float LN2_LO = 1.42860677e-6f;  // ln 2 − LN2_HI
    private static final float ROUND = 0x1.8p23f;        // adding it rounds a float below 2^22 to an integer
    private static final float EXP_MAX = 88.72283f;      // e^EXP_MAX is the largest finite result; above: +infinity
    private static final float EXP_MIN = -86.9f;         // below: 0 (results under ~1.8e-38 are flushed)

    /// `a[i] = e^a[i]` for `i ∈ [from, to)`, `to − from` a multiple of `L`; see [#map] for the method.
    static void expInPlace(float[] a, int from, int to) {
        map(a, from, to, false);
    }

    /// `a[i] = a[i] / (1 + e^−a[i])` (SiLU) for `i ∈ [from, to)`, `to − from` a multiple of `L`.
    static void siluInPlace(float[] a, int from, int to) {
        map(a, from, to, true);
    }

    /// `e^x` lane by lane, to within about 2 ulp, identically in compiled and interpreted code; with `silu`,
    /// `x = −a[i]` and `a[i] / (1 + e^x)` is stored.
    ///
    /// `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2` (`ln 2` split in two so `r` is exact to float precision); `e^r` is its
    /// degree-7 Taylor polynomial (truncation error below 0.1 ulp); `2^n` is assembled in the exponent field, as
    /// `2·2^(n−1)` so that `n = 128` near the overflow threshold still works. Results below ~1.8e-38 are flushed
    /// to 0, which softmax and SiLU do not notice; NaN stays NaN.
    ///
    /// Arrays in and out, never a vector: a helper taking or returning a vector is not always inlined (once
    /// compiled on its own, C2 treats it as "already compiled into a big method"), and then every call boxes its
    /// vectors; this one costs at most a call per array.
    private static void map(float[] a, int from, int to, boolean silu) {
        float sign = silu ? -1f : 1f;
        for (int i = from; i < to; i += L) {
            FloatVector v = FloatVector.fromArray(F, a, i);
            FloatVector x = v.mul(sign); // −v exactly for SiLU: no conditional vector (see the class comment)
            FloatVector c = x.max(EXP_MIN).min(EXP_MAX);
            FloatVector t = c.fma(LOG2E, ROUND);
            FloatVector n = t.sub(ROUND);
            FloatVector r = c.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
            FloatVector p = r.fma(1f / 5040, 1f / 720);
            p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
            p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
            p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
            p = p.fma(r, FloatVector.broadcast(F, 0.5f));
            p = p.fma(r, FloatVector.broadcast(F, 1f));
            p = p.fma(r, FloatVector.broadcast(F, 1f));
            // the low bits of t hold n + bits(ROUND); the exponent field of 2^(n−1) is n − 1 + 127
            FloatVector half = (FloatVector) ((IntVector) t.reinterpretShape(I, 0))
                    .sub(Float.floatToRawIntBits(ROUND) - 126).lanewise(VectorOperators.LSHL, 23).reinterpretShape(F, 0);
            FloatVector e = p.add(p).mul(half);
            VectorMask<Float> over = x.compare(VectorOperators.GT, EXP_MAX);
            VectorMask<Float> under = x.compare(VectorOperators.LT, EXP_MIN);
            e = e.blend(Float.POSITIVE_INFINITY, over).blend(0f, under);
            if (silu) {
                v.div(e.add(1f)).intoArray(a, i);
            } else {
                e.intoArray(a, i);
            }
        }
    }

    /// `e^x` of one float: the same operations in the same order as [#map], so exactly the same result as a lane
    /// of the vector version (for tails, where a masked vector operation could cost an allocation).
    static float exp(float x) {
        float c = Math.min(Math.max(x, EXP_MIN), EXP_MAX);
        float t = Math.fma(c, LOG2E, ROUND);
        float n = t - ROUND;
        float r = (c - n * LN2_HI) - n * LN2_LO;
        float p = Math.fma(r, 1f / 5040, 1f / 720);
        p = Math.fma(p, r, 1f / 120);
        p = Math.fma(p, r, 1f / 24);
        p = Math.fma(p, r, 1f / 6);
        p = Math.fma(p, r, 0.5f);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        float half = Float.intBitsToFloat((Float.floatToRawIntBits(t) - (Float.floatToRawIntBits(ROUND) - 126)) << 23);
        float e = (p + p) * half;
        if (x > EXP_MAX) {
            return Float.POSITIVE_INFINITY;
        }
        if (x < EXP_MIN) {
            return 0f;
        }
        return e;
    }

    private Simd() {
    }
}
