package dev.llamaj.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/// Coverage-guided fuzzing of the GGUF parser with Jazzer: for any bytes at all, parsing must either succeed (and
/// then everything the file promises must be readable) or fail with a one-line [GGUFFormatException]. Any other
/// exception, an `OutOfMemoryError` or a hang is a finding.
///
/// The build runs this class in its own JVM (see `gguf-loader/pom.xml`): in fuzzing mode for `jazzer.max_duration`
/// (30 s by default, `-Djazzer.max_duration=10m` for longer), starting from the seed corpus in `src/test/resources/dev/llamaj/gguf/GGUFFuzzTestInputs/parse`
/// and the corpus of earlier runs in `target/.cifuzz-corpus`, with a 10 s limit per input and a 1 GiB heap; with
/// `-Dllamaj.fuzz=false` only the seeds run (regression mode). A crashing input is written to `gguf-loader/target/`
/// as `crash-<sha1>`; copied into the inputs directory, it becomes a regression test. See "Fuzzing" in the README.
class GGUFFuzzTest {
    /// The name parsed inputs are given; messages must start with it.
    private static final Path NAME = Path.of("fuzz.gguf");
    /// Time one input may take outside the fuzzer (where libFuzzer's `-timeout` watches instead).
    private static final Duration PER_INPUT = Duration.ofSeconds(10);
    private static final boolean FUZZING = isTrue(System.getenv("JAZZER_FUZZ"))
            || isTrue(System.getProperty("JAZZER_FUZZ"));

    private static boolean isTrue(String s) {
        return s != null && (s.equalsIgnoreCase("true") || s.equals("1") || s.equalsIgnoreCase("yes"));
    }

    @FuzzTest(maxDuration = "30s")
    void parse(byte[] input) {
        if (FUZZING) {
            check(input); // libFuzzer's -timeout catches hangs, without a thread per input
        } else {
            assertTimeoutPreemptively(PER_INPUT, () -> check(input));
        }
    }

    /// Parses `input` in memory with the default limits: success or a well-formed [GGUFFormatException].
    static void check(byte[] input) {
        try (GGUFFile f = GGUFFile.parse(NAME, input, GGUFFile.Limits.DEFAULT)) {
            readEverything(f);
        } catch (GGUFFormatException e) {
            String m = e.getMessage();
            if (m == null || !m.startsWith(NAME + ": ") || m.contains("\n") || m.contains("\r") || m.length() > 400) {
                throw new AssertionError("badly formed message: " + m, e);
            }
        }
    }

    /// Touches everything an accepted file promises: every value through its typed accessor, every tensor's
    /// first and last byte, and the digest over all bytes.
    private static void readEverything(GGUFFile f) throws GGUFFormatException {
        Metadata md = f.metadata();
        for (String key : md.keys()) {
            ValueType type = md.type(key);
            Object value = md.find(key).orElseThrow();
            switch (type) {
                case STRING -> md.string(key);
                case FLOAT32, FLOAT64 -> md.float32(key);
                case BOOL -> md.bool(key, false);
                case ARRAY -> {
                    Metadata.Array a = (Metadata.Array) value;
                    if (a.length() < 0) {
                        throw new AssertionError("negative length");
                    }
                }
                default -> {
                    if (type.isInteger() && !(type == ValueType.UINT64 && (Long) value < 0)) {
                        md.integer(key);
                    }
                }
            }
        }
        long previousEnd = -1;
        for (TensorInfo t : f.tensors()) {
            MemorySegment data = f.tensorData(t);
            if (data.byteSize() != t.byteSize() || t.offset() % f.alignment() != 0) {
                throw new AssertionError("tensor " + t + " has " + data.byteSize() + " bytes");
            }
            data.get(ValueLayout.JAVA_BYTE, 0);
            data.get(ValueLayout.JAVA_BYTE, data.byteSize() - 1);
            previousEnd = Math.max(previousEnd, f.dataOffset() + t.offset() + t.byteSize());
        }
        if (previousEnd > f.fileSize()) {
            throw new AssertionError("tensor data past the end of the file");
        }
        if (f.sha256().length() != 64) {
            throw new AssertionError("digest");
        }
    }

    // ---- The seed corpus -------------------------------------------------------------------------------------

    /// Where `-Dllamaj.fuzz.writeSeeds=true` writes the seeds (Maven runs tests in the module directory).
    private static final Path SEED_DIR = Path.of("src/test/resources/dev/llamaj/gguf/GGUFFuzzTestInputs/parse");

    /// The seed corpus: tiny valid files covering every value type, nesting, alignment and a few tensor types,
    /// and a few broken ones, each a few hundred bytes at most so the fuzzer mutates structure, not padding.
    static Map<String, byte[]> seeds(Path tmp) throws IOException {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        seeds.put("empty-v3", GGUFBytes.header(0, 0).bytes());
        seeds.put("empty-v2", GGUFBytes.of().u32(GGUFFile.MAGIC).u32(2).u64(0).u64(0).bytes());
        seeds.put("one-f32-tensor", GGUFBytes.header(1, 0)
                .tensorInfo("t", new long[] {8}, GGMLType.F32, 0).padTo(32).zeros(32).bytes());
        seeds.put("every-value-type", write(tmp, new GGUFWriter()
                .putString("general.architecture", "llama")
                .putUInt32("llama.block_count", 1)
                .putFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .putBool("flag", true)
                .put("u8", ValueType.UINT8, 200)
                .put("i8", ValueType.INT8, -3)
                .put("u16", ValueType.UINT16, 60000)
                .put("i16", ValueType.INT16, -2)
                .put("i32", ValueType.INT32, -7)
                .put("u64", ValueType.UINT64, -1L)
                .put("i64", ValueType.INT64, 1L << 40)
                .put("f64", ValueType.FLOAT64, 0.5)
                .putArray("tokenizer.ggml.tokens", ValueType.STRING, new String[] {"<s>", "▁a", "é"})
                .putArray("tokenizer.ggml.scores", ValueType.FLOAT32, new float[] {0f, -1f, -2f})
                .putArray("tokenizer.ggml.token_type", ValueType.INT32, new int[] {3, 1, 1})
                .putArray("u8s", ValueType.UINT8, new int[] {1, 255})
                .putArray("i64s", ValueType.INT64, new long[] {-1})
                .putArray("f64s", ValueType.FLOAT64, new double[] {1.5})
                .putArray("bools", ValueType.BOOL, new boolean[] {true, false})
                .put("nested", ValueType.ARRAY, new Metadata.Array(ValueType.ARRAY, new Metadata.Array[] {
                        new Metadata.Array(ValueType.UINT16, new int[] {1, 2})}))
                .addTensor("q", GGMLType.Q8_0, new long[] {32}, new byte[34])
                .addTensor("f", GGMLType.F32, new long[] {8}, new byte[32])));
        seeds.put("aligned-8-q4_0-f16", write(tmp, new GGUFWriter().alignment(8)
                .addTensor("a", GGMLType.Q4_0, new long[] {32, 2}, new byte[36])
                .addTensor("b", GGMLType.F16, new long[] {3}, new byte[6])
                .addTensor("c", GGMLType.Q4_K, new long[] {256}, new byte[(int) GGMLType.Q4_K.byteSize(256)])));
        seeds.put("tiny-llama-metadata", write(tmp, new GGUFWriter()
                .putString("general.architecture", "llama")
                .putUInt32("llama.context_length", 64)
                .putUInt32("llama.embedding_length", 8)
                .putUInt32("llama.block_count", 1)
                .putUInt32("llama.feed_forward_length", 16)
                .putUInt32("llama.attention.head_count", 2)
                .putUInt32("llama.attention.head_count_kv", 1)
                .putString("tokenizer.ggml.model", "gpt2")
                .putArray("tokenizer.ggml.tokens", ValueType.STRING, new String[] {"a", "b", "ab"})
                .putArray("tokenizer.ggml.merges", ValueType.STRING, new String[] {"a b"})
                .addTensor("token_embd.weight", GGMLType.F32, new long[] {8, 3}, new byte[96])));
        byte[] valid = seeds.get("every-value-type");
        seeds.put("truncated", Arrays.copyOf(valid, valid.length / 2));
        seeds.put("huge-array-count", GGUFBytes.header(0, 1).key("a", ValueType.ARRAY).type(ValueType.UINT8)
                .u64(1L << 62).zeros(16).bytes());
        seeds.put("overlapping-tensors", GGUFBytes.header(2, 0)
                .tensorInfo("a", new long[] {8}, GGMLType.F32, 0)
                .tensorInfo("b", new long[] {8}, GGMLType.F32, 0).padTo(32).zeros(64).bytes());
        return seeds;
    }

    private static byte[] write(Path tmp, GGUFWriter w) throws IOException {
        Path p = Files.createTempFile(tmp, "seed", ".gguf");
        w.write(p);
        return Files.readAllBytes(p);
    }

    /// The committed seeds are exactly what [#seeds] makes; `-Dllamaj.fuzz.writeSeeds=true` rewrites them.
    @Test
    void seedCorpusIsUpToDate(@TempDir Path tmp) throws IOException {
        Map<String, byte[]> expected = seeds(tmp);
        if (Boolean.getBoolean("llamaj.fuzz.writeSeeds")) {
            Files.createDirectories(SEED_DIR);
            for (Map.Entry<String, byte[]> e : expected.entrySet()) {
                Files.write(SEED_DIR.resolve(e.getKey()), e.getValue());
            }
        }
        for (Map.Entry<String, byte[]> e : expected.entrySet()) {
            // As the fuzz test sees them: from the test class path.
            byte[] actual;
            try (InputStream in = GGUFFuzzTest.class.getResourceAsStream("GGUFFuzzTestInputs/parse/" + e.getKey())) {
                actual = in == null ? null : in.readAllBytes();
            }
            assertThat(actual).as("seed %s (rewrite with -Dllamaj.fuzz.writeSeeds=true)", e.getKey())
                    .isEqualTo(e.getValue());
            assertThat(e.getValue().length).as("seed %s size", e.getKey()).isLessThanOrEqualTo(1024);
        }
        // Both outcomes are represented, so the fuzzer starts from accepted and rejected files.
        long accepted = expected.values().stream().filter(b -> {
            try (GGUFFile f = GGUFFile.parse(NAME, b, GGUFFile.Limits.DEFAULT)) {
                return true;
            } catch (GGUFFormatException e) {
                return false;
            }
        }).count();
        assertThat(accepted).isBetween(1L, expected.size() - 1L);
    }

    /// The in-memory entry point and [GGUFFile#open] agree on every seed: same outcome, same message.
    @Test
    void inMemoryParseAgreesWithOpeningTheFile(@TempDir Path tmp) throws IOException {
        for (Map.Entry<String, byte[]> e : seeds(tmp).entrySet()) {
            Path p = Files.write(tmp.resolve(e.getKey() + ".gguf"), e.getValue());
            String fromFile;
            String fromMemory;
            try (GGUFFile f = GGUFFile.open(p)) {
                fromFile = "ok " + f.tensors() + " " + f.metadata().keys() + " " + f.sha256();
            } catch (GGUFFormatException x) {
                fromFile = x.getMessage();
            }
            try (GGUFFile f = GGUFFile.parse(p, e.getValue(), GGUFFile.Limits.DEFAULT)) {
                fromMemory = "ok " + f.tensors() + " " + f.metadata().keys() + " " + f.sha256();
            } catch (GGUFFormatException x) {
                fromMemory = x.getMessage();
            }
            assertThat(fromMemory).as(e.getKey()).isEqualTo(fromFile);
        }
    }
}
