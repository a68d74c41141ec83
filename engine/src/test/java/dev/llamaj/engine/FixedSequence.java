package dev.llamaj.engine;

import java.util.Arrays;

/// A test constraint that allows exactly one token sequence, then only `end` (an end-of-generation token).
final class FixedSequence implements TokenConstraint {
    private final int[] tokens;
    private final int end;
    private int next;
    int masks;

    FixedSequence(int end, int... tokens) {
        this.tokens = tokens.clone();
        this.end = end;
    }

    @Override
    public void mask(float[] logits) {
        masks++;
        int allowed = isComplete() ? end : tokens[next];
        float keep = logits[allowed];
        Arrays.fill(logits, Float.NEGATIVE_INFINITY);
        logits[allowed] = keep;
    }

    @Override
    public void accept(int token) {
        int allowed = isComplete() ? end : tokens[next];
        if (token != allowed) {
            throw new IllegalArgumentException("token " + token + " cannot come next (expected " + allowed + ")");
        }
        if (!isComplete()) {
            next++;
        }
    }

    @Override
    public boolean isComplete() {
        return next == tokens.length;
    }
}
