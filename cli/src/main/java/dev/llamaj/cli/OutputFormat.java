package dev.llamaj.cli;

/// `--output-format`: text for people (the default), or one JSON object for scripts.
enum OutputFormat {
    text, json
}
