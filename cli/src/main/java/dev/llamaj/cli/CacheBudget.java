package dev.llamaj.cli;

import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.PrefixCache;
import java.util.Locale;

/// `--cache-budget SIZE` of `batch` and `serve`: the bytes the shared [PrefixCache] may hold.
///
/// Sizes are bytes, or a number with `K`, `M`, `G` (binary: 1024, 1024², 1024³; a trailing `B` or `iB` is
/// allowed); `0` turns the cache off. The default, [#DEFAULT] ([PrefixCache#defaultBudget]), is modest next to a
/// model (128 blocks of 64 positions of a 1B model with a half-precision cache), lowered to a quarter of the free
/// heap when the heap is small.
final class CacheBudget {
    /// The option's default text.
    static final String DEFAULT = "256M";

    private CacheBudget() {
    }

    /// Bytes of `text` for the option `option`.
    ///
    /// @throws IllegalArgumentException naming the option and the accepted forms
    static long parse(String option, String text) {
        String t = text.strip().toUpperCase(Locale.ROOT);
        if (t.endsWith("IB")) {
            t = t.substring(0, t.length() - 2);
        } else if (t.endsWith("B")) {
            t = t.substring(0, t.length() - 1);
        }
        int shift = 0;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> shift = 10;
                case 'M' -> shift = 20;
                case 'G' -> shift = 30;
                default -> { }
            }
        }
        String digits = shift == 0 ? t : t.substring(0, t.length() - 1);
        if (digits.isEmpty() || !digits.chars().allMatch(Character::isDigit) || digits.length() > 12) {
            throw new IllegalArgumentException(option + " must be a size such as 512M, 2G or 0 (off), got '" + text
                    + "'");
        }
        return Long.parseLong(digits) << shift;
    }

    /// The cache for `model` with `text` as the budget (null: the default), or null when it is 0 (off).
    ///
    /// @throws IllegalArgumentException as [#budget]
    static PrefixCache create(LlamaModel model, String option, String text) {
        long budget = budget(option, text);
        return budget == 0 ? null : new PrefixCache(model, budget);
    }

    /// The bytes `text` gives (null: [PrefixCache#defaultBudget]), at most the free heap, where the blocks live.
    ///
    /// @throws IllegalArgumentException if the size is malformed, or larger than the free heap
    static long budget(String option, String text) {
        if (text == null) {
            return PrefixCache.defaultBudget();
        }
        long budget = parse(option, text);
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (budget > free) {
            throw new IllegalArgumentException(option + " " + text + " is more than the " + (free >> 20)
                    + " MiB of heap free (lower it, or raise the heap limit, -Xmx)");
        }
        return budget;
    }

    /// `1.5 MiB`: a size for a summary line.
    static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1 << 20));
    }
}
