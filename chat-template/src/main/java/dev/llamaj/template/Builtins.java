package dev.llamaj.template;

import dev.llamaj.template.Py.Builtin;
import dev.llamaj.template.Py.Tuple;
import dev.llamaj.template.Py.Undefined;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoField;
import java.time.temporal.IsoFields;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/// What templates can call: Jinja2's filters and tests, the globals Hugging Face provides (`range`,
/// `namespace`, `dict`, `joiner`, `raise_exception`, `strftime_now`), the methods of strings, dicts and lists,
/// and attribute and item lookup.
///
/// Lookup follows Jinja2's immutable sandbox: `obj.name` tries the attribute (a method such as `items`) then
/// the item, `obj[key]` the other way round, a missing one is undefined rather than an error, and methods that
/// would modify a list or dict (`append`, `update`...) are undefined values that fail when called. Nothing here
/// reaches Java reflection: a template sees only these functions and the data it was given.
final class Builtins {
    private Builtins() {}

    interface Filter {
        Object apply(Renderer r, Object value, List<Object> args, Map<String, Object> kwargs);
    }

    interface Test {
        boolean apply(Renderer r, Object value, List<Object> args);
    }

    private static final Map<String, Filter> FILTERS = new HashMap<>();
    private static final Map<String, Test> TESTS = new HashMap<>();
    private static final Map<String, Object> GLOBALS = new HashMap<>();
    private static final Object MISSING = Py.MISSING;

    /// Jinja2 filters not implemented here. The parser accepts them, so a template that only uses one in a branch
    /// it never takes still renders; using one fails.
    private static final Set<String> UNSUPPORTED_FILTERS = Set.of("batch", "filesizeformat", "groupby", "pprint",
            "random", "slice", "striptags", "urlencode", "urlize", "wordwrap", "xmlattr");

    static boolean hasFilter(String name) {
        return FILTERS.containsKey(name) || UNSUPPORTED_FILTERS.contains(name);
    }

    static boolean hasTest(String name) {
        return TESTS.containsKey(name);
    }

    static Map<String, Object> globals() {
        return GLOBALS;
    }

    static Object filter(Renderer r, String name, Object value, List<Object> args, Map<String, Object> kwargs) {
        Filter f = FILTERS.get(name);
        if (f == null) {
            throw Py.fail(UNSUPPORTED_FILTERS.contains(name) ? "the filter '" + name + "' is not supported"
                    : "no filter named '" + name + "'");
        }
        return f.apply(r, value, args, kwargs);
    }

    static boolean test(Renderer r, String name, Object value, List<Object> args, Map<String, Object> kwargs) {
        Test t = TESTS.get(name);
        if (t == null) {
            throw Py.fail("no test named '" + name + "'");
        }
        if (!kwargs.isEmpty()) {
            throw Py.fail("test '" + name + "' takes no keyword arguments");
        }
        return t.apply(r, value, args);
    }

    // ---- arguments

    /// Binds positional and keyword arguments to parameter names as Python does; absent ones are MISSING.
    static Object[] bind(String fn, List<Object> args, Map<String, Object> kwargs, String... params) {
        if (args.size() > params.length) {
            throw Py.fail(fn + "() takes at most " + params.length + " argument(s) (" + args.size() + " given)");
        }
        Object[] out = new Object[params.length];
        Arrays.fill(out, MISSING);
        for (int i = 0; i < args.size(); i++) {
            out[i] = args.get(i);
        }
        for (Map.Entry<String, Object> e : kwargs.entrySet()) {
            int i = Arrays.asList(params).indexOf(e.getKey());
            if (i < 0) {
                throw Py.fail(fn + "() got an unexpected keyword argument '" + e.getKey() + "'");
            }
            if (out[i] != MISSING) {
                throw Py.fail(fn + "() got multiple values for argument '" + e.getKey() + "'");
            }
            out[i] = e.getValue();
        }
        return out;
    }

    private static Object or(Object v, Object dflt) {
        return v == MISSING ? dflt : v;
    }

    private static Object required(String fn, Object v, String param) {
        if (v == MISSING) {
            throw Py.fail(fn + "() missing required argument '" + param + "'");
        }
        return v;
    }

    private static long intArg(String fn, Object v) {
        Py.defined(v);
        if (!Py.isInt(v)) {
            throw Py.fail(fn + "(): '" + Py.typeName(v) + "' object cannot be interpreted as an integer");
        }
        return Py.toLong(v);
    }

    /// A string argument that may not be request text: a separator, a pattern, a name, a format. Request text
    /// there would choose how the template's own text is cut or rebuilt, so the render is refused.
    private static String strArg(String fn, Object v) {
        Py.defined(v);
        if (v instanceof Marked) {
            throw Marked.refuse("request text as the argument of " + fn + "()");
        }
        if (!(v instanceof String s)) {
            throw Py.fail(fn + "() argument must be str, not " + Py.typeName(v));
        }
        return s;
    }

    /// A string argument that is only read (a substring to look for): request text is fine, its marks unneeded.
    private static String readArg(String fn, Object v) {
        Py.defined(v);
        if (!Marked.isStr(v)) {
            throw Py.fail(fn + "() argument must be str, not " + Py.typeName(v));
        }
        return Marked.plain(v);
    }

    /// A string argument that becomes part of the result (`replace`'s new text): a [String] or a [Marked].
    private static Object textArg(String fn, Object v) {
        Py.defined(v);
        if (!Marked.isStr(v)) {
            throw Py.fail(fn + "() argument must be str, not " + Py.typeName(v));
        }
        return v;
    }

    /// A format string (`%`, `format`): refused if it holds request text, which would place the template's
    /// values (its own text) where the request chooses.
    private static String formatString(Object v, String what) {
        if (v instanceof Marked) {
            throw Marked.refuse("request text as the format string of " + what);
        }
        return (String) v;
    }

    private static String optStr(String fn, Object v) {
        return v == MISSING || v == null ? null : strArg(fn, v);
    }

    // ---- lookup

    static Undefined noAttribute(Object obj, String name) {
        return new Undefined("'" + Py.objectTypeRepr(obj) + "' has no attribute '" + name + "'");
    }

    private static Undefined noElement(Object obj, Object key) {
        if (Marked.isStr(key)) {
            return noAttribute(obj, Marked.plain(key));
        }
        return new Undefined(Py.objectTypeRepr(obj) + " has no element " + Py.repr(key));
    }

    /// `obj.name`: a method or attribute first, then the item `obj['name']`.
    static Object getattr(Object obj, String name) {
        Object v = attribute(obj, name);
        if (v != MISSING) {
            return v;
        }
        if (obj instanceof Map<?, ?> m) {
            v = Py.dictGet(m, name);
            if (v != MISSING) {
                return v;
            }
        }
        return noAttribute(obj, name);
    }

    /// `obj[key]`: the item first, then (for string keys) the attribute.
    static Object getitem(Object obj, Object key) {
        Py.defined(obj);
        if (key instanceof Py.Slice s) {
            // Jinja2 slices with Python's own subscript, so slicing anything but a sequence fails
            if (!(Marked.isStr(obj) || obj instanceof List<?>)) {
                throw Py.fail("'" + Py.typeName(obj) + "' object is not subscriptable");
            }
            return Py.slice(obj, s);
        }
        switch (obj) {
            case Map<?, ?> m -> {
                if (Py.hashable(key)) {
                    Object v = Py.dictGet(m, key);
                    if (v != MISSING) {
                        return v;
                    }
                }
            }
            case List<?> l -> {
                if (Py.isInt(key)) {
                    long i = Py.toLong(key);
                    if (i < 0) {
                        i += l.size();
                    }
                    return i >= 0 && i < l.size() ? l.get((int) i) : noElement(obj, key);
                }
            }
            case String str -> {
                return stringItem(str, key);
            }
            case Marked str -> {
                return stringItem(str, key);
            }
            case null, default -> { }
        }
        if (Marked.isStr(key)) {
            Object v = attribute(obj, Marked.plain(key));
            if (v != MISSING) {
                return v;
            }
        }
        return noElement(obj, key);
    }

    /// `s[i]` (a character, keeping its mark), or the attribute for a string key.
    private static Object stringItem(Object str, Object key) {
        String s = Marked.plain(str);
        if (Py.isInt(key)) {
            long n = s.codePointCount(0, s.length());
            long i = Py.toLong(key);
            if (i < 0) {
                i += n;
            }
            if (i < 0 || i >= n) {
                return noElement(str, key);
            }
            int at = s.offsetByCodePoints(0, (int) i);
            return Marked.sub(str, at, s.offsetByCodePoints(at, 1));
        }
        if (Marked.isStr(key)) {
            Object v = attribute(str, Marked.plain(key));
            if (v != MISSING) {
                return v;
            }
        }
        return noElement(str, key);
    }

    /// The attribute `name` of `obj` (not its items), or MISSING.
    private static Object attribute(Object obj, String name) {
        return switch (obj) {
            case Undefined u -> throw Py.fail(u.message());
            case String s -> stringMethod(s, name);
            case Marked s -> stringMethod(s, name);
            case Map<?, ?> m -> dictMethod(m, name);
            case List<?> l -> listMethod(l, name);
            case Py.Namespace ns -> ns.attrs.containsKey(name) ? ns.attrs.get(name) : MISSING;
            case Renderer.Loop loop -> loop.attribute(name);
            case null, default -> MISSING;
        };
    }

    private static Undefined unsafe(Object obj, String name) {
        return new Undefined("access to attribute '" + name + "' of '" + Py.typeName(obj) + "' object is unsafe.");
    }

    private static Builtin method(Object self, String name, Py.Callable fn) {
        return new Builtin(name + " of " + Py.typeName(self) + " object", fn);
    }

    private static Object dictMethod(Map<?, ?> m, String name) {
        return switch (name) {
            case "items" -> method(m, name, (r, a, k) -> {
                bind("items", a, k);
                return new Py.View("dict_items", items(m));
            });
            case "keys" -> method(m, name, (r, a, k) -> {
                bind("keys", a, k);
                return new Py.View("dict_keys", new ArrayList<Object>(m.keySet()));
            });
            case "values" -> method(m, name, (r, a, k) -> {
                bind("values", a, k);
                return new Py.View("dict_values", new ArrayList<Object>(m.values()));
            });
            case "get" -> method(m, name, (r, a, k) -> {
                Object[] p = bind("get", a, k, "key", "default");
                Object v = Py.dictGet(m, required("get", p[0], "key"));
                return v != MISSING ? v : or(p[1], null);
            });
            case "copy" -> method(m, name, (r, a, k) -> new LinkedHashMap<Object, Object>(m));
            case "pop", "popitem", "setdefault", "update", "clear" -> unsafe(m, name);
            default -> MISSING;
        };
    }

    private static List<Object> items(Map<?, ?> m) {
        List<Object> out = new ArrayList<>(m.size());
        m.forEach((k, v) -> out.add(new Tuple(k, v)));
        return out;
    }

    private static Object listMethod(List<?> l, String name) {
        return switch (name) {
            case "index" -> method(l, name, (r, a, k) -> {
                Object[] p = bind("index", a, k, "value");
                for (int i = 0; i < l.size(); i++) {
                    if (Py.eq(l.get(i), p[0])) {
                        return (long) i;
                    }
                }
                throw Py.fail(Py.repr(p[0]) + " is not in list");
            });
            case "copy" -> method(l, name, (r, a, k) -> {
                bind("copy", a, k);
                return new ArrayList<Object>(l);
            });
            case "count" -> method(l, name, (r, a, k) -> {
                Object[] p = bind("count", a, k, "value");
                return l.stream().filter(x -> Py.eq(x, p[0])).count();
            });
            case "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear" ->
                l instanceof Tuple ? MISSING : unsafe(l, name);
            default -> MISSING;
        };
    }

    // ---- string methods

    /// The methods of a string `self` (a [String] or a [Marked]): what they return keeps the marks of the
    /// characters it came from; arguments that only are read (a prefix to test, a substring to find) may be request
    /// text, but not those that would edit the string (a separator, a pattern to replace, characters to strip).
    private static Object stringMethod(Object self, String name) {
        String s = Marked.plain(self);
        Py.Callable fn = switch (name) {
            case "strip", "lstrip", "rstrip" -> (r, a, k) -> {
                String chars = optStr(name, bind(name, a, k, "chars")[0]);
                return name.equals("strip") ? Py.strip(self, chars) : name.equals("lstrip") ? Py.lstrip(self, chars)
                        : Py.rstrip(self, chars);
            };
            case "split", "rsplit" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "sep", "maxsplit");
                return split(self, optStr(name, p[0]), p[1] == MISSING ? -1 : intArg(name, p[1]), name.equals("rsplit"));
            };
            case "splitlines" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "keepends");
                return splitlines(self, Py.truthy(or(p[0], false)));
            };
            case "startswith", "endswith" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "prefix", "start", "end");
                Object affix = required(name, p[0], "prefix");
                String sub = codePointRange(s, p[1], p[2]);
                List<?> options = affix instanceof Tuple t ? t : List.of(affix);
                for (Object o : options) {
                    if (!Marked.isStr(o)) {
                        throw Py.fail(name + " first arg must be str or a tuple of str, not " + Py.typeName(o));
                    }
                    String x = Marked.plain(o);
                    if (name.equals("startswith") ? sub.startsWith(x) : sub.endsWith(x)) {
                        return true;
                    }
                }
                return false;
            };
            case "upper" -> (r, a, k) -> Marked.map(self, x -> x.toUpperCase(Locale.ROOT));
            case "lower" -> (r, a, k) -> Marked.map(self, x -> x.toLowerCase(Locale.ROOT));
            case "casefold" -> (r, a, k) -> Marked.map(self, x -> x.toUpperCase(Locale.ROOT).toLowerCase(Locale.ROOT));
            case "title" -> (r, a, k) -> Marked.map(self, Builtins::pyTitle);
            case "capitalize" -> (r, a, k) -> Marked.map(self, Builtins::capitalize);
            case "swapcase" -> (r, a, k) -> Marked.map(self, x -> {
                StringBuilder sb = new StringBuilder();
                x.codePoints().forEach(c -> sb.append(Character.isUpperCase(c) ? Character.toString(c).toLowerCase(Locale.ROOT)
                        : Character.toString(c).toUpperCase(Locale.ROOT)));
                return sb.toString();
            });
            case "replace" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "old", "new", "count");
                return replace(self, strArg(name, required(name, p[0], "old")), textArg(name, required(name, p[1], "new")),
                        p[2] == MISSING ? -1 : intArg(name, p[2]));
            };
            case "find", "rfind", "index", "rindex", "count" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "sub", "start", "end");
                String sub = readArg(name, required(name, p[0], "sub"));
                long start = p[1] == MISSING || p[1] == null ? 0 : clampIndex(intArg(name, p[1]), s);
                String hay = codePointRange(s, p[1], p[2]);
                long len = s.codePointCount(0, s.length());
                long rawStart = p[1] == MISSING || p[1] == null ? 0 : intArg(name, p[1]);
                if ((rawStart < 0 ? rawStart + len : rawStart) > len) {
                    // a start past the end finds nothing, not even the empty string
                    if (name.endsWith("index")) {
                        throw Py.fail("substring not found");
                    }
                    return name.equals("count") ? 0L : -1L;
                }
                if (name.equals("count")) {
                    if (sub.isEmpty()) {
                        return (long) hay.codePointCount(0, hay.length()) + 1;
                    }
                    long n = 0;
                    for (int i = hay.indexOf(sub); i >= 0; i = hay.indexOf(sub, i + sub.length())) {
                        n++;
                    }
                    return n;
                }
                int at = name.startsWith("r") ? hay.lastIndexOf(sub) : hay.indexOf(sub);
                if (at < 0) {
                    if (name.endsWith("index")) {
                        throw Py.fail("substring not found");
                    }
                    return -1L;
                }
                return start + hay.codePointCount(0, at);
            };
            case "join" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "iterable");
                List<Object> parts = Py.iterate(required(name, p[0], "iterable"));
                Marked.Builder sb = new Marked.Builder();
                for (int i = 0; i < parts.size(); i++) {
                    if (!Marked.isStr(parts.get(i))) {
                        throw Py.fail("sequence item " + i + ": expected str instance, " + Py.typeName(parts.get(i)) + " found");
                    }
                    if (i > 0) {
                        sb.appendText(self);
                    }
                    sb.appendText(parts.get(i));
                    Py.checkChars(sb.length());
                }
                return sb.build();
            };
            case "format" -> (r, a, k) -> strFormat(formatString(self, "str.format"), a, k);
            case "isdigit", "isdecimal", "isnumeric" -> (r, a, k) -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> (r, a, k) -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> (r, a, k) -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace" -> (r, a, k) -> !s.isEmpty() && s.chars().allMatch(c -> Py.isSpace((char) c));
            case "islower" -> (r, a, k) -> isLower(s);
            case "isupper" -> (r, a, k) -> isUpper(s);
            case "removeprefix" -> (r, a, k) -> {
                String x = strArg(name, required(name, bind(name, a, k, "prefix")[0], "prefix"));
                return s.startsWith(x) ? Marked.sub(self, x.length(), s.length()) : self;
            };
            case "removesuffix" -> (r, a, k) -> {
                String x = strArg(name, required(name, bind(name, a, k, "suffix")[0], "suffix"));
                return s.endsWith(x) && !x.isEmpty() ? Marked.sub(self, 0, s.length() - x.length()) : self;
            };
            case "center", "ljust", "rjust" -> (r, a, k) -> {
                Object[] p = bind(name, a, k, "width", "fillchar");
                String fill = p[1] == MISSING ? " " : strArg(name, p[1]);
                if (fill.codePointCount(0, fill.length()) != 1) {
                    throw Py.fail("The fill character must be exactly one character long");
                }
                return pad(self, intArg(name, required(name, p[0], "width")), fill, name.equals("center") ? '^' : name.equals("ljust") ? '<' : '>');
            };
            case "zfill" -> (r, a, k) -> {
                long width = intArg(name, required(name, bind(name, a, k, "width")[0], "width"));
                int len = s.codePointCount(0, s.length());
                if (width <= len) {
                    return self;
                }
                Py.checkChars(width);
                boolean sign = !s.isEmpty() && (s.charAt(0) == '+' || s.charAt(0) == '-');
                String zeros = "0".repeat((int) (width - len));
                return sign ? Marked.concat(Marked.sub(self, 0, 1), Marked.concat(zeros, Marked.sub(self, 1, s.length())))
                        : Marked.concat(zeros, self);
            };
            case "partition", "rpartition" -> (r, a, k) -> {
                String sep = strArg(name, required(name, bind(name, a, k, "sep")[0], "sep"));
                if (sep.isEmpty()) {
                    throw Py.fail("empty separator");
                }
                int at = name.equals("partition") ? s.indexOf(sep) : s.lastIndexOf(sep);
                if (at < 0) {
                    return name.equals("partition") ? new Tuple(self, "", "") : new Tuple("", "", self);
                }
                return new Tuple(Marked.sub(self, 0, at), Marked.sub(self, at, at + sep.length()),
                        Marked.sub(self, at + sep.length(), s.length()));
            };
            default -> null;
        };
        return fn == null ? MISSING : method(self, name, fn);
    }

    private static boolean isLower(String s) {
        boolean cased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            if (Character.isUpperCase(c) || Character.isTitleCase(c)) {
                return false;
            }
            cased |= Character.isLowerCase(c);
        }
        return cased;
    }

    private static boolean isUpper(String s) {
        boolean cased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            if (Character.isLowerCase(c) || Character.isTitleCase(c)) {
                return false;
            }
            cased |= Character.isUpperCase(c);
        }
        return cased;
    }

    private static long clampIndex(long i, String s) {
        long n = s.codePointCount(0, s.length());
        if (i < 0) {
            i += n;
        }
        return Math.max(0, Math.min(n, i));
    }

    /// `s[start:end]` by code point, as Python's `find`, `startswith`... take their optional bounds.
    private static String codePointRange(String s, Object start, Object end) {
        if ((start == MISSING || start == null) && (end == MISSING || end == null)) {
            return s;
        }
        long b = start == MISSING || start == null ? 0 : clampIndex(intArg("slice", start), s);
        long e = end == MISSING || end == null ? s.codePointCount(0, s.length()) : clampIndex(intArg("slice", end), s);
        if (e <= b) {
            return "";
        }
        int from = s.offsetByCodePoints(0, (int) b);
        return s.substring(from, s.offsetByCodePoints(from, (int) (e - b)));
    }

    /// `str.split`/`rsplit` of a [String] or [Marked]: the parts keep their marks.
    static List<Object> split(Object self, String sep, long maxsplit, boolean fromRight) {
        String s = Marked.plain(self);
        List<Object> out = new ArrayList<>();
        if (maxsplit < 0) {
            maxsplit = Long.MAX_VALUE;
        }
        if (sep == null) {
            // runs of whitespace separate; leading and trailing whitespace gives no empty parts
            List<int[]> words = new ArrayList<>();
            int i = 0;
            while (i < s.length()) {
                while (i < s.length() && Py.isSpace(s.charAt(i))) {
                    i++;
                }
                if (i >= s.length()) {
                    break;
                }
                int start = i;
                while (i < s.length() && !Py.isSpace(s.charAt(i))) {
                    i++;
                }
                words.add(new int[] {start, i});
            }
            if (words.size() - 1 <= maxsplit) {
                words.forEach(w -> out.add(Marked.sub(self, w[0], w[1])));
            } else if (!fromRight) {
                for (int w = 0; w < maxsplit; w++) {
                    out.add(Marked.sub(self, words.get(w)[0], words.get(w)[1]));
                }
                out.add(Py.rstrip(Marked.sub(self, words.get((int) maxsplit)[0], s.length()), null));
            } else {
                int keep = (int) (words.size() - maxsplit);
                out.add(Py.lstrip(Marked.sub(self, 0, words.get(keep - 1)[1]), null));
                for (int w = keep; w < words.size(); w++) {
                    out.add(Marked.sub(self, words.get(w)[0], words.get(w)[1]));
                }
            }
            Py.checkItems(out.size());
            return out;
        }
        if (sep.isEmpty()) {
            throw Py.fail("empty separator");
        }
        if (!fromRight) {
            int start = 0;
            for (int i = s.indexOf(sep); i >= 0 && out.size() < maxsplit; i = s.indexOf(sep, start)) {
                out.add(Marked.sub(self, start, i));
                start = i + sep.length();
                Py.checkItems(out.size());
            }
            out.add(Marked.sub(self, start, s.length()));
            return out;
        }
        int end = s.length();
        List<Object> rev = new ArrayList<>();
        for (int i = s.lastIndexOf(sep, end - sep.length()); i >= 0 && rev.size() < maxsplit; i = s.lastIndexOf(sep, end - sep.length())) {
            rev.add(Marked.sub(self, i + sep.length(), end));
            end = i;
            Py.checkItems(rev.size());
            if (end - sep.length() < 0) {
                break;
            }
        }
        rev.add(Marked.sub(self, 0, end));
        for (int i = rev.size() - 1; i >= 0; i--) {
            out.add(rev.get(i));
        }
        return out;
    }

    /// Python's `str.splitlines`: every line boundary Python knows, `\r\n` as one.
    static List<Object> splitlines(Object self, boolean keepEnds) {
        String s = Marked.plain(self);
        List<Object> out = new ArrayList<>();
        int start = 0;
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            int eol;
            if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
                eol = 2;
            } else if (c == '\n' || c == '\r' || c == '\u000b' || c == '\f' || c == '\u001c' || c == '\u001d'
                    || c == '\u001e' || c == '\u0085' || c == '\u2028' || c == '\u2029') {
                eol = 1;
            } else {
                i++;
                continue;
            }
            out.add(Marked.sub(self, start, keepEnds ? i + eol : i));
            i += eol;
            start = i;
        }
        if (start < s.length()) {
            out.add(Marked.sub(self, start, s.length()));
        }
        Py.checkItems(out.size());
        return out;
    }

    /// `str.replace` of a [String] or [Marked]: kept characters keep their marks, `now` brings its own.
    static Object replace(Object self, String old, Object now, long count) {
        String s = Marked.plain(self);
        if (count < 0) {
            count = Long.MAX_VALUE;
        }
        Marked.Builder sb = new Marked.Builder();
        if (old.isEmpty()) {
            // Python inserts `now` before every character and at the end
            List<Object> chars = Py.chars(self);
            long done = 0;
            for (Object c : chars) {
                if (done++ < count) {
                    sb.appendText(now);
                }
                sb.appendText(c);
                Py.checkChars(sb.length());
            }
            if (done < count) {
                sb.appendText(now);
            }
            Py.checkChars(sb.length());
            return sb.build();
        }
        int start = 0;
        long done = 0;
        for (int i = s.indexOf(old); i >= 0 && done < count; i = s.indexOf(old, start)) {
            sb.append(self, start, i).appendText(now);
            Py.checkChars(sb.length());
            start = i + old.length();
            done++;
        }
        sb.append(self, start, s.length());
        Py.checkChars(sb.length());
        return sb.build();
    }

    /// Python's `str.title`: a letter after a cased letter is lowered, any other letter upper-cased.
    static String pyTitle(String s) {
        StringBuilder sb = new StringBuilder();
        boolean prevCased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            String ch = Character.toString(c);
            sb.append(prevCased ? ch.toLowerCase(Locale.ROOT) : titleCase(c));
            prevCased = Character.isUpperCase(c) || Character.isLowerCase(c) || Character.isTitleCase(c);
        }
        return sb.toString();
    }

    private static String titleCase(int c) {
        int t = Character.toTitleCase(c);
        // characters whose title case is several letters (ß) have none in Java; Python writes their upper case
        return t == c && Character.isLowerCase(c) ? Character.toString(c).toUpperCase(Locale.ROOT) : Character.toString(t);
    }

    static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int c = s.codePointAt(0);
        return titleCase(c) + s.substring(Character.charCount(c)).toLowerCase(Locale.ROOT);
    }

    /// Pads to `width` code points; `align` is `<`, `>`, `^` (centred as Python's `str.center`).
    private static Object pad(Object self, long width, String fill, char align) {
        String s = Marked.plain(self);
        long len = s.codePointCount(0, s.length());
        if (width <= len) {
            return self;
        }
        Py.checkChars(width);
        int marg = (int) (width - len);
        int left = switch (align) {
            case '<' -> 0;
            case '>' -> marg;
            default -> marg / 2 + (marg & (int) width & 1);
        };
        return Marked.concat(fill.repeat(left), Marked.concat(self, fill.repeat(marg - left)));
    }

    // ---- formatting: `%` and str.format

    /// Python's `fmt % args`: `%s %r %d %i %x %X %o %f %e %c %%`, with flags, width, precision and `%(key)s`.
    static Object percentFormat(String fmt, Object args) {
        List<Object> positional;
        Map<?, ?> mapping = null;
        if (args instanceof Tuple t) {
            positional = t;
        } else if (args instanceof Map<?, ?> m && fmt.contains("%(")) {
            positional = List.of();
            mapping = m;
        } else {
            positional = List.of(args == null ? MISSING : args);
        }
        Marked.Builder sb = new Marked.Builder();
        int next = 0;
        int i = 0;
        while (i < fmt.length()) {
            char c = fmt.charAt(i);
            if (c != '%') {
                sb.append(c, false);
                i++;
                continue;
            }
            i++;
            Object value = null;
            boolean haveValue = false;
            if (i < fmt.length() && fmt.charAt(i) == '(') {
                int close = fmt.indexOf(')', i);
                if (mapping == null || close < 0) {
                    throw Py.fail(mapping == null ? "format requires a mapping" : "incomplete format key");
                }
                Object v = Py.dictGet(mapping, fmt.substring(i + 1, close));
                if (v == MISSING) {
                    throw Py.fail("KeyError: " + Py.repr(fmt.substring(i + 1, close)));
                }
                value = v;
                haveValue = true;
                i = close + 1;
            }
            String flags = "";
            while (i < fmt.length() && "-+ #0".indexOf(fmt.charAt(i)) >= 0) {
                flags += fmt.charAt(i++);
            }
            int width = 0;
            while (i < fmt.length() && Character.isDigit(fmt.charAt(i))) {
                width = width * 10 + (fmt.charAt(i++) - '0');
                Py.checkChars(width);
            }
            int precision = -1;
            if (i < fmt.length() && fmt.charAt(i) == '.') {
                i++;
                precision = 0;
                while (i < fmt.length() && Character.isDigit(fmt.charAt(i))) {
                    precision = precision * 10 + (fmt.charAt(i++) - '0');
                    Py.checkChars(precision);
                }
            }
            if (i >= fmt.length()) {
                throw Py.fail("incomplete format");
            }
            char type = fmt.charAt(i++);
            if (type == '%') {
                sb.append("%");
                continue;
            }
            if (!haveValue) {
                if (next >= positional.size()) {
                    throw Py.fail("not enough arguments for format string");
                }
                value = positional.get(next++);
                if (value == MISSING) {
                    value = null;
                }
            }
            sb.appendText(formatOne(value, type, flags, width, precision));
            Py.checkChars(sb.length());
        }
        // like Python, unused arguments are only an error when they came as a tuple or a single non-container
        boolean container = args instanceof Map<?, ?> || (args instanceof List<?> && !(args instanceof Tuple));
        if (!container && next < positional.size()) {
            throw Py.fail("not all arguments converted during string formatting");
        }
        return sb.build();
    }

    /// One `%` conversion: a [String], or a [Marked] for request text (`%s` of a message's content).
    private static Object formatOne(Object v, char type, String flags, int width, int precision) {
        if (type == 's' || type == 'r' || type == 'a' || (type == 'c' && v instanceof Marked)) {
            Object body = type == 'r' || type == 'a' ? Py.reprText(v) : Py.text(v);
            String text = Marked.plain(body);
            if (type != 'c' && precision >= 0 && precision < text.codePointCount(0, text.length())) {
                body = Marked.sub(body, 0, text.offsetByCodePoints(0, precision));
            }
            return pad(body, width, " ", flags.contains("-") ? '<' : '>');
        }
        String body;
        boolean numeric = true;
        switch (type) {
            case 'd', 'i', 'u', 'x', 'X', 'o' -> {
                Py.defined(v);
                if (!Py.isNumber(v) || ((type == 'x' || type == 'X' || type == 'o') && v instanceof Double)) {
                    throw Py.fail("%" + type + " format: a" + (type == 'd' || type == 'i' || type == 'u' ? " real number" : "n integer")
                            + " is required, not " + Py.typeName(v));
                }
                long n = v instanceof Double d ? (long) (double) d : Py.toLong(v);
                String digits = switch (type) {
                    case 'x' -> Long.toHexString(Math.abs(n));
                    case 'X' -> Long.toHexString(Math.abs(n)).toUpperCase(Locale.ROOT);
                    case 'o' -> Long.toOctalString(Math.abs(n));
                    default -> Long.toString(Math.abs(n));
                };
                if (n == Long.MIN_VALUE) {
                    digits = digits.replace("-", "");
                }
                if (flags.contains("#") && type != 'd' && type != 'i' && type != 'u') {
                    digits = (type == 'o' ? "0o" : type == 'x' ? "0x" : "0X") + digits;
                }
                body = sign(n < 0, flags) + digits;
            }
            case 'f', 'F', 'e', 'E' -> {
                Py.defined(v);
                if (!Py.isNumber(v)) {
                    throw Py.fail("must be real number, not " + Py.typeName(v));
                }
                double d = Py.toDouble(v);
                body = sign(d < 0 || (d == 0 && 1 / d < 0), flags) + fixedOrExp(Math.abs(d), type, precision < 0 ? 6 : precision);
            }
            case 'c' -> {
                body = v instanceof String s ? s : Character.toString((int) Py.toLong(Py.defined(v)));
                numeric = false;
            }
            default -> throw Py.fail("unsupported format character '" + type + "'");
        }
        int len = body.codePointCount(0, body.length());
        if (width > len) {
            if (flags.contains("-")) {
                body = body + " ".repeat(width - len);
            } else if (numeric && flags.contains("0")) {
                int signLen = !body.isEmpty() && "+- ".indexOf(body.charAt(0)) >= 0 ? 1 : 0;
                body = body.substring(0, signLen) + "0".repeat(width - len) + body.substring(signLen);
            } else {
                body = " ".repeat(width - len) + body;
            }
        }
        return body;
    }

    private static String sign(boolean negative, String flags) {
        return negative ? "-" : flags.contains("+") ? "+" : flags.contains(" ") ? " " : "";
    }

    /// `d` (not negative) in `%f` or `%e` notation, rounded half-even on its exact binary value as Python does.
    private static String fixedOrExp(double d, char type, int precision) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            String s = Double.isNaN(d) ? "nan" : "inf";
            return Character.isUpperCase(type) ? s.toUpperCase(Locale.ROOT) : s;
        }
        BigDecimal exact = new BigDecimal(d);
        if (type == 'f' || type == 'F') {
            return exact.setScale(precision, RoundingMode.HALF_EVEN).toPlainString();
        }
        int exp = 0;
        String digits;
        if (d == 0) {
            digits = "0".repeat(precision + 1);
        } else {
            BigDecimal rounded = exact.round(new java.math.MathContext(precision + 1, RoundingMode.HALF_EVEN));
            digits = rounded.unscaledValue().toString();
            exp = digits.length() - 1 - rounded.scale();
            digits = (digits + "0".repeat(precision + 1)).substring(0, precision + 1);
        }
        String mantissa = digits.charAt(0) + (precision > 0 ? "." + digits.substring(1) : "");
        return mantissa + type + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }

    /// Python's `str.format`: `{}`, `{0}`, `{name}`, `{{`/`}}`, `!r`/`!s`, and specs of the form
    /// `[[fill]align][sign][0][width][,][.precision][type]`.
    static Object strFormat(String fmt, List<Object> args, Map<String, Object> kwargs) {
        Marked.Builder sb = new Marked.Builder();
        int auto = 0;
        int i = 0;
        while (i < fmt.length()) {
            char c = fmt.charAt(i);
            if (c == '}' ) {
                if (i + 1 < fmt.length() && fmt.charAt(i + 1) == '}') {
                    sb.append("}");
                    i += 2;
                    continue;
                }
                throw Py.fail("Single '}' encountered in format string");
            }
            if (c != '{') {
                sb.append(c, false);
                i++;
                continue;
            }
            if (i + 1 < fmt.length() && fmt.charAt(i + 1) == '{') {
                sb.append("{");
                i += 2;
                continue;
            }
            int close = fmt.indexOf('}', i);
            if (close < 0) {
                throw Py.fail("Single '{' encountered in format string");
            }
            String field = fmt.substring(i + 1, close);
            i = close + 1;
            String spec = "";
            int colon = field.indexOf(':');
            if (colon >= 0) {
                spec = field.substring(colon + 1);
                field = field.substring(0, colon);
            }
            char conversion = 0;
            int bang = field.indexOf('!');
            if (bang >= 0) {
                conversion = field.length() > bang + 1 ? field.charAt(bang + 1) : 0;
                field = field.substring(0, bang);
            }
            Object value;
            if (field.isEmpty()) {
                if (auto >= args.size()) {
                    throw Py.fail("Replacement index " + auto + " out of range for positional args tuple");
                }
                value = args.get(auto++);
            } else if (field.chars().allMatch(Character::isDigit)) {
                int idx = Integer.parseInt(field);
                if (idx >= args.size()) {
                    throw Py.fail("Replacement index " + idx + " out of range for positional args tuple");
                }
                value = args.get(idx);
            } else if (kwargs.containsKey(field)) {
                value = kwargs.get(field);
            } else {
                throw Py.fail("KeyError: " + Py.repr(field));
            }
            if (conversion == 'r' || conversion == 'a') {
                value = Py.reprText(value);
            } else if (conversion == 's') {
                value = Py.text(value);
            } else if (conversion != 0) {
                throw Py.fail("Unknown conversion specifier " + conversion);
            }
            sb.appendText(formatSpec(value, spec));
            Py.checkChars(sb.length());
        }
        return sb.build();
    }

    private static Object formatSpec(Object v, String spec) {
        if (spec.isEmpty()) {
            return Py.text(v);
        }
        int i = 0;
        String fill = " ";
        char align = 0;
        if (spec.length() >= 2 && "<>^=".indexOf(spec.charAt(1)) >= 0) {
            fill = spec.substring(0, 1);
            align = spec.charAt(1);
            i = 2;
        } else if ("<>^=".indexOf(spec.charAt(0)) >= 0) {
            align = spec.charAt(0);
            i = 1;
        }
        String flags = "";
        if (i < spec.length() && "+- ".indexOf(spec.charAt(i)) >= 0) {
            flags += spec.charAt(i++);
        }
        if (i < spec.length() && spec.charAt(i) == '0') {
            if (align == 0) {
                fill = "0";
                align = '=';
            }
            i++;
        }
        int width = 0;
        while (i < spec.length() && Character.isDigit(spec.charAt(i))) {
            width = width * 10 + (spec.charAt(i++) - '0');
            Py.checkChars(width);
        }
        boolean grouping = false;
        if (i < spec.length() && (spec.charAt(i) == ',' || spec.charAt(i) == '_')) {
            grouping = true;
            i++;
        }
        int precision = -1;
        if (i < spec.length() && spec.charAt(i) == '.') {
            i++;
            precision = 0;
            while (i < spec.length() && Character.isDigit(spec.charAt(i))) {
                precision = precision * 10 + (spec.charAt(i++) - '0');
            }
        }
        char type = i < spec.length() ? spec.charAt(i++) : 0;
        if (i < spec.length()) {
            throw Py.fail("Invalid format specifier '" + spec + "'");
        }
        String body;
        boolean numeric = Py.isNumber(v);
        if (Marked.isStr(v) || type == 's') {
            if (!Marked.isStr(v)) {
                throw Py.fail("Unknown format code 's' for object of type '" + Py.typeName(v) + "'");
            }
            String s = Marked.plain(v);
            Object text = precision >= 0 && precision < s.codePointCount(0, s.length())
                    ? Marked.sub(v, 0, s.offsetByCodePoints(0, precision)) : v;
            if (text instanceof Marked) {
                return pad(text, width, fill, align == 0 || align == '=' ? '<' : align);
            }
            body = (String) text;
            numeric = false;
        } else if (numeric && (type == 'd' || (type == 0 && Py.isInt(v)))) {
            if (v instanceof Double) {
                throw Py.fail("Unknown format code 'd' for object of type 'float'");
            }
            long n = Py.toLong(v);
            String digits = Long.toString(Math.abs(n));
            body = sign(n < 0, flags) + (grouping ? group(digits) : digits);
        } else if (numeric && (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == '%')) {
            double d = Py.toDouble(v) * (type == '%' ? 100 : 1);
            String digits = fixedOrExp(Math.abs(d), type == '%' ? 'f' : type, precision < 0 ? 6 : precision);
            if (grouping && (type == 'f' || type == 'F' || type == '%')) {
                int dot = digits.indexOf('.');
                digits = dot < 0 ? group(digits) : group(digits.substring(0, dot)) + digits.substring(dot);
            }
            body = sign(d < 0 || (d == 0 && 1 / d < 0), flags) + digits + (type == '%' ? "%" : "");
        } else if (numeric && (type == 'x' || type == 'X' || type == 'o' || type == 'b') && Py.isInt(v)) {
            long n = Py.toLong(v);
            String digits = type == 'o' ? Long.toOctalString(Math.abs(n)) : type == 'b' ? Long.toBinaryString(Math.abs(n))
                    : Long.toHexString(Math.abs(n));
            body = sign(n < 0, flags) + (type == 'X' ? digits.toUpperCase(Locale.ROOT) : digits);
        } else if (numeric && type == 0) {
            body = Py.str(v);
        } else {
            throw Py.fail("Unsupported format specifier '" + spec + "' for object of type '" + Py.typeName(v) + "'");
        }
        if (align == 0) {
            align = numeric ? '>' : '<';
        }
        int len = body.codePointCount(0, body.length());
        if (width <= len) {
            return body;
        }
        if (align == '=') {
            int signLen = !body.isEmpty() && "+- ".indexOf(body.charAt(0)) >= 0 ? 1 : 0;
            return body.substring(0, signLen) + fill.repeat(width - len) + body.substring(signLen);
        }
        return pad(body, width, fill, align);
    }

    private static String group(String digits) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < digits.length(); i++) {
            if (i > 0 && (digits.length() - i) % 3 == 0) {
                sb.append(',');
            }
            sb.append(digits.charAt(i));
        }
        return sb.toString();
    }

    // ---- strftime

    private static final String[] DAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    private static final String[] MONTHS = {"January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December"};

    /// C-locale `strftime` of a naive local time, as Python's `datetime.now().strftime` on Linux (glibc), including
    /// the `-` (no padding) flag; `%z` and `%Z` are empty for a naive time. Unknown directives stay as written.
    static String strftime(ZonedDateTime t, String fmt) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%' || i + 1 >= fmt.length()) {
                sb.append(c);
                continue;
            }
            int start = i;
            char flag = 0;
            char d = fmt.charAt(++i);
            if ((d == '-' || d == '_' || d == '0') && i + 1 < fmt.length()) {
                flag = d;
                d = fmt.charAt(++i);
            }
            String day = DAYS[t.getDayOfWeek().getValue() - 1];
            String month = MONTHS[t.getMonthValue() - 1];
            int hour12 = t.getHour() % 12 == 0 ? 12 : t.getHour() % 12;
            String out = switch (d) {
                case 'a' -> day.substring(0, 3);
                case 'A' -> day;
                case 'b', 'h' -> month.substring(0, 3);
                case 'B' -> month;
                case 'c' -> strftime(t, "%a %b %e %H:%M:%S %Y");
                case 'C' -> num(t.getYear() / 100, 2, flag);
                case 'd' -> num(t.getDayOfMonth(), 2, flag);
                case 'D' -> strftime(t, "%m/%d/%y");
                case 'e' -> num(t.getDayOfMonth(), 2, flag == 0 ? '_' : flag);
                case 'F' -> strftime(t, "%Y-%m-%d");
                case 'f' -> num(t.getNano() / 1000, 6, flag);
                case 'G' -> Integer.toString(t.get(IsoFields.WEEK_BASED_YEAR));
                case 'g' -> num(t.get(IsoFields.WEEK_BASED_YEAR) % 100, 2, flag);
                case 'H' -> num(t.getHour(), 2, flag);
                case 'I' -> num(hour12, 2, flag);
                case 'j' -> num(t.getDayOfYear(), 3, flag);
                case 'k' -> num(t.getHour(), 2, flag == 0 ? '_' : flag);
                case 'l' -> num(hour12, 2, flag == 0 ? '_' : flag);
                case 'm' -> num(t.getMonthValue(), 2, flag);
                case 'M' -> num(t.getMinute(), 2, flag);
                case 'n' -> "\n";
                case 'p' -> t.getHour() < 12 ? "AM" : "PM";
                case 'P' -> t.getHour() < 12 ? "am" : "pm";
                case 'r' -> strftime(t, "%I:%M:%S %p");
                case 'R' -> strftime(t, "%H:%M");
                case 's' -> Long.toString(t.toEpochSecond());
                case 'S' -> num(t.getSecond(), 2, flag);
                case 't' -> "\t";
                case 'T', 'X' -> strftime(t, "%H:%M:%S");
                case 'u' -> Integer.toString(t.getDayOfWeek().getValue());
                case 'U' -> num((t.getDayOfYear() + 6 - t.getDayOfWeek().getValue() % 7) / 7, 2, flag);
                case 'V' -> num(t.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR), 2, flag);
                case 'w' -> Integer.toString(t.getDayOfWeek().getValue() % 7);
                case 'W' -> num((t.getDayOfYear() + 6 - (t.getDayOfWeek().getValue() + 6) % 7) / 7, 2, flag);
                case 'x' -> strftime(t, "%m/%d/%y");
                case 'y' -> num(t.getYear() % 100, 2, flag);
                case 'Y' -> Integer.toString(t.get(ChronoField.YEAR));
                case 'z', 'Z' -> "";
                case '%' -> "%";
                default -> fmt.substring(start, i + 1);
            };
            sb.append(out);
        }
        return sb.toString();
    }

    private static String num(int v, int width, char flag) {
        String s = Integer.toString(v);
        if (flag == '-' || s.length() >= width) {
            return s;
        }
        return (flag == '_' ? " " : "0").repeat(width - s.length()) + s;
    }

    // ---- filter helpers

    /// Jinja2's `make_attrgetter`: `"a.b.0"` looks up items through the dots; `default` replaces an undefined.
    private static java.util.function.Function<Object, Object> attrGetter(Object attribute, Object dflt, boolean lower) {
        return item -> {
            Object v = item;
            if (attribute != null && attribute != MISSING) {
                List<Object> parts = new ArrayList<>();
                if (Marked.isStr(attribute)) {
                    for (String p : Marked.plain(attribute).split("\\.", -1)) {
                        parts.add(!p.isEmpty() && p.chars().allMatch(Character::isDigit) ? (Object) Long.parseLong(p) : p);
                    }
                } else {
                    parts.add(attribute);
                }
                for (Object p : parts) {
                    v = getitem(v, p);
                }
                if (dflt != null && dflt != MISSING && v instanceof Undefined) {
                    v = dflt;
                }
            }
            // a lowered value is only a sort or comparison key, never output: its marks are not needed
            return lower && Marked.isStr(v) ? Marked.plain(v).toLowerCase(Locale.ROOT) : v;
        };
    }

    /// `select`/`reject` (by test on the item) and `selectattr`/`rejectattr` (by test on an attribute).
    private static Object selectOrReject(Renderer r, Object value, List<Object> args, boolean byAttr, boolean keep) {
        return new Py.Generator("generator", () -> select(r, value, args, byAttr, keep));
    }

    private static List<Object> select(Renderer r, Object value, List<Object> args, boolean byAttr, boolean keep) {
        int off = 0;
        java.util.function.Function<Object, Object> get = x -> x;
        if (byAttr) {
            if (args.isEmpty()) {
                throw Py.fail("missing parameter for attribute name");
            }
            get = attrGetter(args.getFirst(), null, false);
            off = 1;
        }
        String testName = args.size() > off ? strArg("select", args.get(off)) : null;
        List<Object> testArgs = args.size() > off + 1 ? args.subList(off + 1, args.size()) : List.of();
        List<Object> out = new ArrayList<>();
        if (!Py.truthy(value)) {
            return out;     // as `map`: a falsy value selects nothing
        }
        for (Object item : Py.iterate(value)) {
            Object v = get.apply(item);
            boolean ok = testName == null ? Py.truthy(v) : test(r, testName, v, testArgs, Map.of());
            if (ok == keep) {
                out.add(item);
            }
        }
        return out;
    }

    /// `map('filter', args...)` or `map(attribute='a.b', default=x)` over the items.
    private static List<Object> map(Renderer r, Object v, List<Object> a, Map<String, Object> k) {
        List<Object> out = new ArrayList<>();
        if (!Py.truthy(v)) {
            return out;     // Jinja2 maps over `value` only `if value`, so 0, None or False give nothing
        }
        if (a.isEmpty()) {
            Map<String, Object> rest = new LinkedHashMap<>(k);
            Object attribute = rest.remove("attribute");
            Object d = rest.containsKey("default") ? rest.remove("default") : null;
            if (!rest.isEmpty()) {
                throw Py.fail("Unexpected keyword argument '" + rest.keySet().iterator().next() + "'");
            }
            var get = attrGetter(attribute, d, false);
            for (Object item : Py.iterate(v)) {
                out.add(get.apply(item));
            }
            return out;
        }
        String name = strArg("map", a.getFirst());
        for (Object item : Py.iterate(v)) {
            out.add(filter(r, name, item, a.subList(1, a.size()), k));
        }
        return out;
    }

    private static Object minMax(Object value, Object[] p, boolean max) {
        List<Object> items = Py.iterate(value);
        if (items.isEmpty()) {
            return new Undefined("No aggregated item, sequence was empty.");
        }
        var key = attrGetter(p[1], null, !Py.truthy(or(p[0], false)));
        Object best = items.getFirst();
        Object bestKey = key.apply(best);
        for (Object item : items.subList(1, items.size())) {
            Object k = key.apply(item);
            int c = Py.compare(k, bestKey, max ? ">" : "<");
            if (max ? c > 0 : c < 0) {
                best = item;
                bestKey = k;
            }
        }
        return best;
    }

    /// Jinja2's `int` filter: `int(value, base)` for strings, `int(value)` otherwise, then `int(float(value))`,
    /// then the default. The base only matters for strings.
    private static Object toInt(Object v, Object dflt, Object base) {
        if (Marked.isStr(v)) {
            String t = Py.strip(Marked.plain(v), null).replace("_", "");
            try {
                if (Py.isInt(base) && Py.toLong(base) >= 2 && Py.toLong(base) <= 36) {
                    return Long.parseLong(t.startsWith("+") ? t.substring(1) : t, (int) Py.toLong(base));
                }
            } catch (NumberFormatException e) {
                // Jinja2 then tries int(float(value))
            }
        } else if (Py.isInt(v)) {
            return Py.toLong(v);
        }
        Object f = toFloat(v, MISSING);
        if (f instanceof Double d && !d.isNaN() && !d.isInfinite()) {
            return (long) (double) d;
        }
        return dflt;
    }

    private static Object toFloat(Object v, Object dflt) {
        if (Py.isNumber(v)) {
            return Py.toDouble(v);
        }
        if (Marked.isStr(v)) {
            String t = Py.strip(Marked.plain(v), null).replace("_", "").toLowerCase(Locale.ROOT);
            if (t.matches("[+-]?(inf|infinity|nan)")) {
                return t.contains("nan") ? Double.NaN : t.startsWith("-") ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
            }
            if (t.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)(e[+-]?\\d+)?")) {
                return Double.parseDouble(t);
            }
        }
        return dflt;
    }

    /// Jinja2's `indent` of a [String] or [Marked]; the lines keep their marks, the indentation brings its own.
    private static Object indent(Object s, Object widthArg, boolean first, boolean blank) {
        Object indention = Marked.isStr(widthArg) ? widthArg
                : " ".repeat((int) Math.max(0, Math.min(intArg("indent", widthArg), Py.MAX_CHARS)));
        List<Object> lines = splitlines(Marked.concat(s, "\n"), false);
        Marked.Builder sb = new Marked.Builder();
        if (first) {
            sb.appendText(indention);
        }
        if (blank) {
            for (int i = 0; i < lines.size(); i++) {
                if (i > 0) {
                    sb.append("\n").appendText(indention);
                }
                sb.appendText(lines.get(i));
                Py.checkChars(sb.length());
            }
        } else {
            sb.appendText(lines.isEmpty() ? "" : lines.getFirst());
            for (int i = 1; i < lines.size(); i++) {
                sb.append("\n");
                if (!Marked.plain(lines.get(i)).isEmpty()) {
                    sb.appendText(indention);
                }
                sb.appendText(lines.get(i));
                Py.checkChars(sb.length());
            }
        }
        return sb.build();
    }

    /// Jinja2's `title` filter: capitalizes each word, words starting after `-`, whitespace or `( { [ <`.
    private static String jinjaTitle(String s) {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (i < s.length()) {
            int start = i;
            boolean sep = isTitleSep(s.charAt(i));
            while (i < s.length() && isTitleSep(s.charAt(i)) == sep) {
                i++;
            }
            String part = s.substring(start, i);
            sb.append(sep ? part : titleCase(part.codePointAt(0)) + part.substring(Character.charCount(part.codePointAt(0))).toLowerCase(Locale.ROOT));
        }
        return sb.toString();
    }

    private static boolean isTitleSep(char c) {
        return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || Py.isSpace(c);
    }

    /// HTML escaping; an escaped request character stays marked.
    private static Object escapeHtml(Object str) {
        String s = Marked.plain(str);
        Marked.Builder sb = new Marked.Builder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String out = switch (c) {
                case '&' -> "&amp;";
                case '<' -> "&lt;";
                case '>' -> "&gt;";
                case '"' -> "&#34;";
                case '\'' -> "&#39;";
                default -> String.valueOf(c);
            };
            sb.append(out, str instanceof Marked m && m.marked(i));
        }
        Py.checkChars(sb.length());
        return sb.build();
    }

    private static Object round(Object value, Object[] p) {
        Py.defined(value);
        if (!Py.isNumber(value)) {
            throw Py.fail("type " + Py.typeName(value) + " doesn't define __round__ method");
        }
        long precision = p[0] == MISSING ? 0 : intArg("round", p[0]);
        String method = p[1] == MISSING ? "common" : strArg("round", p[1]);
        if (!Set.of("common", "ceil", "floor").contains(method)) {
            throw Py.fail("method must be common, ceil or floor");
        }
        if (method.equals("common")) {
            if (Py.isInt(value)) {
                return Py.toLong(value);     // Python's round(int, n) keeps an int
            }
            double d = Py.toDouble(value);
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                return d;
            }
            return new BigDecimal(d).setScale((int) Math.max(-400, Math.min(400, precision)), RoundingMode.HALF_EVEN).doubleValue();
        }
        double scale = Math.pow(10, precision);
        double x = Py.toDouble(value) * scale;
        return (method.equals("ceil") ? Math.ceil(x) : Math.floor(x)) / scale;
    }

    /// Jinja2's `sort`: the key is the list of the comma-separated attributes (`"role,name"`), so equal keys
    /// are never compared further.
    private static List<Object> sorted(Object value, Object[] p) {
        boolean reverse = Py.truthy(or(p[0], false));
        boolean lower = !Py.truthy(or(p[1], false));
        Object attribute = or(p[2], null);
        List<java.util.function.Function<Object, Object>> keys = new ArrayList<>();
        if (Marked.isStr(attribute)) {
            for (String part : Marked.plain(attribute).split(",", -1)) {
                keys.add(attrGetter(part, null, lower));
            }
        } else {
            keys.add(attrGetter(attribute, null, lower));
        }
        List<Object> items = new ArrayList<>(Py.iterate(value));
        List<Object[]> keyed = new ArrayList<>();
        for (Object item : items) {
            List<Object> key = new ArrayList<>(keys.size());
            keys.forEach(k -> key.add(k.apply(item)));
            keyed.add(new Object[] {key, item});
        }
        Comparator<Object[]> cmp = (a, b) -> Py.compare(a[0], b[0], "<");
        keyed.sort(reverse ? cmp.reversed() : cmp);
        List<Object> out = new ArrayList<>();
        keyed.forEach(k -> out.add(k[1]));
        return out;
    }

    /// A hashable identity for `unique`: Python treats 1, 1.0 and True as one key.
    private static Object hashKey(Object v) {
        if (!Py.hashable(v)) {
            throw Py.fail("unhashable type: '" + Py.typeName(v) + "'");
        }
        if (Py.isNumber(v)) {
            double d = Py.toDouble(v);
            return d == Math.rint(d) && !Double.isInfinite(d) ? (Object) (long) d : (Object) d;
        }
        return Marked.isStr(v) ? Marked.plain(v) : v;
    }

    static {
        Map<String, Filter> f = FILTERS;
        f.put("abs", (r, v, a, k) -> {
            bind("abs", a, k);
            Py.defined(v);
            if (Py.isInt(v)) {
                return Math.abs(Py.toLong(v));
            }
            if (v instanceof Double d) {
                return Math.abs(d);
            }
            throw Py.fail("bad operand type for abs(): '" + Py.typeName(v) + "'");
        });
        f.put("attr", (r, v, a, k) -> {
            String name = strArg("attr", required("attr", bind("attr", a, k, "name")[0], "name"));
            Py.defined(v);
            Object x = attribute(v, name);
            return x != MISSING ? x : noAttribute(v, name);
        });
        f.put("capitalize", (r, v, a, k) -> {
            bind("capitalize", a, k);
            return Marked.map(Py.text(v), Builtins::capitalize);
        });
        f.put("center", (r, v, a, k) -> {
            Object[] p = bind("center", a, k, "width");
            return pad(Py.text(v), p[0] == MISSING ? 80 : intArg("center", p[0]), " ", '^');
        });
        Filter length = (r, v, a, k) -> {
            bind("length", a, k);
            return Py.len(v);
        };
        f.put("length", length);
        f.put("count", length);
        Filter dflt = (r, v, a, k) -> {
            Object[] p = bind("default", a, k, "default_value", "boolean");
            boolean useFalsy = Py.truthy(or(p[1], false));
            return v instanceof Undefined || (useFalsy && !Py.truthy(v)) ? or(p[0], "") : v;
        };
        f.put("default", dflt);
        f.put("d", dflt);
        f.put("dictsort", (r, v, a, k) -> {
            Object[] p = bind("dictsort", a, k, "case_sensitive", "by", "reverse");
            Py.defined(v);
            if (!(v instanceof Map<?, ?> m)) {
                throw Py.fail("dictsort expects a mapping, not " + Py.typeName(v));
            }
            String by = strArg("dictsort", or(p[1], "key"));
            if (!by.equals("key") && !by.equals("value")) {
                throw Py.fail("You can only sort by either \"key\" or \"value\"");
            }
            int pos = by.equals("key") ? 0 : 1;
            return sorted(items(m), new Object[] {or(p[2], false), or(p[0], false), (long) pos});
        });
        Filter escape = (r, v, a, k) -> {
            bind("escape", a, k);
            return escapeHtml(Py.text(v));
        };
        f.put("escape", escape);
        f.put("e", escape);
        f.put("forceescape", escape);
        f.put("first", (r, v, a, k) -> {
            bind("first", a, k);
            Object first = v instanceof Py.Generator g ? g.take() : Py.iterate(v).stream().findFirst().orElse(MISSING);
            return first == MISSING ? new Undefined("No first item, sequence was empty.") : first;
        });
        f.put("last", (r, v, a, k) -> {
            bind("last", a, k);
            List<Object> items = Py.iterate(v);
            return items.isEmpty() ? new Undefined("No last item, sequence was empty.") : items.getLast();
        });
        f.put("float", (r, v, a, k) -> toFloat(Py.defined(v), or(bind("float", a, k, "default")[0], 0.0)));
        f.put("int", (r, v, a, k) -> {
            Object[] p = bind("int", a, k, "default", "base");
            Py.defined(v);
            return toInt(v, or(p[0], 0L), or(p[1], 10L));
        });
        f.put("format", (r, v, a, k) -> {
            if (!a.isEmpty() && !k.isEmpty()) {
                throw Py.fail("can't handle positional and keyword arguments at the same time");
            }
            return percentFormat(formatString(Py.text(v), "the format filter"), k.isEmpty() ? new Tuple(a) : new LinkedHashMap<Object, Object>(k));
        });
        f.put("indent", (r, v, a, k) -> {
            Object[] p = bind("indent", a, k, "width", "first", "blank");
            Py.defined(v);
            if (!Marked.isStr(v)) {
                throw Py.fail("unsupported operand type(s) for +=: '" + Py.typeName(v) + "' and 'str'");
            }
            return indent(v, or(p[0], 4L), Py.truthy(or(p[1], false)), Py.truthy(or(p[2], false)));
        });
        f.put("items", (r, v, a, k) -> {
            bind("items", a, k);
            if (v instanceof Undefined) {
                return new ArrayList<>();
            }
            return new Py.Generator("generator", () -> {
                if (!(v instanceof Map<?, ?> m)) {
                    throw Py.fail("Can only get item pairs from a mapping.");
                }
                return items(m);
            });
        });
        f.put("join", (r, v, a, k) -> {
            Object[] p = bind("join", a, k, "d", "attribute");
            Object sep = Py.text(or(p[0], ""));
            var get = attrGetter(p[1], null, false);
            Marked.Builder sb = new Marked.Builder();
            boolean first = true;
            for (Object item : Py.iterate(v)) {
                if (!first) {
                    sb.appendText(sep);
                }
                first = false;
                sb.appendText(Py.text(get.apply(item)));
                Py.checkChars(sb.length());
            }
            return sb.build();
        });
        f.put("list", (r, v, a, k) -> {
            bind("list", a, k);
            return new ArrayList<>(Py.iterate(v));
        });
        f.put("lower", (r, v, a, k) -> {
            bind("lower", a, k);
            return Marked.map(Py.text(v), x -> x.toLowerCase(Locale.ROOT));
        });
        f.put("upper", (r, v, a, k) -> {
            bind("upper", a, k);
            return Marked.map(Py.text(v), x -> x.toUpperCase(Locale.ROOT));
        });
        f.put("map", (r, v, a, k) -> {
            if (a.isEmpty() && !k.containsKey("attribute")) {
                throw Py.fail("map requires a filter argument");
            }
            return new Py.Generator("generator", () -> map(r, v, a, k));
        });
        f.put("max", (r, v, a, k) -> minMax(v, bind("max", a, k, "case_sensitive", "attribute"), true));
        f.put("min", (r, v, a, k) -> minMax(v, bind("min", a, k, "case_sensitive", "attribute"), false));
        f.put("select", (r, v, a, k) -> selectOrReject(r, v, a, false, true));
        f.put("reject", (r, v, a, k) -> selectOrReject(r, v, a, false, false));
        f.put("selectattr", (r, v, a, k) -> selectOrReject(r, v, a, true, true));
        f.put("rejectattr", (r, v, a, k) -> selectOrReject(r, v, a, true, false));
        f.put("replace", (r, v, a, k) -> {
            Object[] p = bind("replace", a, k, "old", "new", "count");
            return replace(Py.text(v), strArg("replace", Py.text(required("replace", p[0], "old"))),
                    Py.text(required("replace", p[1], "new")), p[2] == MISSING || p[2] == null ? -1 : intArg("replace", p[2]));
        });
        f.put("reverse", (r, v, a, k) -> {
            bind("reverse", a, k);
            if (v instanceof String s) {
                return new StringBuilder(s).reverse().toString();
            }
            if (v instanceof Marked s) {
                List<Object> chars = Py.chars(s);
                Marked.Builder sb = new Marked.Builder();
                for (int i = chars.size() - 1; i >= 0; i--) {
                    sb.appendText(chars.get(i));
                }
                return sb.build();
            }
            List<Object> out = new ArrayList<>(Py.iterate(v));
            java.util.Collections.reverse(out);
            // Python's reversed() of a list is an iterator; what it cannot reverse, Jinja2 lists and reverses
            return v instanceof List<?> || v instanceof Map<?, ?> ? new Py.Generator("list_reverseiterator", () -> out) : out;
        });
        f.put("round", (r, v, a, k) -> round(v, bind("round", a, k, "precision", "method")));
        f.put("safe", (r, v, a, k) -> {
            bind("safe", a, k);
            return v;
        });
        f.put("sort", (r, v, a, k) -> sorted(v, bind("sort", a, k, "reverse", "case_sensitive", "attribute")));
        f.put("string", (r, v, a, k) -> {
            bind("string", a, k);
            return Py.text(v);
        });
        f.put("sum", (r, v, a, k) -> {
            Object[] p = bind("sum", a, k, "attribute", "start");
            var get = attrGetter(p[0], null, false);
            Object total = or(p[1], 0L);
            for (Object item : Py.iterate(v)) {
                total = Py.add(total, get.apply(item));
            }
            return total;
        });
        f.put("title", (r, v, a, k) -> {
            bind("title", a, k);
            return Marked.map(Py.text(v), Builtins::jinjaTitle);
        });
        f.put("tojson", (r, v, a, k) -> {
            // transformers replaces Jinja2's HTML-escaping tojson with plain json.dumps(ensure_ascii=False)
            Object[] p = bind("tojson", a, k, "ensure_ascii", "indent", "separators", "sort_keys");
            Object ind = or(p[1], null);
            String indent = ind == null ? null : ind instanceof String s ? s
                    : " ".repeat((int) Math.max(0, Math.min(intArg("tojson", ind), 1000)));
            String itemSep = indent == null ? ", " : ",";
            String keySep = ": ";
            Object seps = or(p[2], null);
            if (seps != null) {
                if (!(seps instanceof List<?> l) || l.size() != 2 || !(l.get(0) instanceof String) || !(l.get(1) instanceof String)) {
                    throw Py.fail("tojson separators must be a pair of strings");
                }
                itemSep = (String) l.get(0);
                keySep = (String) l.get(1);
            }
            return Py.json(v, Py.truthy(or(p[0], false)), indent, itemSep, keySep, Py.truthy(or(p[3], false)));
        });
        f.put("trim", (r, v, a, k) -> {
            String chars = optStr("trim", bind("trim", a, k, "chars")[0]);
            return Py.strip(Py.text(v), chars);
        });
        f.put("truncate", (r, v, a, k) -> {
            Object[] p = bind("truncate", a, k, "length", "killwords", "end", "leeway");
            Object self = Py.text(v);
            String s = Marked.plain(self);
            long len = p[0] == MISSING ? 255 : intArg("truncate", p[0]);
            Object end = p[2] == MISSING ? "..." : Py.text(p[2]);
            int endLength = Marked.plain(end).length();
            long leeway = p[3] == MISSING || p[3] == null ? 5 : intArg("truncate", p[3]);
            int n = s.codePointCount(0, s.length());
            if (len < endLength || leeway < 0) {
                throw Py.fail("expected length >= " + endLength + ", got " + len);
            }
            if (n <= len + leeway) {
                return self;
            }
            int cut = s.offsetByCodePoints(0, (int) (len - endLength));
            if (Py.truthy(or(p[1], false))) {
                return Marked.concat(Marked.sub(self, 0, cut), end);
            }
            int space = s.substring(0, cut).lastIndexOf(' ');
            return Marked.concat(Marked.sub(self, 0, space >= 0 ? space : cut), end);
        });
        f.put("unique", (r, v, a, k) -> {
            Object[] p = bind("unique", a, k, "case_sensitive", "attribute");
            var key = attrGetter(p[1], null, !Py.truthy(or(p[0], false)));
            return new Py.Generator("generator", () -> {
                Set<Object> seen = new HashSet<>();
                List<Object> out = new ArrayList<>();
                for (Object item : Py.iterate(v)) {
                    if (seen.add(hashKey(key.apply(item)))) {
                        out.add(item);
                    }
                }
                return out;
            });
        });
        f.put("wordcount", (r, v, a, k) -> {
            bind("wordcount", a, k);
            String s = Marked.plain(Py.text(v));
            long n = 0;
            boolean in = false;
            for (int i = 0; i < s.length(); ) {
                int c = s.codePointAt(i);
                i += Character.charCount(c);
                boolean word = Character.isLetterOrDigit(c) || c == '_';
                if (word && !in) {
                    n++;
                }
                in = word;
            }
            return n;
        });

        Map<String, Test> t = TESTS;
        t.put("defined", (r, v, a) -> !(v instanceof Undefined));
        t.put("undefined", (r, v, a) -> v instanceof Undefined);
        t.put("none", (r, v, a) -> v == null);
        t.put("boolean", (r, v, a) -> v instanceof Boolean);
        t.put("true", (r, v, a) -> Boolean.TRUE.equals(v));
        t.put("false", (r, v, a) -> Boolean.FALSE.equals(v));
        t.put("integer", (r, v, a) -> v instanceof Long);
        t.put("float", (r, v, a) -> v instanceof Double);
        t.put("number", (r, v, a) -> Py.isNumber(v));
        t.put("string", (r, v, a) -> Marked.isStr(v));
        t.put("mapping", (r, v, a) -> v instanceof Map<?, ?>);
        // Jinja2's default Undefined is iterable and a sequence (it defines __iter__, __len__ and __getitem__)
        t.put("iterable", (r, v, a) -> v instanceof List<?> || v instanceof Map<?, ?> || Marked.isStr(v) || v instanceof Undefined
                || v instanceof Py.Generator);
        t.put("sequence", (r, v, a) -> v instanceof List<?> || v instanceof Map<?, ?> || Marked.isStr(v) || v instanceof Undefined);
        t.put("callable", (r, v, a) -> v instanceof Py.Callable || v instanceof Undefined);
        t.put("sameas", (r, v, a) -> {
            Object o = one("sameas", a);
            return v == o || (v == null && o == null) || (v instanceof Boolean && v.equals(o));
        });
        Test eq = (r, v, a) -> Py.eq(v, one("eq", a));
        Test ne = (r, v, a) -> !Py.eq(v, one("ne", a));
        Test lt = (r, v, a) -> Py.compare(v, one("lt", a), "<") < 0;
        Test le = (r, v, a) -> Py.compare(v, one("le", a), "<=") <= 0;
        Test gt = (r, v, a) -> Py.compare(v, one("gt", a), ">") > 0;
        Test ge = (r, v, a) -> Py.compare(v, one("ge", a), ">=") >= 0;
        for (String n : List.of("eq", "equalto", "==")) {
            t.put(n, eq);
        }
        for (String n : List.of("ne", "!=")) {
            t.put(n, ne);
        }
        for (String n : List.of("lt", "lessthan", "<")) {
            t.put(n, lt);
        }
        for (String n : List.of("le", "<=")) {
            t.put(n, le);
        }
        for (String n : List.of("gt", "greaterthan", ">")) {
            t.put(n, gt);
        }
        for (String n : List.of("ge", ">=")) {
            t.put(n, ge);
        }
        t.put("in", (r, v, a) -> Py.contains(one("in", a), v));
        t.put("even", (r, v, a) -> Py.eq(Py.mod(v, 2L), 0L));
        t.put("odd", (r, v, a) -> Py.eq(Py.mod(v, 2L), 1L));
        t.put("divisibleby", (r, v, a) -> Py.eq(Py.mod(v, one("divisibleby", a)), 0L));
        t.put("lower", (r, v, a) -> isLower(Marked.plain(Py.text(v))));
        t.put("upper", (r, v, a) -> isUpper(Marked.plain(Py.text(v))));
        t.put("filter", (r, v, a) -> Marked.isStr(v) && hasFilter(Marked.plain(v)));
        t.put("test", (r, v, a) -> Marked.isStr(v) && TESTS.containsKey(Marked.plain(v)));
        t.put("escaped", (r, v, a) -> false);

        Map<String, Object> g = GLOBALS;
        g.put("range", new Builtin("range", (r, a, k) -> {
            bind("range", a, k, "start", "stop", "step");
            if (a.isEmpty()) {
                throw Py.fail("range expected at least 1 argument, got 0");
            }
            long start = a.size() == 1 ? 0 : intArg("range", a.get(0));
            long stop = intArg("range", a.size() == 1 ? a.get(0) : a.get(1));
            long step = a.size() == 3 ? intArg("range", a.get(2)) : 1;
            if (step == 0) {
                throw Py.fail("range() arg 3 must not be zero");
            }
            double count = Math.max(0, Math.ceil(((double) stop - start) / step));
            if (count > Py.MAX_RANGE) {
                throw Py.fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + Py.MAX_RANGE + ").");
            }
            return new Py.Range(start, stop, step);
        }));
        g.put("dict", new Builtin("dict", (r, a, k) -> {
            if (a.size() > 1) {
                throw Py.fail("dict expected at most 1 argument, got " + a.size());
            }
            Map<Object, Object> out = new LinkedHashMap<>();
            if (!a.isEmpty()) {
                fillDict(out, a.getFirst());
            }
            out.putAll(k);
            return out;
        }));
        g.put("namespace", new Builtin("namespace", (r, a, k) -> {
            if (a.size() > 1) {
                throw Py.fail("namespace expected at most 1 argument, got " + a.size());
            }
            Map<Object, Object> init = new LinkedHashMap<>();
            if (!a.isEmpty()) {
                fillDict(init, a.getFirst());
            }
            init.putAll(k);
            Py.Namespace ns = new Py.Namespace();
            init.forEach((key, value) -> ns.attrs.put(Py.str(key), value));
            return ns;
        }));
        g.put("joiner", new Builtin("joiner", (r, a, k) -> {
            Object sep = Py.text(or(bind("joiner", a, k, "sep")[0], ", "));
            boolean[] used = {false};
            return new Builtin("joiner", (r2, a2, k2) -> {
                if (!used[0]) {
                    used[0] = true;
                    return "";
                }
                return sep;
            });
        }));
        g.put("raise_exception", new Builtin("raise_exception", (r, a, k) -> {
            Object msg = required("raise_exception", bind("raise_exception", a, k, "message")[0], "message");
            // an error message, not prompt text: request text in it needs no mark
            throw new Py.Failure(Marked.plain(Py.text(msg)), true);
        }));
        g.put("strftime_now", new Builtin("strftime_now", (r, a, k) -> {
            String fmt = strArg("strftime_now", required("strftime_now", bind("strftime_now", a, k, "format")[0], "format"));
            return strftime(ZonedDateTime.now(r.clock), fmt);
        }));
    }

    private static Object one(String test, List<Object> args) {
        if (args.size() != 1) {
            throw Py.fail("test '" + test + "' takes exactly one argument (" + args.size() + " given)");
        }
        return args.getFirst();
    }

    private static void fillDict(Map<Object, Object> out, Object init) {
        Py.defined(init);
        if (init instanceof Map<?, ?> m) {
            out.putAll(m);
            return;
        }
        for (Object pair : Py.iterate(init)) {
            List<Object> kv = Py.iterate(pair);
            if (kv.size() != 2) {
                throw Py.fail("dictionary update sequence element has length " + kv.size() + "; 2 is required");
            }
            out.put(hashable(kv.get(0)), kv.get(1));
        }
    }

    private static Object hashable(Object k) {
        if (!Py.hashable(k)) {
            throw Py.fail("unhashable type: '" + Py.typeName(k) + "'");
        }
        return k;
    }
}
