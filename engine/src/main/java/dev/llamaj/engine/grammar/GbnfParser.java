package dev.llamaj.engine.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/// Reads GBNF, llama.cpp's grammar format, into a [RuleSet].
///
/// ```
/// root   ::= answer ws ("." | "!")?      # a rule: a name, ::=, alternatives separated by |
/// answer ::= "yes" | "no" | [0-9]{1,3}  # literals, character classes, repetitions
/// ws     ::= [ \t\n]*
/// ```
///
/// A rule ends at the end of its line, except inside parentheses and right after `::=` or `|`, where newlines
/// are spaces. `#` starts a comment that runs to the end of the line. Literals (`"..."`) and classes (`[...]`,
/// `[^...]` negated, with ranges `a-z`) take the escapes `\n \r \t \\ \" \[ \] \-`, `\x` with two hexadecimal
/// digits, backslash-u with four and backslash-U with eight; `.` is
/// any character. Postfix `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}` and `{,n}` repeat the item before them (a
/// literal, a class, a rule name or a group). Everything is in Unicode code points.
///
/// Errors are [GrammarException]s whose message starts with the `line:column` of the problem.
final class GbnfParser {
    private final int[] text; // code points
    private int pos;
    private int depth;
    private final RuleSet rules = new RuleSet();
    /// Deepest nesting of parentheses: the parser recurses into groups, and a hostile grammar must not be able to
    /// overflow the stack.
    static final int MAX_NESTING = 200;

    private GbnfParser(String source) {
        this.text = source.codePoints().toArray();
    }

    static RuleSet parse(String source) {
        GbnfParser parser = new GbnfParser(source);
        parser.grammar();
        return parser.rules;
    }

    private void grammar() {
        skipSpace(true);
        while (pos < text.length) {
            rule();
            skipSpace(true);
        }
        rules.finish(this::location);
    }

    private void rule() {
        int start = pos;
        String name = name();
        if (name.isEmpty()) {
            throw error(pos, "expected a rule name, found " + describe(pos));
        }
        skipSpace(false);
        if (!lookingAt("::=")) {
            throw error(pos, "expected '::=' after the rule name '" + name + "', found " + describe(pos));
        }
        pos += 3;
        skipSpace(true);
        int rule = rules.define(name, start, this::location);
        rules.setAlternatives(rule, alternatives(false, name));
        skipSpace(false);
        if (pos < text.length && text[pos] != '\n' && text[pos] != '\r') {
            throw error(pos, "expected the end of the line after rule '" + name + "', found " + describe(pos));
        }
    }

    /// `sequence ('|' sequence)*`; inside parentheses (`nested`) newlines are spaces.
    private List<int[]> alternatives(boolean nested, String owner) {
        List<int[]> alternatives = new ArrayList<>();
        alternatives.add(sequence(nested, owner));
        while (pos < text.length && text[pos] == '|') {
            pos++;
            skipSpace(true);
            alternatives.add(sequence(nested, owner));
        }
        return alternatives;
    }

    private int[] sequence(boolean nested, String owner) {
        IntList symbols = new IntList();
        while (pos < text.length) {
            int c = text[pos];
            if (c == '|' || c == ')' || c == '\n' || c == '\r') {
                break;
            }
            int itemStart = symbols.size();
            item(symbols, nested, owner);
            skipSpace(nested);
            while (pos < text.length && isPostfix(text[pos])) {
                int at = pos;
                int min, max;
                switch (text[pos++]) {
                    case '*' -> { min = 0; max = -1; }
                    case '+' -> { min = 1; max = -1; }
                    case '?' -> { min = 0; max = 1; }
                    default -> {
                        skipSpace(nested);
                        min = pos < text.length && text[pos] == ',' ? 0 : integer();
                        skipSpace(nested);
                        if (pos < text.length && text[pos] == ',') {
                            pos++;
                            skipSpace(nested);
                            max = pos < text.length && text[pos] == '}' ? -1 : integer();
                        } else {
                            max = min;
                        }
                        skipSpace(nested);
                        expect('}', "to close the repetition");
                        if (max >= 0 && max < min) {
                            throw error(at, "repetition {" + min + "," + max + "} has its maximum below its minimum");
                        }
                    }
                }
                int item = symbols.size() - itemStart == 1 ? symbols.get(itemStart)
                        : rules.group(owner, List.of(symbols.slice(itemStart, symbols.size())));
                symbols.truncate(itemStart);
                rules.repeat(owner, item, min, max, symbols, at, this::location);
                skipSpace(nested);
            }
        }
        return symbols.toArray();
    }

    private static boolean isPostfix(int c) {
        return c == '*' || c == '+' || c == '?' || c == '{';
    }

    /// One item, its symbols appended to `out`: a literal adds one class per character.
    private void item(IntList out, boolean nested, String owner) {
        int c = text[pos];
        if (c == '"') {
            int open = pos++;
            while (true) {
                if (pos >= text.length || text[pos] == '\n') {
                    throw error(open, "unterminated literal (missing closing '\"')");
                }
                if (text[pos] == '"') {
                    pos++;
                    return;
                }
                int ch = character();
                out.add(rules.charClass(new int[] {ch, ch}));
            }
        } else if (c == '[') {
            out.add(rules.charClass(charClass()));
        } else if (c == '.') {
            pos++;
            out.add(rules.charClass(new int[] {0, Character.MAX_CODE_POINT}));
        } else if (c == '(') {
            int open = pos++;
            if (++depth > MAX_NESTING) {
                throw error(open, "groups nested more than " + MAX_NESTING + " deep");
            }
            skipSpace(true);
            List<int[]> alternatives = alternatives(true, owner);
            depth--;
            skipSpace(true);
            if (pos >= text.length || text[pos] != ')') {
                throw error(pos, "expected ')' to close the group opened at " + location(open) + ", found "
                        + describe(pos));
            }
            pos++;
            if (alternatives.size() == 1) {
                out.addAll(alternatives.getFirst()); // a plain sequence in parentheses needs no rule of its own
            } else {
                out.add(rules.group(owner, alternatives));
            }
        } else if (isNameChar(c)) {
            int at = pos;
            out.add(rules.reference(name(), at));
        } else {
            throw error(pos, "unexpected " + describe(pos) + (nested ? "" : " in rule '" + owner + "'"));
        }
    }

    /// `[...]` → sorted, merged ranges (complemented for `[^...]`).
    private int[] charClass() {
        int open = pos++;
        boolean negated = pos < text.length && text[pos] == '^';
        if (negated) {
            pos++;
        }
        IntList ranges = new IntList();
        while (true) {
            if (pos >= text.length || text[pos] == '\n') {
                throw error(open, "unterminated character class (missing ']')");
            }
            if (text[pos] == ']') {
                pos++;
                break;
            }
            int lo = character();
            int hi = lo;
            if (pos + 1 < text.length && text[pos] == '-' && text[pos + 1] != ']') {
                int dash = pos++;
                hi = character();
                if (hi < lo) {
                    throw error(dash, "character range is backwards ("
                            + Character.getName(lo) + " after " + Character.getName(hi) + ")");
                }
            }
            ranges.add(lo);
            ranges.add(hi);
        }
        int[] merged = Ranges.normalize(ranges.toArray());
        return negated ? Ranges.complement(merged) : merged;
    }

    /// One character of a literal or class, with its escape resolved.
    private int character() {
        int c = text[pos++];
        if (c != '\\') {
            return c;
        }
        if (pos >= text.length) {
            throw error(pos - 1, "a '\\' at the end of the grammar escapes nothing");
        }
        int e = text[pos++];
        return switch (e) {
            case 'n' -> '\n';
            case 'r' -> '\r';
            case 't' -> '\t';
            case '\\', '"', '[', ']', '-', '^', '\'', '/', '.', '|', '(', ')', '*', '+', '?', '{', '}' -> e;
            case 'x' -> hex(2);
            case 'u' -> hex(4);
            case 'U' -> hex(8);
            default -> throw error(pos - 2, "unknown escape '\\" + Character.toString(e)
                    + "' (known: \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\xHH \\uHHHH \\UHHHHHHHH)");
        };
    }

    private int hex(int digits) {
        int start = pos - 2;
        long value = 0;
        for (int i = 0; i < digits; i++) {
            int d = pos < text.length ? Character.digit(text[pos], 16) : -1;
            if (d < 0) {
                throw error(start, "escape needs " + digits + " hexadecimal digits");
            }
            value = value << 4 | d;
            pos++;
        }
        if (value > Character.MAX_CODE_POINT) {
            throw error(start, "escape names U+" + Long.toHexString(value).toUpperCase()
                    + ", beyond the last Unicode code point U+10FFFF");
        }
        return (int) value;
    }

    private int integer() {
        int start = pos;
        long value = 0;
        while (pos < text.length && text[pos] >= '0' && text[pos] <= '9') {
            value = value * 10 + text[pos++] - '0';
            if (value > RuleSet.MAX_REPEAT) {
                throw error(start, "repetition count is larger than " + RuleSet.MAX_REPEAT);
            }
        }
        if (pos == start) {
            throw error(pos, "expected a number in the repetition, found " + describe(pos));
        }
        return (int) value;
    }

    private String name() {
        int start = pos;
        while (pos < text.length && isNameChar(text[pos])) {
            pos++;
        }
        return new String(text, start, pos - start);
    }

    private static boolean isNameChar(int c) {
        return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_';
    }

    /// Skips blanks and comments, and newlines when `newlines`.
    private void skipSpace(boolean newlines) {
        while (pos < text.length) {
            int c = text[pos];
            if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
                pos++;
            } else if (c == '#') {
                while (pos < text.length && text[pos] != '\n' && text[pos] != '\r') {
                    pos++;
                }
            } else {
                return;
            }
        }
    }

    private boolean lookingAt(String s) {
        if (pos + s.length() > text.length) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (text[pos + i] != s.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private void expect(char c, String why) {
        if (pos >= text.length || text[pos] != c) {
            throw error(pos, "expected '" + c + "' " + why + ", found " + describe(pos));
        }
        pos++;
    }

    private String describe(int at) {
        if (at >= text.length) {
            return "the end of the grammar";
        }
        int c = text[at];
        return switch (c) {
            case '\n', '\r' -> "the end of the line";
            default -> c < 0x20 || c == 0x7F ? String.format("U+%04X", c) : "'" + Character.toString(c) + "'";
        };
    }

    /// `line:column` (1-based, columns in code points) of a code point offset.
    private String location(int at) {
        int line = 1, column = 1;
        for (int i = 0; i < at && i < text.length; i++) {
            if (text[i] == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        return line + ":" + column;
    }

    private GrammarException error(int at, String message) {
        return new GrammarException(location(at) + ": " + message);
    }

    /// A growable `int` list, for symbol sequences.
    static final class IntList {
        private int[] a = new int[8];
        private int n;

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, 2 * n);
            }
            a[n++] = v;
        }

        void addAll(int[] values) {
            for (int v : values) {
                add(v);
            }
        }

        int get(int i) {
            return a[i];
        }

        int size() {
            return n;
        }

        void truncate(int size) {
            n = size;
        }

        int[] slice(int from, int to) {
            return Arrays.copyOfRange(a, from, to);
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
