package dev.llamaj.cli;

import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.Speculation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Option;

/// Speculative decoding options: a draft model or prompt lookup proposes tokens that the model checks in batches
/// ([Speculation]).
final class SpeculationOptions {
    @Option(names = "--draft-model", paramLabel = "FILE",
            description = "speculative decoding: a smaller model with the same vocabulary proposes tokens that the "
                    + "model checks several at a time (builtin:stories260K is the demo model)")
    String draftModel;

    @Option(names = "--lookup", description = "speculative decoding by prompt lookup: the tokens that followed the "
            + "last few tokens earlier in the prompt or output are proposed (pays off when the output copies the "
            + "input)")
    boolean lookup;

    @Option(names = "--lookup-ngram", paramLabel = "N",
            description = "prompt lookup matches the last N tokens at most, down to 1 (implies --lookup; default: "
                    + Speculation.DEFAULT_NGRAM + ")")
    Integer lookupNgram;

    @Option(names = "--draft-max", paramLabel = "N",
            description = "most tokens proposed per verification pass (default: " + Speculation.DEFAULT_MAX_DRAFT
                    + ")")
    Integer draftMax;

    @Option(names = "--draft-exact", description = "verify proposals one token at a time, so that greedy output "
            + "is exactly the output without speculation (no speed-up: see the README)")
    boolean exact;

    /// Whether any speculation was asked for (checks the combination first).
    boolean enabled() {
        check();
        return draftModel != null || lookup || lookupNgram != null;
    }

    /// Refuses contradictory or out-of-range values, in one line naming the option.
    void check() {
        boolean lookingUp = lookup || lookupNgram != null;
        if (draftModel != null && lookingUp) {
            throw new IllegalArgumentException("give either --draft-model or --lookup, not both");
        }
        if (lookupNgram != null && lookupNgram < 1) {
            throw new IllegalArgumentException("--lookup-ngram must be 1 or more, got " + lookupNgram);
        }
        if (draftMax != null && draftMax < 1) {
            throw new IllegalArgumentException("--draft-max must be 1 or more, got " + draftMax);
        }
        if (draftModel == null && !lookingUp && (draftMax != null || exact)) {
            throw new IllegalArgumentException((draftMax != null ? "--draft-max" : "--draft-exact")
                    + " needs --draft-model FILE or --lookup");
        }
    }

    /// What the speculation is, for reports: `draft model x.gguf, up to 8 tokens` or `prompt lookup (3-grams), ...`.
    String describe() {
        String source = draftModel != null ? "draft model " + Path.of(draftModel).getFileName()
                : "prompt lookup (n-grams up to " + ngram() + ")";
        return String.format(Locale.ROOT, "%s, up to %d tokens a pass%s", source, maxDraft(),
                exact ? ", verified one token at a time" : "");
    }

    int maxDraft() {
        return draftMax != null ? draftMax : Speculation.DEFAULT_MAX_DRAFT;
    }

    int ngram() {
        return lookupNgram != null ? lookupNgram : Speculation.DEFAULT_NGRAM;
    }

    /// Opens the speculation for `target` (null if none was asked for): for a draft model, loads it with
    /// `modelOptions`' load settings; [Speculator#speculation()] gets a draft session of `contextLength` tokens.
    ///
    /// @throws IOException              if the draft model file is missing or unreadable
    /// @throws IllegalArgumentException if its vocabulary differs from the model's
    Speculator open(LlamaModel target, int contextLength, ModelOptions modelOptions) throws IOException {
        if (!enabled()) {
            return null;
        }
        if (draftModel == null) {
            return new Speculator(this, null, contextLength);
        }
        // `builtin:stories260K` drafts for itself: the upper bound of acceptance, for trying the options out
        Path file = BuiltinModel.isBuiltin(draftModel) ? BuiltinModel.resolve(draftModel) : Path.of(draftModel);
        if (!Files.isRegularFile(file)) {
            throw new IOException("--draft-model " + draftModel
                    + (Files.isDirectory(file) ? ": is a directory" : ": no such file"));
        }
        LlamaModel model;
        try {
            model = LlamaModel.load(file, modelOptions.loadOptions(modelOptions.threads));
        } catch (IOException e) { // the message names the file; say which option it came from
            throw new IOException("--draft-model: " + e.getMessage(), e);
        }
        try {
            Speculation.checkCompatible(target, model);
        } catch (IllegalArgumentException e) {
            model.close();
            throw new IllegalArgumentException("--draft-model " + draftModel + ": " + e.getMessage());
        }
        return new Speculator(this, model, contextLength);
    }

    /// The draft model (if any) and the speculations made over it: one per session generating at the same time
    /// (a speculation, like its draft session, serves one generation at a time).
    static final class Speculator implements AutoCloseable {
        private final SpeculationOptions options;
        private final LlamaModel draftModel;
        private final java.util.List<Session> draftSessions = new java.util.ArrayList<>();
        private final int contextLength;
        private Speculation first;

        private Speculator(SpeculationOptions options, LlamaModel draftModel, int contextLength) {
            this.options = options;
            this.draftModel = draftModel;
            this.contextLength = contextLength;
        }

        /// The speculation of a command generating one text at a time (made on first use, with a draft session of
        /// the context length given to [SpeculationOptions#open]).
        synchronized Speculation speculation() {
            if (first == null) {
                first = newSpeculation(contextLength);
            }
            return first;
        }

        /// Another speculation, with its own draft session of `contextLength` tokens for a draft model.
        synchronized Speculation newSpeculation(int contextLength) {
            Speculation s;
            if (draftModel == null) {
                s = Speculation.promptLookup(options.ngram(), options.maxDraft());
            } else {
                Session session = draftModel.newSession(contextLength);
                draftSessions.add(session);
                s = Speculation.draftModel(session, options.maxDraft());
            }
            return options.exact ? s.exact() : s;
        }

        /// `speculation: 412 of 1,024 proposed tokens accepted (40.2%), 2.6 tokens per pass`.
        String summary() {
            Speculation s = speculation();
            double perPass = s.rounds() == 0 ? 0 : (double) (s.accepted() + s.rounds()) / s.rounds();
            return String.format(Locale.ROOT, "speculation: %,d of %,d proposed tokens accepted (%.1f%%), "
                    + "%.2f tokens per pass", s.accepted(), s.drafted(), 100 * s.acceptanceRate(), perPass);
        }

        /// The counters for `--output-format json`.
        java.util.Map<String, Object> json() {
            Speculation s = speculation();
            java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("proposed", s.drafted());
            m.put("accepted", s.accepted());
            m.put("acceptance_rate", s.acceptanceRate());
            m.put("passes", s.rounds());
            return m;
        }

        @Override
        public synchronized void close() {
            for (Session s : draftSessions) {
                s.close();
            }
            if (draftModel != null) {
                draftModel.close();
            }
        }
    }
}
