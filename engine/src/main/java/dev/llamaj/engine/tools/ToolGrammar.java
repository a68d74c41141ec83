package dev.llamaj.engine.tools;

import java.util.List;
import java.util.Map;
import java.util.function.Function;

/// The grammar (GBNF) of a model's tool calls in one [ToolFormat]: each call names one of the callable functions
/// and its arguments follow that function's parameter schema, so they always parse and validate.
///
/// Each function's schema is turned into GBNF by the grammar engine (`schemaGbnf`); its rules are renamed apart
/// (`t0-...`, `t1-...`) so that the functions' grammars live side by side in one grammar, whose `call` rule is
/// any function's call.
final class ToolGrammar {
    /// Blanks between the parts of a call: at most two spaces or newlines (`<tool_call>\n{`), so that a model
    /// cannot write blanks forever; inside the arguments, the schema grammar's own blanks apply.
    private static final String WS = "tc-ws ::= [ \\n]{0,2}";

    private ToolGrammar() {}

    /// Whether calls in `format` can be constrained: [ToolFormat#MISTRAL_NAME_ARGS] spells calls with control
    /// tokens (`[ARGS]`), which no grammar lets a model write.
    static boolean supports(ToolFormat format) {
        return format != ToolFormat.MISTRAL_NAME_ARGS;
    }

    /// The grammar of `prefix` (text already written, matched as it is) followed by the calls, as they are
    /// written after the format's trigger (`afterTrigger`: after `<|python_tag|>` or `[TOOL_CALLS]`, which are
    /// control tokens and so not part of the grammar) or as the whole answer.
    static String gbnf(ToolFormat format, List<Tool> tools, boolean parallel, String prefix,
                       Function<Map<String, Object>, String> schemaGbnf) {
        StringBuilder g = new StringBuilder();
        g.append("root ::= ").append(prefix.isEmpty() ? "tc-ws " : literal(prefix) + " ").append("section\n");
        String many = parallel ? "*" : "";
        switch (format) {
            case HERMES -> {
                g.append("one ::= \"<tool_call>\" tc-ws call tc-ws \"</tool_call>\"\n");
                g.append("section ::= one (tc-ws one)").append(many).append('\n');
            }
            case LLAMA3 -> g.append("section ::= call (tc-ws \";\" tc-ws call)").append(many).append('\n');
            case MISTRAL -> g.append("section ::= \"[\" tc-ws call (tc-ws \",\" tc-ws call)").append(many)
                    .append(" tc-ws \"]\"\n");
            case GENERIC -> {
                g.append("section ::= call");
                if (parallel) {
                    g.append(" | \"[\" tc-ws call (tc-ws \",\" tc-ws call)* tc-ws \"]\"");
                }
                g.append('\n');
            }
            case MISTRAL_NAME_ARGS -> throw new IllegalArgumentException("calls in " + format
                    + " cannot be constrained");
        }
        String key = format == ToolFormat.LLAMA3 ? "parameters" : "arguments";
        g.append("call ::= ");
        for (int i = 0; i < tools.size(); i++) {
            g.append(i == 0 ? "" : " | ").append("t").append(i).append("-call");
        }
        g.append('\n');
        for (int i = 0; i < tools.size(); i++) {
            Tool t = tools.get(i);
            String p = "t" + i + "-";
            g.append(p).append("call ::= \"{\" tc-ws \"\\\"name\\\"\" tc-ws \":\" tc-ws ")
                    .append(literal("\"" + t.name() + "\"")).append(" tc-ws \",\" tc-ws ")
                    .append(literal("\"" + key + "\"")).append(" tc-ws \":\" tc-ws ").append(p).append("root")
                    .append(" tc-ws \"}\"\n");
            g.append(renamed(schemaGbnf.apply(t.parameters()), p)).append('\n');
        }
        g.append(WS).append('\n');
        return g.toString();
    }

    /// A GBNF literal for `text`.
    static String literal(String text) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> sb.append(c);
            }
        }
        return sb.append('"').toString();
    }

    /// `gbnf` with every rule name prefixed by `prefix`: names are renamed wherever they stand outside literals,
    /// character classes, repetition counts (`{0,20}`) and comments.
    static String renamed(String gbnf, String prefix) {
        StringBuilder out = new StringBuilder(gbnf.length() + 256);
        int i = 0;
        int n = gbnf.length();
        while (i < n) {
            char c = gbnf.charAt(i);
            if (c == '"' || c == '[') {
                char close = c == '"' ? '"' : ']';
                int j = i + 1;
                while (j < n && gbnf.charAt(j) != close) {
                    j += gbnf.charAt(j) == '\\' ? 2 : 1;
                }
                j = Math.min(n, j + 1);
                out.append(gbnf, i, j);
                i = j;
            } else if (c == '{') {
                int j = gbnf.indexOf('}', i);
                j = j < 0 ? n : j + 1;
                out.append(gbnf, i, j);
                i = j;
            } else if (c == '#') {
                int j = gbnf.indexOf('\n', i);
                j = j < 0 ? n : j;
                out.append(gbnf, i, j);
                i = j;
            } else if (isNameChar(c)) {
                int j = i;
                while (j < n && isNameChar(gbnf.charAt(j))) {
                    j++;
                }
                out.append(prefix).append(gbnf, i, j);
                i = j;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    private static boolean isNameChar(char c) {
        return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_';
    }
}
