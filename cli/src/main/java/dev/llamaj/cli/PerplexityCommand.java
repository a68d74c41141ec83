package dev.llamaj.cli;

import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Perplexity;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/// `llama perplexity`: the perplexity of a model on a text, as llama.cpp's `llama-perplexity` computes it (see
/// [Perplexity]), optionally compared with a reference model (KL divergence, top-1 agreement, perplexity ratio).
///
/// stdout gets one table row per chunk with the running value, then llama.cpp's `[1]4.2265,[2]...` line and the
/// final estimate; stderr gets the progress with ETA.
@Command(name = "perplexity", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measures the perplexity of a model on a text file, the way llama.cpp's llama-perplexity "
                + "does; with --reference, also the KL divergence from a reference model.")
final class PerplexityCommand implements Callable<Integer> {
    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", required = true,
            description = "the text to score ('-' for stdin)")
    String file;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "tokens per chunk (default: ${DEFAULT-VALUE})")
    int context = 512;

    @Option(names = "--chunks", paramLabel = "N", description = "score at most N chunks (default: all)")
    Integer chunks;

    @Option(names = "--reference", paramLabel = "FILE",
            description = "a reference model with the same vocabulary (e.g. the F16 original of a quantized model)")
    Path reference;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "also write the results as JSON to FILE")
    Path output;

    @Option(names = "--progress", paramLabel = "MODE", converter = Progress.ModeConverter.class,
            description = "progress on stderr: auto, bar, lines or off (default: auto)")
    Progress.Mode progressMode = Progress.Mode.AUTO;

    @Override
    public Integer call() throws IOException {
        PrintStream out = parent.out;
        PrintStream err = parent.err;
        modelOptions.model(); // a missing --model is a usage error, before any work
        if (chunks != null && chunks < 1) {
            throw new IllegalArgumentException("--chunks must be 1 or more, got " + chunks);
        }
        if (context < 4) {
            throw new IllegalArgumentException("--context must be 4 or more for perplexity, got " + context);
        }
        String text = readText();
        try (LlamaModel model = modelOptions.load();
             LlamaModel ref = reference != null ? LlamaModel.load(reference, modelOptions.loadOptions(modelOptions.threads)) : null) {
            int[] tokens = Perplexity.tokenize(model, text);
            int trained = model.config().contextLength();
            if (context > trained) {
                err.println("llama: warning: the model was trained with a context of " + trained + " tokens, less than "
                        + context);
            }
            int n = Perplexity.chunkCount(tokens.length, context, chunks != null ? chunks : -1);
            if (tokens.length >= 2 * context) {
                err.printf(Locale.ROOT, "llama: perplexity over %d chunks of %d tokens (%d tokens in the text, %d scored"
                        + " per chunk)%s%n", n, context, tokens.length, context - context / 2 - 1,
                        ModelOptions.cacheSummary(model));
            }
            Progress progress = new Progress(err, "perplexity", "chunks", n, progressMode);
            List<String> compact = new ArrayList<>();
            boolean[] header = {false};
            Perplexity.Result result = Perplexity.compute(model, tokens, context, chunks != null ? chunks : -1, ref,
                    chunk -> {
                        if (!header[0]) {
                            progress.println(out, ref == null
                                    ? "chunk        PPL    ± error"
                                    : "chunk        PPL    ± error    ref PPL    mean KL   top-1");
                            header[0] = true;
                        }
                        compact.add(String.format(Locale.ROOT, "[%d]%.4f", chunk.chunk(), chunk.perplexity()));
                        progress.println(out, row(chunk));
                        progress.advance(1, 0);
                    });
            progress.finish();
            out.println(String.join(",", compact));
            out.printf(Locale.ROOT, "Final estimate: PPL = %.4f +/- %.5f%n", result.perplexity(), result.uncertainty());
            Perplexity.Comparison c = result.comparison();
            if (c != null) {
                out.printf(Locale.ROOT, "Reference:      PPL = %.4f +/- %.5f%n", c.referencePerplexity(),
                        c.referenceUncertainty());
                out.printf(Locale.ROOT, "PPL ratio (model / reference): %.4f +/- %.4f%n", c.perplexityRatio(),
                        c.perplexityRatioUncertainty());
                out.printf(Locale.ROOT, "Mean KL divergence: %.6f +/- %.6f nats (max %.6f)%n", c.meanKl(),
                        c.klUncertainty(), c.maxKl());
                out.printf(Locale.ROOT, "Top-1 agreement: %.2f%% +/- %.2f%%%n", 100 * c.top1Agreement(),
                        100 * c.top1Uncertainty());
            }
            out.flush();
            err.printf(Locale.ROOT, "llama: %d tokens scored in %.2f s (%.1f tokens/s evaluated)%n",
                    result.scoredTokens(), result.nanos() / 1e9,
                    (double) result.chunks() * (context - 1) * (ref != null ? 2 : 1) / (result.nanos() / 1e9));
            if (output != null) {
                CliFiles.writeString(output, Json.writePretty(report(result)) + "\n");
            }
        }
        return 0;
    }

    private static String row(Perplexity.Chunk chunk) {
        String s = String.format(Locale.ROOT, "%-8s %8.4f  %9.5f", "[" + chunk.chunk() + "]", chunk.perplexity(),
                chunk.uncertainty());
        Perplexity.Comparison c = chunk.comparison();
        if (c != null) {
            s += String.format(Locale.ROOT, "  %9.4f  %9.6f  %6.2f%%", c.referencePerplexity(), c.meanKl(),
                    100 * c.top1Agreement());
        }
        return s;
    }

    private Map<String, Object> report(Perplexity.Result r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", modelOptions.model().toString());
        m.put("file", file);
        m.put("context", r.contextLength());
        m.put("tokens", r.tokens());
        m.put("chunks", r.chunks());
        m.put("scored_tokens", r.scoredTokens());
        m.put("per_chunk", round(r.perChunk()));
        m.put("perplexity", r.perplexity());
        m.put("uncertainty", r.uncertainty());
        m.put("seconds", r.nanos() / 1e9);
        Perplexity.Comparison c = r.comparison();
        if (c != null) {
            Map<String, Object> ref = new LinkedHashMap<>();
            ref.put("model", reference.toString());
            ref.put("perplexity", c.referencePerplexity());
            ref.put("uncertainty", c.referenceUncertainty());
            ref.put("perplexity_ratio", c.perplexityRatio());
            ref.put("perplexity_ratio_uncertainty", c.perplexityRatioUncertainty());
            ref.put("mean_kl", c.meanKl());
            ref.put("mean_kl_uncertainty", c.klUncertainty());
            ref.put("max_kl", c.maxKl());
            ref.put("top1_agreement", c.top1Agreement());
            ref.put("top1_agreement_uncertainty", c.top1Uncertainty());
            m.put("reference", ref);
        }
        return m;
    }

    private static List<Double> round(double[] values) {
        List<Double> list = new ArrayList<>();
        for (double v : values) {
            list.add(Math.round(v * 10000) / 10000.0);
        }
        return list;
    }

    /// The largest `--file`: the text is held in memory as tokens as well (wikitext-103's test set, 1.3 MB, is the
    /// usual one), and a bound for a device or pipe that never ends.
    static final long MAX_TEXT_BYTES = 256L << 20;

    private String readText() throws IOException {
        byte[] bytes;
        if (file.equals("-")) {
            InputStream in = System.in;
            bytes = in.readAllBytes();
        } else {
            bytes = CliFiles.readBounded(Path.of(file), MAX_TEXT_BYTES, "text file");
        }
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IOException((file.equals("-") ? "stdin" : file) + ": the text is not valid UTF-8");
        }
    }
}
