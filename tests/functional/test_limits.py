"""Every request stays bounded: response size, deep offsets, counting budgets, echoed names, and
content negotiation, through the handlers on moto."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter import searching
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.support import Writer, encounter, ids_of, invoke, lambda_response, read, search

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((entry["url"] for entry in bundle["link"] if entry["relation"] == relation), None)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def raw_search(query: str) -> dict[str, Any]:
    """The handler's whole Lambda response, as the runtime would serialise it."""
    return lambda_response(
        rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=parse_qs(query))
    )


@pytest.fixture
def large(put: Writer) -> list[str]:
    """Twenty Encounters of about 380 KB of UTF-8 each, non-ASCII (escaped as \\u00e9 in JSON)."""
    ids = []
    for n in range(20):
        resource = encounter(f"big-{n:02d}", subject="Patient/big", start=f"2021-01-{n + 1:02d}")
        resource["text"] = {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "é" * 190_000 + "</div>",
        }
        put(resource)
        ids.append(resource["id"])
    return ids


def test_a_page_of_large_encounters_stays_under_lambdas_response_limit(large: list[str]) -> None:
    response = raw_search("patient=big&_count=100")
    assert len(json.dumps(response)) < LAMBDA_RESPONSE_LIMIT
    bundle = json.loads(response["body"])
    assert bundle["total"] == 20
    assert 0 < len(bundle["entry"]) < 20
    assert link(bundle, "next") is not None


def test_following_next_from_a_cut_page_reaches_every_match_once(large: list[str]) -> None:
    seen: list[str] = []
    status, _, bundle = search("patient=big&_count=100")
    while True:
        assert status == 200
        assert bundle["total"] == 20
        seen.extend(ids_of(bundle))
        url = link(bundle, "next")
        if url is None:
            break
        status, _, bundle = search(query_of(url))
    assert seen == large


def test_an_offset_above_ten_thousand_is_not_supported(put: Writer) -> None:
    put(encounter("e1"))
    status, _, outcome = search("_offset=999999999")
    assert status == 400
    assert outcome["issue"][0]["code"] == "not-supported"
    assert "next links" in outcome["issue"][0]["details"]["text"]


def test_previous_from_past_the_end_is_the_last_page(put: Writer) -> None:
    put(*(encounter(f"e{n:02d}", start=f"2021-02-{n + 1:02d}") for n in range(20)))
    status, _, bundle = search("patient=p1&_offset=999")
    assert status == 200
    assert bundle["total"] == 20
    assert "entry" not in bundle
    assert query_of(link(bundle, "previous") or "")["_offset"] == ["10"]
    assert query_of(link(bundle, "last") or "")["_offset"] == ["10"]


def test_count_zero_that_cannot_finish_counting_is_a_503_not_an_empty_bundle(
    put: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(*(encounter(f"e{n:02d}", start=f"2021-02-{n + 1:02d}") for n in range(5)))
    monkeypatch.setattr(searching, "RESPONSE_MARGIN_SECONDS", 60.0)  # more than the invocation has left
    # status:not: the patient's partition alone does not decide, so the rows are counted here
    status, headers, outcome = search("patient=p1&status:not=cancelled&_count=0")
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert outcome["issue"][0]["code"] == "too-costly"


def test_count_zero_counts_with_the_whole_budget(put: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    put(*(encounter(f"e{n:02d}", start=f"2021-02-{n + 1:02d}") for n in range(5)))
    monkeypatch.setattr(searching, "COUNT_BUDGET_SECONDS", -1.0)  # a page would stop counting at once
    status, _, bundle = search("patient=p1&_count=0")
    assert (status, bundle["total"], "entry" in bundle) == (200, 5, False)


def test_a_thousand_unknown_parameters_give_a_short_outcome(put: Writer) -> None:
    query = "&".join(f"unknown{n}={'v' * 50}" for n in range(1000))
    status, _, outcome = search(query, headers={"Prefer": "handling=strict"})
    assert status == 400
    assert len(json.dumps(outcome)) < 1024
    assert outcome["issue"][0]["details"]["text"].endswith(" and 990 more")


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml"])
def test_xml_is_not_acceptable_on_every_route(put: Writer, accept: str) -> None:
    put(encounter("e1"))
    for status, _, outcome in (
        read("e1", headers={"Accept": accept}),
        search("patient=p1", headers={"Accept": accept}),
        invoke(
            rest_api_event(method="GET", path="/metadata", resource="/metadata", headers={"Accept": accept})
        ),
    ):
        assert status == 406
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize("value", ["xml", "application/fhir+xml"])
def test_format_xml_is_not_acceptable(put: Writer, value: str) -> None:
    put(encounter("e1"))
    assert search(f"patient=p1&_format={value}")[0] == 406


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/fhir+json"])
def test_json_in_any_spelling_is_served(put: Writer, accept: str | None) -> None:
    put(encounter("e1"))
    headers = {"Accept": accept} if accept else None
    assert read("e1", headers=headers)[0] == 200
    assert search("patient=p1&_format=json", headers=headers)[0] == 200


def test_format_and_pretty_are_known_under_strict_handling_and_pretty_indents(put: Writer) -> None:
    put(encounter("e1"))
    response = raw_search("patient=p1&_format=json&_pretty=true")
    assert response["statusCode"] == 200
    assert response["body"].startswith('{\n  "resourceType": "Bundle"')
    status, _, bundle = search("patient=p1&_format=json&_pretty=true", headers={"Prefer": "handling=strict"})
    assert (status, ids_of(bundle)) == (200, ["e1"])
