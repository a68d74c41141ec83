package dev.llamaj.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SamplerTest {

    private static float[] randomLogits(long seed, int n) {
        Random r = new Random(seed);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) r.nextGaussian() * 3;
        }
        return l;
    }

    @Test
    void greedyIsArgmax() {
        for (int seed = 0; seed < 20; seed++) {
            float[] l = randomLogits(seed, 1000);
            int best = 0;
            for (int i = 1; i < l.length; i++) {
                if (l[i] > l[best]) {
                    best = i;
                }
            }
            assertThat(Sampler.greedy().sample(l.clone())).isEqualTo(best);
        }
    }

    @Test
    void sameSeedSameTokens() {
        Sampler a = Sampler.create(Sampler.Settings.defaults(7));
        Sampler b = Sampler.create(Sampler.Settings.defaults(7));
        for (int i = 0; i < 50; i++) {
            float[] l = randomLogits(i, 500);
            assertThat(a.sample(l.clone())).isEqualTo(b.sample(l.clone()));
        }
    }

    @Test
    void topKNeverPicksOutsideTheTopK() {
        float[] l = randomLogits(3, 300);
        Integer[] idx = new Integer[l.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        java.util.Arrays.sort(idx, (x, y) -> Float.compare(l[y], l[x]));
        Set<Integer> top5 = Set.of(idx[0], idx[1], idx[2], idx[3], idx[4]);
        Sampler s = Sampler.create(new Sampler.Settings(5f, 5, 1f, 0f, 1f, 64, 1));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 500; i++) {
            seen.add(s.sample(l.clone()));
        }
        assertThat(top5).containsAll(seen);
        assertThat(seen.size()).isGreaterThan(1);
    }

    @Test
    void topPNeverPicksOutsideTheNucleus() {
        // probabilities 0.5, 0.3, 0.2 · tiny: top-p 0.75 keeps exactly the first two
        float[] l = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2), -30f};
        Sampler s = Sampler.create(new Sampler.Settings(1f, 0, 0.75f, 0f, 1f, 64, 9));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 2000; i++) {
            seen.add(s.sample(l.clone()));
        }
        assertThat(seen).containsExactlyInAnyOrder(0, 1);
    }

    @Test
    void minPDropsUnlikelyTokens() {
        float[] l = {(float) Math.log(0.6), (float) Math.log(0.35), (float) Math.log(0.05)};
        Sampler s = Sampler.create(new Sampler.Settings(1f, 0, 1f, 0.1f, 1f, 64, 9));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 2000; i++) {
            seen.add(s.sample(l.clone()));
        }
        assertThat(seen).containsExactlyInAnyOrder(0, 1);
    }

    @Test
    void repetitionPenaltyDemotesRecentTokens() {
        Sampler s = Sampler.create(new Sampler.Settings(0f, 0, 1f, 0f, 2f, 64, 0));
        float[] l = {2.0f, 1.5f, -1f};
        assertThat(s.sample(l.clone())).isEqualTo(0);
        s.accept(0);
        assertThat(s.sample(l.clone())).isEqualTo(1);
    }

    @Test
    void rejectsInvalidSettings() {
        assertThatThrownBy(() -> new Sampler.Settings(-1f, 0, 1f, 0f, 1f, 64, 0)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new Sampler.Settings(1f, -1, 1f, 0f, 1f, 64, 0)).hasMessageContaining("top-k");
        assertThatThrownBy(() -> new Sampler.Settings(1f, 0, 0f, 0f, 1f, 64, 0)).hasMessageContaining("top-p");
        assertThatThrownBy(() -> new Sampler.Settings(1f, 0, 1f, 2f, 1f, 64, 0)).hasMessageContaining("min-p");
        assertThatThrownBy(() -> new Sampler.Settings(1f, 0, 1f, 0f, 0f, 64, 0)).hasMessageContaining("penalty");
    }
}
