import java.lang.reflect.Field;
import java.util.Optional;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * DynamoDB Local bound to one address, 127.0.0.1 unless {@code -Dloopback.host=ADDRESS} names
 * another (its own command line has no host option, and binds every interface), living no longer
 * than the process that started it. `sam local` passes the Docker bridge's address, so that the
 * function containers reach it and the network beyond the machine does not.
 *
 * <p>With {@code -Dloopback.parentPid=PID} it polls that process every {@value #POLL_MILLIS} ms
 * and exits as soon as it is gone, however it ended (SIGKILL included), so that DynamoDB Local
 * never outlives {@code fhir-encounter serve} or a test run. Without the property it watches the
 * process that launched it.
 */
public class LoopbackDynamoDBLocal {
    static final long POLL_MILLIS = 250;
    static final long STOP_MILLIS = 5000;

    public static void main(String[] args) throws Exception {
        ProcessHandle parent = parent();
        boolean isParent = isParent(parent);
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        watch(parent, isParent, proxy);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        String host = System.getProperty("loopback.host", "127.0.0.1");
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost(host);
        }
        proxy.start();
        proxy.join();
    }

    /** The process to outlive by no more than a poll; exits at once when it is already gone. */
    static ProcessHandle parent() {
        Long pid = Long.getLong("loopback.parentPid");
        Optional<ProcessHandle> found =
                pid == null ? ProcessHandle.current().parent() : ProcessHandle.of(pid);
        if (found.isEmpty() || !found.get().isAlive()) {
            System.err.println("LoopbackDynamoDBLocal: the parent process is gone; not starting");
            System.exit(1);
        }
        return found.get();
    }

    /**
     * Whether the watched process still runs: it exists (a handle remembers its process's start
     * time, so a reused pid does not count) and, when it was this process's parent, still is (one
     * that has exited but is not reaped yet is a zombie, and its children already have another).
     */
    static boolean alive(ProcessHandle parent, boolean isParent) {
        return parent.isAlive() && (!isParent || isParent(parent));
    }

    static boolean isParent(ProcessHandle process) {
        Optional<ProcessHandle> current = ProcessHandle.current().parent();
        return current.isPresent() && current.get().pid() == process.pid();
    }

    static void watch(ProcessHandle parent, boolean isParent, DynamoDBProxyServer proxy) {
        Thread watcher = new Thread(() -> {
            while (alive(parent, isParent)) {
                try {
                    Thread.sleep(POLL_MILLIS);
                } catch (InterruptedException stop) {
                    return;
                }
            }
            Thread halt = new Thread(() -> {
                try {
                    Thread.sleep(STOP_MILLIS);
                } catch (InterruptedException ignored) {
                    // halt anyway
                }
                Runtime.getRuntime().halt(1);
            }, "parent-gone-halt");
            halt.setDaemon(true);
            halt.start();
            try {
                proxy.stop();
            } catch (Exception ignored) {
                // exiting regardless
            }
            System.exit(0);
        }, "parent-watch");
        watcher.setDaemon(true);
        watcher.start();
    }
}
