package dev.llamaj.spark;

import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.tokenizer.Detokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.util.List;
import java.util.concurrent.CancellationException;

/// One row's generation, with the log-probability of every generated token.
///
/// The tokens, text and stop decisions are those of `Session.generate` (same prompt processing, same sampler
/// calls in the same order, same end-of-generation and stop-string rules), so a row gives exactly what the plain
/// API gives with the same seed; `LlamaSparkTest` checks that. The loop is written out here because the session's
/// own does not expose the logits it samples from.
///
/// The log-probability of a token is taken from the model's distribution before sampling (raw logits, softmax at
/// temperature 1, no penalty or truncation), as OpenAI's `logprobs` and llama.cpp's `n_probs` report it: it measures
/// how confident the model was, not how the sampler was tuned.
final class Generation {
    private Generation() {}

    /// `finish` is `stop` (end of generation or a stop string) or `length` (max tokens or a full context), as
    /// OpenAI names them; the log-probabilities are NaN when no token was generated.
    record Result(String text, String finish, int promptTokens, int completionTokens, double meanLogprob,
                  double minLogprob) {}

    /// Generates from `prompt` in `session` (emptied first: rows never share context, so a row's output does not
    /// depend on which rows ran before it in the same session); `maxTokens` -1 runs until the context is full.
    ///
    /// @throws IllegalArgumentException if the prompt is empty or does not fit in the context
    /// @throws CancellationException    if the thread is interrupted (the task was killed)
    static Result run(Session session, int[] prompt, int maxTokens, Sampler sampler, List<String> stops) {
        session.reset();
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        for (int t : prompt) {
            sampler.accept(t);
        }
        session.ingest(prompt);

        Vocabulary vocabulary = session.model().tokenizer().vocabulary();
        Detokenizer detokenizer = session.model().tokenizer().detokenizer();
        int limit = maxTokens < 0 ? Integer.MAX_VALUE : maxTokens;
        int maxStop = 0;
        for (String s : stops) {
            maxStop = Math.max(maxStop, s.length());
        }
        StringBuilder text = new StringBuilder();
        int[] one = new int[1];
        float[] scratch = null;
        String finish = "length";
        int generated = 0;
        double sum = 0;
        double min = Double.POSITIVE_INFINITY;
        boolean stopped = false;
        while (generated < limit) {
            if (Thread.currentThread().isInterrupted()) {
                throw new CancellationException("interrupted: the task was killed");
            }
            if (generated > 0) { // the previous token joins the context (Session.generate's pending token)
                session.ingest(one);
            }
            if (session.position() >= session.contextLength()) {
                break;
            }
            float[] logits = session.logits();
            if (scratch == null) {
                scratch = new float[logits.length];
            }
            // the sampler penalises in place: it gets a copy, the raw logits stay for the log-probability
            System.arraycopy(logits, 0, scratch, 0, logits.length);
            int token = sampler.sample(scratch);
            sampler.accept(token);
            if (vocabulary.isEndOfGeneration(token)) {
                finish = "stop";
                break;
            }
            double logprob = logits[token] - logSumExp(logits);
            sum += logprob;
            min = Math.min(min, logprob);
            generated++;
            one[0] = token;
            if (appendAndCut(text, detokenizer.append(token), stops, maxStop)) {
                stopped = true;
                break;
            }
        }
        if (!stopped) {
            stopped = appendAndCut(text, detokenizer.finish(), stops, maxStop);
        }
        if (stopped) {
            finish = "stop";
        }
        double mean = generated == 0 ? Double.NaN : sum / generated;
        return new Result(text.toString(), finish, prompt.length, generated, mean,
                generated == 0 ? Double.NaN : min);
    }

    /// Appends `piece`; if the text now contains a stop string, cuts it there and returns true. Only the region a
    /// new occurrence can lie in is searched (an earlier one would have stopped an earlier call).
    private static boolean appendAndCut(StringBuilder text, String piece, List<String> stops, int maxStop) {
        if (piece.isEmpty()) {
            return false;
        }
        int from = Math.max(0, text.length() - maxStop + 1);
        text.append(piece);
        int cut = -1;
        for (String s : stops) {
            int i = text.indexOf(s, from);
            if (i >= 0 && (cut < 0 || i < cut)) {
                cut = i;
            }
        }
        if (cut < 0) {
            return false;
        }
        text.setLength(cut);
        return true;
    }

    /// `log(sum(exp(logits)))`, shifted by the maximum so that nothing overflows.
    static double logSumExp(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp(v - max);
        }
        return max + Math.log(sum);
    }
}
