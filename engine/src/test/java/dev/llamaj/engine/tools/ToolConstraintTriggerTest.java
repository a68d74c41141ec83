package dev.llamaj.engine.tools;

import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/// When [ToolConstraint] switches its grammar on, with what prefix, and which of the tokens already written it
/// gives the grammar: checked with a recording grammar in place of the real engine (the grammar itself is
/// [ToolGrammar]'s, tested with the engine elsewhere).
class ToolConstraintTriggerTest {
    static Tokenizer qwen;
    static final Tool WEATHER = Tool.of("get_weather", null, "{\"type\": \"object\"}");

    @BeforeAll
    static void load() throws Exception {
        try (GGUFFile vocab = GGUFFile.open(SharedData.require("tokenizer/qwen2.gguf"))) {
            qwen = Tokenizer.from(vocab.metadata());
        }
    }

    /// A grammar stand-in: allows everything and records what it was given.
    static class Recording implements TokenConstraint {
        final String gbnf;
        final List<Integer> accepted = new ArrayList<>();
        int masks;

        Recording(String gbnf) {
            this.gbnf = gbnf;
        }

        @Override
        public void mask(float[] logits) {
            masks++;
        }

        @Override
        public void accept(int token) {
            accepted.add(token);
        }

        @Override
        public boolean isComplete() {
            return false;
        }
    }

    final List<Recording> compiled = new ArrayList<>();

    ToolConstraint constraint(ToolFormat format, boolean forced) {
        return new ToolConstraint(format, List.of(WEATHER), true, forced, qwen, schema -> "root ::= \"{}\"",
                gbnf -> {
                    Recording r = new Recording(gbnf);
                    compiled.add(r);
                    return r;
                });
    }

    static List<Integer> ids(int[] tokens) {
        List<Integer> list = new ArrayList<>();
        for (int t : tokens) {
            list.add(t);
        }
        return list;
    }

    @Test
    void textTriggerTakesOverAtTheTokenBoundary() {
        ToolConstraint c = constraint(ToolFormat.HERMES, false);
        int[] text = qwen.encode("Sure, let me check.");
        for (int t : text) {
            c.mask(new float[8]);
            c.accept(t);
        }
        assertThat(compiled).isEmpty();
        assertThat(c.isComplete()).isTrue();
        int[] call = qwen.encode("<tool_call>\n{\"name\"", true); // <tool_call> as the token
        assertThat(call[0]).isEqualTo(151657);
        c.accept(call[0]);
        assertThat(compiled).hasSize(1);
        Recording r = compiled.getFirst();
        // the trigger token itself starts at a boundary: no prefix, and the grammar was given the trigger
        assertThat(r.gbnf).startsWith("root ::= tc-ws section\n").contains("\"<tool_call>\"")
                .contains("t0-call ::= \"{\" tc-ws \"\\\"name\\\"\" tc-ws \":\" tc-ws \"\\\"get_weather\\\"\"")
                .contains("t0-root ::= \"{}\"");
        assertThat(r.accepted).containsExactly(151657);
        assertThat(c.constrained()).isTrue();
        c.mask(new float[8]);
        assertThat(r.masks).isEqualTo(1);
        c.accept(call[1]);
        assertThat(r.accepted).containsExactly(call[0], call[1]);
        assertThat(c.isComplete()).isFalse();
    }

    @Test
    void triggerInsideATokenGetsTheTextBeforeItAsPrefix() {
        ToolConstraint c = constraint(ToolFormat.HERMES, false);
        // the trigger spelled in ordinary pieces, after text in the same token
        int[] head = qwen.encode("Ok.<");
        int[] tail = qwen.encode("tool_call>");
        int[] tokens = java.util.stream.IntStream.concat(java.util.Arrays.stream(head), java.util.Arrays.stream(tail))
                .toArray();
        assertThat(qwen.decode(tokens)).isEqualTo("Ok.<tool_call>");
        assertThat(tokens).doesNotContain(151657);
        for (int t : tokens) {
            c.accept(t);
        }
        assertThat(compiled).hasSize(1);
        String gbnf = compiled.getFirst().gbnf;
        // the grammar starts at the last token boundary before the trigger and was given the tokens since
        List<Integer> fed = compiled.getFirst().accepted;
        assertThat(ids(tokens)).endsWith(fed.toArray(Integer[]::new));
        String fedText = qwen.decode(fed.stream().mapToInt(Integer::intValue).toArray());
        String prefix = fedText.substring(0, fedText.indexOf("<tool_call>"));
        assertThat(gbnf).startsWith("root ::= " + (prefix.isEmpty() ? "tc-ws" : ToolGrammar.literal(prefix))
                + " section");
    }

    /// Llama 3.1's `<|python_tag|>` is a control token: the grammar starts after it, given nothing of it. The
    /// shared Llama 3 vocabulary predates it, so its slot (128010, reserved there) is renamed.
    @Test
    void controlTokenTrigger() throws Exception {
        Tokenizer llama31;
        try (GGUFFile vocab = GGUFFile.open(SharedData.require("tokenizer/llama3-bpe.gguf"))) {
            java.util.Map<String, Object> values = new java.util.LinkedHashMap<>();
            for (String k : vocab.metadata().keys()) {
                values.put(k, vocab.metadata().find(k).orElseThrow());
            }
            String[] pieces = vocab.metadata().stringArray("tokenizer.ggml.tokens").clone();
            pieces[128010] = "<|python_tag|>";
            values.put("tokenizer.ggml.tokens", pieces);
            llama31 = Tokenizer.from(dev.llamaj.gguf.Metadata.of("llama31", values));
        }
        assertThat(llama31.vocabulary().isControl(128010)).isTrue();
        ToolConstraint c = new ToolConstraint(ToolFormat.LLAMA3, List.of(WEATHER), false, false, llama31,
                schema -> "root ::= \"{}\"", gbnf -> {
                    Recording r = new Recording(gbnf);
                    compiled.add(r);
                    return r;
                });
        for (int t : llama31.encode("Let me look that up.")) {
            c.accept(t);
        }
        assertThat(c.constrained()).isFalse();
        c.accept(128010);
        assertThat(c.constrained()).isTrue();
        assertThat(compiled).hasSize(1);
        assertThat(compiled.getFirst().gbnf).startsWith("root ::= tc-ws section\n")
                .contains("section ::= call (tc-ws \";\" tc-ws call)\n");
        assertThat(compiled.getFirst().accepted).isEmpty();
        int next = llama31.encode("{\"")[0];
        c.accept(next);
        assertThat(compiled.getFirst().accepted).containsExactly(next);
    }

    @Test
    void answerStartingLikeACall() {
        ToolConstraint c = constraint(ToolFormat.GENERIC, false);
        int[] tokens = qwen.encode(" {\"name\": ");
        for (int t : tokens) {
            c.accept(t);
        }
        assertThat(compiled).hasSize(1);
        assertThat(compiled.getFirst().accepted).containsExactly(ids(tokens).toArray(Integer[]::new));
        // an answer that starts otherwise never switches it on
        compiled.clear();
        ToolConstraint text = constraint(ToolFormat.GENERIC, false);
        for (int t : qwen.encode("The answer is {\"name\": 1}")) {
            text.accept(t);
        }
        assertThat(compiled).isEmpty();
        assertThat(text.constrained()).isFalse();
    }

    @Test
    void forcedHoldsFromTheFirstToken() {
        ToolConstraint c = constraint(ToolFormat.LLAMA3, true);
        assertThat(compiled).hasSize(1);
        assertThat(c.constrained()).isTrue();
        assertThat(compiled.getFirst().gbnf).contains("\"\\\"parameters\\\"\"");
    }

    @Test
    void grammarThatCannotFollowLeavesTheAnswerFree() {
        ToolConstraint c = new ToolConstraint(ToolFormat.GENERIC, List.of(WEATHER), true, false, qwen,
                schema -> "root ::= \"{}\"", gbnf -> new Recording(gbnf) {
                    @Override
                    public void accept(int token) {
                        throw new IllegalArgumentException("cannot come next");
                    }
                });
        for (int t : qwen.encode("{\"name\" is what I say")) {
            c.accept(t);
        }
        assertThat(c.constrained()).isFalse();
        assertThat(c.isComplete()).isTrue();
    }

    @Test
    void renamingKeepsLiteralsClassesAndCounts() {
        String g = "root ::= obj ws\nobj ::= \"{\\\"a b\\\"}\" [a-z\\]]{0,20} # note root\nws ::= | \" \"";
        assertThat(ToolGrammar.renamed(g, "t1-")).isEqualTo("t1-root ::= t1-obj t1-ws\nt1-obj ::= \"{\\\"a b\\\"}\""
                + " [a-z\\]]{0,20} # note root\nt1-ws ::= | \" \"");
        assertThat(ToolGrammar.literal("a\"b\\c\n")).isEqualTo("\"a\\\"b\\\\c\\n\"");
        // Mistral's newer format writes calls with control tokens: no grammar for it
        assertThat(ToolGrammar.supports(ToolFormat.MISTRAL_NAME_ARGS)).isFalse();
        assertThat(ToolGrammar.gbnf(ToolFormat.MISTRAL, List.of(WEATHER), false, "", s -> "root ::= \"{}\""))
                .contains("section ::= \"[\" tc-ws call (tc-ws \",\" tc-ws call) tc-ws \"]\"");
    }
}
