package dev.llamaj.engine.grammar;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/// A grammar's rules as the parser builds them: every rule a list of alternatives, every alternative a sequence
/// of symbols. A symbol `>= 0` is a rule; a symbol `<= -2` is the character class `-symbol - 2`.
///
/// Groups and repetitions become rules of their own, named after the rule they appear in (`value-3`), the way
/// llama.cpp lowers them: `x*` is `r ::= x r | ` (the recursion is the last symbol, so matching does not deepen
/// the stack), `x{0,n}` nests `n` optional copies, `(x (x (x)?)?)?`, so a bounded repetition is bounded.
final class RuleSet {
    /// Largest `m`/`n` in `{m,n}`: a grammar stays a few million symbols at most.
    static final int MAX_REPEAT = 100_000;
    /// Largest total number of symbols, so that `x{100000}{100000}` is refused rather than built.
    static final int MAX_SYMBOLS = 4_000_000;

    final List<String> names = new ArrayList<>();
    final List<List<int[]>> bodies = new ArrayList<>();
    /// Whether a rule was made for a group or repetition (and is not shown in error messages).
    final List<Boolean> generated = new ArrayList<>();
    private final List<Integer> definedAt = new ArrayList<>();
    private final List<Integer> firstReference = new ArrayList<>();
    private final Map<String, Integer> byName = new HashMap<>();
    final List<int[]> classes = new ArrayList<>();
    private final Map<String, Integer> classIds = new HashMap<>();
    private final Map<Long, Integer> repetitions = new HashMap<>();
    private final Map<String, Integer> anonymousCount = new HashMap<>();
    private long symbolCount;

    int define(String name, int at, IntFunction<String> location) {
        int rule = index(name);
        if (definedAt.get(rule) >= 0) {
            throw new GrammarException(location.apply(at) + ": rule '" + name + "' is defined twice (first at "
                    + location.apply(definedAt.get(rule)) + ")");
        }
        definedAt.set(rule, at);
        return rule;
    }

    void setAlternatives(int rule, List<int[]> alternatives) {
        bodies.set(rule, alternatives);
    }

    int reference(String name, int at) {
        int rule = index(name);
        if (firstReference.get(rule) < 0) {
            firstReference.set(rule, at);
        }
        return rule;
    }

    private int index(String name) {
        Integer known = byName.get(name);
        if (known != null) {
            return known;
        }
        int rule = names.size();
        names.add(name);
        bodies.add(null);
        generated.add(false);
        definedAt.add(-1);
        firstReference.add(-1);
        byName.put(name, rule);
        return rule;
    }

    /// A new rule for a group or repetition inside `owner`.
    int group(String owner, List<int[]> alternatives) {
        int k = anonymousCount.merge(owner, 1, Integer::sum);
        int rule = names.size();
        names.add(owner + "-" + k);
        bodies.add(alternatives);
        generated.add(true);
        definedAt.add(0);
        firstReference.add(0);
        for (int[] alternative : alternatives) {
            symbolCount += alternative.length + 1;
        }
        return rule;
    }

    int charClass(int[] ranges) {
        String key = Arrays.toString(ranges);
        Integer known = classIds.get(key);
        if (known == null) {
            known = classes.size();
            classes.add(ranges);
            classIds.put(key, known);
        }
        return -known - 2;
    }

    /// Appends `item{min,max}` (max -1: unbounded) to `out`.
    void repeat(String owner, int item, int min, int max, GbnfParser.IntList out, int at,
                IntFunction<String> location) {
        symbolCount += min + (max < 0 ? 3 : 2L * (max - min));
        if (symbolCount > MAX_SYMBOLS) {
            throw new GrammarException(location.apply(at) + ": the grammar grows past " + MAX_SYMBOLS
                    + " symbols with its repetitions");
        }
        for (int i = 0; i < min; i++) {
            out.add(item);
        }
        if (max < 0) {
            out.add(star(owner, item));
        } else if (max > min) {
            out.add(optional(owner, item, max - min));
        }
    }

    /// `r ::= item r | `
    private int star(String owner, int item) {
        long key = (long) item << 32 | 0xFFFF_FFFFL;
        Integer known = repetitions.get(key);
        if (known != null) {
            return known;
        }
        int rule = group(owner, new ArrayList<>());
        bodies.get(rule).add(new int[] {item, rule});
        bodies.get(rule).add(new int[0]);
        repetitions.put(key, rule);
        return rule;
    }

    /// Up to `count` copies of `item`: `o(k) ::= item o(k-1) | `, `o(1) ::= item | `.
    private int optional(String owner, int item, int count) {
        int inner = -1;
        for (int k = 1; k <= count; k++) {
            long key = (long) item << 32 | k;
            Integer known = repetitions.get(key);
            if (known == null) {
                int[] first = inner < 0 ? new int[] {item} : new int[] {item, inner};
                known = group(owner, new ArrayList<>(List.of(first, new int[0])));
                repetitions.put(key, known);
            }
            inner = known;
        }
        return inner;
    }

    /// Checks that `root` and every referenced rule are defined and that no rule is left-recursive.
    void finish(IntFunction<String> location) {
        Integer root = byName.get("root");
        if (root == null || definedAt.get(root) < 0) {
            throw new GrammarException(location.apply(0) + ": the grammar has no 'root' rule (the rule that "
                    + "the whole output must match)");
        }
        for (int rule = 0; rule < names.size(); rule++) {
            if (bodies.get(rule) == null) {
                throw new GrammarException(location.apply(firstReference.get(rule)) + ": undefined rule '"
                        + names.get(rule) + "'");
            }
        }
        checkLeftRecursion(location);
    }

    /// Matching expands a rule's alternatives until each starts with a character; a rule that can reach itself
    /// before any character is consumed, with something left to match after the inner occurrence
    /// (`a ::= a "x" | "y"`), would expand forever. Those cycles are refused. A cycle made only of last symbols
    /// (`r ::= x r | ` with `x` possibly empty) returns to the same expansion and is cut there, so it is allowed.
    private void checkLeftRecursion(IntFunction<String> location) {
        int n = names.size();
        boolean[] nullable = new boolean[n];
        for (boolean changed = true; changed; ) {
            changed = false;
            for (int rule = 0; rule < n; rule++) {
                if (nullable[rule]) {
                    continue;
                }
                for (int[] alternative : bodies.get(rule)) {
                    if (allNullable(alternative, alternative.length, nullable)) {
                        nullable[rule] = changed = true;
                        break;
                    }
                }
            }
        }
        // leftmost edges: rule -> rule it may start with; tail when the reference is the alternative's last symbol
        List<List<int[]>> edges = new ArrayList<>();
        for (int rule = 0; rule < n; rule++) {
            List<int[]> out = new ArrayList<>();
            for (int[] alternative : bodies.get(rule)) {
                for (int i = 0; i < alternative.length; i++) {
                    int symbol = alternative[i];
                    if (symbol < 0) {
                        break;
                    }
                    out.add(new int[] {symbol, i == alternative.length - 1 ? 1 : 0});
                    if (!nullable[symbol]) {
                        break;
                    }
                }
            }
            edges.add(out);
        }
        int[] component = StronglyConnected.components(n, rule -> edges.get(rule).stream()
                .mapToInt(e -> e[0]).toArray());
        for (int rule = 0; rule < n; rule++) {
            for (int[] edge : edges.get(rule)) {
                if (edge[1] == 0 && component[edge[0]] == component[rule]) {
                    List<Integer> cycle = path(edge[0], rule, component, edges);
                    cycle.addFirst(rule);
                    StringBuilder names = new StringBuilder();
                    int shown = -1;
                    for (int r : cycle) {
                        if (!generated.get(r) && (names.isEmpty() || !this.names.get(r).equals(this.names.get(shown)))) {
                            names.append(names.isEmpty() ? "" : " -> ").append(this.names.get(r));
                            shown = r;
                        }
                    }
                    int named = firstNamed(cycle);
                    throw new GrammarException(location.apply(definedAt.get(named)) + ": left recursion: "
                            + names + (names.indexOf(" -> ") < 0 ? " -> " + this.names.get(named) : "")
                            + " (a rule cannot begin with itself; recurse after a character instead)");
                }
            }
        }
    }

    private int firstNamed(List<Integer> cycle) {
        for (int r : cycle) {
            if (!generated.get(r)) {
                return r;
            }
        }
        return cycle.getFirst();
    }

    private boolean allNullable(int[] symbols, int end, boolean[] nullable) {
        for (int i = 0; i < end; i++) {
            if (symbols[i] < 0 || !nullable[symbols[i]]) {
                return false;
            }
        }
        return true;
    }

    /// The rules from `from` to `to` along leftmost edges inside one component (breadth first), both included.
    private static List<Integer> path(int from, int to, int[] component, List<List<int[]>> edges) {
        Map<Integer, Integer> previous = new HashMap<>();
        ArrayDeque<Integer> queue = new ArrayDeque<>(List.of(from));
        previous.put(from, from);
        while (!queue.isEmpty()) {
            int r = queue.poll();
            if (r == to) {
                break;
            }
            for (int[] edge : edges.get(r)) {
                if (component[edge[0]] == component[from] && previous.putIfAbsent(edge[0], r) == null) {
                    queue.add(edge[0]);
                }
            }
        }
        List<Integer> path = new ArrayList<>();
        for (int r = to; ; r = previous.get(r)) {
            path.addFirst(r);
            if (r == from) {
                return path;
            }
        }
    }
}
