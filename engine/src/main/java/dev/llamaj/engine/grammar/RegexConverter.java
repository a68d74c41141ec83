package dev.llamaj.engine.grammar;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/// Translates a JSON Schema `pattern` (an ECMAScript regular expression) into GBNF for the *content* of a JSON
/// string: the characters the regex matches, written as JSON writes them (a `"` as `\"`, a newline as `\n`).
///
/// The common subset is supported: literals, `.`, classes (`[a-z]`, `[^...]`, `\d \w \s` and their negations),
/// groups (`(...)`, `(?:...)`, `(?<name>...)`), alternation, and the quantifiers `* + ? {n} {n,} {n,m}` (lazy or
/// not: the language is the same). Like JSON Schema, a pattern matches anywhere in the string unless anchored:
/// `^` at the start or `$` at the end of a top-level alternative; other text may surround an unanchored side.
/// Backreferences, lookarounds, word boundaries and Unicode property escapes have no grammar and are refused.
final class RegexConverter {
    private static final int[] LINE_TERMINATORS = {'\n', '\n', '\r', '\r', 0x2028, 0x2029};
    private static final int[] DIGIT = {'0', '9'};
    private static final int[] WORD = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};
    private static final int[] SPACE = Ranges.normalize(new int[] {'\t', '\r', ' ', ' ', 0xA0, 0xA0, 0x1680, 0x1680,
            0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF});

    private final int[] p;
    private final String pattern;
    private final String pointer;
    private final Function<int[], String> characters;
    private int pos;
    private int depth;

    private RegexConverter(String pattern, String pointer, Function<int[], String> characters) {
        this.pattern = pattern;
        this.p = pattern.codePoints().toArray();
        this.pointer = pointer;
        this.characters = characters;
    }

    /// GBNF for the JSON string content matching `pattern`; `characters` turns a set of code points into a GBNF
    /// expression of their JSON spellings (see [JsonSchemaConverter]), `anyChar` is the rule of any string
    /// character.
    static String convert(String pattern, String pointer, Function<int[], String> characters, String anyChar) {
        RegexConverter converter = new RegexConverter(pattern, pointer, characters);
        List<String> alternatives = new ArrayList<>();
        do {
            boolean start = converter.pos < converter.p.length && converter.p[converter.pos] == '^';
            if (start) {
                converter.pos++;
            }
            StringBuilder sequence = new StringBuilder(start ? "" : anyChar + "* ");
            boolean end = converter.sequence(sequence, true);
            if (!end) {
                sequence.append(' ').append(anyChar).append('*');
            }
            alternatives.add(sequence.toString().strip());
        } while (converter.pos < converter.p.length && converter.p[converter.pos++] == '|');
        if (converter.pos < converter.p.length) {
            throw converter.error("unmatched ')'");
        }
        return alternatives.size() == 1 ? "( " + alternatives.getFirst() + " )"
                : "( " + String.join(" | ", alternatives) + " )";
    }

    /// Appends one alternative's items; stops before `|`, `)` or the end. Returns whether it ended with a `$`
    /// (allowed only at the top level, at the end of an alternative).
    private boolean sequence(StringBuilder out, boolean top) {
        while (pos < p.length && p[pos] != '|' && p[pos] != ')') {
            if (p[pos] == '$') {
                pos++;
                if (top && (pos == p.length || p[pos] == '|')) {
                    return true;
                }
                throw error("'$' is supported only at the end of the pattern or of a top-level alternative");
            }
            if (p[pos] == '^') {
                throw error("'^' is supported only at the start of the pattern or of a top-level alternative");
            }
            String atom = atom();
            atom = quantified(atom);
            out.append(out.isEmpty() || out.charAt(out.length() - 1) == ' ' ? "" : " ").append(atom);
        }
        return false;
    }

    private String atom() {
        int c = p[pos++];
        switch (c) {
            case '(' -> {
                if (++depth > GbnfParser.MAX_NESTING) {
                    throw error("groups nested more than " + GbnfParser.MAX_NESTING + " deep");
                }
                if (pos < p.length && p[pos] == '?') {
                    if (pos + 1 < p.length && p[pos + 1] == ':') {
                        pos += 2;
                    } else if (pos + 2 < p.length && p[pos + 1] == '<' && p[pos + 2] != '=' && p[pos + 2] != '!') {
                        while (pos < p.length && p[pos] != '>') {
                            pos++;
                        }
                        pos++;
                    } else {
                        throw error("lookarounds ((?=, (?!, (?<=, (?<!) are not supported");
                    }
                }
                List<String> alternatives = new ArrayList<>();
                while (true) {
                    StringBuilder sequence = new StringBuilder();
                    sequence(sequence, false);
                    alternatives.add(sequence.toString());
                    if (pos >= p.length) {
                        throw error("unterminated group (missing ')')");
                    }
                    if (p[pos++] == ')') {
                        break;
                    }
                }
                depth--;
                return "( " + String.join(" | ", alternatives) + " )";
            }
            case '[' -> {
                return characters.apply(classAtom());
            }
            case '.' -> {
                return characters.apply(Ranges.complement(Ranges.normalize(LINE_TERMINATORS)));
            }
            case '\\' -> {
                return characters.apply(escape(false));
            }
            case '*', '+', '?' -> throw error("'" + Character.toString(c) + "' has nothing to repeat");
            default -> {
                return characters.apply(new int[] {c, c});
            }
        }
    }

    private String quantified(String atom) {
        if (pos >= p.length) {
            return atom;
        }
        int c = p[pos];
        String suffix;
        if (c == '*' || c == '+' || c == '?') {
            pos++;
            suffix = Character.toString(c);
        } else if (c == '{') {
            int save = pos++;
            int min = number();
            int max = min;
            if (min >= 0 && pos < p.length && p[pos] == ',') {
                pos++;
                max = pos < p.length && p[pos] == '}' ? -1 : number();
            }
            if (min < 0 || pos >= p.length || p[pos] != '}') {
                pos = save; // not a quantifier: '{' is an ordinary character (as ECMAScript's web reading has it)
                return atom;
            }
            pos++;
            if (max >= 0 && max < min) {
                throw error("quantifier {" + min + "," + max + "} has its maximum below its minimum");
            }
            suffix = "{" + min + "," + (max < 0 ? "" : max) + "}";
        } else {
            return atom;
        }
        if (pos < p.length && p[pos] == '?') {
            pos++; // lazy: the same strings match
        }
        if (pos < p.length && (p[pos] == '*' || p[pos] == '+' || p[pos] == '{' && quantifierAhead())) {
            throw error("a quantifier cannot follow a quantifier");
        }
        return "( " + atom + " )" + suffix;
    }

    private boolean quantifierAhead() {
        int save = pos;
        pos++;
        boolean is = number() >= 0;
        pos = save;
        return is;
    }

    /// A decimal number, or -1 if there is none here.
    private int number() {
        int start = pos;
        long value = 0;
        while (pos < p.length && p[pos] >= '0' && p[pos] <= '9') {
            value = value * 10 + p[pos++] - '0';
            if (value > RuleSet.MAX_REPEAT) {
                throw error("quantifier count larger than " + RuleSet.MAX_REPEAT);
            }
        }
        return pos == start ? -1 : (int) value;
    }

    /// `[...]` after the `[`.
    private int[] classAtom() {
        boolean negated = pos < p.length && p[pos] == '^';
        if (negated) {
            pos++;
        }
        List<Integer> pairs = new ArrayList<>();
        while (true) {
            if (pos >= p.length) {
                throw error("unterminated character class (missing ']')");
            }
            if (p[pos] == ']') {
                pos++;
                break;
            }
            int[] first = classItem();
            if (first.length == 2 && first[0] == first[1] && pos + 1 < p.length && p[pos] == '-' && p[pos + 1] != ']') {
                pos++;
                int[] second = classItem();
                if (second.length != 2 || second[0] != second[1]) {
                    throw error("a class escape (\\d, \\w, \\s) cannot end a range");
                }
                if (second[0] < first[0]) {
                    throw error("character range out of order in class");
                }
                pairs.add(first[0]);
                pairs.add(second[0]);
            } else {
                for (int v : first) {
                    pairs.add(v);
                }
            }
        }
        int[] ranges = Ranges.normalize(pairs.stream().mapToInt(Integer::intValue).toArray());
        if (negated) {
            ranges = Ranges.complement(ranges);
        }
        if (ranges.length == 0) {
            throw error("the class matches no character");
        }
        return ranges;
    }

    private int[] classItem() {
        int c = p[pos++];
        return c == '\\' ? escape(true) : new int[] {c, c};
    }

    /// The code points of an escape after its backslash.
    private int[] escape(boolean inClass) {
        if (pos >= p.length) {
            throw error("'\\' at the end of the pattern");
        }
        int c = p[pos++];
        return switch (c) {
            case 'd' -> DIGIT;
            case 'D' -> Ranges.complement(DIGIT);
            case 'w' -> Ranges.normalize(WORD);
            case 'W' -> Ranges.complement(Ranges.normalize(WORD));
            case 's' -> SPACE;
            case 'S' -> Ranges.complement(SPACE);
            case 'n' -> single('\n');
            case 'r' -> single('\r');
            case 't' -> single('\t');
            case 'f' -> single('\f');
            case 'v' -> single(0x0B);
            case '0' -> {
                if (pos < p.length && p[pos] >= '0' && p[pos] <= '9') {
                    throw error("octal escapes are not supported");
                }
                yield single(0);
            }
            case 'x' -> single(hex(2));
            case 'u' -> {
                if (pos < p.length && p[pos] == '{') {
                    pos++;
                    int value = 0, digits = 0;
                    while (pos < p.length && p[pos] != '}') {
                        int d = Character.digit(p[pos++], 16);
                        if (d < 0 || ++digits > 6) {
                            throw error("bad \\u{...} escape");
                        }
                        value = value << 4 | d;
                    }
                    pos++;
                    if (value > Character.MAX_CODE_POINT) {
                        throw error("\\u{...} beyond U+10FFFF");
                    }
                    yield single(value);
                }
                int unit = hex(4);
                // a surrogate pair written as two escapes is one character
                if (unit >= 0xD800 && unit <= 0xDBFF && pos + 5 < p.length && p[pos] == '\\' && p[pos + 1] == 'u') {
                    int save = pos;
                    pos += 2;
                    int low = hex(4);
                    if (low >= 0xDC00 && low <= 0xDFFF) {
                        yield single(Character.toCodePoint((char) unit, (char) low));
                    }
                    pos = save;
                }
                yield single(unit);
            }
            case 'b' -> {
                if (inClass) {
                    yield single('\b');
                }
                throw error("word boundaries (\\b) are not supported");
            }
            case 'B' -> throw error("word boundaries (\\B) are not supported");
            case 'p', 'P' -> throw error("Unicode property escapes (\\" + Character.toString(c) + "{...}) are not "
                    + "supported");
            case 'k' -> throw error("backreferences (\\k<name>) are not supported");
            case 'c' -> throw error("control escapes (\\cX) are not supported");
            default -> {
                if (c >= '1' && c <= '9') {
                    throw error("backreferences (\\" + Character.toString(c) + ") are not supported");
                }
                if (Character.isLetterOrDigit(c)) {
                    throw error("unknown escape '\\" + Character.toString(c) + "'");
                }
                yield single(c);
            }
        };
    }

    private int hex(int digits) {
        int value = 0;
        for (int i = 0; i < digits; i++) {
            int d = pos < p.length ? Character.digit(p[pos], 16) : -1;
            if (d < 0) {
                throw error("escape needs " + digits + " hexadecimal digits");
            }
            value = value << 4 | d;
            pos++;
        }
        return value;
    }

    private static int[] single(int c) {
        return new int[] {c, c};
    }

    private GrammarException error(String message) {
        return JsonSchemaConverter.error(pointer, "pattern \"" + pattern + "\": " + message
                + " (at character " + Math.min(pos, p.length) + ")");
    }
}
