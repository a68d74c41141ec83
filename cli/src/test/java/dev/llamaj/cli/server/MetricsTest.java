package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/// The Prometheus text written by [Metrics], read back by two independent parsers ([PrometheusText]).
class MetricsTest {
    @Test
    void countersGaugesAndHistogramsReadBackAsWritten() throws Exception {
        Metrics m = new Metrics();
        Metrics.Counter requests = m.counter("t_requests_total", "Requests.\nBy \\ status.", "endpoint", "status");
        Metrics.Counter tokens = m.counter("t_tokens_total", "Tokens.");
        m.gauge("t_ratio", "A ratio.", () -> 0.25);
        Metrics.Histogram h = m.histogram("t_seconds", "Latency.", 0.1, 0.5, 1);
        requests.inc("/v1/completions", "200");
        requests.inc("/v1/completions", "200");
        requests.inc("/weird \"path\"\\\n", "404");
        tokens.add(12);
        h.observe(0.05);
        h.observe(0.3, 3);
        h.observe(7);

        Map<String, PrometheusText.Family> f = PrometheusText.parse(m.scrape());
        assertThat(f.keySet()).containsExactly("t_requests_total", "t_tokens_total", "t_ratio", "t_seconds");
        assertThat(f.get("t_requests_total").samples()).containsExactly(
                new PrometheusText.Sample("t_requests_total", Map.of("endpoint", "/v1/completions", "status", "200"), 2),
                new PrometheusText.Sample("t_requests_total", Map.of("endpoint", "/weird \"path\"\\\n", "status", "404"),
                        1));
        assertThat(f.get("t_tokens_total").samples().getFirst().value()).isEqualTo(12);
        assertThat(f.get("t_ratio").type()).isEqualTo("gauge");
        assertThat(f.get("t_ratio").samples().getFirst().value()).isEqualTo(0.25);
        List<Double> buckets = f.get("t_seconds").samples().stream().map(PrometheusText.Sample::value).toList();
        // le 0.1, 0.5, 1, +Inf, then sum and count
        assertThat(buckets).containsExactly(1.0, 4.0, 4.0, 5.0, 0.05 + 0.9 + 7, 5.0);
        assertThat(h.count()).isEqualTo(5);
    }

    @Test
    void aCounterWithoutLabelsIsWrittenFromTheStart() throws Exception {
        Metrics m = new Metrics();
        m.counter("t_total", "Nothing yet.");
        assertThat(m.scrape()).isEqualTo("# HELP t_total Nothing yet.\n# TYPE t_total counter\nt_total 0\n");
        PrometheusText.parse(m.scrape());
    }

    @Test
    void badNamesAndBoundsAreRefused() {
        Metrics m = new Metrics();
        assertThatThrownBy(() -> m.counter("requests", "no _total")).hasMessageContaining("_total");
        assertThatThrownBy(() -> m.gauge("1bad", "x", () -> 0)).hasMessageContaining("invalid metric name");
        assertThatThrownBy(() -> m.histogram("h", "x", 1, 1)).hasMessageContaining("ascend");
        m.gauge("g", "x", () -> 0);
        assertThatThrownBy(() -> m.gauge("g", "x", () -> 1)).hasMessageContaining("twice");
    }

    @Test
    void theStrictReaderCatchesWhatTheFormatForbids() {
        // the checker must be able to fail: each of these breaks one rule
        for (String bad : List.of(
                "# TYPE a counter\na 1",                                       // no final newline
                "# TYPE a counter\na 1\n",                                     // no HELP
                "# HELP a x\n# TYPE a counter\nb 1\n",                         // sample of another family
                "# HELP a x\n# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n",  // a series twice
                "# HELP a x\n# TYPE a counter\na one\n",                       // not a number
                "# HELP a x\n# TYPE a counter\na{x=1} 1\n",                    // unquoted label value
                "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
                "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n")) {
            assertThatThrownBy(() -> PrometheusText.strict(bad)).as(bad).isInstanceOf(AssertionError.class);
        }
    }
}
