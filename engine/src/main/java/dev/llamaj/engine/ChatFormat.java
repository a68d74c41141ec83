package dev.llamaj.engine;

import dev.llamaj.template.ChatTemplate;
import dev.llamaj.template.Message;
import dev.llamaj.template.TemplateException;
import dev.llamaj.tokenizer.Tokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/// Turns a conversation into prompt tokens with the model's own chat template.
///
/// The template (Jinja, from `tokenizer.chat_template`) renders the messages to text, exactly as Hugging Face
/// does. What the template wrote itself (headers like `<|start_header_id|>`) is parsed for control tokens; text
/// that came from the messages (contents and roles) never is, whatever the template did with it (trimmed, split,
/// concatenated...): the renderer tracks which characters came from the messages
/// ([ChatTemplate#renderRequest]), and the tokenizer reads those as ordinary text. So a user who types
/// `<|eot_id|>` gets those characters, not an end of turn. A role the template does not handle
/// ([ChatTemplate#roles]) is refused with an [InvalidMessageException], and so is a conversation the template
/// would render in a way that cannot keep message text apart from its own (an [IllegalArgumentException]).
public final class ChatFormat {
    /// A message the template cannot take: `index` is its position in the conversation, `field` what is wrong
    /// with it (`role`).
    public static final class InvalidMessageException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        private final int index;
        private final String field;

        InvalidMessageException(int index, String field, String message) {
            super(message);
            this.index = index;
            this.field = field;
        }

        public int index() {
            return index;
        }

        public String field() {
            return field;
        }
    }

    static final String TEMPLATE_KEY = "tokenizer.chat_template";

    private final ChatTemplate template;
    private final String source;
    private final Tokenizer tokenizer;
    private final Map<String, Object> variables;

    private ChatFormat(ChatTemplate template, String source, Tokenizer tokenizer) {
        this.template = template;
        this.source = source;
        this.tokenizer = tokenizer;
        Vocabulary v = tokenizer.vocabulary();
        Map<String, Object> vars = new HashMap<>();
        vars.put("bos_token", v.bos() >= 0 ? v.piece(v.bos()) : "");
        vars.put("eos_token", v.eos() >= 0 ? v.piece(v.eos()) : "");
        this.variables = Map.copyOf(vars);
    }

    /// The model has no chat template (`tokenizer.chat_template`): a base model, or a file converted without one.
    /// Front ends say how to give one (a built-in template, [ChatFormat#builtin(String)], or a template file).
    public static final class NoTemplateException extends IllegalArgumentException {
        NoTemplateException(String message) {
            super(message);
        }
    }

    /// The model's own template.
    ///
    /// @throws NoTemplateException      if the model has no chat template
    /// @throws IllegalArgumentException if it does not parse
    public static ChatFormat of(LlamaModel model) {
        String source = model.file().metadata().find(TEMPLATE_KEY)
                .filter(String.class::isInstance).map(String.class::cast)
                .orElseThrow(() -> new NoTemplateException(model.file().path()
                        + ": the model has no chat template"));
        return of(model, source);
    }

    /// Templates that `--chat-template NAME` selects, for models that ship none or a broken one.
    static final Map<String, String> BUILTIN = Map.of(
            "chatml", """
                    {% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] \
                    + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}\
                    {% endif %}""",
            "llama3", """
                    {{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] \
                    + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}\
                    {% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}\
                    {% endif %}""",
            "plain", """
                    {% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] + '\n' }}\
                    {% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}""");

    /// The built-in template called `name` (`chatml`, `llama3`, `plain`), if there is one.
    public static java.util.Optional<String> builtin(String name) {
        return java.util.Optional.ofNullable(BUILTIN.get(name));
    }

    /// A template given as Jinja source, for models without one or to override theirs.
    ///
    /// @throws IllegalArgumentException if the template does not parse
    public static ChatFormat of(LlamaModel model, String templateSource) {
        return of(model.tokenizer(), templateSource);
    }

    /// A template over a tokenizer alone (a vocabulary-only file is enough to render and count prompt tokens).
    ///
    /// @throws IllegalArgumentException if the template does not parse
    public static ChatFormat of(Tokenizer tokenizer, String templateSource) {
        try {
            return new ChatFormat(ChatTemplate.parse(templateSource), templateSource, tokenizer);
        } catch (TemplateException e) {
            throw new IllegalArgumentException("chat template: " + e.getMessage(), e);
        }
    }

    /// The conversation as text.
    ///
    /// @throws InvalidMessageException if a role is not one the template handles
    /// @throws IllegalArgumentException if the template fails (for example `raise_exception` on a role it refuses)
    public String renderText(List<Message> messages, boolean addGenerationPrompt) {
        return rendering(messages, addGenerationPrompt).text();
    }

    /// The conversation as prompt tokens, with BOS first when the vocabulary wants one and the template did not
    /// write it. Text from the messages is tokenized as ordinary text: only the template's own text can make a
    /// control token.
    ///
    /// @throws InvalidMessageException if a role is not one the template handles
    /// @throws IllegalArgumentException if the template fails
    public int[] render(List<Message> messages, boolean addGenerationPrompt) {
        return tokens(rendering(messages, addGenerationPrompt));
    }

    private int[] tokens(ChatTemplate.Rendering rendering) {
        int[] tokens = tokenizer.encode(rendering.text(), rendering.requestSpans());
        Vocabulary v = tokenizer.vocabulary();
        if (v.addBos() && v.bos() >= 0 && (tokens.length == 0 || tokens[0] != v.bos())) {
            int[] withBos = new int[tokens.length + 1];
            withBos[0] = v.bos();
            System.arraycopy(tokens, 0, withBos, 1, tokens.length);
            tokens = withBos;
        }
        return tokens;
    }

    /// The template's Jinja source (tool calling reads the model's call format off it).
    public String templateSource() {
        return source;
    }

    /// A conversation with tools as prompt tokens: `messages` are maps as Hugging Face templates take them
    /// (`role`, `content`, and `tool_calls`, `tool_call_id`, `name`...), `tools` the template's `tools` variable
    /// (null leaves it undefined). Everything in both is request text, never parsed for control tokens: tool
    /// arguments and results included. [dev.llamaj.engine.tools.ToolCalling] builds both.
    ///
    /// @throws InvalidMessageException if a role is not one the template handles
    /// @throws IllegalArgumentException if the template fails
    public int[] render(List<Map<String, Object>> messages, List<Map<String, Object>> tools,
                        boolean addGenerationPrompt) {
        return tokens(rendering(messages, tools, addGenerationPrompt));
    }

    /// [#render(List, List, boolean)] as text.
    public String renderText(List<Map<String, Object>> messages, List<Map<String, Object>> tools,
                             boolean addGenerationPrompt) {
        return rendering(messages, tools, addGenerationPrompt).text();
    }

    private ChatTemplate.Rendering rendering(List<Map<String, Object>> messages, List<Map<String, Object>> tools,
                                             boolean addGenerationPrompt) {
        for (int i = 0; i < messages.size(); i++) {
            Object role = messages.get(i).get("role");
            if (role instanceof String r && !template.roles().contains(r)) {
                throw new InvalidMessageException(i, "role", "messages[" + i + "]: " + template.roleError(r));
            }
        }
        Map<String, Object> own = new HashMap<>(variables);
        own.put("add_generation_prompt", addGenerationPrompt);
        Map<String, Object> request = new HashMap<>();
        request.put("messages", messages);
        if (tools != null) {
            request.put("tools", tools);
        }
        try {
            return template.renderRequest(own, request);
        } catch (TemplateException e) {
            throw new IllegalArgumentException("chat template: " + e.getMessage(), e);
        }
    }

    private ChatTemplate.Rendering rendering(List<Message> messages, boolean addGenerationPrompt) {
        for (int i = 0; i < messages.size(); i++) {
            String role = messages.get(i).role();
            if (!template.roles().contains(role)) {
                throw new InvalidMessageException(i, "role", "messages[" + i + "]: " + template.roleError(role));
            }
        }
        try {
            return template.renderRequest(messages, addGenerationPrompt, variables);
        } catch (TemplateException e) {
            throw new IllegalArgumentException("chat template: " + e.getMessage(), e);
        }
    }
}
