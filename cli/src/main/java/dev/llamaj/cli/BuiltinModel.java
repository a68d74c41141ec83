package dev.llamaj.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/// The demo model inside `llama.jar`: Karpathy's 1 MB `stories260K` (MIT, see `stories260K.LICENSE.txt` beside
/// the resource), used when a command is given no `--model`, or `--model builtin:stories260K`. It lets the
/// README's first command work on a fresh clone with nothing downloaded.
///
/// The loader memory-maps a file, and a resource inside a jar is not one: the model is copied once to a cache
/// file whose name carries its SHA-256 (`stories260K-047bf464.gguf`), and later runs map that file. The file is
/// checked against the digest on every use (1.2 MB: a few milliseconds) and written anew when it is missing or
/// differs, through a temporary file in the same directory renamed into place, so that two processes starting
/// at once, or one killed half-way, never leave a partial model where the other looks.
final class BuiltinModel {
    private BuiltinModel() {}

    /// The prefix that names a built-in model in `--model`.
    static final String PREFIX = "builtin:";
    /// The only built-in model.
    static final String NAME = "stories260K";
    static final String RESOURCE = "/dev/llamaj/cli/models/stories260K.gguf";
    /// The resource's SHA-256 (the file in `../shared/models`; `BuiltinModelTest` checks they agree).
    static final String SHA256 = "047bf46455a544931cff6fef14d7910154c56afbc23ab1c5e56a72e69912c04b";
    /// The chat template the built-in model chats with: it has none of its own, being a story writer.
    static final String CHAT_TEMPLATE = "plain";
    /// Overrides where the cache file goes (tests use it; so can a user whose home is read-only).
    static final String CACHE_DIR_PROPERTY = "llamaj.cache.dir";

    /// Whether `--model VALUE` names a built-in model (known or not: an unknown name is an error, not a file).
    static boolean isBuiltin(String value) {
        return value == null || value.startsWith(PREFIX);
    }

    /// The file of the built-in model that `value` names (null: the default one), extracted if needed.
    ///
    /// @throws IllegalArgumentException for an unknown built-in name
    /// @throws IOException if no cache directory can be written, or the jar's copy is damaged
    static Path resolve(String value) throws IOException {
        if (value != null && !value.equals(PREFIX + NAME)) {
            throw new IllegalArgumentException("--model " + value + ": no such built-in model (built-in: "
                    + PREFIX + NAME + ")");
        }
        return extract(cacheDirectories());
    }

    /// Where the cache file may go, in order: `-Dllamaj.cache.dir`, `$XDG_CACHE_HOME/llamaj`,
    /// `~/.cache/llamaj`, and the temporary directory (per user, since it is shared).
    static List<Path> cacheDirectories() {
        List<Path> dirs = new ArrayList<>();
        String property = System.getProperty(CACHE_DIR_PROPERTY);
        if (property != null && !property.isBlank()) {
            dirs.add(Path.of(property));
            return dirs; // asked for explicitly: no silent fallback elsewhere
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) {
            dirs.add(Path.of(xdg, "llamaj"));
        }
        String home = System.getProperty("user.home");
        if (home != null && !home.isBlank() && !home.equals("?")) {
            dirs.add(Path.of(home, ".cache", "llamaj"));
        }
        dirs.add(Path.of(System.getProperty("java.io.tmpdir"), "llamaj-" + System.getProperty("user.name", "user")));
        return dirs;
    }

    /// The verified cache file in the first of `dirs` that can hold it.
    static Path extract(List<Path> dirs) throws IOException {
        String fileName = NAME + "-" + SHA256.substring(0, 8) + ".gguf";
        IOException first = null;
        for (Path dir : dirs) {
            Path file = dir.resolve(fileName);
            try {
                if (Files.isRegularFile(file) && SHA256.equals(ModelOptions.sha256Of(file, null))) {
                    return file;
                }
                Files.createDirectories(dir);
                write(file);
                return file;
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        throw new IOException("cannot extract the built-in model " + NAME + " to " + dirs.getFirst()
                + (first != null ? ": " + first.getMessage() : "") + " (set -D" + CACHE_DIR_PROPERTY
                + "=DIR, or give --model FILE)");
    }

    /// Copies the resource to a temporary file beside `target`, checks its digest, and renames it into place.
    private static void write(Path target) throws IOException {
        Path temp = Files.createTempFile(target.getParent(), NAME + "-", ".part");
        try {
            MessageDigest digest = sha256();
            try (InputStream resource = BuiltinModel.class.getResourceAsStream(RESOURCE)) {
                if (resource == null) {
                    throw new IOException("the built-in model is missing from this build (" + RESOURCE + ")");
                }
                try (InputStream in = new DigestInputStream(resource, digest);
                     OutputStream out = Files.newOutputStream(temp)) {
                    in.transferTo(out);
                }
            }
            String actual = HexFormat.of().formatHex(digest.digest());
            if (!actual.equals(SHA256)) {
                throw new IOException("the built-in model in this jar is damaged (SHA-256 " + actual + ", expected "
                        + SHA256 + ")");
            }
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every Java platform provides SHA-256", e);
        }
    }
}
