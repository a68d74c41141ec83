package dev.llamaj.cli;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/// `llama --model x.gguf --prompt "..."`: loads a model and streams the continuation of a prompt to stdout.
@Command(name = "llama", mixinStandardHelpOptions = true, versionProvider = LlamaCommand.Version.class,
        sortOptions = false, usageHelpAutoWidth = true,
        description = "Runs Llama-architecture models from GGUF files on the JVM.",
        subcommands = {TokenizeCommand.class, InspectCommand.class, SynthCommand.class, BenchCommand.class,
                PerplexityCommand.class, EvalCommand.class, BatchCommand.class, ServeCommand.class})
final class LlamaCommand implements Callable<Integer> {
    final PrintStream out;
    final PrintStream err;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "the prompt to continue")
    String prompt;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "read the prompt from FILE ('-' for stdin)")
    String promptFile;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N",
            description = "tokens to generate at most; -1 until the context is full (default: ${DEFAULT-VALUE})")
    int maxTokens = 256;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "context length in tokens (default: the model's, at most 4096)")
    Integer context;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = {"-s", "--seed"}, paramLabel = "N", description = "random seed (default: random)")
    Long seed;

    @Mixin
    ConstraintOptions constraint = new ConstraintOptions();

    @Mixin
    SpeculationOptions speculation = new SpeculationOptions();

    @Option(names = "--stop", paramLabel = "TEXT", description = "stop when the text contains TEXT (repeatable)")
    List<String> stops = new ArrayList<>();

    @Option(names = "--chat", description = "interactive chat with the model's chat template")
    boolean chat;

    @Option(names = "--system", paramLabel = "TEXT", description = "the system message of the chat")
    String system;

    @Option(names = "--chat-template", paramLabel = "FILE|NAME",
            description = "Jinja chat template file, or a built-in one: chatml, llama3, plain (default: the model's)")
    String chatTemplate;

    @Option(names = "--output-format", paramLabel = "FORMAT", description = "text (streamed, the default) or json:"
            + " one JSON object (prompt and generated token ids, text, stop reason, log-probabilities, timings)")
    OutputFormat outputFormat = OutputFormat.text;

    LlamaCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    @Override
    public Integer call() throws IOException {
        boolean json = outputFormat == OutputFormat.json;
        if (chat && json) {
            throw new IllegalArgumentException("--output-format json does not apply to --chat");
        }
        String text = chat ? null : readPrompt();
        dev.llamaj.engine.grammar.Grammar grammar = constraint.grammar();
        if (maxTokens < -1) {
            throw new IllegalArgumentException("--max-tokens must be -1 or more, got " + maxTokens);
        }
        speculation.check();
        long seedValue = seed != null ? seed : System.nanoTime();
        Sampler.Settings settings = sampling.settings(seedValue);
        long loadStart = System.nanoTime();
        try (LlamaModel model = modelOptions.load()) {
            sampling.checkVocabulary(model.config().vocabSize());
            int contextLength = context != null ? context : model.defaultContextLength();
            if (contextLength < 1) {
                throw new IllegalArgumentException("--context must be 1 or more, got " + contextLength);
            }
            try (Session session = model.newSession(contextLength);
                 SpeculationOptions.Speculator speculator = speculation.open(model, contextLength, modelOptions)) {
                long loadNanos = System.nanoTime() - loadStart;
                if (modelOptions.verbose) {
                    err.println("llama: " + model.config() + ", seed " + seedValue
                            + ModelOptions.cacheSummary(model));
                }
                int limit = maxTokens < 0 ? Integer.MAX_VALUE : maxTokens;
                if (chat) {
                    String template = chatTemplate == null && modelOptions.builtin() ? BuiltinModel.CHAT_TEMPLATE
                            : chatTemplate;
                    ChatRepl repl = new ChatRepl(session, chatFormat(model, template), Sampler.create(settings),
                            grammar == null ? null : () -> grammar.newConstraint(model.tokenizer()), limit, stops,
                            system, out, err).speculate(speculator == null ? null : speculator.speculation());
                    try (Interrupts _ = Interrupts.onCtrlC(repl::interrupt)) {
                        repl.run(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
                    }
                    return 0;
                }
                PromptBound.check(text.length(), model.tokenizer().vocabulary(), contextLength);
                int[] tokens = session.encode(text);
                Completion c;
                try (Interrupts _ = Interrupts.onCtrlC(() -> {
                    session.cancel();
                    return true;
                })) {
                    Sampler sampler = Sampler.create(settings,
                            ConstraintOptions.constraint(grammar, model.tokenizer()));
                    c = session.generate(tokens, limit, sampler, stops, piece -> {
                        if (!json) {
                            out.print(piece);
                            out.flush();
                        }
                    }, null, speculator == null ? null : speculator.speculation());
                }
                if (json) {
                    int[] all = session.tokens();
                    Map<String, Object> result = jsonResult(text, tokens,
                            Arrays.copyOfRange(all, tokens.length, all.length), c, loadNanos, seedValue);
                    if (speculator != null) {
                        result.put("speculation", speculator.json());
                    }
                    out.println(Json.write(result));
                } else {
                    out.println();
                }
                out.flush();
                if (c.stopReason() == Completion.StopReason.CONTEXT_FULL) {
                    err.println("llama: stopped: the context of " + contextLength + " tokens is full (raise --context)");
                }
                err.println(stats(loadNanos, c));
                if (speculator != null) {
                    err.println("llama: " + speculator.summary());
                }
            }
        }
        return 0;
    }

    /// What `--output-format json` prints: enough to compare a run with another engine token by token, and to
    /// judge how sure the model was (`mean_logprob`, `min_logprob`: see [Completion.Token#logprob()]).
    static Map<String, Object> jsonResult(String prompt, int[] promptIds, int[] generatedIds, Completion c,
                                          long loadNanos, long seed) {
        Map<String, Object> timings = new LinkedHashMap<>();
        timings.put("load_ms", loadNanos / 1e6);
        timings.put("prompt_ms", c.promptNanos() / 1e6);
        timings.put("prompt_tokens_per_second", c.promptTokensPerSecond());
        timings.put("generation_ms", c.generationNanos() / 1e6);
        timings.put("tokens_per_second", c.tokensPerSecond());
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("prompt", prompt);
        r.put("prompt_ids", Arrays.stream(promptIds).boxed().toList());
        r.put("generated_ids", Arrays.stream(generatedIds).boxed().toList());
        r.put("text", c.text());
        r.put("stop_reason", c.stopReason().name().toLowerCase(Locale.ROOT));
        r.put("seed", seed);
        r.put("mean_logprob", c.meanLogprob());
        r.put("min_logprob", (double) c.minLogprob());
        r.put("timings", timings);
        return r;
    }

    /// The chat format `--chat-template` asks for: the model's own (no option), a built-in name, or a file.
    static ChatFormat chatFormat(LlamaModel model, String option) throws IOException {
        if (option == null) {
            return ChatFormat.of(model);
        }
        var builtin = ChatFormat.builtin(option);
        if (builtin.isPresent()) {
            return ChatFormat.of(model, builtin.get());
        }
        Path file = Path.of(option);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--chat-template " + option
                    + ": no such file or built-in template (built-in: chatml, llama3, plain)");
        }
        return ChatFormat.of(model, decodeUtf8(Files.readAllBytes(file), option));
    }

    static String stats(long loadNanos, Completion c) {
        return String.format(Locale.ROOT,
                "llama: load %.2f s | prompt %d tokens, %.1f tokens/s | generated %d tokens, %.1f tokens/s | stop: %s",
                loadNanos / 1e9, c.promptTokens(), c.promptTokensPerSecond(), c.generatedTokens(), c.tokensPerSecond(),
                c.stopReason().name().toLowerCase(Locale.ROOT).replace('_', ' '));
    }

    private String readPrompt() throws IOException {
        if (prompt != null && promptFile != null) {
            throw new IllegalArgumentException("give either --prompt or --file, not both");
        }
        if (prompt != null) {
            return prompt;
        }
        if (promptFile == null) {
            throw new IllegalArgumentException("no prompt: give --prompt TEXT or --file FILE ('-' reads stdin)");
        }
        byte[] bytes;
        if (promptFile.equals("-")) {
            try (InputStream in = System.in) {
                bytes = in.readAllBytes();
            }
        } else {
            bytes = CliFiles.readBounded(Path.of(promptFile), MAX_PROMPT_FILE_BYTES, "prompt file");
        }
        return decodeUtf8(bytes, promptFile.equals("-") ? "stdin" : promptFile);
    }

    /// The largest `--file`: far more than any context holds (a prompt that does not fit is refused anyway), and
    /// a bound for a device or pipe that never ends.
    static final long MAX_PROMPT_FILE_BYTES = 64L << 20;

    static String decodeUtf8(byte[] bytes, String source) throws IOException {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IOException(source + ": the prompt is not valid UTF-8");
        }
    }

    static final class Version implements picocli.CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = LlamaCommand.class.getPackage().getImplementationVersion();
            return new String[] {"llamaj " + (v != null ? v : "(development build)") + " on Java "
                    + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")"};
        }
    }
}
