package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static dev.llamaj.cli.server.TestServer.number;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// The prefix cache shared by the server's slots, over HTTP: a prompt whose long start was computed for an earlier
/// request, in a slot that has since moved on, is copied from the cache (`usage.prompt_tokens_details.cached_tokens`,
/// streamed or not, and `/metrics`), with the answer a fresh session gives; `--cache-budget 0` turns it off.
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PrefixCacheServerTest {
    private static final String INSTRUCTION = "Read the story and tell what happens next. ".repeat(3)
            + "Once upon a time there was a little girl named Lily who loved to play in the park with her dog. "
            .repeat(6);

    private static Map<String, Object> completion(String prompt, boolean stream) {
        Map<String, Object> m = new HashMap<>();
        m.put("prompt", prompt);
        m.put("max_tokens", 8);
        m.put("temperature", 0);
        if (stream) {
            m.put("stream", true);
            m.put("stream_options", Map.of("include_usage", true));
        }
        return m;
    }

    private static String greedy(TestServer t, String prompt) {
        try (Session s = t.model.newSession(t.server.contextLength())) {
            return s.generate(prompt, 8, Sampler.greedy(), _ -> {}).text();
        }
    }

    private static long cachedTokens(Map<String, Object> usage) {
        return number(map(usage.get("prompt_tokens_details")).get("cached_tokens"));
    }

    @Test
    void aSlotCopiesAPrefixComputedForAnEarlierRequest() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().parallel(1).contextLength(512).build())) {
            Map<String, Object> first = json(t.post("/v1/completions", completion(INSTRUCTION + "Tom ran.", false)));
            assertThat(cachedTokens(map(first.get("usage")))).isZero();
            // the one slot moves on to another prompt: its own context no longer holds the instruction
            t.post("/v1/completions", completion("The dog barked at the cat.", false));

            String second = INSTRUCTION + "Lily sang a song.";
            Map<String, Object> c = json(t.post("/v1/completions", completion(second, false)));
            Map<String, Object> usage = map(c.get("usage"));
            assertThat(cachedTokens(usage)).isGreaterThanOrEqualTo(3 * 64)
                    .isLessThan(number(usage.get("prompt_tokens")));
            assertThat(map(list(c.get("choices")).getFirst()).get("text")).isEqualTo(greedy(t, second));

            t.post("/v1/completions", completion("The dog barked at the cat.", false));
            String third = INSTRUCTION + "Sam hid the ball.";
            TestServer.Stream s = TestServer.parseStream(t.post("/v1/completions", completion(third, true)).body(),
                    false);
            assertThat(cachedTokens(s.usage())).isGreaterThanOrEqualTo(3 * 64);
            assertThat(s.text()).isEqualTo(greedy(t, third));

            // a new long prompt in a slot that held another one is computed from an empty context, so it is shared
            String other = "Tom and Sue went to the park to play with a red ball and a kite. ".repeat(8);
            t.post("/v1/completions", completion(other + "They ran.", false));
            t.post("/v1/completions", completion("The dog barked at the cat.", false));
            Map<String, Object> u = map(json(t.post("/v1/completions", completion(other + "It rained.", false)))
                    .get("usage"));
            assertThat(cachedTokens(u)).isGreaterThanOrEqualTo(2 * 64);

            String metrics = t.get("/metrics").body();
            assertThat(metrics).containsPattern("(?m)^llamaj_prefix_cache_bytes [1-9]")
                    .containsPattern("(?m)^llamaj_prefix_cache_blocks [1-9]")
                    .containsPattern("(?m)^llamaj_prompt_tokens_cached_total [1-9]");
        }
    }

    /// Two slots batched in one executor: a prompt whose start was computed in either slot is copied, and the
    /// answers are those of the same server without the cache (an executor's sessions round alike however their
    /// prompts are split).
    @Test
    void batchedSlotsShareTheCache() throws Exception {
        List<String> prompts = List.of(INSTRUCTION + "Tom ran.", "The dog barked at the cat.",
                INSTRUCTION + "Lily sang a song.", INSTRUCTION + "Sam hid the ball.");
        List<Object> with = new java.util.ArrayList<>();
        List<Object> without = new java.util.ArrayList<>();
        List<Long> cached = new java.util.ArrayList<>();
        for (long budget : new long[] {-1, 0}) {
            try (TestServer t = TestServer.start(TestServer.config().parallel(2).contextLength(512)
                    .cacheBudget(budget).build())) {
                for (String p : prompts) {
                    Map<String, Object> c = json(t.post("/v1/completions", completion(p, false)));
                    (budget == 0 ? without : with).add(map(list(c.get("choices")).getFirst()).get("text"));
                    if (budget != 0) {
                        cached.add(cachedTokens(map(c.get("usage"))));
                    }
                }
            }
        }
        assertThat(with).isEqualTo(without);
        assertThat(cached.get(2)).isGreaterThanOrEqualTo(3 * 64);
        assertThat(cached.get(3)).isGreaterThanOrEqualTo(3 * 64);
    }

    @Test
    void aBudgetOfZeroTurnsItOff() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().contextLength(512).cacheBudget(0).build())) {
            t.post("/v1/completions", completion(INSTRUCTION + "Tom ran.", false));
            t.post("/v1/completions", completion("The dog barked at the cat.", false));
            Map<String, Object> c = json(t.post("/v1/completions", completion(INSTRUCTION + "Lily sang.", false)));
            assertThat(cachedTokens(map(c.get("usage")))).isLessThan(64); // the slot's own prefix: BOS at most
            assertThat(t.get("/metrics").body()).doesNotContain("llamaj_prefix_cache_bytes");
        }
        assertThatThrownBy(() -> TestServer.config().cacheBudget(-2).build())
                .hasMessage("--cache-budget must be 0 or more bytes, got -2");
    }
}
