package dev.llamaj.engine.grammar;

import java.util.Arrays;

/// Sets of code points as sorted, disjoint, non-adjacent inclusive ranges flattened into `[lo0, hi0, lo1, hi1,
/// ...]`: the form character classes take once parsed.
final class Ranges {
    private Ranges() {}

    /// Sorts and merges overlapping or adjacent pairs.
    static int[] normalize(int[] pairs) {
        int n = pairs.length / 2;
        long[] packed = new long[n];
        for (int i = 0; i < n; i++) {
            packed[i] = (long) pairs[2 * i] << 32 | pairs[2 * i + 1];
        }
        Arrays.sort(packed);
        int[] out = new int[pairs.length];
        int m = 0;
        for (long p : packed) {
            int lo = (int) (p >>> 32), hi = (int) p;
            if (m > 0 && lo <= out[m - 1] + 1) {
                out[m - 1] = Math.max(out[m - 1], hi);
            } else {
                out[m++] = lo;
                out[m++] = hi;
            }
        }
        return Arrays.copyOf(out, m);
    }

    /// Every code point not in `ranges`.
    static int[] complement(int[] ranges) {
        int[] out = new int[ranges.length + 2];
        int m = 0, next = 0;
        for (int i = 0; i < ranges.length; i += 2) {
            if (ranges[i] > next) {
                out[m++] = next;
                out[m++] = ranges[i] - 1;
            }
            next = ranges[i + 1] + 1;
        }
        if (next <= Character.MAX_CODE_POINT) {
            out[m++] = next;
            out[m++] = Character.MAX_CODE_POINT;
        }
        return Arrays.copyOf(out, m);
    }

    static int[] union(int[] a, int[] b) {
        int[] both = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, both, a.length, b.length);
        return normalize(both);
    }

    static int[] intersect(int[] a, int[] b) {
        return complement(union(complement(a), complement(b)));
    }

    static int[] minus(int[] a, int[] b) {
        return intersect(a, complement(b));
    }

    static boolean contains(int[] ranges, int cp) {
        for (int i = 0; i < ranges.length; i += 2) {
            if (cp < ranges[i]) {
                return false;
            }
            if (cp <= ranges[i + 1]) {
                return true;
            }
        }
        return false;
    }

    static boolean isEmpty(int[] ranges) {
        return ranges.length == 0;
    }
}
