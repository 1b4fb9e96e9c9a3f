"""Every events/*.json through its function's lambda_handler, as `sam local invoke -e` would run it.

The table (moto, built from template.yaml) holds ``support.INVOKE_ENCOUNTERS``. Each event file has one
expected outcome below; an event file without one fails, and so does an expectation without a file.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support import (
    INVOKE_ALL_IN_ORDER,
    INVOKE_ENCOUNTERS,
    ROOT,
    ids_of,
    invoke,
    invoke_encounter_by_id,
)

EVENT_FILES = sorted((ROOT / "events").glob("*.json"))
FUNCTIONS = {
    "/Encounter/{id}": "read_encounter",
    "/Encounter": "search_encounters",
    "/metadata": "capability_statement",
    "/.well-known/smart-configuration": "capability_statement",
}
BASE = "https://abc123defg.execute-api.us-east-1.amazonaws.com/v1"
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

EXPECTED: dict[str, Found | Page | Failure | Capabilities] = {
    "capability_statement_metadata": Capabilities(
        ["_id", "patient", "subject", "appointment", "date", "status"]
    ),
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
        400, "not-supported", "Unknown search parameter(s): _sort"
    ),
    "search_encounters_unknown_param_lenient": first_page(PATIENT_1, "patient=Patient/pat-1"),
}


@pytest.fixture
def seeded(put: Callable[..., None]) -> None:
    put(*INVOKE_ENCOUNTERS)


def load(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    return event


def with_query(event: dict[str, Any], url: str) -> dict[str, Any]:
    """The event as API Gateway would send it for the query string of ``url``."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    changed = copy.deepcopy(event)
    changed["multiValueQueryStringParameters"] = query
    changed["queryStringParameters"] = {name: values[-1] for name, values in query.items()}
    return changed


def relations(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle["link"]}


def without_cursor(url: str) -> str:
    return re.sub(r"_cursor=[^&]+", f"_cursor={CURSOR}", url)


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_every_event_file_has_an_expected_outcome(path: Path) -> None:
    assert path.stem in EXPECTED, f"add the expected outcome of events/{path.name} to EXPECTED"


def test_every_expected_outcome_has_its_event_file() -> None:
    assert sorted(EXPECTED) == [path.stem for path in EVENT_FILES]


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_event_file_is_a_rest_api_proxy_event(path: Path) -> None:
    event = load(path)
    assert event["resource"] in FUNCTIONS
    assert path.stem.startswith(f"{FUNCTIONS[event['resource']]}_"), "an event file is named for its function"
    assert event["httpMethod"] == "GET"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "v1"
    assert context["resourcePath"] == event["resource"]
    assert context["httpMethod"] == event["httpMethod"]
    assert context["path"] == f"/v1{event['path']}"
    assert context["requestId"]
    assert context["domainName"] == event["headers"]["Host"]
    assert event["multiValueHeaders"] == {name: [value] for name, value in event["headers"].items()}
    multi = event["multiValueQueryStringParameters"]
    single = event["queryStringParameters"]
    assert (multi is None) == (single is None)
    if multi is not None:
        assert single == {name: values[-1] for name, values in multi.items()}
    if event["resource"] == "/Encounter/{id}":
        assert event["path"] == f"/Encounter/{event['pathParameters']['id']}"
    else:
        assert event["path"] == event["resource"]
        assert event["pathParameters"] is None


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_event_file_gives_its_expected_outcome(path: Path) -> None:
    expected = EXPECTED[path.stem]
    status, headers, body = invoke(load(path))
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
                f"{BASE}/Encounter/{i}" for i in ids
            ]
            assert all(entry["search"] == {"mode": "match"} for entry in body.get("entry", []))
            assert {rel: without_cursor(url) for rel, url in relations(body).items()} == {
                rel: f"{BASE}/Encounter?{query}" for rel, query in links.items()
            }
            assert [link["relation"] for link in body["link"]] == list(links)
        case Capabilities(search_params):
            assert status == 200
            assert body["resourceType"] == "CapabilityStatement"
            assert body["fhirVersion"] == "4.0.1"
            assert body["implementation"]["url"] == BASE
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


@pytest.mark.usefixtures("seeded")
def test_following_next_links_from_the_paged_event_visits_every_encounter_once() -> None:
    event = load(ROOT / "events" / "search_encounters_paged.json")
    _, _, body = invoke(event)
    url: str | None = relations(body)["first"]
    seen: list[str] = []
    totals = set()
    while url is not None:
        status, _, page = invoke(with_query(event, url))
        assert status == 200
        seen.extend(ids_of(page))
        totals.add(page["total"])
        url = relations(page).get("next")
    assert seen == INVOKE_ALL_IN_ORDER
    assert totals == {len(INVOKE_ALL_IN_ORDER)}


@pytest.mark.usefixtures("seeded")
def test_the_lenient_event_leaves_the_unknown_parameter_out_of_its_links() -> None:
    _, _, body = invoke(load(ROOT / "events" / "search_encounters_unknown_param_lenient.json"))
    assert all("_sort" not in url for url in relations(body).values())


@pytest.mark.usefixtures("seeded")
def test_the_read_event_answers_304_to_its_own_etag() -> None:
    event = load(ROOT / "events" / "read_encounter_found.json")
    event["headers"]["If-None-Match"] = 'W/"1"'
    event["multiValueHeaders"]["If-None-Match"] = ['W/"1"']
    status, headers, body = invoke(event)
    assert (status, headers["ETag"], body) == (304, 'W/"1"', None)
