package dev.llamaj.cli;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.ContextLengthException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;

/// Turns exceptions into one line on stderr and an exit code.
///
/// User errors (a bad file, a bad value, a prompt too long) print `llama: <message>` and exit 1; usage errors
/// (an unknown option, a missing value) print picocli's message and a hint and exit 2; anything else is a bug
/// and says so. Stack traces appear only with `--verbose`.
final class ErrorHandler implements CommandLine.IExecutionExceptionHandler, CommandLine.IParameterExceptionHandler {
    private final PrintStream err;

    ErrorHandler(PrintStream err) {
        this.err = err;
    }

    @Override
    public int handleExecutionException(Exception e, CommandLine cl, CommandLine.ParseResult parseResult) {
        if (e instanceof CommandLine.ParameterException pe) {
            return handleParseException(pe, new String[0]);
        }
        boolean verbose = parseResult != null && isVerbose(parseResult);
        Throwable cause = e instanceof UncheckedIOException u ? u.getCause() : e;
        String message = switch (cause) {
            case NoSuchFileException n -> n.getFile() + ": no such file";
            case AccessDeniedException a -> a.getFile() + ": permission denied";
            case IOException io -> io.getMessage();
            case IllegalArgumentException iae -> describe(iae);
            case IllegalStateException ise -> ise.getMessage();
            default -> "internal error: " + cause + (verbose ? "" : " (run with --verbose for details)");
        };
        err.println("llama: " + message);
        if (verbose) {
            cause.printStackTrace(err);
        }
        return CommandLine.ExitCode.SOFTWARE;
    }

    /// The message of a library exception, with the command-line option that fixes it where there is one.
    static String describe(Throwable e) {
        if (e instanceof ContextLengthException c) {
            return c.getMessage() + (c.remedy() == ContextLengthException.Remedy.LONGER
                    ? " (raise --context)" : " (lower --context)");
        }
        if (e instanceof ChatFormat.NoTemplateException) {
            return e.getMessage() + " (give one with --chat-template FILE)";
        }
        return e.getMessage();
    }

    @Override
    public int handleParseException(CommandLine.ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        err.println("llama: " + e.getMessage());
        CommandLine.UnmatchedArgumentException.printSuggestions(e, err);
        err.println("Try '" + cl.getCommandSpec().qualifiedName() + " --help' for more information.");
        return CommandLine.ExitCode.USAGE;
    }

    private static boolean isVerbose(CommandLine.ParseResult result) {
        for (CommandLine.ParseResult r = result; r != null; r = r.subcommand()) {
            if (r.hasMatchedOption("--verbose")) {
                return true;
            }
        }
        return false;
    }
}
