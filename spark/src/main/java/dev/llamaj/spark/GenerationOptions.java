package dev.llamaj.spark;

import dev.llamaj.engine.ChatFormat;
import dev.llamaj.engine.LoadOptions;
import dev.llamaj.engine.Sampler;
import java.io.Serial;
import java.io.Serializable;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Locale;

/// What [LlamaSpark#generate] runs: the model, how each executor runs it, and the default settings of every row
/// (a row's own `max_tokens`, `temperature`, ... columns override them).
///
/// Immutable and serializable: Spark ships it to the executors inside the task. Start from [#of] and change what
/// you need with the `with...` methods; each one checks its value and throws an `IllegalArgumentException` naming
/// the option.
///
/// ```java
/// GenerationOptions options = GenerationOptions.of("/models/Llama-3.2-1B-Instruct-Q4_0.gguf")
///         .withIdColumn("id").withSeed(42).withMaxTokens(128).withTemperature(0.7f);
/// ```
///
/// @param model          the GGUF file, a path that every executor can read (a shared or replicated disk)
/// @param threads        engine threads: with batching, those of the JVM's batch executor (0: the executor JVM's
///                       cores, which all its tasks share); without, per sequence (0: the task's cores,
///                       `spark.task.cpus`, divided by `sequences`)
/// @param sequences      sequences generated at once by one task, each in its own session (1 or more)
/// @param batching       with more than one sequence, run the sessions of every task in the JVM in one shared
///                       `BatchExecutor` per model (continuous batching: one read of the weights per step for all
///                       of them); false: each session computes alone on its share of the task's cores
/// @param contextLength  key/value cache of each session in tokens; 0 takes the model's default (at most 4096)
/// @param batchSize      most prompt tokens processed in one batch
/// @param repack         repack the weights into the kernels' layouts at load (see `LoadOptions`)
/// @param maxTokens      tokens to generate at most per row; -1 until the context is full
/// @param temperature    0 is greedy
/// @param topK           0 disables
/// @param topP           1 disables
/// @param minP           0 disables
/// @param repeatPenalty  1 disables
/// @param repeatLastN    window of the repetition penalty
/// @param presencePenalty  OpenAI's presence penalty, -2 to 2 (0 disables)
/// @param frequencyPenalty OpenAI's frequency penalty, -2 to 2 (0 disables)
/// @param logitBias      token id to a bias added to its logit (-100 or less bans the token), as OpenAI's
///                       `logit_bias`; a row's `logit_bias` column replaces it
/// @param seed           the global seed, mixed with each row's id (see [LlamaSpark#rowSeed])
/// @param idColumn       the column whose value seeds each row (string or integer); null: every row without a
///                       `seed` of its own uses `seed` itself
/// @param stop           stop strings of every row (a row's `stop` column replaces them)
/// @param chatTemplate   for rows with `messages`: a built-in template name (`chatml`, `llama3`, `plain`) or Jinja
///                       source; null uses the model's own
/// @param modelSha256    the model file's SHA-256 for the `model_sha256` column, if known; null hashes the file once
///                       (on the driver when it can read the file, otherwise once per executor JVM)
/// @param grammar        GBNF that every row's output must match (a row's `grammar` or `json_schema` column
///                       replaces it); null: none
/// @param jsonSchema     a JSON Schema (as JSON text) that every row's output must be a document of, likewise
public record GenerationOptions(String model, int threads, int sequences, boolean batching, int contextLength,
                                int batchSize,
                                boolean repack, int maxTokens, float temperature, int topK, float topP, float minP,
                                float repeatPenalty, int repeatLastN, float presencePenalty, float frequencyPenalty,
                                Map<Integer, Float> logitBias, long seed, String idColumn, List<String> stop,
                                String chatTemplate, String modelSha256, String grammar, String jsonSchema)
        implements Serializable {
    @Serial
    private static final long serialVersionUID = 1L;

    public GenerationOptions {
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("model: a GGUF file path is required");
        }
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be 0 (the task's cores) or more, got " + threads);
        }
        if (sequences < 1) {
            throw new IllegalArgumentException("sequences must be 1 or more, got " + sequences);
        }
        if (contextLength < 0) {
            throw new IllegalArgumentException("contextLength must be 0 (the model's) or more, got " + contextLength);
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be 1 or more, got " + batchSize);
        }
        if (maxTokens < -1) {
            throw new IllegalArgumentException("maxTokens must be -1 (until the context is full) or more, got "
                    + maxTokens);
        }
        // the sampler's own checks, with its messages (temperature, top-k, top-p, min-p, penalty, window)
        new Sampler.Settings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed);
        if (!(presencePenalty >= -2 && presencePenalty <= 2)) {
            throw new IllegalArgumentException("presencePenalty must be between -2 and 2, got " + presencePenalty);
        }
        if (!(frequencyPenalty >= -2 && frequencyPenalty <= 2)) {
            throw new IllegalArgumentException("frequencyPenalty must be between -2 and 2, got " + frequencyPenalty);
        }
        for (Map.Entry<Integer, Float> e : logitBias.entrySet()) {
            if (e.getKey() == null || e.getValue() == null) {
                throw new IllegalArgumentException("logitBias: a token id or bias is null");
            }
        }
        logitBias = Map.copyOf(logitBias);
        new Sampler.Settings(0f, 0, 1f, 0f, 1f, 0, 0).withLogitBias(logitBias); // its checks and messages
        if (idColumn != null && idColumn.isBlank()) {
            throw new IllegalArgumentException("idColumn is blank");
        }
        stop = List.copyOf(stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop: a stop string is empty");
            }
        }
        if (chatTemplate != null && chatTemplate.isBlank()) {
            throw new IllegalArgumentException("chatTemplate is blank");
        }
        if (grammar != null && jsonSchema != null) {
            throw new IllegalArgumentException("grammar and jsonSchema exclude each other: give one");
        }
        if (grammar != null && grammar.isBlank()) {
            throw new IllegalArgumentException("grammar is blank");
        }
        if (jsonSchema != null && jsonSchema.isBlank()) {
            throw new IllegalArgumentException("jsonSchema is blank");
        }
        if (modelSha256 != null) {
            modelSha256 = modelSha256.toLowerCase(Locale.ROOT);
            if (modelSha256.length() != 64 || !modelSha256.chars().allMatch(HexFormat::isHexDigit)) {
                throw new IllegalArgumentException("modelSha256 must be 64 hex digits, got '" + modelSha256 + "'");
            }
        }
    }

    /// `model` with the defaults: one engine thread per task core, one sequence per task (batched when raised), the
    /// model's context, 256 tokens, llama.cpp's sampling defaults (temperature 0.8, top-k 40, top-p 0.95, min-p
    /// 0.05), seed 0, no id column.
    public static GenerationOptions of(String model) {
        return new GenerationOptions(model, 0, 1, true, 0, 512, true, 256, 0.8f, 40, 0.95f, 0.05f, 1f, 64, 0f, 0f,
                Map.of(), 0L, null, List.of(), null, null, null, null);
    }

    public GenerationOptions withThreads(int threads) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withSequences(int sequences) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// Continuous batching of the sequences (on by default; it only applies with more than one sequence). A row's
    /// output is the same whichever rows share its steps, but differs in rounding from a run without batching,
    /// as an executor's sessions differ from plain ones.
    public GenerationOptions withBatching(boolean batching) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withContextLength(int contextLength) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withBatchSize(int batchSize) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withRepack(boolean repack) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withMaxTokens(int maxTokens) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withTemperature(float temperature) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// Top-k, top-p and min-p at once.
    public GenerationOptions withTruncation(int topK, float topP, float minP) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withRepeatPenalty(float repeatPenalty, int repeatLastN) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// OpenAI's presence and frequency penalties (each -2 to 2; 0 disables).
    public GenerationOptions withPenalties(float presencePenalty, float frequencyPenalty) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// Token id to a bias added to its logit before sampling (-100 or less bans it), as OpenAI's `logit_bias`.
    public GenerationOptions withLogitBias(Map<Integer, Float> logitBias) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withSeed(long seed) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withIdColumn(String idColumn) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withStop(List<String> stop) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withChatTemplate(String chatTemplate) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    public GenerationOptions withModelSha256(String modelSha256) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// Constrains every row's output to GBNF (the README's "Constrained output", `Grammar.parse`); checked by
    /// [LlamaSpark#generate]. Null removes it.
    public GenerationOptions withGrammar(String grammar) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// Constrains every row's output to JSON documents of `schema` (JSON text); checked by [LlamaSpark#generate].
    /// Null removes it.
    public GenerationOptions withJsonSchema(String jsonSchema) {
        return new GenerationOptions(model, threads, sequences, batching, contextLength, batchSize, repack, maxTokens,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, presencePenalty, frequencyPenalty,
                logitBias, seed, idColumn, stop, chatTemplate, modelSha256, grammar, jsonSchema);
    }

    /// Whether the task's sessions come from the JVM's shared batch executor: batching on and more than one
    /// sequence (one sequence per task keeps the plain path, which needs no executor thread).
    boolean batched() {
        return batching && sequences > 1;
    }

    /// How an executor JVM loads the model when a task has `taskCpus` cores and the JVM `jvmCores` for all its
    /// tasks: the cache of loaded models is keyed by the path and these options. Batched, the threads are those of
    /// the one executor that computes every task's sequences, so the JVM's cores; otherwise each session computes
    /// alone on its share of its task's cores.
    LoadOptions loadOptions(int taskCpus, int jvmCores) {
        int t = threads > 0 ? threads : batched() ? Math.max(1, jvmCores) : Math.max(1, taskCpus / sequences);
        return LoadOptions.defaults().withThreads(t).withBatchSize(batchSize).withRepack(repack);
    }

    /// The Jinja source of [#chatTemplate] (a built-in name resolved), or null for the model's own.
    String chatTemplateSource() {
        return chatTemplate == null ? null : ChatFormat.builtin(chatTemplate).orElse(chatTemplate);
    }
}
