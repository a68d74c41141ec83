package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// `java -cp llama.jar dev.llamaj.cli.Main ...` without `--add-modules jdk.incubator.vector` (what an IDE run
/// configuration or `exec:java` does unless told): one line saying what to add, exit 1, no stack trace. Run in a
/// child JVM, since this test's own JVM has the module.
class VectorApiMissingTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"--prompt,Once", "bench,-p,8,-n,4,-r,1"})
    void oneLineSaysWhatToAdd(String args) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-D" + BuiltinModel.CACHE_DIR_PROPERTY + "=" + dir, "-cp",
                System.getProperty("java.class.path"), "dev.llamaj.cli.Main"));
        command.addAll(List.of(args.split(",")));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().remove("JDK_JAVA_OPTIONS");
        Process p = pb.start();
        p.getOutputStream().close();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(output).isEqualTo(1);
        List<String> lines = output.lines().filter(l -> !l.startsWith("llama: no --model given")).toList();
        assertThat(lines).containsExactly("llama: " + Main.VECTOR_API_MISSING);
        assertThat(Files.list(dir).count()).as("the cache directory was used").isPositive();
    }
}
