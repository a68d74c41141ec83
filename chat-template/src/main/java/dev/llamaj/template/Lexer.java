package dev.llamaj.template;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/// Splits a template into text and tag tokens, applying Jinja2's whitespace rules as Hugging Face configures them
/// (`trim_blocks=True`, `lstrip_blocks=True`, no trailing newline kept).
///
/// The rules, in the order Jinja2's lexer applies them, are where most rendering differences hide:
/// - all line endings become `\n` and one final `\n` of the template is dropped;
/// - a tag opened with `-` (`{%-`, `{{-`, `{#-`) removes all whitespace before it, newlines included;
/// - otherwise a `{%` or `{#` tag (not `{{`) opened without `+` removes the spaces and tabs before it when only
///   they separate it from the start of its line (lstrip_blocks);
/// - a tag closed with `-` (`-%}`, `-}}`, `-#}`) removes all whitespace after it;
/// - otherwise `%}` and `#}` closed without `+` remove the single newline right after them (trim_blocks); `}}`
///   never does.
///
/// Comments vanish; `{% raw %}...{% endraw %}` becomes text. Inside a tag the tokens are Jinja's: names,
/// strings with Python escapes, integers, floats and operators; a tag's closing `}}` or `%}` only counts outside
/// brackets, so `{{ {'a': {'b': 1}} }}` works.
final class Lexer {
    enum Kind { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INTEGER, FLOAT, OP, EOF }

    /// A token; `value` is the unescaped string, the `Long` or the `Double` of literals, else the text.
    record Token(Kind kind, String text, Object value, int line) {
        boolean is(Kind k, String t) {
            return kind == k && text.equals(t);
        }

        boolean isName(String t) {
            return is(Kind.NAME, t);
        }

        boolean isOp(String t) {
            return is(Kind.OP, t);
        }
    }

    private static final String[] OPERATORS = {
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};

    private final String src;
    private final int n;
    private final int[] lineStarts;
    private final List<Token> tokens = new ArrayList<>();
    private int pos;
    /// Whether the last thing consumed ended a line: lstrip_blocks then also strips text that has no newline.
    private boolean lineStarting = true;

    private Lexer(String source) {
        String s = source.replace("\r\n", "\n").replace('\r', '\n');
        if (s.endsWith("\n")) {
            s = s.substring(0, s.length() - 1);     // keep_trailing_newline=False
        }
        src = s;
        n = s.length();
        List<Integer> starts = new ArrayList<>();
        starts.add(0);
        for (int i = 0; i < n; i++) {
            if (s.charAt(i) == '\n') {
                starts.add(i + 1);
            }
        }
        lineStarts = starts.stream().mapToInt(Integer::intValue).toArray();
    }

    static List<Token> tokenize(String source) {
        Lexer lx = new Lexer(source);
        lx.run();
        return lx.tokens;
    }

    private int lineAt(int p) {
        int lo = 0;
        int hi = lineStarts.length - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (lineStarts[mid] <= p) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo + 1;
    }

    private Py.Failure error(int p, String message) {
        return Py.fail("line " + lineAt(p) + ": " + message);
    }

    private void run() {
        while (pos < n) {
            int tag = nextTag(pos);
            if (tag < 0) {
                addText(src.substring(pos), pos);
                pos = n;
                break;
            }
            char kind = src.charAt(tag + 1);
            int after = tag + 2;
            char sign = after < n && (src.charAt(after) == '-' || src.charAt(after) == '+') ? src.charAt(after) : 0;
            int rawEnd = kind == '%' ? rawBegin(after + (sign != 0 ? 1 : 0)) : -1;
            String text = src.substring(pos, tag);
            if (sign == '-') {
                text = Py.rstrip(text, null);
            } else if (sign != '+' && kind != '{') {
                text = lstripBlock(text);
            }
            addText(text, pos);
            if (rawEnd >= 0) {
                lineStarting = src.charAt(rawEnd - 1) == '\n';
                pos = rawEnd;
                raw(tag);
                continue;
            }
            pos = after + (sign != 0 ? 1 : 0);
            lineStarting = false;
            switch (kind) {
                case '#' -> comment(tag);
                case '%' -> tag(Kind.BLOCK_BEGIN, Kind.BLOCK_END, tag);
                default -> tag(Kind.VAR_BEGIN, Kind.VAR_END, tag);
            }
        }
        tokens.add(new Token(Kind.EOF, "", null, lineAt(n)));
    }

    /// The earliest `{{`, `{%` or `{#` at or after `from`, or -1.
    private int nextTag(int from) {
        for (int i = src.indexOf('{', from); i >= 0 && i + 1 < n; i = src.indexOf('{', i + 1)) {
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    /// lstrip_blocks: drop the whitespace between the last line start and the tag, if that is all there is.
    private String lstripBlock(String text) {
        int lineStart = text.lastIndexOf('\n') + 1;
        if (lineStart == 0 && !lineStarting) {
            return text;
        }
        for (int i = lineStart; i < text.length(); i++) {
            if (!Py.isSpace(text.charAt(i))) {
                return text;
            }
        }
        return text.substring(0, lineStart);
    }

    private void addText(String text, int at) {
        if (!text.isEmpty()) {
            tokens.add(new Token(Kind.TEXT, text, text, lineAt(at)));
        }
    }

    private int skipSpace(int p) {
        while (p < n && Py.isSpace(src.charAt(p))) {
            p++;
        }
        return p;
    }

    /// If `{% raw %}` (or `{%- raw -%}`...) starts at `p` (just after `{%` and its sign), where it ends; else -1.
    /// Jinja2 applies no trim_blocks after the raw opening tag.
    private int rawBegin(int p) {
        p = skipSpace(p);
        if (!src.startsWith("raw", p)) {
            return -1;
        }
        p = skipSpace(p + 3);
        if (src.startsWith("-%}", p)) {
            return skipSpace(p + 3);
        }
        return src.startsWith("%}", p) ? p + 2 : -1;
    }

    private void raw(int start) {
        for (int i = src.indexOf("{%", pos); i >= 0; i = src.indexOf("{%", i + 1)) {
            int p = i + 2;
            char sign = p < n && (src.charAt(p) == '-' || src.charAt(p) == '+') ? src.charAt(p) : 0;
            if (sign != 0) {
                p++;
            }
            p = skipSpace(p);
            if (!src.startsWith("endraw", p)) {
                continue;
            }
            p = skipSpace(p + 6);
            int end = closeBlock(p);
            if (end < 0) {
                continue;
            }
            String text = src.substring(pos, i);
            if (sign == '-') {
                text = Py.rstrip(text, null);
            } else if (sign != '+') {
                text = lstripBlock(text);
            }
            addText(text, pos);
            lineStarting = src.charAt(end - 1) == '\n';
            pos = end;
            return;
        }
        throw error(start, "missing {% endraw %} for the {% raw %} block");
    }

    /// Where a block closing (`+%}`, `-%}` and following whitespace, or `%}` and one newline) at `p` ends, or -1.
    private int closeBlock(int p) {
        if (src.startsWith("+%}", p)) {
            return p + 3;
        }
        if (src.startsWith("-%}", p)) {
            return skipSpace(p + 3);
        }
        if (src.startsWith("%}", p)) {
            return p + 2 < n && src.charAt(p + 2) == '\n' ? p + 3 : p + 2;
        }
        return -1;
    }

    private void comment(int start) {
        for (int i = src.indexOf("#}", pos); i >= 0; i = src.indexOf("#}", i + 1)) {
            int end;
            if (i > pos && src.charAt(i - 1) == '-') {
                end = skipSpace(i + 2);
            } else if (i > pos && src.charAt(i - 1) == '+') {
                end = i + 2;
            } else {
                end = i + 2 < n && src.charAt(i + 2) == '\n' ? i + 3 : i + 2;
            }
            lineStarting = src.charAt(end - 1) == '\n';
            pos = end;
            return;
        }
        throw error(start, "missing end of comment tag");
    }

    private void tag(Kind begin, Kind end, int start) {
        tokens.add(new Token(begin, begin == Kind.BLOCK_BEGIN ? "{%" : "{{", null, lineAt(start)));
        Deque<Character> brackets = new ArrayDeque<>();
        while (true) {
            pos = skipSpace(pos);
            if (brackets.isEmpty()) {
                int close = end == Kind.BLOCK_END ? closeBlock(pos)
                        : src.startsWith("-}}", pos) ? skipSpace(pos + 3)
                        : src.startsWith("}}", pos) ? pos + 2 : -1;
                if (close >= 0) {
                    tokens.add(new Token(end, end == Kind.BLOCK_END ? "%}" : "}}", null, lineAt(pos)));
                    lineStarting = src.charAt(close - 1) == '\n';
                    pos = close;
                    return;
                }
            }
            if (pos >= n) {
                return;     // the parser reports the unclosed tag
            }
            char c = src.charAt(pos);
            int line = lineAt(pos);
            if (c >= '0' && c <= '9') {
                number(line);
            } else if (Character.isLetter(c) || c == '_') {
                int s = pos;
                while (pos < n && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) {
                    pos++;
                }
                String name = src.substring(s, pos);
                tokens.add(new Token(Kind.NAME, name, name, line));
            } else if (c == '\'' || c == '"') {
                string(c, line);
            } else {
                String op = null;
                for (String o : OPERATORS) {
                    if (src.startsWith(o, pos)) {
                        op = o;
                        break;
                    }
                }
                if (op == null) {
                    throw error(pos, "unexpected character '" + c + "'");
                }
                switch (op) {
                    case "(" -> brackets.push(')');
                    case "[" -> brackets.push(']');
                    case "{" -> brackets.push('}');
                    case ")", "]", "}" -> {
                        if (brackets.isEmpty()) {
                            throw error(pos, "unexpected '" + op + "'");
                        }
                        char expected = brackets.pop();
                        if (expected != op.charAt(0)) {
                            throw error(pos, "unexpected '" + op + "', expected '" + expected + "'");
                        }
                    }
                    default -> { }
                }
                pos += op.length();
                tokens.add(new Token(Kind.OP, op, op, line));
            }
        }
    }

    private int digits(int p, String allowed) {
        // digits with single underscores between them, as Python (and Jinja2) allow: 1_000
        while (p < n) {
            char c = Character.toLowerCase(src.charAt(p));
            if (allowed.indexOf(c) >= 0) {
                p++;
            } else if (c == '_' && p + 1 < n && allowed.indexOf(Character.toLowerCase(src.charAt(p + 1))) >= 0) {
                p++;
            } else {
                break;
            }
        }
        return p;
    }

    private void number(int line) {
        int s = pos;
        String dec = "0123456789";
        if (src.charAt(pos) == '0' && pos + 1 < n && "bBoOxX".indexOf(src.charAt(pos + 1)) >= 0) {
            char base = Character.toLowerCase(src.charAt(pos + 1));
            String allowed = base == 'b' ? "01" : base == 'o' ? "01234567" : "0123456789abcdef";
            int e = digits(pos + 2, allowed);
            if (e > pos + 2) {
                String body = src.substring(pos + 2, e).replace("_", "");
                pos = e;
                tokens.add(new Token(Kind.INTEGER, src.substring(s, e), parseLong(body, base == 'b' ? 2 : base == 'o' ? 8 : 16, s), line));
                return;
            }
        }
        int e = digits(pos, dec);
        boolean isFloat = false;
        // a float literal is not lexed right after a dot, so `a.0.1` is a[0][1] as in Jinja2
        boolean afterDot = s > 0 && src.charAt(s - 1) == '.';
        if (!afterDot && e + 1 < n && src.charAt(e) == '.' && Character.isDigit(src.charAt(e + 1))) {
            e = digits(e + 1, dec);
            isFloat = true;
        }
        if (!afterDot && e < n && (src.charAt(e) == 'e' || src.charAt(e) == 'E')) {
            int x = e + 1;
            if (x < n && (src.charAt(x) == '+' || src.charAt(x) == '-')) {
                x++;
            }
            if (x < n && Character.isDigit(src.charAt(x))) {
                e = digits(x, dec);
                isFloat = true;
            }
        }
        String text = src.substring(s, e);
        pos = e;
        if (isFloat) {
            tokens.add(new Token(Kind.FLOAT, text, Double.parseDouble(text.replace("_", "")), line));
        } else {
            tokens.add(new Token(Kind.INTEGER, text, parseLong(text.replace("_", ""), 10, s), line));
        }
    }

    private long parseLong(String digits, int radix, int at) {
        try {
            return Long.parseLong(digits, radix);
        } catch (NumberFormatException e) {
            throw error(at, "integer literal too large: " + digits);
        }
    }

    private void string(char quote, int line) {
        int s = pos;
        int p = pos + 1;
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (p >= n) {
                throw error(s, "unterminated string");
            }
            char c = src.charAt(p);
            if (c == quote) {
                break;
            }
            if (c != '\\') {
                sb.append(c);
                p++;
                continue;
            }
            if (p + 1 >= n) {
                throw error(s, "unterminated string");
            }
            p = escape(p + 1, sb, s);
        }
        pos = p + 1;
        tokens.add(new Token(Kind.STRING, src.substring(s, pos), sb.toString(), line));
    }

    /// Python's string escapes (Jinja2 decodes literals with `unicode-escape`); `p` is just after the backslash.
    /// Unknown escapes keep their backslash, as Python does.
    private int escape(int p, StringBuilder sb, int start) {
        char c = src.charAt(p);
        switch (c) {
            case '\n' -> { return p + 1; }
            case '\\', '\'', '"' -> sb.append(c);
            case 'a' -> sb.append('\u0007');
            case 'b' -> sb.append('\b');
            case 'f' -> sb.append('\f');
            case 'n' -> sb.append('\n');
            case 'r' -> sb.append('\r');
            case 't' -> sb.append('\t');
            case 'v' -> sb.append('\u000b');
            case 'x', 'u', 'U' -> {
                int len = c == 'x' ? 2 : c == 'u' ? 4 : 8;
                String hex = src.substring(p + 1, Math.min(n, p + 1 + len));
                int cp;
                try {
                    if (hex.length() != len || hex.startsWith("+") || hex.startsWith("-")) {
                        throw new NumberFormatException();
                    }
                    cp = Integer.parseInt(hex, 16);
                } catch (NumberFormatException e) {
                    throw error(start, "truncated \\" + c + " escape in string");
                }
                if (cp > Character.MAX_CODE_POINT) {
                    throw error(start, "illegal Unicode character in string");
                }
                sb.appendCodePoint(cp);
                return p + 1 + len;
            }
            case 'N' -> {
                int close = src.indexOf('}', p);
                if (p + 1 >= n || src.charAt(p + 1) != '{' || close < 0) {
                    throw error(start, "malformed \\N character escape in string");
                }
                String name = src.substring(p + 2, close);
                int cp;
                try {
                    cp = Character.codePointOf(name);
                } catch (IllegalArgumentException e) {
                    throw error(start, "unknown Unicode character name in string");
                }
                sb.appendCodePoint(cp);
                return close + 1;
            }
            default -> {
                if (c >= '0' && c <= '7') {
                    int e = p;
                    while (e < n && e < p + 3 && src.charAt(e) >= '0' && src.charAt(e) <= '7') {
                        e++;
                    }
                    sb.appendCodePoint(Integer.parseInt(src.substring(p, e), 8));
                    return e;
                }
                sb.append('\\').append(c);
            }
        }
        return p + 1;
    }
}
