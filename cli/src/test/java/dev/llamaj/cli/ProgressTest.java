package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressTest {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream err = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    private long now;

    private String err() {
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void plainLinesArePeriodic() {
        Progress p = new Progress(err, "batch", "lines", 10, Progress.Mode.LINES, 10_000_000_000L, () -> now);
        now = 1_000_000_000L;
        p.advance(1, 20);
        assertThat(err()).isEmpty(); // the first line comes after one interval
        now = 10_000_000_000L;
        p.advance(1, 20);
        assertThat(err()).isEqualTo("llama: batch 2/10 (20%), 0.20 lines/s, 4.0 tokens/s, ETA 0:40\n");
        now = 15_000_000_000L;
        p.advance(3, 0);
        assertThat(err().lines().count()).isEqualTo(1);
        now = 40_000_000_000L;
        p.advance(5, 0);
        p.finish();
        assertThat(err().lines().count()).isEqualTo(2);
        assertThat(err().lines().toList().getLast()).isEqualTo("llama: batch 10/10 (100%), 0.25 lines/s, 1.0 tokens/s, took 0:40");
    }

    @Test
    void theBarIsRedrawnInPlaceAndOtherOutputDoesNotTearIt() {
        Progress p = new Progress(err, "perplexity", "chunks", 4, Progress.Mode.BAR, 0, () -> now);
        p.show();
        assertThat(err()).isEqualTo("\rperplexity [........................] 0/4 (0%)");
        now = 2_000_000_000L;
        p.advance(1, 0);
        assertThat(err()).endsWith("\rperplexity [######..................] 1/4 (25%), 0.50 chunks/s, ETA 0:06");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        bytes.reset();
        p.println(new PrintStream(out, true, StandardCharsets.UTF_8), "[1] 4.2265");
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("[1] 4.2265" + System.lineSeparator());
        String bar = "perplexity [######..................] 1/4 (25%), 0.50 chunks/s, ETA 0:06";
        assertThat(err()).isEqualTo("\r" + " ".repeat(bar.length()) + "\r\r" + bar);
        now = 8_000_000_000L;
        p.advance(3, 0);
        p.finish();
        assertThat(err()).endsWith("4/4 (100%), 0.50 chunks/s, took 0:08" + System.lineSeparator());
    }

    @Test
    void offPrintsNothing() {
        Progress p = new Progress(err, "eval", "items", 2, Progress.Mode.OFF, 0, () -> now);
        p.show();
        p.advance(2, 5);
        p.finish();
        assertThat(err()).isEmpty();
    }

    @Test
    void durations() {
        assertThat(Progress.duration(0)).isEqualTo("0:00");
        assertThat(Progress.duration(75.4)).isEqualTo("1:15");
        assertThat(Progress.duration(3 * 3600 + 62)).isEqualTo("3:01:02");
        assertThat(Progress.duration(Double.POSITIVE_INFINITY)).isEqualTo("?");
    }
}
