"""Every events/*.json through its function's lambda_handler, as `sam local invoke -e` would run it.

The table (moto, built from template.yaml) holds ``support.INVOKE_ENCOUNTERS``. Each event file has one
expected outcome in ``support.EVENT_OUTCOMES`` (tests/sam checks the same through `sam local`); an
event file without one fails, and so does an expectation without a file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter.search.parameters import SEARCH_PARAMETERS
from fhir_encounter_tools.template import api_routes, load_template
from tests.support import (
    EVENT_FILES,
    EVENT_OUTCOMES,
    INVOKE_ALL_IN_ORDER,
    INVOKE_ENCOUNTERS,
    ROOT,
    assert_event_outcome,
    ids_of,
    invoke,
    load_event,
    relations,
)

ROUTES = api_routes(load_template(ROOT / "template.yaml"), ROOT)
FUNCTIONS = {
    "/Encounter/{id}": "read_encounter",
    "/Encounter": "search_encounters",
    "/Encounter/_search": "search_encounters",
    "/metadata": "capability_statement",
    "/.well-known/smart-configuration": "capability_statement",
}


@pytest.fixture
def seeded(put: Callable[..., None]) -> None:
    put(*INVOKE_ENCOUNTERS)


def with_query(event: dict[str, Any], url: str) -> dict[str, Any]:
    """The event as API Gateway would send it for the query string of ``url``."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    changed = copy.deepcopy(event)
    changed["multiValueQueryStringParameters"] = query
    changed["queryStringParameters"] = {name: values[-1] for name, values in query.items()}
    return changed


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_every_event_file_has_an_expected_outcome(path: Path) -> None:
    assert path.stem in EVENT_OUTCOMES, f"add the expected outcome of events/{path.name} to EVENT_OUTCOMES"


def test_every_expected_outcome_has_its_event_file() -> None:
    assert sorted(EVENT_OUTCOMES) == [path.stem for path in EVENT_FILES]


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_event_file_is_a_rest_api_proxy_event(path: Path) -> None:
    event = load_event(path)
    assert event["resource"] in FUNCTIONS
    function = "capability_statement" if event["httpMethod"] == "OPTIONS" else FUNCTIONS[event["resource"]]
    assert path.stem.startswith(f"{function}_"), "an event file is named for its function"
    assert (event["httpMethod"], event["resource"]) in {(route.method, route.path) for route in ROUTES}
    if event["httpMethod"] == "POST":  # a body as API Gateway passes a form on: text, not base64
        assert isinstance(event["body"], str)
        assert event["headers"]["Content-Type"]
    else:
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
    assert_event_outcome(path.stem, *invoke(load_event(path)))


@pytest.mark.usefixtures("seeded")
def test_following_next_links_from_the_paged_event_visits_every_encounter_once() -> None:
    event = load_event(ROOT / "events" / "search_encounters_paged.json")
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
    _, _, body = invoke(load_event(ROOT / "events" / "search_encounters_unknown_param_lenient.json"))
    assert all("_tag" not in url for url in relations(body).values())


@pytest.mark.usefixtures("seeded")
def test_the_read_event_answers_304_to_its_own_etag() -> None:
    event = load_event(ROOT / "events" / "read_encounter_found.json")
    event["headers"]["If-None-Match"] = 'W/"1"'
    event["multiValueHeaders"]["If-None-Match"] = ['W/"1"']
    status, headers, body = invoke(event)
    assert (status, headers["ETag"], body) == (304, 'W/"1"', None)


def test_every_search_parameter_is_in_an_event_file() -> None:
    """The event files cover the registry: each parameter is sent by at least one of them."""
    sent = {
        name.partition(":")[0]
        for path in EVENT_FILES
        for name in (load_event(path).get("multiValueQueryStringParameters") or {})
    }
    assert set(SEARCH_PARAMETERS) <= sent


@pytest.mark.usefixtures("seeded")
def test_the_summary_event_answers_subsetted_encounters() -> None:
    _, _, body = invoke(load_event(ROOT / "events" / "search_encounters_summary.json"))
    resources = [entry["resource"] for entry in body["entry"]]
    assert resources
    for resource in resources:
        assert {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED",
        } in [{"system": tag.get("system"), "code": tag.get("code")} for tag in resource["meta"]["tag"]]
        assert "participant" not in resource  # not a summary element of R4's Encounter
