package dev.llamaj.template;

import java.util.List;

/// The parsed template: statements ([Node]) holding expressions ([Node.Expr]), all immutable records, so a
/// parsed [ChatTemplate] can be rendered by many threads at once.
///
/// Statements carry their line so a render error can say where it happened.
sealed interface Node {
    record Text(String text) implements Node {}

    record Output(Expr expr, int line) implements Node {}

    /// `if`/`elif`... branches in order (with the line of each test), then the `else` body (empty if none).
    record If(List<Expr> tests, List<Integer> lines, List<List<Node>> bodies, List<Node> orElse) implements Node {}

    record For(Expr target, Expr iterable, Expr filter, boolean recursive, List<Node> body, List<Node> orElse,
               int line) implements Node {}

    /// `{% set target = value %}`; the target is a [Expr.Name], a [Expr.TupleLit] of names or a [Expr.NsRef].
    record Set(Expr target, Expr value, int line) implements Node {}

    /// `{% set target | filters %}body{% endset %}`.
    record SetBlock(Expr target, List<FilterCall> filters, List<Node> body, int line) implements Node {}

    record FilterBlock(List<FilterCall> filters, List<Node> body, int line) implements Node {}

    record With(List<Expr> targets, List<Expr> values, List<Node> body, int line) implements Node {}

    /// `catchVarargs`/`catchKwargs`: the body mentions `varargs`/`kwargs`, so extra arguments are accepted.
    record Macro(String name, List<String> params, List<Expr> defaults, boolean catchVarargs, boolean catchKwargs,
                 List<Node> body, int line) implements Node {}

    record Break(int line) implements Node {}

    record Continue(int line) implements Node {}

    /// A call's arguments: positional, keyword (names and values in order), and `*args` / `**kwargs` (or null).
    record Args(List<Expr> positional, List<String> names, List<Expr> values, Expr star, Expr starStar) {
        static final Args NONE = new Args(List.of(), List.of(), List.of(), null, null);
    }

    /// One filter of a chain: `| name(args)`.
    record FilterCall(String name, Args args) {}

    sealed interface Expr {
        record Const(Object value) implements Expr {}

        record Name(String name) implements Expr {}

        record ListLit(List<Expr> items) implements Expr {}

        record TupleLit(List<Expr> items) implements Expr {}

        record DictLit(List<Expr> keys, List<Expr> values) implements Expr {}

        /// `obj.name`: attribute first, then item (Jinja2's `getattr`).
        record Attr(Expr obj, String name) implements Expr {}

        /// `obj[key]`: item first, then attribute (Jinja2's `getitem`).
        record Item(Expr obj, Expr key) implements Expr {}

        record Slice(Expr start, Expr stop, Expr step) implements Expr {}

        record Call(Expr fn, Args args) implements Expr {}

        record Filter(Expr value, FilterCall filter) implements Expr {}

        record Test(Expr value, String name, Args args, boolean negated) implements Expr {}

        /// `not`, `-`, `+`.
        record Unary(String op, Expr operand) implements Expr {}

        /// `+ - * / // % ** ~ and or`.
        record Binary(String op, Expr left, Expr right) implements Expr {}

        /// A comparison chain `a < b <= c` (ops: `== != < <= > >= in notin`).
        record Compare(Expr first, List<String> ops, List<Expr> rest) implements Expr {}

        /// `then if test else orElse`; `orElse` is null when absent.
        record Cond(Expr test, Expr then, Expr orElse, int line) implements Expr {}

        /// `ns.attr` as the target of `set`.
        record NsRef(String name, String attr) implements Expr {}
    }
}
