package dev.llamaj.cli;

import dev.llamaj.tokenizer.Vocabulary;

/// A cheap bound on prompt text: no token stands for more characters than the longest piece of the vocabulary, so
/// a text longer than the context times that cannot fit, whatever it says. Checked before tokenizing, which takes
/// about a second and gigabytes per 10 MB of text (a 50 MB `batch` line took 22 s and 3.7 GB to be refused).
public final class PromptBound {
    private record Longest(Vocabulary vocabulary, int chars) {}

    /// The last vocabulary measured (one model per process, in practice).
    private static volatile Longest last;

    private PromptBound() {}

    /// Characters of text at most that can fit in `contextLength` tokens.
    public static long maxChars(Vocabulary vocabulary, int contextLength) {
        Longest l = last;
        if (l == null || l.vocabulary() != vocabulary) {
            int longest = 1;
            for (int t = 0; t < vocabulary.size(); t++) {
                longest = Math.max(longest, vocabulary.piece(t).length());
            }
            l = new Longest(vocabulary, longest);
            last = l;
        }
        return (long) contextLength * l.chars();
    }

    /// Texts this short are tokenized anyway (milliseconds), so that a prompt that does not fit is reported in
    /// tokens, the exact measure.
    static final long TOKENIZE_ANYWAY_CHARS = 1 << 16;

    /// Throws unless `chars` characters can fit in `contextLength` tokens (or are few enough to tokenize anyway),
    /// with the message the CLI prints.
    public static void check(long chars, Vocabulary vocabulary, int contextLength) {
        if (chars <= TOKENIZE_ANYWAY_CHARS) {
            return;
        }
        long max = maxChars(vocabulary, contextLength);
        if (chars > max) {
            throw new dev.llamaj.engine.ContextLengthException("prompt is " + chars + " characters but at most "
                    + max + " can fit in the context of " + contextLength + " tokens",
                    dev.llamaj.engine.ContextLengthException.Remedy.LONGER);
        }
    }
}
