package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// The Java API example in the README compiles as written and runs against stories260K.
class ReadmeExampleTest {
    @TempDir
    Path dir;

    static String exampleSource() throws Exception {
        String readme = Files.readString(Path.of("../README.md"));
        int api = readme.indexOf("## Java API");
        int start = readme.indexOf("```java\n", api) + "```java\n".length();
        int end = readme.indexOf("```", start);
        return readme.substring(start, end);
    }

    @Test
    void readmeExampleCompilesAndRuns() throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        Path source = Files.writeString(dir.resolve("Example.java"), exampleSource());
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        int rc = javac.run(null, diagnostics, diagnostics, "--add-modules", "jdk.incubator.vector",
                "-cp", System.getProperty("java.class.path"), "-d", dir.toString(), source.toString());
        assertThat(rc).as(diagnostics.toString(StandardCharsets.UTF_8)).isZero();

        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (URLClassLoader loader = new URLClassLoader(new java.net.URL[] {dir.toUri().toURL()},
                getClass().getClassLoader())) {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            loader.loadClass("Example").getMethod("main", String[].class).invoke(null, (Object) new String[] {model});
        } finally {
            System.setOut(original);
        }
        List<String> lines = captured.toString(StandardCharsets.UTF_8).lines().toList();
        assertThat(lines).isNotEmpty();
        assertThat(lines.getLast()).matches("\\d+ tokens, [\\d.]+ tokens/s, stopped: (MAX_TOKENS|END_OF_GENERATION)");
    }
}
