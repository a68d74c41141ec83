package dev.llamaj.engine.tools;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/// Each family's call format read back into text and calls: whole, and in pieces of every size (which must give
/// the same result, as streaming depends on it), with text before the call, parallel calls, and what is not a call.
class ToolCallParserTest {
    static final Set<String> NAMES = Set.of("get_weather", "get_time");

    /// What a parser passed on: the text, and each call as `id name arguments`.
    record Parsed(String content, List<String> calls, boolean incomplete, boolean malformed) {}

    static Parsed parse(ToolFormat format, boolean parallel, List<String> pieces) {
        StringBuilder content = new StringBuilder();
        List<StringBuilder> calls = new ArrayList<>();
        AtomicInteger ids = new AtomicInteger();
        ToolCallParser p = new ToolCallParser(format, NAMES, parallel, () -> "id" + ids.getAndIncrement(),
                new ToolCallParser.Listener() {
                    @Override
                    public void content(String text) {
                        assertThat(text).isNotEmpty();
                        content.append(text);
                    }

                    @Override
                    public void callStarted(int index, String id, String name) {
                        assertThat(index).isEqualTo(calls.size());
                        calls.add(new StringBuilder(id + " " + name + " "));
                    }

                    @Override
                    public void arguments(int index, String fragment) {
                        assertThat(index).isEqualTo(calls.size() - 1);
                        calls.get(index).append(fragment);
                    }
                });
        for (String piece : pieces) {
            p.feed(piece);
        }
        p.finish();
        return new Parsed(content.toString(), calls.stream().map(StringBuilder::toString).toList(), p.incomplete(),
                p.malformed());
    }

    /// Parses `text` whole, one character at a time, and in random pieces; all must agree.
    static Parsed parse(ToolFormat format, boolean parallel, String text) {
        Parsed whole = parse(format, parallel, List.of(text));
        List<String> chars = text.chars().mapToObj(c -> String.valueOf((char) c)).toList();
        assertThat(parse(format, parallel, chars)).as("one character at a time").isEqualTo(whole);
        Random random = new Random(text.hashCode());
        for (int round = 0; round < 20; round++) {
            List<String> pieces = new ArrayList<>();
            for (int i = 0; i < text.length(); ) {
                int n = 1 + random.nextInt(6);
                pieces.add(text.substring(i, Math.min(text.length(), i + n)));
                i += n;
            }
            assertThat(parse(format, parallel, pieces)).as("pieces %s", pieces).isEqualTo(whole);
        }
        return whole;
    }

    static Parsed parse(ToolFormat format, String text) {
        return parse(format, true, text);
    }

    @Test
    void hermesCallAfterText() {
        Parsed p = parse(ToolFormat.HERMES, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\":"
                + " {\"city\": \"Paris\", \"unit\": \"C\"}}\n</tool_call>");
        assertThat(p.content()).isEqualTo("Let me check.\n");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Paris\", \"unit\": \"C\"}");
        assertThat(p.incomplete()).isFalse();
        assertThat(p.malformed()).isFalse();
    }

    @Test
    void hermesCutOffInTheClosingTag() {
        Parsed p = parse(ToolFormat.HERMES, "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_c");
        assertThat(p.calls()).containsExactly("id0 get_time {}");
        assertThat(p.content()).isEmpty();
        assertThat(p.incomplete()).isFalse();
    }

    @Test
    void hermesParallelCalls() {
        Parsed p = parse(ToolFormat.HERMES, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":"
                + " \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\":"
                + " \"CET\"}}\n</tool_call>\n");
        assertThat(p.content()).isEmpty();
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Paris\"}",
                "id1 get_time {\"zone\": \"CET\"}");
    }

    @Test
    void notParallelTakesTheFirstCallOnly() {
        Parsed p = parse(ToolFormat.HERMES, false, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}"
                + "</tool_call><tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>");
        assertThat(p.calls()).containsExactly("id0 get_weather {}");
        assertThat(p.content()).isEmpty();
    }

    @Test
    void hermesArgumentsBeforeNameArePassedOnWhole() {
        Parsed p = parse(ToolFormat.HERMES, "<tool_call>{\"arguments\": {\"city\": \"Oslo\"}, \"name\":"
                + " \"get_weather\"}</tool_call>");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Oslo\"}");
    }

    @Test
    void stringsWithBracesAndEscapesInArguments() {
        String args = "{\"q\": \"a } b { \\\" ] [ </tool_call>\", \"n\": [1, {\"x\": null}], \"t\": true}";
        Parsed p = parse(ToolFormat.HERMES, "<tool_call>{\"name\": \"get_time\", \"arguments\": " + args
                + "}</tool_call>");
        assertThat(p.calls()).containsExactly("id0 get_time " + args);
    }

    @Test
    void unknownFunctionIsText() {
        String text = "<tool_call>{\"name\": \"launch_missiles\", \"arguments\": {}}</tool_call> done";
        Parsed p = parse(ToolFormat.HERMES, text);
        assertThat(p.calls()).isEmpty();
        assertThat(p.content()).isEqualTo(text);
    }

    @Test
    void notACallAfterTheTriggerIsText() {
        Parsed p = parse(ToolFormat.HERMES, "I would write <tool_call> here.");
        assertThat(p.calls()).isEmpty();
        assertThat(p.content()).isEqualTo("I would write <tool_call> here.");
        // a trigger cut off at the end is text too
        assertThat(parse(ToolFormat.HERMES, "almost <tool_ca").content()).isEqualTo("almost <tool_ca");
    }

    @Test
    void answerCutOffInsideACallIsIncomplete() {
        Parsed p = parse(ToolFormat.HERMES, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par");
        assertThat(p.incomplete()).isTrue();
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Par");
    }

    @Test
    void invalidJsonArgumentsAreMalformed() {
        Parsed p = parse(ToolFormat.HERMES, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": tru}}"
                + "</tool_call>");
        assertThat(p.malformed()).isTrue();
    }

    @Test
    void llamaJsonCall() {
        Parsed p = parse(ToolFormat.LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}");
        assertThat(p.content()).isEmpty();
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Rome\"}");
        // with the type first, as Llama 3.2 sometimes writes it, and leading blanks
        p = parse(ToolFormat.LLAMA3, "\n {\"type\": \"function\", \"name\": \"get_time\", \"parameters\": {}}");
        assertThat(p.calls()).containsExactly("id0 get_time {}");
        // several, separated by ';'
        p = parse(ToolFormat.LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"A\"}}; "
                + "{\"name\": \"get_time\", \"parameters\": {}}");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"A\"}", "id1 get_time {}");
    }

    @Test
    void llamaPythonTagAfterText() {
        Parsed p = parse(ToolFormat.LLAMA3, "Checking.<|python_tag|>{\"name\": \"get_time\", \"parameters\":"
                + " {\"zone\": \"UTC\"}}");
        assertThat(p.content()).isEqualTo("Checking.");
        assertThat(p.calls()).containsExactly("id0 get_time {\"zone\": \"UTC\"}");
    }

    @Test
    void llamaTextThatStartsLikeJsonIsText() {
        Parsed p = parse(ToolFormat.LLAMA3, "{\"answer\": 42}");
        assertThat(p.calls()).isEmpty();
        assertThat(p.content()).isEqualTo("{\"answer\": 42}");
        assertThat(parse(ToolFormat.LLAMA3, "The weather is fine.").content()).isEqualTo("The weather is fine.");
        // a call after text is a call for Llama (its <|python_tag|> leaves no trace in the text), as llama.cpp
        p = parse(ToolFormat.LLAMA3, "Say {\"name\": \"get_time\", \"parameters\": {}} to me");
        assertThat(p.calls()).containsExactly("id0 get_time {}");
        assertThat(p.content()).isEqualTo("Say to me");
        // but not other JSON
        String mid = "Say {\"name\": \"Bob\"} to me";
        assertThat(parse(ToolFormat.LLAMA3, mid).content()).isEqualTo(mid);
    }

    @Test
    void mistralToolCalls() {
        Parsed p = parse(ToolFormat.MISTRAL, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\":"
                + " \"Lyon\"}, \"id\": \"abcDEF123\"}, {\"name\": \"get_time\", \"arguments\": {}}]");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Lyon\"}", "id1 get_time {}");
        assertThat(p.content()).isEmpty();
        // [TOOL_CALLS] is a control token, so the text may be the bare array
        p = parse(ToolFormat.MISTRAL, " [{\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}]");
        assertThat(p.calls()).containsExactly("id0 get_time {\"zone\": \"CET\"}");
        assertThat(parse(ToolFormat.MISTRAL, "[1, 2, 3]").content()).isEqualTo("[1, 2, 3]");
    }

    @Test
    void mistralNameArgs() {
        Parsed p = parse(ToolFormat.MISTRAL_NAME_ARGS, "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Nice\"}"
                + "[TOOL_CALLS]get_time[ARGS]{}");
        assertThat(p.content()).isEqualTo("Sure.");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Nice\"}", "id1 get_time {}");
        p = parse(ToolFormat.MISTRAL_NAME_ARGS, "[TOOL_CALLS]nope[ARGS]{}");
        assertThat(p.calls()).isEmpty();
        assertThat(p.content()).isEqualTo("[TOOL_CALLS]nope[ARGS]{}");
        p = parse(ToolFormat.MISTRAL_NAME_ARGS, "[TOOL_CALLS]get time[ARGS]{}");
        assertThat(p.calls()).isEmpty();
    }

    @Test
    void genericObjectOrArray() {
        Parsed p = parse(ToolFormat.GENERIC, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bern\"}}");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Bern\"}");
        p = parse(ToolFormat.GENERIC, "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Bern\"}},"
                + " {\"name\": \"get_time\", \"arguments\": {}}]");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Bern\"}", "id1 get_time {}");
        assertThat(parse(ToolFormat.GENERIC, "Hello there").content()).isEqualTo("Hello there");
        assertThat(parse(ToolFormat.GENERIC, "{\"na").content()).isEqualTo("{\"na");
    }

    @Test
    void argumentsGivenAsAJsonString() {
        Parsed p = parse(ToolFormat.GENERIC, "{\"arguments\": \"{\\\"city\\\": \\\"Bern\\\"}\", \"name\": \"get_weather\"}");
        assertThat(p.calls()).containsExactly("id0 get_weather {\"city\": \"Bern\"}");
    }

    @Test
    void formatDetectedFromTheTemplate() {
        assertThat(ToolFormat.detect("... <tool_call>\\n{...}")).isEqualTo(ToolFormat.HERMES);
        assertThat(ToolFormat.detect("{{ '[TOOL_CALLS][' }}")).isEqualTo(ToolFormat.MISTRAL);
        assertThat(ToolFormat.detect("[TOOL_CALLS]{{ name }}[ARGS]")).isEqualTo(ToolFormat.MISTRAL_NAME_ARGS);
        assertThat(ToolFormat.detect("<|start_header_id|>{% if tools %}\"parameters\"")).isEqualTo(ToolFormat.LLAMA3);
        assertThat(ToolFormat.detect("{{ '<|im_start|>' }}")).isEqualTo(ToolFormat.GENERIC);
        assertThat(ToolFormat.detect(null)).isEqualTo(ToolFormat.GENERIC);
    }
}
