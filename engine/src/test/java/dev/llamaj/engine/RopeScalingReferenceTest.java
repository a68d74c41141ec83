package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.llamaj.gguf.GGMLType;
import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.GGUFWriter;
import dev.llamaj.gguf.Json;
import dev.llamaj.gguf.SharedData;
import dev.llamaj.gguf.TensorInfo;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/// RoPE context extension against llama.cpp: YaRN (`rope.scaling.type = yarn`, with Ministral 3's
/// `yarn_log_multiplier`), Phi-3's LongRoPE factors and Ministral 3's query temperature, on edited copies of the
/// tiny models of `../shared/archs` (Llama's `llama-hd48` renamed to `mistral3` for the latter) (see `rope-scaling/README.md` for how the reference was
/// made). The first position's log-probabilities must match llama.cpp's to within summation noise, and must differ
/// from the unedited model's, so a scaling that is ignored fails.
class RopeScalingReferenceTest {
    @TempDir
    static Path dir;

    static Stream<Arguments> cases() throws Exception {
        try (InputStream in = RopeScalingReferenceTest.class.getResourceAsStream("/rope-scaling/references.json")) {
            @SuppressWarnings("unchecked")
            Map<String, Object> all = (Map<String, Object>) Json.parse(new String(in.readAllBytes(),
                    StandardCharsets.UTF_8));
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> cases = (List<Map<String, Object>>) all.get("cases");
            return cases.stream().map(c -> Arguments.of(c.get("name"), c));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    @SuppressWarnings("unchecked")
    void firstPositionMatchesLlamaCpp(String name, Map<String, Object> c) throws Exception {
        Path base = SharedData.require((String) c.get("base"));
        Path edited = dir.resolve(name + ".gguf");
        edit(base, edited, (String) c.get("architecture"), (Map<String, List<String>>) c.get("keys"),
                (Map<String, List<Number>>) c.get("tensors"));
        int[] prompt = ((List<Number>) c.get("prompt_ids")).stream().mapToInt(Number::intValue).toArray();
        int context = ((Number) c.get("context")).intValue();
        float[] ours = logProbs(edited, prompt, context);
        Path unscaled = dir.resolve(name + "-unscaled.gguf");
        edit(base, unscaled, (String) c.get("architecture"), Map.of(), Map.of());
        float[] plain = logProbs(unscaled, prompt, context);
        double changed = 0;
        for (List<Number> e : (List<List<Number>>) c.get("llama_cpp_top8_logprobs")) {
            int id = e.get(0).intValue();
            assertThat((double) ours[id]).as("%s token %d", name, id).isCloseTo(e.get(1).doubleValue(), within(0.006));
            changed = Math.max(changed, Math.abs(ours[id] - plain[id]));
        }
        assertThat(changed).as("the scaling changes the result").isGreaterThan(0.01);
    }

    private static float[] logProbs(Path model, int[] prompt, int context) throws Exception {
        try (LlamaModel m = LlamaModel.load(model, LoadOptions.defaults().withThreads(2).withWarmUp(false));
             Session s = m.newSession(context)) {
            s.ingest(prompt);
            float[] l = s.logits().clone();
            double max = Double.NEGATIVE_INFINITY;
            for (float v : l) {
                max = Math.max(max, v);
            }
            double sum = 0;
            for (float v : l) {
                sum += Math.exp(v - max);
            }
            double lse = max + Math.log(sum);
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) (l[i] - lse);
            }
            return l;
        }
    }

    /// `base` under another architecture name if `architecture` is not null (`general.architecture` and the prefix
    /// of its keys), with metadata keys set (`[type, value]`, type `str`, `u32` or `f32`) and F32 vectors added.
    private static void edit(Path base, Path out, String architecture, Map<String, List<String>> keys,
                             Map<String, List<Number>> tensors) throws Exception {
        try (GGUFFile f = GGUFFile.open(base)) {
            GGUFWriter w = new GGUFWriter();
            String prefix = f.metadata().string("general.architecture") + ".";
            for (String key : f.metadata().keys()) {
                String name = key;
                Object value = f.metadata().find(key).orElseThrow();
                if (architecture != null && key.equals("general.architecture")) {
                    value = architecture;
                } else if (architecture != null && key.startsWith(prefix)) {
                    name = architecture + "." + key.substring(prefix.length());
                }
                if (!keys.containsKey(name)) {
                    w.put(name, f.metadata().type(key), value);
                }
            }
            keys.forEach((key, tv) -> {
                switch (tv.get(0)) {
                    case "str" -> w.putString(key, tv.get(1));
                    case "u32" -> w.putUInt32(key, Long.parseLong(tv.get(1)));
                    case "f32" -> w.putFloat32(key, Float.parseFloat(tv.get(1)));
                    default -> throw new IllegalArgumentException(tv.get(0));
                }
            });
            for (TensorInfo t : f.tensors()) {
                w.addTensor(t.name(), t.type(), t.shape(), f.tensorData(t));
            }
            tensors.forEach((tensor, values) -> {
                ByteBuffer b = ByteBuffer.allocate(4 * values.size()).order(ByteOrder.LITTLE_ENDIAN);
                values.forEach(v -> b.putFloat(v.floatValue()));
                w.addTensor(tensor, GGMLType.F32, new long[] {values.size()}, b.array());
            });
            w.write(out);
        }
    }
}
