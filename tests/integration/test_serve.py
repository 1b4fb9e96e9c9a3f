"""``fhir-encounter serve`` itself: routing, errors, its request log, start-up failures, and running
its own DynamoDB Local (seeded, and stopped by pid on SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fhir_encounter_tools.devserver.dynamodb_local import free_port
from tests.support import (
    INTEGRATION_TABLE,
    ROOT,
    Api,
    CliRun,
    Server,
    ids_of,
    issue,
    json_log_lines,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.integration

LOG_SECONDS = 10.0


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
    assert reply.headers["Allow"] == "GET"
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
    running = start_server(tmp_path, "--table", "encounters-own")
    try:
        endpoint = re.search(r"DynamoDB Local \(in memory\) on (\S+)", running.output())
        assert endpoint is not None, running.output()
        assert accepts_connections(endpoint[1])
        java = child_pids(running.process.pid)
        assert java, "DynamoDB Local is not a child process of serve"

        reply = Api(running.base_url).search("patient=patient-0001&date=ge2020-01-01")
        assert reply.status == 200
        bundle = reply.body
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        assert bundle["total"] > 0
        assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/patient-0001"}
    finally:
        status = stop_server(running.process)
    left = [pid for pid in java if Path(f"/proc/{pid}").exists()]
    for pid in left:  # so that a failure here leaves no DynamoDB Local behind
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert status == 0, running.output()
    assert not accepts_connections(endpoint[1])


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
    assert [r for r in records if r.get("level") == "INFO"] == []  # the default level is WARNING


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
    return [record for record in json_log_lines(server.output()) if record.get("level") == "INFO"]
