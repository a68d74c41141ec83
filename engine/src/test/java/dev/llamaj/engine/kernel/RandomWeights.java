package dev.llamaj.engine.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import dev.llamaj.gguf.GGMLType;

/// Seeded random weights in any supported GGUF encoding: random bytes everywhere (so every quant, sub-scale and
/// high-bit pattern occurs), with each block's fp16 scale fields overwritten by sane finite values.
final class RandomWeights {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RandomWeights() {
    }

    /// Byte offsets of the fp16 scale fields inside one block of `type`.
    static int[] halfFields(GGMLType type) {
        return switch (type) {
            case Q4_0, Q5_0, Q8_0 -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> new int[0];
        };
    }

    /// A segment of `lead` junk bytes followed by `elements` weights of `type` (a multiple of its block size).
    static MemorySegment segment(Arena arena, GGMLType type, long lead, long elements, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        long bytes = type.byteSize(elements);
        MemorySegment s = arena.allocate(lead + bytes, 64);
        for (long i = 0; i < lead + bytes; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt(256));
        }
        switch (type) {
            case F32 -> {
                for (long i = 0; i < elements; i++) {
                    s.set(FLOAT_LE, lead + 4 * i, (float) random.nextDouble(-1, 1));
                }
            }
            case F16 -> {
                for (long i = 0; i < elements; i++) {
                    s.set(SHORT_LE, lead + 2 * i, Float.floatToFloat16((float) random.nextDouble(-1, 1)));
                }
            }
            case BF16 -> {
                for (long i = 0; i < elements; i++) {
                    float f = (float) random.nextDouble(-1, 1);
                    s.set(SHORT_LE, lead + 2 * i, (short) (Float.floatToRawIntBits(f) >>> 16));
                }
            }
            default -> {
                int[] fields = halfFields(type);
                long blocks = elements / type.blockSize();
                for (long b = 0; b < blocks; b++) {
                    for (int f : fields) {
                        float scale = (float) (random.nextDouble(0.001, 0.05) * (random.nextBoolean() ? 1 : -1));
                        s.set(SHORT_LE, lead + b * type.bytesPerBlock() + f, Float.floatToFloat16(scale));
                    }
                }
            }
        }
        return s;
    }

    /// Uniform floats in `[-1, 1)`.
    static float[] floats(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextDouble(-1, 1);
        }
        return v;
    }

    /// Uniform floats in `[-1, 1)` rounded to half precision, as half bit patterns (a key/value cache's entries).
    static short[] halves(int n, long seed) {
        float[] f = floats(n, seed);
        short[] h = new short[n];
        for (int i = 0; i < n; i++) {
            h[i] = Float.floatToFloat16(f[i]);
        }
        return h;
    }
}
