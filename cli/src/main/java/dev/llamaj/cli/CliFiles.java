package dev.llamaj.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/// Input and output files of the commands, with errors that say what is wrong with the file: missing, a
/// directory, not a regular file (`/dev/zero` never ends), too large, or the device full. Before, everything that
/// was not a regular file was reported as "no such file".
final class CliFiles {
    private CliFiles() {}

    /// Checks that `path` is a regular file to read (JSONL inputs are read more than once, so a pipe or device
    /// will not do).
    static void requireRegularFile(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            return;
        }
        if (Files.isDirectory(path)) {
            throw new IOException(path + ": is a directory");
        }
        if (Files.exists(path)) {
            throw new IOException(path + ": not a regular file (a device, pipe or socket)");
        }
        throw new NoSuchFileException(path.toString());
    }

    /// Reads the whole of `path`, which may be a pipe or device (`<(command)`, `/dev/stdin`), but at most
    /// `maxBytes` bytes: more is an error naming `what` (so `/dev/zero` is an error, not an endless read).
    static byte[] readBounded(Path path, long maxBytes, String what) throws IOException {
        if (Files.isDirectory(path)) {
            throw new IOException(path + ": is a directory");
        }
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString());
        }
        if (Files.isRegularFile(path) && Files.size(path) > maxBytes) {
            throw new IOException(path + ": " + Files.size(path) + " bytes, more than the " + maxBytes + " a " + what
                    + " may have");
        }
        try (InputStream in = Files.newInputStream(path)) {
            byte[] bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 16, maxBytes + 1));
            if (bytes.length > maxBytes) {
                throw new IOException(path + ": not a regular file, and longer than the " + maxBytes + " bytes a "
                        + what + " may have");
            }
            return bytes;
        }
    }

    /// Whether `path` exists and is something other than a regular file or directory (a device such as
    /// `/dev/stdout` or `/dev/full`, a pipe): an output there is written in place, never replaced by renaming.
    static boolean isSpecial(Path path) {
        return Files.exists(path) && !Files.isRegularFile(path) && !Files.isDirectory(path);
    }

    /// `e`, from writing `path`, as one line naming the file: `out.json: no space left on device`.
    static IOException writeError(Path path, IOException e) {
        String reason = e instanceof FileSystemException f && f.getReason() != null ? f.getReason() : e.getMessage();
        if (e instanceof NoSuchFileException) {
            reason = "no such directory";
        } else if (reason == null) {
            reason = e.getClass().getSimpleName();
        } else if (!reason.isEmpty()) {
            reason = reason.substring(0, 1).toLowerCase(Locale.ROOT) + reason.substring(1);
        }
        return new IOException(path + ": " + reason, e);
    }

    /// Writes `text` to `path` (replacing it), with [#writeError]'s messages.
    static void writeString(Path path, String text) throws IOException {
        try {
            Files.writeString(path, text);
        } catch (IOException e) {
            throw writeError(path, e);
        }
    }
}
