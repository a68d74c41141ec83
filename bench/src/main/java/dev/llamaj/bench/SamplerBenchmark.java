package dev.llamaj.bench;

import dev.llamaj.engine.Sampler;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/// One sampling step (the whole chain, log-probabilities included) over a vocabulary of `vocab` logits, each
/// call on a fresh copy of one of 16 random logit vectors (Gaussian, standard deviation 3, roughly a real model's
/// spread). What a generated token costs beyond the forward pass; compare with a `decode` of
/// [GenerationBenchmark].
///
/// `chain`: `greedy` (temperature 0; its log-probabilities need the whole vocabulary's softmax), `defaults`
/// (llama.cpp's: top-k 40, top-p 0.95, min-p 0.05, temperature 0.8), `topk0` (the same without top-k: min-p's
/// cut before the sort), `full` (top-k 0, top-p 1, min-p 0: every token sorted), `penalties` (`defaults` with
/// repetition, presence and frequency penalties and a logit bias).
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
public class SamplerBenchmark {
    @Param({"128256"})
    public int vocab;

    @Param({"greedy", "defaults", "topk0", "full", "penalties"})
    public String chain;

    /// Alternatives kept per token (`top_logprobs`).
    @Param({"0"})
    public int top;

    private float[][] logits;
    private float[] work;
    private Sampler sampler;
    private int next;

    @Setup
    public void setup() {
        SplittableRandom random = new SplittableRandom(1);
        logits = new float[16][vocab];
        for (float[] l : logits) {
            for (int i = 0; i < vocab; i++) {
                l[i] = (float) (random.nextGaussian() * 3);
            }
        }
        work = new float[vocab];
        Sampler.Settings settings = switch (chain) {
            case "greedy" -> Sampler.Settings.greedy();
            case "defaults" -> Sampler.Settings.defaults(1);
            case "topk0" -> new Sampler.Settings(0.8f, 0, 0.95f, 0.05f, 1f, 64, 1);
            case "full" -> new Sampler.Settings(0.8f, 0, 1f, 0f, 1f, 64, 1);
            case "penalties" -> new Sampler.Settings(0.8f, 40, 0.95f, 0.05f, 1.1f, 64, 1).withPenalties(0.5f, 0.5f)
                    .withLogitBias(java.util.Map.of(13, -100f, 42, 1.5f));
            default -> throw new IllegalArgumentException("unknown chain " + chain);
        };
        sampler = Sampler.create(settings).topLogprobs(top);
    }

    @Benchmark
    public int sample() {
        System.arraycopy(logits[next++ & 15], 0, work, 0, vocab);
        int token = sampler.sample(work);
        sampler.accept(token);
        return token;
    }
}
