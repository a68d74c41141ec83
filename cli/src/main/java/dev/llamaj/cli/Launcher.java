package dev.llamaj.cli;

import java.io.File;
import java.lang.management.ManagementFactory;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The entry point of {@code llama.jar}, compiled for Java 8 so that any JVM can load it.
 *
 * <p>It does two things before handing over to {@link Main}. On a JVM older than 25 it prints one line naming the
 * required version (instead of an {@code UnsupportedClassVersionError}). And since {@code java -jar} runs on the
 * class path, where incubator modules are not resolved and no manifest attribute can add them, it re-executes
 * the same JVM, with the same JVM options, once more with {@code --add-modules jdk.incubator.vector} when the
 * Vector API module is missing from the boot layer. The child inherits standard input, output and error, and
 * its exit code becomes this one's. An integrator who runs llamaj on the class path adds the flag to their own
 * {@code java} command instead.
 */
public final class Launcher {
    static final int REQUIRED_JAVA = 25;
    private static final String VECTOR_MODULE = "jdk.incubator.vector";
    private static final String RELAUNCHED = "llamaj.relaunched";
    static final String LAUNCHER_PID = "llamaj.launcher.pid";

    private Launcher() {
    }

    public static void main(String[] args) throws Exception {
        int feature = featureVersion();
        if (feature < REQUIRED_JAVA) {
            System.err.println("llama: llamaj needs Java " + REQUIRED_JAVA + " or newer, but this is Java "
                    + System.getProperty("java.version") + " (" + System.getProperty("java.home") + ")");
            System.exit(1);
        }
        if (!vectorModulePresent() && System.getProperty(RELAUNCHED) == null) {
            System.exit(relaunch(args));
        }
        Method main = Class.forName("dev.llamaj.cli.Main").getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) args);
        } catch (InvocationTargetException e) {
            throw (Exception) (e.getCause() instanceof Exception ? e.getCause() : e);
        }
    }

    /** This process's id ("pid@host" from the runtime bean: ProcessHandle is not in Java 8). */
    private static String ownPid() {
        String name = ManagementFactory.getRuntimeMXBean().getName();
        int at = name.indexOf('@');
        return at > 0 ? name.substring(0, at) : "";
    }

    private static int featureVersion() {
        String v = System.getProperty("java.specification.version", "0");
        if (v.startsWith("1.")) {
            v = v.substring(2);
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** ModuleLayer.boot().findModule(...), through reflection since this class is compiled for Java 8. */
    private static boolean vectorModulePresent() throws Exception {
        Class<?> layerClass = Class.forName("java.lang.ModuleLayer");
        Object boot = layerClass.getMethod("boot").invoke(null);
        Object found = layerClass.getMethod("findModule", String.class).invoke(boot, VECTOR_MODULE);
        return (Boolean) found.getClass().getMethod("isPresent").invoke(found);
    }

    /** sun.misc.Signal.handle through reflection: ignore the signal ({@code action == null}) or run an action. */
    private static void handleSignal(String name, final Runnable action) {
        try {
            Class<?> signalClass = Class.forName("sun.misc.Signal");
            Class<?> handlerClass = Class.forName("sun.misc.SignalHandler");
            Object handler = action == null ? handlerClass.getField("SIG_IGN").get(null)
                    : java.lang.reflect.Proxy.newProxyInstance(handlerClass.getClassLoader(), new Class<?>[] {handlerClass},
                            new java.lang.reflect.InvocationHandler() {
                                @Override
                                public Object invoke(Object proxy, Method method, Object[] args) {
                                    if (method.getName().equals("handle")) {
                                        action.run();
                                    }
                                    return null;
                                }
                            });
            Object signal = signalClass.getConstructor(String.class).newInstance(name);
            signalClass.getMethod("handle", signalClass, handlerClass).invoke(null, signal, handler);
        } catch (Exception | LinkageError e) {
            // without signal handling the child still runs; only Ctrl-C behaviour is less polite
        }
    }

    /**
     * JVM options that keep the heap small, unless the user chose a collector or heap sizes: the serial collector,
     * a small initial heap, and a heap that shrinks after a collection. The kernels allocate nothing once compiled,
     * but before that (the first seconds after loading) the Vector API's interpreted code allocates a few hundred
     * megabytes of short-lived vectors; with the default collector the heap grew to hold them and stayed committed
     * (~600 MiB for a 1B model), which is resident memory no later work needs.
     */
    static List<String> memoryDefaults(List<String> jvmOptions) {
        boolean collector = false;
        boolean heap = false;
        for (String option : jvmOptions) {
            if (option.startsWith("-XX:+Use") && option.endsWith("GC")) {
                collector = true;
            }
            if (option.startsWith("-Xms") || option.startsWith("-Xmx") || option.startsWith("-XX:MaxHeapFreeRatio")
                    || option.startsWith("-XX:MinHeapFreeRatio") || option.startsWith("-XX:InitialHeapSize")
                    || option.startsWith("-XX:MaxHeapSize")) {
                heap = true;
            }
        }
        List<String> defaults = new ArrayList<String>();
        if (!collector) {
            defaults.add("-XX:+UseSerialGC");
        }
        if (!heap) {
            defaults.add("-Xms32m");
            defaults.add("-XX:MinHeapFreeRatio=5");
            defaults.add("-XX:MaxHeapFreeRatio=20");
        }
        return defaults;
    }

    private static int relaunch(String[] args) throws Exception {
        List<String> command = new ArrayList<String>();
        command.add(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java");
        List<String> jvmOptions = ManagementFactory.getRuntimeMXBean().getInputArguments();
        command.addAll(memoryDefaults(jvmOptions));
        command.addAll(jvmOptions);
        command.add("--add-modules=" + VECTOR_MODULE);
        command.add("--enable-native-access=ALL-UNNAMED");
        command.add("-D" + RELAUNCHED + "=true");
        // the child exits when this process ends, even by SIGKILL, which no handler here sees (Main watches it)
        command.add("-D" + LAUNCHER_PID + "=" + ownPid());
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(Launcher.class.getName());
        command.addAll(Arrays.asList(args));
        final Process child = new ProcessBuilder(command).inheritIO().start();
        // Ctrl-C reaches the child through the terminal's process group and the child decides what it means
        // (stop an answer, or end); this JVM must not die first and leave the child behind. SIGTERM, sent to
        // this process only, is passed on.
        handleSignal("INT", null);
        handleSignal("TERM", new Runnable() {
            @Override
            public void run() {
                child.destroy();
            }
        });
        while (true) {
            try {
                return child.waitFor();
            } catch (InterruptedException e) {
                // keep waiting: Ctrl-C reaches the child through the process group and it decides how to end
            }
        }
    }
}
