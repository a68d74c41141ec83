package dev.llamaj.cli.server;

import java.io.PrintStream;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/// The JDK HTTP server's connection limits and timeouts, which it reads from system properties once per JVM, when
/// the first server is created.
///
/// - `sun.net.httpserver.maxReqTime`: seconds a client has to send a whole request (headers and body) once it
///   has sent its first byte; a new connection that sends nothing is closed after this too.
/// - `sun.net.httpserver.idleInterval`: seconds an idle keep-alive connection stays open.
/// - `sun.net.httpserver.maxRspTime`: seconds a response may take (unset: no limit).
/// - `jdk.httpserver.maxConnections`: open connections at most; the server closes further ones at once.
/// - `sun.net.httpserver.maxReqHeaders` / `maxReqHeaderSize`: the JDK server closes the connection, unanswered,
///   when a request line and headers pass these (a client sees a reset). They are set to twice [#MAX_HEADER_LINES]
///   and [#MAX_HEADER_BYTES], which the server checks itself and answers 431 beyond: so a request head between
///   the two limits gets 431, and only one beyond twice the limit is cut off.
/// - `sun.net.httpserver.clockTick` / `timerMillis`: the timers above are checked every second.
///
/// Because the values are per JVM, a second server in the same JVM with different limits keeps the first one's;
/// [#apply] says so on the log.
final class HttpLimits {
    /// Header lines of a request at most (431 beyond).
    static final int MAX_HEADER_LINES = 100;
    /// Bytes of a request line and headers at most (431 beyond).
    static final int MAX_HEADER_BYTES = 64 * 1024;

    private static Map<String, String> applied;

    private HttpLimits() {}

    static synchronized void apply(ServerConfig config, PrintStream log) {
        Map<String, String> wanted = new LinkedHashMap<>();
        wanted.put("sun.net.httpserver.maxReqTime", seconds(config.headerTimeout()));
        wanted.put("sun.net.httpserver.idleInterval", seconds(config.idleTimeout()));
        wanted.put("sun.net.httpserver.maxRspTime",
                config.responseTimeout().isZero() ? "-1" : seconds(config.responseTimeout()));
        wanted.put("jdk.httpserver.maxConnections", String.valueOf(config.maxConnections()));
        wanted.put("sun.net.httpserver.maxIdleConnections", String.valueOf(config.maxConnections()));
        wanted.put("sun.net.httpserver.maxReqHeaders", String.valueOf(2 * MAX_HEADER_LINES));
        wanted.put("sun.net.httpserver.maxReqHeaderSize", String.valueOf(2 * MAX_HEADER_BYTES));
        wanted.put("sun.net.httpserver.clockTick", "1000");
        wanted.put("sun.net.httpserver.timerMillis", "1000");
        if (applied == null) {
            wanted.forEach(System::setProperty);
            applied = wanted;
        } else if (!applied.equals(wanted) && log != null) {
            log.println("llama: warning: the HTTP timeouts and connection limit are per JVM; keeping the first"
                    + " server's");
        }
    }

    private static String seconds(Duration d) {
        return String.valueOf(Math.max(1, (d.toMillis() + 999) / 1000));
    }
}
