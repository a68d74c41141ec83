package dev.llamaj.template;

import java.util.BitSet;
import java.util.function.UnaryOperator;

/// A Python `str` some of whose characters came from the request (a message's content or role, a tool's
/// arguments...) rather than from the template: the provenance that keeps a conversation from injecting control
/// tokens. The prompt is tokenized with control-token text parsed only where the template wrote it, so every
/// request character must stay marked through whatever the template does with it: concatenation, `~`, slicing,
/// `trim`, `split`, `replace`, case changes, `format`, `join`, `tojson`... Each of those builds its result with
/// the marks of the characters it came from ([Builder], [#sub]).
///
/// Strings without a marked character stay plain [String]s (the template's own text, and everything when nothing
/// is marked), so a `Marked` always has at least one marked character. It is not a `String`, on purpose: code
/// that does not know about marks fails on it (a wrong type, or [#toString] throwing) instead of silently turning
/// request text into template text, and the render is refused. Where the template would let the request edit its
/// own text (request text as a `split` separator, a `replace` pattern, a format string), the render is refused
/// too ([#refuse]): the result's provenance is not something to guess.
///
/// Equal to a [String] or `Marked` of the same text, with the same hash, so it works as a dict key.
final class Marked {
    final String text;
    /// Which characters (UTF-16 units) came from the request.
    private final BitSet marks;

    private Marked(String text, BitSet marks) {
        this.text = text;
        this.marks = marks;
    }

    /// `text` as request text: every character marked (the empty string has nothing to mark).
    static Object request(String text) {
        if (text.isEmpty()) {
            return text;
        }
        BitSet all = new BitSet(text.length());
        all.set(0, text.length());
        return new Marked(text, all);
    }

    /// A lookup key with the text of `s`: finds a `Marked` key of a dict by its text.
    static Object probe(String s) {
        return new Marked(s, new BitSet());
    }

    static boolean isStr(Object v) {
        return v instanceof String || v instanceof Marked;
    }

    /// The characters of a string, marks dropped: for reading (comparisons, lengths, tests), never for output.
    static String plain(Object s) {
        return s instanceof Marked m ? m.text : (String) s;
    }

    static boolean anyMarked(Object s) {
        return s instanceof Marked;
    }

    boolean marked(int i) {
        return marks.get(i);
    }

    int length() {
        return text.length();
    }

    /// Whether every character is marked (request text untouched by template text).
    boolean allMarked() {
        return marks.nextClearBit(0) >= text.length();
    }

    /// `s.substring(from, to)` keeping its marks.
    static Object sub(Object s, int from, int to) {
        if (!(s instanceof Marked m)) {
            return ((String) s).substring(from, to);
        }
        return new Builder().append(m, from, to).build();
    }

    /// Concatenation keeping marks.
    static Object concat(Object a, Object b) {
        if (a instanceof String x && b instanceof String y) {
            return x + y;
        }
        return new Builder().appendText(a).appendText(b).build();
    }

    /// A transformation of the whole text that maps each character to one character (case changes): the marks
    /// stay where they were. If the length changes (a few characters case-map to two), the marks can still be kept
    /// when they were uniform; otherwise the render is refused.
    static Object map(Object s, UnaryOperator<String> f) {
        String out = f.apply(plain(s));
        if (!(s instanceof Marked m)) {
            return out;
        }
        if (out.length() == m.text.length()) {
            return new Marked(out, (BitSet) m.marks.clone());
        }
        if (m.allMarked()) {
            return request(out);
        }
        throw refuse("a case change of a string mixing request text and template text");
    }

    /// The ranges of marked characters, flattened into `[start, end)` pairs.
    int[] spans() {
        int[] out = new int[2 * marks.cardinality()];
        int n = 0;
        for (int start = marks.nextSetBit(0); start >= 0; ) {
            int end = marks.nextClearBit(start);
            out[n++] = start;
            out[n++] = end;
            start = marks.nextSetBit(end);
        }
        return java.util.Arrays.copyOf(out, n);
    }

    /// The failure of a render whose provenance cannot be kept.
    static Py.Failure refuse(String what) {
        return Py.fail("refused: the template uses " + what + ", so request text could not be kept apart from the"
                + " template's own text (which may hold control tokens)");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Marked m ? text.equals(m.text) : text.equals(o);
    }

    @Override
    public int hashCode() {
        return text.hashCode();
    }

    /// Throws: a `Marked` turned into a plain `String` would lose its marks.
    @Override
    public String toString() {
        throw new IllegalStateException("request text used as plain text");
    }

    /// Builds a string from pieces, each character keeping the mark it had (or was given).
    static final class Builder {
        private final StringBuilder sb = new StringBuilder();
        private BitSet marks;

        int length() {
            return sb.length();
        }

        /// Appends template text.
        Builder append(String s) {
            sb.append(s);
            return this;
        }

        /// Appends a `String` (unmarked) or a `Marked` (with its marks).
        Builder appendText(Object s) {
            if (s instanceof Marked m) {
                return append(m, 0, m.text.length());
            }
            sb.append((String) s);
            return this;
        }

        Builder append(char c, boolean marked) {
            if (marked) {
                mark(sb.length(), sb.length() + 1);
            }
            sb.append(c);
            return this;
        }

        /// Appends `text`, all of it marked or not.
        Builder append(String text, boolean marked) {
            if (marked) {
                mark(sb.length(), sb.length() + text.length());
            }
            sb.append(text);
            return this;
        }

        /// Appends `s[from, to)` with its marks.
        Builder append(Object s, int from, int to) {
            if (s instanceof Marked m) {
                int at = sb.length();
                for (int i = m.marks.nextSetBit(from); i >= 0 && i < to; ) {
                    int end = Math.min(to, m.marks.nextClearBit(i));
                    mark(at + i - from, at + end - from);
                    i = m.marks.nextSetBit(end);
                }
                sb.append(m.text, from, to);
            } else {
                sb.append((String) s, from, to);
            }
            return this;
        }

        private void mark(int from, int to) {
            if (from < to) {
                if (marks == null) {
                    marks = new BitSet();
                }
                marks.set(from, to);
            }
        }

        /// A `String` if nothing is marked, else a `Marked`.
        Object build() {
            String text = sb.toString();
            return marks == null ? text : new Marked(text, (BitSet) marks.clone());
        }
    }
}
