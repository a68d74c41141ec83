package dev.llamaj.cli;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;

/// Runs the `llama` command line and is the only place that calls `System.exit`.
///
/// Output is written as UTF-8 whatever the locale says (`System.out` follows `stdout.encoding`, which is ASCII
/// under a C locale and would turn generated text into question marks).
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        System.exit(run(args, out, err));
    }

    /// Runs one command with the given streams and returns its exit code: 0 success, 1 failure, 2 usage error.
    public static int run(String[] args, PrintStream out, PrintStream err) {
        LlamaCommand root = new LlamaCommand(out, err);
        CommandLine cl = new CommandLine(root);
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        ErrorHandler handler = new ErrorHandler(err);
        cl.setExecutionExceptionHandler(handler);
        cl.setParameterExceptionHandler(handler);
        cl.setUsageHelpAutoWidth(true);
        return cl.execute(args);
    }
}
