package dev.llamaj.template;

import dev.llamaj.template.Lexer.Kind;
import dev.llamaj.template.Lexer.Token;
import dev.llamaj.template.Node.Args;
import dev.llamaj.template.Node.Expr;
import dev.llamaj.template.Node.FilterCall;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/// Recursive-descent parser from tokens to [Node]s, following Jinja2's grammar and operator precedence, which
/// differs from Python's in ways templates rely on:
/// - filters (`|`) and tests (`is`) bind tighter than any binary operator: `a + b | trim` trims `b` only, and
///   `x + y is defined` tests `y`;
/// - `**` is left-associative; `~` (concatenation) sits between `+ -` and `* / // %`;
/// - `if` and `for` headers take no inline `x if c else y`, so `for x in xs if c` is the loop filter.
///
/// Unknown filters and tests are errors here, as they are when Jinja2 compiles a template. Nesting is bounded so
/// a hostile template cannot overflow the stack.
final class Parser {
    private static final int MAX_NESTING = 200;

    private final List<Token> tokens;
    private int pos;
    private int nesting;
    private int loopDepth;
    /// Open blocks (their tag, and the tags that may continue or close them), innermost first, for messages.
    private record OpenBlock(Token tag, Set<String> ends) {}

    private final Deque<OpenBlock> open = new ArrayDeque<>();
    /// Names read in the macro body being parsed, to know whether it takes `varargs`/`kwargs`.
    private Set<String> namesRead = new HashSet<>();

    private Parser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Node> parse(String source) {
        Parser p = new Parser(Lexer.tokenize(source));
        return p.subparse(null);
    }

    // ---- token stream

    private Token cur() {
        return tokens.get(pos);
    }

    private Token peek() {
        return tokens.get(Math.min(pos + 1, tokens.size() - 1));
    }

    private Token next() {
        Token t = tokens.get(pos);
        if (pos < tokens.size() - 1) {
            pos++;
        }
        return t;
    }

    private Py.Failure error(Token at, String message) {
        return Py.fail("line " + at.line() + ": " + message);
    }

    private static String describe(Token t) {
        return switch (t.kind()) {
            case EOF -> "end of template";
            case VAR_BEGIN -> "begin of print statement";
            case VAR_END -> "end of print statement";
            case BLOCK_BEGIN -> "begin of statement block";
            case BLOCK_END -> "end of statement block";
            case TEXT -> "template data";
            case STRING -> "string";
            case INTEGER -> "integer";
            case FLOAT -> "float";
            default -> t.text();
        };
    }

    private Token expectOp(String op) {
        if (!cur().isOp(op)) {
            throw error(cur(), "expected '" + op + "', got '" + describe(cur()) + "'");
        }
        return next();
    }

    private Token expect(Kind kind, String what) {
        if (cur().kind() != kind) {
            throw unexpectedEnd(what);
        }
        return next();
    }

    private Py.Failure unexpectedEnd(String what) {
        if (cur().kind() == Kind.EOF) {
            return error(cur(), "unexpected end of template, expected '" + what + "'");
        }
        return error(cur(), "expected '" + what + "', got '" + describe(cur()) + "'");
    }

    private String expectName() {
        if (cur().kind() != Kind.NAME) {
            throw error(cur(), "expected a name, got '" + describe(cur()) + "'");
        }
        return next().text();
    }

    private void enter(Token at) {
        if (++nesting > MAX_NESTING) {
            throw error(at, "template nesting too deep (more than " + MAX_NESTING + " levels)");
        }
    }

    // ---- statements

    /// Parses nodes until a `{% name %}` with a name in `end` (left as the current token) or the end of input
    /// (only allowed when `end` is null).
    private List<Node> subparse(Set<String> end) {
        List<Node> body = new ArrayList<>();
        while (true) {
            Token t = cur();
            switch (t.kind()) {
                case TEXT -> body.add(new Node.Text(next().text()));
                case VAR_BEGIN -> {
                    next();
                    Expr e = parseTuple(true, false, Set.of());
                    expect(Kind.VAR_END, "end of print statement");
                    body.add(new Node.Output(e, t.line()));
                }
                case BLOCK_BEGIN -> {
                    next();
                    if (end != null && cur().kind() == Kind.NAME && end.contains(cur().text())) {
                        return body;
                    }
                    Node n = statement();
                    if (n != null) {
                        body.add(n);
                    }
                    expect(Kind.BLOCK_END, "end of statement block");
                }
                case EOF -> {
                    if (end != null) {
                        Token block = open.peek().tag();
                        throw error(t, "unexpected end of template: expected " + quoteAll(end)
                                + " to close the '" + block.text() + "' on line " + block.line());
                    }
                    return body;
                }
                default -> throw error(t, "unexpected '" + describe(t) + "'");
            }
        }
    }

    private static String quoteAll(Set<String> names) {
        List<String> sorted = new ArrayList<>(names);
        sorted.sort(null);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < sorted.size(); i++) {
            sb.append(i == 0 ? "" : i == sorted.size() - 1 ? " or " : ", ").append('\'').append(sorted.get(i)).append('\'');
        }
        return sb.toString();
    }

    /// The body of a block tag, up to (and consuming the name of) one of `end`.
    private List<Node> block(Token tag, Set<String> end) {
        expect(Kind.BLOCK_END, "end of statement block");
        open.push(new OpenBlock(tag, end));
        enter(tag);
        List<Node> body = subparse(end);
        nesting--;
        open.pop();
        return body;
    }

    private Node statement() {
        Token t = cur();
        if (t.kind() != Kind.NAME) {
            throw error(t, "tag name expected, got '" + describe(t) + "'");
        }
        return switch (t.text()) {
            case "if" -> parseIf();
            case "for" -> parseFor();
            case "set" -> parseSet();
            case "macro" -> parseMacro();
            case "filter" -> parseFilterBlock();
            case "with" -> parseWith();
            case "generation" -> parseGeneration();
            case "break", "continue" -> {
                next();
                if (loopDepth == 0) {
                    throw error(t, "'" + t.text() + "' outside of a loop");
                }
                yield t.text().equals("break") ? new Node.Break(t.line()) : new Node.Continue(t.line());
            }
            case "extends", "include", "import", "from", "block", "call", "autoescape", "do" ->
                throw error(t, "the '" + t.text() + "' tag is not supported");
            default -> {
                OpenBlock block = open.peek();
                if (block != null && (t.text().startsWith("end") || t.text().equals("else") || t.text().equals("elif"))) {
                    throw error(t, "unexpected '" + t.text() + "': expected " + quoteAll(block.ends()) + " for the '"
                            + block.tag().text() + "' on line " + block.tag().line());
                }
                throw error(t, "unknown tag '" + t.text() + "'");
            }
        };
    }

    private Node parseIf() {
        Token tag = next();
        List<Expr> tests = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        List<List<Node>> bodies = new ArrayList<>();
        List<Node> orElse = List.of();
        int line = tag.line();
        while (true) {
            lines.add(line);
            tests.add(parseTuple(false, false, Set.of()));
            bodies.add(block(tag, Set.of("elif", "else", "endif")));
            Token which = next();
            if (which.text().equals("elif")) {
                line = which.line();
                continue;
            }
            if (which.text().equals("else")) {
                orElse = block(tag, Set.of("endif"));
                next();
            }
            break;
        }
        return new Node.If(List.copyOf(tests), List.copyOf(lines), List.copyOf(bodies), orElse);
    }

    private Node parseFor() {
        Token tag = next();
        Expr target = parseAssignTarget(Set.of("in"));
        if (!cur().isName("in")) {
            throw error(cur(), "expected 'in', got '" + describe(cur()) + "'");
        }
        next();
        Expr iterable = parseTuple(false, false, Set.of("recursive"));
        Expr filter = null;
        if (cur().isName("if")) {
            next();
            filter = parseExpression(true);
        }
        boolean recursive = false;
        if (cur().isName("recursive")) {
            next();
            recursive = true;
        }
        loopDepth++;
        List<Node> body = block(tag, Set.of("endfor", "else"));
        loopDepth--;
        List<Node> orElse = List.of();
        if (next().text().equals("else")) {
            orElse = block(tag, Set.of("endfor"));
            next();
        }
        return new Node.For(target, iterable, filter, recursive, body, orElse, tag.line());
    }

    private Node parseSet() {
        Token tag = next();
        Expr target;
        if (cur().kind() == Kind.NAME && peek().isOp(".")) {
            String ns = next().text();
            next();
            target = new Expr.NsRef(ns, expectName());
        } else {
            target = parseAssignTarget(Set.of());
        }
        if (cur().isOp("=")) {
            next();
            return new Node.Set(target, parseTuple(true, false, Set.of()), tag.line());
        }
        List<FilterCall> filters = filterChain(false);
        List<Node> body = block(tag, Set.of("endset"));
        next();
        return new Node.SetBlock(target, filters, body, tag.line());
    }

    private Node parseFilterBlock() {
        Token tag = next();
        List<FilterCall> filters = filterChain(true);
        List<Node> body = block(tag, Set.of("endfilter"));
        next();
        return new Node.FilterBlock(filters, body, tag.line());
    }

    private Node parseWith() {
        Token tag = next();
        List<Expr> targets = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        while (cur().kind() != Kind.BLOCK_END) {
            if (!targets.isEmpty()) {
                expectOp(",");
            }
            targets.add(parseAssignTarget(Set.of()));
            expectOp("=");
            values.add(parseExpression(true));
        }
        List<Node> body = block(tag, Set.of("endwith"));
        next();
        return new Node.With(List.copyOf(targets), List.copyOf(values), body, tag.line());
    }

    /// `{% generation %}` (transformers' assistant-mask extension) only marks text: render its body as is.
    private Node parseGeneration() {
        Token tag = next();
        List<Node> body = block(tag, Set.of("endgeneration"));
        next();
        return new Node.If(List.of(new Expr.Const(true)), List.of(tag.line()), List.of(body), List.of());
    }

    private Node parseMacro() {
        Token tag = next();
        String name = expectName();
        List<String> params = new ArrayList<>();
        List<Expr> defaults = new ArrayList<>();
        expectOp("(");
        while (!cur().isOp(")")) {
            if (!params.isEmpty()) {
                expectOp(",");
            }
            params.add(expectName());
            if (cur().isOp("=")) {
                next();
                defaults.add(parseExpression(true));
            } else if (!defaults.isEmpty()) {
                throw error(cur(), "non-default argument follows default argument");
            }
        }
        next();
        Set<String> outerNames = namesRead;
        namesRead = new HashSet<>();
        int outerLoops = loopDepth;
        loopDepth = 0;      // `break` in a macro does not leave the caller's loop
        List<Node> body = block(tag, Set.of("endmacro"));
        next();
        loopDepth = outerLoops;
        Set<String> read = namesRead;
        namesRead = outerNames;
        namesRead.addAll(read);
        return new Node.Macro(name, List.copyOf(params), List.copyOf(defaults), read.contains("varargs"),
                read.contains("kwargs"), body, tag.line());
    }

    /// A name or a tuple of names (`a, b` or `(a, (b, c))`).
    private Expr parseAssignTarget(Set<String> extraEnd) {
        Expr target = parseTupleOf(this::parseTargetPrimary, false, extraEnd);
        return target;
    }

    private Expr parseTargetPrimary() {
        Token t = cur();
        if (t.isOp("(")) {
            next();
            Expr e = parseTupleOf(this::parseTargetPrimary, true, Set.of());
            expectOp(")");
            return e;
        }
        String name = expectName();
        if (Set.of("true", "false", "none", "True", "False", "None").contains(name)) {
            throw error(t, "can't assign to '" + name + "'");
        }
        return new Expr.Name(name);
    }

    // ---- expressions

    private boolean tupleEnd(Set<String> extraEnd) {
        Token t = cur();
        return t.kind() == Kind.VAR_END || t.kind() == Kind.BLOCK_END || t.kind() == Kind.EOF || t.isOp(")")
                || (t.kind() == Kind.NAME && extraEnd.contains(t.text()));
    }

    private Expr parseTuple(boolean withCondExpr, boolean explicitParens, Set<String> extraEnd) {
        return parseTupleOf(() -> parseExpression(withCondExpr), explicitParens, extraEnd);
    }

    private Expr parseTupleOf(java.util.function.Supplier<Expr> item, boolean explicitParens, Set<String> extraEnd) {
        List<Expr> items = new ArrayList<>();
        boolean isTuple = false;
        while (true) {
            if (!items.isEmpty()) {
                expectOp(",");
            }
            if (tupleEnd(extraEnd)) {
                break;
            }
            items.add(item.get());
            if (cur().isOp(",")) {
                isTuple = true;
            } else {
                break;
            }
        }
        if (!isTuple) {
            if (!items.isEmpty()) {
                return items.getFirst();
            }
            if (!explicitParens) {
                throw error(cur(), "expected an expression, got '" + describe(cur()) + "'");
            }
        }
        return new Expr.TupleLit(List.copyOf(items));
    }

    private Expr parseExpression(boolean withCondExpr) {
        enter(cur());
        try {
            return withCondExpr ? parseCondExpr() : parseOr();
        } finally {
            nesting--;
        }
    }

    private Expr parseCondExpr() {
        Expr e = parseOr();
        while (cur().isName("if")) {
            int line = next().line();
            Expr test = parseOr();
            Expr orElse = null;
            if (cur().isName("else")) {
                next();
                orElse = parseCondExpr();
            }
            e = new Expr.Cond(test, e, orElse, line);
        }
        return e;
    }

    private Expr parseOr() {
        int depth = nesting;
        Expr e = parseAnd();
        while (cur().isName("or")) {
            enter(next());
            e = new Expr.Binary("or", e, parseAnd());
        }
        nesting = depth;
        return e;
    }

    private Expr parseAnd() {
        int depth = nesting;
        Expr e = parseNot();
        while (cur().isName("and")) {
            enter(next());
            e = new Expr.Binary("and", e, parseNot());
        }
        nesting = depth;
        return e;
    }

    private Expr parseNot() {
        if (cur().isName("not")) {
            Token t = next();
            enter(t);
            Expr operand = parseNot();
            nesting--;
            return new Expr.Unary("not", operand);
        }
        return parseCompare();
    }

    private Expr parseCompare() {
        int depth = nesting;
        Expr first = parseMath1();
        List<String> ops = new ArrayList<>();
        List<Expr> rest = new ArrayList<>();
        while (true) {
            Token t = cur();
            if (t.kind() == Kind.OP && Set.of("==", "!=", "<", "<=", ">", ">=").contains(t.text())) {
                next();
                ops.add(t.text());
            } else if (t.isName("in")) {
                next();
                ops.add("in");
            } else if (t.isName("not") && peek().isName("in")) {
                next();
                next();
                ops.add("notin");
            } else {
                break;
            }
            enter(t);
            rest.add(parseMath1());
        }
        nesting = depth;
        return ops.isEmpty() ? first : new Expr.Compare(first, List.copyOf(ops), List.copyOf(rest));
    }

    private Expr parseMath1() {
        int depth = nesting;
        Expr e = parseConcat();
        while (cur().isOp("+") || cur().isOp("-")) {
            enter(cur());
            String op = next().text();
            e = new Expr.Binary(op, e, parseConcat());
        }
        nesting = depth;
        return e;
    }

    private Expr parseConcat() {
        int depth = nesting;
        Expr e = parseMath2();
        while (cur().isOp("~")) {
            enter(next());
            e = new Expr.Binary("~", e, parseMath2());
        }
        nesting = depth;
        return e;
    }

    private Expr parseMath2() {
        int depth = nesting;
        Expr e = parsePow();
        while (cur().isOp("*") || cur().isOp("/") || cur().isOp("//") || cur().isOp("%")) {
            enter(cur());
            String op = next().text();
            e = new Expr.Binary(op, e, parsePow());
        }
        nesting = depth;
        return e;
    }

    private Expr parsePow() {
        int depth = nesting;
        Expr e = parseUnary(true);
        while (cur().isOp("**")) {
            enter(next());
            e = new Expr.Binary("**", e, parseUnary(true));
        }
        nesting = depth;
        return e;
    }

    private Expr parseUnary(boolean withFilter) {
        Token t = cur();
        enter(t);
        try {
            Expr e;
            if (t.isOp("-") || t.isOp("+")) {
                next();
                e = new Expr.Unary(t.text(), parseUnary(false));
            } else {
                e = parsePrimary();
            }
            e = parsePostfix(e);
            return withFilter ? parseFilterExpr(e) : e;
        } finally {
            nesting--;
        }
    }

    private Expr parsePrimary() {
        Token t = cur();
        switch (t.kind()) {
            case NAME -> {
                next();
                return switch (t.text()) {
                    case "true", "True" -> new Expr.Const(true);
                    case "false", "False" -> new Expr.Const(false);
                    case "none", "None" -> new Expr.Const(null);
                    default -> {
                        namesRead.add(t.text());
                        yield new Expr.Name(t.text());
                    }
                };
            }
            case STRING -> {
                StringBuilder sb = new StringBuilder();
                while (cur().kind() == Kind.STRING) {   // adjacent literals concatenate, as in Python
                    sb.append((String) next().value());
                }
                return new Expr.Const(sb.toString());
            }
            case INTEGER, FLOAT -> {
                next();
                return new Expr.Const(t.value());
            }
            case OP -> {
                switch (t.text()) {
                    case "(" -> {
                        next();
                        Expr e = parseTuple(true, true, Set.of());
                        expectOp(")");
                        return e;
                    }
                    case "[" -> {
                        next();
                        List<Expr> items = new ArrayList<>();
                        while (!cur().isOp("]")) {
                            if (!items.isEmpty()) {
                                expectOp(",");
                            }
                            if (cur().isOp("]")) {
                                break;
                            }
                            items.add(parseExpression(true));
                        }
                        next();
                        return new Expr.ListLit(List.copyOf(items));
                    }
                    case "{" -> {
                        next();
                        List<Expr> keys = new ArrayList<>();
                        List<Expr> values = new ArrayList<>();
                        while (!cur().isOp("}")) {
                            if (!keys.isEmpty()) {
                                expectOp(",");
                            }
                            if (cur().isOp("}")) {
                                break;
                            }
                            keys.add(parseExpression(true));
                            expectOp(":");
                            values.add(parseExpression(true));
                        }
                        next();
                        return new Expr.DictLit(List.copyOf(keys), List.copyOf(values));
                    }
                    default -> { }
                }
            }
            default -> { }
        }
        if (t.kind() == Kind.EOF || t.kind() == Kind.VAR_END || t.kind() == Kind.BLOCK_END) {
            throw error(t, "expected an expression, got '" + describe(t) + "'");
        }
        throw error(t, "unexpected '" + describe(t) + "'");
    }

    private Expr parsePostfix(Expr e) {
        int depth = nesting;
        try {
            return postfixChain(e);
        } finally {
            nesting = depth;
        }
    }

    private Expr postfixChain(Expr e) {
        while (true) {
            Token t = cur();
            if (t.isOp(".") || t.isOp("[") || t.isOp("(")) {
                enter(t);
            }
            if (t.isOp(".")) {
                next();
                Token a = next();
                if (a.kind() == Kind.NAME) {
                    e = new Expr.Attr(e, a.text());
                } else if (a.kind() == Kind.INTEGER) {
                    e = new Expr.Item(e, new Expr.Const(a.value()));
                } else {
                    throw error(a, "expected a name or number after '.', got '" + describe(a) + "'");
                }
            } else if (t.isOp("[")) {
                next();
                List<Expr> keys = new ArrayList<>();
                while (!cur().isOp("]")) {
                    if (!keys.isEmpty()) {
                        expectOp(",");
                    }
                    keys.add(parseSubscribed());
                }
                next();
                if (keys.isEmpty()) {
                    throw error(t, "expected a subscript");
                }
                e = new Expr.Item(e, keys.size() == 1 ? keys.getFirst() : new Expr.TupleLit(List.copyOf(keys)));
            } else if (t.isOp("(")) {
                e = new Expr.Call(e, parseArgs());
            } else {
                return e;
            }
        }
    }

    private Expr parseSubscribed() {
        Expr start = null;
        if (!cur().isOp(":")) {
            start = parseExpression(true);
            if (!cur().isOp(":")) {
                return start;
            }
        }
        next();
        Expr stop = null;
        Expr step = null;
        if (!cur().isOp(":") && !cur().isOp("]") && !cur().isOp(",")) {
            stop = parseExpression(true);
        }
        if (cur().isOp(":")) {
            next();
            if (!cur().isOp("]") && !cur().isOp(",")) {
                step = parseExpression(true);
            }
        }
        return new Expr.Slice(start, stop, step);
    }

    private Args parseArgs() {
        Token open = expectOp("(");
        List<Expr> positional = new ArrayList<>();
        List<String> names = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        Expr star = null;
        Expr starStar = null;
        boolean comma = false;
        while (!cur().isOp(")")) {
            if (comma) {
                expectOp(",");
                if (cur().isOp(")")) {
                    break;
                }
            }
            if (cur().isOp("*")) {
                if (star != null || starStar != null) {
                    throw error(open, "invalid syntax for function call expression");
                }
                next();
                star = parseExpression(true);
            } else if (cur().isOp("**")) {
                if (starStar != null) {
                    throw error(open, "invalid syntax for function call expression");
                }
                next();
                starStar = parseExpression(true);
            } else if (cur().kind() == Kind.NAME && peek().isOp("=")) {
                if (starStar != null) {
                    throw error(open, "invalid syntax for function call expression");
                }
                names.add(next().text());
                next();
                values.add(parseExpression(true));
            } else {
                if (star != null || starStar != null || !names.isEmpty()) {
                    throw error(open, "invalid syntax for function call expression");
                }
                positional.add(parseExpression(true));
            }
            comma = true;
        }
        next();
        return new Args(List.copyOf(positional), List.copyOf(names), List.copyOf(values), star, starStar);
    }

    private Expr parseFilterExpr(Expr e) {
        int depth = nesting;
        try {
            return filterLinks(e);
        } finally {
            nesting = depth;
        }
    }

    private Expr filterLinks(Expr e) {
        while (true) {
            Token t = cur();
            if (t.isOp("|") || t.isName("is") || t.isOp("(")) {
                enter(t);
            }
            if (t.isOp("|")) {
                next();
                e = new Expr.Filter(e, filterCall());
            } else if (t.isName("is")) {
                e = parseTest(e);
            } else if (t.isOp("(")) {
                e = new Expr.Call(e, parseArgs());
            } else {
                return e;
            }
        }
    }

    private List<FilterCall> filterChain(boolean first) {
        List<FilterCall> chain = new ArrayList<>();
        while (first || cur().isOp("|")) {
            if (!first) {
                next();
            }
            first = false;
            chain.add(filterCall());
        }
        return List.copyOf(chain);
    }

    private FilterCall filterCall() {
        Token t = cur();
        String name = dottedName();
        if (!Builtins.hasFilter(name)) {
            throw error(t, "no filter named '" + name + "'");
        }
        return new FilterCall(name, cur().isOp("(") ? parseArgs() : Args.NONE);
    }

    private String dottedName() {
        String name = expectName();
        while (cur().isOp(".")) {
            next();
            name += "." + expectName();
        }
        return name;
    }

    private Expr parseTest(Expr e) {
        next();
        boolean negated = false;
        if (cur().isName("not")) {
            next();
            negated = true;
        }
        Token t = cur();
        String name = dottedName();
        if (!Builtins.hasTest(name)) {
            throw error(t, "no test named '" + name + "'");
        }
        Args args = Args.NONE;
        Token c = cur();
        if (c.isOp("(")) {
            args = parseArgs();
        } else if ((c.kind() == Kind.NAME || c.kind() == Kind.STRING || c.kind() == Kind.INTEGER
                || c.kind() == Kind.FLOAT || c.isOp("[") || c.isOp("{"))
                && !c.isName("else") && !c.isName("or") && !c.isName("and")) {
            // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses
            if (c.isName("is")) {
                throw error(c, "you cannot chain multiple tests with 'is'");
            }
            args = new Args(List.of(parsePostfix(parsePrimary())), List.of(), List.of(), null, null);
        }
        return new Expr.Test(e, name, args, negated);
    }
}
