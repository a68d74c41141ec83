package dev.llamaj.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;

/// Every scalar dequantization reproduces ggml's own `dequantize_row_*` bit for bit, on the reference tensors of
/// `../shared/reference/quant-blocks.gguf` (a 4 × 512 tensor `<TYPE>.q` per type and its dequantized `<TYPE>.f32`).
class DequantizeTest {
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @EnumSource(names = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
            "Q6_K"})
    void matchesGgmlBitForBit(GGMLType type) throws IOException {
        Path path = SharedData.require("reference/quant-blocks.gguf");
        try (GGUFFile file = GGUFFile.open(path)) {
            TensorInfo q = file.tensor(type + ".q");
            TensorInfo expected = file.tensor(type + ".f32");
            assertThat(q.type()).isEqualTo(type);
            assertThat(expected.type()).isEqualTo(GGMLType.F32);
            assertThat(expected.shape()).isEqualTo(q.shape());
            int cols = Math.toIntExact(q.shape()[0]);
            int rows = Math.toIntExact(q.elementCount() / cols);
            Matrix m = new Matrix(type, file.tensorData(q), rows, cols);
            MemorySegment want = file.tensorData(expected);
            float[] row = new float[cols + 3];
            int mismatches = 0;
            StringBuilder first = new StringBuilder();
            for (int r = 0; r < rows; r++) {
                m.dequantizeRow(r, row, 3); // a non-zero offset on purpose
                for (int c = 0; c < cols; c++) {
                    float w = want.get(FLOAT_LE, 4L * ((long) r * cols + c));
                    if (Float.floatToRawIntBits(row[3 + c]) != Float.floatToRawIntBits(w)) {
                        if (mismatches++ < 5) {
                            first.append(String.format("%n  [%d][%d]: got %s (0x%08x), ggml %s (0x%08x)", r, c,
                                    row[3 + c], Float.floatToRawIntBits(row[3 + c]), w, Float.floatToRawIntBits(w)));
                        }
                    }
                }
            }
            if (mismatches > 0) {
                fail(mismatches + " of " + rows * cols + " " + type + " weights differ from ggml:" + first);
            }
        }
    }

    @Test
    void referenceFileCoversEveryQuantizedKernelType() throws IOException {
        Path path = SharedData.require("reference/quant-blocks.gguf");
        try (GGUFFile file = GGUFFile.open(path)) {
            for (GGMLType t : GGMLType.values()) {
                if (Kernels.supports(t) && t != GGMLType.F32) {
                    assertThat(file.findTensor(t + ".q")).as(t + ".q").isPresent();
                }
            }
        }
    }
}
