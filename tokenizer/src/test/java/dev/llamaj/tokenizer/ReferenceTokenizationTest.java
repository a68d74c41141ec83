package dev.llamaj.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/// Every reference tokenization in the shared data must be reproduced id for id (no BOS, special-token text not
/// parsed): Llama 2 (SentencePiece), Llama 3.1, Qwen 2.5/3 and o200k (byte-level BPE with the `llama-bpe`, `qwen2`
/// and `gpt-4o` splits) and Gemma 3 as converted from `tokenizer.json` (BPE over characters with byte fallback).
class ReferenceTokenizationTest {

    static List<ReferenceData.Case> cases() {
        return ReferenceData.allCases();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesLlamaCppTokenization(ReferenceData.Case c) {
        Tokenizer tokenizer = ReferenceData.tokenizer(c.vocabulary());

        assertThat(tokenizer.encode(c.text())).as("ids of %s", c).containsExactly(c.expected());
    }
}
