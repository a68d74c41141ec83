package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/// The `static_assert`s of ggml-common.h as a test: every [GGMLType]'s id, weights per block and bytes per block
/// equal ggml's, with the expected sizes written out from the `block_*` struct definitions.
class GGMLTypeTest {
    private static final int QK_K = 256;
    private static final int HALF = 2; // ggml_half
    private static final int K_SCALE_SIZE = 12;

    /// ggml id, weights per block, bytes per block (the sum of the struct's fields).
    private record Geometry(int id, int blockSize, int bytesPerBlock) {}

    private static final Map<GGMLType, Geometry> GGML = Map.ofEntries(
            Map.entry(GGMLType.F32, new Geometry(0, 1, 4)),
            Map.entry(GGMLType.F16, new Geometry(1, 1, 2)),
            // block_q4_0: d, qs[16]
            Map.entry(GGMLType.Q4_0, new Geometry(2, 32, HALF + 32 / 2)),
            // block_q4_1: d, m, qs[16]
            Map.entry(GGMLType.Q4_1, new Geometry(3, 32, 2 * HALF + 32 / 2)),
            // block_q5_0: d, qh[4], qs[16]
            Map.entry(GGMLType.Q5_0, new Geometry(6, 32, HALF + 4 + 32 / 2)),
            // block_q5_1: d, m, qh[4], qs[16]
            Map.entry(GGMLType.Q5_1, new Geometry(7, 32, 2 * HALF + 4 + 32 / 2)),
            // block_q8_0: d, qs[32]
            Map.entry(GGMLType.Q8_0, new Geometry(8, 32, HALF + 32)),
            // block_q8_1: d, s, qs[32]
            Map.entry(GGMLType.Q8_1, new Geometry(9, 32, 2 * HALF + 32)),
            // block_q2_K: scales[QK_K/16], qs[QK_K/4], d, dmin
            Map.entry(GGMLType.Q2_K, new Geometry(10, QK_K, QK_K / 16 + QK_K / 4 + 2 * HALF)),
            // block_q3_K: hmask[QK_K/8], qs[QK_K/4], scales[12], d
            Map.entry(GGMLType.Q3_K, new Geometry(11, QK_K, QK_K / 8 + QK_K / 4 + 12 + HALF)),
            // block_q4_K: d, dmin, scales[K_SCALE_SIZE], qs[QK_K/2]
            Map.entry(GGMLType.Q4_K, new Geometry(12, QK_K, 2 * HALF + K_SCALE_SIZE + QK_K / 2)),
            // block_q5_K: d, dmin, scales[K_SCALE_SIZE], qh[QK_K/8], qs[QK_K/2]
            Map.entry(GGMLType.Q5_K, new Geometry(13, QK_K, 2 * HALF + K_SCALE_SIZE + QK_K / 8 + QK_K / 2)),
            // block_q6_K: ql[QK_K/2], qh[QK_K/4], scales[QK_K/16], d
            Map.entry(GGMLType.Q6_K, new Geometry(14, QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + HALF)),
            // block_q8_K: float d, qs[QK_K], int16 bsums[QK_K/16]
            Map.entry(GGMLType.Q8_K, new Geometry(15, QK_K, 4 + QK_K + QK_K / 16 * 2)),
            // block_iq2_xxs: d, uint16 qs[QK_K/8]
            Map.entry(GGMLType.IQ2_XXS, new Geometry(16, QK_K, HALF + QK_K / 8 * 2)),
            // block_iq2_xs: d, uint16 qs[QK_K/8], scales[QK_K/32]
            Map.entry(GGMLType.IQ2_XS, new Geometry(17, QK_K, HALF + QK_K / 8 * 2 + QK_K / 32)),
            // block_iq3_xxs: d, qs[3*QK_K/8]
            Map.entry(GGMLType.IQ3_XXS, new Geometry(18, QK_K, HALF + 3 * QK_K / 8)),
            // block_iq1_s: d, qs[QK_K/8], uint16 qh[QK_K/32]
            Map.entry(GGMLType.IQ1_S, new Geometry(19, QK_K, HALF + QK_K / 8 + QK_K / 32 * 2)),
            // block_iq4_nl: d, qs[QK4_NL/2]
            Map.entry(GGMLType.IQ4_NL, new Geometry(20, 32, HALF + 32 / 2)),
            // block_iq3_s: d, qs[QK_K/4], qh[QK_K/32], signs[QK_K/8], scales[QK_K/64]
            Map.entry(GGMLType.IQ3_S, new Geometry(21, QK_K, HALF + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64)),
            // block_iq2_s: d, qs[QK_K/4], qh[QK_K/32], scales[QK_K/32]
            Map.entry(GGMLType.IQ2_S, new Geometry(22, QK_K, HALF + QK_K / 4 + QK_K / 32 + QK_K / 32)),
            // block_iq4_xs: d, uint16 scales_h, scales_l[QK_K/64], qs[QK_K/2]
            Map.entry(GGMLType.IQ4_XS, new Geometry(23, QK_K, HALF + 2 + QK_K / 64 + QK_K / 2)),
            Map.entry(GGMLType.I8, new Geometry(24, 1, 1)),
            Map.entry(GGMLType.I16, new Geometry(25, 1, 2)),
            Map.entry(GGMLType.I32, new Geometry(26, 1, 4)),
            Map.entry(GGMLType.I64, new Geometry(27, 1, 8)),
            Map.entry(GGMLType.F64, new Geometry(28, 1, 8)),
            // block_iq1_m: qs[QK_K/8], qh[QK_K/16], scales[QK_K/32] (no separate d)
            Map.entry(GGMLType.IQ1_M, new Geometry(29, QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32)),
            Map.entry(GGMLType.BF16, new Geometry(30, 1, 2)),
            // block_tq1_0: qs[(QK_K - 4*QK_K/64)/5], qh[QK_K/64], d
            Map.entry(GGMLType.TQ1_0, new Geometry(34, QK_K, (QK_K - 4 * QK_K / 64) / 5 + QK_K / 64 + HALF)),
            // block_tq2_0: qs[QK_K/4], d
            Map.entry(GGMLType.TQ2_0, new Geometry(35, QK_K, QK_K / 4 + HALF)),
            // block_mxfp4: uint8 e (E8M0), qs[QK_MXFP4/2]
            Map.entry(GGMLType.MXFP4, new Geometry(39, 32, 1 + 32 / 2)));

    @Test
    void tableCoversEveryType() {
        assertThat(GGML.keySet()).containsExactlyInAnyOrder(GGMLType.values());
    }

    @ParameterizedTest
    @EnumSource(GGMLType.class)
    void geometryEqualsGgml(GGMLType type) {
        Geometry g = GGML.get(type);
        assertThat(type.id()).as("id of %s", type).isEqualTo(g.id());
        assertThat(type.blockSize()).as("weights per block of %s", type).isEqualTo(g.blockSize());
        assertThat(type.bytesPerBlock()).as("bytes per block of %s", type).isEqualTo(g.bytesPerBlock());
        assertThat(GGMLType.fromId(g.id())).isSameAs(type);
        assertThat(type.isQuantized()).isEqualTo(g.blockSize() > 1);
    }

    @Test
    void spotChecksAgainstWellKnownSizes() {
        assertThat(GGMLType.Q4_0.bytesPerBlock()).isEqualTo(18);
        assertThat(GGMLType.Q8_0.bytesPerBlock()).isEqualTo(34);
        assertThat(GGMLType.Q4_K.bytesPerBlock()).isEqualTo(144);
        assertThat(GGMLType.Q6_K.bytesPerBlock()).isEqualTo(210);
        assertThat(GGMLType.Q8_K.bytesPerBlock()).isEqualTo(292);
    }

    @Test
    void idsAreUnique() {
        Map<Integer, String> byId = Arrays.stream(GGMLType.values())
                .collect(Collectors.toMap(GGMLType::id, GGMLType::name, (a, b) -> a + "," + b, TreeMap::new));
        assertThat(byId).hasSize(GGMLType.values().length);
    }

    /// 4, 5: Q4_2, Q4_3; 31-33: Q4_0_4_4 and friends; 36-38: IQ4_NL_4_4 and friends (all removed from ggml); 40 and
    /// beyond: not known to llamaj.
    @ParameterizedTest
    @ValueSource(ints = {4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 63, 64, -1, 1000, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void retiredAndUnknownIdsAreNull(int id) {
        assertThat(GGMLType.fromId(id)).isNull();
    }

    @Test
    void byteSizeOfWholeBlocks() {
        assertThat(GGMLType.F32.byteSize(7)).isEqualTo(28);
        assertThat(GGMLType.Q4_0.byteSize(0)).isZero();
        assertThat(GGMLType.Q4_0.byteSize(64)).isEqualTo(36);
        assertThat(GGMLType.Q4_K.byteSize(512)).isEqualTo(288);
        assertThat(GGMLType.Q6_K.byteSize(4096L * 4096)).isEqualTo(4096L * 4096 / 256 * 210);
        assertThat(GGMLType.I8.byteSize(Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void byteSizeRejectsPartialBlocks() {
        assertThatThrownBy(() -> GGMLType.Q4_0.byteSize(33))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("33 elements of Q4_0 are not a whole number of 32-weight blocks");
        assertThatThrownBy(() -> GGMLType.Q4_K.byteSize(255)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> GGMLType.Q8_0.byteSize(1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> GGMLType.F32.byteSize(-1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void byteSizeRejectsOverflow() {
        assertThatThrownBy(() -> GGMLType.F32.byteSize(Long.MAX_VALUE / 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("take more than 9223372036854775807 bytes");
        assertThat(GGMLType.F32.byteSize(Long.MAX_VALUE / 4)).isEqualTo(Long.MAX_VALUE / 4 * 4);
    }
}
