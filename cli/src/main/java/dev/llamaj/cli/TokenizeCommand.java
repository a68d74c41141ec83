package dev.llamaj.cli;

import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Parameters;

/// `llama tokenize`: prints the tokens of a text, like llama.cpp's `llama-tokenize`. Reads only the vocabulary,
/// so it also works on vocabulary-only GGUF files.
@Command(name = "tokenize", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Prints the token ids (and pieces) of TEXT.")
final class TokenizeCommand implements Callable<Integer> {
    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--ids", description = "print only the ids, as a list")
    boolean idsOnly;

    @Option(names = "--no-bos", description = "do not add the BOS token even if the vocabulary asks for it")
    boolean noBos;

    @Option(names = "--parse-special", description = "turn control-token text such as <|eot_id|> into its token")
    boolean parseSpecial;

    @Parameters(paramLabel = "TEXT", description = "the text to tokenize")
    String text;

    @Override
    public Integer call() throws Exception {
        try (GGUFFile file = GGUFFile.open(modelOptions.model())) {
            Tokenizer tokenizer = Tokenizer.from(file.metadata());
            int[] tokens = tokenizer.encode(text, parseSpecial);
            if (!noBos && tokenizer.vocabulary().addBos()) {
                int[] withBos = new int[tokens.length + 1];
                withBos[0] = tokenizer.vocabulary().bos();
                System.arraycopy(tokens, 0, withBos, 1, tokens.length);
                tokens = withBos;
            }
            if (idsOnly) {
                parent.out.println(Arrays.toString(tokens));
            } else {
                for (int t : tokens) {
                    String piece = new String(tokenizer.bytes(t), StandardCharsets.UTF_8);
                    if (piece.isEmpty()) {
                        piece = tokenizer.vocabulary().piece(t);
                    }
                    parent.out.printf("%6d -> '%s'%n", t, piece);
                }
            }
        }
        return 0;
    }
}
