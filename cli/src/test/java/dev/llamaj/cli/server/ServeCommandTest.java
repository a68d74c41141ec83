package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.cli.Main;
import dev.llamaj.gguf.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// `llama serve` option handling, in-process (the running server is tested over HTTP elsewhere, and as a real
/// process with SIGTERM in ServeCommandIT).
class ServeCommandTest {
    @TempDir
    Path dir;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static String model() {
        return SharedData.require("models/stories260K.gguf").toString();
    }

    private static void assertOneLineError(Result r, int code, String fragment) {
        assertThat(r.code()).as(r.err()).isEqualTo(code);
        // (a warning may come first: a server started by an earlier test fixed this JVM's HTTP limits)
        assertThat(r.err().lines().filter(l -> !l.startsWith("llama: warning:")).findFirst().orElse(""))
                .startsWith("llama: ").contains(fragment);
        assertThat(r.err()).doesNotContain("\tat ");
    }

    @Test
    void helpListsEveryOption() {
        Result r = run("serve", "--help");
        assertThat(r.code()).isZero();
        for (String option : new String[] {"--model", "--host", "--port", "--parallel", "--api-key",
                "--api-key-file", "--chat-template", "--context", "--threads", "--queue", "--queue-timeout",
                "--max-body", "--max-connections", "--header-timeout", "--idle-timeout", "--response-timeout",
                "--shutdown-timeout", "--alias", "--no-prefix-cache", "--cors-origin", "--access-log", "--log-content",
                "--no-warmup", "--fallback-url", "--fallback-key-file", "--fallback-on", "--min-mean-logprob",
                "--min-token-logprob", "--fallback-timeout", "--fallback-model", "--local-only",
                "--pooling"}) {
            assertThat(r.out()).contains(option);
        }
    }

    @Test
    void badOptions() throws Exception {
        assertThat(run("serve", "--bogus").code()).isEqualTo(2);
        assertOneLineError(run("serve", "--model", "builtin:none"), 1, "no such built-in model");
        assertOneLineError(run("serve", "--model", model(), "--pooling", "cls"), 1,
                "--pooling must be mean or last, got 'cls'");
        assertOneLineError(run("serve", "--model", model(), "--parallel", "0"), 1, "--parallel must be 1 or more");
        for (String bad : new String[] {"lots", "-1", "5T", "2.5M"}) {
            assertOneLineError(run("serve", "--model", model(), "--cache-budget", bad), 1,
                    "--cache-budget must be a size such as 512M, 2G or 0 (off), got '" + bad + "'");
        }
        assertOneLineError(run("serve", "--model", model(), "--cache-budget", "900G"), 1,
                "--cache-budget 900G is more than the ");
        assertOneLineError(run("serve", "--model", model(), "--threads", "0"), 1, "--threads must be 1 or more");
        assertOneLineError(run("serve", "--model", model(), "--port", "70000"), 1, "--port must be 0 to 65535");
        assertOneLineError(run("serve", "--model", model(), "--max-body", "0"), 1, "--max-body");
        assertOneLineError(run("serve", "--model", model(), "--header-timeout", "0"), 1, "--header-timeout");
        assertOneLineError(run("serve", "--model", model(), "--api-key", ""), 1, "the API key is empty");
        assertOneLineError(run("serve", "--model", model(), "--cors-origin", "http://ok.example", "--cors-origin",
                "app.example.com"), 1, "--cors-origin 'app.example.com' is not an origin");
        assertOneLineError(run("serve", "--model", model(), "--api-key", "a", "--api-key-file", "b"), 1,
                "either --api-key or --api-key-file");
        assertOneLineError(run("serve", "--model", model(), "--api-key-file", dir.resolve("none").toString()), 1,
                "no such file");
        assertOneLineError(run("serve", "--model", model(), "--chat-template", dir.resolve("x.jinja").toString()),
                1, "no such file or built-in template");
        Path broken = Files.writeString(dir.resolve("broken.jinja"), "{% for %}");
        assertOneLineError(run("serve", "--model", model(), "--chat-template", broken.toString()), 1,
                "chat template");
        assertOneLineError(run("serve", "--model", model(), "--host", "no-such-host.invalid"), 1, "unknown host");
        assertOneLineError(run("serve", "--model", dir.resolve("missing.gguf").toString()), 1, "no such file");
    }

    @Test
    void badOperationsOptions() throws Exception {
        String url = "http://127.0.0.1:9/v1";
        assertOneLineError(run("serve", "--model", model(), "--access-log", dir.toString()), 1, "is a directory");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", "ftp://x/v1"), 1,
                "--fallback-url must be an http:// or https:// URL");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", "http://x y"), 1, "not a URL");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-on", "always"), 1,
                "--fallback-on: unknown rule 'always'");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-on", ""), 1,
                "--fallback-on: unknown rule ''");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--min-mean-logprob", "-1"), 1,
                "need --fallback-on low-confidence");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-on", "low-confidence"),
                1, "needs --min-mean-logprob or --min-token-logprob");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-on", "low-confidence",
                "--min-token-logprob", "2"), 1, "must be 0 or below");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-timeout", "0"), 1,
                "--fallback-timeout must be 1 second or more");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-key-file",
                dir.resolve("none").toString()), 1, "no such file");
        Path empty = Files.writeString(dir.resolve("empty-key"), "\n");
        assertOneLineError(run("serve", "--model", model(), "--fallback-url", url, "--fallback-key-file",
                empty.toString()), 1, "the key is empty");
        assertOneLineError(run("serve", "--model", model(), "--min-mean-logprob", "-1"), 1, "need --fallback-url");
        // --local-only still checks the routing options, so that a typo shows before it matters
        assertOneLineError(run("serve", "--model", model(), "--local-only", "--fallback-url", url, "--fallback-on",
                "sometimes"), 1, "unknown rule");
    }

    @Test
    void portInUse() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Result r = run("serve", "--model", model(), "--port", String.valueOf(taken.getLocalPort()));
            assertOneLineError(r, 1, "cannot listen on 127.0.0.1:" + taken.getLocalPort());
        }
    }
}
