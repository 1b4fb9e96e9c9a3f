"""DynamoDB Local and the local API server, for the integration suite.

Session fixtures: DynamoDB Local on a free 127.0.0.1 port (stopped by its pid), the table created
from template.yaml, the search scenarios below written with the writer, tests/data loaded with
``fhir-encounter load``, and ``fhir-encounter serve`` against that table as a subprocess (stopped
by its pid with SIGTERM). Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from fhir_encounter_tools.cli import main
from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local, free_port
from fhir_encounter_tools.tables import create_table, dynamodb_client
from fhir_encounter.store.writer import EncounterWriter
from tests.support import ROOT, encounter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TABLE = "encounters-integration"
DATA = Path("tests/data")  # relative to ROOT, as a user would type it
READY_LINE = "Serving FHIR Encounter API on "
READY_SECONDS = 120.0  # an own DynamoDB Local must start and be seeded first
STOP_SECONDS = 30.0
MAX_PAGES = 500

# Search scenarios, written next to tests/data (ids and references start with "itest-", which
# tests/data does not use, so their expected results are exact).
PAT1 = [
    encounter(
        "itest-e1",
        subject="Patient/itest-pat-1",
        start="2021-03-10T09:00:00Z",
        end="2021-03-10T10:00:00Z",
        appointments=["Appointment/itest-appt-1"],
    ),
    # 2021-06-16T02:30Z to 05:00Z in UTC: on the 16th only when the offset is applied.
    encounter(
        "itest-e2",
        subject="Patient/itest-pat-1",
        start="2021-06-15T22:30:00-04:00",
        end="2021-06-16T01:00:00-04:00",
        appointments=[
            "Appointment/itest-appt-2",
            "Appointment/itest-appt-3",
            "https://ehr.example.org/fhir/Appointment/itest-appt-4",
        ],
    ),
    encounter(
        "itest-e3", subject="Patient/itest-pat-1", start="2022-01-05", status="in-progress"
    ),  # open end
    encounter("itest-e4", subject="Patient/itest-pat-1", status="planned"),  # no period
]
OTHERS = [
    encounter("itest-e5", subject="Group/itest-grp-1", start="2021-03-01", end="2021-03-31"),
    encounter(
        "itest-e6",
        subject="Patient/itest-shared",
        start="2020-02-02T08:00:00+05:30",
        end="2020-02-02T09:00:00+05:30",
    ),
    encounter("itest-e7", subject="Group/itest-shared", start="2020-02-03", end="2020-02-03"),
    encounter(
        "itest-e8",
        subject="https://ehr.example.org/fhir/Patient/itest-pat-2",
        start="2020-12-31T23:00:00Z",
        end="2021-01-01T01:00:00Z",
    ),
    encounter("itest-e9", subject="Patient/itest-pat-2", end="1999-05-01"),  # open start
]
# One patient for paging, in the documented order: period start (UTC), then id; no start first.
PAGER = [
    encounter("itest-p5", subject="Patient/itest-pager", status="planned"),
    encounter("itest-p3", subject="Patient/itest-pager", start="2023-01-01", end="2023-01-01"),
    encounter(
        "itest-p6",
        subject="Patient/itest-pager",
        start="2022-12-31T23:30:00-02:00",
        end="2023-01-01T00:30:00-02:00",
    ),
    encounter(
        "itest-p1", subject="Patient/itest-pager", start="2023-01-01T10:00:00Z", end="2023-01-01T11:00:00Z"
    ),
    encounter(
        "itest-p2", subject="Patient/itest-pager", start="2023-01-01T10:00:00Z", end="2023-01-01T11:00:00Z"
    ),
    encounter(
        "itest-p8",
        subject="Patient/itest-pager",
        start="2023-01-15T12:00:00.123Z",
        end="2023-01-15T12:30:00Z",
    ),
    encounter(
        "itest-p4",
        subject="Patient/itest-pager",
        start="2023-02-10T10:00:00+01:00",
        end="2023-02-10T11:00:00+01:00",
    ),
    encounter("itest-p7", subject="Patient/itest-pager", start="2023-03-01T00:00:00Z", status="in-progress"),
]
SCENARIOS = [*PAT1, *OTHERS, *PAGER]
PAGER_ORDER = [resource["id"] for resource in PAGER]


# ---- HTTP ---------------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never a proxy
Query = str | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)


class Api:
    """The served API over HTTP, with urllib."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(
        self, path_or_url: str, headers: Mapping[str, str] | None = None, method: str = "GET"
    ) -> Reply:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
        try:
            with _OPENER.open(request, timeout=30) as response:
                return Reply(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read().decode())

    def search(self, query: Query = "", headers: Mapping[str, str] | None = None) -> Reply:
        text = query if isinstance(query, str) else urlencode(query)
        return self.request(f"/Encounter?{text}", headers)

    def read(self, encounter_id: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request(f"/Encounter/{encounter_id}", headers)

    def walk(self, query: Query) -> list[dict[str, Any]]:
        """Every page of a search, from the first, following next links as a client would."""
        reply = self.search(query)
        pages = []
        for _ in range(MAX_PAGES):
            assert reply.status == 200, reply.text
            pages.append(reply.body)
            following = link(reply.body, "next")
            if following is None:
                return pages
            reply = self.request(following)
        raise AssertionError(f"more than {MAX_PAGES} pages")

    def ids(self, query: Query) -> list[str]:
        """Every match of a search, in order, walking 100 a page; checks total against the walk."""
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query)
        pages = self.walk([*pairs, ("_count", "100")])
        found = [entry_id for page in pages for entry_id in ids_of(page)]
        assert all(page["total"] == len(found) for page in pages)
        return found


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((item["url"] for item in bundle.get("link", []) if item["relation"] == relation), None)


def link_params(bundle: dict[str, Any], relation: str) -> dict[str, list[str]]:
    url = link(bundle, relation)
    assert url is not None, f"no {relation} link"
    return parse_qs(urlsplit(url).query)


def ids_of(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def issue(reply: Reply) -> dict[str, Any]:
    """The one issue of an OperationOutcome reply (checks the resource type and media type)."""
    assert reply.headers["Content-Type"].startswith("application/fhir+json"), reply.headers
    body = reply.body
    assert body["resourceType"] == "OperationOutcome", body
    assert len(body["issue"]) == 1
    found: dict[str, Any] = body["issue"][0]
    return found


# ---- processes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    status: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> CliRun:
    """``fhir-encounter ARGV`` in this process, from the repository root, with its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return CliRun(status, out.getvalue(), err.getvalue())


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def start_server(log_dir: Path, *args: str) -> Server:
    """``python -m fhir_encounter serve --port <free port> ARGS``, once it says it is serving."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / "stdout.txt", log_dir / "stderr.txt"
    environment = {k: v for k, v in os.environ.items() if k not in ("DYNAMODB_ENDPOINT_URL", "FHIR_BASE_URL")}
    command = [sys.executable, "-m", "fhir_encounter", "serve", "--port", str(free_port()), *args]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT, env=environment)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        for line in stdout.read_text(errors="replace").splitlines():
            if line.startswith(READY_LINE):
                return Server(process, line.removeprefix(READY_LINE).strip(), stdout, stderr)
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{stderr.read_text()}")
        time.sleep(0.05)
    stop_server(process)
    raise AssertionError(f"serve did not get ready within {READY_SECONDS:.0f} s:\n{stderr.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the server's pid; its exit status (it is killed if it does not stop in time)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"serve did not stop within {STOP_SECONDS:.0f} s of SIGTERM") from None
    return process.returncode


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    with dynamodb_local() as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="session")
def dynamodb(dynamodb_endpoint: str) -> DynamoDBClient:
    return dynamodb_client(dynamodb_endpoint)


@pytest.fixture(scope="session")
def first_load(dynamodb: DynamoDBClient, dynamodb_endpoint: str) -> CliRun:
    """The table from template.yaml, the scenarios, then ``fhir-encounter load tests/data``."""
    create_table(dynamodb, TABLE, ROOT / "template.yaml")
    EncounterWriter(dynamodb, TABLE).write(json.loads(json.dumps(SCENARIOS)))
    return run_cli("load", "--endpoint-url", dynamodb_endpoint, "--table", TABLE, str(DATA))


@pytest.fixture(scope="session")
def server(
    first_load: CliRun, dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("serve"), "--endpoint-url", dynamodb_endpoint, "--table", TABLE
    )
    try:
        yield running
    finally:
        stop_server(running.process)


@pytest.fixture(scope="session")
def api(server: Server) -> Api:
    return Api(server.base_url)
