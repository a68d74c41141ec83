package dev.llamaj.cli.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/// `serve --cors-origin`: preflights, the headers on every kind of response, and off by default.
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CorsTest {
    static final String APP = "https://app.example.com";

    static HttpResponse<String> preflight(TestServer t, String origin, String headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(t.base.resolve("/v1/chat/completions"))
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                .header("Origin", origin).header("Access-Control-Request-Method", "POST");
        if (headers != null) {
            b.header("Access-Control-Request-Headers", headers);
        }
        return t.client.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> withOrigin(TestServer t, String origin, String path, String body) throws Exception {
        HttpRequest.Builder b = t.request(path).header("Origin", origin);
        b = body == null ? b.GET() : b.header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        return t.client.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void allowedOriginsGetTheHeadersEverywhere() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().apiKey(TestServer.KEY)
                .corsOrigins(List.of(APP, "http://localhost:3000")).build())) {
            // the preflight needs no key, and allows the headers the page asked for
            HttpResponse<String> p = preflight(t, APP, "authorization, content-type");
            assertThat(p.statusCode()).isEqualTo(204);
            assertThat(p.headers().firstValue("Access-Control-Allow-Origin")).hasValue(APP);
            assertThat(p.headers().firstValue("Access-Control-Allow-Methods")).hasValue("GET, POST, OPTIONS");
            assertThat(p.headers().firstValue("Access-Control-Allow-Headers")).hasValue("authorization, content-type");
            assertThat(p.headers().firstValue("Access-Control-Max-Age")).hasValue("86400");
            assertThat(p.headers().allValues("Vary")).contains("Origin");
            // a hostile header list is not echoed
            assertThat(preflight(t, APP, "a b, c(d), ,").headers().firstValue("Access-Control-Allow-Headers"))
                    .hasValue("Authorization, Content-Type");
            // another origin: refused, without CORS headers
            HttpResponse<String> other = preflight(t, "https://evil.example", null);
            assertThat(other.statusCode()).isEqualTo(403);
            assertThat(other.headers().firstValue("Access-Control-Allow-Origin")).isEmpty();

            HttpResponse<String> models = withOrigin(t, "http://localhost:3000", "/v1/models", null);
            assertThat(models.statusCode()).isEqualTo(200);
            assertThat(models.headers().firstValue("Access-Control-Allow-Origin")).hasValue("http://localhost:3000");
            assertThat(models.headers().allValues("Vary")).contains("Origin");
            // errors carry them too, so the page can read the error
            HttpResponse<String> error = t.client.send(HttpRequest.newBuilder(t.base.resolve("/v1/models"))
                    .header("Origin", APP).GET().build(), HttpResponse.BodyHandlers.ofString());
            assertThat(error.statusCode()).isEqualTo(401);
            assertThat(error.headers().firstValue("Access-Control-Allow-Origin")).hasValue(APP);
            // and event streams
            HttpResponse<String> stream = withOrigin(t, APP, "/v1/completions",
                    "{\"prompt\": \"Once upon a time\", \"max_tokens\": 3, \"stream\": true}");
            assertThat(stream.statusCode()).isEqualTo(200);
            assertThat(stream.body()).endsWith("data: [DONE]\n\n");
            assertThat(stream.headers().firstValue("Access-Control-Allow-Origin")).hasValue(APP);
            // a request from an origin not allowed gets its answer, without the header (the browser hides it)
            HttpResponse<String> hidden = withOrigin(t, "https://evil.example", "/v1/models", null);
            assertThat(hidden.statusCode()).isEqualTo(200);
            assertThat(hidden.headers().firstValue("Access-Control-Allow-Origin")).isEmpty();
        }
    }

    @Test
    void anyOriginEchoesIt() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().corsOrigins(List.of("*")).build())) {
            HttpResponse<String> p = preflight(t, "https://whatever.example:8443", null);
            assertThat(p.statusCode()).isEqualTo(204);
            assertThat(p.headers().firstValue("Access-Control-Allow-Origin")).hasValue("https://whatever.example:8443");
            assertThat(p.headers().firstValue("Access-Control-Allow-Headers")).hasValue("Authorization, Content-Type");
        }
    }

    @Test
    void offByDefault() throws Exception {
        try (TestServer t = TestServer.start(TestServer.config().build())) {
            assertThat(preflight(t, APP, null).statusCode()).isEqualTo(405);
            HttpResponse<String> models = withOrigin(t, APP, "/v1/models", null);
            assertThat(models.headers().firstValue("Access-Control-Allow-Origin")).isEmpty();
            assertThat(models.headers().allValues("Vary")).isEmpty();
        }
    }

    @Test
    void badOriginsAreRefused() {
        for (String bad : List.of("", "example.com", "https://app.example.com/", "https://a.example/path", "*.example",
                "https://", "http://a b")) {
            assertThatThrownBy(() -> TestServer.config().corsOrigins(List.of(bad)).build())
                    .as(bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("--cors-origin '" + bad + "' is not an origin");
        }
    }
}
