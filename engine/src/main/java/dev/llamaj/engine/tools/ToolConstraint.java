package dev.llamaj.engine.tools;

import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.tokenizer.Detokenizer;
import dev.llamaj.tokenizer.Tokenizer;
import dev.llamaj.tokenizer.Vocabulary;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/// Constrains a tool call's arguments to its function's parameter schema: unconstrained while the model writes
/// text, then, from the moment a call starts, every token must keep the call a prefix of a valid one
/// ([ToolGrammar]), and the answer ends with the call(s).
///
/// A call starts (the trigger) with the format's control token (`<|python_tag|>`, `[TOOL_CALLS]`), with its
/// text trigger anywhere (`<tool_call>`), or with the answer itself beginning like a call (`{"name"` for Llama
/// and the generic format, `[{"name"` for Mistral). The grammar then takes over from the last token boundary
/// before the trigger, and is given the tokens written since, so that the call's first characters are checked
/// too; if they do not fit it (a call the grammar cannot describe), the answer stays unconstrained, and the parser
/// reads whatever comes. With `forced`, the grammar holds from the first token: the answer is calls and nothing
/// else (`tool_choice` `required` or a named function).
///
/// Stateful, for one generation, like every [TokenConstraint].
public final class ToolConstraint implements TokenConstraint {
    private final ToolFormat format;
    private final List<Tool> tools;
    private final boolean parallel;
    private final Function<java.util.Map<String, Object>, String> schemaGbnf;
    private final Function<String, TokenConstraint> compile;
    private final Vocabulary vocabulary;
    private final Detokenizer detokenizer;

    /// Control tokens that open a call (their text is the trigger), sorted.
    private final int[] controlTriggers;
    /// Triggers that are text, wherever they appear.
    private final List<String> textTriggers = new ArrayList<>();
    /// How an answer that is a call starts (no blanks).
    private final List<String> startTriggers;
    private boolean startPossible;

    /// The answer so far, and where each of its tokens starts in it.
    private final StringBuilder text = new StringBuilder();
    private int[] tokens = new int[64];
    private int[] starts = new int[64];
    private int count;

    private TokenConstraint inner;
    /// A trigger came but the grammar could not follow the text: no constraint any more.
    private boolean abandoned;

    ToolConstraint(ToolFormat format, List<Tool> tools, boolean parallel, boolean forced, Tokenizer tokenizer,
                   Function<java.util.Map<String, Object>, String> schemaGbnf, Function<String, TokenConstraint> compile) {
        this.format = format;
        this.tools = List.copyOf(tools);
        this.parallel = parallel;
        this.schemaGbnf = schemaGbnf;
        this.compile = compile;
        this.vocabulary = tokenizer.vocabulary();
        this.detokenizer = tokenizer.detokenizer();
        int[] controls = new int[0];
        for (String trigger : format.triggers) {
            int id = controlToken(vocabulary, trigger);
            if (id >= 0) {
                controls = Arrays.copyOf(controls, controls.length + 1);
                controls[controls.length - 1] = id;
            } else {
                textTriggers.add(trigger);
            }
        }
        // a call object that starts in the text: the grammar's section begins with it
        textTriggers.addAll(format.objectStarts);
        Arrays.sort(controls);
        this.controlTriggers = controls;
        this.startTriggers = format.starts;
        this.startPossible = !startTriggers.isEmpty();
        if (forced) {
            inner = compile.apply(grammar(""));
        }
    }

    private static int controlToken(Vocabulary v, String text) {
        for (int id = 0; id < v.size(); id++) {
            if (v.isControl(id) && v.piece(id).equals(text)) {
                return id;
            }
        }
        return -1;
    }

    private String grammar(String prefix) {
        return ToolGrammar.gbnf(format, tools, parallel, prefix, schemaGbnf);
    }

    /// Whether a call has started and the grammar holds.
    public boolean constrained() {
        return inner != null;
    }

    @Override
    public void mask(float[] logits) {
        if (inner != null) {
            inner.mask(logits);
        }
    }

    @Override
    public void accept(int token) {
        if (inner != null) {
            inner.accept(token);
            return;
        }
        if (abandoned || vocabulary.isEndOfGeneration(token)) {
            return;
        }
        if (Arrays.binarySearch(controlTriggers, token) >= 0) {
            // the grammar starts after the control token, which no grammar can write
            start(grammar(""), count + 1);
            record(token, "");
            return;
        }
        int before = text.length();
        record(token, detokenizer.append(token));
        for (String trigger : textTriggers) {
            int from = Math.max(0, before - trigger.length() + 1);
            int k = text.indexOf(trigger, from);
            if (k >= 0) {
                int b = count - 1;
                while (b > 0 && starts[b] > k) {
                    b--;
                }
                start(grammar(text.substring(starts[b], k)), b);
                return;
            }
        }
        if (startPossible) {
            String compact = text.toString().replaceAll("\\s", "");
            startPossible = false;
            for (String s : startTriggers) {
                if (compact.startsWith(s)) {
                    start(grammar(""), 0);
                    return;
                }
                startPossible |= s.startsWith(compact);
            }
        }
    }

    private void record(int token, String piece) {
        if (count == tokens.length) {
            tokens = Arrays.copyOf(tokens, count * 2);
            starts = Arrays.copyOf(starts, count * 2);
        }
        tokens[count] = token;
        starts[count] = text.length();
        count++;
        text.append(piece);
    }

    /// Switches the grammar on, giving it the tokens from `from` on (written before it was on).
    private void start(String gbnf, int from) {
        try {
            TokenConstraint c = compile.apply(gbnf);
            for (int i = from; i < count; i++) {
                c.accept(tokens[i]);
            }
            inner = c;
        } catch (IllegalArgumentException e) {
            abandoned = true;
        }
    }

    @Override
    public boolean isComplete() {
        return inner == null || inner.isComplete();
    }
}
