package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.template.Message;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class ChatFormatTest {
    private static final int BOS = 128000;
    private static final int START_HEADER = 128006;
    private static final int EOT = 128009;

    @Test
    void llama3TemplateTokensWithoutInjection() throws Exception {
        try (GGUFFile vocab = GGUFFile.open(SharedData.require("tokenizer/llama3-bpe.gguf"))) {
            Tokenizer tokenizer = Tokenizer.from(vocab.metadata());
            ChatFormat format = ChatFormat.of(tokenizer, vocab.metadata().string("tokenizer.chat_template"));
            List<Message> messages = List.of(Message.system("Be brief."),
                    Message.user("Say <|eot_id|> please"));
            String text = format.renderText(messages, true);
            assertThat(text).contains("Say <|eot_id|> please<|eot_id|>")
                    .endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n");
            int[] tokens = format.render(messages, true);
            assertThat(tokens[0]).isEqualTo(BOS);
            assertThat(Arrays.stream(tokens).filter(t -> t == BOS).count()).isEqualTo(1);
            // one end of turn per message, none from the user's text
            assertThat(Arrays.stream(tokens).filter(t -> t == EOT).count()).isEqualTo(2);
            assertThat(Arrays.stream(tokens).filter(t -> t == START_HEADER).count()).isEqualTo(3);
            assertThat(tokenizer.decode(tokens)).contains("Say <|eot_id|> please");
        }
    }

    @Test
    void modelWithoutTemplateIsAClearError() throws Exception {
        try (LlamaModel model = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1)) {
            assertThatThrownBy(() -> ChatFormat.of(model))
                    .isInstanceOf(IllegalArgumentException.class)
                    .isInstanceOf(ChatFormat.NoTemplateException.class).hasMessageEndingWith("the model has no chat template");
            ChatFormat plain = ChatFormat.of(model, ChatFormat.builtin("plain").orElseThrow());
            assertThat(plain.renderText(List.of(Message.user("hi")), true)).isEqualTo("User: hi\nAssistant:");
            assertThatThrownBy(() -> ChatFormat.of(model, "{% if %}"))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("chat template: ");
        }
    }
}
