package dev.llamaj.cli.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.DoubleSupplier;

/// The server's metrics, written in the Prometheus text exposition format (version 0.0.4) for `GET /metrics`.
///
/// Written here rather than with Micrometer or the Prometheus Java client: the server needs counters with a label
/// or two, gauges read at scrape time and a few fixed-bucket histograms, which is this one class; either library
/// would add a megabyte of jars and its own registry, naming and histogram rules for no more than that (the
/// README's Dependencies section says more). Recording is lock-free ([LongAdder], [DoubleAdder]), so the request
/// threads never wait for a scrape.
///
/// Families are written in the order they were registered; label sets within a family in sorted order, so two
/// scrapes of the same state are byte for byte equal.
final class Metrics {
    /// Every family, in registration order.
    private final List<Family> families = new ArrayList<>();

    /// A monotonically increasing count; its name ends in `_total`.
    Counter counter(String name, String help, String... labelNames) {
        Counter c = new Counter(name, help, labelNames);
        register(c);
        return c;
    }

    /// A value read when scraped.
    void gauge(String name, String help, DoubleSupplier value) {
        register(new Gauge(name, help, value));
    }

    /// A histogram with the given upper bounds (ascending; `+Inf` is added).
    Histogram histogram(String name, String help, double... bounds) {
        Histogram h = new Histogram(name, help, bounds);
        register(h);
        return h;
    }

    private synchronized void register(Family f) {
        for (Family other : families) {
            if (other.name.equals(f.name)) {
                throw new IllegalArgumentException("metric " + f.name + " registered twice");
            }
        }
        families.add(f);
    }

    /// The exposition text of every family.
    synchronized String scrape() {
        StringBuilder out = new StringBuilder(4096);
        for (Family f : families) {
            out.append("# HELP ").append(f.name).append(' ').append(escapeHelp(f.help)).append('\n');
            out.append("# TYPE ").append(f.name).append(' ').append(f.type()).append('\n');
            f.write(out);
        }
        return out.toString();
    }

    /// One metric family: a name, its help text and its samples.
    private abstract static sealed class Family permits Counter, Gauge, Histogram {
        final String name;
        final String help;

        Family(String name, String help) {
            if (!name.matches("[a-zA-Z_:][a-zA-Z0-9_:]*")) {
                throw new IllegalArgumentException("invalid metric name " + name);
            }
            this.name = name;
            this.help = help;
        }

        abstract String type();

        abstract void write(StringBuilder out);
    }

    static final class Counter extends Family {
        private final String[] labelNames;
        /// Label values (one string per label, in `labelNames` order) to count; sorted for a stable output.
        private final Map<List<String>, LongAdder> values = new ConcurrentSkipListMap<>(Metrics::compare);

        private Counter(String name, String help, String[] labelNames) {
            super(name, help);
            if (!name.endsWith("_total")) {
                throw new IllegalArgumentException("a counter's name ends in _total: " + name);
            }
            this.labelNames = labelNames.clone();
        }

        /// Adds one to the count of these label values.
        void inc(String... labelValues) {
            add(1, labelValues);
        }

        void add(long n, String... labelValues) {
            if (labelValues.length != labelNames.length) {
                throw new IllegalArgumentException(name + " takes " + labelNames.length + " labels");
            }
            values.computeIfAbsent(List.of(labelValues), _ -> new LongAdder()).add(n);
        }

        /// The current count of these label values (0 if never counted).
        long get(String... labelValues) {
            LongAdder a = values.get(List.of(labelValues));
            return a == null ? 0 : a.sum();
        }

        @Override
        String type() {
            return "counter";
        }

        @Override
        void write(StringBuilder out) {
            if (labelNames.length == 0 && values.isEmpty()) {
                out.append(name).append(" 0\n"); // a counter without labels exists from the start
                return;
            }
            values.forEach((labels, count) -> {
                out.append(name);
                labels(out, labelNames, labels);
                out.append(' ').append(count.sum()).append('\n');
            });
        }
    }

    static final class Gauge extends Family {
        private final DoubleSupplier value;

        private Gauge(String name, String help, DoubleSupplier value) {
            super(name, help);
            this.value = value;
        }

        @Override
        String type() {
            return "gauge";
        }

        @Override
        void write(StringBuilder out) {
            out.append(name).append(' ').append(number(value.getAsDouble())).append('\n');
        }
    }

    /// Cumulative buckets as Prometheus wants them: each bucket counts the observations at or below its bound.
    /// Observations are kept per bucket (not cumulated) and summed when written, so [#observe] touches one adder.
    static final class Histogram extends Family {
        private final double[] bounds;
        private final LongAdder[] buckets; // buckets[i] counts observations in (bounds[i-1], bounds[i]]; last: +Inf
        private final DoubleAdder sum = new DoubleAdder();

        private Histogram(String name, String help, double[] bounds) {
            super(name, help);
            for (int i = 1; i < bounds.length; i++) {
                if (!(bounds[i] > bounds[i - 1])) {
                    throw new IllegalArgumentException(name + ": bucket bounds must ascend");
                }
            }
            this.bounds = bounds.clone();
            this.buckets = new LongAdder[bounds.length + 1];
            for (int i = 0; i < buckets.length; i++) {
                buckets[i] = new LongAdder();
            }
        }

        void observe(double value) {
            observe(value, 1);
        }

        /// `count` observations of `value` at once (every token of a request at its mean time per token).
        void observe(double value, long count) {
            if (count <= 0 || Double.isNaN(value)) {
                return;
            }
            int i = 0;
            while (i < bounds.length && value > bounds[i]) {
                i++;
            }
            buckets[i].add(count);
            sum.add(value * count);
        }

        long count() {
            long n = 0;
            for (LongAdder b : buckets) {
                n += b.sum();
            }
            return n;
        }

        @Override
        String type() {
            return "histogram";
        }

        @Override
        void write(StringBuilder out) {
            long cumulative = 0;
            for (int i = 0; i < buckets.length; i++) {
                cumulative += buckets[i].sum();
                out.append(name).append("_bucket{le=\"")
                        .append(i < bounds.length ? number(bounds[i]) : "+Inf").append("\"} ")
                        .append(cumulative).append('\n');
            }
            out.append(name).append("_sum ").append(number(sum.sum())).append('\n');
            out.append(name).append("_count ").append(cumulative).append('\n');
        }
    }

    private static void labels(StringBuilder out, String[] names, List<String> values) {
        if (names.length == 0) {
            return;
        }
        out.append('{');
        for (int i = 0; i < names.length; i++) {
            if (i > 0) {
                out.append(',');
            }
            out.append(names[i]).append("=\"").append(escapeLabel(values.get(i))).append('"');
        }
        out.append('}');
    }

    private static int compare(List<String> a, List<String> b) {
        for (int i = 0; i < Math.min(a.size(), b.size()); i++) {
            int c = a.get(i).compareTo(b.get(i));
            if (c != 0) {
                return c;
            }
        }
        return Integer.compare(a.size(), b.size());
    }

    /// A sample value as the format wants it: Go's float syntax, `+Inf`, `-Inf`, `NaN`.
    static String number(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "+Inf" : "-Inf";
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString((long) d);
        }
        return String.format(Locale.ROOT, "%s", d).replace("E", "e");
    }

    /// Label values escape backslash, double quote and line feed.
    static String escapeLabel(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    /// Help text escapes backslash and line feed.
    static String escapeHelp(String s) {
        return s.replace("\\", "\\\\").replace("\n", "\\n");
    }
}
