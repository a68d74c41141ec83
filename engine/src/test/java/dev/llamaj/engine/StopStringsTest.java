package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StopStringsTest {

    @Test
    void stopStringSpanningPiecesIsNeverShown() {
        List<String> shown = new ArrayList<>();
        StopStrings s = new StopStrings(List.of("</answer>"), shown::add);
        assertThat(s.append("The result is 4")).isFalse();
        assertThat(s.append(" </ans")).isFalse();
        assertThat(String.join("", shown)).isEqualTo("The result is 4 ");
        assertThat(s.append("wer> and more")).isTrue();
        assertThat(s.text()).isEqualTo("The result is 4 ");
    }

    @Test
    void heldTextIsReleasedWhenItStopsMatching() {
        List<String> shown = new ArrayList<>();
        StopStrings s = new StopStrings(List.of("STOP", "\n\n"), shown::add);
        s.append("a ST");
        assertThat(String.join("", shown)).isEqualTo("a ");
        s.append("OOL\n");
        assertThat(String.join("", shown)).isEqualTo("a STOOL");
        s.finish();
        assertThat(s.text()).isEqualTo("a STOOL\n");
    }

    @Test
    void earliestStopWins() {
        StopStrings s = new StopStrings(List.of("cd", "b"), _ -> {});
        assertThat(s.append("abcd")).isTrue();
        assertThat(s.text()).isEqualTo("a");
    }
}
