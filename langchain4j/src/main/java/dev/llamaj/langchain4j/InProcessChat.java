package dev.llamaj.langchain4j;

import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.Content;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.LoadOptions;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.engine.tools.Tool;
import dev.llamaj.engine.tools.ToolCall;
import dev.llamaj.engine.tools.ToolCallParser;
import dev.llamaj.engine.tools.ToolCalling;
import dev.llamaj.engine.tools.ToolChoice;
import dev.llamaj.template.Message;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/// What the chat models do: a LangChain4j request becomes the model's chat prompt (its own template), is
/// generated in one of a few sessions, and comes back as a `ChatResponse`.
///
/// Tools become the engine's tool calling (the model's own template shows them, its answer is read back into
/// `ToolExecutionRequest`s, and a grammar keeps each call's arguments to the function's schema); a JSON response
/// format becomes a grammar over the schema (or any JSON object), so the answer always parses. What the engine
/// cannot do (images, tools together with a JSON response format) is refused with an
/// `UnsupportedFeatureException` naming it, never silently ignored.
final class InProcessChat implements AutoCloseable {
    private final LlamaModel model;
    private final boolean ownsModel;
    private final ChatFormat format;
    private final int contextLength;
    private final String modelName;
    private final float minP;
    private final float repeatPenalty;
    private final Long seed;
    private final boolean parallelToolCalls;
    private final ChatRequestParameters defaults;
    /// Free sessions; at most `sessions` are ever made, on demand.
    private final BlockingQueue<Session> free;
    private final List<Session> all = new ArrayList<>();
    private final int sessions;
    private volatile boolean closed;

    InProcessChat(LlamajChatBuilder<?> b) {
        if ((b.model == null) == (b.modelPath == null)) {
            throw new IllegalArgumentException("give either modelPath or model");
        }
        if (b.sessions < 1) {
            throw new IllegalArgumentException("sessions must be 1 or more, got " + b.sessions);
        }
        check(b.temperature == null || (b.temperature >= 0 && b.temperature <= 2), "temperature", b.temperature,
                "0 to 2");
        check(b.topP == null || (b.topP > 0 && b.topP <= 1), "topP", b.topP, "above 0, at most 1");
        check(b.topK == null || b.topK >= 0, "topK", b.topK, "0 or more");
        check(b.minP >= 0 && b.minP <= 1, "minP", b.minP, "0 to 1");
        check(b.repeatPenalty > 0, "repeatPenalty", b.repeatPenalty, "above 0");
        check(b.maxOutputTokens == null || b.maxOutputTokens >= 1, "maxOutputTokens", b.maxOutputTokens, "1 or more");
        LlamaModel m = b.model;
        if (m == null) {
            LoadOptions options = LoadOptions.defaults();
            if (b.threads != null) {
                options = options.withThreads(b.threads);
            }
            try {
                m = LlamaModel.load(b.modelPath, options);
            } catch (IOException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }
        this.model = m;
        this.ownsModel = b.model == null;
        try {
            this.format = format(m, b.chatTemplate);
            this.contextLength = b.contextLength != null ? b.contextLength : m.defaultContextLength();
            check(contextLength >= 1, "contextLength", contextLength, "1 or more");
        } catch (RuntimeException e) {
            if (ownsModel) {
                m.close();
            }
            throw e;
        }
        String file = m.file().path().getFileName().toString();
        this.modelName = b.modelName != null ? b.modelName
                : file.toLowerCase(Locale.ROOT).endsWith(".gguf") ? file.substring(0, file.length() - 5) : file;
        this.minP = (float) b.minP;
        this.repeatPenalty = (float) b.repeatPenalty;
        this.seed = b.seed;
        this.parallelToolCalls = b.parallelToolCalls;
        Sampler.Settings engine = Sampler.Settings.defaults(0);
        this.defaults = DefaultChatRequestParameters.builder()
                .modelName(modelName)
                .temperature(b.temperature != null ? b.temperature : (double) engine.temperature())
                .topP(b.topP != null ? b.topP : (double) engine.topP())
                .topK(b.topK != null ? b.topK : engine.topK())
                .maxOutputTokens(b.maxOutputTokens)
                .stopSequences(b.stopSequences)
                .build();
        this.sessions = b.sessions;
        this.free = new ArrayBlockingQueue<>(b.sessions);
    }

    private static void check(boolean ok, String name, Object value, String range) {
        if (!ok) {
            throw new IllegalArgumentException(name + " must be " + range + ", got " + value);
        }
    }

    private static ChatFormat format(LlamaModel model, String template) {
        if (template == null) {
            return ChatFormat.of(model); // NoTemplateException (an IllegalArgumentException) says what is missing
        }
        return ChatFormat.of(model, ChatFormat.builtin(template).orElse(template));
    }

    ChatRequestParameters defaults() {
        return defaults;
    }

    /// Generates the answer to `request` (its parameters already merged with [#defaults] by LangChain4j),
    /// passing each piece of its text to `onText` as it comes (with tools, only the text outside calls).
    ChatResponse chat(ChatRequest request, Consumer<String> onText) {
        ChatRequestParameters p = request.parameters();
        refuseUnsupported(p);
        ToolCalling tools = toolCalling(request);
        int[] prompt;
        TokenConstraint constraint;
        try {
            if (tools != null) {
                prompt = tools.render(toolMessages(request.messages()));
                constraint = tools.constraint(model.tokenizer(), schema -> Grammar.fromJsonSchema(schema).gbnf(),
                        gbnf -> Grammar.parse(gbnf).newConstraint(model.tokenizer()));
            } else {
                prompt = format.render(messages(request.messages()), true);
                constraint = jsonConstraint(p.responseFormat());
            }
        } catch (IllegalArgumentException e) { // a role or conversation the template refuses, a schema refused
            throw new InvalidRequestException(e.getMessage());
        }
        long requestSeed = seed != null ? seed : ThreadLocalRandom.current().nextLong();
        Sampler.Settings d = Sampler.Settings.defaults(requestSeed);
        Sampler.Settings settings = new Sampler.Settings(
                p.temperature() != null ? p.temperature().floatValue() : d.temperature(),
                p.topK() != null ? p.topK() : d.topK(),
                p.topP() != null ? p.topP().floatValue() : d.topP(),
                minP, repeatPenalty, d.repeatLastN(), requestSeed)
                .withPenalties(p.presencePenalty() != null ? p.presencePenalty().floatValue() : 0f,
                        p.frequencyPenalty() != null ? p.frequencyPenalty().floatValue() : 0f);
        int limit = p.maxOutputTokens() != null ? p.maxOutputTokens() : Integer.MAX_VALUE;
        List<String> stops = p.stopSequences() != null ? p.stopSequences() : List.of();

        Session session = acquire();
        Completion c;
        Calls calls = tools != null && tools.active() ? new Calls(onText) : null;
        ToolCallParser parser = calls != null ? tools.parser(calls) : null;
        try {
            int[] suffix = reuseCachedPrefix(session, prompt);
            Consumer<String> sink = parser == null ? onText : piece -> {
                parser.feed(piece);
                if (parser.done()) {
                    session.cancel(); // the one call allowed is complete: the rest would be ignored
                }
            };
            c = session.generate(suffix, limit, Sampler.create(settings, constraint), stops, sink);
        } catch (IllegalArgumentException e) { // the conversation does not fit in the context
            session.reset();
            throw new InvalidRequestException(e.getMessage() + " (the context is " + contextLength
                    + " tokens: raise contextLength, or send a shorter conversation)");
        } finally {
            free.add(session);
        }
        FinishReason finish = switch (c.stopReason()) {
            case END_OF_GENERATION, STOP_STRING -> FinishReason.STOP;
            case MAX_TOKENS, CONTEXT_FULL -> FinishReason.LENGTH;
            case CANCELLED -> FinishReason.OTHER;
        };
        AiMessage message = AiMessage.from(c.text());
        if (parser != null) {
            parser.finish();
            // no call, or one cut off by the token limit, leaves the answer as its text, whole
            if (!calls.started.isEmpty() && !parser.incomplete() && !parser.malformed()) {
                List<ToolExecutionRequest> requests = calls.requests();
                message = calls.content.isEmpty() ? AiMessage.from(requests)
                        : AiMessage.from(calls.content.toString(), requests);
                finish = FinishReason.TOOL_EXECUTION;
            }
        }
        return ChatResponse.builder()
                .aiMessage(message)
                .modelName(modelName)
                .tokenUsage(new TokenUsage(prompt.length, c.generatedTokens()))
                .finishReason(finish)
                .build();
    }

    /// The calls of one answer as the parser reads them, and its text outside them (passed on as it comes).
    private static final class Calls implements ToolCallParser.Listener {
        private record Started(String id, String name) {}

        private final Consumer<String> onText;
        final StringBuilder content = new StringBuilder();
        final List<Started> started = new ArrayList<>();
        final List<StringBuilder> arguments = new ArrayList<>();

        Calls(Consumer<String> onText) {
            this.onText = onText;
        }

        @Override
        public void content(String text) {
            content.append(text);
            onText.accept(text);
        }

        @Override
        public void callStarted(int index, String id, String name) {
            started.add(new Started(id, name));
            arguments.add(new StringBuilder());
        }

        @Override
        public void arguments(int index, String fragment) {
            arguments.get(index).append(fragment);
        }

        List<ToolExecutionRequest> requests() {
            List<ToolExecutionRequest> out = new ArrayList<>();
            for (int i = 0; i < started.size(); i++) {
                out.add(ToolExecutionRequest.builder().id(started.get(i).id()).name(started.get(i).name())
                        .arguments(arguments.get(i).toString()).build());
            }
            return out;
        }
    }

    /// Tool calling for `request`, or null when it has no tools and its conversation no tool turns (then the
    /// plain chat format renders it, exactly as without this module's tool support).
    private ToolCalling toolCalling(ChatRequest request) {
        ChatRequestParameters p = request.parameters();
        List<ToolSpecification> specs = p.toolSpecifications() != null ? p.toolSpecifications() : List.of();
        boolean toolTurns = request.messages().stream().anyMatch(m -> m instanceof ToolExecutionResultMessage
                || (m instanceof AiMessage a && a.hasToolExecutionRequests()));
        if (specs.isEmpty() && !toolTurns) {
            return null;
        }
        if (!specs.isEmpty() && p.responseFormat() != null && p.responseFormat().type() == ResponseFormatType.JSON) {
            throw new UnsupportedFeatureException("llamaj's in-process chat model does not support tools and a JSON"
                    + " response format in one request");
        }
        List<Tool> tools = new ArrayList<>();
        for (ToolSpecification spec : specs) {
            String parameters = spec.parameters() != null ? SchemaText.of(spec.parameters(), false)
                    : "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
            try {
                tools.add(Tool.of(spec.name(), spec.description(), parameters));
            } catch (IllegalArgumentException e) {
                throw new InvalidRequestException("tool '" + spec.name() + "': " + e.getMessage());
            }
        }
        ToolChoice choice = switch (p.toolChoice() == null ? dev.langchain4j.model.chat.request.ToolChoice.AUTO
                : p.toolChoice()) {
            case AUTO -> ToolChoice.AUTO;
            case REQUIRED -> ToolChoice.REQUIRED;
            case NONE -> ToolChoice.NONE;
        };
        try {
            return ToolCalling.of(format, tools, choice, parallelToolCalls, seed);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
    }

    /// The grammar a JSON response format asks for: its schema, or any JSON object; null for text.
    private TokenConstraint jsonConstraint(ResponseFormat responseFormat) {
        if (responseFormat == null || responseFormat.type() != ResponseFormatType.JSON) {
            return null;
        }
        JsonSchema schema = responseFormat.jsonSchema();
        Grammar grammar = schema == null || schema.rootElement() == null ? Grammar.anyJsonObject()
                : Grammar.fromJsonSchema(SchemaText.of(schema.rootElement(), true));
        return grammar.newConstraint(model.tokenizer());
    }

    /// The conversation as tool calling takes it: calls made and their results as well as text turns.
    private static List<dev.llamaj.engine.tools.ChatMessage> toolMessages(List<ChatMessage> in) {
        List<dev.llamaj.engine.tools.ChatMessage> out = new ArrayList<>(in.size());
        for (ChatMessage m : in) {
            switch (m) {
                case AiMessage a when a.hasToolExecutionRequests() -> {
                    List<ToolCall> calls = new ArrayList<>();
                    for (ToolExecutionRequest r : a.toolExecutionRequests()) {
                        calls.add(new ToolCall(r.id(), r.name(), r.arguments()));
                    }
                    out.add(dev.llamaj.engine.tools.ChatMessage.assistant(a.text(), calls));
                }
                case ToolExecutionResultMessage r ->
                        out.add(dev.llamaj.engine.tools.ChatMessage.toolResult(r.id(), r.toolName(), r.text()));
                default -> out.add(dev.llamaj.engine.tools.ChatMessage.of(messages(List.of(m)).getFirst()));
            }
        }
        return out;
    }

    /// Rewinds `session` to the longest prefix it shares with `prompt` and returns the rest to process; at
    /// least the last token is processed again, for its next-token distribution.
    private static int[] reuseCachedPrefix(Session session, int[] prompt) {
        int[] cached = session.tokens();
        int common = 0;
        int max = Math.min(cached.length, prompt.length - 1);
        while (common < max && cached[common] == prompt[common]) {
            common++;
        }
        session.rewind(common);
        int from = session.position(); // a sliding-window model may have gone back further
        return java.util.Arrays.copyOfRange(prompt, from, prompt.length);
    }

    private static void refuseUnsupported(ChatRequestParameters p) {
        if (p.frequencyPenalty() != null && !(p.frequencyPenalty() >= -2 && p.frequencyPenalty() <= 2)) {
            throw new InvalidRequestException("frequencyPenalty must be -2 to 2, got " + p.frequencyPenalty());
        }
        if (p.presencePenalty() != null && !(p.presencePenalty() >= -2 && p.presencePenalty() <= 2)) {
            throw new InvalidRequestException("presencePenalty must be -2 to 2, got " + p.presencePenalty());
        }
        if (p.temperature() != null && !(p.temperature() >= 0 && p.temperature() <= 2)) {
            throw new InvalidRequestException("temperature must be 0 to 2, got " + p.temperature());
        }
        if (p.topP() != null && !(p.topP() > 0 && p.topP() <= 1)) {
            throw new InvalidRequestException("topP must be above 0 and at most 1, got " + p.topP());
        }
        if (p.topK() != null && p.topK() < 0) {
            throw new InvalidRequestException("topK must be 0 or more, got " + p.topK());
        }
        if (p.maxOutputTokens() != null && p.maxOutputTokens() < 1) {
            throw new InvalidRequestException("maxOutputTokens must be 1 or more, got " + p.maxOutputTokens());
        }
    }

    /// LangChain4j's messages as the chat template's: system, user and assistant text.
    private static List<Message> messages(List<ChatMessage> in) {
        List<Message> out = new ArrayList<>(in.size());
        for (ChatMessage m : in) {
            switch (m) {
                case SystemMessage s -> out.add(Message.system(s.text()));
                case UserMessage u -> out.add(Message.user(text(u)));
                case AiMessage a -> out.add(Message.assistant(a.text() != null ? a.text() : ""));
                default -> throw new UnsupportedFeatureException("llamaj's in-process chat model does not support "
                        + m.type() + " messages yet");
            }
        }
        return out;
    }

    private static String text(UserMessage u) {
        if (u.hasSingleText()) {
            return u.singleText();
        }
        StringBuilder sb = new StringBuilder();
        for (Content c : u.contents()) {
            if (!(c instanceof TextContent t)) {
                throw new UnsupportedFeatureException("llamaj runs text models: " + c.type() + " content is not"
                        + " supported");
            }
            sb.append(t.text());
        }
        return sb.toString();
    }

    /// A free session, made if fewer than `sessions` exist, else the next one freed.
    private Session acquire() {
        if (closed) {
            throw new IllegalStateException("the chat model is closed");
        }
        Session s = free.poll();
        if (s != null) {
            return s;
        }
        synchronized (all) {
            if (all.size() < sessions) {
                Session made = model.newSession(contextLength);
                all.add(made);
                return made;
            }
        }
        try {
            return free.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a free session", e);
        }
    }

    @Override
    public void close() {
        closed = true;
        synchronized (all) {
            for (Session s : all) {
                s.close();
            }
            all.clear();
        }
        if (ownsModel) {
            model.close();
        }
    }
}
