package dev.llamaj.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class GenerationOptionsTest {
    private static final GenerationOptions BASE = GenerationOptions.of("/models/m.gguf");

    @Test
    void badValuesAreRefusedWithTheOptionNamed() {
        assertThatThrownBy(() -> GenerationOptions.of(" ")).hasMessage("model: a GGUF file path is required");
        assertThatThrownBy(() -> GenerationOptions.of(null)).hasMessage("model: a GGUF file path is required");
        assertThatThrownBy(() -> BASE.withThreads(-1))
                .hasMessage("threads must be 0 (the task's cores) or more, got -1");
        assertThatThrownBy(() -> BASE.withSequences(0)).hasMessage("sequences must be 1 or more, got 0");
        assertThatThrownBy(() -> BASE.withContextLength(-2))
                .hasMessage("contextLength must be 0 (the model's) or more, got -2");
        assertThatThrownBy(() -> BASE.withBatchSize(0)).hasMessage("batchSize must be 1 or more, got 0");
        assertThatThrownBy(() -> BASE.withMaxTokens(-2))
                .hasMessage("maxTokens must be -1 (until the context is full) or more, got -2");
        assertThatThrownBy(() -> BASE.withTemperature(-0.5f))
                .hasMessage("temperature must be 0 or more, got -0.5");
        assertThatThrownBy(() -> BASE.withTemperature(Float.NaN))
                .hasMessage("temperature must be 0 or more, got NaN");
        assertThatThrownBy(() -> BASE.withTruncation(-1, 1f, 0f)).hasMessage("top-k must be 0 or more, got -1");
        assertThatThrownBy(() -> BASE.withTruncation(0, 0f, 0f)).hasMessage("top-p must be in (0, 1], got 0.0");
        assertThatThrownBy(() -> BASE.withTruncation(0, 1f, 1.5f)).hasMessage("min-p must be in [0, 1], got 1.5");
        assertThatThrownBy(() -> BASE.withRepeatPenalty(0f, 64))
                .hasMessage("repeat penalty must be positive, got 0.0");
        assertThatThrownBy(() -> BASE.withPenalties(2.5f, 0))
                .hasMessage("presencePenalty must be between -2 and 2, got 2.5");
        assertThatThrownBy(() -> BASE.withPenalties(0, Float.NaN))
                .hasMessage("frequencyPenalty must be between -2 and 2, got NaN");
        assertThatThrownBy(() -> BASE.withLogitBias(Map.of(-1, 1f)))
                .hasMessage("logit bias: token id must be 0 or more, got -1");
        assertThatThrownBy(() -> BASE.withLogitBias(Map.of(5, Float.NaN)))
                .hasMessage("logit bias of token 5 must be a number or -infinity, got NaN");
        Map<Integer, Float> withNull = new HashMap<>();
        withNull.put(5, null);
        assertThatThrownBy(() -> BASE.withLogitBias(withNull)).hasMessage("logitBias: a token id or bias is null");
        assertThatThrownBy(() -> BASE.withIdColumn("")).hasMessage("idColumn is blank");
        assertThatThrownBy(() -> BASE.withStop(List.of("\n", ""))).hasMessage("stop: a stop string is empty");
        assertThatThrownBy(() -> BASE.withChatTemplate(" ")).hasMessage("chatTemplate is blank");
        assertThatThrownBy(() -> BASE.withModelSha256("abc"))
                .hasMessage("modelSha256 must be 64 hex digits, got 'abc'");
        assertThatThrownBy(() -> BASE.withModelSha256("g".repeat(64)))
                .hasMessageStartingWith("modelSha256 must be 64 hex digits");
        assertThat(BASE.withModelSha256("AB".repeat(32)).modelSha256()).isEqualTo("ab".repeat(32));
        assertThatThrownBy(() -> BASE.withGrammar("root ::= \"a\"").withJsonSchema("{}"))
                .hasMessage("grammar and jsonSchema exclude each other: give one");
        assertThatThrownBy(() -> BASE.withGrammar("")).hasMessage("grammar is blank");
        assertThatThrownBy(() -> BASE.withJsonSchema("  ")).hasMessage("jsonSchema is blank");
        assertThat(BASE.withGrammar("root ::= \"a\"").withGrammar(null).withJsonSchema("{}").jsonSchema())
                .isEqualTo("{}");
    }

    @Test
    void threadsDefaultToTheTaskCoresSharedBySequences() {
        GenerationOptions plain = BASE.withBatching(false);
        assertThat(plain.loadOptions(4, 16).threads()).isEqualTo(4);
        assertThat(plain.withSequences(2).loadOptions(4, 16).threads()).isEqualTo(2);
        assertThat(plain.withSequences(4).loadOptions(2, 16).threads()).isEqualTo(1);
        assertThat(plain.withThreads(3).loadOptions(8, 16).threads()).isEqualTo(3);
        assertThat(BASE.withBatchSize(64).withRepack(false).loadOptions(1, 1))
                .satisfies(o -> assertThat(o.batchSize()).isEqualTo(64))
                .satisfies(o -> assertThat(o.repack()).isFalse());
    }

    @Test
    void batchingIsOnByDefaultAndComputesOnTheJvmsCores() {
        assertThat(BASE.batching()).isTrue();
        assertThat(BASE.batched()).as("one sequence stays plain").isFalse();
        assertThat(BASE.loadOptions(4, 16).threads()).isEqualTo(4);
        GenerationOptions two = BASE.withSequences(2);
        assertThat(two.batched()).isTrue();
        assertThat(two.loadOptions(4, 16).threads()).as("the executor serves every task of the JVM").isEqualTo(16);
        assertThat(two.withThreads(3).loadOptions(4, 16).threads()).isEqualTo(3);
        assertThat(two.withBatching(false).batched()).isFalse();
        assertThat(two.withBatching(false).withBatching(true)).isEqualTo(two);
    }

    @Test
    void theJvmsCoresComeFromTheMasterOrTheExecutorCores() {
        SparkConf conf = new SparkConf(false);
        assertThat(ExecutorModels.cores(conf, 6)).as("nothing set: the machine's").isEqualTo(6);
        assertThat(ExecutorModels.cores(conf.clone().set("spark.master", "local"), 6)).isEqualTo(1);
        assertThat(ExecutorModels.cores(conf.clone().set("spark.master", "local[3]"), 6)).isEqualTo(3);
        assertThat(ExecutorModels.cores(conf.clone().set("spark.master", "local[2,3]"), 6)).isEqualTo(2);
        assertThat(ExecutorModels.cores(conf.clone().set("spark.master", "local[*]"), 6)).isEqualTo(6);
        assertThat(ExecutorModels.cores(conf.clone().set("spark.master", "local[*,4]"), 6)).isEqualTo(6);
        SparkConf yarn = conf.clone().set("spark.master", "yarn");
        assertThat(ExecutorModels.cores(yarn, 6)).isEqualTo(6);
        assertThat(ExecutorModels.cores(yarn.set("spark.executor.cores", "4"), 6)).isEqualTo(4);
        assertThat(ExecutorModels.cores(conf.clone().set("spark.master", "local-cluster[2,3,1024]")
                .set("spark.executor.cores", "3"), 6)).isEqualTo(3);
    }

    @Test
    void builtInTemplateNamesResolveToTheirSource() {
        assertThat(BASE.chatTemplateSource()).isNull();
        assertThat(BASE.withChatTemplate("chatml").chatTemplateSource()).contains("<|im_start|>");
        String jinja = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
        assertThat(BASE.withChatTemplate(jinja).chatTemplateSource()).isEqualTo(jinja);
    }

    @Test
    void optionsSurviveJavaSerialization() throws Exception {
        GenerationOptions o = BASE.withIdColumn("id").withStop(List.of("\n\n")).withSeed(9).withSequences(3)
                .withLogitBias(Map.of(13, -100f));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(o);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            assertThat(in.readObject()).isEqualTo(o);
        }
    }

    @Test
    void aRowSeedIsTheSha256OfTheGlobalSeedAndTheId() throws Exception {
        for (long global : new long[] {0, 42, -1}) {
            for (String id : List.of("0", "123", "row-7", "é")) {
                byte[] seedBytes = ByteBuffer.allocate(8).putLong(global).array();
                byte[] idBytes = id.getBytes(StandardCharsets.UTF_8);
                byte[] message = Arrays.copyOf(seedBytes, 8 + idBytes.length);
                System.arraycopy(idBytes, 0, message, 8, idBytes.length);
                byte[] digest = MessageDigest.getInstance("SHA-256").digest(message);
                long expected = new BigInteger(1, Arrays.copyOf(digest, 8)).longValue();
                assertThat(LlamaSpark.rowSeed(id, global)).isEqualTo(expected);
            }
        }
        assertThat(LlamaSpark.rowSeed(123L, 42)).isEqualTo(LlamaSpark.rowSeed("123", 42));
        assertThat(LlamaSpark.rowSeed(123, 42)).isEqualTo(LlamaSpark.rowSeed("123", 42));
        assertThat(LlamaSpark.rowSeed("123", 42)).isNotEqualTo(LlamaSpark.rowSeed("124", 42));
        assertThat(LlamaSpark.rowSeed("123", 42)).isNotEqualTo(LlamaSpark.rowSeed("123", 43));
        assertThat(LlamaSpark.rowSeed(null, 42)).isEqualTo(42);
    }
}
