package dev.llamaj.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/// Request text keeps its mark through what templates do with strings, and what cannot keep it is refused.
/// Renders show the request's characters in `[]`.
class ProvenanceTest {

    /// Renders `template` with `x` = `value` and `y` = `"Y"` as request text, `t` = `"T"` as the template's own.
    static String marked(String template, Object value) throws TemplateException {
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("x", value);
        request.put("y", "Y");
        ChatTemplate.Rendering r = ChatTemplate.parse(template).renderRequest(Map.of("t", "T"), request);
        StringBuilder sb = new StringBuilder(r.text());
        int[] spans = r.requestSpans();
        for (int i = spans.length - 2; i >= 0; i -= 2) {
            sb.insert(spans[i + 1], ']').insert(spans[i], '[');
        }
        return sb.toString();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiterString = " => ", quoteCharacter = '`', textBlock = """
            {{ x }}                                  => [ ab ]
            {{ t + x + t }}                          => T[ ab ]T
            {{ t ~ x ~ 1 }}                          => T[ ab ]1
            {{ x | trim }}|{{ x.strip() }}           => [ab]|[ab]
            {{ x[1:] }}.{{ x[1] }}                   => [ab ].[a]
            {{ x.split('a') | join(t) }}             => [ ]T[b ]
            {{ x.replace('a', t) }}                  => [ ]T[b ]
            {{ t.replace('T', x) }}                  => [ ab ]
            {{ x | upper }}.{{ x.title() }}          => [ AB ].[ Ab ]
            {{ '%s-%s' % (t, x) }}                   => T-[ ab ]
            {{ '{}{}'.format(x, t) }}                => [ ab ]T
            {{ [x, t] | join(y) }}                   => [ ab Y]T
            {{ x | tojson }}                         => "[ ab ]"
            {{ {x: t} | tojson }}                    => {"[ ab ]": "T"}
            {{ [x] }}                                => ['[ ab ]']
            {% for c in x %}{{ c }}.{% endfor %}     => [ ].[a].[b].[ ].
            {% macro m(v) %}<{{ v }}>{% endmacro %}{{ m(x) | trim }} => <[ ab ]>
            {% set s %}{{ t }}{{ x }}{% endset %}{{ s[1:] }} => [ ab ]
            {{ x | reverse }}.{{ x | center(5) }}    => [ ba ]. [ ab ]
            {{ x | length }}{{ x == ' ab ' }}{{ 'a' in x }} => 4TrueTrue
            """)
    void marksSurvive(String template, String expected) throws TemplateException {
        assertThat(marked(template, " ab ")).isEqualTo(expected);
    }

    @Test
    void requestKeysAndNestedValuesAreMarked() throws TemplateException {
        Map<String, Object> args = new LinkedHashMap<>();
        args.put("city<|x|>", "Paris");
        assertThat(marked("{% for k, v in x.items() %}{{ k }}={{ v }};{% endfor %}{{ x['city<|x|>'] }}", args))
                .isEqualTo("[city<|x|>]=[Paris];[Paris]");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiterString = " => ", quoteCharacter = '`', textBlock = """
            {{ t.split(x) }}         => request text as the argument of split()
            {{ t.replace(x, '') }}   => request text as the argument of replace()
            {{ t | replace(x, '') }} => request text as the argument of replace()
            {{ t.strip(x) }}         => request text as the argument of strip()
            {{ x % t }}              => request text as a '%' format string
            {{ x.format(t) }}        => request text as the format string of str.format
            {{ x | format(t) }}      => request text as the format string of the format filter
            {{ strftime_now(x) }}    => request text as the argument of strftime_now()
            """)
    void whatWouldLetTheRequestEditTemplateTextIsRefused(String template, String what) {
        assertThatThrownBy(() -> marked(template, "a"))
                .isInstanceOf(TemplateException.class)
                .hasMessageContaining("refused: the template uses " + what);
    }

    @Test
    void rolesAreThoseTheTemplateComparesWith() throws TemplateException {
        ChatTemplate t = ChatTemplate.parse("""
                {% for m in messages %}{% if m['role'] == 'ipython' or m.role in ['observation', 'a b'] %}x\
                {% elif '</think>' in m.content or m.content == 'developer' %}y{% endif %}{% endfor %}\
                {{ messages | selectattr('role', 'equalto', 'function') | list | length }}""");
        assertThat(t.roles()).containsExactly("assistant", "function", "ipython", "observation", "system", "tool",
                "user");
        assertThatThrownBy(() -> t.renderRequest(List.of(Message.user("a"), new Message("developer", "b")), false,
                Map.of())).isInstanceOf(TemplateException.class)
                .hasMessage("messages[1]: the role 'developer' is not one this chat template accepts (assistant,"
                        + " function, ipython, observation, system, tool, user)");
        assertThat(t.renderRequest(List.of(new Message("ipython", "a")), false, Map.of()).text()).isEqualTo("x0");
    }

    @Test
    void plainRendersMarkNothing() throws TemplateException {
        ChatTemplate t = ChatTemplate.parse("{% for m in messages %}{{ m.role }}:{{ m.content }}{% endfor %}");
        assertThat(t.render(List.of(Message.user("<|eot_id|>")), false, Map.of())).isEqualTo("user:<|eot_id|>");
        ChatTemplate.Rendering r = t.renderRequest(List.of(Message.user("<|eot_id|>")), false, Map.of());
        assertThat(r.text()).isEqualTo("user:<|eot_id|>");
        assertThat(r.requestSpans()).containsExactly(0, 4, 5, 15);
    }
}
