"""Search by ``status`` through the search handler over the moto table: alone, OR-ed, with the
encounter-status system, combined with every other criterion, and page after page."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support import encounter, ids_of, search

SYSTEM = "http://hl7.org/fhir/encounter-status"
BASE = "http://127.0.0.1:3000/v1/Encounter"


@pytest.fixture
def stored(put: Any) -> None:
    """Search order (period start, none first): s1 s8 s2 s3 s4 s5 s6 s7."""
    put(
        encounter("s1", subject="Patient/p1", appointments=["Appointment/a1"], status="planned"),
        encounter(
            "s2",
            subject="Patient/p1",
            start="2022-01-05",
            appointments=["Appointment/a1"],
            status="in-progress",
        ),
        encounter(
            "s3", subject="Patient/p2", start="2022-01-10", appointments=["Appointment/a2"], status="finished"
        ),
        encounter(
            "s4",
            subject="Group/g1",
            start="2022-02-01",
            appointments=["Appointment/a2"],
            status="in-progress",
        ),
        encounter("s5", subject="Patient/p1", start="2022-03-01", status="finished"),
        encounter(
            "s6",
            subject="Patient/p2",
            start="2022-03-15",
            appointments=["Appointment/a1"],
            status="cancelled",
        ),
        encounter("s7", subject="Patient/p1", start="2023-01-01", status="in-progress"),
        encounter("s8", subject="Patient/p2", start="2021-12-31", status="arrived"),
    )


def found(query: str | dict[str, list[str]]) -> tuple[list[str], int]:
    """The ids on the first page (all of them: fewer than a page) and the total."""
    status, _, bundle = search(query)
    assert status == 200
    return ids_of(bundle), bundle["total"]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("status=in-progress", ["s2", "s4", "s7"]),
        ("status=finished", ["s3", "s5"]),
        ("status=planned", ["s1"]),
        ("status=entered-in-error", []),
    ],
)
def test_status_alone_finds_the_encounters_with_that_code(query: str, ids: list[str]) -> None:
    assert found(query) == (ids, len(ids))


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("status=planned,arrived", ["s1", "s8"]),
        ("status=finished,in-progress", ["s2", "s3", "s4", "s5", "s7"]),
        ("status=cancelled,unknown", ["s6"]),
    ],
)
def test_a_comma_ors_status_codes(query: str, ids: list[str]) -> None:
    assert found(query) == (ids, len(ids))


@pytest.mark.usefixtures("stored")
def test_repeated_status_parameters_and_together() -> None:
    assert found("status=in-progress,finished&status=in-progress,planned") == (["s2", "s4", "s7"], 3)
    assert found("status=finished&status=in-progress") == ([], 0)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("value", "ids"),
    [
        (f"{SYSTEM}|in-progress", ["s2", "s4", "s7"]),
        (f"{SYSTEM}|in-progress,planned", ["s1", "s2", "s4", "s7"]),
        (f"{SYSTEM}|", ["s1", "s8", "s2", "s3", "s4", "s5", "s6", "s7"]),  # any code of the system
        ("http://example.org/other-status|in-progress", []),  # another system: no Encounter.status
        ("|in-progress", []),  # no system: no Encounter.status either
    ],
)
def test_status_with_a_system_matches_only_the_encounter_status_system(value: str, ids: list[str]) -> None:
    assert found({"status": [value]}) == (ids, len(ids))


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("_id=s2,s3,s4,s7&status=in-progress", ["s2", "s4", "s7"]),
        ("_id=s3,s5&status=in-progress", []),
        ("patient=p1&status=in-progress", ["s2", "s7"]),
        ("patient=Patient/p2&status=finished,cancelled", ["s3", "s6"]),
        ("subject=Group/g1&status=in-progress", ["s4"]),
        ("subject=Patient/p1&status=planned,finished", ["s1", "s5"]),
        ("appointment=a1&status=in-progress,cancelled", ["s2", "s6"]),
        ("appointment=Appointment/a2&status=finished", ["s3"]),
        ("date=ge2022-01-01&date=lt2023&status=in-progress", ["s2", "s4"]),
        ("date=sa2022-02&status=finished,cancelled", ["s5", "s6"]),
        ("patient=p1&date=ge2022&status=in-progress&appointment=a1", ["s2"]),
    ],
)
def test_status_combined_with_another_criterion_matches_both(query: str, ids: list[str]) -> None:
    assert found(query) == (ids, len(ids))


def _walk(query: str | dict[str, list[str]]) -> tuple[list[str], list[dict[str, Any]]]:
    status, _, bundle = search(query)
    pages = [bundle]
    while status == 200 and (url := _link(bundle, "next")):
        status, _, bundle = search(parse_qs(urlsplit(url).query))
        pages.append(bundle)
    assert status == 200
    return [i for page in pages for i in ids_of(page)], pages


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("query", "total"),
    [
        ("status=in-progress,finished&_count=2", 5),
        ({"status": [f"{SYSTEM}|in-progress,finished"], "_count": ["2"]}, 5),
        ("status=in-progress,finished&_count=2&_total=none", None),
    ],
    ids=["codes", "system", "total-none"],
)
def test_next_links_walk_every_status_match_once(
    query: str | dict[str, list[str]], total: int | None
) -> None:
    walked, pages = _walk(query)
    assert walked == ["s2", "s3", "s4", "s5", "s7"]
    assert [ids_of(page) for page in pages] == [["s2", "s3"], ["s4", "s5"], ["s7"]]
    assert [page.get("total") for page in pages] == [total] * 3
    assert all("status=" in (_link(page, "self") or "") for page in pages)


@pytest.mark.usefixtures("stored")
def test_links_carry_the_status_value_as_sent() -> None:
    status, _, bundle = search({"status": [f"{SYSTEM}|finished,in-progress"]})
    assert status == 200
    assert _link(bundle, "self") == (
        f"{BASE}?status=http://hl7.org/fhir/encounter-status%7Cfinished,in-progress&_count=10&_offset=0"
    )
    status, _, bundle = search("status=planned&patient=p1")
    assert _link(bundle, "self") == f"{BASE}?patient=p1&status=planned&_count=10&_offset=0"


@pytest.mark.usefixtures("stored")
def test_an_empty_status_value_is_ignored() -> None:
    assert found("status=") == (["s1", "s8", "s2", "s3", "s4", "s5", "s6", "s7"], 8)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("value", ["finished,", ",finished", "a,,b"])
def test_an_empty_code_between_commas_is_400_naming_status(value: str) -> None:
    status, _, body = search({"status": [value]})
    assert status == 400
    assert body["issue"][0]["code"] == "invalid"
    assert body["issue"][0]["details"]["text"] == (
        "Invalid value for search parameter 'status': 'status' needs a code, such as finished"
    )


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("prefer", [None, "handling=strict", "handling=lenient"])
@pytest.mark.parametrize("modifier", ["text", "in", "identifier"])
def test_a_status_modifier_is_400_not_supported(prefer: str | None, modifier: str) -> None:
    status, _, body = search({f"status:{modifier}": ["finished"]}, {"Prefer": prefer} if prefer else None)
    assert status == 400
    assert body == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-supported",
                "details": {"text": f"Search parameter 'status' does not support the modifier ':{modifier}'"},
            }
        ],
    }


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:not=in-progress", ["s1", "s8", "s3", "s5", "s6"]),
        ("status:not=in-progress,finished", ["s1", "s8", "s6"]),
        (f"status:not={SYSTEM}|finished&patient=p2", ["s8", "s6"]),
        ("status:not=other|finished", ["s1", "s8", "s2", "s3", "s4", "s5", "s6", "s7"]),
        ("status:missing=false", ["s1", "s8", "s2", "s3", "s4", "s5", "s6", "s7"]),
        ("status:missing=true", []),
        ("status:missing=true,false&subject=Group/g1", ["s4"]),
    ],
)
def test_status_not_and_missing(query: str, expected: list[str]) -> None:
    """:not is "none of these" (R4 search.html#modifiers); :missing=false is every Encounter
    with a status, which all have."""
    assert found(query) == (expected, len(expected))
