package dev.llamaj.engine;

import java.util.List;
import java.util.function.Consumer;

/// Streams generated text while watching for stop strings, which may span several tokens.
///
/// Text that could still turn out to be the start of a stop string is held back, so a stop string is never
/// partly shown; when one completes, the text before it is passed on and the rest is dropped.
final class StopStrings {
    private final List<String> stops;
    private final Consumer<String> onText;
    private final StringBuilder held = new StringBuilder();
    private final StringBuilder text = new StringBuilder();

    StopStrings(List<String> stops, Consumer<String> onText) {
        for (String s : stops) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("a stop string is empty");
            }
        }
        this.stops = List.copyOf(stops);
        this.onText = onText;
    }

    /// Adds a piece of text; returns true when a stop string has completed (nothing after it is passed on).
    boolean append(String piece) {
        if (piece.isEmpty()) {
            return false;
        }
        held.append(piece);
        int stopAt = -1;
        for (String s : stops) {
            int i = held.indexOf(s);
            if (i >= 0 && (stopAt < 0 || i < stopAt)) {
                stopAt = i;
            }
        }
        if (stopAt >= 0) {
            emit(held.substring(0, stopAt));
            held.setLength(0);
            return true;
        }
        int keep = longestPartialStop();
        emit(held.substring(0, held.length() - keep));
        held.delete(0, held.length() - keep);
        return false;
    }

    /// Passes on whatever was held back (generation ended without completing a stop string).
    void finish() {
        emit(held.toString());
        held.setLength(0);
    }

    /// All text passed on so far.
    String text() {
        return text.toString();
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    private int longestPartialStop() {
        int best = 0;
        for (String s : stops) {
            for (int n = Math.min(s.length() - 1, held.length()); n > best; n--) {
                if (held.substring(held.length() - n).equals(s.substring(0, n))) {
                    best = n;
                    break;
                }
            }
        }
        return best;
    }

    private void emit(String piece) {
        if (!piece.isEmpty()) {
            text.append(piece);
            onText.accept(piece);
        }
    }
}
