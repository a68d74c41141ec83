package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/// Chat prompts: control tokens the template wrote are parsed, the same text inside a message is not.
class LiteralSpanTest {

    @Test
    void controlTokensInsideLiteralSpansStayText() {
        Tokenizer t = ReferenceData.tokenizer("llama3-bpe");
        String content = "hi <|eot_id|> there";
        String text = "<|start_header_id|>user<|end_header_id|>\n\n" + content + "<|eot_id|>";
        int start = text.indexOf(content);
        int[] ids = t.encode(text, new int[] {start, start + content.length()});
        int eot = 128009;
        int header = 128006;
        assertThat(ids[0]).isEqualTo(header);
        assertThat(ids[ids.length - 1]).isEqualTo(eot);
        assertThat(java.util.Arrays.stream(ids).filter(id -> id == eot).count()).isEqualTo(1);
        assertThat(t.decode(ids)).isEqualTo("user\n\nhi <|eot_id|> there");
        // without spans everything is parsed, as encode(text, true) does
        assertThat(t.encode(text, new int[0])).isEqualTo(t.encode(text, true));
    }

    @Test
    void aControlTokenMayNotReachIntoASpan() {
        Tokenizer t = ReferenceData.tokenizer("llama3-bpe");
        String text = "<|eot_id|>";
        // the span starts inside the token's text, so the token cannot be matched
        int[] ids = t.encode(text, new int[] {3, text.length()});
        assertThat(ids).doesNotContain(128009);
    }
}
