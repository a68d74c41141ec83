package dev.llamaj.cli.server;

import static dev.llamaj.cli.server.TestServer.json;
import static dev.llamaj.cli.server.TestServer.list;
import static dev.llamaj.cli.server.TestServer.map;
import static org.assertj.core.api.Assertions.assertThat;

import dev.llamaj.engine.Completion;
import dev.llamaj.engine.LlamaModel;
import dev.llamaj.engine.Sampler;
import dev.llamaj.engine.Session;
import dev.llamaj.engine.Speculation;
import dev.llamaj.gguf.SharedData;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// A server whose two slots generate with a draft model (stories260K drafting for itself): greedy answers are the
/// engine's plain greedy answers, with and without log-probabilities, and every slot's speculation is used.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServerSpeculationTest {
    static final String PROMPT = "Lily and Tom went to the park. Lily said";
    static TestServer t;
    static LlamaModel draft;
    static final List<Speculation> speculations = new CopyOnWriteArrayList<>();
    static final List<Session> draftSessions = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        t = TestServer.start(TestServer.config().parallel(2).queueLimit(8).build());
        draft = LlamaModel.load(SharedData.require("models/stories260K.gguf"), 1);
        t.server.speculate(session -> {
            Session d = draft.newSession(session.contextLength());
            draftSessions.add(d);
            Speculation s = Speculation.draftModel(d, 4);
            speculations.add(s);
            return s;
        });
    }

    @AfterAll
    static void stop() {
        if (t != null) {
            t.close();
        }
        draftSessions.forEach(Session::close);
        if (draft != null) {
            draft.close();
        }
    }

    @Test
    void greedyCompletionsAreThePlainOnes() throws Exception {
        Completion expected;
        try (Session s = t.model.newSession(t.server.contextLength())) {
            expected = s.generate(s.encode(PROMPT), 60, Sampler.greedy(), List.of(), _ -> {}, null);
        }
        for (int i = 0; i < 3; i++) {
            HttpResponse<String> r = t.post("/v1/completions", Map.of("prompt", PROMPT, "max_tokens", 60,
                    "temperature", 0, "logprobs", i == 2 ? 2 : 0));
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            Map<String, Object> choice = map(list(json(r).get("choices")).getFirst());
            assertThat(choice.get("text")).isEqualTo(expected.text());
        }
        assertThat(speculations).hasSize(2);
        long accepted = speculations.stream().mapToLong(Speculation::accepted).sum();
        long drafted = speculations.stream().mapToLong(Speculation::drafted).sum();
        assertThat(drafted).isPositive();
        assertThat(accepted).isEqualTo(drafted); // the model drafting for itself
    }
}
