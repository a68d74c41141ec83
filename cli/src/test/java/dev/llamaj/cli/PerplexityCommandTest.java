package dev.llamaj.cli;

import static dev.llamaj.cli.LlamaCommandTest.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.GGUFWriter;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;
import java.lang.foreign.ValueLayout;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/// `llama perplexity` end to end, against llama.cpp's numbers in `ppl-garden.json`.
class PerplexityCommandTest {
    private static final Pattern RUNNING = Pattern.compile("\\[(\\d+)]([0-9.]+)");
    private static final Pattern FINAL = Pattern.compile("Final estimate: PPL = ([0-9.]+) \\+/- ([0-9.]+)");

    @TempDir
    Path dir;

    static String model() {
        return SharedData.require("models/stories260K.gguf").toString();
    }

    static String text() {
        return SharedData.require("reference/ppl-garden.txt").toString();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> referenceRun(int nCtx) throws Exception {
        Map<String, Object> json = Json.parseObject(Files.readString(SharedData.require("reference/ppl-garden.json")));
        for (Object run : (List<Object>) json.get("runs")) {
            Map<String, Object> m = (Map<String, Object>) run;
            if (((Number) m.get("n_ctx")).intValue() == nCtx) {
                return m;
            }
        }
        throw new AssertionError("no run for n_ctx " + nCtx);
    }

    @ParameterizedTest(name = "-c {0}")
    @ValueSource(ints = {128, 64})
    @SuppressWarnings("unchecked")
    void printsTheRunningValueAndTheFinalEstimate(int nCtx) throws Exception {
        Map<String, Object> ref = referenceRun(nCtx);
        LlamaCommandTest.Result r = run("perplexity", "--model", model(), "--file", text(), "-c", String.valueOf(nCtx),
                "--threads", "2");
        assertThat(r.code()).as(r.err()).isZero();

        String compact = r.out().lines().filter(l -> l.startsWith("[1]") && l.contains(",")).findFirst().orElseThrow();
        List<Double> values = new ArrayList<>();
        Matcher m = RUNNING.matcher(compact);
        while (m.find()) {
            assertThat(Integer.parseInt(m.group(1))).isEqualTo(values.size() + 1);
            values.add(Double.parseDouble(m.group(2)));
        }
        int chunks = ((Number) ref.get("chunks")).intValue();
        assertThat(values).hasSize(chunks);
        // one table row per chunk too
        assertThat(r.out().lines().filter(l -> l.matches("\\[\\d+]\\s+[0-9.]+\\s+[0-9.]+"))).hasSize(chunks);

        Matcher f = FINAL.matcher(r.out());
        assertThat(f.find()).as(r.out()).isTrue();
        double finalPpl = Double.parseDouble(f.group(1));
        assertThat(finalPpl).isCloseTo(((BigDecimal) ref.get("final_ppl")).doubleValue(), within(0.0005));
        assertThat(Double.parseDouble(f.group(2))).isBetween(0.01, 1.0);
        assertThat(values.getLast()).isEqualTo(finalPpl);
        if (ref.get("per_chunk") != null) {
            List<Object> expected = (List<Object>) ref.get("per_chunk");
            for (int i = 0; i < expected.size(); i++) {
                // 0.002: llamaj's key/value cache is float32, llama.cpp's default F16 (see PerplexityTest)
                assertThat(values.get(i)).as("chunk %d", i + 1)
                        .isCloseTo(((BigDecimal) expected.get(i)).doubleValue(), within(0.002));
            }
        }
        assertThat(r.err()).contains("perplexity over " + chunks + " chunks of " + nCtx + " tokens");
        assertThat(r.err()).contains("llama: perplexity " + chunks + "/" + chunks); // the final progress line
    }

    @Test
    void chunksAndJsonOutput() throws Exception {
        Path report = dir.resolve("ppl.json");
        LlamaCommandTest.Result r = run("perplexity", "-m", model(), "-f", text(), "-c", "64", "--chunks", "3",
                "--output", report.toString(), "--progress", "off");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("[1]").contains("[3]").doesNotContain("[4]");
        assertThat(r.err()).doesNotContain("perplexity 3/3"); // --progress off
        Map<String, Object> json = Json.parseObject(Files.readString(report));
        assertThat(json.get("context")).isEqualTo(64L);
        assertThat(json.get("chunks")).isEqualTo(3L);
        assertThat(json.get("scored_tokens")).isEqualTo(3L * 31);
        assertThat((List<?>) json.get("per_chunk")).hasSize(3);
        assertThat(json).containsKeys("perplexity", "uncertainty", "tokens", "seconds").doesNotContainKey("reference");
    }

    @Test
    void referenceAgainstItself() throws Exception {
        Path report = dir.resolve("kl.json");
        LlamaCommandTest.Result r = run("perplexity", "-m", model(), "-f", text(), "-c", "128", "--reference", model(),
                "-o", report.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("Mean KL divergence: 0.000000 +/- 0.000000 nats (max 0.000000)")
                .contains("Top-1 agreement: 100.00% +/- 0.00%")
                .contains("PPL ratio (model / reference): 1.0000 +/- 0.0000");
        @SuppressWarnings("unchecked")
        Map<String, Object> ref = (Map<String, Object>) Json.parseObject(Files.readString(report)).get("reference");
        assertThat(((Number) ref.get("mean_kl")).doubleValue()).isZero();
        assertThat(((Number) ref.get("top1_agreement")).doubleValue()).isEqualTo(1.0);
        assertThat(((Number) ref.get("perplexity_ratio")).doubleValue()).isEqualTo(1.0);
    }

    @Test
    void referenceAgainstARequantizedCopy() throws Exception {
        Path f16 = writeF16Copy(dir.resolve("stories260K-f16.gguf"));
        Path report = dir.resolve("kl.json");
        LlamaCommandTest.Result r = run("perplexity", "-m", f16.toString(), "-f", text(), "-c", "128",
                "--reference", model(), "-o", report.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("Mean KL divergence: ").contains("Top-1 agreement: ");
        @SuppressWarnings("unchecked")
        Map<String, Object> ref = (Map<String, Object>) Json.parseObject(Files.readString(report)).get("reference");
        assertThat(((Number) ref.get("mean_kl")).doubleValue()).isGreaterThan(0).isLessThan(1e-3);
        assertThat(((Number) ref.get("top1_agreement")).doubleValue()).isGreaterThan(0.95);
        assertThat(((Number) ref.get("perplexity_ratio")).doubleValue()).isCloseTo(1.0, within(0.01));
    }

    /// stories260K with every matrix stored as F16: a requantized copy with the same vocabulary.
    static Path writeF16Copy(Path target) throws Exception {
        try (GGUFFile f = GGUFFile.open(SharedData.require("models/stories260K.gguf"))) {
            GGUFWriter w = new GGUFWriter().putAll(f.metadata(), _ -> true);
            for (TensorInfo t : f.tensors()) {
                if (t.type() == GGMLType.F32 && t.dimensions() == 2) {
                    float[] values = f.tensorData(t).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
                    ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : values) {
                        b.putShort(Float.floatToFloat16(v));
                    }
                    w.addTensor(t.name(), GGMLType.F16, t.shape(), b.array());
                } else {
                    w.addTensor(t.name(), t.type(), t.shape(), f.tensorData(t));
                }
            }
            w.write(target);
        }
        return target;
    }

    @Test
    void errors() throws Exception {
        LlamaCommandTest.Result missingFile = run("perplexity", "-m", model());
        assertThat(missingFile.code()).isEqualTo(2);
        assertThat(missingFile.err()).startsWith("llama: Missing required option: '--file=FILE'");

        Path absent = dir.resolve("absent.txt");
        LlamaCommandTest.Result noText = run("perplexity", "-m", model(), "-f", absent.toString());
        assertThat(noText.code()).isEqualTo(1);
        assertThat(noText.err()).isEqualTo("llama: " + absent + ": no such file\n");

        LlamaCommandTest.Result tooShort = run("perplexity", "-m", model(), "-f", text(), "-c", "512");
        assertThat(tooShort.code()).isEqualTo(1);
        assertThat(tooShort.err().lines().filter(l -> !l.startsWith("llama: warning"))).first().asString()
                .startsWith("llama: the text is 986 tokens but perplexity with a context of 512 needs at least 1024");

        assertThat(run("perplexity", "-m", model(), "-f", text(), "--chunks", "0").err())
                .isEqualTo("llama: --chunks must be 1 or more, got 0\n");
        assertThat(run("perplexity", "-m", model(), "-f", text(), "-c", "2").err())
                .isEqualTo("llama: --context must be 4 or more for perplexity, got 2\n");
        LlamaCommandTest.Result badMode = run("perplexity", "-m", model(), "-f", text(), "--progress", "fancy");
        assertThat(badMode.code()).isEqualTo(2);
        assertThat(badMode.err()).contains("expected auto, bar, lines or off, got 'fancy'");

        Path latin1 = Files.write(dir.resolve("latin1.txt"), new byte[] {'c', 'a', 'f', (byte) 0xe9});
        assertThat(run("perplexity", "-m", model(), "-f", latin1.toString()).err())
                .isEqualTo("llama: " + latin1 + ": the text is not valid UTF-8\n");

        Path otherVocab = dir.resolve("other.gguf");
        try (GGUFFile f = GGUFFile.open(SharedData.require("models/stories260K.gguf"))) {
            String[] tokens = f.metadata().stringArray("tokenizer.ggml.tokens").clone();
            tokens[400] = "zz";
            GGUFWriter w = new GGUFWriter().putAll(f.metadata(), _ -> true)
                    .putArray("tokenizer.ggml.tokens", dev.llamaj.gguf.ValueType.STRING, tokens);
            for (TensorInfo t : f.tensors()) {
                w.addTensor(t.name(), t.type(), t.shape(), f.tensorData(t));
            }
            w.write(otherVocab);
        }
        LlamaCommandTest.Result vocab = run("perplexity", "-m", model(), "-f", text(), "-c", "64",
                "--reference", otherVocab.toString());
        assertThat(vocab.code()).isEqualTo(1);
        assertThat(vocab.err()).contains("llama: the reference model's vocabulary differs from the model's at token 400");
    }
}
