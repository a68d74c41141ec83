package dev.llamaj.cli.server;

import java.util.LinkedHashMap;
import java.util.Map;

/// An error answered in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with its HTTP status.
///
/// Messages are written for the client: they name the offending field, never a file path or a stack trace.
final class ApiException extends Exception {
    private static final long serialVersionUID = 1L;

    final int status;
    final String type;
    final String param;
    final String code;

    ApiException(int status, String type, String param, String code, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /// 400: something in the request is wrong.
    static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, null, message);
    }

    /// 400 with a code.
    static ApiException invalid(String param, String code, String message) {
        return new ApiException(400, "invalid_request_error", param, code, message);
    }

    /// 400: a known field has the wrong JSON type.
    static ApiException wrongType(String param, String expected, Object got) {
        return new ApiException(400, "invalid_request_error", param, "invalid_type", "Invalid type for '" + param
                + "': expected " + expected + ", but got " + describe(got) + " instead.");
    }

    /// 400: a field asks for something this server does not do.
    static ApiException unsupported(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, "unsupported_parameter", message);
    }

    static ApiException notFound(String message, String code) {
        return new ApiException(404, "invalid_request_error", null, code, message);
    }

    static ApiException busy(String message) {
        return new ApiException(503, "server_error", null, "server_busy", message);
    }

    static ApiException shuttingDown() {
        return new ApiException(503, "server_error", null, "shutting_down", "The server is shutting down.");
    }

    static ApiException internal() {
        return new ApiException(500, "server_error", null, "internal_error",
                "The server had an error while processing your request.");
    }

    static String describe(Object v) {
        return switch (v) {
            case null -> "null";
            case String _ -> "a string";
            case Boolean _ -> "a boolean";
            case Number _ -> "a number";
            case java.util.List<?> _ -> "an array";
            case Map<?, ?> _ -> "an object";
            default -> "a value";
        };
    }

    /// The JSON body of the error.
    Map<String, Object> body() {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("message", getMessage());
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        return Map.of("error", error);
    }
}
