package dev.llamaj.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// The README's LangChain4j example compiles as written against this module and LangChain4j (running it needs
/// a real chat model; `InProcessTest` runs the same calls on stories260K).
class ReadmeExampleTest {
    @TempDir
    Path dir;

    @Test
    void readmeExampleCompiles() throws Exception {
        String readme = Files.readString(Path.of("../README.md"));
        int section = readme.indexOf("## LangChain4j");
        assertThat(section).isPositive();
        int start = readme.indexOf("```java\n", section) + "```java\n".length();
        String source = readme.substring(start, readme.indexOf("```", start));
        assertThat(source).contains("public class Assistant");
        Path file = Files.writeString(dir.resolve("Assistant.java"), source);
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        int rc = javac.run(null, diagnostics, diagnostics, "--add-modules", "jdk.incubator.vector",
                "-cp", System.getProperty("java.class.path"), "-d", dir.toString(), file.toString());
        assertThat(rc).as(diagnostics.toString(StandardCharsets.UTF_8)).isZero();
    }
}
