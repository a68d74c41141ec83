package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.hawkular.agent.prometheus.text.TextPrometheusMetricDataParser;
import org.hawkular.agent.prometheus.types.Counter;
import org.hawkular.agent.prometheus.types.Gauge;
import org.hawkular.agent.prometheus.types.Histogram;
import org.hawkular.agent.prometheus.types.Metric;
import org.hawkular.agent.prometheus.types.MetricFamily;

/// Reads `/metrics` text twice: with Hawkular's Prometheus text-format parser (a library from Maven Central,
/// independent of this project), and with a strict reading of the format's rules written from the exposition
/// format's specification, which that parser does not enforce (it skips what it does not understand). Both must
/// agree on every sample.
final class PrometheusText {
    private PrometheusText() {}

    /// One sample: its series (name and sorted labels) and value.
    record Sample(String name, Map<String, String> labels, double value) {}

    /// A family as read: type and samples.
    record Family(String name, String type, List<Sample> samples) {}

    private static final String NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
    private static final Pattern HELP = Pattern.compile("# HELP (" + NAME + ") (.*)");
    private static final Pattern TYPE = Pattern.compile("# TYPE (" + NAME + ") (counter|gauge|histogram|summary|untyped)");
    private static final Pattern SAMPLE = Pattern.compile("(" + NAME + ")(\\{(.*)\\})? (\\S+)");
    private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\\\n]|\\\\[\\\\\"n])*)\"(,|$)");

    /// Parses strictly, checks the rules, compares with Hawkular's parser, and returns the families by name.
    static Map<String, Family> parse(String text) throws IOException {
        Map<String, Family> strict = strict(text);
        Map<String, Family> hawkular = hawkular(text);
        assertThat(hawkular.keySet()).as("the families both parsers found").isEqualTo(strict.keySet());
        for (Family f : strict.values()) {
            Family other = hawkular.get(f.name());
            assertThat(other.type()).as("type of " + f.name()).isEqualTo(f.type());
            assertThat(other.samples()).as("samples of " + f.name())
                    .containsExactlyInAnyOrderElementsOf(f.samples());
        }
        return strict;
    }

    /// The format's rules: every line a HELP, TYPE or sample line; a family's HELP and TYPE once, before its
    /// samples, which are contiguous; each series once; histograms with ascending cumulative buckets ending in
    /// `+Inf`, whose count equals `_count`; counters and bucket counts non-negative; a newline at the end.
    static Map<String, Family> strict(String text) {
        assertThat(text).as("ends with a line feed").endsWith("\n");
        Map<String, Family> families = new LinkedHashMap<>();
        Set<String> helped = new HashSet<>();
        Set<String> series = new HashSet<>();
        Family current = null;
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length - 1; i++) {
            String line = lines[i];
            String where = "line " + (i + 1) + ": " + line;
            Matcher m;
            if ((m = HELP.matcher(line)).matches()) {
                assertThat(helped.add(m.group(1))).as("one HELP per family, " + where).isTrue();
                assertThat(families).as("HELP before the samples, " + where).doesNotContainKey(m.group(1));
            } else if ((m = TYPE.matcher(line)).matches()) {
                assertThat(families).as("one TYPE per family, " + where).doesNotContainKey(m.group(1));
                current = new Family(m.group(1), m.group(2), new ArrayList<>());
                families.put(current.name(), current);
            } else if ((m = SAMPLE.matcher(line)).matches()) {
                assertThat(current).as("a sample after its family's TYPE, " + where).isNotNull();
                String name = m.group(1);
                String base = current.name();
                boolean belongs = current.type().equals("histogram")
                        ? name.equals(base + "_bucket") || name.equals(base + "_sum") || name.equals(base + "_count")
                        : name.equals(base);
                assertThat(belongs).as("a sample of the family just declared (%s), %s", base, where).isTrue();
                Map<String, String> labels = labels(m.group(3), where);
                double value = value(m.group(4), where);
                assertThat(series.add(name + labels)).as("each series once, " + where).isTrue();
                if (current.type().equals("counter") || name.endsWith("_bucket") || name.endsWith("_count")) {
                    assertThat(value).as("a count, " + where).isGreaterThanOrEqualTo(0);
                }
                current.samples().add(new Sample(name, labels, value));
            } else {
                throw new AssertionError("not a line of the Prometheus text format: " + where);
            }
        }
        for (Family f : families.values()) {
            assertThat(helped).as("HELP of " + f.name()).contains(f.name());
            if (f.type().equals("histogram")) {
                checkHistogram(f);
            }
        }
        return families;
    }

    private static void checkHistogram(Family f) {
        double bound = Double.NEGATIVE_INFINITY;
        double last = 0;
        Double count = null;
        for (Sample s : f.samples()) {
            if (s.name().endsWith("_bucket")) {
                String le = s.labels().get("le");
                assertThat(le).as("a bucket's le label in " + f.name()).isNotNull();
                double b = value(le, f.name());
                assertThat(b).as("buckets ascend in " + f.name()).isGreaterThan(bound);
                assertThat(s.value()).as("buckets are cumulative in " + f.name()).isGreaterThanOrEqualTo(last);
                bound = b;
                last = s.value();
            } else if (s.name().endsWith("_count")) {
                count = s.value();
            }
        }
        assertThat(bound).as("the last bucket of " + f.name() + " is +Inf").isEqualTo(Double.POSITIVE_INFINITY);
        assertThat(count).as("_count of " + f.name() + " equals its +Inf bucket").isEqualTo(last);
    }

    private static Map<String, String> labels(String text, String where) {
        Map<String, String> labels = new TreeMap<>();
        if (text == null) {
            return labels;
        }
        Matcher m = LABEL.matcher(text);
        int at = 0;
        while (at < text.length()) {
            assertThat(m.find(at) && m.start() == at).as("labels name=\"value\" separated by commas, " + where)
                    .isTrue();
            String value = m.group(2).replace("\\n", "\n").replace("\\\"", "\"").replace("\\\\", "\\");
            assertThat(labels.put(m.group(1), value)).as("each label once, " + where).isNull();
            at = m.end();
        }
        return labels;
    }

    private static double value(String s, String where) {
        return switch (s) {
            case "+Inf" -> Double.POSITIVE_INFINITY;
            case "-Inf" -> Double.NEGATIVE_INFINITY;
            case "NaN" -> Double.NaN;
            default -> {
                assertThat(s).as("a float, " + where).matches("-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?");
                yield Double.parseDouble(s);
            }
        };
    }

    /// Hawkular's reading, in the same shape.
    static Map<String, Family> hawkular(String text) throws IOException {
        Map<String, Family> families = new LinkedHashMap<>();
        TextPrometheusMetricDataParser parser = new TextPrometheusMetricDataParser(
                new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)));
        for (MetricFamily f; (f = parser.parse()) != null; ) {
            List<Sample> samples = new ArrayList<>();
            for (Metric m : f.getMetrics()) {
                Map<String, String> labels = new TreeMap<>(m.getLabels());
                switch (m) {
                    case Counter c -> samples.add(new Sample(f.getName(), labels, c.getValue()));
                    case Gauge g -> samples.add(new Sample(f.getName(), labels, g.getValue()));
                    case Histogram h -> {
                        for (Histogram.Bucket b : h.getBuckets()) {
                            Map<String, String> le = new TreeMap<>(labels);
                            le.put("le", b.getUpperBound() == Double.POSITIVE_INFINITY ? "+Inf"
                                    : Metrics.number(b.getUpperBound()));
                            samples.add(new Sample(f.getName() + "_bucket", le, b.getCumulativeCount()));
                        }
                        samples.add(new Sample(f.getName() + "_sum", labels, h.getSampleSum()));
                        samples.add(new Sample(f.getName() + "_count", labels, h.getSampleCount()));
                    }
                    default -> throw new AssertionError("unexpected metric type " + m.getClass());
                }
            }
            families.put(f.getName(), new Family(f.getName(), f.getType().name().toLowerCase(java.util.Locale.ROOT),
                    samples));
        }
        return families;
    }
}
