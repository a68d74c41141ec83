package dev.llamaj.cli;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/// Reads a JSONL file line by line, numbering lines from 1, so a bad line can be reported by number and the
/// rest still read: a line that is not valid UTF-8 comes back with an error instead of ending the file. `\r\n`
/// line ends and a UTF-8 byte order mark at the start are accepted. Not thread-safe.
final class JsonLines implements Closeable {
    /// One line: its number and text, or the reason it could not be decoded (then `text` is null), and its
    /// length in bytes in the file (without the `\n`).
    record Line(int number, String text, String error, int bytes) {
        boolean isBlank() {
            return text != null && text.isBlank();
        }
    }

    private final InputStream in;
    private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    private int number;
    private boolean eof;

    JsonLines(Path path) throws IOException {
        CliFiles.requireRegularFile(path);
        this.in = new BufferedInputStream(Files.newInputStream(path), 1 << 16);
    }

    /// The next line, or null at the end of the file.
    Line next() throws IOException {
        if (eof) {
            return null;
        }
        buffer.reset();
        int b;
        while ((b = in.read()) >= 0 && b != '\n') {
            buffer.write(b);
        }
        if (b < 0) {
            eof = true;
            if (buffer.size() == 0) {
                return null;
            }
        }
        number++;
        byte[] bytes = buffer.toByteArray();
        int length = bytes.length;
        if (length > 0 && bytes[length - 1] == '\r') {
            length--;
        }
        int start = 0;
        if (number == 1 && length >= 3 && (bytes[0] & 0xff) == 0xEF && (bytes[1] & 0xff) == 0xBB
                && (bytes[2] & 0xff) == 0xBF) {
            start = 3;
        }
        try {
            String text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, start, length - start)).toString();
            return new Line(number, text, null, bytes.length);
        } catch (CharacterCodingException e) {
            return new Line(number, null, "not valid UTF-8", bytes.length);
        }
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
