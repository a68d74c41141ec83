package dev.llamaj.template;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/// A Hugging Face chat template (the Jinja text in a model's `tokenizer.chat_template`), parsed once and
/// rendered into the exact prompt text the model was trained on, as `transformers`' `apply_chat_template` does.
///
/// The template language is the Jinja2 subset real chat templates use, interpreted with Jinja2's semantics as
/// Hugging Face configures it: `trim_blocks` and `lstrip_blocks` on, `break`/`continue`, an immutable sandbox,
/// the globals `raise_exception(message)` and `strftime_now(format)`, and `tojson` as Python's `json.dumps`
/// keeping non-ASCII text. Values behave as in Python (truthiness, `str()` of `None` and lists, floor division),
/// and undefined variables as Jinja2's default `Undefined` (falsy, printing nothing).
///
/// Templates come from model files, so rendering is sandboxed and bounded: templates reach only the given
/// data and the built-in filters, never Java objects; a render fails with a [TemplateException] naming the
/// limit when it exceeds 1,000,000 loop iterations and macro calls, 100 nested macro calls, a range of more than
/// 100,000 numbers, 4,000,000 characters of output (or in any one string), 1,000,000 items in a list, or
/// 64,000,000 characters of computed values in total.
///
/// **Request text is never template text.** [#renderRequest] renders a conversation whose messages (roles,
/// contents, anything in them) come from a request, and says which characters of the prompt came from there: they
/// are marked ([Marked]) when they enter the template and keep their mark through everything the template does with
/// them (concatenation, `trim`, `split`, slicing, `replace`, case changes, `format`, `join`, `tojson`...). A caller
/// tokenizes the marked ranges as ordinary text, so a message cannot write a control token (`<|eot_id|>`) whatever
/// the template does to it. Where the template would let request text edit its own text (request text as a `split`
/// separator, a `replace` pattern, a format string...), the render is refused. Roles are checked too: only those
/// the template can handle ([#roles]) are accepted.
///
/// Instances are immutable and thread-safe.
public final class ChatTemplate {
    /// The roles every template is taken to handle; a template accepts more by comparing a role with them by name.
    static final Set<String> STANDARD_ROLES = Set.of("system", "user", "assistant", "tool");

    private final List<Node> body;
    private final Clock clock;
    private final Set<String> roles;

    private ChatTemplate(List<Node> body, Clock clock, Set<String> roles) {
        this.body = body;
        this.clock = clock;
        this.roles = roles;
    }

    /// A rendered conversation: the prompt text, and the `[start, end)` character ranges of it (sorted, disjoint,
    /// flattened into pairs) that came from the request, to be tokenized as ordinary text.
    public record Rendering(String text, int[] requestSpans) {}

    /// Parses a template. Syntax errors (and unknown filters or tests, as in Jinja2) are reported as
    /// `line N: what is wrong`.
    public static ChatTemplate parse(String source) throws TemplateException {
        Objects.requireNonNull(source, "source");
        try {
            List<Node> body = List.copyOf(Parser.parse(source));
            Set<String> roles = new TreeSet<>(STANDARD_ROLES);
            roles.addAll(Roles.compared(body));
            return new ChatTemplate(body, Clock.systemDefaultZone(), Collections.unmodifiableSet(roles));
        } catch (Py.Failure e) {
            throw new TemplateException(e.getMessage());
        } catch (StackOverflowError e) {
            throw new TemplateException("template nesting too deep");
        } catch (RuntimeException e) {
            throw new TemplateException("internal error: " + e, e);
        }
    }

    /// The same template with `strftime_now` reading `clock` (local date and time in the clock's zone).
    public ChatTemplate withClock(Clock clock) {
        return new ChatTemplate(body, Objects.requireNonNull(clock, "clock"), roles);
    }

    /// The roles this template accepts in [#renderRequest]: `system`, `user`, `assistant`, `tool`, and every role
    /// name the template compares a message's role with (`message['role'] == 'ipython'`), sorted.
    public Set<String> roles() {
        return roles;
    }

    /// Renders a conversation that came from a request: its messages' roles and contents are request text,
    /// `extra` (`bos_token`...) the caller's own values.
    ///
    /// @throws TemplateException if a role is not one of [#roles], if the template fails, or if it would let
    ///         request text edit the template's own text
    public Rendering renderRequest(List<Message> messages, boolean addGenerationPrompt, Map<String, ?> extra)
            throws TemplateException {
        Objects.requireNonNull(messages, "messages");
        Map<String, Object> template = new LinkedHashMap<>(extra);
        template.put("add_generation_prompt", addGenerationPrompt);
        return renderRequest(template, Map.of("messages", messages));
    }

    /// Renders with `templateVariables` as the caller's own values (`bos_token`, `add_generation_prompt`...) and
    /// `requestVariables` as request text, every string in them (keys included) marked: `messages` (whose roles
    /// must be among [#roles]), `tools`, `documents`... Values are as in [#render(Map)].
    ///
    /// @throws TemplateException if a role is not one of [#roles], if the template fails, or if it would let
    ///         request text edit the template's own text
    public Rendering renderRequest(Map<String, ?> templateVariables, Map<String, ?> requestVariables)
            throws TemplateException {
        Objects.requireNonNull(templateVariables, "templateVariables");
        Objects.requireNonNull(requestVariables, "requestVariables");
        if (requestVariables.get("messages") instanceof Collection<?> messages) {
            int i = 0;
            for (Object m : messages) {
                Object role = m instanceof Message msg ? msg.role() : m instanceof Map<?, ?> map ? map.get("role") : null;
                if (role instanceof String r && !roles.contains(r)) {
                    throw new TemplateException("messages[" + i + "]: " + roleError(r));
                }
                i++;
            }
        }
        Map<String, Object> context = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, ?> e : templateVariables.entrySet()) {
                String name = Objects.requireNonNull(e.getKey(), "variable name");
                context.put(name, toValue(e.getValue(), name, 0, false));
            }
            for (Map.Entry<String, ?> e : requestVariables.entrySet()) {
                String name = Objects.requireNonNull(e.getKey(), "variable name");
                context.put(name, toValue(e.getValue(), name, 0, true));
            }
        } catch (Py.Failure f) {
            throw new TemplateException(f.getMessage());
        }
        Object out = run(context);
        return out instanceof Marked m ? new Rendering(m.text, m.spans()) : new Rendering((String) out, new int[0]);
    }

    /// Why `role` is refused.
    public String roleError(String role) {
        return "the role '" + role + "' is not one this chat template accepts (" + String.join(", ", roles) + ")";
    }

    /// Renders a conversation.
    ///
    /// @param messages            the turns, in order
    /// @param addGenerationPrompt whether to end with the header of an assistant turn (`add_generation_prompt`)
    /// @param extra               other template variables: `bos_token`, `eos_token`, `tools`, `date_string`...;
    ///                            values may be strings, numbers, booleans, null, [Message]s, and lists and maps
    ///                            of those
    public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, ?> extra)
            throws TemplateException {
        Objects.requireNonNull(messages, "messages");
        Objects.requireNonNull(extra, "extra");
        Map<String, Object> variables = new LinkedHashMap<>(extra);
        variables.put("messages", messages);
        variables.put("add_generation_prompt", addGenerationPrompt);
        return render(variables);
    }

    /// Renders with every template variable given: `messages` (a list of [Message]s or of maps, which may carry
    /// `tool_calls`, `reasoning_content`...), `add_generation_prompt`, `bos_token`, `tools`... Values may be
    /// strings, numbers, booleans, null, [Message]s, and lists, arrays and maps of those; they are copied, so the
    /// caller's objects are never seen or changed by the template. Maps keep their iteration order (pass a
    /// `LinkedHashMap` where order matters, as it does for `tojson` of a tool's JSON schema).
    public String render(Map<String, ?> variables) throws TemplateException {
        Objects.requireNonNull(variables, "variables");
        Map<String, Object> context = new LinkedHashMap<>();
        for (Map.Entry<String, ?> e : variables.entrySet()) {
            String name = Objects.requireNonNull(e.getKey(), "variable name");
            try {
                context.put(name, toValue(e.getValue(), name, 0, false));
            } catch (Py.Failure f) {
                throw new TemplateException(f.getMessage());
            }
        }
        // nothing is marked, so the output is a String
        return (String) run(context);
    }

    private Object run(Map<String, Object> context) throws TemplateException {
        Renderer renderer = new Renderer(clock);
        try {
            return renderer.render(body, context);
        } catch (Py.Failure e) {
            throw new TemplateException(e.raised ? e.getMessage() : "line " + Math.max(1, renderer.line) + ": " + e.getMessage());
        } catch (StackOverflowError e) {
            throw new TemplateException("line " + renderer.line + ": template nesting too deep");
        } catch (RuntimeException e) {
            // a bug here, but the template is untrusted input: report it as this template failing
            throw new TemplateException("line " + renderer.line + ": internal error: " + e, e);
        }
    }

    /// Converts a caller's value to the template's Python-like model (see [Py]), copying containers; with
    /// `request`, its strings are request text ([Marked]).
    private static Object toValue(Object v, String path, int depth, boolean request) {
        if (depth > 100) {
            throw Py.fail("value '" + path + "' is nested too deeply (or contains itself)");
        }
        return switch (v) {
            case null -> null;
            case String s -> request ? Marked.request(s) : s;
            case Boolean b -> b;
            case Long l -> l;
            case Integer i -> (long) i;
            case Short s -> (long) s;
            case Byte b -> (long) b;
            case Double d -> d;
            case Float f -> (double) f;
            case BigInteger b -> {
                if (b.bitLength() >= 64) {
                    throw Py.fail("value '" + path + "' is too large (integers are limited to 64 bits)");
                }
                yield b.longValue();
            }
            case BigDecimal b -> b.doubleValue();
            case Character c -> request ? Marked.request(c.toString()) : c.toString();
            case Message m -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                map.put("role", toValue(m.role(), path, depth + 1, request));
                map.put("content", toValue(m.content(), path, depth + 1, request));
                yield map;
            }
            case Map<?, ?> m -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    Object key = toValue(e.getKey(), path, depth + 1, request);
                    if (key instanceof List<?> || key instanceof Map<?, ?>) {
                        throw Py.fail("value '" + path + "' has a key that is a list or map");
                    }
                    map.put(key, toValue(e.getValue(), path + "." + Marked.plain(Py.text(key)), depth + 1, request));
                }
                yield map;
            }
            case Collection<?> c -> {
                List<Object> list = new ArrayList<>(c.size());
                int i = 0;
                for (Object o : c) {
                    list.add(toValue(o, path + "[" + i++ + "]", depth + 1, request));
                }
                yield list;
            }
            case Object[] a -> toValue(java.util.Arrays.asList(a), path, depth, request);
            default -> throw Py.fail("value '" + path + "' has the unsupported type " + v.getClass().getName());
        };
    }
}
