package dev.llamaj.engine.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/// The grammar's pushdown automaton, determinized lazily.
///
/// A *stack* says where matching stands: its top is the position of the character class to match next, and
/// below it the positions to return to when the enclosing rules end (llama.cpp's grammar stacks). Stacks are
/// persistent linked lists, interned, so a stack is one `int` and stacks that share their bottom share memory.
/// Since alternatives can be tried in parallel, a *state* is a set of stacks, also interned to an `int` id; the
/// empty stack (node 0) in a set means the text so far is complete.
///
/// Steps go from state to state on an alphabet symbol (see [Grammar#intervalStarts]) and are remembered in a
/// dense table per state, so stepping a state a second time on a symbol is one array read. That is what makes
/// walking the vocabulary's trie cheap: the same few transitions are taken hundreds of thousands of times.
///
/// UTF-8 is handled here too ([#stepByte]): a byte that starts or continues a multi-byte character is kept as a
/// *partial* character next to the state, alive while some completion of it could still match.
///
/// Not thread-safe: [Grammar#matches] makes its own, and the constraints of one grammar and vocabulary share
/// one under its lock (see [Grammar#automaton]), so that a schema used again starts with its states, transitions
/// and masks known. It only grows; [#isFull] tells the grammar to start a new one.
final class Automaton {
    /// Beyond this many states (a dense table of a few hundred bytes each) the grammar starts a fresh automaton.
    static final int MAX_STATES = 20_000;
    /// Masks kept, one bit per token each (16 KB for 128k tokens).
    static final int CACHED_MASKS = 256;

    static final int DEAD = -1;
    /// Marks a transition not computed yet.
    private static final int UNKNOWN = 0;
    private static final int BOTTOM = 0;

    private final Grammar grammar;
    private final int[] code;
    private final int symbols;

    // stack nodes: node n (>= 1) is position nodePos[n] on top of node nodeParent[n]; node 0 is the empty stack
    private int[] nodePos = new int[256];
    private int[] nodeParent = new int[256];
    private int nodeCount = 1;
    private final Map<Long, Integer> nodeIds = new HashMap<>();

    // states: id >= 1; stacks[id] sorted node ids; next[id][symbol] is UNKNOWN, DEAD or a state id
    private final List<int[]> stacks = new ArrayList<>(List.of(new int[0]));
    private int[][] next = new int[64][];
    private final Map<Key, Integer> stateIds = new HashMap<>();

    private boolean[] loopsKnown = new boolean[64];
    private long[] loops = new long[192];

    /// The allowed tokens of states already walked, keyed by state and partial character (see
    /// [GrammarConstraint]); an entry is never modified once stored.
    final Map<Long, long[]> masks = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, long[]> eldest) {
            return size() > CACHED_MASKS;
        }
    };

    // scratch of the slow path
    private final Set<Long> visited = new HashSet<>();
    private long[] pending = new long[64];

    Automaton(Grammar grammar) {
        this.grammar = grammar;
        this.code = grammar.code;
        this.symbols = grammar.symbolCount();
    }

    /// The state before any text: the root rule's alternatives, expanded.
    int initial() {
        Expansion out = new Expansion();
        visited.clear();
        for (int start : grammar.alternatives[grammar.root]) {
            expand(start, BOTTOM, out);
        }
        return intern(out);
    }

    boolean isComplete(int state) {
        int[] set = stacks.get(state);
        return set.length > 0 && set[0] == BOTTOM;
    }

    /// Whether nothing but the end can follow (the only stack is the empty one).
    boolean isFinal(int state) {
        int[] set = stacks.get(state);
        return set.length == 1 && set[0] == BOTTOM;
    }

    /// The state after `symbol`, or [#DEAD].
    int step(int state, int symbol) {
        int target = next[state][symbol];
        return target != UNKNOWN ? target : computeStep(state, symbol);
    }

    int stepCodePoint(int state, int cp) {
        if (cp > Character.MAX_CODE_POINT || cp >= 0xD800 && cp <= 0xDFFF) {
            return DEAD;
        }
        return step(state, grammar.symbolOf(cp));
    }

    /// The dense transition table of a state, for the trie walk's inner loop: an entry is [#UNKNOWN] (ask
    /// [#step]), [#DEAD] or the next state.
    int[] table(int state) {
        return next[state];
    }

    /// The ASCII bytes that lead from `state` back to itself, as two 64-bit halves (`half` 0: bytes 0-63, 1:
    /// 64-127); `half` 2 is -1 when every non-ASCII character leads back too, else 0. Free text is such a loop:
    /// inside a JSON string every character but `"`, `\` and the controls.
    long selfLoops(int state, int half) {
        if (loopsKnown.length <= state) {
            int size = Math.max(state + 1, 2 * loopsKnown.length);
            loopsKnown = Arrays.copyOf(loopsKnown, size);
            loops = Arrays.copyOf(loops, 3 * size);
        }
        if (!loopsKnown[state]) {
            long low = 0, high = 0, rest = -1;
            for (int symbol = 128; symbol < symbols; symbol++) {
                if (symbol != grammar.surrogateSymbol && step(state, symbol) != state) {
                    rest = 0;
                    break;
                }
            }
            for (int b = 0; b < 128; b++) {
                if (step(state, b) == state) {
                    if (b < 64) {
                        low |= 1L << b;
                    } else {
                        high |= 1L << b;
                    }
                }
            }
            loops[3 * state] = low;
            loops[3 * state + 1] = high;
            loops[3 * state + 2] = rest;
            loopsKnown[state] = true;
        }
        return loops[3 * state + half];
    }

    // ---------------------------------------------------------------- UTF-8

    /// A partial character packed in an `int`: its length in bits 28-30, bytes seen in 24-27, those bytes in 0-23.
    /// 0 means none.
    static int partialLength(int partial) {
        return partial >>> 28;
    }

    /// Steps `(state, partial)` on one byte. Returns the new state, or [#DEAD]; the new partial character goes
    /// to `partialOut[0]`.
    int stepByte(int state, int partial, int b, int[] partialOut) {
        if (partial == 0) {
            if (b < 0x80) {
                partialOut[0] = 0;
                return step(state, b);
            }
            int length = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
            if (length == 0) {
                return DEAD; // a continuation byte or a byte that never starts valid UTF-8
            }
            int p = length << 28 | 1 << 24 | b;
            partialOut[0] = p;
            return partialAlive(state, p) ? state : DEAD;
        }
        if ((b & 0xC0) != 0x80) {
            return DEAD;
        }
        int length = partial >>> 28, have = (partial >>> 24 & 0xF) + 1;
        int bytes = (partial & 0xFF_FFFF) << 8 | b;
        if (have < length) {
            int p = length << 28 | have << 24 | bytes;
            partialOut[0] = p;
            return partialAlive(state, p) ? state : DEAD;
        }
        partialOut[0] = 0;
        int cp = switch (length) {
            case 2 -> (bytes >>> 8 & 0x1F) << 6 | bytes & 0x3F;
            case 3 -> (bytes >>> 16 & 0x0F) << 12 | (bytes >>> 8 & 0x3F) << 6 | bytes & 0x3F;
            default -> (bytes >>> 24 & 0x07) << 18 | (bytes >>> 16 & 0x3F) << 12 | (bytes >>> 8 & 0x3F) << 6
                    | bytes & 0x3F;
        };
        if (cp < MIN_CODE_POINT[length]) {
            return DEAD; // overlong form
        }
        return stepCodePoint(state, cp);
    }

    private static final int[] MIN_CODE_POINT = {0, 0, 0x80, 0x800, 0x10000};

    /// Whether some completion of the partial character is a character that `state` can step on.
    boolean partialAlive(int state, int partial) {
        int length = partial >>> 28, have = partial >>> 24 & 0xF;
        int lo = 0, hi = 0;
        for (int i = 0; i < length; i++) {
            int b = i < have ? partial >>> 8 * (have - 1 - i) & 0xFF : -1;
            int loByte = b >= 0 ? b : 0x80, hiByte = b >= 0 ? b : 0xBF;
            if (i == 0) {
                int mask = length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07;
                lo = loByte & mask;
                hi = hiByte & mask;
            } else {
                lo = lo << 6 | loByte & 0x3F;
                hi = hi << 6 | hiByte & 0x3F;
            }
        }
        lo = Math.max(lo, MIN_CODE_POINT[length]);
        hi = Math.min(hi, Character.MAX_CODE_POINT);
        if (lo > hi) {
            return false;
        }
        for (int symbol = grammar.symbolOf(lo), last = grammar.symbolOf(hi); symbol <= last; symbol++) {
            if (symbol != grammar.surrogateSymbol && step(state, symbol) != DEAD) {
                return true;
            }
        }
        return false;
    }

    // ---------------------------------------------------------------- the slow path

    private int computeStep(int state, int symbol) {
        int target;
        if (symbol == grammar.surrogateSymbol) {
            target = DEAD;
        } else {
            int cp = grammar.representative(symbol);
            Expansion out = new Expansion();
            visited.clear();
            for (int node : stacks.get(state)) {
                if (node == BOTTOM) {
                    continue;
                }
                int pos = nodePos[node];
                if (Ranges.contains(grammar.classes[-code[pos] - 2], cp)) {
                    expand(pos + 1, nodeParent[node], out);
                }
            }
            target = out.size == 0 ? DEAD : intern(out);
        }
        next[state][symbol] = target;
        return target;
    }

    /// Adds to `out` the stacks that matching from position `pos` over `parent` can be at, each topped by a
    /// character class (or the empty stack, when everything has matched). Rules are entered by pushing the
    /// position after the reference, unless the reference ends its alternative (then the return goes straight
    /// to the parent: recursion in last position does not grow the stack). `visited` cuts repeated expansions,
    /// which also ends the cycles of rules that can match nothing.
    private void expand(int pos, int parent, Expansion out) {
        int top = 0;
        pending[top++] = (long) pos << 32 | parent;
        while (top > 0) {
            long item = pending[--top];
            if (!visited.add(item)) {
                continue;
            }
            int p = (int) (item >>> 32), under = (int) item;
            int c = code[p];
            if (c == Grammar.END) {
                if (under == BOTTOM) {
                    out.add(BOTTOM);
                } else {
                    top = push(top, nodePos[under], nodeParent[under]);
                }
            } else if (c >= 0) {
                int continuation = code[p + 1] == Grammar.END ? under : node(p + 1, under);
                int[] starts = grammar.alternatives[c];
                for (int a = starts.length - 1; a >= 0; a--) {
                    top = push(top, starts[a], continuation);
                }
            } else {
                out.add(node(p, under));
            }
        }
    }

    private int push(int top, int pos, int parent) {
        if (top == pending.length) {
            pending = Arrays.copyOf(pending, 2 * top);
        }
        pending[top] = (long) pos << 32 | parent;
        return top + 1;
    }

    private int node(int pos, int parent) {
        long key = (long) pos << 32 | parent;
        Integer known = nodeIds.get(key);
        if (known != null) {
            return known;
        }
        if (nodeCount == nodePos.length) {
            nodePos = Arrays.copyOf(nodePos, 2 * nodeCount);
            nodeParent = Arrays.copyOf(nodeParent, 2 * nodeCount);
        }
        nodePos[nodeCount] = pos;
        nodeParent[nodeCount] = parent;
        nodeIds.put(key, nodeCount);
        return nodeCount++;
    }

    private int intern(Expansion out) {
        int[] set = Arrays.copyOf(out.nodes, out.size);
        Arrays.sort(set);
        Key key = new Key(set);
        Integer known = stateIds.get(key);
        if (known != null) {
            return known;
        }
        int id = stacks.size();
        stacks.add(set);
        if (id == next.length) {
            next = Arrays.copyOf(next, 2 * id);
        }
        next[id] = new int[symbols];
        stateIds.put(key, id);
        return id;
    }

    /// Whether this automaton has grown enough that new generations should start a fresh one.
    boolean isFull() {
        return stacks.size() > MAX_STATES;
    }

    /// Number of states reached so far (for tests).
    int stateCount() {
        return stacks.size() - 1;
    }

    /// The distinct stacks found by one expansion.
    private static final class Expansion {
        int[] nodes = new int[8];
        int size;
        private final Set<Integer> seen = new HashSet<>();

        void add(int node) {
            if (!seen.add(node)) {
                return;
            }
            if (size == nodes.length) {
                nodes = Arrays.copyOf(nodes, 2 * size);
            }
            nodes[size++] = node;
        }
    }

    private record Key(int[] set) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && Arrays.equals(set, k.set);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(set);
        }
    }
}
