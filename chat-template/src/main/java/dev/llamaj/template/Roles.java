package dev.llamaj.template;

import dev.llamaj.template.Node.Args;
import dev.llamaj.template.Node.Expr;
import dev.llamaj.template.Node.FilterCall;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/// The role names a template compares a message's role with, found in its syntax tree: a template that writes
/// `message['role'] == 'ipython'`, `message.role in ['user', 'system']`, `role is equalto 'tool'` or
/// `selectattr('role', 'equalto', 'system')` handles those roles, so a conversation may use them. Only
/// comparisons whose other side is about a role count (an attribute or item `role`, a variable whose name has
/// `role` in it), and only names that look like a role (a letter, then letters, digits, `_`, `-`), so text the
/// template compares contents with (`'</think>' in content`) never becomes an accepted role.
final class Roles {
    private Roles() {}

    private static final Set<String> EQUALITY = Set.of("==", "!=", "in", "notin");
    private static final Set<String> EQUALITY_TESTS = Set.of("eq", "equalto", "==", "ne", "!=", "in");

    static Set<String> compared(List<Node> body) {
        Set<String> out = new TreeSet<>();
        nodes(body, out);
        return out;
    }

    private static void nodes(List<Node> body, Set<String> out) {
        for (Node n : body) {
            switch (n) {
                case Node.Text t -> { }
                case Node.Output o -> expr(o.expr(), out);
                case Node.If f -> {
                    f.tests().forEach(e -> expr(e, out));
                    f.bodies().forEach(b -> nodes(b, out));
                    nodes(f.orElse(), out);
                }
                case Node.For f -> {
                    expr(f.iterable(), out);
                    expr(f.filter(), out);
                    nodes(f.body(), out);
                    nodes(f.orElse(), out);
                }
                case Node.Set s -> expr(s.value(), out);
                case Node.SetBlock s -> {
                    s.filters().forEach(f -> filter(f, out));
                    nodes(s.body(), out);
                }
                case Node.FilterBlock f -> {
                    f.filters().forEach(c -> filter(c, out));
                    nodes(f.body(), out);
                }
                case Node.With w -> {
                    w.values().forEach(e -> expr(e, out));
                    nodes(w.body(), out);
                }
                case Node.Macro m -> {
                    m.defaults().forEach(e -> expr(e, out));
                    nodes(m.body(), out);
                }
                case Node.Break b -> { }
                case Node.Continue c -> { }
            }
        }
    }

    private static void expr(Expr e, Set<String> out) {
        switch (e) {
            case null -> { }
            case Expr.Const c -> { }
            case Expr.Name n -> { }
            case Expr.NsRef r -> { }
            case Expr.ListLit l -> l.items().forEach(x -> expr(x, out));
            case Expr.TupleLit t -> t.items().forEach(x -> expr(x, out));
            case Expr.DictLit d -> {
                d.keys().forEach(x -> expr(x, out));
                d.values().forEach(x -> expr(x, out));
            }
            case Expr.Attr a -> expr(a.obj(), out);
            case Expr.Item i -> {
                expr(i.obj(), out);
                expr(i.key(), out);
            }
            case Expr.Slice s -> {
                expr(s.start(), out);
                expr(s.stop(), out);
                expr(s.step(), out);
            }
            case Expr.Call c -> {
                expr(c.fn(), out);
                args(c.args(), out);
            }
            case Expr.Filter f -> {
                expr(f.value(), out);
                filter(f.filter(), out);
            }
            case Expr.Test t -> {
                expr(t.value(), out);
                args(t.args(), out);
                if (EQUALITY_TESTS.contains(t.name()) && aboutRole(t.value())) {
                    t.args().positional().forEach(x -> names(x, out));
                }
            }
            case Expr.Unary u -> expr(u.operand(), out);
            case Expr.Binary b -> {
                expr(b.left(), out);
                expr(b.right(), out);
            }
            case Expr.Compare c -> {
                expr(c.first(), out);
                c.rest().forEach(x -> expr(x, out));
                Expr left = c.first();
                for (int i = 0; i < c.ops().size(); i++) {
                    Expr right = c.rest().get(i);
                    if (EQUALITY.contains(c.ops().get(i))) {
                        if (aboutRole(left)) {
                            names(right, out);
                        }
                        if (aboutRole(right)) {
                            names(left, out);
                        }
                    }
                    left = right;
                }
            }
            case Expr.Cond c -> {
                expr(c.test(), out);
                expr(c.then(), out);
                expr(c.orElse(), out);
            }
        }
    }

    private static void args(Args a, Set<String> out) {
        a.positional().forEach(x -> expr(x, out));
        a.values().forEach(x -> expr(x, out));
        expr(a.star(), out);
        expr(a.starStar(), out);
    }

    /// `selectattr('role', 'equalto', 'system')` and `rejectattr(...)` too.
    private static void filter(FilterCall f, Set<String> out) {
        args(f.args(), out);
        List<Expr> p = f.args().positional();
        if ((f.name().equals("selectattr") || f.name().equals("rejectattr")) && p.size() >= 3
                && p.get(0) instanceof Expr.Const(String attr) && attr.equals("role")
                && p.get(1) instanceof Expr.Const(String test) && EQUALITY_TESTS.contains(test)) {
            names(p.get(2), out);
        }
    }

    private static boolean aboutRole(Expr e) {
        return switch (e) {
            case Expr.Attr a -> a.name().equals("role");
            case Expr.Item i -> i.key() instanceof Expr.Const(String key) && key.equals("role");
            case Expr.Name n -> n.name().toLowerCase(Locale.ROOT).contains("role");
            case null, default -> false;
        };
    }

    /// The role-like string constants of `e`: a constant, or the items of a list or tuple of them.
    private static void names(Expr e, Set<String> out) {
        switch (e) {
            case Expr.Const(String s) when s.matches("[A-Za-z][A-Za-z0-9_-]{0,63}") -> out.add(s);
            case Expr.ListLit l -> l.items().forEach(x -> names(x, out));
            case Expr.TupleLit t -> t.items().forEach(x -> names(x, out));
            case null, default -> { }
        }
    }
}
