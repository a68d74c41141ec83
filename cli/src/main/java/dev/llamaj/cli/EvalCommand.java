package dev.llamaj.cli;

import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/// `llama eval`: runs a golden set (JSONL: `id`, `prompt` or `messages`, `expected`, `match`) with greedy
/// decoding, prints pass/fail per item, accuracy and speed, the cost per million tokens at a given machine
/// price, and writes a JSON report.
///
/// Every line is validated before the model is loaded; a bad line stops the run with its line number (a golden
/// set with a broken item would give a misleading accuracy).
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Evaluates a model on a golden set (JSONL) with greedy decoding: pass/fail per item, "
                + "accuracy, speed and cost per million tokens.")
final class EvalCommand implements Callable<Integer> {
    private static final int ANSWER_PREVIEW = 100;

    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = {"-g", "--golden"}, paramLabel = "FILE", required = true,
            description = "the golden set: one JSON object per line")
    Path golden;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "write the JSON report to FILE")
    Path output;

    @Option(names = "--cost-per-hour", paramLabel = "USD",
            description = "what the machine costs per hour, for the cost per million tokens")
    Double costPerHour;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N",
            description = "tokens to generate per item unless its line sets max_tokens (default: ${DEFAULT-VALUE})")
    int maxTokens = 128;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "context length in tokens (default: the model's, at most 4096)")
    Integer context;

    @Option(names = "--chat-template", paramLabel = "FILE|NAME",
            description = "chat template for items with messages: a Jinja file or chatml, llama3, plain "
                    + "(default: the model's)")
    String chatTemplate;

    @Option(names = "--min-accuracy", paramLabel = "PERCENT",
            description = "exit with status 1 if the accuracy is below PERCENT (a quality gate)")
    Double minAccuracy;

    @Option(names = "--progress", paramLabel = "MODE", converter = Progress.ModeConverter.class,
            description = "progress on stderr: auto, bar, lines or off (default: auto)")
    Progress.Mode progressMode = Progress.Mode.AUTO;

    /// How an answer is checked against `expected`.
    enum Match { EXACT, CONTAINS, REGEX }

    /// One golden item.
    record Item(int line, PromptLine request, List<String> expected, Match match, boolean ignoreCase,
                List<Pattern> patterns) {

        /// Whether `answer` passes: `exact` compares with surrounding whitespace removed, `contains` looks for the
        /// expected text anywhere, `regex` looks for a match anywhere (anchor with `^...$`); with several expected
        /// answers, any one passes.
        boolean passes(String answer) {
            for (int i = 0; i < expected.size(); i++) {
                String e = expected.get(i);
                boolean ok = switch (match) {
                    case EXACT -> ignoreCase ? answer.strip().equalsIgnoreCase(e.strip()) : answer.strip().equals(e.strip());
                    case CONTAINS -> ignoreCase ? answer.toLowerCase(Locale.ROOT).contains(e.toLowerCase(Locale.ROOT))
                            : answer.contains(e);
                    case REGEX -> patterns.get(i).matcher(answer).find();
                };
                if (ok) {
                    return true;
                }
            }
            return false;
        }

        /// `contains "Paris"`, for the table.
        String rule() {
            String values = expected.size() == 1 ? Json.quote(expected.getFirst())
                    : expected.stream().map(Json::quote).reduce((a, b) -> a + " or " + b).orElse("");
            return match.name().toLowerCase(Locale.ROOT) + (ignoreCase ? " (ignoring case) " : " ") + values;
        }
    }

    /// Parses a golden line.
    ///
    /// @throws PromptLine.Malformed if it is not a valid item
    static Item parseItem(int line, String text) {
        PromptLine request = PromptLine.parse(text);
        Map<String, Object> f = request.fields();
        List<String> expected = new ArrayList<>();
        Object e = f.get("expected");
        if (e instanceof String s) {
            expected.add(s);
        } else if (e instanceof List<?> list && !list.isEmpty()) {
            for (Object o : list) {
                if (!(o instanceof String s)) {
                    throw new PromptLine.Malformed("\"expected\" must be a string or a non-empty array of strings");
                }
                expected.add(s);
            }
        } else {
            throw new PromptLine.Malformed(e == null ? "no \"expected\" answer"
                    : "\"expected\" must be a string or a non-empty array of strings, got " + Json.typeName(e));
        }
        Object m = f.getOrDefault("match", "exact");
        Match match = switch (m instanceof String name ? name : "") {
            case "exact" -> Match.EXACT;
            case "contains" -> Match.CONTAINS;
            case "regex" -> Match.REGEX;
            default -> throw new PromptLine.Malformed("\"match\" must be \"exact\", \"contains\" or \"regex\", got "
                    + (m instanceof String ? Json.quote((String) m) : Json.typeName(m)));
        };
        Object ic = f.getOrDefault("ignore_case", false);
        if (!(ic instanceof Boolean ignoreCase)) {
            throw new PromptLine.Malformed("\"ignore_case\" must be true or false, got " + Json.typeName(ic));
        }
        List<Pattern> patterns = new ArrayList<>();
        if (match == Match.REGEX) {
            for (String s : expected) {
                try {
                    patterns.add(Pattern.compile(s, ignoreCase ? Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE : 0));
                } catch (PatternSyntaxException x) {
                    throw new PromptLine.Malformed("bad regular expression " + Json.quote(s) + ": "
                            + x.getDescription() + " near index " + x.getIndex());
                }
            }
        }
        return new Item(line, request, List.copyOf(expected), match, ignoreCase, patterns);
    }

    /// The outcome of one item.
    record Outcome(Item item, String answer, boolean passed, Completion completion, String error) {}

    @Override
    public Integer call() throws IOException {
        PrintStream out = parent.out;
        PrintStream err = parent.err;
        modelOptions.model(); // a missing --model is a usage error, before any work
        if (maxTokens < 0) {
            throw new IllegalArgumentException("--max-tokens must be 0 or more, got " + maxTokens);
        }
        if (costPerHour != null && !(costPerHour > 0 && Double.isFinite(costPerHour))) {
            throw new IllegalArgumentException("--cost-per-hour must be a positive number, got " + costPerHour);
        }
        if (minAccuracy != null && !(minAccuracy >= 0 && minAccuracy <= 100)) {
            throw new IllegalArgumentException("--min-accuracy must be a percentage from 0 to 100, got " + minAccuracy);
        }
        List<Item> items = readGolden();
        try (LlamaModel model = modelOptions.load()) {
            int contextLength = context != null ? context : model.defaultContextLength();
            if (contextLength < 1) {
                throw new IllegalArgumentException("--context must be 1 or more, got " + contextLength);
            }
            PromptLine.ChatTemplates chat = new PromptLine.ChatTemplates(model, chatTemplate);
            if (items.stream().anyMatch(i -> i.request().messages() != null)) {
                chat.format(); // no template, or a broken one, is the same for every item: say so before starting
            }
            int idWidth = Math.min(24, Math.max(2, items.stream().mapToInt(i -> display(i.request().id()).length())
                    .max().orElse(2)));
            String format = "%-" + idWidth + "s  %-6s %7s %6s  %s";
            Progress progress = new Progress(err, "eval", "items", items.size(), progressMode);
            progress.println(out, String.format(Locale.ROOT, format, "ID", "RESULT", "PROMPT", "GEN", "ANSWER (on failure)")
                    .stripTrailing());
            List<Outcome> outcomes = new ArrayList<>();
            try (Session session = model.newSession(contextLength)) {
                warmUp(session, items.getFirst(), chat);
                for (Item item : items) {
                    Outcome o = run(item, session, chat);
                    outcomes.add(o);
                    String detail = o.error() != null ? "error: " + o.error()
                            : o.passed() ? "" : preview(o.answer()) + " (expected " + item.rule() + ")";
                    progress.println(out, String.format(Locale.ROOT, format, clip(display(item.request().id()), idWidth),
                            o.passed() ? "pass" : o.error() != null ? "ERROR" : "FAIL",
                            o.completion() != null ? o.completion().promptTokens() : "-",
                            o.completion() != null ? o.completion().generatedTokens() : "-", detail).stripTrailing());
                    progress.advance(1, o.completion() != null ? o.completion().generatedTokens() : 0);
                }
            }
            progress.finish();
            Summary s = Summary.of(outcomes, costPerHour);
            out.println();
            out.printf(Locale.ROOT, "accuracy: %d/%d = %.1f%%%n", s.passed, s.total, s.accuracy() * 100);
            out.printf(Locale.ROOT, "speed: prompt %d tokens, %.1f tokens/s | generation %d tokens, %.1f tokens/s%n",
                    s.promptTokens, s.promptTokensPerSecond(), s.generatedTokens, s.generationTokensPerSecond());
            if (costPerHour != null) {
                out.printf(Locale.ROOT, "cost at $%.2f/hour: $%s per million generated tokens, $%s per million prompt "
                                + "tokens%n", costPerHour, money(s.costPerMillionGenerated()),
                        money(s.costPerMillionPrompt()));
            }
            out.flush();
            if (output != null) {
                CliFiles.writeString(output, Json.writePretty(report(outcomes, s, contextLength, model)) + "\n");
            }
            if (minAccuracy != null && s.accuracy() * 100 < minAccuracy) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "accuracy %.1f%% is below --min-accuracy %s%%", s.accuracy() * 100, minAccuracy));
            }
        }
        return 0;
    }

    private List<Item> readGolden() throws IOException {
        List<Item> items = new ArrayList<>();
        Map<String, Integer> ids = new HashMap<>();
        try (JsonLines lines = new JsonLines(golden)) {
            for (JsonLines.Line line; (line = lines.next()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                try {
                    if (line.error() != null) {
                        throw new PromptLine.Malformed(line.error());
                    }
                    Item item = parseItem(line.number(), line.text());
                    Integer first = ids.putIfAbsent(item.request().idKey(), line.number());
                    if (first != null) {
                        throw new PromptLine.Malformed("duplicate id " + item.request().idKey() + " (first on line "
                                + first + ")");
                    }
                    items.add(item);
                } catch (PromptLine.Malformed e) {
                    throw new IllegalArgumentException(golden + " line " + line.number() + ": " + e.getMessage());
                }
            }
        }
        if (items.isEmpty()) {
            throw new IllegalArgumentException(golden + ": no items (one JSON object per line)");
        }
        return items;
    }

    /// Runs the first item's prompt once, untimed, so that the measured speeds (and costs) are those of a warm
    /// JVM rather than of the JIT compiler's first minutes, as llama.cpp's `llama-bench` warms up too.
    private static void warmUp(Session session, Item first, PromptLine.ChatTemplates chat) {
        try {
            session.reset();
            session.generate(first.request().tokens(session, chat), 8, Sampler.greedy(), _ -> {});
        } catch (IllegalArgumentException e) {
            // the item itself will report it
        }
    }

    private Outcome run(Item item, Session session, PromptLine.ChatTemplates chat) {
        session.reset();
        try {
            int[] tokens = item.request().tokens(session, chat);
            Completion c = session.generate(tokens, item.request().maxTokens(maxTokens), Sampler.greedy(),
                    item.request().stops(), _ -> {});
            return new Outcome(item, c.text(), item.passes(c.text()), c, null);
        } catch (IllegalArgumentException e) {
            return new Outcome(item, null, false, null, e.getMessage());
        }
    }

    /// Totals over the run.
    record Summary(int total, int passed, long promptTokens, long promptNanos, long generatedTokens,
                   long generationNanos, Double costPerHour) {
        static Summary of(List<Outcome> outcomes, Double costPerHour) {
            int passed = 0;
            long pt = 0;
            long pn = 0;
            long gt = 0;
            long gn = 0;
            for (Outcome o : outcomes) {
                passed += o.passed() ? 1 : 0;
                if (o.completion() != null) {
                    pt += o.completion().promptTokens();
                    pn += o.completion().promptNanos();
                    gt += o.completion().generatedTokens();
                    gn += o.completion().generationNanos();
                }
            }
            return new Summary(outcomes.size(), passed, pt, pn, gt, gn, costPerHour);
        }

        double accuracy() {
            return total == 0 ? 0 : (double) passed / total;
        }

        double promptTokensPerSecond() {
            return promptNanos == 0 ? 0 : promptTokens * 1e9 / promptNanos;
        }

        double generationTokensPerSecond() {
            return generationNanos == 0 ? 0 : generatedTokens * 1e9 / generationNanos;
        }

        /// What a million generated tokens cost at the measured generation speed (NaN without a speed).
        double costPerMillionGenerated() {
            return costPerMillion(generationTokensPerSecond());
        }

        double costPerMillionPrompt() {
            return costPerMillion(promptTokensPerSecond());
        }

        private double costPerMillion(double tokensPerSecond) {
            return costPerHour == null || tokensPerSecond <= 0 ? Double.NaN
                    : costPerHour / 3600.0 / tokensPerSecond * 1e6;
        }
    }

    private Map<String, Object> report(List<Outcome> outcomes, Summary s, int contextLength, LlamaModel model) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("model", modelOptions.model().toString());
        r.put("golden", golden.toString());
        r.put("context", contextLength);
        r.put("threads", model.threads());
        r.put("total", s.total);
        r.put("passed", s.passed);
        r.put("accuracy", s.accuracy());
        r.put("prompt_tokens", s.promptTokens);
        r.put("generated_tokens", s.generatedTokens);
        r.put("prompt_tokens_per_second", s.promptTokensPerSecond());
        r.put("generation_tokens_per_second", s.generationTokensPerSecond());
        if (costPerHour != null) {
            r.put("cost_per_hour", costPerHour);
            r.put("cost_per_million_generated_tokens", s.costPerMillionGenerated());
            r.put("cost_per_million_prompt_tokens", s.costPerMillionPrompt());
        }
        List<Object> list = new ArrayList<>();
        for (Outcome o : outcomes) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", o.item().request().id());
            m.put("line", o.item().line());
            m.put("pass", o.passed());
            m.put("answer", o.answer());
            m.put("expected", o.item().expected().size() == 1 ? o.item().expected().getFirst() : o.item().expected());
            m.put("match", o.item().match().name().toLowerCase(Locale.ROOT));
            m.put("ignore_case", o.item().ignoreCase());
            if (o.error() != null) {
                m.put("error", o.error());
            }
            Completion c = o.completion();
            if (c != null) {
                m.put("stop_reason", c.stopReason().name().toLowerCase(Locale.ROOT));
                m.put("prompt_tokens", c.promptTokens());
                m.put("generated_tokens", c.generatedTokens());
                m.put("prompt_seconds", c.promptNanos() / 1e9);
                m.put("generation_seconds", c.generationNanos() / 1e9);
            }
            list.add(m);
        }
        r.put("items", list);
        return r;
    }

    /// `$1.2346` with four significant decimals for small amounts.
    static String money(double usd) {
        if (!Double.isFinite(usd)) {
            return "?";
        }
        return usd >= 100 ? String.format(Locale.ROOT, "%.0f", usd)
                : usd >= 1 ? String.format(Locale.ROOT, "%.2f", usd) : String.format(Locale.ROOT, "%.4f", usd);
    }

    private static String display(Object id) {
        return id instanceof String s ? s : String.valueOf(id);
    }

    private static String clip(String s, int width) {
        return s.length() <= width ? s : s.substring(0, width - 1) + "…";
    }

    /// The answer quoted on one line, shortened.
    private static String preview(String answer) {
        String q = Json.quote(answer);
        return q.length() <= ANSWER_PREVIEW ? q : q.substring(0, ANSWER_PREVIEW - 2) + "…\"";
    }
}
