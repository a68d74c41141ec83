package dev.llamaj.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/// Syntax errors, render errors and the sandbox: one-line messages that say where and what, and limits that
/// stop a hostile template (it comes from a model file) quickly instead of hanging or exhausting memory.
class TemplateErrorsTest {

    static String renderError(String template) {
        ChatTemplate t;
        try {
            t = ChatTemplate.parse(template);
        } catch (TemplateException e) {
            throw new AssertionError("unexpected syntax error: " + e.getMessage(), e);
        }
        try {
            String out = t.render(List.of(Message.user("hi")), true, Map.of());
            throw new AssertionError("expected an error, rendered " + out.length() + " characters");
        } catch (TemplateException e) {
            assertThat(e.getMessage()).doesNotContain("\n");
            return e.getMessage();
        }
    }

    static String syntaxError(String template) {
        try {
            ChatTemplate.parse(template);
            throw new AssertionError("expected a syntax error");
        } catch (TemplateException e) {
            assertThat(e.getMessage()).doesNotContain("\n");
            return e.getMessage();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', textBlock = """
            "{% if x %}\\n{% endfor %}"             | line 2: unexpected 'endfor': expected 'elif', 'else' or 'endif' for the 'if' on line 1
            "{% for x in y %}\\na"                  | line 2: unexpected end of template: expected 'else' or 'endfor' to close the 'for' on line 1
            "a\\n\\n{{ 1 + }}"                      | line 3: expected an expression, got 'end of print statement'
            "a\\n{{ x "                             | line 2: unexpected end of template, expected 'end of print statement'
            "{{ x | nofilter }}"                   | line 1: no filter named 'nofilter'
            "{{ x is nosuch }}"                    | line 1: no test named 'nosuch'
            "{% endif %}"                          | line 1: unknown tag 'endif'
            "{% frobnicate %}"                     | line 1: unknown tag 'frobnicate'
            "{% include 'other.jinja' %}"          | line 1: the 'include' tag is not supported
            "{{ 'abc }}"                           | line 1: unterminated string
            "{# never closed"                      | line 1: missing end of comment tag
            "{{ (1 }}"                             | line 1: unexpected '}', expected ')'
            "{% break %}"                          | line 1: 'break' outside of a loop
            "{% macro m(a=1, b) %}{% endmacro %}"  | line 1: non-default argument follows default argument
            "{{ f(1, a=2, 3) }}"                   | line 1: invalid syntax for function call expression
            """)
    void syntaxErrorsNameTheLine(String template, String message) {
        assertThat(syntaxError(template.replace("\\n", "\n"))).isEqualTo(message);
    }

    @Test
    void unimplementedJinjaFiltersFailOnlyWhenUsed() throws TemplateException {
        ChatTemplate t = ChatTemplate.parse("{% if messages|length > 5 %}{{ messages|groupby('role') }}{% endif %}ok");
        assertThat(t.render(List.of(), false, Map.of())).isEqualTo("ok");
        assertThat(renderError("{{ messages|groupby('role') }}")).isEqualTo("line 1: the filter 'groupby' is not supported");
    }

    @Test
    void raiseExceptionFailsWithExactlyItsMessage() {
        assertThat(renderError("a\n{% if messages[0].role == 'user' %}{{ raise_exception('Only system: ' ~ 1) }}{% endif %}"))
                .isEqualTo("Only system: 1");
    }

    @Test
    void renderErrorsSayLineAndCause() {
        assertThat(renderError("line one\n{{ 1 / 0 }}")).isEqualTo("line 2: division by zero");
        assertThat(renderError("{{ undefined_thing + 1 }}")).isEqualTo("line 1: 'undefined_thing' is undefined");
        assertThat(renderError("{{ messages[0].nope.deeper }}")).isEqualTo("line 1: 'dict object' has no attribute 'nope'");
        assertThat(renderError("{{ 'a' + 1 }}")).isEqualTo("line 1: can only concatenate str (not \"int\") to str");
        assertThat(renderError("{% for x in none %}{% endfor %}")).isEqualTo("line 1: 'NoneType' object is not iterable");
        assertThat(renderError("{% set a, b = [1] %}")).isEqualTo("line 1: not enough values to unpack (expected 2, got 1)");
        assertThat(renderError("{{ undefined_thing|tojson }}")).isEqualTo("line 1: Object of type Undefined is not JSON serializable");
    }

    @Test
    @Timeout(10)
    void hugeRangesAreRefusedAtOnce() {
        assertThat(renderError("{% for i in range(10**9) %}{{ i }}{% endfor %}"))
                .isEqualTo("line 1: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }

    @Test
    @Timeout(30)    // about 0.1 s on an idle machine
    void nestedLoopsHitTheIterationLimit() {
        assertThat(renderError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"))
                .isEqualTo("line 1: the template exceeded the limit of 1000000 loop iterations and macro calls");
    }

    @Test
    @Timeout(30)
    void runawayMacrosHitTheDepthOrCallLimit() {
        assertThat(renderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"))
                .isEqualTo("line 1: the template exceeded the limit of 100 nested macro calls or recursive loops");
        assertThat(renderError("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"))
                .isEqualTo("line 1: the template exceeded the limit of 1000000 loop iterations and macro calls");
    }

    @Test
    @Timeout(30)
    void sizeLimitsBoundMemory() {
        assertThat(renderError("{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}"))
                .isEqualTo("line 1: the template output exceeded the limit of 4000000 characters");
        assertThat(renderError("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"))
                .isEqualTo("line 1: string longer than the limit of 4000000 characters");
        assertThat(renderError("{{ 'a' * 10**12 }}")).isEqualTo("line 1: string longer than the limit of 4000000 characters");
        assertThat(renderError("{{ [0] * 10**9 }}")).isEqualTo("line 1: list longer than the limit of 1000000 items");
        assertThat(renderError("{% for i in range(100000) %}{% set x = 'a' * 3000000 %}{% endfor %}"))
                .isEqualTo("line 1: the template exceeded the limit of 64000000 characters of computed values");
    }

    @Test
    void deeplyNestedTemplatesAreSyntaxErrorsNotStackOverflows() {
        assertThat(syntaxError("{{ " + "(".repeat(5000) + "1" + ")".repeat(5000) + " }}"))
                .isEqualTo("line 1: template nesting too deep (more than 200 levels)");
        assertThat(syntaxError("{% if 1 %}".repeat(5000))).isEqualTo("line 1: template nesting too deep (more than 200 levels)");
        assertThat(syntaxError("{{ x" + ".a".repeat(100_000) + " }}")).isEqualTo("line 1: template nesting too deep (more than 200 levels)");
        assertThat(syntaxError("{{ " + "1 + ".repeat(100_000) + "1 }}")).isEqualTo("line 1: template nesting too deep (more than 200 levels)");
    }

    @Test
    void sandboxHidesInternalsAndRefusesMutation() throws TemplateException {
        ChatTemplate t = ChatTemplate.parse("[{{ ''.__class__ }}{{ messages.__len__ }}{{ range.__globals__ }}{{ raise_exception.__code__ }}]");
        assertThat(t.render(List.of(), false, Map.of())).isEqualTo("[]");
        assertThat(renderError("{{ messages.append(1) }}")).isEqualTo("line 1: access to attribute 'append' of 'list' object is unsafe.");
        assertThat(renderError("{{ messages[0].update({'role': 'x'}) }}")).isEqualTo("line 1: access to attribute 'update' of 'dict' object is unsafe.");
    }

    @Test
    void callerDataIsCopiedAndOnlyPlainValuesAreAccepted() throws TemplateException {
        Map<String, Object> tool = new HashMap<>(Map.of("name", "t"));
        List<Object> tools = new ArrayList<>(List.of(tool));
        ChatTemplate t = ChatTemplate.parse("{% set ns = namespace(t=tools) %}{{ tools[0].name }}");
        assertThat(t.render(List.of(), false, Map.of("tools", tools))).isEqualTo("t");
        assertThat(tools).containsExactly(tool);

        assertThatThrownBy(() -> t.render(List.of(), false, Map.of("tools", List.of(new Thread()))))
                .isInstanceOf(TemplateException.class)
                .hasMessage("value 'tools[0]' has the unsupported type java.lang.Thread");
    }

    @Test
    void messageFactories() {
        assertThat(Message.system("s")).isEqualTo(new Message("system", "s"));
        assertThat(Message.user("u").role()).isEqualTo("user");
        assertThat(Message.assistant(null).content()).isNull();
        assertThatThrownBy(() -> new Message(null, "x")).isInstanceOf(NullPointerException.class);
    }
}
