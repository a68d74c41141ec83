package dev.llamaj.cli;

import dev.llamaj.gguf.GGUFFile;
import dev.llamaj.gguf.Metadata;
import dev.llamaj.gguf.TensorInfo;
import dev.llamaj.gguf.ValueType;
import java.io.PrintStream;
import java.lang.reflect.Array;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/// `llama inspect`: prints a GGUF file's header, metadata and tensor table, and with `--hash` its SHA-256. It
/// reads only what it prints: a 1 TB file takes as long as a 1 MB one, unless hashed.
@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Prints the metadata and the tensor table of a GGUF file (and its SHA-256 with --hash).")
final class InspectCommand implements Callable<Integer> {
    private static final int ARRAY_PREVIEW = 8;
    private static final int STRING_PREVIEW = 160;

    @ParentCommand
    LlamaCommand parent;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--full", description = "print arrays and long strings in full")
    boolean full;

    @Option(names = "--hash", description = "also compute the file's SHA-256 (reads the whole file: progress on"
            + " stderr, Ctrl-C stops)")
    boolean hash;

    @Override
    public Integer call() throws Exception {
        PrintStream out = parent.out;
        try (GGUFFile file = GGUFFile.open(modelOptions.model())) {
            Metadata md = file.metadata();
            out.printf(Locale.ROOT, "%s: GGUF v%d, %d metadata keys, %d tensors, %,d bytes, data at %d, alignment %d%n",
                    file.path(), file.version(), md.keys().size(), file.tensors().size(), file.fileSize(),
                    file.dataOffset(), file.alignment());
            // only the header, metadata and tensor table are read unless --hash: the whole file could be a terabyte
            if (hash) {
                out.println("SHA-256: " + ModelOptions.sha256Of(file.path(), parent.err));
            }
            out.println();
            out.println("metadata:");
            for (String key : md.keys()) {
                out.printf("  %-48s %-10s %s%n", key, typeName(md, key), render(md.find(key).orElseThrow(), md.type(key)));
            }
            out.println();
            out.println("tensors:");
            out.printf("  %-40s %-8s %-24s %14s %14s%n", "name", "type", "shape", "bytes", "offset");
            long total = 0;
            for (TensorInfo t : file.tensors()) {
                out.printf(Locale.ROOT, "  %-40s %-8s %-24s %,14d %14d%n", t.name(), t.type(), Arrays.toString(t.shape()),
                        t.byteSize(), t.offset());
                total += t.byteSize();
            }
            out.printf(Locale.ROOT, "  %d tensors, %,d bytes of weights%n", file.tensors().size(), total);
        }
        return 0;
    }

    private static String typeName(Metadata md, String key) {
        ValueType t = md.type(key);
        return t == ValueType.ARRAY ? "[" + ((Metadata.Array) md.find(key).orElseThrow()).elementType() + "]" : t.toString();
    }

    private String render(Object value, ValueType type) {
        if (value instanceof Metadata.Array a) {
            int n = a.length();
            int shown = full ? n : Math.min(n, ARRAY_PREVIEW);
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < shown; i++) {
                sb.append(i > 0 ? ", " : "").append(render(Array.get(a.values(), i), a.elementType()));
            }
            return sb.append(shown < n ? ", ... (" + n + " items)]" : "]").toString();
        }
        if (value instanceof String s) {
            String shown = full || s.length() <= STRING_PREVIEW ? s : s.substring(0, STRING_PREVIEW) + "...";
            return '"' + shown.replace("\\", "\\\\").replace("\n", "\\n").replace("\"", "\\\"") + '"';
        }
        if (type == ValueType.UINT64 && value instanceof Long l) {
            return Long.toUnsignedString(l);
        }
        if (type == ValueType.UINT32 && value instanceof Integer i) {
            return Integer.toUnsignedString(i);
        }
        return String.valueOf(value);
    }
}
