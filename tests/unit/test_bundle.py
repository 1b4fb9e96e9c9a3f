"""The searchset Bundle: shape, entries, and links rebuilt from the parsed query in a fixed order."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter.bundle import search_url, searchset
from fhir_encounter.search.query import parse_search

BASE = "https://api.example.org/v1"
LAST_UPDATED = "2026-01-01T00:00:00.000Z"


def bundle(
    query: dict[str, list[str]],
    *,
    total: int,
    resources: list[tuple[str, str]] | None = None,
    next_offset: int | None = None,
    next_cursor: str | None = None,
) -> dict[str, Any]:
    text = searchset(
        base_url=BASE,
        query=parse_search(query)[0],
        resources=resources or [],
        total=total,
        next_offset=next_offset,
        next_cursor=next_cursor,
        last_updated=LAST_UPDATED,
    )
    result: dict[str, Any] = json.loads(text)
    return result


def links(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(link["relation"], link["url"]) for link in result["link"]]


def url(query: str) -> str:
    return f"{BASE}/Encounter?{query}"


def test_a_bundle_is_a_searchset_with_total_and_last_updated() -> None:
    result = bundle({}, total=0)
    assert result == {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": LAST_UPDATED},
        "type": "searchset",
        "total": 0,
        "link": [
            {"relation": "self", "url": url("_count=10&_offset=0")},
            {"relation": "first", "url": url("_count=10&_offset=0")},
            {"relation": "last", "url": url("_count=10&_offset=0")},
        ],
    }


def test_first_page_links() -> None:
    result = bundle({"patient": ["p1"]}, total=25, next_offset=10, next_cursor="tok")
    assert links(result) == [
        ("self", url("patient=p1&_count=10&_offset=0")),
        ("first", url("patient=p1&_count=10&_offset=0")),
        ("next", url("patient=p1&_count=10&_offset=10&_cursor=tok")),
        ("last", url("patient=p1&_count=10&_offset=20")),
    ]


def test_middle_page_links_keep_the_requests_cursor_only_on_self() -> None:
    query = {"patient": ["p1"], "_offset": ["10"], "_cursor": ["abc"]}
    result = bundle(query, total=25, next_offset=20, next_cursor="def")
    assert links(result) == [
        ("self", url("patient=p1&_count=10&_offset=10&_cursor=abc")),
        ("first", url("patient=p1&_count=10&_offset=0")),
        ("previous", url("patient=p1&_count=10&_offset=0")),
        ("next", url("patient=p1&_count=10&_offset=20&_cursor=def")),
        ("last", url("patient=p1&_count=10&_offset=20")),
    ]


def test_last_page_has_no_next() -> None:
    result = bundle({"_count": ["10"], "_offset": ["20"]}, total=25)
    assert links(result) == [
        ("self", url("_count=10&_offset=20")),
        ("first", url("_count=10&_offset=0")),
        ("previous", url("_count=10&_offset=10")),
        ("last", url("_count=10&_offset=20")),
    ]


@pytest.mark.parametrize(
    ("count", "offset", "total", "previous", "last"),
    [
        (10, 0, 25, None, 20),
        (10, 5, 25, 0, 20),
        (10, 10, 25, 0, 20),
        (10, 15, 25, 5, 20),
        (10, 40, 25, 20, 20),  # past the end: previous is the last page
        (10, 25, 25, 20, 20),
        (10, 999, 20, 10, 10),
        (10, 30, 0, 0, 0),
        (10, 0, 20, None, 10),
        (10, 0, 21, None, 20),
        (10, 0, 1, None, 0),
        (10, 0, 0, None, 0),
        (1, 3, 4, 2, 3),
        (3, 3, 9, 0, 6),
        (100, 0, 250, None, 200),
    ],
)
def test_previous_and_last_offsets(
    count: int, offset: int, total: int, previous: int | None, last: int
) -> None:
    result = bundle({"_count": [str(count)], "_offset": [str(offset)]}, total=total)
    by_relation = dict(links(result))
    expected_previous = url(f"_count={count}&_offset={previous}") if previous is not None else None
    assert by_relation.get("previous") == expected_previous
    assert by_relation["last"] == url(f"_count={count}&_offset={last}")


def test_next_link_without_a_cursor_carries_only_the_offset() -> None:
    result = bundle({}, total=25, next_offset=10, next_cursor=None)
    assert dict(links(result))["next"] == url("_count=10&_offset=10")


def test_count_zero_gives_only_total_and_self() -> None:
    result = bundle({"patient": ["p1"], "_count": ["0"]}, total=42)
    assert result == {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": LAST_UPDATED},
        "type": "searchset",
        "total": 42,
        "link": [{"relation": "self", "url": url("patient=p1&_count=0&_offset=0")}],
    }


def test_links_show_the_clamped_count() -> None:
    result = bundle({"_count": ["500"]}, total=250, next_offset=100)
    assert links(result) == [
        ("self", url("_count=100&_offset=0")),
        ("first", url("_count=100&_offset=0")),
        ("next", url("_count=100&_offset=100")),
        ("last", url("_count=100&_offset=200")),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"date": ["ge2021-06-15T10:00:00+02:00"]}, "date=ge2021-06-15T10:00:00%2B02:00"),
        ({"date": ["ge2021-06-15T10:00:00 02:00"]}, "date=ge2021-06-15T10:00:00%2B02:00"),
        ({"patient": ["https://host/base/Patient/1"]}, "patient=https://host/base/Patient/1"),
        ({"subject": ["Group/7"]}, "subject=Group/7"),
        ({"_id": ["a,b"]}, "_id=a,b"),
        ({"appointment": ["Appointment/9,8"]}, "appointment=Appointment/9,8"),
        ({"date": ["ge2021", "lt2022"]}, "date=ge2021&date=lt2022"),
        (
            {"status": ["http://hl7.org/fhir/encounter-status|finished"]},
            "status=http://hl7.org/fhir/encounter-status%7Cfinished",
        ),
        ({"status": ["planned,in-progress"]}, "status=planned,in-progress"),
    ],
)
def test_values_are_percent_encoded_except_slash_colon_and_comma(
    query: dict[str, list[str]], expected: str
) -> None:
    assert dict(links(bundle(query, total=0)))["self"] == url(f"{expected}&_count=10&_offset=0")


def test_search_url_encodes_query_delimiters_in_names_and_values() -> None:
    assert search_url(BASE, [("a b", "x&y=z#w?v%"), ("_count", "1")]) == url(
        "a%20b=x%26y%3Dz%23w%3Fv%25&_count=1"
    )


def test_link_order_is_fixed_whatever_the_request_order() -> None:
    one = {
        "status": ["finished"],
        "date": ["ge2021"],
        "_count": ["5"],
        "patient": ["p1"],
        "_id": ["a"],
        "appointment": ["9"],
    }
    other = {
        "appointment": ["9"],
        "_id": ["a"],
        "patient": ["p1"],
        "_count": ["5"],
        "date": ["ge2021"],
        "status": ["finished"],
    }
    assert links(bundle(one, total=3)) == links(bundle(other, total=3))
    assert dict(links(bundle(one, total=3)))["self"] == url(
        "_id=a&patient=p1&appointment=9&date=ge2021&status=finished&_count=5&_offset=0"
    )


@pytest.mark.parametrize(
    "query",
    [
        {
            "date": ["ge2021-06-15T10:00:00+02:00", "lt2022-01-01T00:00:00-05:00"],
            "_count": ["7"],
            "_offset": ["14"],
        },
        {"patient": ["https://host/base/Patient/1,Patient/2"], "subject": ["Group/7"]},
        {"_id": ["a.b-c,d"], "appointment": ["https://h:8443/r4/Appointment/9"]},
        {"date": ["ap2021-06-15T10:00:00.123456789 05:30"], "_count": ["0"]},
        {"status": ["http://hl7.org/fhir/encounter-status|finished,planned"], "_total": ["none"]},
    ],
)
def test_a_self_link_parses_back_to_the_same_search(query: dict[str, list[str]]) -> None:
    original = parse_search(query)[0]
    self_url = dict(links(bundle(query, total=100)))["self"]
    again = parse_search(parse_qs(urlsplit(self_url).query, keep_blank_values=True))[0]
    assert again == original


def test_every_link_is_an_absolute_url_on_the_base() -> None:
    query = {"patient": ["p1"], "_count": ["2"], "_offset": ["2"]}
    for _, link_url in links(bundle(query, total=9, next_offset=4, next_cursor="c")):
        parts = urlsplit(link_url)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "api.example.org", "/v1/Encounter")


def test_entries_carry_absolute_full_url_the_resource_as_stored_and_match_mode() -> None:
    first = {"resourceType": "Encounter", "id": "e2", "status": "finished"}
    second = {
        "resourceType": "Encounter",
        "id": "e1",
        "subject": {"display": "Zo\u00eb \u00c5sa \u6771\u4eac"},
    }
    resources = [("e2", json.dumps(first)), ("e1", json.dumps(second, ensure_ascii=False))]
    result = bundle({}, total=2, resources=resources)
    assert result["entry"] == [
        {"fullUrl": f"{BASE}/Encounter/e2", "resource": first, "search": {"mode": "match"}},
        {"fullUrl": f"{BASE}/Encounter/e1", "resource": second, "search": {"mode": "match"}},
    ]
    assert list(result) == ["resourceType", "meta", "type", "total", "link", "entry"]


def test_an_empty_page_has_no_entry_element() -> None:
    assert "entry" not in bundle({"_offset": ["40"]}, total=25)


def test_the_same_input_gives_the_same_text() -> None:
    def text() -> str:
        return searchset(
            base_url=BASE,
            query=parse_search({"patient": ["p1"], "date": ["ge2021"]})[0],
            resources=[("e1", '{"resourceType":"Encounter","id":"e1"}')],
            total=11,
            next_offset=10,
            next_cursor="c",
            last_updated=LAST_UPDATED,
        )

    assert text() == text()
    json.loads(text())
