package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.gguf.SharedData;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/// `llama serve` in a child JVM on this test's class path (so with its own, small, heap), on an ephemeral port;
/// its stderr goes to a file.
final class ChildServer implements AutoCloseable {
    final Process process;
    final Path log;
    final int port;

    private ChildServer(Process process, Path log, int port) {
        this.process = process;
        this.log = log;
        this.port = port;
    }

    /// Starts `serve` on stories260K with `jvmOptions` and `serveOptions`, and waits until it listens.
    static ChildServer start(Path dir, List<String> jvmOptions, List<String> serveOptions) throws Exception {
        String model = SharedData.require("models/stories260K.gguf").toString();
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.llamaj.cli.Main", "serve",
                "--model", model, "--port", "0", "--threads", "1"));
        command.addAll(serveOptions);
        Path log = Files.createTempFile(dir, "serve", ".err");
        ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(log.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process p = pb.start();
        Pattern serving = Pattern.compile("llama: serving .* on http://127\\.0\\.0\\.1:(\\d+)/v1 .*");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline && p.isAlive()) {
            for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
                Matcher m = serving.matcher(line);
                if (m.matches()) {
                    return new ChildServer(p, log, Integer.parseInt(m.group(1)));
                }
            }
            Thread.sleep(50);
        }
        p.destroyForcibly();
        throw new AssertionError("serve did not start; stderr: " + Files.readString(log));
    }

    /// A connection to the server. After `OutOfMemoryError`s the server may be replacing a listener whose JDK
    /// threads died (it logs "restarting the listener"); the port is closed for that moment, so a refused
    /// connection is retried for a few seconds before it counts.
    Socket connect() throws IOException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (true) {
            try {
                return new Socket("127.0.0.1", port);
            } catch (java.net.ConnectException e) {
                if (System.nanoTime() > deadline || !process.isAlive()) {
                    throw new java.net.ConnectException(e.getMessage() + " (server alive: " + process.isAlive()
                            + "; log: " + log() + ")");
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    String log() throws IOException {
        return Files.readString(log, StandardCharsets.UTF_8);
    }

    /// Sends a request's first line and part of a header, then nothing; returns the seconds until the server
    /// closes the connection, or -1 if it has not after `waitSeconds`.
    double secondsUntilASlowClientIsCutOff(int waitSeconds) throws IOException {
        try (Socket s = connect()) {
            s.setSoTimeout(waitSeconds * 1000);
            OutputStream out = s.getOutputStream();
            out.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            long start = System.nanoTime();
            InputStream in = s.getInputStream();
            try {
                while (in.read() >= 0) {
                    // an answer would do too, but the server has nothing to answer yet
                }
            } catch (SocketTimeoutException e) {
                return -1;
            } catch (SocketException e) {
                // reset: closed as well
            }
            return (System.nanoTime() - start) / 1e9;
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(5, TimeUnit.SECONDS);
        }
    }
}
