package dev.llamaj.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.constantpool.ClassEntry;
import java.lang.classfile.constantpool.PoolEntry;
import java.lang.classfile.constantpool.Utf8Entry;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/// No network, by construction: the classes of `gguf-loader`, `tokenizer`, `chat-template` and `engine` (packages
/// `dev.llamaj.gguf`, `dev.llamaj.tokenizer`, `dev.llamaj.template`, `dev.llamaj.engine` and below) must not
/// refer to any networking API, and in `cli` only `serve` may. Every class of those modules is read from the
/// built class directories or jars on the test class path with `java.lang.classfile`, and every entry of its
/// constant pool is checked: class references, and the UTF-8 entries that hold field and method descriptors,
/// generic signatures, annotation types and string constants (a class name for reflection). The checker itself
/// is tested on generated classes.
class NoNetworkTest {
    /// Packages (internal names) that are networking: sockets, URLs, HTTP, SSL, RMI, JNDI (LDAP, DNS).
    private static final List<String> NETWORK_PACKAGES = List.of("java/net/", "javax/net/", "jdk/net/", "sun/net/",
            "com/sun/net/", "java/rmi/", "javax/rmi/", "javax/naming/", "jdk/internal/net/");
    /// Networking classes outside those packages.
    private static final List<String> NETWORK_CLASSES = List.of("java/nio/channels/SocketChannel",
            "java/nio/channels/ServerSocketChannel", "java/nio/channels/DatagramChannel",
            "java/nio/channels/AsynchronousSocketChannel", "java/nio/channels/AsynchronousServerSocketChannel",
            "java/nio/channels/NetworkChannel", "java/nio/channels/MulticastChannel");

    /// What in one class file refers to the network: internal names or descriptors, deduplicated and sorted.
    static List<String> networkReferences(byte[] classFile) {
        ClassModel model = ClassFile.of().parse(classFile);
        TreeSet<String> found = new TreeSet<>();
        for (PoolEntry entry : model.constantPool()) {
            if (entry instanceof ClassEntry c && isNetwork(c.asInternalName())) {
                found.add(c.asInternalName());
            } else if (entry instanceof Utf8Entry u && isNetwork(u.stringValue())) {
                found.add(u.stringValue());
            }
        }
        return List.copyOf(found);
    }

    /// Whether `s` names a networking package or class, as an internal name (`java/net/Socket`), inside a
    /// descriptor or signature (`(Ljava/net/URL;)V`), or as a binary name in a string (`java.net.Socket`).
    static boolean isNetwork(String s) {
        String internal = s.replace('.', '/');
        for (String p : NETWORK_PACKAGES) {
            if (internal.startsWith(p) || internal.contains("L" + p) || internal.contains("[" + p)) {
                return true;
            }
        }
        for (String c : NETWORK_CLASSES) {
            if (internal.equals(c) || internal.contains("L" + c + ";") || internal.contains("L" + c + "<")) {
                return true;
            }
        }
        return false;
    }

    /// Where the classes of `someClass` were loaded from: a class directory or a jar.
    private static Path codeSource(String someClass) throws ClassNotFoundException, URISyntaxException {
        return Path.of(Class.forName(someClass).getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    /// Every class file under `location` (directory or jar) whose internal name starts with one of `prefixes`,
    /// by internal name.
    private static Map<String, byte[]> classes(Path location, List<String> prefixes) throws IOException {
        Map<String, byte[]> classes = new TreeMap<>();
        if (Files.isDirectory(location)) {
            try (Stream<Path> files = Files.walk(location)) {
                for (Path p : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".class"))::iterator) {
                    String name = location.relativize(p).toString().replace('\\', '/');
                    if (matches(name, prefixes)) {
                        classes.put(name.substring(0, name.length() - ".class".length()), Files.readAllBytes(p));
                    }
                }
            }
        } else {
            try (JarFile jar = new JarFile(location.toFile())) {
                for (JarEntry e : (Iterable<JarEntry>) jar.stream()::iterator) {
                    String name = e.getName().replaceFirst("^META-INF/versions/\\d+/", "");
                    if (name.endsWith(".class") && matches(name, prefixes)) {
                        try (InputStream in = jar.getInputStream(e)) {
                            classes.put(name.substring(0, name.length() - ".class".length()), in.readAllBytes());
                        }
                    }
                }
            }
        }
        return classes;
    }

    private static boolean matches(String name, List<String> prefixes) {
        return prefixes.stream().anyMatch(name::startsWith);
    }

    /// Violations in `classes`, except the allowed ones, as "class: references" lines.
    private static List<String> violations(Map<String, byte[]> classes, java.util.function.Predicate<String> allowed) {
        List<String> violations = new ArrayList<>();
        classes.forEach((name, bytes) -> {
            List<String> refs = networkReferences(bytes);
            if (!refs.isEmpty() && !allowed.test(name)) {
                violations.add(name + ": " + refs);
            }
        });
        return violations;
    }

    @Test
    void theLoaderTokenizerTemplatesAndEngineDoNotUseTheNetwork() throws Exception {
        Map<String, String> modules = Map.of(
                "dev.llamaj.gguf.GGUFFile", "dev/llamaj/gguf/",
                "dev.llamaj.tokenizer.Tokenizer", "dev/llamaj/tokenizer/",
                "dev.llamaj.template.ChatTemplate", "dev/llamaj/template/",
                "dev.llamaj.engine.LlamaModel", "dev/llamaj/engine/");
        int total = 0;
        List<String> violations = new ArrayList<>();
        for (Map.Entry<String, String> m : modules.entrySet()) {
            Path location = codeSource(m.getKey());
            Map<String, byte[]> classes = classes(location, List.of(m.getValue()));
            // Read the module's own classes, from its jar or class directory, not the test classes beside them.
            assertThat(classes).as("classes of %s in %s", m.getValue(), location).containsKey(
                    m.getKey().replace('.', '/'));
            total += classes.size();
            violations.addAll(violations(classes, _ -> false));
        }
        System.out.println("NoNetworkTest: " + total + " classes of gguf-loader, tokenizer, chat-template and engine checked");
        assertThat(total).isGreaterThan(50);
        assertThat(violations).as("classes that refer to a networking API").isEmpty();
    }

    /// In the command line, only `serve` (its command and the `server` package) may use the network.
    @Test
    void inTheCliOnlyServeUsesTheNetwork() throws Exception {
        Map<String, byte[]> classes = classes(codeSource("dev.llamaj.cli.Main"), List.of("dev/llamaj/"));
        assertThat(classes).containsKey("dev/llamaj/cli/ServeCommand");
        assertThat(networkReferences(classes.get("dev/llamaj/cli/ServeCommand"))).isNotEmpty();
        assertThat(violations(classes, name -> name.equals("dev/llamaj/cli/ServeCommand")
                || name.startsWith("dev/llamaj/cli/ServeCommand$") || name.startsWith("dev/llamaj/cli/server/")))
                .as("cli classes outside serve that refer to a networking API").isEmpty();
    }

    // ---- The checker, on generated classes ------------------------------------------------------------------

    private static final ClassDesc SOCKET = ClassDesc.of("java.net.Socket");

    /// A public class `test.Probe` with the members `members` adds.
    private static byte[] probe(java.util.function.Consumer<java.lang.classfile.ClassBuilder> members) {
        return ClassFile.of().build(ClassDesc.of("test.Probe"), cb -> {
            cb.withFlags(ClassFile.ACC_PUBLIC);
            members.accept(cb);
        });
    }

    @Test
    void theCheckerFindsASocketConstruction() {
        byte[] bytes = probe(cb -> cb.withMethodBody("run", MethodTypeDesc.of(ConstantDescs.CD_void), ClassFile.ACC_STATIC,
                code -> code.new_(SOCKET).dup()
                        .invokespecial(SOCKET, ConstantDescs.INIT_NAME, MethodTypeDesc.of(ConstantDescs.CD_void))
                        .pop().return_()));
        assertThat(networkReferences(bytes)).contains("java/net/Socket");
    }

    @Test
    void theCheckerFindsDescriptorsSignaturesAndReflectionNames() {
        byte[] field = probe(cb -> cb.withField("url", ClassDesc.of("java.net.URL"), ClassFile.ACC_PRIVATE));
        assertThat(networkReferences(field)).containsExactly("Ljava/net/URL;");

        byte[] parameter = probe(cb -> cb.withMethodBody("open",
                MethodTypeDesc.of(ConstantDescs.CD_void, ClassDesc.of("java.net.InetAddress").arrayType()),
                ClassFile.ACC_STATIC, code -> code.return_()));
        assertThat(networkReferences(parameter)).containsExactly("([Ljava/net/InetAddress;)V");

        byte[] channel = probe(cb -> cb.withMethodBody("open",
                MethodTypeDesc.of(ClassDesc.of("java.nio.channels.SocketChannel")), ClassFile.ACC_STATIC,
                code -> code.aconst_null().areturn()));
        assertThat(networkReferences(channel)).containsExactly("()Ljava/nio/channels/SocketChannel;");

        byte[] reflection = probe(cb -> cb.withMethodBody("load", MethodTypeDesc.of(ConstantDescs.CD_Object),
                ClassFile.ACC_STATIC, code -> code.ldc("java.net.http.HttpClient").areturn()));
        assertThat(networkReferences(reflection)).containsExactly("java.net.http.HttpClient");
    }

    @Test
    void theCheckerAcceptsAClassWithoutNetworking() {
        byte[] clean = probe(cb -> cb.withMethodBody("run",
                MethodTypeDesc.of(ConstantDescs.CD_void, ClassDesc.of("java.nio.file.Path")), ClassFile.ACC_STATIC,
                code -> code.ldc("network is not a word we look for").pop().return_()));
        assertThat(networkReferences(clean)).isEmpty();
        // Names that merely start like a networking package are not networking.
        assertThat(isNetwork("java/nio/channels/FileChannel")).isFalse();
        assertThat(isNetwork("dev/llamaj/engine/javanet")).isFalse();
        assertThat(isNetwork("java/net/Socket")).isTrue();
    }

    /// The test reads real classes: the checker must find the network in `serve`'s own server class.
    @Test
    void theCheckerFindsTheServerSocket() throws Exception {
        Map<String, byte[]> classes = classes(codeSource("dev.llamaj.cli.Main"), List.of("dev/llamaj/cli/server/"));
        List<String> all = new ArrayList<>();
        classes.values().forEach(b -> all.addAll(networkReferences(b)));
        assertThat(all).anyMatch(s -> s.startsWith("java/net/"));
    }
}
