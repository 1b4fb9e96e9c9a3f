"""Test helpers: Encounter builders, the handlers under test, and invocation as API Gateway would."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from fhir_encounter.config import Settings
from fhir_encounter.runtime import LambdaHandler, Runtime, Store
from fhir_encounter.search.parameters import SEARCH_PARAMETERS
from fhir_encounter.smart import SmartDiscovery
from fhir_encounter_tools.cli import main as cli_main
from fhir_encounter_tools.devserver.dynamodb_local import free_port
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.environment import TEST_SECRET as TEST_SECRET
from tests.environment import TEST_TABLE as TEST_TABLE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ROOT = Path(__file__).resolve().parents[1]
TEST_SETTINGS = Settings.from_environment(TEST_ENVIRONMENT)
Response = tuple[int, dict[str, str], Any]


def encounter(
    encounter_id: str,
    *,
    subject: str | None = "Patient/p1",
    start: str | None = None,
    end: str | None = None,
    appointments: Sequence[str] = (),
    status: str = "finished",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    }
    if subject:
        resource["subject"] = {"reference": subject}
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if appointments:
        resource["appointment"] = [{"reference": ref} for ref in appointments]
    return resource


def load_function(function: str) -> ModuleType:
    """functions/<function>/app.py, imported from its file as Lambda would run it."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


READ = load_function("read_encounter")
SEARCH = load_function("search_encounters")
CAPABILITY = load_function("capability_statement")


def build_handlers(client: DynamoDBClient, settings: Settings = TEST_SETTINGS) -> dict[str, LambdaHandler]:
    """Each function's handler, composed as its app.py does, on ``client``: by API resource."""
    runtime = Runtime.from_settings(settings)
    store = Store.from_settings(settings, client)
    capability = CAPABILITY.create_handler(runtime, SmartDiscovery(settings))
    search = SEARCH.create_handler(runtime, store)
    return {
        "/Encounter/{id}": READ.create_handler(runtime, store),
        "/Encounter": search,
        "/Encounter/_search": search,
        "/metadata": capability,
        "/.well-known/smart-configuration": capability,
    }


_handlers: list[dict[str, LambdaHandler]] = []  # the handlers of the test's table (a stack)


@contextmanager
def handlers_on(
    client: DynamoDBClient, settings: Settings = TEST_SETTINGS
) -> Iterator[dict[str, LambdaHandler]]:
    """Makes ``invoke``, ``search`` and ``read`` use handlers composed on ``client`` while it lasts."""
    _handlers.append(build_handlers(client, settings))
    try:
        yield _handlers[-1]
    finally:
        _handlers.pop()


@contextmanager
def loaded_moto_table(
    *loads: list[dict[str, Any]], settings: Settings = TEST_SETTINGS
) -> Iterator[DynamoDBClient]:
    """A moto Encounter table from template.yaml, each of ``loads`` written in turn by one writer
    (10 ms apart, so that each load has its own meta.lastUpdated), the handlers composed on it
    while it lasts."""
    import boto3
    from moto import mock_aws

    from fhir_encounter.search.parameters import value_paths
    from fhir_encounter.store.writer import EncounterWriter
    from fhir_encounter_tools.tables import create_table

    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, TEST_TABLE, ROOT / "template.yaml")
        writer = EncounterWriter(client, TEST_TABLE, value_paths())
        for number, resources in enumerate(loads):
            if number:
                time.sleep(0.01)
            writer.write(json.loads(json.dumps(resources)))
        with handlers_on(client, settings):
            yield client


def invoke(event: dict[str, Any]) -> Response:
    """Pass an event to the handler that owns its resource; (status, headers, parsed body)."""
    return response_parts(lambda_response(event))


def lambda_response(event: dict[str, Any]) -> dict[str, Any]:
    """The handler's whole proxy response to ``event``, as Lambda would serialise it."""
    assert _handlers, "invoking needs the table fixture (or handlers_on)"
    # API Gateway sends every OPTIONS (a CORS preflight) to the capability function.
    resource = "/metadata" if event["httpMethod"] == "OPTIONS" else event["resource"]
    return _handlers[-1][resource](event, LocalContext())  # type: ignore[arg-type]


def response_parts(response: dict[str, Any]) -> Response:
    body = json.loads(response["body"]) if response.get("body") else None
    headers = {
        **response.get("headers", {}),
        **{k: v[0] for k, v in response.get("multiValueHeaders", {}).items()},
    }
    return response["statusCode"], headers, body


def search(
    query: str | Mapping[str, Sequence[str]] = "", headers: Mapping[str, str] | None = None
) -> Response:
    """Invoke search with a query string (``a=1&a=2``) or a multi-value dict."""
    if isinstance(query, str):
        query = parse_qs(query, keep_blank_values=True)
    return invoke(
        rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query, headers=headers)
    )


FORM = "application/x-www-form-urlencoded"


def search_by_post(
    body: str | bytes,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    *,
    base64_encoded: bool = False,
) -> Response:
    """Invoke POST /Encounter/_search with a form ``body`` (Content-Type: the form type unless
    ``headers`` say otherwise) and a URL query string; ``base64_encoded``: as API Gateway passes
    a binary body on."""
    data = body.encode() if isinstance(body, str) else body
    return invoke(
        rest_api_event(
            method="POST",
            path="/Encounter/_search",
            resource="/Encounter/_search",
            query=parse_qs(query, keep_blank_values=True),
            headers={"Content-Type": FORM, **(headers or {})},
            body=base64.b64encode(data).decode()
            if base64_encoded
            else data.decode("utf-8", "surrogateescape"),
            is_base64_encoded=base64_encoded,
        )
    )


def read(encounter_id: str, headers: Mapping[str, str] | None = None) -> Response:
    return invoke(
        rest_api_event(
            method="GET",
            path=f"/Encounter/{encounter_id}",
            resource="/Encounter/{id}",
            path_parameters={"id": encounter_id},
            headers=headers,
        )
    )


def ids_of(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


Writer = Callable[..., None]


def micros(text: str) -> int:
    """Microseconds since the epoch of an ISO instant that names its zone, computed with ``datetime``
    (independently of fhir_encounter.dates)."""
    from datetime import UTC, datetime, timedelta

    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# ---- the data set the event files (events/*.json) are written against -------------------------
# Search order is period start (UTC), then id; no start sorts first. For these Encounters:
#
#   enc-1006  (no period)                                       Patient/pat-1  Appointment/apt-4   planned
#   enc-1008  (no start) .. 2020-05-01                          Patient/pat-2
#   enc-1007  2020-12-31T23:30-05:00 .. 2021-01-01T01:00-05:00  Patient/pat-3
#   enc-1001  2021-03-01T09:00Z .. 09:30Z                       Patient/pat-1  Appointment/apt-1
#   enc-1009  2021-05-20T08:00Z .. 2021-06-05T17:00Z            Patient/pat-2
#   enc-1002  2021-06-15T10:00Z .. 11:00Z                       Patient/pat-1  Appointment/apt-2, apt-3
#   enc-1004  2021-06-20 .. 2021-06-21 (days)                   Patient/pat-2
#   enc-1005  2021-07-01T12:00Z .. 13:00Z                       Group/grp-7    Appointment/apt-3
#   enc-1003  2022-01-10T08:00+01:00 .. (no end)                Patient/pat-1                      in-progress
#
# Every other status is finished.

INVOKE_ENCOUNTERS: list[dict[str, Any]] = [
    encounter(
        "enc-1001",
        subject="Patient/pat-1",
        start="2021-03-01T09:00:00Z",
        end="2021-03-01T09:30:00Z",
        appointments=["Appointment/apt-1"],
    ),
    encounter(
        "enc-1002",
        subject="Patient/pat-1",
        start="2021-06-15T10:00:00Z",
        end="2021-06-15T11:00:00Z",
        appointments=["Appointment/apt-2", "Appointment/apt-3"],
    ),
    encounter("enc-1003", subject="Patient/pat-1", start="2022-01-10T08:00:00+01:00", status="in-progress"),
    encounter("enc-1004", subject="Patient/pat-2", start="2021-06-20", end="2021-06-21"),
    encounter(
        "enc-1005",
        subject="Group/grp-7",
        start="2021-07-01T12:00:00Z",
        end="2021-07-01T13:00:00Z",
        appointments=["Appointment/apt-3"],
    ),
    encounter("enc-1006", subject="Patient/pat-1", appointments=["Appointment/apt-4"], status="planned"),
    encounter(
        "enc-1007",
        subject="Patient/pat-3",
        start="2020-12-31T23:30:00-05:00",
        end="2021-01-01T01:00:00-05:00",
    ),
    encounter("enc-1008", subject="Patient/pat-2", end="2020-05-01"),
    encounter("enc-1009", subject="Patient/pat-2", start="2021-05-20T08:00:00Z", end="2021-06-05T17:00:00Z"),
]

# Every Encounter of INVOKE_ENCOUNTERS in search order.
INVOKE_ALL_IN_ORDER = [
    "enc-1006",
    "enc-1008",
    "enc-1007",
    "enc-1001",
    "enc-1009",
    "enc-1002",
    "enc-1004",
    "enc-1005",
    "enc-1003",
]


def invoke_encounter_by_id(encounter_id: str) -> dict[str, Any]:
    return next(resource for resource in INVOKE_ENCOUNTERS if resource["id"] == encounter_id)


# ---- the integration suite: scenarios, the served API over HTTP, the command and `serve` ---------
# (imported here, not at the top, so that this section could be appended on its own)


# The origin that serve (--cors-origin) and start-api (CORS_ALLOWED_ORIGINS) both allow in tests/sam.
PARITY_CORS_ORIGIN = "http://app.example.org:8080"
INTEGRATION_TABLE = "encounters-integration"
INTEGRATION_DATA = Path("tests/data")  # relative to ROOT, as a user would type it
READY_LINE = "Serving FHIR Encounter API on "
READY_SECONDS = 120.0  # an own DynamoDB Local must start and be seeded first
STOP_SECONDS = 30.0
MAX_PAGES = 500

# Search scenarios, written next to tests/data (ids and references start with "itest-", which
# tests/data does not use, so their expected results are exact).
SCENARIOS_PAT1 = [
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
SCENARIOS_OTHERS = [
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
SCENARIOS_PAGER = [
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
SCENARIOS = [*SCENARIOS_PAT1, *SCENARIOS_OTHERS, *SCENARIOS_PAGER]
PAGER_ORDER = [resource["id"] for resource in SCENARIOS_PAGER]

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
        self,
        path_or_url: str,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> Reply:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
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


def issue(reply: Reply) -> dict[str, Any]:
    """The one issue of an OperationOutcome reply (checks the resource type and media type)."""
    assert reply.headers["Content-Type"].startswith("application/fhir+json"), reply.headers
    body = reply.body
    assert body["resourceType"] == "OperationOutcome", body
    assert len(body["issue"]) == 1
    found: dict[str, Any] = body["issue"][0]
    return found


@dataclass(frozen=True)
class CliRun:
    status: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> CliRun:
    """``fhir-encounter ARGV`` in this process, from the repository root, with its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli_main(list(argv))
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
    """``python -m fhir_encounter_tools serve --port <free port> ARGS``, once it says it is serving."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / "stdout.txt", log_dir / "stderr.txt"
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DYNAMODB_ENDPOINT_URL", "ENCOUNTER_TABLE", "FHIR_BASE_URL")
    }
    command = [sys.executable, "-m", "fhir_encounter_tools", "serve", "--port", str(free_port()), *args]
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


def json_log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of a process's output (Powertools' log records)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
    return records


# ---- Bundles with urn:uuid references (as Synthea writes them), resolved without the loader -----

_UUID_URL_PREFIX = "urn:uuid:"


def bundle_resources_resolved(bundle: dict[str, Any]) -> list[Any]:
    """Each entry's resource as the loader must store it, by plain text replacement (independently
    of the loader): a resource without an id takes the uuid of its ``urn:uuid:`` fullUrl, and each
    ``"reference": "urn:uuid:X"`` becomes ``Type/id`` of the entry whose fullUrl is ``urn:uuid:X``
    (a reference that no entry has stays as it is). An entry without a resource gives None."""
    entries = [entry if isinstance(entry, dict) else {} for entry in bundle.get("entry", [])]
    resources = [json.loads(json.dumps(entry.get("resource"))) for entry in entries]
    targets: dict[str, str] = {}
    for entry, resource in zip(entries, resources, strict=True):
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url.startswith(_UUID_URL_PREFIX) and isinstance(resource, dict):
            resource.setdefault("id", full_url.removeprefix(_UUID_URL_PREFIX))
            targets[full_url] = f"{resource['resourceType']}/{resource['id']}"
    resolved = []
    for resource in resources:
        text = json.dumps(resource)
        for full_url, target in targets.items():
            text = text.replace(f'"reference": "{full_url}"', f'"reference": "{target}"')
        resolved.append(json.loads(text))
    return resolved


# ---- the event files' expected outcomes: events/*.json through lambda_handler (tests/invoke) and
# through `sam local` (tests/sam), on a table that holds INVOKE_ENCOUNTERS

EVENT_FILES = sorted((ROOT / "events").glob("*.json"))
EVENT_BASE = "https://abc123defg.execute-api.us-east-1.amazonaws.com/v1"  # the events' Host and stage
CURSOR = "<cursor>"


@dataclass(frozen=True)
class Found:
    """200 with the stored Encounter."""

    id: str


@dataclass(frozen=True)
class Page:
    """200 with a searchset Bundle; links as relation -> query string (a next cursor as <cursor>)."""

    ids: list[str]
    total: int | None  # None: the Bundle has no total (_total=none)
    links: dict[str, str]


@dataclass(frozen=True)
class Capabilities:
    """200 with the CapabilityStatement, listing these search parameters for Encounter."""

    search_params: list[str]


@dataclass(frozen=True)
class Preflight:
    """204, no body: the answer to a CORS preflight (its grant, when the settings allow the origin)."""

    allow_origin: str | None


@dataclass(frozen=True)
class Failure:
    """An OperationOutcome."""

    status: int
    code: str
    text: str


def first_page(ids: list[str], criteria: str = "") -> Page:
    """A one-page result at the default page size."""
    query = f"{criteria}&_count=10&_offset=0" if criteria else "_count=10&_offset=0"
    return Page(ids, len(ids), {"self": query, "first": query, "last": query})


PATIENT_1 = ["enc-1006", "enc-1001", "enc-1002", "enc-1003"]

EVENT_OUTCOMES: dict[str, Found | Page | Failure | Capabilities | Preflight] = {
    # CorsAllowedOrigins is empty by default (and in the tests): the preflight is answered, not granted.
    "capability_statement_preflight_search": Preflight(None),
    "capability_statement_metadata": Capabilities(list(SEARCH_PARAMETERS)),
    "read_encounter_found": Found("enc-1002"),
    "read_encounter_not_found": Failure(404, "not-found", "Unknown Encounter resource 'enc-9999'"),
    # The tests run with AuthMode iam: SMART discovery answers that it is not enabled.
    "capability_statement_smart_configuration": Failure(
        404, "not-found", "SMART on FHIR is not enabled on this server (its AuthMode is not smart)"
    ),
    "read_encounter_bad_id": Failure(
        400, "invalid", "Invalid Encounter id: a FHIR id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
    ),
    "search_encounters_all": first_page(INVOKE_ALL_IN_ORDER),
    "search_encounters_by_patient": first_page(PATIENT_1, "patient=Patient/pat-1"),
    "search_encounters_by_subject_group": first_page(["enc-1005"], "subject=Group/grp-7"),
    "search_encounters_by_appointment": first_page(["enc-1002", "enc-1005"], "appointment=Appointment/apt-3"),
    "search_encounters_by_status": first_page(["enc-1006", "enc-1003"], "status=planned,in-progress"),
    "search_encounters_us_core": first_page(PATIENT_1, "patient=pat-1&class=AMB"),
    # Every parameter of the registry, each matching everything (":missing=true,false" is either).
    "search_encounters_every_parameter": first_page(
        INVOKE_ALL_IN_ORDER, "&".join(f"{name}:missing=true,false" for name in SEARCH_PARAMETERS)
    ),
    "search_encounters_by_date_range": first_page(
        ["enc-1009", "enc-1002", "enc-1004"], "date=ge2021-06-01&date=lt2021-07-01"
    ),
    "search_encounters_paged": Page(
        ["enc-1001", "enc-1009", "enc-1002"],
        9,
        {
            "self": "_count=3&_offset=3",
            "first": "_count=3&_offset=0",
            "previous": "_count=3&_offset=0",
            "next": f"_count=3&_offset=6&_cursor={CURSOR}",
            "last": "_count=3&_offset=6",
        },
    ),
    "search_encounters_total_none": Page(
        ["enc-1006", "enc-1008", "enc-1007", "enc-1001"],
        None,
        {
            "self": "_count=4&_offset=0&_total=none",
            "first": "_count=4&_offset=0&_total=none",
            "next": f"_count=4&_offset=4&_total=none&_cursor={CURSOR}",
        },
    ),
    "search_encounters_bad_date": Failure(
        400,
        "invalid",
        "Invalid value for search parameter 'date': 'date' needs an optional prefix (eq, ne, gt, lt, ge, le, "
        "sa, eb, ap) and a FHIR date such as 2021, 2021-06, 2021-06-15 or 2021-06-15T10:30:00Z",
    ),
    "search_encounters_bad_count": Failure(
        400, "invalid", "Invalid value for search parameter '_count': must be a non-negative integer"
    ),
    "search_encounters_unknown_param_strict": Failure(
        400, "not-supported", "Unknown search parameter(s): _tag"
    ),
    "search_encounters_unknown_param_lenient": first_page(PATIENT_1, "patient=Patient/pat-1"),
    "search_encounters_sorted": first_page(PATIENT_1[::-1], "patient=Patient/pat-1&_sort=-date"),
    # _summary=true: the same Encounters, each subsetted; links keep _summary after the paging.
    "search_encounters_summary": Page(
        PATIENT_1,
        len(PATIENT_1),
        dict.fromkeys(("self", "first", "last"), "patient=Patient/pat-1&_count=10&_offset=0&_summary=true"),
    ),
    # _count=1 in the URL, patient and status in the form body: the GET's answer, GET links.
    "search_encounters_post_form": Page(
        ["enc-1001"],
        2,
        {
            "self": "patient=Patient/pat-1&status=finished&_count=1&_offset=0",
            "first": "patient=Patient/pat-1&status=finished&_count=1&_offset=0",
            "next": f"patient=Patient/pat-1&status=finished&_count=1&_offset=1&_cursor={CURSOR}",
            "last": "patient=Patient/pat-1&status=finished&_count=1&_offset=1",
        },
    ),
    "search_encounters_post_unsupported_media_type": Failure(
        415,
        "not-supported",
        "POST /Encounter/_search takes a body of type application/x-www-form-urlencoded, "
        "not 'application/json'",
    ),
}


def relations(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


def without_cursor(url: str) -> str:
    return re.sub(r"_cursor=[^&]+", f"_cursor={CURSOR}", url)


def load_event(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    return event


def assert_event_outcome(name: str, status: int, headers: Mapping[str, str], body: Any) -> None:
    """The answer to events/<name>.json is its expected outcome (EVENT_OUTCOMES)."""
    expected = EVENT_OUTCOMES[name]
    assert (headers["Cache-Control"], headers["X-Content-Type-Options"]) == ("no-store", "nosniff")
    if isinstance(expected, Preflight):
        assert (status, body) == (204, None)
        assert headers["Allow"] == "GET, HEAD, OPTIONS"
        assert headers.get("Access-Control-Allow-Origin") == expected.allow_origin
        return
    assert headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    match expected:
        case Found(encounter_id):
            assert status == 200
            assert body == {
                **invoke_encounter_by_id(encounter_id),
                "meta": {"versionId": "1", "lastUpdated": body["meta"]["lastUpdated"]},
            }
            assert headers["ETag"] == 'W/"1"'
            last_updated = datetime.fromisoformat(body["meta"]["lastUpdated"])
            assert headers["Last-Modified"] == format_datetime(last_updated, usegmt=True)
        case Page(ids, total, links):
            assert status == 200
            assert (body["resourceType"], body["type"], body.get("total")) == ("Bundle", "searchset", total)
            assert ids_of(body) == ids
            assert [entry["fullUrl"] for entry in body.get("entry", [])] == [
                f"{EVENT_BASE}/Encounter/{i}" for i in ids
            ]
            assert all(entry["search"] == {"mode": "match"} for entry in body.get("entry", []))
            assert {rel: without_cursor(url) for rel, url in relations(body).items()} == {
                rel: f"{EVENT_BASE}/Encounter?{query}" for rel, query in links.items()
            }
            assert [link["relation"] for link in body["link"]] == list(links)
        case Capabilities(search_params):
            assert status == 200
            assert body["resourceType"] == "CapabilityStatement"
            assert body["fhirVersion"] == "4.0.1"
            assert body["implementation"]["url"] == EVENT_BASE
            (resource,) = body["rest"][0]["resource"]
            assert resource["type"] == "Encounter"
            assert [i["code"] for i in resource["interaction"]] == ["read", "search-type"]
            assert [p["name"] for p in resource["searchParam"]] == search_params
        case Failure(code_status, code, text):
            assert status == code_status
            assert body == {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": code, "details": {"text": text}}],
            }


# ---- what a request read, from its log line (a patient token's cost must not depend on others' data) ----

READ_COST = ("queries", "rows_read", "keys_read", "read_units")  # the figures the routes log


def authorizer_context(
    scope: str, patient: str | None = None, fhir_user: str | None = None, expires_in: int = 3600
) -> dict[str, str]:
    """The SMART authorizer's context as a function receives it (numbers as text), for a token
    that expires ``expires_in`` seconds from now."""
    context = {
        "principalId": "user-1",
        "sub": "user-1",
        "client_id": "app-1",
        "scope": scope,
        "exp": str(int(time.time()) + expires_in),
    }
    if patient:
        context["patient"] = patient
    if fhir_user:
        context["fhirUser"] = fhir_user
    return context


USER_TOKEN = authorizer_context("user/Encounter.rs")

BUSY = 300  # Encounters of patient pb, and of Group g1: another patient's busy partitions
OWN = 4  # Encounters of patient pa, whose token asks
BUSY_IDS = [f"b-{n:03d}" for n in range(BUSY)]
MISSING_IDS = [f"x-{n:03d}" for n in range(BUSY)]
# (naming another patient's data, naming data that does not exist): each pair must cost and answer the same
COMPARTMENT_PAIRS = [
    ("patient=pb", "patient=nobody"),
    ("patient=Patient/pb", "patient=Patient/nobody"),
    ("subject=Patient/pb", "subject=Patient/nobody"),
    ("subject=pb", "subject=nobody"),
    ("subject=Group/g1", "subject=Group/nobody"),
    ("appointment=ap-b", "appointment=ap-nobody"),
    ("_id=" + ",".join(BUSY_IDS[:100]), "_id=" + ",".join(MISSING_IDS[:100])),
    (
        "_id=" + ",".join(BUSY_IDS[:50]) + "&_id=" + ",".join(BUSY_IDS[25:75]),
        "_id=" + ",".join(MISSING_IDS[:50]),
    ),
    # combinations, some of which match the asking patient's own Encounters
    ("patient=pa,pb", "patient=pa,nobody"),
    ("subject=Patient/pa,Group/g1", "subject=Patient/pa,Group/nobody"),
    ("_id=a-1,a-2,a-3," + ",".join(BUSY_IDS[:90]), "_id=a-1,a-2,a-3," + ",".join(MISSING_IDS[:90])),
    ("appointment=ap-a,ap-b", "appointment=ap-a,ap-nobody"),
    ("patient=pb&appointment=ap-b&date=2021", "patient=nobody&appointment=ap-nobody&date=2021"),
    ("appointment=ap-b&status=finished&date=ge2021", "appointment=ap-nobody&status=finished&date=ge2021"),
    ("_id=b-001,b-002&appointment=ap-b&date=2021-05", "_id=x-001,x-002&appointment=ap-nobody&date=2021-05"),
]
# how the pairs are paged: each page (next links followed) is compared
COMPARTMENT_PAGING = [
    "",
    "&_count=0",
    "&_total=none",
    "&_count=1",
    "&_count=1&_total=none",
    "&_count=2&_offset=1",
]


def compartment_population() -> list[dict[str, Any]]:
    """Patient pa's few Encounters; patient pb's and Group g1's many."""
    return [
        *(
            encounter(
                f"a-{n}", subject="Patient/pa", start=f"2021-0{n}-01", appointments=["Appointment/ap-a"]
            )
            for n in range(1, OWN + 1)
        ),
        *(
            encounter(i, subject="Patient/pb", start="2021-05-01", appointments=["Appointment/ap-b"])
            for i in BUSY_IDS
        ),
        *(encounter(f"g-{n:03d}", subject="Group/g1", start="2021-05-01") for n in range(BUSY)),
    ]


def read_cost(records: Sequence[Any], message: str) -> dict[str, Any]:
    """The read-cost figures of the one log record ``message`` among ``records`` (caplog's)."""
    logged = [record for record in records if record.getMessage() == message]
    assert len(logged) == 1, [record.getMessage() for record in records]
    return {name: getattr(logged[0], name) for name in READ_COST}


def with_claims(event: dict[str, Any], claims: Mapping[str, str]) -> dict[str, Any]:
    """``event`` as the SMART authorizer would pass it on: its context carries the token's claims."""
    event["requestContext"]["authorizer"] = dict(claims)
    return event


def patient_token(patient: str) -> dict[str, str]:
    """The claims of a ``patient/Encounter.rs`` token for ``patient``."""
    return authorizer_context("patient/Encounter.rs", patient=patient)


def search_page_shape(status: int, bundle: dict[str, Any]) -> tuple[Any, ...]:
    """What a searchset page shows besides its links' query values: status, type, total, ids, relations."""
    relations = sorted(item["relation"] for item in bundle.get("link", []))
    return (
        status,
        bundle.get("resourceType"),
        bundle.get("type"),
        bundle.get("total"),
        ids_of(bundle),
        relations,
    )


def costed_walk(
    query: str, claims: Mapping[str, str], records: Callable[[], list[Any]]
) -> list[tuple[Any, ...]]:
    """Each page of a search made with ``claims`` (following next links): its read cost and shape.
    ``records``: the log records so far (caplog's); each page's are those it added."""
    pages: list[tuple[Any, ...]] = []
    following: str | None = query
    # The table's index state is read once and kept a while by each container (the bucket
    # directory): the first page is asked once beforehand, so that which of two walks compared
    # pays for that read does not depend on which ran first.
    warm = rest_api_event(
        method="GET", path="/Encounter", resource="/Encounter", query=parse_qs(query, keep_blank_values=True)
    )
    invoke(with_claims(warm, claims))
    while following is not None:
        seen = len(records())
        event = rest_api_event(
            method="GET",
            path="/Encounter",
            resource="/Encounter",
            query=parse_qs(following, keep_blank_values=True),
        )
        status, _, bundle = invoke(with_claims(event, claims))
        pages.append((read_cost(records()[seen:], "search answered"), search_page_shape(status, bundle)))
        url = link(bundle, "next")
        following = urlsplit(url).query if url else None
    return pages


def costed_read(
    encounter_id: str, claims: Mapping[str, str], records: Callable[[], list[Any]]
) -> tuple[Any, ...]:
    """A read made with ``claims``: its read cost, status and OperationOutcome text (or the id read)."""
    seen = len(records())
    event = rest_api_event(
        method="GET",
        path=f"/Encounter/{encounter_id}",
        resource="/Encounter/{id}",
        path_parameters={"id": encounter_id},
    )
    status, _, body = invoke(with_claims(event, claims))
    shown = body["issue"][0]["details"]["text"] if status == 404 else body["id"]
    return read_cost(records()[seen:], "read answered"), status, shown
