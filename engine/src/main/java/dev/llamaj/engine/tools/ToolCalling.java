package dev.llamaj.engine.tools;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.engine.grammar.GrammarException;
import dev.llamaj.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;

/// Tool calling for one request: shows the model its tools through its own chat template, and reads its answer
/// back into text and [ToolCall]s.
///
/// ```java
/// ChatFormat chat = ChatFormat.of(model);
/// Tool weather = Tool.of("get_weather", "Current weather of a city",
///         "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}");
/// ToolCalling tools = ToolCalling.of(chat, List.of(weather), ToolChoice.AUTO, true, 42L);
/// List<ChatMessage> conversation = new ArrayList<>(List.of(ChatMessage.user("Weather in Paris?")));
/// Completion c = session.generate(tools.render(conversation), 256, sampler, piece -> {});
/// ToolCalling.Result r = tools.parse(c.text());
/// if (r.hasCalls()) {
///     conversation.add(r.toMessage());
///     conversation.add(ChatMessage.toolResult(r.calls().get(0).id(), "get_weather", "{\"celsius\": 21}"));
///     // render and generate again for the answer
/// }
/// ```
///
/// The call format is read off the template ([ToolFormat#detect]). A template that knows nothing of tools gets
/// them in a system message written here ([ToolFormat#GENERIC]), and earlier calls and results as ordinary
/// assistant and user turns. Call ids are `call_` and 24 letters and digits (9 letters and digits for Mistral,
/// whose templates accept no other), drawn from the seed when one is given, so that a request with a seed is
/// reproducible, else at random.
public final class ToolCalling {
    private final ChatFormat chat;
    private final ToolFormat format;
    private final List<Tool> tools;
    private final ToolChoice choice;
    private final boolean parallel;
    private final SplittableRandom random;

    private ToolCalling(ChatFormat chat, ToolFormat format, List<Tool> tools, ToolChoice choice, boolean parallel,
                        Long seed) {
        this.chat = chat;
        this.format = format;
        this.tools = List.copyOf(tools);
        this.choice = choice;
        this.parallel = parallel && format.allowsParallelCalls();
        this.random = new SplittableRandom(seed != null ? seed ^ 0x7f4a7c15L : ThreadLocalRandom.current().nextLong());
    }

    /// @param chat     the model's chat format (its template decides the call format)
    /// @param tools    the functions; their names must differ
    /// @param choice   whether and which one must be called; a named function must be among `tools`
    /// @param parallel whether several calls may come in one answer (where the format allows it)
    /// @param seed     for reproducible call ids; null for random ones
    /// @throws IllegalArgumentException if two tools share a name, or `choice` names no tool, or requires a call
    ///                                  with no tools
    public static ToolCalling of(ChatFormat chat, List<Tool> tools, ToolChoice choice, boolean parallel, Long seed) {
        Objects.requireNonNull(chat, "chat");
        Objects.requireNonNull(tools, "tools");
        Objects.requireNonNull(choice, "choice");
        Set<String> names = new LinkedHashSet<>();
        for (Tool t : tools) {
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("two tools are named '" + t.name() + "'");
            }
        }
        if (choice.mode() == ToolChoice.Mode.FUNCTION && !names.contains(choice.function())) {
            throw new IllegalArgumentException("the tool choice names '" + choice.function()
                    + "', which is not one of the tools");
        }
        if (choice.forced() && tools.isEmpty()) {
            throw new IllegalArgumentException("a tool call is required but there are no tools");
        }
        return new ToolCalling(chat, ToolFormat.detect(chat.templateSource()), tools, choice, parallel, seed);
    }

    public ToolFormat format() {
        return format;
    }

    public List<Tool> tools() {
        return tools;
    }

    public ToolChoice choice() {
        return choice;
    }

    /// Whether several calls may come in one answer.
    public boolean parallel() {
        return parallel;
    }

    /// Whether the model is shown the tools and its answer is read for calls (there are tools and the choice is
    /// not `NONE`).
    public boolean active() {
        return !tools.isEmpty() && choice.mode() != ToolChoice.Mode.NONE;
    }

    /// The functions the model may call under the choice: all of them, or the one named.
    public Set<String> callableNames() {
        Set<String> names = new LinkedHashSet<>();
        for (Tool t : tools) {
            if (choice.mode() != ToolChoice.Mode.FUNCTION || t.name().equals(choice.function())) {
                names.add(t.name());
            }
        }
        return names;
    }

    /// A new call id (see the class comment).
    public synchronized String newId() {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        int n = format.shortIds() ? 9 : 24;
        StringBuilder sb = new StringBuilder(format.shortIds() ? "" : "call_");
        for (int i = 0; i < n; i++) {
            sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- the prompt

    /// The conversation as prompt tokens, ending with the assistant's header.
    ///
    /// @throws ChatFormat.InvalidMessageException if a role is not one the template handles
    /// @throws IllegalArgumentException           if the template fails, or a call's arguments are not JSON
    public int[] render(List<ChatMessage> messages) {
        return chat.render(templateMessages(messages), templateTools(), true);
    }

    /// [#render] as text.
    public String renderText(List<ChatMessage> messages) {
        return chat.renderText(templateMessages(messages), templateTools(), true);
    }

    private List<Map<String, Object>> templateTools() {
        if (!active() || !format.templateRendersTools()) {
            return null;
        }
        List<Map<String, Object>> list = new ArrayList<>();
        for (Tool t : tools) {
            list.add(t.toTemplateValue());
        }
        return list;
    }

    /// The messages as the template takes them. A template that renders tools gets OpenAI's shapes (a call's
    /// arguments as a JSON object, as Hugging Face templates expect); one that does not gets calls and results
    /// written out as text in assistant and user turns, and the tools in a system message.
    List<Map<String, Object>> templateMessages(List<ChatMessage> messages) {
        List<Map<String, Object>> out = new ArrayList<>();
        boolean generic = !format.templateRendersTools();
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            Map<String, Object> map = new LinkedHashMap<>();
            if (generic && !m.toolCalls().isEmpty()) {
                map.put("role", m.role());
                String calls = genericCalls(m.toolCalls());
                map.put("content", m.content() == null || m.content().isBlank() ? calls : m.content() + "\n" + calls);
            } else if (generic && m.role().equals("tool")) {
                // consecutive results become one user turn, so that turns still alternate
                StringBuilder sb = new StringBuilder();
                for (; i < messages.size() && messages.get(i).role().equals("tool"); i++) {
                    ChatMessage r = messages.get(i);
                    if (!sb.isEmpty()) {
                        sb.append("\n\n");
                    }
                    sb.append("Result of the call ").append(r.toolCallId());
                    if (r.name() != null) {
                        sb.append(" (").append(r.name()).append(')');
                    }
                    sb.append(":\n").append(r.content() == null ? "" : r.content());
                }
                i--;
                map.put("role", "user");
                map.put("content", sb.toString());
            } else {
                map.put("role", m.role());
                // an empty string rather than None for a turn that only calls: Qwen 3's template searches it
                map.put("content", m.content() == null ? "" : m.content());
                if (!m.toolCalls().isEmpty()) {
                    List<Map<String, Object>> calls = new ArrayList<>();
                    for (ToolCall c : m.toolCalls()) {
                        Map<String, Object> function = new LinkedHashMap<>();
                        function.put("name", c.name());
                        function.put("arguments", arguments(c));
                        Map<String, Object> call = new LinkedHashMap<>();
                        call.put("id", c.id());
                        call.put("type", "function");
                        call.put("function", function);
                        calls.add(call);
                    }
                    map.put("tool_calls", calls);
                }
                if (m.toolCallId() != null) {
                    map.put("tool_call_id", m.toolCallId());
                }
                if (m.name() != null) {
                    map.put("name", m.name());
                }
            }
            out.add(map);
        }
        if (generic && active()) {
            String instructions = genericInstructions();
            if (!out.isEmpty() && "system".equals(out.getFirst().get("role"))) {
                Object content = out.getFirst().get("content");
                out.getFirst().put("content", (content == null || content.toString().isEmpty() ? ""
                        : content + "\n\n") + instructions);
            } else {
                Map<String, Object> system = new LinkedHashMap<>();
                system.put("role", "system");
                system.put("content", instructions);
                out.addFirst(system);
            }
        }
        return out;
    }

    private static Object arguments(ToolCall c) {
        try {
            return c.parsedArguments();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("the arguments of tool call '" + c.id() + "' are not valid JSON: "
                    + e.getMessage(), e);
        }
    }

    /// Calls as [ToolFormat#GENERIC] asks the model to write them.
    private static String genericCalls(List<ToolCall> calls) {
        List<Object> list = new ArrayList<>();
        for (ToolCall c : calls) {
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("name", c.name());
            call.put("arguments", arguments(c));
            list.add(call);
        }
        return JsonText.write(list.size() == 1 ? list.getFirst() : list);
    }

    /// The system message of [ToolFormat#GENERIC]: the functions, then how to call them. Kept short, as small
    /// models are what need it.
    private String genericInstructions() {
        StringBuilder sb = new StringBuilder("Functions you can call (parameters as JSON Schema):\n");
        for (Tool t : tools) {
            sb.append(JsonText.write(t.toTemplateValue().get("function"))).append('\n');
        }
        sb.append("To call one, answer only {\"name\": <name>, \"arguments\": {...}}");
        if (parallel) {
            sb.append(", or an array of those to call several");
        }
        sb.append(". The results come in the next message.");
        switch (choice.mode()) {
            case REQUIRED -> sb.append(" Call a function now.");
            case FUNCTION -> sb.append(" Call ").append(choice.function()).append(" now.");
            default -> sb.append(" Otherwise answer as usual.");
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- the constraint

    /// A constraint that keeps the calls of one answer valid: the arguments follow the function's parameter
    /// schema once a call starts, and with `tool_choice` `required` or a named function the answer is calls from
    /// its first token (see [ToolConstraint]). Null when nothing is to be constrained: no tools, `NONE`, or a
    /// format whose calls are spelled with control tokens ([ToolFormat#MISTRAL_NAME_ARGS]).
    ///
    /// @param schemaGbnf the grammar engine's GBNF for a JSON Schema
    /// @param compile    the grammar engine's constraint for a GBNF grammar
    public TokenConstraint constraint(Tokenizer tokenizer, Function<Map<String, Object>, String> schemaGbnf,
                                      Function<String, TokenConstraint> compile) {
        if (!constrainable()) {
            return null;
        }
        Set<String> names = callableNames();
        List<Tool> callable = tools.stream().filter(t -> names.contains(t.name())).toList();
        return new ToolConstraint(format, callable, parallel, choice.forced(), tokenizer, schemaGbnf, compile);
    }

    /// Whether [#constraint] gives a constraint (there is something to constrain, in a format that allows it).
    public boolean constrainable() {
        return active() && ToolGrammar.supports(format);
    }

    /// [#constraint(Tokenizer, Function, Function)] with the engine's grammars ([Grammar]).
    ///
    /// @throws dev.llamaj.engine.grammar.GrammarException if a tool's parameter schema uses what the grammar
    ///         engine cannot express (see [#checkSchemas])
    public TokenConstraint constraint(Tokenizer tokenizer) {
        return constraint(tokenizer, schema -> Grammar.fromJsonSchema(schema).gbnf(),
                gbnf -> Grammar.parse(gbnf).newConstraint(tokenizer));
    }

    /// Checks that every tool's parameter schema can become a grammar, so that a request can be refused before it
    /// runs: the index of the first tool whose schema cannot, with the grammar engine's reason, or null.
    public static Map.Entry<Integer, String> checkSchemas(List<Tool> tools) {
        for (int i = 0; i < tools.size(); i++) {
            try {
                Grammar.fromJsonSchema(tools.get(i).parameters());
            } catch (GrammarException e) {
                return Map.entry(i, e.getMessage());
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- the answer

    /// A parser for one answer, to read it as it streams (see [ToolCallParser]).
    public ToolCallParser parser(ToolCallParser.Listener listener) {
        return new ToolCallParser(format, callableNames(), parallel, this::newId, listener);
    }

    /// An answer split into its text and its calls.
    ///
    /// @param content the text, or null when the answer is only calls
    /// @param calls   the calls, in order
    public record Result(String content, List<ToolCall> calls) {
        public Result {
            calls = List.copyOf(calls);
        }

        public boolean hasCalls() {
            return !calls.isEmpty();
        }

        /// The answer as an assistant turn, to add to the conversation.
        public ChatMessage toMessage() {
            return ChatMessage.assistant(content, calls);
        }
    }

    /// Reads a whole answer. An answer that stops inside a call or whose arguments are not valid JSON is returned
    /// as text, whole, with no calls.
    public Result parse(String answer) {
        if (!active()) {
            return new Result(answer, List.of());
        }
        StringBuilder content = new StringBuilder();
        List<String[]> calls = new ArrayList<>();
        List<StringBuilder> arguments = new ArrayList<>();
        ToolCallParser parser = parser(new ToolCallParser.Listener() {
            @Override
            public void content(String text) {
                content.append(text);
            }

            @Override
            public void callStarted(int index, String id, String name) {
                calls.add(new String[] {id, name});
                arguments.add(new StringBuilder());
            }

            @Override
            public void arguments(int index, String fragment) {
                arguments.get(index).append(fragment);
            }
        });
        parser.feed(answer);
        parser.finish();
        if (calls.isEmpty() || parser.incomplete() || parser.malformed()) {
            return new Result(answer, List.of());
        }
        List<ToolCall> list = new ArrayList<>();
        for (int i = 0; i < calls.size(); i++) {
            list.add(new ToolCall(calls.get(i)[0], calls.get(i)[1], arguments.get(i).toString()));
        }
        String text = content.toString().strip();
        return new Result(text.isEmpty() ? null : text, list);
    }
}
