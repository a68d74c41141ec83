package dev.llamaj.cli.server;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/// Cross-origin resource sharing, for web pages that call the server from a browser (`serve --cors-origin`).
///
/// Off unless origins are configured. A request from an allowed origin gets `Access-Control-Allow-Origin` with
/// that origin (echoed even for `*`, so that pages sending credentials work too) and `Vary: Origin`, on every
/// response, errors and event streams included, so the page can read them. A browser's preflight (`OPTIONS` with
/// `Access-Control-Request-Method`) is answered here, before the API key is checked (browsers never send
/// credentials in a preflight): 204 with the methods, the headers the page asked for and how long to remember
/// it; 403 for an origin that is not allowed.
final class Cors {
    /// How long a browser may reuse a preflight's answer, in seconds.
    static final int MAX_AGE_SECONDS = 86400;
    private static final String METHODS = "GET, POST, OPTIONS";
    /// `scheme://host[:port]`, as browsers send `Origin` (no path, no trailing slash).
    private static final Pattern ORIGIN = Pattern.compile("[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\\s]+");
    /// Header names a page may ask for: tokens of RFC 9110.
    private static final Pattern HEADER_NAMES = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+(\\s*,\\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*");

    private final boolean any;
    private final Set<String> origins;

    Cors(List<String> configured) {
        this.any = configured.contains("*");
        this.origins = Set.copyOf(configured.stream().map(o -> o.toLowerCase(Locale.ROOT)).toList());
    }

    /// Checks a `--cors-origin` value: `*` or an origin such as `https://app.example.com` or `http://localhost:3000`.
    ///
    /// @throws IllegalArgumentException naming the value otherwise
    static void validate(String origin) {
        if (origin == null || !(origin.equals("*") || ORIGIN.matcher(origin).matches())) {
            throw new IllegalArgumentException("--cors-origin " + (origin == null ? "" : "'" + origin + "'")
                    + " is not an origin: give scheme://host[:port] (no path), or * for any");
        }
    }

    boolean enabled() {
        return any || !origins.isEmpty();
    }

    private boolean allows(String origin) {
        return origin != null && (any || origins.contains(origin.toLowerCase(Locale.ROOT)));
    }

    /// Sets the CORS headers of the response to `ex`, and answers it if it is a preflight.
    ///
    /// @return true if the exchange was answered (a preflight)
    boolean apply(HttpExchange ex, String method) throws java.io.IOException {
        if (!enabled()) {
            return false;
        }
        Headers request = ex.getRequestHeaders();
        Headers response = ex.getResponseHeaders();
        String origin = request.getFirst("Origin");
        response.add("Vary", "Origin");
        boolean allowed = allows(origin);
        if (allowed) {
            response.set("Access-Control-Allow-Origin", origin);
        }
        if (!method.equals("OPTIONS") || origin == null || request.getFirst("Access-Control-Request-Method") == null) {
            return false;
        }
        if (!allowed) {
            // no CORS headers: the browser refuses the page its request
            ex.sendResponseHeaders(403, -1);
            return true;
        }
        response.set("Access-Control-Allow-Methods", METHODS);
        String asked = request.getFirst("Access-Control-Request-Headers");
        if (asked != null && HEADER_NAMES.matcher(asked.strip()).matches()) {
            response.set("Access-Control-Allow-Headers", asked.strip());
        } else {
            response.set("Access-Control-Allow-Headers", "Authorization, Content-Type");
        }
        response.add("Vary", "Access-Control-Request-Headers");
        response.set("Access-Control-Max-Age", String.valueOf(MAX_AGE_SECONDS));
        ex.sendResponseHeaders(204, -1);
        return true;
    }
}
