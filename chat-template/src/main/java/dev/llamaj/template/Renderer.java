package dev.llamaj.template;

import dev.llamaj.template.Node.Args;
import dev.llamaj.template.Node.Expr;
import dev.llamaj.template.Node.FilterCall;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/// Walks the parsed template for one render: scopes, loops, macros and expression evaluation, with Jinja2's
/// scoping rules (a `for` body gets a fresh scope each iteration, so `set` inside a loop does not leak out,
/// which is why templates use `namespace`; `if` bodies share their enclosing scope; a macro sees the scope it was
/// defined in as it is when called).
///
/// It is also the sandbox's meter: every loop iteration and macro call is a step, nested calls count against a
/// depth limit, output and every string value have a size limit, and the characters of computed values have a
/// total budget, so a hostile template from a model file can neither hang nor exhaust memory. A renderer is used
/// once, by one thread.
///
/// Output is built with the marks of the request text in it ([Marked]): a render's result is a [String] when
/// nothing in it came from the request, a [Marked] otherwise, and so are macro results and captured blocks.
final class Renderer {
    static final long MAX_STEPS = 1_000_000;
    static final int MAX_DEPTH = 100;
    static final long MAX_COMPUTED = 64_000_000;

    final Clock clock;
    private long steps;
    private int depth;
    private long computed;
    /// The line of the statement being run, for error messages.
    int line;

    private enum Flow { NORMAL, BREAK, CONTINUE }

    Renderer(Clock clock) {
        this.clock = clock;
    }

    /// Variables of one level: the globals, the template's top level, a loop iteration, a macro call.
    static final class Scope {
        final Map<String, Object> vars = new HashMap<>(8);
        final Scope parent;

        Scope(Scope parent) {
            this.parent = parent;
        }

        Object lookup(String name) {
            for (Scope s = this; s != null; s = s.parent) {
                Object v = s.vars.get(name);
                if (v != null || s.vars.containsKey(name)) {
                    return v;
                }
            }
            return Py.MISSING;
        }
    }

    /// The output: a [String], or a [Marked] if it holds request text.
    Object render(List<Node> body, Map<String, Object> context) {
        Scope globals = new Scope(null);
        globals.vars.putAll(Builtins.globals());
        Scope top = new Scope(globals);
        top.vars.putAll(context);
        Marked.Builder out = new Marked.Builder();
        exec(body, top, out);
        return out.build();
    }

    // ---- limits

    void step() {
        if (++steps > MAX_STEPS) {
            throw Py.fail("the template exceeded the limit of " + MAX_STEPS + " loop iterations and macro calls");
        }
    }

    private void enter() {
        if (++depth > MAX_DEPTH) {
            throw Py.fail("the template exceeded the limit of " + MAX_DEPTH + " nested macro calls or recursive loops");
        }
    }

    /// Counts a computed value against the budget, so building many large values cannot exhaust memory.
    Object charge(Object v) {
        long size = Marked.isStr(v) ? Marked.plain(v).length() : v instanceof List<?> l ? l.size() : v instanceof Map<?, ?> m ? m.size() : 0;
        if (size > 0 && (computed += size) > MAX_COMPUTED) {
            throw Py.fail("the template exceeded the limit of " + MAX_COMPUTED + " characters of computed values");
        }
        return v;
    }

    /// Appends a [String] or a [Marked] (with its marks).
    private static void append(Marked.Builder out, Object s) {
        if ((long) out.length() + Marked.plain(s).length() > Py.MAX_CHARS) {
            throw Py.fail("the template output exceeded the limit of " + Py.MAX_CHARS + " characters");
        }
        out.appendText(s);
    }

    // ---- statements

    private Flow exec(List<Node> body, Scope scope, Marked.Builder out) {
        for (Node node : body) {
            switch (node) {
                case Node.Text t -> append(out, t.text());
                case Node.Output o -> {
                    line = o.line();
                    append(out, Py.text(eval(o.expr(), scope)));
                }
                case Node.If f -> {
                    List<Node> chosen = f.orElse();
                    for (int i = 0; i < f.tests().size(); i++) {
                        line = f.lines().get(i);
                        if (Py.truthy(eval(f.tests().get(i), scope))) {
                            chosen = f.bodies().get(i);
                            break;
                        }
                    }
                    Flow flow = exec(chosen, scope, out);
                    if (flow != Flow.NORMAL) {
                        return flow;
                    }
                }
                case Node.For f -> {
                    line = f.line();
                    Flow flow = loop(f, scope, out, eval(f.iterable(), scope), 0);
                    if (flow != Flow.NORMAL) {
                        return flow;
                    }
                }
                case Node.Set s -> {
                    line = s.line();
                    assign(s.target(), eval(s.value(), scope), scope);
                }
                case Node.SetBlock s -> {
                    line = s.line();
                    Marked.Builder captured = new Marked.Builder();
                    exec(s.body(), new Scope(scope), captured);
                    line = s.line();
                    assign(s.target(), applyFilters(captured.build(), s.filters(), scope), scope);
                }
                case Node.FilterBlock fb -> {
                    Marked.Builder captured = new Marked.Builder();
                    exec(fb.body(), new Scope(scope), captured);
                    line = fb.line();
                    append(out, Py.text(applyFilters(captured.build(), fb.filters(), scope)));
                }
                case Node.With w -> {
                    line = w.line();
                    Scope inner = new Scope(scope);
                    for (int i = 0; i < w.targets().size(); i++) {
                        assign(w.targets().get(i), eval(w.values().get(i), scope), inner);
                    }
                    Flow flow = exec(w.body(), inner, out);
                    if (flow != Flow.NORMAL) {
                        return flow;
                    }
                }
                case Node.Macro m -> scope.vars.put(m.name(), new Macro(m, scope));
                case Node.Break b -> {
                    return Flow.BREAK;
                }
                case Node.Continue c -> {
                    return Flow.CONTINUE;
                }
            }
        }
        return Flow.NORMAL;
    }

    private Object applyFilters(Object value, List<FilterCall> filters, Scope scope) {
        for (FilterCall f : filters) {
            value = filter(value, f, scope);
        }
        return value;
    }

    /// Runs a `for` loop over `iterable`: filtered first (so `loop.length` counts kept items), each iteration in
    /// a fresh scope; `else` runs when nothing was kept.
    private Flow loop(Node.For f, Scope scope, Marked.Builder out, Object iterable, int loopDepth) {
        List<Object> items = Py.iterate(iterable);
        if (f.filter() != null) {
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                step();
                Scope s = new Scope(scope);
                assign(f.target(), item, s);
                if (Py.truthy(eval(f.filter(), s))) {
                    kept.add(item);
                }
            }
            items = kept;
        }
        if (items.isEmpty()) {
            return exec(f.orElse(), new Scope(scope), out);
        }
        Loop loop = new Loop(f, scope, items, loopDepth);
        for (int i = 0; i < items.size(); i++) {
            step();
            loop.index0 = i;
            Scope s = new Scope(scope);
            s.vars.put("loop", loop);
            assign(f.target(), items.get(i), s);
            Flow flow = exec(f.body(), s, out);
            line = f.line();
            if (flow == Flow.BREAK) {
                break;
            }
        }
        return Flow.NORMAL;
    }

    /// Binds a `set`/`for`/`with` target: a name, a namespace attribute, or a tuple unpacking the value.
    private void assign(Expr target, Object value, Scope scope) {
        switch (target) {
            case Expr.Name n -> scope.vars.put(n.name(), value);
            case Expr.NsRef r -> {
                Object ns = scope.lookup(r.name());
                if (!(ns instanceof Py.Namespace namespace)) {
                    throw Py.fail("cannot assign attribute on non-namespace object");
                }
                namespace.attrs.put(r.attr(), value);
            }
            case Expr.TupleLit t -> {
                List<Object> items = Py.iterate(Py.defined(value));
                if (items.size() < t.items().size()) {
                    throw Py.fail("not enough values to unpack (expected " + t.items().size() + ", got " + items.size() + ")");
                }
                if (items.size() > t.items().size()) {
                    throw Py.fail("too many values to unpack (expected " + t.items().size() + ")");
                }
                for (int i = 0; i < items.size(); i++) {
                    assign(t.items().get(i), items.get(i), scope);
                }
            }
            default -> throw Py.fail("cannot assign to this expression");
        }
    }

    // ---- expressions

    Object eval(Expr e, Scope scope) {
        return switch (e) {
            case Expr.Const c -> c.value();
            case Expr.Name n -> {
                Object v = scope.lookup(n.name());
                yield v == Py.MISSING ? new Py.Undefined("'" + n.name() + "' is undefined") : v;
            }
            case Expr.ListLit l -> {
                List<Object> out = new ArrayList<>(l.items().size());
                for (Expr item : l.items()) {
                    out.add(eval(item, scope));
                }
                yield out;
            }
            case Expr.TupleLit t -> {
                List<Object> out = new ArrayList<>(t.items().size());
                for (Expr item : t.items()) {
                    out.add(eval(item, scope));
                }
                yield new Py.Tuple(out);
            }
            case Expr.DictLit d -> {
                Map<Object, Object> out = new LinkedHashMap<>();
                for (int i = 0; i < d.keys().size(); i++) {
                    Object k = eval(d.keys().get(i), scope);
                    if (!Py.hashable(k)) {
                        throw Py.fail("unhashable type: '" + Py.typeName(k) + "'");
                    }
                    out.put(k, eval(d.values().get(i), scope));
                }
                yield out;
            }
            case Expr.Attr a -> Builtins.getattr(eval(a.obj(), scope), a.name());
            case Expr.Item i -> Builtins.getitem(eval(i.obj(), scope), eval(i.key(), scope));
            case Expr.Slice s -> new Py.Slice(sliceBound(s.start(), scope), sliceBound(s.stop(), scope),
                    sliceBound(s.step(), scope));
            case Expr.Call c -> {
                Object fn = eval(c.fn(), scope);
                List<Object> args = new ArrayList<>();
                Map<String, Object> kwargs = new LinkedHashMap<>();
                evalArgs(c.args(), scope, args, kwargs);
                yield charge(call(fn, args, kwargs));
            }
            case Expr.Filter f -> charge(filter(eval(f.value(), scope), f.filter(), scope));
            case Expr.Test t -> {
                Object v = eval(t.value(), scope);
                List<Object> args = new ArrayList<>();
                Map<String, Object> kwargs = new LinkedHashMap<>();
                evalArgs(t.args(), scope, args, kwargs);
                boolean r = Builtins.test(this, t.name(), v, args, kwargs);
                yield r != t.negated();
            }
            case Expr.Unary u -> switch (u.op()) {
                case "not" -> !Py.truthy(eval(u.operand(), scope));
                case "-" -> Py.negate(eval(u.operand(), scope));
                default -> Py.plus(eval(u.operand(), scope));
            };
            case Expr.Binary b -> binary(b, scope);
            case Expr.Compare c -> {
                Object left = eval(c.first(), scope);
                for (int i = 0; i < c.ops().size(); i++) {
                    Object right = eval(c.rest().get(i), scope);
                    if (!compare(c.ops().get(i), left, right)) {
                        yield false;
                    }
                    left = right;
                }
                yield true;
            }
            case Expr.Cond c -> {
                if (Py.truthy(eval(c.test(), scope))) {
                    yield eval(c.then(), scope);
                }
                yield c.orElse() != null ? eval(c.orElse(), scope) : new Py.Undefined(
                        "the inline if-expression on line " + c.line() + " evaluated to false and no else section was defined.");
            }
            case Expr.NsRef r -> throw Py.fail("unexpected namespace reference");
        };
    }

    private Object sliceBound(Expr e, Scope scope) {
        return e == null ? null : eval(e, scope);
    }

    private Object binary(Expr.Binary b, Scope scope) {
        Object left = eval(b.left(), scope);
        return switch (b.op()) {
            case "and" -> Py.truthy(left) ? eval(b.right(), scope) : left;
            case "or" -> Py.truthy(left) ? left : eval(b.right(), scope);
            default -> {
                Object right = eval(b.right(), scope);
                yield charge(switch (b.op()) {
                    case "+" -> Py.add(left, right);
                    case "-" -> Py.sub(left, right);
                    case "*" -> Py.mul(left, right);
                    case "/" -> Py.truediv(left, right);
                    case "//" -> Py.floordiv(left, right);
                    case "%" -> Py.mod(left, right);
                    case "**" -> Py.pow(left, right);
                    case "~" -> {
                        Object l = Py.text(left);
                        Object r = Py.text(right);
                        Py.checkChars((long) Marked.plain(l).length() + Marked.plain(r).length());
                        yield Marked.concat(l, r);
                    }
                    default -> throw Py.fail("unknown operator " + b.op());
                });
            }
        };
    }

    private static boolean compare(String op, Object a, Object b) {
        return switch (op) {
            case "==" -> Py.eq(a, b);
            case "!=" -> !Py.eq(a, b);
            case "<" -> Py.compare(a, b, op) < 0;
            case "<=" -> Py.compare(a, b, op) <= 0 && !isNaN(a, b);
            case ">" -> Py.compare(a, b, op) > 0;
            case ">=" -> Py.compare(a, b, op) >= 0 && !isNaN(a, b);
            case "in" -> Py.contains(b, a);
            case "notin" -> !Py.contains(b, a);
            default -> throw Py.fail("unknown comparison " + op);
        };
    }

    private static boolean isNaN(Object a, Object b) {
        return (a instanceof Double x && x.isNaN()) || (b instanceof Double y && y.isNaN());
    }

    private void evalArgs(Args a, Scope scope, List<Object> args, Map<String, Object> kwargs) {
        for (Expr e : a.positional()) {
            args.add(eval(e, scope));
        }
        if (a.star() != null) {
            args.addAll(Py.iterate(Py.defined(eval(a.star(), scope))));
        }
        for (int i = 0; i < a.names().size(); i++) {
            kwargs.put(a.names().get(i), eval(a.values().get(i), scope));
        }
        if (a.starStar() != null) {
            Object m = Py.defined(eval(a.starStar(), scope));
            if (!(m instanceof Map<?, ?> map)) {
                throw Py.fail("argument after ** must be a mapping, not " + Py.typeName(m));
            }
            for (Map.Entry<?, ?> en : map.entrySet()) {
                if (en.getKey() instanceof Marked) {
                    throw Marked.refuse("request text as keyword argument names");
                }
                if (!(en.getKey() instanceof String k)) {
                    throw Py.fail("keywords must be strings");
                }
                kwargs.put(k, en.getValue());
            }
        }
    }

    Object call(Object fn, List<Object> args, Map<String, Object> kwargs) {
        if (fn instanceof Py.Callable c) {
            return c.call(this, args, kwargs);
        }
        Py.defined(fn);
        throw Py.fail("'" + Py.typeName(fn) + "' object is not callable");
    }

    Object filter(Object value, FilterCall f, Scope scope) {
        List<Object> args = new ArrayList<>();
        Map<String, Object> kwargs = new LinkedHashMap<>();
        evalArgs(f.args(), scope, args, kwargs);
        return Builtins.filter(this, f.name(), value, args, kwargs);
    }

    // ---- macros and loops

    /// A macro bound to the scope it was defined in; calling it renders its body to a string.
    record Macro(Node.Macro def, Scope closure) implements Py.Callable {
        @Override
        public Object call(Renderer r, List<Object> args, Map<String, Object> kwargs) {
            Node.Macro m = def;
            List<String> params = m.params();
            if (args.size() > params.size() && !m.catchVarargs()) {
                throw Py.fail("macro '" + m.name() + "' takes not more than " + params.size() + " argument(s)");
            }
            r.step();
            r.enter();
            int callerLine = r.line;
            Scope s = new Scope(closure);
            Map<String, Object> extra = kwargs.isEmpty() ? Map.of() : new LinkedHashMap<>(kwargs);
            int firstDefault = params.size() - m.defaults().size();
            for (int i = 0; i < params.size(); i++) {
                String p = params.get(i);
                if (i < args.size()) {
                    if (extra.containsKey(p)) {
                        throw Py.fail("macro '" + m.name() + "' got multiple values for argument '" + p + "'");
                    }
                    s.vars.put(p, args.get(i));
                } else if (!extra.isEmpty() && extra.containsKey(p)) {
                    s.vars.put(p, extra.remove(p));
                } else if (i >= firstDefault) {
                    s.vars.put(p, r.eval(m.defaults().get(i - firstDefault), s));
                } else {
                    s.vars.put(p, new Py.Undefined("parameter '" + p + "' was not provided"));
                }
            }
            if (!extra.isEmpty() && !m.catchKwargs()) {
                throw Py.fail("macro '" + m.name() + "' takes no keyword argument '" + extra.keySet().iterator().next() + "'");
            }
            if (m.catchVarargs()) {
                s.vars.put("varargs", new Py.Tuple(args.size() > params.size() ? args.subList(params.size(), args.size()) : List.of()));
            }
            if (m.catchKwargs()) {
                s.vars.put("kwargs", extra.isEmpty() ? new LinkedHashMap<>() : extra);
            }
            Marked.Builder out = new Marked.Builder();
            r.exec(m.body(), s, out);
            r.depth--;
            r.line = callerLine;
            return out.build();
        }
    }

    /// The `loop` variable; callable (`loop(children)`) in a `recursive` loop.
    static final class Loop implements Py.Callable {
        final Node.For node;
        final Scope scope;
        final List<Object> items;
        final int depth0;
        int index0;
        private Object lastChanged = Py.MISSING;

        Loop(Node.For node, Scope scope, List<Object> items, int depth0) {
            this.node = node;
            this.scope = scope;
            this.items = items;
            this.depth0 = depth0;
        }

        Object attribute(String name) {
            int n = items.size();
            return switch (name) {
                case "index" -> (long) index0 + 1;
                case "index0" -> (long) index0;
                case "revindex" -> (long) (n - index0);
                case "revindex0" -> (long) (n - index0 - 1);
                case "first" -> index0 == 0;
                case "last" -> index0 == n - 1;
                case "length" -> (long) n;
                case "depth" -> (long) depth0 + 1;
                case "depth0" -> (long) depth0;
                case "previtem" -> index0 > 0 ? items.get(index0 - 1) : new Py.Undefined("there is no previous item");
                case "nextitem" -> index0 < n - 1 ? items.get(index0 + 1) : new Py.Undefined("there is no next item");
                case "cycle" -> new Py.Builtin("cycle", (r, args, kw) -> {
                    if (args.isEmpty()) {
                        throw Py.fail("no items for cycling given");
                    }
                    return args.get(index0 % args.size());
                });
                case "changed" -> new Py.Builtin("changed", (r, args, kw) -> {
                    Object now = new Py.Tuple(args);
                    if (lastChanged != Py.MISSING && Py.eq(now, lastChanged)) {
                        return false;
                    }
                    lastChanged = now;
                    return true;
                });
                default -> new Py.Undefined("'jinja2.runtime.LoopContext object' has no attribute '" + name + "'");
            };
        }

        @Override
        public Object call(Renderer r, List<Object> args, Map<String, Object> kwargs) {
            if (!node.recursive()) {
                throw Py.fail("the loop must be marked 'recursive' to be called recursively");
            }
            if (args.size() != 1 || !kwargs.isEmpty()) {
                throw Py.fail("loop() takes exactly one argument");
            }
            r.enter();
            Marked.Builder out = new Marked.Builder();
            int callerLine = r.line;
            r.loop(node, scope, out, args.getFirst(), depth0 + 1);
            r.depth--;
            r.line = callerLine;
            return out.build();
        }
    }
}
