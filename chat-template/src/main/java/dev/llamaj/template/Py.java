package dev.llamaj.template;

import java.math.BigDecimal;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.RandomAccess;

/// Python's object model as chat templates observe it, on plain Java values: `None` is `null`, `bool` is
/// [Boolean], `int` is [Long], `float` is [Double], `str` is [String], `list` is [List] ([Tuple] for tuples),
/// `dict` is a [Map] keeping insertion order; a `str` holding request text is a [Marked]. Templates see Python semantics: truthiness (empty is false),
/// `str()` and `repr()` formatting (`True`, `None`, `['a', 1]`, shortest round-trip floats), `==` across int
/// and float, floor division and modulo, strings indexed by code point, and `json.dumps` output.
///
/// Failures are the unchecked [Failure]; [ChatTemplate] turns them into [TemplateException].
final class Py {
    private Py() {}

    /// Jinja2's sandbox refuses ranges longer than this.
    static final int MAX_RANGE = 100_000;
    /// No string (the output included) may be longer, nor any list.
    static final int MAX_CHARS = 4_000_000;
    static final int MAX_ITEMS = 1_000_000;

    /// A render or parse failure. `raised` marks a template's own `raise_exception(message)`, reported verbatim.
    static final class Failure extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final boolean raised;

        Failure(String message, boolean raised) {
            super(message, null, false, false);
            this.raised = raised;
        }
    }

    static Failure fail(String message) {
        return new Failure(message, false);
    }

    /// Jinja2's default `Undefined`: falsy, prints as nothing, iterates as empty, equals only another
    /// undefined; anything else (arithmetic, attributes, calls) fails with `message`.
    record Undefined(String message) {}

    static final Object MISSING = new Object();

    /// `namespace(...)`: the one mutable object templates have (`{% set ns.x = 1 %}`).
    static final class Namespace {
        final Map<String, Object> attrs = new LinkedHashMap<>();
    }

    /// A tuple: a list everywhere a list is accepted, but printed `(1, 2)` and unequal to a list.
    static final class Tuple extends AbstractList<Object> implements RandomAccess {
        private final Object[] items;

        Tuple(Collection<?> items) {
            this.items = items.toArray();
        }

        Tuple(Object... items) {
            this.items = items.clone();
        }

        @Override
        public Object get(int index) {
            return items[index];
        }

        @Override
        public int size() {
            return items.length;
        }
    }

    /// `range(start, stop, step)`: a list of its numbers (the sandbox keeps it short) that prints as a range.
    static final class Range extends AbstractList<Object> implements RandomAccess {
        final long start;
        final long stop;
        final long step;
        private final int size;

        Range(long start, long stop, long step) {
            this.start = start;
            this.stop = stop;
            this.step = step;
            this.size = (int) Math.max(0, Math.ceil(((double) stop - start) / step));
        }

        @Override
        public Object get(int index) {
            if (index < 0 || index >= size) {
                throw new IndexOutOfBoundsException(index);
            }
            return start + index * step;
        }

        @Override
        public int size() {
            return size;
        }
    }

    /// A dict view (`d.items()`, `d.keys()`, `d.values()`): a list that prints as `dict_items([...])`.
    static final class View extends AbstractList<Object> implements RandomAccess {
        final String name;
        private final List<Object> items;

        View(String name, List<Object> items) {
            this.name = name;
            this.items = items;
        }

        @Override
        public Object get(int index) {
            return items.get(index);
        }

        @Override
        public int size() {
            return items.size();
        }
    }

    /// A Python generator (what Jinja2's `map`, `select`, `unique`... return): always true, without a length,
    /// and consumed by iteration, so a second loop over it sees nothing.
    /// Its items are computed when first consumed, so (as in Python) an error surfaces only then.
    static final class Generator {
        final String name;
        private java.util.function.Supplier<List<Object>> source;
        private List<Object> items;
        private int next;

        Generator(String name, java.util.function.Supplier<List<Object>> source) {
            this.name = name;
            this.source = source;
        }

        private List<Object> items() {
            if (items == null) {
                items = source.get();
                source = null;
            }
            return items;
        }

        /// The items not consumed yet; consumes them.
        List<Object> drain() {
            List<Object> all = items();
            List<Object> rest = all.subList(next, all.size());
            next = all.size();
            return rest;
        }

        /// The next item, or MISSING when exhausted.
        Object take() {
            List<Object> all = items();
            return next < all.size() ? all.get(next++) : MISSING;
        }
    }

    /// A Python slice (`[a:b:c]`), its parts `Long` or null.
    record Slice(Object start, Object stop, Object step) {}

    /// Something templates can call: a macro, a global function, a bound method.
    interface Callable {
        Object call(Renderer r, List<Object> args, Map<String, Object> kwargs);
    }

    /// A built-in function or bound method; `name` is what `str()` shows.
    record Builtin(String name, Callable fn) implements Callable {
        @Override
        public Object call(Renderer r, List<Object> args, Map<String, Object> kwargs) {
            return fn.call(r, args, kwargs);
        }
    }

    // ---- type predicates and names

    static boolean isInt(Object v) {
        return v instanceof Long || v instanceof Boolean;
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static long toLong(Object v) {
        return v instanceof Boolean b ? (b ? 1 : 0) : (Long) v;
    }

    static double toDouble(Object v) {
        return v instanceof Double d ? d : (double) toLong(v);
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "NoneType";
            case Boolean b -> "bool";
            case Long l -> "int";
            case Double d -> "float";
            case String s -> "str";
            case Marked m -> "str";
            case Tuple t -> "tuple";
            case View w -> w.name;
            case Range g -> "range";
            case Generator g -> g.name;
            case List<?> l -> "list";
            case Map<?, ?> m -> "dict";
            case Undefined u -> "Undefined";
            case Namespace ns -> "Namespace";
            case Renderer.Loop l -> "LoopContext";
            case Renderer.Macro m -> "Macro";
            case Builtin b -> "builtin_function_or_method";
            default -> v.getClass().getSimpleName();
        };
    }

    /// Jinja2's `object_type_repr`, used in its undefined messages: `dict object`, `None`.
    static String objectTypeRepr(Object v) {
        if (v == null) {
            return "None";
        }
        return switch (v) {
            case Namespace ns -> "jinja2.utils.Namespace object";
            case Renderer.Loop l -> "jinja2.runtime.LoopContext object";
            default -> typeName(v) + " object";
        };
    }

    /// Fails if `v` is undefined: the check Jinja2's `Undefined` makes in every operator.
    static Object defined(Object v) {
        if (v instanceof Undefined u) {
            throw fail(u.message());
        }
        return v;
    }

    // ---- truth, str, repr

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0.0;
            case String s -> !s.isEmpty();
            case Marked m -> m.length() > 0;
            case List<?> l -> !l.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            case Undefined u -> false;
            default -> true;
        };
    }

    /// `str(v)` where the result must be template text: refused if it would hold request text (use [#text]
    /// wherever the result can be request text).
    static String str(Object v) {
        if (text(v) instanceof String s) {
            return s;
        }
        throw Marked.refuse("request text where this interpreter only supports template text");
    }

    /// `str(v)` keeping marks: a [String] or a [Marked].
    static Object text(Object v) {
        return switch (v) {
            case String s -> s;
            case Marked m -> m;
            case Undefined u -> "";
            case null, default -> reprText(v);
        };
    }

    /// `repr(v)` as plain text, for error messages.
    static String repr(Object v) {
        return Marked.plain(reprText(v));
    }

    /// `repr(v)` keeping the marks of the request text in it (a list of messages printed whole).
    static Object reprText(Object v) {
        Marked.Builder sb = new Marked.Builder();
        repr(v, sb, 0);
        return sb.build();
    }

    private static void repr(Object v, Marked.Builder sb, int depth) {
        if (depth > 100 || sb.length() > MAX_CHARS) {
            throw fail("value too large or too deeply nested to print");
        }
        switch (v) {
            case null -> sb.append("None");
            case Boolean b -> sb.append(b ? "True" : "False");
            case Long l -> sb.append(l.toString());
            case Double d -> sb.append(floatRepr(d));
            case String s -> quote(s, sb);
            case Marked m -> quote(m, sb);
            case Tuple t -> {
                sb.append("(");
                for (int i = 0; i < t.size(); i++) {
                    sb.append(i == 0 ? "" : ", ");
                    repr(t.get(i), sb, depth + 1);
                }
                sb.append(t.size() == 1 ? ",)" : ")");
            }
            case Range g -> sb.append("range(" + g.start + ", " + g.stop + (g.step == 1 ? "" : ", " + g.step) + ")");
            case View w -> {
                sb.append(w.name + "(");
                repr(new ArrayList<>(w), sb, depth + 1);
                sb.append(")");
            }
            case List<?> l -> {
                sb.append("[");
                for (int i = 0; i < l.size(); i++) {
                    sb.append(i == 0 ? "" : ", ");
                    repr(l.get(i), sb, depth + 1);
                }
                sb.append("]");
            }
            case Map<?, ?> m -> {
                sb.append("{");
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    sb.append(first ? "" : ", ");
                    first = false;
                    repr(e.getKey(), sb, depth + 1);
                    sb.append(": ");
                    repr(e.getValue(), sb, depth + 1);
                }
                sb.append("}");
            }
            case Undefined u -> sb.append("Undefined");
            case Namespace ns -> {
                sb.append("<Namespace ");
                repr(ns.attrs, sb, depth + 1);
                sb.append(">");
            }
            case Renderer.Macro m -> sb.append("<Macro '" + m.def().name() + "'>");
            case Renderer.Loop l -> sb.append("<LoopContext " + (l.index0 + 1) + "/" + l.items.size() + ">");
            case Builtin b -> sb.append("<built-in method " + b.name() + ">");
            case Generator g -> sb.append("<" + g.name + " object>");
            default -> sb.append("<" + typeName(v) + ">");
        }
    }

    /// Python's `repr` of a string: single quotes unless it contains `'` and no `"`, escapes for the rest. What a
    /// request character becomes (itself or its escape) stays marked.
    private static void quote(Object str, Marked.Builder sb) {
        String s = Marked.plain(str);
        Marked m = str instanceof Marked x ? x : null;
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        sb.append(String.valueOf(q));
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            boolean marked = m != null && m.marked(i);
            i += Character.charCount(c);
            String out;
            if (c == q || c == '\\') {
                out = "\\" + Character.toString(c);
            } else if (c == '\n') {
                out = "\\n";
            } else if (c == '\r') {
                out = "\\r";
            } else if (c == '\t') {
                out = "\\t";
            } else if (!printable(c)) {
                String hex = Integer.toHexString(c);
                if (c <= 0xff) {
                    out = "\\x" + "0".repeat(2 - hex.length()) + hex;
                } else if (c <= 0xffff) {
                    out = "\\u" + "0".repeat(4 - hex.length()) + hex;
                } else {
                    out = "\\U" + "0".repeat(8 - hex.length()) + hex;
                }
            } else {
                out = Character.toString(c);
            }
            sb.append(out, marked);
        }
        sb.append(String.valueOf(q));
    }

    /// Python's `str.isprintable` for one code point: not a control, format, separator (but space), surrogate,
    /// private-use or unassigned character.
    private static boolean printable(int c) {
        if (c == ' ') {
            return true;
        }
        return switch (Character.getType(c)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE, Character.UNASSIGNED,
                 Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> false;
            default -> true;
        };
    }

    /// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for exponents -4..15.
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        // Double.toString gives the shortest round-trip digits (JDK 19+), as Python's repr does
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int decpt = digits.length() - bd.scale();
        StringBuilder sb = new StringBuilder(d < 0 ? "-" : "");
        if (decpt > -4 && decpt <= 16) {
            if (decpt <= 0) {
                sb.append("0.").append("0".repeat(-decpt)).append(digits);
            } else if (decpt >= digits.length()) {
                sb.append(digits).append("0".repeat(decpt - digits.length())).append(".0");
            } else {
                sb.append(digits, 0, decpt).append('.').append(digits, decpt, digits.length());
            }
        } else {
            int exp = decpt - 1;
            sb.append(digits.charAt(0));
            if (digits.length() > 1) {
                sb.append('.').append(digits, 1, digits.length());
            }
            sb.append('e').append(exp < 0 ? '-' : '+');
            int a = Math.abs(exp);
            sb.append(a < 10 ? "0" : "").append(a);
        }
        return sb.toString();
    }

    // ---- equality and order

    static boolean eq(Object a, Object b) {
        if (a == b) {
            return true;
        }
        if (a == null || b == null) {
            return false;
        }
        if (Marked.isStr(a) || Marked.isStr(b)) {
            return Marked.isStr(a) && Marked.isStr(b) && Marked.plain(a).equals(Marked.plain(b));
        }
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                return toLong(a) == toLong(b);
            }
            return toDouble(a) == toDouble(b);
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if ((x instanceof Tuple) != (y instanceof Tuple) || x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!eq(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : x.entrySet()) {
                Object other = dictGet(y, e.getKey());
                if (other == MISSING || !eq(e.getValue(), other)) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Undefined && b instanceof Undefined) {
            return true;
        }
        if (a instanceof Undefined) {
            return a.equals(b);
        }
        return false;
    }

    /// Python's `<` order (numbers, strings by code point, lists element-wise), -1/0/1.
    static int compare(Object a, Object b, String op) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                return Long.compare(toLong(a), toLong(b));
            }
            double x = toDouble(a);
            double y = toDouble(b);
            return x < y ? -1 : x > y ? 1 : 0;      // NaN compares as neither, like Python
        }
        if (Marked.isStr(a) && Marked.isStr(b)) {
            return compareStrings(Marked.plain(a), Marked.plain(b));
        }
        if (a instanceof List<?> x && b instanceof List<?> y && (x instanceof Tuple) == (y instanceof Tuple)) {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                if (!eq(x.get(i), y.get(i))) {
                    return compare(x.get(i), y.get(i), op);
                }
            }
            return Integer.compare(x.size(), y.size());
        }
        throw fail("'" + op + "' not supported between instances of '" + typeName(a) + "' and '" + typeName(b) + "'");
    }

    static int compareStrings(String x, String y) {
        int i = 0;
        int j = 0;
        while (i < x.length() && j < y.length()) {
            int c = x.codePointAt(i);
            int d = y.codePointAt(j);
            if (c != d) {
                return c < d ? -1 : 1;
            }
            i += Character.charCount(c);
            j += Character.charCount(d);
        }
        return Boolean.compare(i < x.length(), j < y.length());
    }

    // ---- containers

    /// Whether `v` can be a dict key: not a list or dict (a tuple can, if its items can).
    static boolean hashable(Object v) {
        if (v instanceof Tuple t) {
            return t.stream().allMatch(Py::hashable);
        }
        return !(v instanceof List<?> || v instanceof Map<?, ?> || v instanceof Namespace);
    }

    /// Looks `key` up the way a Python dict does (`1`, `1.0` and `True` are the same key); [#MISSING] if absent.
    static Object dictGet(Map<?, ?> m, Object key) {
        if (!hashable(key)) {
            throw fail("unhashable type: '" + typeName(key) + "'");
        }
        if (m.containsKey(key)) {
            return m.get(key);
        }
        // a key of request text is a Marked: a plain String finds it by its text
        if (key instanceof String s && m.containsKey(Marked.probe(s))) {
            return m.get(Marked.probe(s));
        }
        Object alt = null;
        if (key instanceof Boolean b) {
            alt = b ? 1L : 0L;
        } else if (key instanceof Double d && d == Math.rint(d) && !Double.isInfinite(d)) {
            alt = (long) (double) d;
        } else if (key instanceof Long l && (l == 0 || l == 1)) {
            alt = l == 1;
        }
        return alt != null && m.containsKey(alt) ? m.get(alt) : MISSING;
    }

    /// The items `for x in v` visits: a list's items, a dict's keys, a string's characters, nothing for undefined.
    static List<Object> iterate(Object v) {
        return switch (v) {
            case List<?> l -> {
                @SuppressWarnings("unchecked")
                List<Object> items = (List<Object>) l;
                yield items;
            }
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case String s -> chars(s);
            case Marked s -> chars(s);
            case Undefined u -> List.of();
            case Generator g -> g.drain();
            case null, default -> throw fail("'" + typeName(v) + "' object is not iterable");
        };
    }

    /// The characters (code points) of a string, each keeping its mark.
    static List<Object> chars(Object str) {
        String s = Marked.plain(str);
        int count = s.codePointCount(0, s.length());
        checkItems(count);
        List<Object> out = new ArrayList<>(count);
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            int next = i + Character.charCount(c);
            out.add(Marked.sub(str, i, next));
            i = next;
        }
        return out;
    }

    static long len(Object v) {
        return switch (v) {
            case String s -> s.codePointCount(0, s.length());
            case Marked m -> m.text.codePointCount(0, m.length());
            case List<?> l -> l.size();
            case Map<?, ?> m -> m.size();
            case Undefined u -> 0;
            case null, default -> throw fail("object of type '" + typeName(v) + "' has no len()");
        };
    }

    static boolean contains(Object container, Object item) {
        switch (container) {
            case String s -> {
                return containsText(s, item);
            }
            case Marked s -> {
                return containsText(s.text, item);
            }
            case List<?> l -> {
                for (Object o : l) {
                    if (eq(o, item)) {
                        return true;
                    }
                }
                return false;
            }
            case Map<?, ?> m -> {
                return dictGet(m, item) != MISSING;
            }
            case Undefined u -> {
                return false;
            }
            case Generator g -> {
                // consumes up to the match, as Python does
                for (Object o = g.take(); o != MISSING; o = g.take()) {
                    if (eq(o, item)) {
                        return true;
                    }
                }
                return false;
            }
            case null, default -> throw fail("argument of type '" + typeName(container) + "' is not iterable");
        }
    }

    private static boolean containsText(String s, Object item) {
        if (!Marked.isStr(item)) {
            throw fail("'in <string>' requires string as left operand, not " + typeName(item));
        }
        return s.contains(Marked.plain(item));
    }

    static void checkChars(long n) {
        if (n > MAX_CHARS) {
            throw fail("string longer than the limit of " + MAX_CHARS + " characters");
        }
    }

    static void checkItems(long n) {
        if (n > MAX_ITEMS) {
            throw fail("list longer than the limit of " + MAX_ITEMS + " items");
        }
    }

    /// `seq[slice]` for lists and strings, with Python's clamping and negative steps.
    static Object slice(Object seq, Slice s) {
        List<Object> items;
        boolean string = Marked.isStr(seq);
        if (string) {
            items = chars(seq);
        } else if (seq instanceof List<?> l) {
            @SuppressWarnings("unchecked")
            List<Object> li = (List<Object>) l;
            items = li;
        } else {
            throw fail("'" + typeName(seq) + "' object is not subscriptable");
        }
        long step = sliceIndex(s.step(), 1);
        if (step == 0) {
            throw fail("slice step cannot be zero");
        }
        long len = items.size();
        long start;
        long stop;
        if (step > 0) {
            start = clamp(sliceIndex(s.start(), 0), len, 0, len);
            stop = clamp(sliceIndex(s.stop(), len), len, 0, len);
        } else {
            start = clamp(sliceIndex(s.start(), len - 1), len, -1, len - 1);
            stop = clamp(sliceIndex(s.stop(), -len - 1), len, -1, len - 1);
        }
        List<Object> out = new ArrayList<>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
            out.add(items.get((int) i));
        }
        if (string) {
            Marked.Builder sb = new Marked.Builder();
            out.forEach(sb::appendText);
            return sb.build();
        }
        return seq instanceof Tuple ? new Tuple(out) : out;
    }

    private static long sliceIndex(Object v, long dflt) {
        if (v == null) {
            return dflt;
        }
        if (!isInt(v)) {
            throw fail("slice indices must be integers or None");
        }
        return toLong(v);
    }

    private static long clamp(long i, long len, long lo, long hi) {
        if (i < 0) {
            i += len;
        }
        return Math.max(lo, Math.min(hi, i));
    }

    // ---- arithmetic

    private static Failure operandError(String op, Object a, Object b) {
        return fail("unsupported operand type(s) for " + op + ": '" + typeName(a) + "' and '" + typeName(b) + "'");
    }

    private static Failure overflow() {
        return fail("integer overflow (integers are limited to 64 bits)");
    }

    static Object add(Object a, Object b) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                try {
                    return Math.addExact(toLong(a), toLong(b));
                } catch (ArithmeticException e) {
                    throw overflow();
                }
            }
            return toDouble(a) + toDouble(b);
        }
        if (Marked.isStr(a)) {
            if (!Marked.isStr(b)) {
                throw fail("can only concatenate str (not \"" + typeName(b) + "\") to str");
            }
            checkChars((long) Marked.plain(a).length() + Marked.plain(b).length());
            return Marked.concat(a, b);
        }
        if (a instanceof List<?> x) {
            if (!(b instanceof List<?> y) || (x instanceof Tuple) != (y instanceof Tuple)) {
                throw fail("can only concatenate " + typeName(a) + " (not \"" + typeName(b) + "\") to " + typeName(a));
            }
            checkItems((long) x.size() + y.size());
            List<Object> out = new ArrayList<>(x);
            out.addAll(y);
            return x instanceof Tuple ? new Tuple(out) : out;
        }
        throw operandError("+", a, b);
    }

    static Object sub(Object a, Object b) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                try {
                    return Math.subtractExact(toLong(a), toLong(b));
                } catch (ArithmeticException e) {
                    throw overflow();
                }
            }
            return toDouble(a) - toDouble(b);
        }
        throw operandError("-", a, b);
    }

    static Object mul(Object a, Object b) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                try {
                    return Math.multiplyExact(toLong(a), toLong(b));
                } catch (ArithmeticException e) {
                    throw overflow();
                }
            }
            return toDouble(a) * toDouble(b);
        }
        if (isInt(b) && (Marked.isStr(a) || a instanceof List<?>)) {
            return repeat(a, toLong(b));
        }
        if (isInt(a) && (Marked.isStr(b) || b instanceof List<?>)) {
            return repeat(b, toLong(a));
        }
        throw operandError("*", a, b);
    }

    private static Object repeat(Object seq, long times) {
        times = Math.max(0, times);
        if (seq instanceof String s) {
            checkChars(s.length() * Math.min(times, MAX_CHARS + 1L));
            return s.repeat((int) times);
        }
        if (seq instanceof Marked s) {
            checkChars(s.length() * Math.min(times, MAX_CHARS + 1L));
            Marked.Builder sb = new Marked.Builder();
            for (long i = 0; i < times; i++) {
                sb.appendText(s);
            }
            return sb.build();
        }
        List<?> l = (List<?>) seq;
        checkItems(l.size() * Math.min(times, MAX_ITEMS + 1L));
        List<Object> out = new ArrayList<>();
        for (long i = 0; i < times; i++) {
            out.addAll(l);
        }
        return seq instanceof Tuple ? new Tuple(out) : out;
    }

    static Object truediv(Object a, Object b) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            double y = toDouble(b);
            if (y == 0) {
                throw fail("division by zero");
            }
            return toDouble(a) / y;
        }
        throw operandError("/", a, b);
    }

    static Object floordiv(Object a, Object b) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                if (toLong(b) == 0) {
                    throw fail("integer division or modulo by zero");
                }
                if (toLong(a) == Long.MIN_VALUE && toLong(b) == -1) {
                    throw overflow();
                }
                return Math.floorDiv(toLong(a), toLong(b));
            }
            double y = toDouble(b);
            if (y == 0) {
                throw fail("float floor division by zero");
            }
            return Math.floor(toDouble(a) / y);
        }
        throw operandError("//", a, b);
    }

    static Object mod(Object a, Object b) {
        defined(a);
        defined(b);
        if (a instanceof String s) {
            return Builtins.percentFormat(s, b);
        }
        if (a instanceof Marked) {
            throw Marked.refuse("request text as a '%' format string");
        }
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                if (toLong(b) == 0) {
                    throw fail("integer modulo by zero");
                }
                return Math.floorMod(toLong(a), toLong(b));
            }
            double x = toDouble(a);
            double y = toDouble(b);
            if (y == 0) {
                throw fail("float modulo");
            }
            double r = x % y;
            if (r != 0 && (r < 0) != (y < 0)) {
                r += y;
            }
            return r;
        }
        throw operandError("%", a, b);
    }

    static Object pow(Object a, Object b) {
        defined(a);
        defined(b);
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b) && toLong(b) >= 0) {
                long base = toLong(a);
                long exp = toLong(b);
                long result = 1;
                try {
                    while (exp > 0) {
                        if ((exp & 1) == 1) {
                            result = Math.multiplyExact(result, base);
                        }
                        exp >>= 1;
                        if (exp > 0) {
                            base = Math.multiplyExact(base, base);
                        }
                    }
                } catch (ArithmeticException e) {
                    throw overflow();
                }
                return result;
            }
            double x = toDouble(a);
            double y = toDouble(b);
            if (x == 0 && y < 0) {
                throw fail("0.0 cannot be raised to a negative power");
            }
            return Math.pow(x, y);
        }
        throw operandError("** or pow()", a, b);
    }

    static Object negate(Object a) {
        defined(a);
        if (isInt(a)) {
            if (toLong(a) == Long.MIN_VALUE) {
                throw overflow();
            }
            return -toLong(a);
        }
        if (a instanceof Double d) {
            return -d;
        }
        throw fail("bad operand type for unary -: '" + typeName(a) + "'");
    }

    static Object plus(Object a) {
        defined(a);
        if (isInt(a)) {
            return toLong(a);
        }
        if (a instanceof Double) {
            return a;
        }
        throw fail("bad operand type for unary +: '" + typeName(a) + "'");
    }

    // ---- strings

    /// Python's `str.isspace` for one character (Unicode whitespace, including the separators \x1c-\x1f).
    static boolean isSpace(char c) {
        return switch (c) {
            case ' ', '\t', '\n', '\u000b', '\f', '\r', '\u001c', '\u001d', '\u001e', '\u001f', '\u0085', '\u00a0',
                 '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000' -> true;
            default -> c >= '\u2000' && c <= '\u200a';
        };
    }

    private static boolean strips(char c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    static String lstrip(String s, String chars) {
        return (String) lstrip((Object) s, chars);
    }

    static String rstrip(String s, String chars) {
        return (String) rstrip((Object) s, chars);
    }

    static String strip(String s, String chars) {
        return (String) strip((Object) s, chars);
    }

    /// `str.lstrip` of a [String] or [Marked]; what is left keeps its marks.
    static Object lstrip(Object str, String chars) {
        String s = Marked.plain(str);
        int i = 0;
        while (i < s.length() && strips(s.charAt(i), chars)) {
            i++;
        }
        return Marked.sub(str, i, s.length());
    }

    static Object rstrip(Object str, String chars) {
        String s = Marked.plain(str);
        int e = s.length();
        while (e > 0 && strips(s.charAt(e - 1), chars)) {
            e--;
        }
        return Marked.sub(str, 0, e);
    }

    static Object strip(Object s, String chars) {
        return lstrip(rstrip(s, chars), chars);
    }

    // ---- JSON

    /// Python's `json.dumps(v, ensure_ascii, indent, separators, sort_keys)`: a [String], or a [Marked] when it
    /// holds request text (a request character and its escape stay marked, keys included).
    static Object json(Object v, boolean ensureAscii, String indent, String itemSep, String keySep, boolean sortKeys) {
        Marked.Builder sb = new Marked.Builder();
        json(v, sb, ensureAscii, indent, itemSep, keySep, sortKeys, 0);
        return sb.build();
    }

    private static void json(Object v, Marked.Builder sb, boolean ascii, String indent, String itemSep, String keySep,
                             boolean sortKeys, int level) {
        if (level > 100) {
            throw fail("value too deeply nested for tojson");
        }
        checkChars(sb.length());
        switch (v) {
            case null -> sb.append("null");
            case Boolean b -> sb.append(b.toString());
            case Long l -> sb.append(l.toString());
            case Double d -> sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity")
                    : floatRepr(d));
            case String s -> jsonString(s, sb, ascii);
            case Marked s -> jsonString(s, sb, ascii);
            case List<?> l -> {
                if (l.isEmpty()) {
                    sb.append("[]");
                    return;
                }
                sb.append("[");
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) {
                        sb.append(itemSep);
                    }
                    newline(sb, indent, level + 1);
                    json(l.get(i), sb, ascii, indent, itemSep, keySep, sortKeys, level + 1);
                }
                newline(sb, indent, level);
                sb.append("]");
            }
            case Map<?, ?> m -> {
                if (m.isEmpty()) {
                    sb.append("{}");
                    return;
                }
                // keys are strings (a String or a Marked) once converted as json.dumps converts them
                List<Map.Entry<Object, Object>> entries = new ArrayList<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    Object k = e.getKey();
                    Object key = switch (k) {
                        case String s -> s;
                        case Marked s -> s;
                        case null -> "null";
                        case Boolean b -> b.toString();
                        case Long l -> l.toString();
                        case Double d -> Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : floatRepr(d);
                        default -> throw fail("keys must be str, int, float, bool or None, not " + typeName(k));
                    };
                    entries.add(Map.entry(key, e.getValue() == null ? MISSING : e.getValue()));
                }
                if (sortKeys) {
                    entries.sort((x, y) -> compareStrings(Marked.plain(x.getKey()), Marked.plain(y.getKey())));
                }
                sb.append("{");
                boolean first = true;
                for (Map.Entry<Object, Object> e : entries) {
                    if (!first) {
                        sb.append(itemSep);
                    }
                    first = false;
                    newline(sb, indent, level + 1);
                    jsonString(e.getKey(), sb, ascii);
                    sb.append(keySep);
                    json(e.getValue() == MISSING ? null : e.getValue(), sb, ascii, indent, itemSep, keySep, sortKeys, level + 1);
                }
                newline(sb, indent, level);
                sb.append("}");
            }
            default -> throw fail("Object of type " + typeName(v) + " is not JSON serializable");
        }
    }

    private static void newline(Marked.Builder sb, String indent, int level) {
        if (indent != null) {
            sb.append("\n");
            for (int i = 0; i < level; i++) {
                sb.append(indent);
            }
            checkChars(sb.length());
        }
    }

    private static void jsonString(Object str, Marked.Builder sb, boolean ascii) {
        String s = Marked.plain(str);
        Marked m = str instanceof Marked x ? x : null;
        sb.append("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String out = switch (c) {
                case '"' -> "\\\"";
                case '\\' -> "\\\\";
                case '\n' -> "\\n";
                case '\r' -> "\\r";
                case '\t' -> "\\t";
                case '\b' -> "\\b";
                case '\f' -> "\\f";
                // with ensure_ascii, Python escapes each UTF-16 unit: surrogate pairs come out as two escapes
                default -> c < 0x20 || (ascii && c > 0x7e) ? String.format("\\u%04x", (int) c) : String.valueOf(c);
            };
            sb.append(out, m != null && m.marked(i));
        }
        sb.append("\"");
    }
}
