package dev.llamaj.template;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

/// Focused checks of the Jinja2 semantics chat templates depend on. Every expected string here is what Python's
/// Jinja2 3.1 renders with Hugging Face's settings (trim_blocks, lstrip_blocks, loop controls, sandbox).
class JinjaSemanticsTest {

    static String render(String template) {
        return render(template, Map.of());
    }

    static String render(String template, Map<String, ?> variables) {
        Map<String, Object> vars = new LinkedHashMap<>();
        vars.put("messages", List.of(Message.user(" Hi "), Message.assistant("Hello")));
        vars.put("bos_token", "<s>");
        vars.put("add_generation_prompt", true);
        vars.put("name", "Bob");
        vars.putAll(variables);
        try {
            return ChatTemplate.parse(template).render(vars);
        } catch (TemplateException e) {
            throw new AssertionError("unexpected: " + e.getMessage(), e);
        }
    }

    @Nested
    class Whitespace {
        @Test
        void trimBlocksRemovesTheNewlineAfterABlockTagAndTheTemplatesLastNewlineIsDropped() {
            assertThat(render("{% if true %}\nyes\n{% endif %}\nafter\n")).isEqualTo("yes\nafter");
            assertThat(render("x\n\n")).isEqualTo("x\n");
        }

        @Test
        void lstripBlocksRemovesIndentationBeforeBlockTagsOnly() {
            assertThat(render("<ul>\n  {% for i in [1, 2] %}\n    <li>{{ i }}</li>\n  {% endfor %}\n</ul>\n"))
                    .isEqualTo("<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>");
            // not before {{ }}, nor when the tag does not start its line
            assertThat(render("  {{ 'a' }}\n  {{ 'b' }}\n")).isEqualTo("  a\n  b");
            assertThat(render("a  {% if true %}b{% endif %}")).isEqualTo("a  b");
        }

        @Test
        void commentsAreTrimmedLikeBlocks() {
            assertThat(render("  {# comment #}\nx\n{#- c -#}  y")).isEqualTo("xy");
        }

        @Test
        void plusDisablesLstripAndTrim() {
            assertThat(render("  {%+ if true %}x{% endif +%}\ny")).isEqualTo("  x\ny");
        }

        @Test
        void minusStripsAllWhitespaceIncludingNewlines() {
            assertThat(render("a  \n  {{- 'b' -}}  \n  c")).isEqualTo("abc");
            assertThat(render("a\n  {%- if true -%}\n  b  \n{%- endif %}\nc")).isEqualTo("abc");
        }

        @Test
        void lineEndingsAreNormalized() {
            assertThat(render("a\r\nb\rc")).isEqualTo("a\nb\nc");
        }

        @Test
        void rawBlocksAreText() {
            assertThat(render("{% raw %}{{ x }}{% endraw %}")).isEqualTo("{{ x }}");
        }

        @Test
        void indentedTemplateRendersLikeJinja() {
            assertThat(render("{% for m in messages %}\n  {% if m.role == 'user' %}\n    U: {{ m.content }}\n  {% else %}\n"
                    + "    A: {{ m.content }}\n  {% endif %}\n{% endfor %}\n"))
                    .isEqualTo("    U:  Hi \n    A: Hello\n");
            assertThat(render("{{- bos_token }}\n{%- for m in messages %}\n    {{- '<|' + m.role + '|>\\n' + m.content | trim"
                    + " + '<|end|>\\n' }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|assistant|>\\n' }}\n"
                    + "{%- endif %}\n"))
                    .isEqualTo("<s><|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n<|assistant|>\n");
        }
    }

    @Nested
    class Loops {
        @Test
        void loopVariables() {
            assertThat(render("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                    + "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}"))
                    .isEqualTo("1032TrueFalse3b;2121FalseFalse3ac;3210FalseTrue3b;");
        }

        @Test
        void inlineFilterCountsOnlyKeptItemsAndElseRunsWhenEmpty() {
            assertThat(render("{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}:{{ x }}/{{ loop.length }} "
                    + "{% else %}none{% endfor %}")).isEqualTo("1:2/2 2:4/2 ");
            assertThat(render("{% for x in [] %}x{% else %}none{% endfor %}")).isEqualTo("none");
        }

        @Test
        void breakAndContinue() {
            assertThat(render("{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}"
                    + "{% endif %}{{ i }}{% endfor %}")).isEqualTo("0246");
        }

        @Test
        void innerLoopShadowsOuterLoop() {
            assertThat(render("{% for x in [1, 2] %}{% for y in 'ab' %}{{ loop.index }}{{ x }}{{ y }} {% endfor %}"
                    + "{{ loop.index }}|{% endfor %}")).isEqualTo("11a 21b 1|12a 22b 2|");
        }

        @Test
        void cycleChangedAndRecursiveLoops() {
            assertThat(render("{% for x in range(4) %}{{ loop.cycle('a', 'b', 'c') }}{% if loop.changed(x // 2) %}!{% endif %}"
                    + "{% endfor %}")).isEqualTo("a!bc!a");
            Map<String, Object> tree = Map.of("tree", List.of(
                    Map.of("name", "a", "children", List.of(Map.of("name", "b", "children", List.of()), Map.of("name", "c"))),
                    Map.of("name", "d")));
            assertThat(render("{% for n in tree recursive %}{{ n.name }}{% if n.children %}[{{ loop(n.children) }}]{% endif %}"
                    + "{{ loop.depth }}{% endfor %}", tree)).isEqualTo("a[b2c2]1d1");
        }

        @Test
        void unpackingDictItems() {
            assertThat(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}")).isEqualTo("a=1;b=2;");
        }
    }

    @Nested
    class Scoping {
        @Test
        void setInsideALoopDoesNotLeakButIfDoes() {
            assertThat(render("{% set x = 'outer' %}{% for i in [1] %}{{ x }}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}"))
                    .isEqualTo("outerinnerouter");
            assertThat(render("{% if true %}{% set y = 1 %}{% endif %}{{ y }}")).isEqualTo("1");
        }

        @Test
        void namespaceCarriesStateOutOfLoops() {
            assertThat(render("{% set ns = namespace(count=0, found=none) %}{% for m in messages %}"
                    + "{% set ns.count = ns.count + 1 %}{% if m.role == 'assistant' %}{% set ns.found = loop.index0 %}{% endif %}"
                    + "{% endfor %}{{ ns.count }} {{ ns.found }}")).isEqualTo("2 1");
        }

        @Test
        void tupleAndBlockAssignment() {
            assertThat(render("{% set a, b = 'xy' %}{{ b }}{{ a }}")).isEqualTo("yx");
            assertThat(render("{% set block | trim | upper %}\n  hello {{ name }}\n{% endset %}[{{ block }}]"))
                    .isEqualTo("[HELLO BOB]");
        }

        @Test
        void macrosWithDefaultsKeywordsAndRecursion() {
            assertThat(render("{% macro tag(name, body='', attrs={}) %}<{{ name }}{% for k, v in attrs|dictsort %} {{ k }}=\"{{ v }}\""
                    + "{% endfor %}>{{ body }}</{{ name }}>{% endmacro %}{{ tag('b', 'x') }}{{ tag('a', attrs={'href': '/', 'id': 1}) }}"))
                    .isEqualTo("<b>x</b><a href=\"/\" id=\"1\"></a>");
            assertThat(render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}"
                    + "{{ fact(10) }}")).isEqualTo("3628800");
        }
    }

    @Nested
    class Values {
        @Test
        void pythonArithmeticAndFormatting() {
            assertThat(render("{{ 1 + 2 * 3 - 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** 3 ** 2 }}"
                    + "|{{ 'ab' ~ 1 ~ none }}|{{ 'ab' * 2 }}|{{ 1 == 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1 / 4 }}"
                    + "|{{ [1, 'a', none, true] }}|{{ {'k': (1, 2)} }}"))
                    .isEqualTo("5.0|3|-4|2|1024|64|ab1None|abab|True|0.30000000000000004|1e+20|0.25|[1, 'a', None, True]|{'k': (1, 2)}");
        }

        @Test
        void stringAndDictMethodsAndSlices() {
            assertThat(render("{{ 'abc'[::-1] }}|{{ [1, 2, 3][1:] }}|{{ 'hello'[-3:-1] }}|{{ '  A b '.strip().lower() }}"
                    + "|{{ 'a,b'.split(',') }}|{{ 'x</think>y'.split('</think>')[-1] }}|{{ 'abc'.startswith('ab') }}"
                    + "|{{ 'abc'.endswith(('x', 'c')) }}|{{ '\\n\\nx'.lstrip('\\n') }}|{{ {'a': 1}.get('b', 0) }}"
                    + "|{{ {'a': 1}.items()|list }}|{{ 'hi {}'.format('you') }}|{{ '%s=%d' % ('n', 3) }}"))
                    .isEqualTo("cba|[2, 3]|ll|a b|['a', 'b']|y|True|True|x|0|[('a', 1)]|hi you|n=3");
        }

        @Test
        void undefinedIsFalsyEmptyAndIterable() {
            assertThat(render("{{ nope }}|{{ nope is defined }}|{{ nope is undefined }}|{{ nope|length }}|{% for x in nope %}never"
                    + "{% endfor %}|{{ messages[0].missing is defined }}|{{ messages[9] is defined }}|{{ 'y' if nope else 'n' }}"
                    + "|{{ nope ~ '!' }}|{{ nope == nope }}|{{ 'a' in nope }}"))
                    .isEqualTo("|False|True|0||False|False|n|!|True|False");
        }

        @Test
        void tests() {
            assertThat(render("{{ 1 is number }}{{ 'a' is string }}{{ {} is mapping }}{{ 'a' is iterable }}{{ none is none }}"
                    + "{{ false is false }}{{ 0 is false }}{{ 3 is divisibleby 3 }}{{ 'x' is in 'xyz' }}{{ 1 is integer }}"
                    + "{{ 1.0 is float }}")).isEqualTo("TrueTrueTrueTrueTrueTrueFalseTrueTrueTrueTrue");
        }

        @Test
        void filters() {
            assertThat(render("{{ ' x '|trim }}|{{ [1, 2]|join(', ') }}|{{ none|default('d') }}|{{ nope|default('d') }}"
                    + "|{{ ''|default('d', true) }}|{{ messages|map(attribute='role')|join(',') }}"
                    + "|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}"
                    + "|{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|first }}|{{ 'hello world'|title }}"
                    + "|{{ 'Hi'|lower }}{{ 'Hi'|upper }}|{{ 'abc'|capitalize }}|{{ 'a-b'|replace('-', '+') }}|{{ '42'|int + 1 }}"
                    + "|{{ 2.5|round }}|{{ [3, 1, 2]|sort|last }}|{{ {'k': 'v'}|items|list }}|{{ 7|string ~ 'x' }}"))
                    .isEqualTo("x|1, 2|None|d|d|user,assistant|1|Hello|Hello World|hiHI|Abc|a+b|43|2.0|3|[('k', 'v')]|7x");
        }

        @Test
        void filtersThatReturnGeneratorsBehaveLikeGenerators() {
            // a generator is true even when empty, and a second pass over it sees nothing
            assertThat(render("{{ 'yes' if messages|selectattr('role', 'equalto', 'nobody') else 'no' }}"
                    + "|{% set g = [1, 2]|map('string') %}{{ g|join }}{{ g|join }}|{{ range(3) }}"
                    + "|{{ [{'n': 'b', 'r': 2}, {'n': 'a', 'r': 2}, {'n': 'c', 'r': 1}]|sort(attribute='r,n')|map(attribute='n')|join }}"))
                    .isEqualTo("yes|12|range(0, 3)|cab");
        }

        @Test
        void tojsonIsPythonJsonDumps() {
            assertThat(render("{{ {'name': 'é', 'n': [1, 2.5, true, none], 'q': 'say \"hi\"\\n'}|tojson }}"))
                    .isEqualTo("{\"name\": \"é\", \"n\": [1, 2.5, true, null], \"q\": \"say \\\"hi\\\"\\n\"}");
            assertThat(render("{{ {'a': [1, {'b': []}], 'c': {}}|tojson(indent=2) }}"))
                    .isEqualTo("{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ],\n  \"c\": {}\n}");
            assertThat(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}")).isEqualTo("{\"a\":2,\"b\":1}");
        }

        @Test
        void javaValuesBecomePythonValues() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("i", 3);
            m.put("f", 0.5f);
            m.put("none", null);
            m.put("list", new String[] {"a", "b"});
            assertThat(render("{{ v }}|{{ v.i + 1 }}|{{ v|tojson }}", Map.of("v", m)))
                    .isEqualTo("{'i': 3, 'f': 0.5, 'none': None, 'list': ['a', 'b']}|4|{\"i\": 3, \"f\": 0.5, \"none\": null, \"list\": [\"a\", \"b\"]}");
        }
    }

    @Test
    void strftimeNowReadsTheInjectedClock() throws TemplateException {
        Clock clock = Clock.fixed(Instant.parse("2026-02-23T18:05:09Z"), ZoneId.of("UTC"));
        ChatTemplate t = ChatTemplate.parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %I%p %-d') }}")
                .withClock(clock);
        assertThat(t.render(List.of(), false, Map.of())).isEqualTo("23 Feb 2026|2026-02-23 18:05:09 Monday February 054 06PM 23");
    }

    @Test
    void richMessagesWithToolCallsRenderThroughTheMapOverload() throws TemplateException {
        String template = "{% for m in messages %}{{ m.role }}:{% if m.tool_calls %}{% for c in m.tool_calls %}"
                + "{{ c.function.name }}({{ c.function.arguments|tojson }}){% endfor %}{% else %}{{ m.content }}{% endif %};"
                + "{% endfor %}{{ tools|length }}";
        Map<String, Object> call = Map.of("type", "function",
                "function", Map.of("name", "get_weather", "arguments", Map.of("city", "Paris")));
        Map<String, Object> assistant = new LinkedHashMap<>();
        assistant.put("role", "assistant");
        assistant.put("content", null);
        assistant.put("tool_calls", List.of(call));
        Map<String, Object> vars = Map.of(
                "messages", List.of(Message.user("Weather?"), assistant, Map.of("role", "tool", "content", "20C")),
                "tools", List.of(Map.of("type", "function")));

        assertThat(ChatTemplate.parse(template).render(vars))
                .isEqualTo("user:Weather?;assistant:get_weather({\"city\": \"Paris\"});tool:20C;1");
    }
}
