package dev.llamaj.gguf;

import java.io.IOException;

/// A well-formed file whose content llamaj cannot run: another architecture, a tensor type without kernels, an
/// unknown tokenizer model. It lives in the lowest module so that the loader, the tokenizer and the engine can
/// all raise it.
public final class UnsupportedModelException extends IOException {
    public UnsupportedModelException(String message) {
        super(message);
    }
}
