package dev.llamaj.cli.server;

import java.net.URI;
import java.time.Duration;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;

/// Hybrid routing: an OpenAI-compatible API that requests are escalated to, and the rules that escalate them.
///
/// @param baseUrl          the API's base URL, as OpenAI SDKs take it (`https://api.example.com/v1`): requests go
///                         to `baseUrl + "/chat/completions"` and `baseUrl + "/completions"`
/// @param key              sent as `Authorization: Bearer KEY`; null for none. Never logged nor echoed
/// @param rules            when to escalate
/// @param minMeanLogprob   [Rule#LOW_CONFIDENCE]: escalate when the mean log-probability of the generated tokens
///                         is below this (negative infinity: never)
/// @param minTokenLogprob  [Rule#LOW_CONFIDENCE]: escalate when any generated token's log-probability is below
///                         this (negative infinity: never)
/// @param timeout          how long the fallback has to answer (its whole answer, or the start of a stream)
/// @param model            the `model` field sent to the fallback; null to send the client's unchanged
public record Fallback(URI baseUrl, String key, Set<Rule> rules, double minMeanLogprob, double minTokenLogprob,
                       Duration timeout, String model) {
    public Fallback {
        Objects.requireNonNull(baseUrl, "baseUrl");
        String scheme = baseUrl.getScheme();
        if (scheme == null || !(scheme.equalsIgnoreCase("http") || scheme.equalsIgnoreCase("https"))
                || baseUrl.getHost() == null) {
            throw new IllegalArgumentException("--fallback-url must be an http:// or https:// URL with a host, got "
                    + baseUrl);
        }
        if (baseUrl.getRawQuery() != null || baseUrl.getRawFragment() != null) {
            throw new IllegalArgumentException("--fallback-url must not have a query or fragment: " + baseUrl);
        }
        rules = rules.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(rules));
        if (rules.isEmpty()) {
            throw new IllegalArgumentException("--fallback-on needs at least one rule: " + Rule.names());
        }
        if (Double.isNaN(minMeanLogprob) || minMeanLogprob > 0 || Double.isNaN(minTokenLogprob)
                || minTokenLogprob > 0) {
            throw new IllegalArgumentException("--min-mean-logprob and --min-token-logprob must be 0 or below"
                    + " (log-probabilities are), got " + minMeanLogprob + " and " + minTokenLogprob);
        }
        if (rules.contains(Rule.LOW_CONFIDENCE) && minMeanLogprob == Double.NEGATIVE_INFINITY
                && minTokenLogprob == Double.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException("--fallback-on low-confidence needs --min-mean-logprob or"
                    + " --min-token-logprob");
        }
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("--fallback-timeout must be 1 second or more, got "
                    + timeout.toSeconds());
        }
        if (key != null && (key.isBlank() || key.chars().anyMatch(c -> c < 0x20 || c == 0x7f))) {
            throw new IllegalArgumentException("the fallback key is empty or has control characters");
        }
    }

    /// The endpoint URL for a path below the base (`chat/completions`).
    URI endpoint(String path) {
        String base = baseUrl.toString();
        return URI.create(base.endsWith("/") ? base + path : base + "/" + path);
    }

    @Override
    public String toString() {
        // never the key
        return "Fallback[" + baseUrl + ", rules=" + rules + ", key=" + (key == null ? "none" : "set") + "]";
    }

    /// Why a request is escalated; the names are those of `--fallback-on` and of the `reason` label in `/metrics`.
    public enum Rule {
        /// every slot is busy and the queue is full, or a queued request waited `--queue-timeout` (where the
        /// server would answer 503)
        QUEUE_FULL("queue-full"),
        /// the prompt does not fit in the slot's context (where the server would answer 400)
        TOO_LONG("too-long"),
        /// the local answer's token log-probabilities are below `--min-mean-logprob` or `--min-token-logprob`
        LOW_CONFIDENCE("low-confidence"),
        /// the request asked for JSON (`response_format`) and the local answer does not parse as JSON
        SCHEMA_FAILURE("schema-failure");

        public final String label;

        Rule(String label) {
            this.label = label;
        }

        /// The rules named in a comma-separated list (`queue-full,too-long`).
        public static Set<Rule> parse(String list) {
            EnumSet<Rule> rules = EnumSet.noneOf(Rule.class);
            for (String name : list.split(",", -1)) {
                String n = name.strip().toLowerCase(Locale.ROOT);
                Rule rule = Arrays.stream(values()).filter(r -> r.label.equals(n)).findFirst().orElseThrow(
                        () -> new IllegalArgumentException("--fallback-on: unknown rule '" + name.strip()
                                + "' (use " + names() + ")"));
                rules.add(rule);
            }
            return rules;
        }

        static String names() {
            return Arrays.stream(values()).map(r -> r.label).collect(Collectors.joining(", "));
        }
    }
}
