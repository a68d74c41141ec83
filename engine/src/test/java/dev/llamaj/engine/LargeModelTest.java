package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llamaj.engine.kernel.Repack;
import dev.llamaj.engine.synth.SyntheticModel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// A model whose repacked weights would not fit in the memory the system can give (here a valid, sparse 32 GB
/// F32 file: the shape of Llama 3.1 8B over a hole) loads and runs from the file's mapping, saying why, instead of
/// dying with an `OutOfMemoryError` while copying.
class LargeModelTest {
    @TempDir
    Path dir;

    @Test
    void weightsLargerThanMemoryRunFromTheMappingWithAWarning() throws Exception {
        SyntheticModel m = SyntheticModel.of(SyntheticModel.Shape.LLAMA_3_1_8B, SyntheticModel.Type.F32);
        assumeTrue(m.tensorBytes() > Repack.availableBytes(),
                "this machine has more memory available than the 32 GB model needs; nothing to check");
        Path file = dir.resolve("sparse-8b-f32.gguf");
        m.writeLayoutOnly(file);
        try (LlamaModel model = LlamaModel.load(file, LoadOptions.defaults().withThreads(1).withWarmUp(false))) {
            assertThat(model.repackSkipped()).hasValueSatisfying(why -> assertThat(why)
                    .matches("repacking the weights would take \\d+\\.\\d GiB but the system has \\d+\\.\\d GiB "
                            + "available: running from the file's mapping instead \\(slower\\)"));
            assertThat(model.repackedExtraBytes()).isZero();
        }
    }
}
