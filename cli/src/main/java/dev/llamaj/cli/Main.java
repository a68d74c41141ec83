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
        watchLauncher(System.getProperty(LAUNCHER_PID), err);
        System.exit(run(args, out, err));
    }

    /// Set by [Launcher] in the JVM it starts: its own process id.
    static final String LAUNCHER_PID = "llamaj.launcher.pid";
    static final long LAUNCHER_POLL_MILLIS = 250;

    /// In a JVM started by the `java -jar` [Launcher]: exit when the launcher has ended. The launcher passes
    /// SIGTERM on, but nothing sees a SIGKILL, and a child left behind kept running (a server holding its port).
    /// The launcher is polled (`ProcessHandle.isAlive` also notices a reused process id) rather than waited for
    /// with `onExit`, which for a process that is not a child polls as well, less often.
    static void watchLauncher(String pid, PrintStream err) {
        if (pid == null || pid.isEmpty()) {
            return;
        }
        ProcessHandle launcher;
        try {
            launcher = ProcessHandle.of(Long.parseLong(pid)).orElse(null);
        } catch (NumberFormatException e) {
            return;
        }
        Thread.ofPlatform().name("llamaj-launcher-watch").daemon(true).start(() -> {
            while (launcher != null && launcher.isAlive()) {
                try {
                    Thread.sleep(LAUNCHER_POLL_MILLIS);
                } catch (InterruptedException e) {
                    return;
                }
            }
            err.println("llama: the launcher process (pid " + pid + ") has ended; exiting");
            // exit runs shutdown hooks; if one hangs, halt
            Thread.ofPlatform().daemon(true).start(() -> {
                try {
                    Thread.sleep(5000);
                } catch (InterruptedException ignored) {
                    // halt anyway
                }
                Runtime.getRuntime().halt(1);
            });
            System.exit(1);
        });
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
        if (args.length == 0) {
            // without this, the bare command would load the built-in model only to say that there is no prompt
            cl.usage(out);
            out.println();
            out.println("Try: llama --prompt \"Once upon a time\"   (the built-in demo model; --model FILE.gguf for a"
                    + " real one)");
            return CommandLine.ExitCode.OK;
        }
        try {
            return cl.execute(args);
        } catch (NoClassDefFoundError e) {
            // Run on the class path without --add-modules (the Launcher adds it, `java -cp` does not): the
            // engine checks at load, but some commands touch a kernel before loading a model (bench measures
            // the memory bandwidth first), and picocli lets errors through.
            if (!isVectorApiMissing(e)) {
                throw e;
            }
            err.println("llama: " + VECTOR_API_MISSING);
            return CommandLine.ExitCode.SOFTWARE;
        }
    }

    /// The engine's own words when the module is missing (`LlamaModel.load` throws them).
    static final String VECTOR_API_MISSING =
            "llamaj needs the Vector API: run java with --add-modules jdk.incubator.vector";

    private static boolean isVectorApiMissing(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && (m.startsWith("jdk/incubator/vector/") || m.startsWith("jdk.incubator.vector."))) {
                return true;
            }
        }
        return false;
    }
}
