package dev.llamaj.cli.server;

import dev.llamaj.cli.Json;

/// What reading and parsing request bodies may cost in heap, per request and for the whole server.
///
/// A body of `n` bytes is held as bytes, then as text (`n` to `2n` bytes: Java strings take one byte per Latin-1
/// character and two otherwise), then as parsed JSON values. Without a bound the values are the problem: a 2 MiB
/// body of `[{},{},...]` became about 45 MB of `LinkedHashMap`s (sixteen of them at once exhausted a 512 MiB
/// heap, and the `OutOfMemoryError` killed the JDK HTTP server's timeout thread). So the parser stops once its
/// estimate of the values' heap passes [#TREE_BYTES_PER_BODY_BYTE] bytes per body byte (plus [#TREE_SLACK] for
/// small bodies), or [#MAX_VALUES] values, or [#MAX_DEPTH] levels: a request then costs at most [#cost] bytes,
/// about 9 per body byte. Requests reserve that much of a server-wide budget before their body is read and give it
/// back once it is parsed; a request that does not fit gets 503 at once.
final class RequestMemory {
    /// Nesting levels of a request body at most (requests need five).
    static final int MAX_DEPTH = 64;
    /// JSON values in a request body at most (a prompt of token ids counts one per token).
    static final int MAX_VALUES = 1 << 18;
    /// Estimated heap of the parsed values per byte of body, at most.
    static final int TREE_BYTES_PER_BODY_BYTE = 6;
    /// Estimated heap the parsed values may take beyond the above, for small bodies.
    static final long TREE_SLACK = 256 << 10;

    private final long budget;
    private long used; // guarded by this

    /// @param budget heap that bodies in flight may take together, in bytes
    RequestMemory(long budget) {
        this.budget = budget;
    }

    /// The parser's limits for a body of `bodyBytes`.
    static Json.Limits limits(long bodyBytes) {
        return new Json.Limits(MAX_DEPTH, MAX_VALUES, (int) Math.min(Integer.MAX_VALUE, bodyBytes),
                TREE_BYTES_PER_BODY_BYTE * bodyBytes + TREE_SLACK);
    }

    /// The most heap a body of `bodyBytes` takes while it is read and parsed: the bytes and the text (three bytes
    /// per body byte at most, while the text is decoded), then the text and the values (eight).
    static long cost(long bodyBytes) {
        return (1 + 2 + TREE_BYTES_PER_BODY_BYTE) * bodyBytes + TREE_SLACK;
    }

    /// The default budget: a quarter of the heap, and at least one body of `maxBodyBytes`.
    static long defaultBudget(long maxBodyBytes) {
        return Math.max(Runtime.getRuntime().maxMemory() / 4, cost(maxBodyBytes));
    }

    long budget() {
        return budget;
    }

    /// Takes `bytes` of the budget; false if that would go beyond it.
    synchronized boolean tryReserve(long bytes) {
        if (used + bytes > budget) {
            return false;
        }
        used += bytes;
        return true;
    }

    synchronized void release(long bytes) {
        used -= bytes;
    }

    synchronized long used() {
        return used;
    }
}
