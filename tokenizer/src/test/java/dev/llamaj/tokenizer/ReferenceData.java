package dev.llamaj.tokenizer;

import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.SharedData;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/// The reference vocabularies and tokenizations in `../shared/tokenizer` (made by llama.cpp), loaded once per
/// test run. Every accessor skips the calling test when the shared data is absent.
final class ReferenceData {
    /// The reference vocabularies, by file stem.
    static final List<String> VOCABULARIES = List.of("llama-spm", "llama3-bpe", "qwen2", "gpt-4o", "gemma3-bpe");

    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";
    private static final Map<String, Tokenizer> TOKENIZERS = new ConcurrentHashMap<>();

    private ReferenceData() {}

    /// One reference case: the input text and the ids llama.cpp produced (no BOS, specials not parsed).
    record Case(String vocabulary, int index, String text, int[] expected) {
        @Override
        public String toString() {
            if (index < 0) {
                return vocabulary + " (shared test data absent)";
            }
            String shown = text.replace("\n", "\\n").replace("\t", "\\t");
            return vocabulary + " #" + index + " \"" + (shown.length() > 50 ? shown.substring(0, 50) + "..." : shown)
                    + "\"";
        }
    }

    static Tokenizer tokenizer(String vocabulary) {
        Path path = SharedData.require("tokenizer/" + vocabulary + ".gguf");
        return TOKENIZERS.computeIfAbsent(vocabulary, _ -> {
            try (GGUFFile file = GGUFFile.open(path)) {
                return Tokenizer.from(file.metadata());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    static List<Case> cases(String vocabulary) {
        Path inp = SharedData.require("tokenizer/" + vocabulary + ".inp");
        Path out = SharedData.require("tokenizer/" + vocabulary + ".out");
        try {
            String[] texts = Files.readString(inp, StandardCharsets.UTF_8).split(SEPARATOR, -1);
            List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
            // the file ends with a separator, which leaves one empty piece after it
            int count = texts[texts.length - 1].isEmpty() ? texts.length - 1 : texts.length;
            if (count != lines.size()) {
                throw new IllegalStateException(inp + " has " + count + " cases but " + out + " has " + lines.size()
                        + " lines");
            }
            List<Case> cases = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                String line = lines.get(i).strip();
                int[] ids = line.isEmpty() ? new int[0]
                        : Arrays.stream(line.split(" +")).mapToInt(Integer::parseInt).toArray();
                cases.add(new Case(vocabulary, i, texts[i], ids));
            }
            return cases;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /// The cases of every reference vocabulary. A vocabulary whose files are absent contributes one placeholder
    /// case (index -1, no text), so that the parameterized test using it is reported as skipped, with
    /// [SharedData]'s message, instead of silently running nothing.
    static List<Case> allCases() {
        List<Case> all = new ArrayList<>();
        for (String vocabulary : VOCABULARIES) {
            if (isPresent(vocabulary)) {
                all.addAll(cases(vocabulary));
            } else {
                all.add(new Case(vocabulary, -1, "", new int[0]));
            }
        }
        return all;
    }

    private static boolean isPresent(String vocabulary) {
        return Stream.of(".gguf", ".inp", ".out")
                .allMatch(suffix -> Files.exists(SharedData.root().resolve("tokenizer/" + vocabulary + suffix)));
    }
}
