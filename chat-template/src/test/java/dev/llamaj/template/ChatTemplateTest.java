package dev.llamaj.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.gguf.Json;
import dev.llamaj.gguf.SharedData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/// Every rendering in `chat-templates/renderings.json` (made by Python's Jinja2 the way Hugging Face renders chat
/// templates) must come out character for character, or fail with exactly the expected message, also when the
/// messages are rendered as request text (marked, so that no control token can come from them).
class ChatTemplateTest {
    /// The reference renderings fixed `strftime_now` to this date.
    static final Clock FEB_23_2026 = Clock.fixed(Instant.parse("2026-02-23T12:00:00Z"), ZoneOffset.UTC);

    record Case(String name, Path template, List<Message> messages, boolean addGenerationPrompt, String bos,
                String eos, String expected, String expectedError) {
        @Override
        public String toString() {
            return name;
        }
    }

    static List<Case> cases() {
        Path json = SharedData.require("chat-templates/renderings.json");
        List<Case> out = new ArrayList<>();
        for (Object o : (List<?>) Json.parse(read(json))) {
            Map<?, ?> c = (Map<?, ?>) o;
            List<Message> messages = new ArrayList<>();
            for (Object m : (List<?>) c.get("messages")) {
                Map<?, ?> map = (Map<?, ?>) m;
                // the reference messages are plain role/content turns, which Message represents exactly
                assertThat(map.keySet()).as("keys of a message").isEqualTo(Set.of("role", "content"));
                messages.add(new Message((String) map.get("role"), (String) map.get("content")));
            }
            String template = (String) c.get("template");
            out.add(new Case(template.replace(".jinja", "") + " / " + c.get("conversation"),
                    json.resolveSibling(template), messages, (Boolean) c.get("add_generation_prompt"),
                    (String) c.get("bos_token"), (String) c.get("eos_token"), (String) c.get("expected"),
                    (String) c.get("expected_error")));
        }
        assertThat(out).hasSize(27);
        return out;
    }

    private static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersLikeHuggingFace(Case c) throws TemplateException {
        ChatTemplate template = ChatTemplate.parse(read(c.template())).withClock(FEB_23_2026);
        Map<String, Object> extra = Map.of("bos_token", c.bos(), "eos_token", c.eos());

        if (c.expectedError() != null) {
            assertThatThrownBy(() -> template.render(c.messages(), c.addGenerationPrompt(), extra))
                    .isInstanceOf(TemplateException.class)
                    .hasMessage(c.expectedError());
            assertThatThrownBy(() -> template.renderRequest(c.messages(), c.addGenerationPrompt(), extra))
                    .isInstanceOf(TemplateException.class)
                    .hasMessage(c.expectedError());
        } else {
            assertThat(template.render(c.messages(), c.addGenerationPrompt(), extra)).isEqualTo(c.expected());
            ChatTemplate.Rendering r = template.renderRequest(c.messages(), c.addGenerationPrompt(), extra);
            assertThat(r.text()).isEqualTo(c.expected());
            // every non-empty content is somewhere in the marked text
            StringBuilder marked = new StringBuilder();
            for (int i = 0; i < r.requestSpans().length; i += 2) {
                marked.append(r.text(), r.requestSpans()[i], r.requestSpans()[i + 1]).append('\u0000');
            }
            for (Message m : c.messages()) {
                assertThat(marked.toString()).contains(m.content().strip());
            }
        }
    }
}
