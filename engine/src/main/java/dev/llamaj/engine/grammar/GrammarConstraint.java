package dev.llamaj.engine.grammar;

import dev.llamaj.engine.TokenConstraint;

import java.util.Arrays;

/// One generation's [TokenConstraint] for a [Grammar]: the automaton's state, plus the bytes of a character
/// that the last token left unfinished. The automaton and its masks are shared with the grammar's other
/// constraints for the same vocabulary, so every use of it is under its lock (a walk is a fraction of a
/// millisecond, a generation step tens of milliseconds: concurrent generations seldom wait); a mask, once
/// computed, is never modified and is applied to the logits outside the lock.
///
/// [#mask] walks the vocabulary's [TokenTrie] from the current state, stepping the automaton one byte per trie
/// edge, skipping every subtree whose prefix is already refused and accepting whole every subtree of free text
/// that leads the state back to itself. The state after each character of free text is the same state
/// again, so the allowed set of a state is kept (a bitset, 16 KB for 128k tokens, for the most recent
/// [Automaton#CACHED_MASKS] states), and a repeated state costs only applying it.
final class GrammarConstraint implements TokenConstraint {
    private final Automaton automaton;
    private final TokenTrie trie;
    private int state;
    private int partial;
    private boolean ended;

    private final int[] stateAt;
    private final int[] partialAt;
    private final long[] loopLowAt;
    private final long[] loopHighAt;
    private final long[] loopRestAt;
    private final int[] partialOut = new int[1];
    private final long[] inOrder;
    GrammarConstraint(Grammar grammar, TokenTrie trie) {
        this.automaton = grammar.automaton(trie);
        this.trie = trie;
        synchronized (automaton) {
            this.state = automaton.initial();
        }
        this.stateAt = new int[trie.maxDepth + 1];
        this.partialAt = new int[trie.maxDepth + 1];
        this.loopLowAt = new long[trie.maxDepth + 1];
        this.loopHighAt = new long[trie.maxDepth + 1];
        this.loopRestAt = new long[trie.maxDepth + 1];
        this.inOrder = new long[(trie.tokens.length + 63) >>> 6];
    }

    @Override
    public void mask(float[] logits) {
        long[] allowed;
        synchronized (automaton) {
            allowed = allowed();
        }
        int n = Math.min(logits.length, trie.vocabularySize);
        // a word at a time: most words are all allowed (free text) or all refused (everything else)
        for (int word = 0, base = 0; base < n; word++, base += 64) {
            long bits = allowed[word];
            int end = Math.min(base + 64, n);
            if (bits == 0) {
                Arrays.fill(logits, base, end, Float.NEGATIVE_INFINITY);
                continue;
            }
            if (bits != -1L) {
                for (int token = base; token < end; token++) {
                    if ((bits & 1L << token) == 0) {
                        logits[token] = Float.NEGATIVE_INFINITY;
                    }
                }
            }
        }
        if (logits.length > n) {
            Arrays.fill(logits, n, logits.length, Float.NEGATIVE_INFINITY); // ids the vocabulary does not have
        }
        // nothing allowed happens only when no token of the vocabulary spells what the grammar needs next, or the
        // vocabulary has no end-of-generation token for a complete output: every logit is then -infinity, and
        // the sampler ends the generation (StopReason.END_OF_GENERATION) rather than write past the grammar
    }

    @Override
    public void accept(int token) {
        if (token < 0 || token >= trie.vocabularySize) {
            throw new IllegalArgumentException("token " + token + " is outside the vocabulary");
        }
        if (isEndOfGeneration(token)) {
            if (!isComplete() && !ended) {
                throw new IllegalArgumentException("end-of-generation token " + token
                        + " before the grammar is complete");
            }
            ended = true;
            return;
        }
        byte[] bytes = trie.bytes[token];
        if (ended || bytes == null) {
            throw new IllegalArgumentException("token " + token + (ended ? " after the end of the output"
                    : " is a control or empty token, never allowed by a grammar"));
        }
        int s = state, p = partial;
        synchronized (automaton) {
            for (byte b : bytes) {
                s = automaton.stepByte(s, p, b & 0xFF, partialOut);
                if (s == Automaton.DEAD) {
                    throw new IllegalArgumentException("token " + token + " cannot continue the grammar here");
                }
                p = partialOut[0];
            }
        }
        state = s;
        partial = p;
    }

    @Override
    public boolean isComplete() {
        synchronized (automaton) {
            return partial == 0 && automaton.isComplete(state);
        }
    }

    /// Whether the token's bytes may come next (what [#mask] decides for it, without the trie).
    boolean allows(int token) {
        if (isEndOfGeneration(token)) {
            return isComplete() || ended;
        }
        byte[] bytes = trie.bytes[token];
        if (ended || bytes == null) {
            return false;
        }
        int s = state, p = partial;
        synchronized (automaton) {
            for (byte b : bytes) {
                s = automaton.stepByte(s, p, b & 0xFF, partialOut);
                if (s == Automaton.DEAD) {
                    return false;
                }
                p = partialOut[0];
            }
        }
        return true;
    }

    private boolean isEndOfGeneration(int token) {
        for (int eog : trie.endOfGeneration) {
            if (eog == token) {
                return true;
            }
        }
        return false;
    }

    /// The allowed tokens of the current state, one bit each. Under the automaton's lock.
    long[] allowed() {
        if (ended) {
            return endOnly();
        }
        long key = (long) state << 32 | partial & 0xFFFF_FFFFL;
        long[] allowed = automaton.masks.get(key);
        if (allowed == null) {
            allowed = walk();
            automaton.masks.put(key, allowed);
        }
        return allowed;
    }

    /// The trie walk (under the automaton's lock). Its loop is the hot path: per node one table read in the common case (an ASCII byte
    /// from a state with no partial character), and no allocation. A subtree whose bytes are all ASCII and all
    /// lead the current state back to itself (free text without quotes, from inside a string) is accepted
    /// whole without being walked: that is most of a vocabulary, inside a string.
    private long[] walk() {
        // marks go to a bitset in the trie's token order, where a node's tokens and a subtree's are each one
        // range (a few word writes); they are turned into token ids once at the end
        long[] inOrder = this.inOrder;
        Arrays.fill(inOrder, 0);
        byte[] label = trie.label;
        int[] depth = trie.depth, skip = trie.skip, tokenStart = trie.tokenStart, tokens = trie.tokens;
        long[] subtreeLow = trie.subtreeLow, subtreeHigh = trie.subtreeHigh;
        boolean[] subtreeNonAscii = trie.subtreeNonAscii, subtreeWellFormed = trie.subtreeWellFormed;
        int[] stateAt = this.stateAt, partialAt = this.partialAt;
        long[] loopLowAt = this.loopLowAt, loopHighAt = this.loopHighAt, loopRestAt = this.loopRestAt;
        stateAt[0] = state;
        partialAt[0] = partial;
        loopLowAt[0] = loopHighAt[0] = loopRestAt[0] = 0; // the root's children are few: walked, not skipped
        // the trie's UTF-8 view of its paths (subtreeWellFormed) starts between characters, as the walk does
        // only when no character is pending from the last token
        boolean fromBoundary = partial == 0;
        int lastState = -1;
        long lastLow = 0, lastHigh = 0, lastRest = 0;
        for (int i = 1, n = trie.nodes; i < n; ) {
            int d = depth[i];
            int s = stateAt[d - 1], p = partialAt[d - 1];
            // a whole subtree is accepted when its ASCII bytes loop, and it is pure ASCII between characters, or
            // (every non-ASCII character looping too) every path through it is well-formed UTF-8, which also
            // covers a subtree entered in the middle of a character
            if ((subtreeLow[i] & ~loopLowAt[d - 1]) == 0 && (subtreeHigh[i] & ~loopHighAt[d - 1]) == 0
                    && (p == 0 && !subtreeNonAscii[i]
                        || fromBoundary && loopRestAt[d - 1] != 0 && subtreeWellFormed[i])) {
                setRange(inOrder, tokenStart[i], tokenStart[skip[i]]);
                i = skip[i];
                continue;
            }
            int b = label[i] & 0xFF;
            int t;
            if (p == 0 && b < 0x80) {
                t = automaton.table(s)[b];
                if (t == 0) {
                    t = automaton.step(s, b);
                }
            } else {
                t = automaton.stepByte(s, p, b, partialOut);
                p = partialOut[0];
            }
            if (t == Automaton.DEAD) {
                i = skip[i];
                continue;
            }
            stateAt[d] = t;
            partialAt[d] = p;
            if (skip[i] != i + 1) { // a node with children: its state's loops decide their skipping
                // loops cost a step on every symbol to find: looked for only in a state seen looping once
                if (p != 0) { // inside a character the state is the parent's
                    loopLowAt[d] = loopLowAt[d - 1];
                    loopHighAt[d] = loopHighAt[d - 1];
                    loopRestAt[d] = loopRestAt[d - 1];
                } else if (t != s) {
                    loopLowAt[d] = loopHighAt[d] = loopRestAt[d] = 0;
                } else {
                    if (t != lastState) {
                        lastState = t;
                        lastLow = automaton.selfLoops(t, 0);
                        lastHigh = automaton.selfLoops(t, 1);
                        lastRest = automaton.selfLoops(t, 2);
                    }
                    loopLowAt[d] = lastLow;
                    loopHighAt[d] = lastHigh;
                    loopRestAt[d] = lastRest;
                }
            }
            setRange(inOrder, tokenStart[i], tokenStart[i + 1]);
            i++;
        }
        return byId(inOrder, tokens);
    }

    /// Sets bits `[from, to)`.
    private static void setRange(long[] bits, int from, int to) {
        if (from >= to) {
            return;
        }
        int first = from >>> 6, last = (to - 1) >>> 6;
        long head = -1L << from, tail = -1L >>> -to; // shifts are mod 64: the bits from `from`, below `to`
        if (first == last) {
            bits[first] |= head & tail;
            return;
        }
        bits[first] |= head;
        for (int w = first + 1; w < last; w++) {
            bits[w] = -1L;
        }
        bits[last] |= tail;
    }

    /// The allowed set by token id, from the one in trie order: starting from whichever of "none" and "every
    /// text token" is nearer, so that only the minority (the few refused tokens inside a string, the few
    /// allowed ones elsewhere) is written one token at a time.
    private long[] byId(long[] inOrder, int[] tokens) {
        int count = 0;
        for (long word : inOrder) {
            count += Long.bitCount(word);
        }
        long[] allowed;
        if (2 * count > tokens.length) {
            allowed = trie.textTokens.clone();
            for (int w = 0; w < inOrder.length; w++) {
                long refused = ~inOrder[w];
                while (refused != 0) {
                    int k = w << 6 | Long.numberOfTrailingZeros(refused);
                    if (k >= tokens.length) {
                        break;
                    }
                    allowed[tokens[k] >>> 6] &= ~(1L << tokens[k]);
                    refused &= refused - 1;
                }
            }
        } else {
            allowed = new long[(trie.vocabularySize + 63) >>> 6];
            for (int w = 0; w < inOrder.length; w++) {
                long set = inOrder[w];
                while (set != 0) {
                    int k = w << 6 | Long.numberOfTrailingZeros(set);
                    allowed[tokens[k] >>> 6] |= 1L << tokens[k];
                    set &= set - 1;
                }
            }
        }
        if (isComplete()) {
            for (int eog : trie.endOfGeneration) {
                allowed[eog >>> 6] |= 1L << eog;
            }
        }
        return allowed;
    }

    @Override
    public String toString() {
        return "GrammarConstraint[state " + state + (partial != 0 ? ", inside a character" : "")
                + (isComplete() ? ", complete" : "") + (ended ? ", ended" : "") + "]";
    }

    /// For measurements: forgets the masks kept, so that the next [#mask] walks the trie again.
    void forgetMasks() {
        synchronized (automaton) {
            automaton.masks.clear();
        }
    }

    /// For measurements: one walk from the current state, bypassing the kept masks.
    long[] walkForProfile() {
        synchronized (automaton) {
            return walk();
        }
    }

    /// For tests: how many automaton states this generation has reached.
    int states() {
        synchronized (automaton) {
            return automaton.stateCount();
        }
    }

    /// After an end-of-generation token only another one may come (a caller that goes on gets no text).
    private long[] endOnly() {
        long[] allowed = new long[(trie.vocabularySize + 63) >>> 6];
        for (int eog : trie.endOfGeneration) {
            allowed[eog >>> 6] |= 1L << eog;
        }
        return allowed;
    }
}
