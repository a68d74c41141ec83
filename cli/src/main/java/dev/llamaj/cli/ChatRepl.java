package dev.llamaj.cli;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.template.Message;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/// The interactive chat: read a line, answer it with the model's chat template, stream the answer.
///
/// Each turn renders the whole conversation and compares it with the tokens already in the session: only the
/// new suffix is processed (the stats line shows how many tokens were reused). When the conversation no longer
/// fits in the context, the oldest turns are dropped (the system message stays) and the user is told.
/// Ctrl-C during an answer stops that answer; the program goes on.
final class ChatRepl {
    private static final String HELP = "commands: /reset (forget the conversation), /system TEXT (set the system "
            + "message and reset), /stats (context use), /exit (or Ctrl-D)";

    private final Session session;
    private final ChatFormat format;
    private final Sampler sampler;
    /// Makes each answer's grammar constraint (`--grammar`, `--json-schema`, `--json`), or null.
    private final java.util.function.Supplier<dev.llamaj.engine.TokenConstraint> constraint;
    private int answers;
    private final int maxTokens;
    private final List<String> stops;
    private final PrintStream out;
    private final PrintStream err;
    private final List<Message> messages = new ArrayList<>();
    private String system;
    private volatile boolean answering;
    private Completion last;

    ChatRepl(Session session, ChatFormat format, Sampler sampler, int maxTokens, List<String> stops, String system,
             PrintStream out, PrintStream err) {
        this(session, format, sampler, null, maxTokens, stops, system, out, err);
    }

    /// With `constraint`, every answer is held to a fresh constraint from it (one grammar match per answer),
    /// drawn by a sampler of `sampler`'s settings seeded `seed + answer number`.
    ChatRepl(Session session, ChatFormat format, Sampler sampler,
             java.util.function.Supplier<dev.llamaj.engine.TokenConstraint> constraint, int maxTokens,
             List<String> stops, String system, PrintStream out, PrintStream err) {
        this.session = session;
        this.format = format;
        this.sampler = sampler;
        this.constraint = constraint;
        this.maxTokens = maxTokens;
        this.stops = stops;
        this.system = system;
        this.out = out;
        this.err = err;
    }

    /// Speculative decoding of every answer (null: none).
    private dev.llamaj.engine.Speculation speculation;

    /// Answers with `speculation` (null: none); returns this.
    ChatRepl speculate(dev.llamaj.engine.Speculation speculation) {
        this.speculation = speculation;
        return this;
    }

    /// Called from the Ctrl-C handler: stops an answer in progress; returns false when idle.
    boolean interrupt() {
        if (answering) {
            session.cancel();
            return true;
        }
        return false;
    }

    void run(BufferedReader in) throws IOException {
        err.println("llama: chat with the model; " + HELP);
        while (true) {
            out.print("> ");
            out.flush();
            String line = in.readLine();
            if (line == null) {
                out.println();
                return;
            }
            line = line.strip();
            if (line.isEmpty()) {
                continue;
            }
            if (line.startsWith("/")) {
                if (!command(line)) {
                    return;
                }
                continue;
            }
            answer(line);
        }
    }

    /// Runs a slash command; returns false to leave the chat.
    private boolean command(String line) {
        String name = line.split("\\s+", 2)[0];
        String arg = line.length() > name.length() ? line.substring(name.length()).strip() : "";
        switch (name) {
            case "/exit", "/quit" -> {
                return false;
            }
            case "/reset" -> {
                messages.clear();
                session.reset();
                err.println("llama: conversation reset");
            }
            case "/system" -> {
                system = arg.isEmpty() ? null : arg;
                messages.clear();
                session.reset();
                err.println("llama: system message " + (system == null ? "cleared" : "set") + "; conversation reset");
            }
            case "/stats" -> err.println(String.format(Locale.ROOT, "llama: context %d/%d tokens, %d messages%s",
                    session.position(), session.contextLength(), messages.size(),
                    last == null ? "" : ", last answer " + last.generatedTokens() + " tokens at "
                            + String.format(Locale.ROOT, "%.1f", last.tokensPerSecond()) + " tokens/s"));
            case "/help" -> err.println("llama: " + HELP);
            default -> err.println("llama: unknown command " + name + "; " + HELP);
        }
        return true;
    }

    private void answer(String userText) {
        messages.add(Message.user(userText));
        int[] prompt = render();
        int dropped = 0;
        while (prompt.length >= session.contextLength() && messages.size() > 1) {
            messages.removeFirst();
            if (!messages.isEmpty() && messages.getFirst().role().equals("assistant")) {
                messages.removeFirst();
            }
            dropped++;
            prompt = render();
        }
        if (prompt.length >= session.contextLength()) {
            messages.removeLast();
            err.println("llama: this message is " + prompt.length + " tokens, more than the context of "
                    + session.contextLength() + " (raise --context)");
            return;
        }
        if (dropped > 0) {
            err.println("llama: the context is full: dropped the oldest " + dropped + " turn(s)");
        }
        session.rewind(commonPrefix(session.tokens(), prompt));
        int reused = session.position(); // less than the common prefix if a sliding-window cache could not go back
        int[] fresh = Arrays.copyOfRange(prompt, reused, prompt.length);
        Sampler turn = sampler;
        if (constraint != null) { // a constraint follows one answer: a sampler per answer
            turn = Sampler.create(sampler.settings().withSeed(sampler.settings().seed() + answers), constraint.get());
            for (int i = 0; i < reused; i++) {
                turn.accept(prompt[i]);
            }
        }
        answers++;
        answering = true;
        Completion c;
        try {
            c = session.generate(fresh, maxTokens, turn, stops, piece -> {
                out.print(piece);
                out.flush();
            }, null, speculation);
        } finally {
            answering = false;
        }
        out.println();
        messages.add(Message.assistant(c.text()));
        last = c;
        String note = switch (c.stopReason()) {
            case CANCELLED -> " | stopped by Ctrl-C";
            case CONTEXT_FULL -> " | the context is full: /reset, or the next turn drops the oldest turns";
            case MAX_TOKENS -> " | stopped at --max-tokens";
            default -> "";
        };
        err.println(String.format(Locale.ROOT,
                "llama: prompt %d new tokens (%d reused), %.1f tokens/s | %d tokens, %.1f tokens/s | context %d/%d%s",
                fresh.length, reused, c.promptTokensPerSecond(), c.generatedTokens(), c.tokensPerSecond(),
                session.position(), session.contextLength(), note));
    }

    private int[] render() {
        List<Message> all = new ArrayList<>();
        if (system != null) {
            all.add(Message.system(system));
        }
        all.addAll(messages);
        return format.render(all, true);
    }

    /// Tokens of `prompt` already in the session, leaving at least one to process (its logits are needed).
    static int commonPrefix(int[] have, int[] prompt) {
        int n = 0;
        int max = Math.min(have.length, prompt.length - 1);
        while (n < max && have[n] == prompt[n]) {
            n++;
        }
        return n;
    }
}
