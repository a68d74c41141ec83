package dev.llamaj.engine.tools;

import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/// Reads a model's answer as it is generated and splits it into text and tool calls, in one [ToolFormat].
///
/// Text is passed on as soon as it cannot be the start of a call: text that might be (`<tool_c` at the end of
/// what has arrived, or an answer so far made of `{"na`) is held back until that is decided. A call is announced
/// as soon as its function's name is known, and its arguments are passed on in fragments as they arrive, which is
/// what OpenAI's streaming `tool_calls` deltas need; when the model writes the arguments before the name, the call
/// is passed on whole once it is complete.
///
/// What is not a well-formed call of a known function (a name no tool has, a JSON object that is not a call) is
/// passed on as text, where it was. An answer that stops inside a call (the token limit) leaves the call
/// [#incomplete()], and arguments that end but are not valid JSON leave it [#malformed()]: the caller decides (the
/// whole answer is then returned as text when not streaming; see [ToolCalling#parse]).
///
/// Not thread-safe: one parser reads one answer.
public final class ToolCallParser {
    /// Receives the answer's parts, in order.
    public interface Listener {
        /// Text of the answer that is not part of a call.
        void content(String text);

        /// Call number `index` (0, 1, ...) begins: its id and function name.
        void callStarted(int index, String id, String name);

        /// More of call `index`'s arguments (JSON text; the fragments concatenated are the arguments).
        void arguments(int index, String fragment);
    }

    /// `{"name": "f", "arguments": ` (or `"parameters"`, Llama's word), the start of a call whose name comes first.
    private static final Pattern HEADER = Pattern.compile(
            "\\{\\s*\"name\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"\\s*,\\s*\"(?:arguments|parameters)\"\\s*:\\s*");
    private static final String HERMES_CLOSE = "</tool_call>";
    private static final String ARGS_MARK = "[ARGS]";
    private static final String CALL_ID_MARK = "[CALL_ID]";

    private enum State {
        /// The answer's beginning, where [ToolFormat#starts] may open a call.
        START,
        /// Text, where only [ToolFormat#triggers] open a call.
        TEXT,
        /// Just after a trigger.
        AFTER_TRIGGER,
        /// Inside `[...]`, before an item.
        LIST_ITEM,
        /// Inside `[...]`, after an item.
        LIST_NEXT,
        /// After a call object outside a list: `;` or whitespace may separate another one.
        OBJECTS_NEXT,
        /// After a Hermes call: `</tool_call>`.
        HERMES_CLOSE,
        /// At the `{` of a call.
        OBJECT,
        /// In a call's arguments, passing them on.
        ARGS,
        /// After the arguments, to the end of the call object.
        TAIL,
        /// In a call that is passed on whole when complete.
        WHOLE,
        /// In `name[ARGS]`.
        NAME,
        /// A single call was allowed and made: the rest is ignored.
        DONE
    }

    private enum Section { HERMES_TAG, LIST, OBJECTS, NAME_ARGS }

    private final ToolFormat format;
    private final Set<String> names;
    private final boolean parallel;
    private final Supplier<String> ids;
    private final Listener listener;

    /// [ToolFormat#triggers] and [ToolFormat#objectStarts].
    private final List<String> allTriggers;
    private final StringBuilder buf = new StringBuilder();
    private int pos;
    private State state = State.START;
    private Section section;
    /// Where the text begins that becomes content again if the call there is not one (the trigger included).
    private int fallbackStart;
    private int callStart;
    private JsonText.Scanner scanner;
    private int calls;
    private final StringBuilder args = new StringBuilder();
    private boolean incomplete;
    private boolean malformed;
    private boolean finished;
    private boolean contentSent;

    /// @param format   how the model writes calls
    /// @param names    the functions that exist: a call of any other is text
    /// @param parallel whether more than one call is taken (after the first, the rest of the answer is ignored)
    /// @param ids      makes each call's id
    public ToolCallParser(ToolFormat format, Set<String> names, boolean parallel, Supplier<String> ids,
                          Listener listener) {
        this.format = format;
        this.names = Set.copyOf(names);
        this.parallel = parallel;
        this.ids = ids;
        this.listener = listener;
        List<String> all = new java.util.ArrayList<>(format.triggers);
        all.addAll(format.objectStarts);
        this.allTriggers = List.copyOf(all);
    }

    /// Reads the next piece of the answer.
    public void feed(String text) {
        if (finished) {
            throw new IllegalStateException("the answer was finished");
        }
        if (state == State.DONE) {
            return;
        }
        buf.append(text);
        run(false);
    }

    /// The answer is complete: passes on what was held back.
    public void finish() {
        if (finished) {
            return;
        }
        finished = true;
        run(true);
    }

    /// Calls started so far.
    public int calls() {
        return calls;
    }

    /// Whether a single call was allowed and has been made (the rest of the answer does not matter: generation
    /// may stop).
    public boolean done() {
        return state == State.DONE;
    }

    /// Whether the answer ended inside a call.
    public boolean incomplete() {
        return incomplete;
    }

    /// Whether a call's arguments were not valid JSON.
    public boolean malformed() {
        return malformed;
    }

    private void run(boolean end) {
        while (step(end)) {
            // each step consumes input or changes state, until one waits for more
        }
    }

    private void content(int from, int to) {
        if (to > from) {
            contentSent = true;
            listener.content(buf.substring(from, to));
        }
    }

    private int skipWhitespace(int i) {
        while (i < buf.length() && Character.isWhitespace(buf.charAt(i))) {
            i++;
        }
        return i;
    }

    /// One move of the state machine; false when it needs more text (or, at the end, when all is done).
    private boolean step(boolean end) {
        return switch (state) {
            case START -> start(end);
            case TEXT -> text(end);
            case AFTER_TRIGGER -> afterTrigger(end);
            case LIST_ITEM -> listItem(end);
            case LIST_NEXT -> listNext(end);
            case OBJECTS_NEXT -> objectsNext(end);
            case HERMES_CLOSE -> hermesClose(end);
            case OBJECT -> object(end);
            case ARGS -> arguments(end);
            case TAIL -> tail(end);
            case WHOLE -> whole(end);
            case NAME -> name(end);
            case DONE -> false;
        };
    }

    private boolean start(boolean end) {
        // the answer's first non-blank characters against the ways a call may start it
        StringBuilder compact = new StringBuilder();
        int first = -1;
        for (int i = pos; i < buf.length() && compact.length() < 16; i++) {
            char c = buf.charAt(i);
            if (!Character.isWhitespace(c)) {
                if (first < 0) {
                    first = i;
                }
                compact.append(c);
            }
        }
        boolean maybe = false;
        for (String s : format.starts) {
            if (compact.length() >= s.length() ? compact.toString().startsWith(s) : s.startsWith(compact.toString())) {
                if (compact.length() >= s.length()) {
                    fallbackStart = pos;
                    pos = first;
                    if (buf.charAt(first) == '[') {
                        section = Section.LIST;
                        pos++;
                        state = State.LIST_ITEM;
                    } else {
                        section = Section.OBJECTS;
                        state = State.OBJECT;
                    }
                    return true;
                }
                maybe = true;
            }
        }
        if (maybe && !end) {
            return false;
        }
        state = State.TEXT;
        return true;
    }

    private boolean text(boolean end) {
        int found = -1;
        String trigger = null;
        for (String t : allTriggers) {
            int k = buf.indexOf(t, pos);
            if (k >= 0 && (found < 0 || k < found)) {
                found = k;
                trigger = t;
            }
        }
        if (found >= 0) {
            if (!holdBlanks() || !buf.substring(pos, found).isBlank()) {
                content(pos, found);
            }
            fallbackStart = found;
            if (format.objectStarts.contains(trigger)) {
                // the trigger is the call object's own beginning
                pos = found;
                section = Section.OBJECTS;
                state = State.OBJECT;
            } else {
                pos = found + trigger.length();
                state = State.AFTER_TRIGGER;
            }
            return true;
        }
        int hold = 0;
        if (!end) {
            for (String t : allTriggers) {
                for (int h = Math.min(t.length() - 1, buf.length() - pos); h > hold; h--) {
                    if (regionMatches(buf.length() - h, t, h)) {
                        hold = h;
                        break;
                    }
                }
            }
            // blanks before the first text or after calls are held back (and dropped if nothing follows them or
            // a call does): they separate, they say nothing
            if (holdBlanks()) {
                int k = buf.length() - hold;
                while (k > pos && Character.isWhitespace(buf.charAt(k - 1))) {
                    k--;
                }
                hold = buf.length() - k;
            }
        } else if (holdBlanks() && buf.substring(pos).isBlank()) {
            pos = buf.length();
            return false;
        }
        content(pos, buf.length() - hold);
        pos = buf.length() - hold;
        return false;
    }

    /// Whether blank text is held back rather than passed on: before any text, and after a call.
    private boolean holdBlanks() {
        return calls > 0 || !contentSent;
    }

    /// The trigger was not followed by a call after all: it and what followed are text.
    private boolean notACall(int to) {
        content(fallbackStart, to);
        pos = to;
        state = State.TEXT;
        return true;
    }

    private boolean afterTrigger(boolean end) {
        int i = skipWhitespace(pos);
        if (i >= buf.length()) {
            return end && notACall(buf.length());
        }
        char c = buf.charAt(i);
        if (c == '{' && format != ToolFormat.MISTRAL_NAME_ARGS) {
            section = format == ToolFormat.HERMES ? Section.HERMES_TAG : Section.OBJECTS;
            pos = i;
            state = State.OBJECT;
        } else if (c == '[' && (format == ToolFormat.MISTRAL || format == ToolFormat.MISTRAL_NAME_ARGS)) {
            section = Section.LIST;
            pos = i + 1;
            state = State.LIST_ITEM;
        } else if (format == ToolFormat.MISTRAL_NAME_ARGS && isNameChar(c)) {
            section = Section.NAME_ARGS;
            pos = i;
            callStart = i;
            state = State.NAME;
        } else {
            return notACall(i);
        }
        return true;
    }

    private boolean listItem(boolean end) {
        int i = skipWhitespace(pos);
        if (i >= buf.length()) {
            return end && notACall(buf.length());
        }
        char c = buf.charAt(i);
        if (c == '{') {
            pos = i;
            state = State.OBJECT;
            return true;
        }
        if (c == ']') {
            pos = i + 1;
            state = State.TEXT;
            return true;
        }
        return notACall(i);
    }

    private boolean listNext(boolean end) {
        int i = skipWhitespace(pos);
        if (i >= buf.length()) {
            if (end) {
                pos = buf.length();
            }
            return false;
        }
        char c = buf.charAt(i);
        pos = c == ',' || c == ']' ? i + 1 : i;
        state = c == ',' ? State.LIST_ITEM : State.TEXT;
        fallbackStart = pos;
        return true;
    }

    private boolean objectsNext(boolean end) {
        int i = pos;
        while (i < buf.length() && (Character.isWhitespace(buf.charAt(i)) || buf.charAt(i) == ';')) {
            i++;
        }
        if (i >= buf.length()) {
            if (end) {
                pos = buf.length();
            }
            return false;
        }
        fallbackStart = i;
        pos = i;
        state = buf.charAt(i) == '{' ? State.OBJECT : State.TEXT;
        return true;
    }

    private boolean hermesClose(boolean end) {
        int i = skipWhitespace(pos);
        int have = buf.length() - i;
        if (have < HERMES_CLOSE.length() && HERMES_CLOSE.startsWith(buf.substring(i))) {
            if (!end) {
                return false;
            }
            // the answer ended inside the closing tag (the token limit): the call is complete all the same
            pos = buf.length();
            return false;
        }
        if (regionMatches(i, HERMES_CLOSE, HERMES_CLOSE.length())) {
            pos = i + HERMES_CLOSE.length();
        }
        state = State.TEXT;
        return true;
    }

    private boolean allowed(String name) {
        return names.contains(name) && (parallel || calls == 0);
    }

    private boolean object(boolean end) {
        callStart = pos;
        Matcher m = HEADER.matcher(buf);
        m.region(pos, buf.length());
        if (m.lookingAt()) {
            String name = unescape(m.group(1));
            if (allowed(name)) {
                begin(name);
                pos = m.end();
                scanner = new JsonText.Scanner();
                state = State.ARGS;
                return true;
            }
        } else if (m.hitEnd() && !end) {
            return false;
        }
        scanner = new JsonText.Scanner();
        state = State.WHOLE;
        return true;
    }

    private void begin(String name) {
        listener.callStarted(calls, ids.get(), name);
        args.setLength(0);
    }

    private void fragment(int from, int to) {
        if (to > from) {
            String f = buf.substring(from, to);
            args.append(f);
            listener.arguments(calls, f);
        }
    }

    private boolean arguments(boolean end) {
        int from = pos;
        int i = pos;
        if (args.isEmpty()) {
            // blanks before the value are not part of it
            i = skipWhitespace(i);
            from = i;
        }
        for (; i < buf.length(); i++) {
            char c = buf.charAt(i);
            if (scanner.endsBefore(c)) {
                return argumentsEnd(from, i);
            }
            if (scanner.feed(c)) {
                return argumentsEnd(from, i + 1);
            }
        }
        fragment(from, buf.length());
        pos = buf.length();
        if (end) {
            incomplete = true;
        }
        return false;
    }

    private boolean argumentsEnd(int from, int to) {
        fragment(from, to);
        pos = to;
        if (section == Section.NAME_ARGS) {
            return ended();
        }
        scanner = new JsonText.Scanner();
        scanner.feed('{');
        state = State.TAIL;
        return true;
    }

    private boolean tail(boolean end) {
        for (int i = pos; i < buf.length(); i++) {
            if (scanner.feed(buf.charAt(i))) {
                pos = i + 1;
                return ended();
            }
        }
        pos = buf.length();
        if (end) {
            incomplete = true;
        }
        return false;
    }

    /// The current call is complete.
    private boolean ended() {
        if (!JsonText.isValid(args.toString())) {
            malformed = true;
        }
        calls++;
        if (!parallel) {
            state = State.DONE;
            return false;
        }
        state = switch (section) {
            case HERMES_TAG -> State.HERMES_CLOSE;
            case LIST -> State.LIST_NEXT;
            case OBJECTS -> State.OBJECTS_NEXT;
            case NAME_ARGS -> State.TEXT;
        };
        return true;
    }

    private boolean whole(boolean end) {
        for (int i = Math.max(pos, callStart); i < buf.length(); i++) {
            if (scanner.feed(buf.charAt(i))) {
                pos = i + 1;
                return wholeCall(buf.substring(callStart, i + 1));
            }
        }
        pos = buf.length();
        return end && notACall(buf.length());
    }

    /// A complete call object whose name did not come first (or not at all): `{"arguments": {...}, "name": "f"}`,
    /// Llama's `{"type": "function", "name": ..., "parameters": ...}`.
    private boolean wholeCall(String text) {
        Object value;
        try {
            value = JsonText.parse(text);
        } catch (IllegalArgumentException e) {
            return notACall(pos);
        }
        if (!(value instanceof java.util.Map<?, ?> map) || !(map.get("name") instanceof String name)
                || !allowed(name)) {
            return notACall(pos);
        }
        Object arguments = map.containsKey("arguments") ? map.get("arguments") : map.get("parameters");
        if (arguments == null && !map.containsKey("arguments") && !map.containsKey("parameters")) {
            arguments = new java.util.LinkedHashMap<>();
        }
        String json = arguments instanceof String s && JsonText.isValid(s) ? s.strip() : JsonText.write(arguments);
        begin(name);
        args.append(json);
        listener.arguments(calls, json);
        return ended();
    }

    private boolean name(boolean end) {
        int mark = buf.indexOf(ARGS_MARK, callStart);
        if (mark < 0) {
            // a name, then possibly the start of [ARGS] (or [CALL_ID]id[ARGS]): wait, unless it cannot be one
            int bracket = buf.indexOf("[", callStart);
            int limit = bracket < 0 ? buf.length() : bracket;
            for (int i = callStart; i < limit; i++) {
                if (!isNameChar(buf.charAt(i))) {
                    return notACall(i);
                }
            }
            if (bracket >= 0) {
                String rest = buf.substring(bracket);
                if (!ARGS_MARK.startsWith(rest) && !CALL_ID_MARK.startsWith(rest) && !rest.startsWith(CALL_ID_MARK)) {
                    return notACall(buf.length());
                }
            }
            pos = buf.length();
            return end && notACall(buf.length());
        }
        String name = buf.substring(callStart, mark).strip();
        int id = name.indexOf(CALL_ID_MARK);
        if (id >= 0) {
            name = name.substring(0, id);
        }
        if (!allowed(name)) {
            return notACall(mark + ARGS_MARK.length());
        }
        begin(name);
        pos = mark + ARGS_MARK.length();
        scanner = new JsonText.Scanner();
        state = State.ARGS;
        return true;
    }

    /// Whether `buf` holds the first `length` characters of `s` at `at`.
    private boolean regionMatches(int at, String s, int length) {
        if (at < 0 || at + length > buf.length()) {
            return false;
        }
        for (int k = 0; k < length; k++) {
            if (buf.charAt(at + k) != s.charAt(k)) {
                return false;
            }
        }
        return true;
    }

    private static boolean isNameChar(char c) {
        return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-';
    }

    private static String unescape(String jsonStringBody) {
        try {
            return (String) JsonText.parse("\"" + jsonStringBody + "\"");
        } catch (IllegalArgumentException | ClassCastException e) {
            return jsonStringBody;
        }
    }
}
