package dev.llamaj.tokenizer;

import java.util.Arrays;

/// A binary min-heap of `long` keys: the agenda of candidate merges shared by both tokenizers.
///
/// A key packs a priority in its high 32 bits and the position of the left symbol in its low 32 bits, so that a
/// plain `long` comparison orders by priority and breaks ties leftmost-first, as llama.cpp's bigram queues do. The
/// tokenizers push a key whenever a pair forms and, on popping, skip keys that no longer describe the current pair
/// at that position (lazy deletion), so nothing is ever removed from the middle.
final class MergeQueue {
    private long[] heap;
    private int size;

    MergeQueue(int capacity) {
        heap = new long[Math.max(8, capacity)];
    }

    static long key(int priority, int position) {
        return ((long) priority << 32) | (position & 0xFFFF_FFFFL);
    }

    static int priority(long key) {
        return (int) (key >> 32);
    }

    static int position(long key) {
        return (int) key;
    }

    boolean isEmpty() {
        return size == 0;
    }

    void clear() {
        size = 0;
    }

    void push(long key) {
        if (size == heap.length) {
            heap = Arrays.copyOf(heap, size * 2);
        }
        int i = size++;
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (heap[parent] <= key) {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = key;
    }

    long pop() {
        assert size > 0;
        long top = heap[0];
        long last = heap[--size];
        int i = 0;
        int half = size >>> 1;
        while (i < half) {
            int child = 2 * i + 1;
            if (child + 1 < size && heap[child + 1] < heap[child]) {
                child++;
            }
            if (last <= heap[child]) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = last;
        return top;
    }
}
