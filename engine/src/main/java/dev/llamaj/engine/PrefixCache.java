package dev.llamaj.engine;

import dev.llamaj.engine.kernel.Attention;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;

/// Keys and values of prompt prefixes already computed, shared by every session of one model that opts in
/// ([Session#usePrefixCache]): a prompt that starts like an earlier one (the same system prompt, the same long
/// instruction over a million rows, the same chat history) copies the cached part into its session instead of
/// computing it again.
///
/// **Blocks.** A prompt is cut into blocks of [#BLOCK_TOKENS] positions (the key cache's own block,
/// [Attention#BLOCK], so a block's keys are one contiguous run per head). A block's entries depend on every token
/// before it, so a block is found by a hash chain over the whole prefix up to and including it; a hash only finds
/// a candidate: the block's own tokens are compared, and its parent must be the very entry matched for the block
/// before, so a found chain is the prompt's exact prefix whatever the hashes do.
///
/// **Shared, then copied.** The cache holds each block once however many sessions use it; a session copies the
/// blocks it needs into its own key/value cache (a memory copy per layer and head: 0.35 ms for a 2 MiB block of
/// a 1B model, where computing its 64 tokens takes seconds) and attends over its own copy. Attention and the cache
/// layout stay as they are, at the price of the copied blocks' memory in every active session.
///
/// **Budget.** Blocks take [#blockBytes] each; when a new one would exceed the byte budget, the least recently
/// used block that no session is copying and that no cached block continues is evicted (a chain is shortened from
/// its end, never cut in the middle). A budget smaller than one block caches nothing.
///
/// **Two kinds of sessions.** A session of a [BatchExecutor] computes its tokens through another path than a
/// session that computes them itself, and the two agree only to rounding; each kind is lent only blocks its own
/// kind computed (each has its own root in the chain), so that results stay the bits a fresh session of that kind
/// computes.
///
/// Thread-safe: one lock guards the index; block data is immutable once published and copied outside the lock.
/// Meanwhile a reference count keeps the block from eviction, so that the memory the budget counts is the memory
/// the cache keeps alive (an evicted block still being copied would be held beyond the budget).
public final class PrefixCache {
    /// Positions per block.
    public static final int BLOCK_TOKENS = Attention.BLOCK;

    /// The hash of a block's prefix: of the parent's hash (a root's for the first block) and the block's tokens.
    @FunctionalInterface
    interface Hash {
        long of(long parent, int[] tokens, int from, int to);
    }

    private final LlamaModel model;
    private final long budget;
    private final long blockBytes;
    private final Hash hash;
    /// In order of use, the least recent first.
    private final LinkedHashMap<Long, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    /// The parents of first blocks, by kind of session (plain, of an executor): never stored nor evicted.
    private final Entry plainRoot = new Entry(0, null, null, null);
    private final Entry executorRoot = new Entry(0x5851f42d4c957f2dL, null, null, null);
    private long bytes;
    private long restoredTokens;
    private long storedBlocks;
    private long evictedBlocks;
    private long copyNanos;

    /// One cached block.
    private static final class Entry {
        final long key;
        final Entry parent;
        final int[] tokens;
        final KVCache.Block data;
        /// Sessions copying from it, or publishing after it.
        int refs;
        /// Cached blocks whose parent it is.
        int children;

        Entry(long key, Entry parent, int[] tokens, KVCache.Block data) {
            this.key = key;
            this.parent = parent;
            this.tokens = tokens;
            this.data = data;
        }
    }

    /// A cache for `model`'s sessions holding at most `budgetBytes` of blocks (0: nothing, a cache that is off).
    ///
    /// @throws IllegalArgumentException if the budget is negative
    public PrefixCache(LlamaModel model, long budgetBytes) {
        this(model, budgetBytes, PrefixCache::chain);
    }

    PrefixCache(LlamaModel model, long budgetBytes, Hash hash) {
        if (budgetBytes < 0) {
            throw new IllegalArgumentException("the prefix cache budget must be 0 or more bytes, got " + budgetBytes);
        }
        this.model = model;
        this.budget = budgetBytes;
        this.hash = hash;
        // the index's own share (tokens, entry) is small next to the entries, but counted
        this.blockBytes = KVCache.blockBytes(model.config(), model.options().cacheTypeK(),
                model.options().cacheTypeV()) + 4L * BLOCK_TOKENS + 64;
    }

    /// FNV-1a over the tokens, seeded by the parent's hash, then a final avalanche (MurmurHash3's `fmix64`).
    private static long chain(long parent, int[] tokens, int from, int to) {
        long h = parent ^ 0xcbf29ce484222325L;
        for (int i = from; i < to; i++) {
            h = (h ^ tokens[i]) * 0x100000001b3L;
        }
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        return h ^ (h >>> 33);
    }

    /// A budget for a cache next to a loaded model: 256 MiB, or a quarter of the free heap when that is less.
    public static long defaultBudget() {
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        return Math.min(256L << 20, Math.max(0, free / 4));
    }

    public LlamaModel model() {
        return model;
    }

    /// The byte budget.
    public long budget() {
        return budget;
    }

    /// Bytes one block takes (its keys and values in every layer, and its tokens).
    public long blockBytes() {
        return blockBytes;
    }

    /// What the cache holds and has done so far.
    ///
    /// @param blocks         blocks held now
    /// @param bytes          their bytes
    /// @param restoredTokens prompt tokens copied into sessions instead of computed
    /// @param storedBlocks   blocks published
    /// @param evictedBlocks  blocks evicted to stay within the budget
    /// @param copyNanos      time sessions spent copying blocks in (summed over sessions)
    public record Stats(int blocks, long bytes, long restoredTokens, long storedBlocks, long evictedBlocks,
                        long copyNanos) {}

    public synchronized Stats stats() {
        return new Stats(entries.size(), bytes, restoredTokens, storedBlocks, evictedBlocks, copyNanos);
    }

    /// The root of the chains that sessions of this kind share.
    private Entry root(boolean executor) {
        return executor ? executorRoot : plainRoot;
    }

    /// Tokens at the start of `tokens` held in whole cached blocks for sessions of the kind `executor` says (a
    /// look: it does not hold them, though it counts as a use).
    synchronized int cachedLength(int[] tokens, boolean executor) {
        Entry parent = root(executor);
        int blocks = 0;
        for (int b = 0; b < tokens.length / BLOCK_TOKENS; b++) {
            Entry e = find(parent, tokens, b);
            if (e == null) {
                break;
            }
            parent = e;
            blocks++;
        }
        return blocks * BLOCK_TOKENS;
    }

    /// The cached entry of block `b` of `tokens` after `parent` (a root for the first block), verified, or null.
    private Entry find(Entry parent, int[] tokens, int b) {
        int from = b * BLOCK_TOKENS;
        long key = hash.of(parent.key, tokens, from, from + BLOCK_TOKENS);
        Entry e = entries.get(key); // marks it used
        if (e == null) {
            return null;
        }
        return e.parent == parent && Arrays.equals(e.tokens, 0, BLOCK_TOKENS, tokens, from, from + BLOCK_TOKENS)
                ? e : null;
    }

    /// Entries held (not evictable) by one session until [#release].
    static final class Lease {
        private final List<Entry> held = new ArrayList<>();

        /// Blocks found, in order from the start of the prompt.
        int blocks() {
            return held.size();
        }

        KVCache.Block block(int b) {
            return held.get(b).data;
        }
    }

    /// The longest cached chain of whole blocks at the start of `tokens`, at most `maxBlocks`, each held until
    /// [#release]. Touching them in order keeps a chain's end the most recently used.
    synchronized Lease acquire(int[] tokens, int maxBlocks, boolean executor) {
        Lease lease = new Lease();
        Entry parent = root(executor);
        for (int b = 0; b < Math.min(maxBlocks, tokens.length / BLOCK_TOKENS); b++) {
            Entry e = find(parent, tokens, b);
            if (e == null) {
                break;
            }
            e.refs++;
            lease.held.add(e);
            parent = e;
        }
        return lease;
    }

    /// Lets go of the entries [#acquire] or [#publish] held; counts `restored` tokens as copied into a session in
    /// `nanos`.
    synchronized void release(Lease lease, int restored, long nanos) {
        for (Entry e : lease.held) {
            e.refs--;
        }
        lease.held.clear();
        restoredTokens += restored;
        copyNanos += nanos;
    }

    /// Stores the first `blocks` blocks of `tokens`, whose entries are in `source` at the same positions, unless
    /// they are cached already: the entries are copied out of the lock, then linked in under it (a block another
    /// session published meanwhile is kept, not duplicated). Stops at the first block that does not fit in the
    /// budget.
    void publish(int[] tokens, int blocks, KVCache source, boolean executor) {
        if (blocks <= 0 || blockBytes > budget || !source.plainLayout()) {
            return;
        }
        Lease lease = acquire(tokens, blocks, executor);
        try {
            int have = lease.blocks();
            if (have == blocks) {
                return;
            }
            KVCache.Block[] saved = new KVCache.Block[blocks - have];
            for (int b = have; b < blocks; b++) {
                saved[b - have] = source.saveBlock(b * BLOCK_TOKENS);
            }
            synchronized (this) {
                Entry parent = have == 0 ? root(executor) : lease.held.getLast();
                for (int b = have; b < blocks; b++) {
                    int from = b * BLOCK_TOKENS;
                    long key = hash.of(parent.key, tokens, from, from + BLOCK_TOKENS);
                    Entry e = entries.get(key);
                    if (e != null) { // published meanwhile, or another prefix with the same hash: not ours
                        if (find(parent, tokens, b) == null) {
                            return;
                        }
                    } else {
                        if (!makeRoom()) {
                            return;
                        }
                        e = new Entry(key, parent, Arrays.copyOfRange(tokens, from, from + BLOCK_TOKENS),
                                saved[b - have]);
                        entries.put(key, e);
                        bytes += blockBytes;
                        storedBlocks++;
                        parent.children++;
                    }
                    e.refs++; // so that making room for the next block cannot evict its parent
                    lease.held.add(e);
                    parent = e;
                }
            }
        } finally {
            release(lease, 0, 0);
        }
    }

    /// Evicts least recently used free leaves until one more block fits; false if it cannot.
    private boolean makeRoom() {
        while (bytes + blockBytes > budget) {
            Entry victim = null;
            for (Iterator<Entry> it = entries.values().iterator(); it.hasNext(); ) {
                Entry e = it.next();
                if (e.refs == 0 && e.children == 0) {
                    victim = e;
                    it.remove();
                    break;
                }
            }
            if (victim == null) {
                return false;
            }
            bytes -= blockBytes;
            evictedBlocks++;
            victim.parent.children--;
        }
        return true;
    }
}
