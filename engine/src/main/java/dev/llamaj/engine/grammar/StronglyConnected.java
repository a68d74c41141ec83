package dev.llamaj.engine.grammar;

import java.util.Arrays;
import java.util.function.IntFunction;

/// Strongly connected components (Tarjan's algorithm, iterative so that a long chain of rules cannot overflow
/// the call stack).
final class StronglyConnected {
    private StronglyConnected() {}

    /// A component number per node; two nodes share one exactly when each reaches the other.
    static int[] components(int n, IntFunction<int[]> successors) {
        int[][] next = new int[n][];
        for (int v = 0; v < n; v++) {
            next[v] = successors.apply(v);
        }
        int[] index = new int[n], low = new int[n], component = new int[n], edge = new int[n];
        Arrays.fill(index, -1);
        boolean[] onStack = new boolean[n];
        int[] stack = new int[n], call = new int[n];
        int counter = 0, components = 0;
        for (int start = 0; start < n; start++) {
            if (index[start] >= 0) {
                continue;
            }
            int sp = 0, depth = 0;
            call[depth++] = start;
            index[start] = low[start] = counter++;
            stack[sp++] = start;
            onStack[start] = true;
            while (depth > 0) {
                int v = call[depth - 1];
                if (edge[v] < next[v].length) {
                    int w = next[v][edge[v]++];
                    if (index[w] < 0) {
                        index[w] = low[w] = counter++;
                        stack[sp++] = w;
                        onStack[w] = true;
                        call[depth++] = w;
                    } else if (onStack[w]) {
                        low[v] = Math.min(low[v], index[w]);
                    }
                    continue;
                }
                depth--;
                if (depth > 0) {
                    int parent = call[depth - 1];
                    low[parent] = Math.min(low[parent], low[v]);
                }
                if (low[v] == index[v]) {
                    int w;
                    do {
                        w = stack[--sp];
                        onStack[w] = false;
                        component[w] = components;
                    } while (w != v);
                    components++;
                }
            }
        }
        return component;
    }
}
