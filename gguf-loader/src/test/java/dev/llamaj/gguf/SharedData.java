package dev.llamaj.gguf;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/// Locates the test data in `../shared` (system property `llamaj.shared`, set by the build). Tests that need it
/// call [#require], which skips the test with a message when the data is absent, as on a user's fresh clone.
public final class SharedData {
    private SharedData() {}

    public static Path root() {
        return Path.of(System.getProperty("llamaj.shared", "../shared")).toAbsolutePath().normalize();
    }

    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assumeTrue(Files.exists(p), "skipping: " + p + " not found (the shared test data is absent)");
        return p;
    }
}
