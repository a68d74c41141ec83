package dev.llamaj.cli;

import dev.llamaj.engine.TokenConstraint;
import dev.llamaj.engine.grammar.Grammar;
import dev.llamaj.engine.grammar.GrammarException;
import dev.llamaj.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/// `--grammar`, `--json-schema` and `--json`: constrain the output to a grammar (at most one of them).
final class ConstraintOptions {
    /// Larger grammar or schema files are refused: real ones are kilobytes.
    static final long MAX_GRAMMAR_BYTES = 1 << 20;

    @Option(names = "--grammar", paramLabel = "FILE",
            description = "constrain the output to the GBNF grammar in FILE (llama.cpp's format)")
    Path grammarFile;

    @Option(names = "--json-schema", paramLabel = "FILE|JSON",
            description = "constrain the output to JSON valid against this JSON Schema (a value starting with '{'"
                    + " is the schema itself, anything else a file holding it)")
    String jsonSchema;

    @Option(names = "--json", description = "constrain the output to one JSON object")
    boolean json;

    /// The grammar the options ask for, or null for none.
    ///
    /// @throws IllegalArgumentException naming the option, for two options at once or a grammar or schema that
    ///         cannot be used (with the grammar's `line:column` or the schema's JSON pointer)
    /// @throws IOException if a file cannot be read
    Grammar grammar() throws IOException {
        int given = (grammarFile != null ? 1 : 0) + (jsonSchema != null ? 1 : 0) + (json ? 1 : 0);
        if (given > 1) {
            throw new IllegalArgumentException("give one of --grammar, --json-schema and --json");
        }
        if (grammarFile != null) {
            String text = read(grammarFile, "grammar file");
            try {
                return Grammar.parse(text);
            } catch (GrammarException e) {
                throw new IllegalArgumentException("--grammar " + grammarFile + ": " + e.getMessage());
            }
        }
        if (jsonSchema != null) {
            boolean inline = jsonSchema.stripLeading().startsWith("{");
            String text = inline ? jsonSchema : read(Path.of(jsonSchema), "JSON schema file");
            String where = inline ? "--json-schema" : "--json-schema " + jsonSchema;
            Object schema;
            try {
                schema = Json.parse(text);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": not valid JSON: " + e.getMessage());
            }
            try {
                return Grammar.fromJsonSchema(schema);
            } catch (GrammarException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage());
            }
        }
        return json ? Grammar.anyJsonObject() : null;
    }

    /// A fresh constraint of `grammar` for one generation, or null without a grammar.
    static TokenConstraint constraint(Grammar grammar, Tokenizer tokenizer) {
        return grammar == null ? null : grammar.newConstraint(tokenizer);
    }

    private static String read(Path file, String what) throws IOException {
        byte[] bytes = CliFiles.readBounded(file, MAX_GRAMMAR_BYTES, what);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IOException(file + ": the " + what + " is not valid UTF-8");
        }
    }
}
