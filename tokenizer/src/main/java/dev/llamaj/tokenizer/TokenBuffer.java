package dev.llamaj.tokenizer;

import java.util.Arrays;

/// A growable `int[]`: the tokenizers' output and scratch lists, without boxing.
final class TokenBuffer {
    private int[] values;
    private int size;

    TokenBuffer(int capacity) {
        values = new int[Math.max(4, capacity)];
    }

    void add(int value) {
        if (size == values.length) {
            values = Arrays.copyOf(values, values.length * 2);
        }
        values[size++] = value;
    }

    int get(int i) {
        assert i < size;
        return values[i];
    }

    int size() {
        return size;
    }

    void clear() {
        size = 0;
    }

    int[] toArray() {
        return Arrays.copyOf(values, size);
    }
}
