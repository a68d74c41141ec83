package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/// A JVM without `--add-modules jdk.incubator.vector` gets a one-line `IllegalStateException` from
/// `LlamaModel.load` that names the flag, before anything else (not a `NoClassDefFoundError` from a kernel later).
class VectorApiRequiredTest {
    /// Run in the child JVM: loads a model file and prints what was thrown.
    public static final class LoadWithoutTheModule {
        public static void main(String[] args) {
            try {
                LlamaModel.load(Path.of(args[0])).close();
                System.out.println("loaded");
            } catch (Throwable t) {
                System.out.println(t.getClass().getName() + ": " + t.getMessage());
            }
        }
    }

    @Test
    void loadSaysWhichFlagIsMissing() throws Exception {
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), LoadWithoutTheModule.class.getName(),
                "does-not-matter.gguf");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().remove("JDK_JAVA_OPTIONS");
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(output.strip()).isEqualTo("java.lang.IllegalStateException: llamaj needs the Vector API: run java"
                + " with --add-modules jdk.incubator.vector");
    }
}
