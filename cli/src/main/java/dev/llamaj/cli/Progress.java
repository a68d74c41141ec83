package dev.llamaj.cli;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/// Progress of a long run on stderr: `done / total`, rate and ETA.
///
/// On a terminal it is one bar redrawn in place (`\r`), at most every [#BAR_INTERVAL_NANOS]; otherwise (a log
/// file, CI) it is a plain line every [#LINE_INTERVAL_NANOS] and one at the end, so logs stay readable.
/// [#println] prints other output (a table row, a warning) without tearing the bar. Thread-safe.
///
/// ```
/// batch [##########..........]  20/40  50%  1.3 lines/s  41.0 tokens/s  ETA 0:15
/// llama: batch 20/40 (50%), 1.3 lines/s, 41.0 tokens/s, ETA 0:15
/// ```
final class Progress {
    static final long BAR_INTERVAL_NANOS = 100_000_000L;
    static final long LINE_INTERVAL_NANOS = 10_000_000_000L;
    private static final int BAR_WIDTH = 24;

    /// How progress is shown: `auto` picks `bar` on a terminal and `lines` otherwise.
    enum Mode { AUTO, BAR, LINES, OFF }

    /// Reads `--progress auto|bar|lines|off` (any case); anything else is a usage error.
    static final class ModeConverter implements picocli.CommandLine.ITypeConverter<Mode> {
        @Override
        public Mode convert(String value) {
            for (Mode m : Mode.values()) {
                if (m.name().equalsIgnoreCase(value)) {
                    return m;
                }
            }
            throw new picocli.CommandLine.TypeConversionException(
                    "expected auto, bar, lines or off, got '" + value + "'");
        }
    }

    private final PrintStream err;
    private final String label;
    private final String unit;
    private final long total;
    private final Mode mode;
    private final long lineInterval;
    private final LongSupplier clock;
    private final long start;
    private long done;
    private long tokens;
    private long lastDraw = Long.MIN_VALUE;
    private int drawnWidth;
    private long lineDone = -1;
    private boolean finished;

    /// @param label what is running (`batch`, `perplexity`)
    /// @param unit  what is counted, plural (`lines`, `chunks`)
    /// @param total how many there are to do
    Progress(PrintStream err, String label, String unit, long total, Mode mode) {
        this(err, label, unit, total, mode, LINE_INTERVAL_NANOS, System::nanoTime);
    }

    Progress(PrintStream err, String label, String unit, long total, Mode mode, long lineIntervalNanos,
             LongSupplier clock) {
        this.err = err;
        this.label = label;
        this.unit = unit;
        this.total = total;
        this.mode = mode == Mode.AUTO ? (isTerminal() ? Mode.BAR : Mode.LINES) : mode;
        this.lineInterval = lineIntervalNanos;
        this.clock = clock;
        this.start = clock.getAsLong();
    }

    /// Whether the process runs on a terminal (stdin and stdout both attached to one; Java cannot ask about
    /// stderr alone) and `TERM` is not `dumb`.
    static boolean isTerminal() {
        java.io.Console console = System.console();
        return console != null && console.isTerminal() && !"dumb".equals(System.getenv("TERM"));
    }

    Mode mode() {
        return mode;
    }

    /// Records `n` more units done and `generatedTokens` more tokens, and redraws if it is time.
    synchronized void advance(long n, long generatedTokens) {
        done += n;
        tokens += generatedTokens;
        draw(false);
    }

    /// Draws the bar now, before the first unit is done (plain lines wait for their interval).
    synchronized void show() {
        if (mode == Mode.BAR) {
            draw(true);
        }
    }

    /// Prints `line` on `stream` (stdout or stderr) without tearing the bar.
    synchronized void println(PrintStream stream, String line) {
        clearBar();
        stream.println(line);
        stream.flush();
        if (mode == Mode.BAR && !finished) {
            draw(true);
        }
    }

    /// Draws the final state and leaves the cursor on a new line.
    synchronized void finish() {
        if (finished) {
            return;
        }
        if (mode == Mode.BAR) {
            draw(true);
            err.println();
            err.flush();
            drawnWidth = 0;
        } else if (mode == Mode.LINES && lineDone != done) {
            draw(true);
        }
        finished = true;
    }

    /// The status text: counts, percentage, rate, tokens/s and ETA.
    synchronized String status() {
        long now = clock.getAsLong();
        double seconds = (now - start) / 1e9;
        StringBuilder sb = new StringBuilder();
        sb.append(done).append('/').append(total);
        if (total > 0) {
            sb.append(String.format(Locale.ROOT, " (%d%%)", done * 100 / total));
        }
        if (seconds > 0 && done > 0) {
            double rate = done / seconds;
            sb.append(String.format(Locale.ROOT, ", %s %s/s", rate(rate), unit));
            if (tokens > 0) {
                sb.append(String.format(Locale.ROOT, ", %.1f tokens/s", tokens / seconds));
            }
            if (done < total) {
                sb.append(", ETA ").append(duration((total - done) / rate));
            } else {
                sb.append(", took ").append(duration(seconds));
            }
        }
        return sb.toString();
    }

    private static String rate(double r) {
        return r >= 10 ? String.format(Locale.ROOT, "%.0f", r) : r >= 0.1
                ? String.format(Locale.ROOT, "%.2f", r) : String.format(Locale.ROOT, "%.3f", r);
    }

    /// `h:mm:ss` or `m:ss`.
    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        long h = s / 3600;
        long m = (s % 3600) / 60;
        return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", m, s % 60);
    }

    private void draw(boolean force) {
        if (mode == Mode.OFF || finished) {
            return;
        }
        long now = clock.getAsLong();
        long interval = mode == Mode.BAR ? BAR_INTERVAL_NANOS : lineInterval;
        if (!force && lastDraw != Long.MIN_VALUE && now - lastDraw < interval) {
            return;
        }
        if (!force && mode == Mode.LINES && lastDraw == Long.MIN_VALUE && now - start < interval) {
            return; // the first periodic line comes after one interval, not at once
        }
        lastDraw = now;
        if (mode == Mode.LINES) {
            lineDone = done;
            err.println("llama: " + label + " " + status());
            err.flush();
            return;
        }
        int filled = total > 0 ? (int) Math.min(BAR_WIDTH, done * BAR_WIDTH / total) : 0;
        String line = label + " [" + "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled) + "] " + status();
        int pad = Math.max(0, drawnWidth - line.length());
        err.print("\r" + line + " ".repeat(pad));
        err.flush();
        drawnWidth = line.length();
    }

    private void clearBar() {
        if (mode == Mode.BAR && drawnWidth > 0) {
            err.print("\r" + " ".repeat(drawnWidth) + "\r");
            err.flush();
            drawnWidth = 0;
        }
    }
}
