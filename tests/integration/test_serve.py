"""``fhir-encounter serve`` itself: routing, errors, HTTP edge cases, its request log, start-up
failures, and running its own DynamoDB Local (seeded, stopped by pid on SIGTERM or SIGHUP, gone
with serve even after ``kill -9``, kept in a data directory, on a fixed port)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fhir_encounter_tools.devserver.dynamodb_local import free_port
from tests.support import (
    INTEGRATION_TABLE,
    READY_LINE,
    READY_SECONDS,
    ROOT,
    Api,
    CliRun,
    Server,
    encounter,
    ids_of,
    issue,
    json_log_lines,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.integration

LOG_SECONDS = 10.0
AUDIT_SERVICE = "fhir-encounter-audit"
GONE_SECONDS = 10.0  # DynamoDB Local polls its parent every 250 ms


def wait_for_line(path: Path, pattern: str) -> str:
    """The first line of ``path`` that matches, polling for a bounded time."""
    deadline = time.monotonic() + LOG_SECONDS
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if re.fullmatch(pattern, line):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no line like {pattern!r} in {path}")


def child_pids(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


def accepts_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((str(parts.hostname), int(parts.port or 80)), timeout=1):
            return True
    except OSError:
        return False


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, waiting to be reaped, has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_until_gone(pids: set[int]) -> set[int]:
    """The pids still running after up to GONE_SECONDS."""
    deadline = time.monotonic() + GONE_SECONDS
    while (left := {pid for pid in pids if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def java_children(pid: int) -> set[int]:
    """The DynamoDB Local processes that ``pid`` started."""
    found = set()
    for child in child_pids(pid):
        try:
            if b"LoopbackDynamoDBLocal" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except OSError:
            continue
    return found


def kill_left(pids: set[int]) -> None:
    """So that a failing test leaves no process behind."""
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def serve_in_own_group(log_dir: Path, *args: str) -> Iterator[Server]:
    """``serve --port <free> ARGS`` in its own process group (as make's is), once it is serving;
    on exit its group and any DynamoDB Local it started are killed if still there."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / "stdout.txt", log_dir / "stderr.txt"
    environment = {k: v for k, v in os.environ.items() if k not in ("DYNAMODB_ENDPOINT_URL", "FHIR_BASE_URL")}
    command = [sys.executable, "-m", "fhir_encounter_tools", "serve", "--port", str(free_port()), *args]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=ROOT, env=environment, start_new_session=True
        )
    java: set[int] = set()
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not (
            ready := [line for line in stdout.read_text().splitlines() if line.startswith(READY_LINE)]
        ):
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.05)
        java = java_children(process.pid)
        yield Server(process, ready[0].removeprefix(READY_LINE).strip(), stdout, stderr)
    finally:
        java |= java_children(process.pid)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        kill_left(java)


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fhir_encounter_tools", "serve", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("path", ["/Patient/1", "/", "/Encounter/a/b", "/encounter", "/Encounter/"])
def test_a_path_without_a_route_is_a_404_operation_outcome(api: Api, path: str) -> None:
    reply = api.request(path)
    assert reply.status == 404
    assert issue(reply)["code"] == "not-found"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/Encounter"), ("DELETE", "/Encounter/itest-e1"), ("PUT", "/Encounter/x")]
)
def test_another_method_on_a_known_path_is_a_405(api: Api, method: str, path: str) -> None:
    reply = api.request(path, method=method)
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD, OPTIONS"  # as the preflight's Allow
    assert issue(reply)["code"] == "not-supported"


def test_one_log_line_per_request_without_the_query_string(api: Api, server: Server) -> None:
    assert api.request("/Encounter/itest-log-probe?patient=itest-secret-value").status == 404
    wait_for_line(server.stderr, r"GET /Encounter/itest-log-probe 404 \d+\.\d ms")
    log = server.stderr.read_text()
    assert "itest-secret-value" not in log
    assert "?" not in log


def test_a_port_in_use_is_one_line_and_exit_1(server: Server) -> None:
    port = str(urlsplit(server.base_url).port)
    result = run_serve("--port", port, "--endpoint-url", "http://127.0.0.1:9", "--table", "unused")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "in use" in result.stderr


@pytest.mark.parametrize(
    ("where", "table", "says"),
    [("unreachable", "encounters", "cannot reach DynamoDB"), ("local", "no-such-table", "does not exist")],
    ids=["endpoint unreachable", "table missing"],
)
def test_a_backend_it_cannot_use_is_one_line_and_exit_1(
    dynamodb_endpoint: str, where: str, table: str, says: str
) -> None:
    endpoint = dynamodb_endpoint if where == "local" else f"http://127.0.0.1:{free_port()}"
    result = run_serve("--port", "0", "--endpoint-url", endpoint, "--table", table)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert says in result.stderr
    assert "Serving" not in result.stdout


def test_without_java_it_says_so_in_one_line_and_exits_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "DYNAMODB_ENDPOINT_URL")}
    env["PATH"] = str(tmp_path)  # no java on it
    result = run_serve("--port", "0", env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "Java" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_an_endpoint_it_runs_seeds_and_stops_its_own_dynamodb_local(tmp_path: Path) -> None:
    running_server = start_server(tmp_path, "--table", "encounters-own")
    try:
        endpoint = re.search(r"DynamoDB Local on (\S+) \(in memory", running_server.output())
        assert endpoint is not None, running_server.output()
        assert accepts_connections(endpoint[1])
        java = child_pids(running_server.process.pid)
        assert java, "DynamoDB Local is not a child process of serve"

        reply = Api(running_server.base_url).search("patient=patient-0001&date=ge2020-01-01")
        assert reply.status == 200
        bundle = reply.body
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        assert bundle["total"] > 0
        assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/patient-0001"}
    finally:
        status = stop_server(running_server.process)
    left = [pid for pid in java if Path(f"/proc/{pid}").exists()]
    for pid in left:  # so that a failure here leaves no DynamoDB Local behind
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert status == 0, running_server.output()
    assert not accepts_connections(endpoint[1])


def test_its_dynamodb_local_dies_with_serve_even_on_kill_9(tmp_path: Path) -> None:
    with serve_in_own_group(tmp_path, "--seed-count", "0") as server:
        java = java_children(server.process.pid)
        assert len(java) == 1, server.output()
        endpoint = re.search(r"DynamoDB Local on (\S+) ", server.output())
        assert endpoint is not None
        server.process.kill()
        server.process.wait()
        assert wait_until_gone(java) == set()
        assert not accepts_connections(endpoint[1])


def test_a_hangup_of_its_process_group_stops_serve_and_its_dynamodb_local(tmp_path: Path) -> None:
    """What closing the terminal of ``make run`` does."""
    with serve_in_own_group(tmp_path, "--seed-count", "0") as server:
        java = java_children(server.process.pid)
        assert len(java) == 1, server.output()
        os.killpg(server.process.pid, signal.SIGHUP)
        assert server.process.wait(timeout=30) == 0, server.output()
        assert "Stopping" in server.output()
        assert wait_until_gone(java) == set()


def test_its_dynamodb_local_heap_is_capped(tmp_path: Path) -> None:
    with serve_in_own_group(tmp_path, "--seed-count", "0") as server:
        (java,) = java_children(server.process.pid)
        arguments = Path(f"/proc/{java}/cmdline").read_bytes().split(b"\0")
    assert b"-Xmx512m" in arguments
    assert b"-XX:+UseSerialGC" in arguments


def test_a_data_dir_keeps_the_data_and_the_next_serve_reuses_it_without_seeding(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    own = ("--table", "encounters-kept", "--data-dir", str(data_dir), "--dynamodb-port", str(port))
    (tmp_path / "mine.ndjson").write_text(json.dumps(encounter("mine-1", subject="Patient/mine")) + "\n")
    first = start_server(tmp_path / "first", *own, "--seed-count", "20")
    try:
        lines = first.stdout.read_text().splitlines()
        assert f"DynamoDB Local on http://127.0.0.1:{port} (data in {data_dir})" in lines
        assert "Created table encounters-kept" in lines
        assert any(line.startswith("Seeded 20 synthetic Encounters") for line in lines)
        load = next(line for line in lines if line.startswith("Load your own Encounters: "))
        command = shlex.split(load.removeprefix("Load your own Encounters: "))
        assert command[1:] == [
            "load", "--endpoint-url", f"http://127.0.0.1:{port}", "--table", "encounters-kept", "PATH"
        ]  # fmt: skip
        loaded = subprocess.run(
            [*command[:-1], str(tmp_path / "mine.ndjson")],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "DYNAMODB_ENDPOINT_URL"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert Api(first.base_url).read("mine-1").status == 200
    finally:
        assert stop_server(first.process) == 0, first.output()
    assert (data_dir / "shared-local-instance.db").is_file()

    second = start_server(tmp_path / "second", *own, "--seed-count", "20")
    try:
        lines = second.stdout.read_text().splitlines()
        assert "Table encounters-kept was there already, with data: kept as it is, not seeded" in lines
        assert not any(line.startswith(("Seeded", "Created")) for line in lines)
        api = Api(second.base_url)
        assert api.read("mine-1").body["id"] == "mine-1"
        assert api.search("patient=patient-0001").body["total"] > 0  # seeded by the first run
    finally:
        assert stop_server(second.process) == 0, second.output()


def test_an_empty_table_in_a_data_dir_is_seeded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    own = ("--table", "encounters-empty", "--data-dir", str(data_dir))
    first = start_server(tmp_path / "first", *own, "--seed-count", "0")
    assert stop_server(first.process) == 0, first.output()
    second = start_server(tmp_path / "second", *own, "--seed-count", "5")
    try:
        lines = second.stdout.read_text().splitlines()
        assert "Table encounters-empty was there already, empty: seeding it" in lines
        assert any(line.startswith("Seeded 5 synthetic Encounters") for line in lines)
    finally:
        assert stop_server(second.process) == 0, second.output()


def test_a_dynamodb_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "DYNAMODB_ENDPOINT_URL"}
        result = run_serve("--port", "0", "--dynamodb-port", str(port), env=env)
    assert result.returncode == 1
    assert result.stderr == f"fhir-encounter: error: port {port} for DynamoDB Local is in use\n"
    assert "Serving" not in result.stdout


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ([], " serve --host 127.0.0.1 --port 3000"),
        (["DATA_DIR=run data", "DYNAMODB_PORT=8123"], " --data-dir 'run data' --dynamodb-port 8123"),
    ],
    ids=["defaults", "data dir and port"],
)
def test_make_run_passes_the_data_dir_and_the_dynamodb_port(variables: list[str], expected: str) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "fhir-encounter serve" in line)
    assert line.rstrip().endswith(expected)
    assert ("--data-dir" in line) == bool(variables)


# ---- HTTP at the edges, through the real functions ---------------------------------------------


def test_an_encoded_hyphen_in_the_path_reads_the_encounter(api: Api) -> None:
    reply = api.read("itest%2De1")
    assert reply.status == 200
    assert reply.body["id"] == "itest-e1"
    assert api.read("itest%252De1").status == 400  # decoded once: the id is itest%2De1


def test_head_of_a_read_has_the_get_headers_and_no_body(api: Api, server: Server) -> None:
    got = api.read("itest-e1")
    port = int(str(urlsplit(server.base_url).port))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"HEAD /Encounter/itest-e1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    assert (status_line.split()[1], body) == ("200", b"")
    assert headers["etag"] == got.headers["ETag"]
    assert headers["content-type"] == got.headers["Content-Type"]
    assert headers["content-length"] == str(len(got.text.encode()))


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_an_unsupported_method_is_a_501_operation_outcome(api: Api, server: Server, method: str) -> None:
    reply = api.request("/Encounter", method=method)
    assert reply.status == 501
    assert issue(reply)["code"] == "not-supported"
    wait_for_line(server.stderr, rf"{method} - 501 \d+\.\d ms")


# ---- many requests through one process, and the functions' logs ------------------------------------

REQUESTS_EACH = 250
READ_IDS = ["itest-e1", "itest-e5", "itest-p3", "nd-01", "single-01"]
# (query, total, entries on the first page)
SEARCHES = [
    ("patient=itest-pat-1", 4, 4),
    ("patient=itest-pager&_count=3", 8, 3),
    ("subject=Group/itest-grp-1", 1, 1),
    ("_id=itest-e1,itest-e5", 2, 2),
    ("appointment=itest-appt-1", 1, 1),
    ("patient=itest-pat-1&date=2021", 2, 2),
    ("patient=itest-pager&status=in-progress", 1, 1),
    ("patient=itest-nobody", 0, 0),
]


def test_hundreds_of_reads_and_searches_through_one_server_never_fail(api: Api, server: Server) -> None:
    """Each answer is the one expected, every time: no request in a long run answers 5xx (serve
    once answered 500 to every 100th request)."""
    wrong: list[tuple[int, str, int, int]] = []  # (request number, what, expected status, status)
    for n in range(REQUESTS_EACH):
        encounter_id = READ_IDS[n % len(READ_IDS)]
        match n % 5:
            case 3:
                what, expected, reply = (
                    "conditional read",
                    304,
                    api.read(encounter_id, {"If-None-Match": 'W/"1"'}),
                )
            case 4:
                what, expected, reply = "read of a missing id", 404, api.read(f"itest-missing-{n}")
            case _:
                what, expected, reply = "read", 200, api.read(encounter_id)
        if reply.status != expected or (expected == 200 and reply.body["id"] != encounter_id):
            wrong.append((n, what, expected, reply.status))
    for n in range(REQUESTS_EACH):
        query, total, entries = SEARCHES[n % len(SEARCHES)]
        reply = api.search(query)
        if reply.status != 200 or (reply.body["total"], len(ids_of(reply.body))) != (total, entries):
            wrong.append((REQUESTS_EACH + n, query, 200, reply.status))
    assert wrong == []
    records = json_log_lines(server.output())
    assert [r for r in records if r.get("level") in ("ERROR", "CRITICAL")] == []
    # The default level is WARNING; the audit logger (its own service) writes at INFO always.
    assert [r for r in records if r.get("level") == "INFO" and r.get("service") != AUDIT_SERVICE] == []


def test_log_level_info_shows_the_functions_json_logs_with_the_service_name(
    first_load: CliRun, dynamodb_endpoint: str, tmp_path: Path
) -> None:
    running = start_server(
        tmp_path, "--endpoint-url", dynamodb_endpoint, "--table", INTEGRATION_TABLE, "--log-level", "INFO"
    )
    try:
        assert Api(running.base_url).read("itest-missing").status == 404  # logged at INFO
        deadline = time.monotonic() + LOG_SECONDS
        while not (records := info_records(running)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        status = stop_server(running.process)
    assert status == 0, running.output()
    assert records, running.output()
    assert records[0]["service"] == "fhir-encounter"
    assert records[0]["function_name"] == "ReadEncounterFunction"


def info_records(server: Server) -> list[dict[str, object]]:
    """The functions' own INFO records (not the audit lines, which are at INFO at every level)."""
    return [
        record
        for record in json_log_lines(server.output())
        if record.get("level") == "INFO" and record.get("service") != AUDIT_SERVICE
    ]
