package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.server.Fallback;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/// `--local-only` wins over every fallback option: `serve` then builds no fallback at all, so no request can
/// leave the server (the server opens outgoing connections only through a configured fallback).
class ServeLocalOnlyTest {
    @TempDir
    Path dir;

    private static ServeCommand parse(String... args) {
        ServeCommand command = new ServeCommand();
        new CommandLine(command).parseArgs(args);
        return command;
    }

    @Test
    void localOnlyMeansNoFallback() throws Exception {
        Path key = Files.writeString(dir.resolve("key"), "sk-123\n");
        String[] routing = {"--model", "m.gguf", "--fallback-url", "http://127.0.0.1:9/v1", "--fallback-key-file",
                key.toString(), "--fallback-on", "queue-full,too-long,low-confidence,schema-failure",
                "--min-mean-logprob", "-2"};
        Fallback f = parse(routing).fallback();
        assertThat(f).isNotNull();
        assertThat(f.key()).isEqualTo("sk-123");
        assertThat(f.rules()).hasSize(4);
        assertThat(f.minMeanLogprob()).isEqualTo(-2);
        assertThat(f.minTokenLogprob()).isEqualTo(Double.NEGATIVE_INFINITY);

        String[] localOnly = java.util.Arrays.copyOf(routing, routing.length + 1);
        localOnly[routing.length] = "--local-only";
        assertThat(parse(localOnly).fallback()).isNull();
        assertThat(parse("--model", "m.gguf").fallback()).as("no --fallback-url: no fallback").isNull();
    }

    /// A key sent over plain http is warned about, unless the fallback is on this machine.
    @Test
    void loopbackHostsAreKnownByName() {
        for (String host : new String[] {"localhost", "127.0.0.1", "127.1.2.3", "[::1]", "LOCALHOST"}) {
            assertThat(ServeCommand.isLoopback(host)).as(host).isTrue();
        }
        for (String host : new String[] {"api.openai.com", "10.0.0.1", "127example.com", "127.example.com", "[::2]"}) {
            assertThat(ServeCommand.isLoopback(host)).as(host).isFalse();
        }
    }
}
