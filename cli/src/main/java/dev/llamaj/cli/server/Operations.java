package dev.llamaj.cli.server;

import java.io.PrintStream;

/// How an [OpenAiServer] is run in production, beside what it serves ([ServerConfig]): access logs, warm-up
/// before `/ready`, and hybrid routing to a fallback API.
///
/// @param accessLog  one JSON line per request goes here (id, method, path, status, route, token counts, queue
///                   wait, time to first token, total time); null to write the plain line on the server's log
///                   instead
/// @param logContent put the request's prompt or messages and the generated text in the access log lines; off
///                   by default, as prompts and answers are often confidential
/// @param warmup     before `/ready` answers 200, run one short generation, so that the first real request does
///                   not pay for the JIT and for faulting the weights in
/// @param fallback   where and when requests are escalated; null for never (the server then opens no outgoing
///                   connection at all)
public record Operations(PrintStream accessLog, boolean logContent, boolean warmup, Fallback fallback) {
    /// No access log, no warm-up, no fallback: what the server did before these existed.
    public static final Operations NONE = new Operations(null, false, false, null);
}
