package dev.llamaj.gguf;

import java.io.IOException;

/// The bytes of a GGUF file are wrong: truncated, bad magic, inconsistent sizes or offsets, a value of the wrong
/// type. The message is one line that names the file, the object and the numbers involved.
public final class GGUFFormatException extends IOException {
    public GGUFFormatException(String message) {
        super(message);
    }
}
