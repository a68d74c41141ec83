package dev.llamaj.template;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

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
/// Instances are immutable and thread-safe.
public final class ChatTemplate {
    private final List<Node> body;
    private final Clock clock;

    private ChatTemplate(List<Node> body, Clock clock) {
        this.body = body;
        this.clock = clock;
    }

    /// Parses a template. Syntax errors (and unknown filters or tests, as in Jinja2) are reported as
    /// `line N: what is wrong`.
    public static ChatTemplate parse(String source) throws TemplateException {
        Objects.requireNonNull(source, "source");
        try {
            return new ChatTemplate(List.copyOf(Parser.parse(source)), Clock.systemDefaultZone());
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
        return new ChatTemplate(body, Objects.requireNonNull(clock, "clock"));
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
                context.put(name, toValue(e.getValue(), name, 0));
            } catch (Py.Failure f) {
                throw new TemplateException(f.getMessage());
            }
        }
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

    /// Converts a caller's value to the template's Python-like model (see [Py]), copying containers.
    private static Object toValue(Object v, String path, int depth) {
        if (depth > 100) {
            throw Py.fail("value '" + path + "' is nested too deeply (or contains itself)");
        }
        return switch (v) {
            case null -> null;
            case String s -> s;
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
            case Character c -> c.toString();
            case Message m -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                map.put("role", m.role());
                map.put("content", m.content());
                yield map;
            }
            case Map<?, ?> m -> {
                Map<Object, Object> map = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    Object key = toValue(e.getKey(), path, depth + 1);
                    if (key instanceof List<?> || key instanceof Map<?, ?>) {
                        throw Py.fail("value '" + path + "' has a key that is a list or map");
                    }
                    map.put(key, toValue(e.getValue(), path + "." + key, depth + 1));
                }
                yield map;
            }
            case Collection<?> c -> {
                List<Object> list = new ArrayList<>(c.size());
                int i = 0;
                for (Object o : c) {
                    list.add(toValue(o, path + "[" + i++ + "]", depth + 1));
                }
                yield list;
            }
            case Object[] a -> toValue(java.util.Arrays.asList(a), path, depth);
            default -> throw Py.fail("value '" + path + "' has the unsupported type " + v.getClass().getName());
        };
    }
}
