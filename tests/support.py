"""Test helpers: Encounter builders, the handlers under test, and invocation as API Gateway would."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fhir_encounter.config import Settings
from fhir_encounter.runtime import LambdaHandler, Runtime, Store
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
    return {
        "/Encounter/{id}": READ.create_handler(runtime, store),
        "/Encounter": SEARCH.create_handler(runtime, store),
        "/metadata": CAPABILITY.create_handler(runtime),
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


def invoke(event: dict[str, Any]) -> Response:
    """Pass an event to the handler that owns its resource; (status, headers, parsed body)."""
    return response_parts(lambda_response(event))


def lambda_response(event: dict[str, Any]) -> dict[str, Any]:
    """The handler's whole proxy response to ``event``, as Lambda would serialise it."""
    assert _handlers, "invoking needs the table fixture (or handlers_on)"
    return _handlers[-1][event["resource"]](event, LocalContext())  # type: ignore[arg-type]


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
