package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import jdk.incubator.vector.FloatVector;

/// The species choice and the deterministic vector `exp`.
class SimdTest {

    @Test
    void speciesIsPreferredShapeAtMost512Bits() {
        assertThat(Simd.L).isIn(4, 8, 16);
        assertThat(Simd.F.vectorBitSize()).isLessThanOrEqualTo(FloatVector.SPECIES_PREFERRED.vectorBitSize());
        assertThat(Simd.L * Simd.BYTE_PARTS).isEqualTo(16);
    }

    @Test
    void expIsWithinTwoUlpOfMathExp() {
        SplittableRandom random = new SplittableRandom(11);
        float[] x = new float[Simd.L];
        float[] e = new float[Simd.L];
        int worst = 0;
        for (int k = 0; k < 200_000; k++) {
            for (int i = 0; i < x.length; i++) {
                x[i] = k < 100 ? (float) random.nextDouble(-1, 1) : (float) random.nextDouble(-86.9, 88.72);
            }
            System.arraycopy(x, 0, e, 0, x.length);
            Simd.expInPlace(e, 0, e.length);
            for (int i = 0; i < x.length; i++) {
                float want = (float) Math.exp(x[i]);
                int ulps = Math.abs(Float.floatToRawIntBits(e[i]) - Float.floatToRawIntBits(want));
                assertThat(ulps).as("exp(%s) = %s, want %s", x[i], e[i], want).isLessThanOrEqualTo(2);
                worst = Math.max(worst, ulps);
            }
        }
        assertThat(worst).isLessThanOrEqualTo(2);
    }

    @Test
    void scalarExpEqualsTheVectorLaneBitForBit() {
        SplittableRandom random = new SplittableRandom(12);
        float[] x = new float[Simd.L];
        float[] e = new float[Simd.L];
        float[] special = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 88.72283f, 88.8f,
                -86.9f, -87f, 1e-30f};
        for (int k = 0; k < 50_000; k++) {
            for (int i = 0; i < x.length; i++) {
                x[i] = k < special.length ? special[k] : (float) random.nextDouble(-100, 100);
            }
            System.arraycopy(x, 0, e, 0, x.length);
            Simd.expInPlace(e, 0, e.length);
            for (int i = 0; i < x.length; i++) {
                assertThat(Float.floatToRawIntBits(Simd.exp(x[i]))).as("exp(%s)", x[i])
                        .isEqualTo(Float.floatToRawIntBits(e[i]));
            }
        }
    }

    @Test
    void expHandlesSpecialValues() {
        float[] in = {0f, -0f, 1f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, Float.NaN, 88.72283f, 88.8f,
                -87f, -200f, -1e-30f, 1e-30f, 20f, -20f, 0.5f, -0.5f};
        float[] want = {1f, 1f, (float) Math.E, 0f, Float.POSITIVE_INFINITY, Float.NaN, (float) Math.exp(88.72283f),
                Float.POSITIVE_INFINITY, 0f, 0f, 1f, 1f, (float) Math.exp(20), (float) Math.exp(-20),
                (float) Math.exp(0.5), (float) Math.exp(-0.5)};
        for (int i = 0; i < in.length; i++) {
            float[] x = new float[Simd.L];
            java.util.Arrays.fill(x, in[i]);
            float[] e = new float[Simd.L];
            System.arraycopy(x, 0, e, 0, x.length);
            Simd.expInPlace(e, 0, e.length);
            if (Float.isNaN(want[i])) {
                assertThat(e[0]).as("exp(%s)", in[i]).isNaN();
            } else if (Float.isInfinite(want[i]) || want[i] == 0 || want[i] == 1) {
                assertThat(e[0]).as("exp(%s)", in[i]).isEqualTo(want[i]);
            } else {
                assertThat(Math.abs(Float.floatToRawIntBits(e[0]) - Float.floatToRawIntBits(want[i])))
                        .as("exp(%s) = %s, want %s", in[i], e[0], want[i]).isLessThanOrEqualTo(2);
            }
        }
    }
}
