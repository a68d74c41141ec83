package dev.llamaj.cli;

import java.util.function.BooleanSupplier;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/// Ctrl-C (SIGINT) handling while a command works: the handler decides whether it consumed the signal (it
/// stopped a generation); if not, the previous behaviour (ending the JVM) applies. Closing restores the
/// previous handler. `sun.misc.Signal` is the only JDK way to catch a signal without ending the process.
final class Interrupts implements AutoCloseable {
    private static final Signal INT = new Signal("INT");
    private final SignalHandler previous;

    private Interrupts(SignalHandler previous) {
        this.previous = previous;
    }

    static Interrupts onCtrlC(BooleanSupplier handler) {
        SignalHandler[] previous = new SignalHandler[1];
        previous[0] = Signal.handle(INT, signal -> {
            if (!handler.getAsBoolean() && previous[0] != null) {
                previous[0].handle(signal);
            }
        });
        return new Interrupts(previous[0]);
    }

    @Override
    public void close() {
        Signal.handle(INT, previous);
    }
}
