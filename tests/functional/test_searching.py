"""searching.run_search on moto, without the route: a parsed query in, the page's resources, total,
next offset and cursor out; a cursor resumes where it stopped; the response-size cut; a bad cursor."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from fhir_encounter import searching
from fhir_encounter.errors import InvalidRequestError, TooCostlyError
from fhir_encounter.runtime import Store
from fhir_encounter.search.query import SearchQuery, parse_search
from fhir_encounter.searching import SearchResult, run_search
from tests.support import TEST_SETTINGS, Writer, encounter

IN_ORDER = [f"e{n:02d}" for n in range(7)]


@pytest.fixture
def store(table: Any, put: Writer) -> Store:
    put(*(encounter(i, start=f"2021-03-{n + 1:02d}") for n, i in enumerate(IN_ORDER)))
    put(encounter("other", subject="Patient/p2", start="2021-03-01"))
    return Store.from_settings(TEST_SETTINGS, table)


def query(text: str) -> SearchQuery:
    parsed, _ = parse_search(parse_qs(text, keep_blank_values=True))
    return parsed


def run(store: Store, text: str) -> SearchResult:
    return run_search(query(text), store, started=time.monotonic(), remaining_seconds=10.0)


def test_a_first_page_holds_its_resources_in_order_with_the_total_and_where_the_next_starts(
    store: Store,
) -> None:
    result = run(store, "patient=p1&_count=3")
    assert [i for i, _ in result.resources] == IN_ORDER[:3]
    assert [json.loads(text)["id"] for _, text in result.resources] == IN_ORDER[:3]
    assert (result.total, result.next_offset, result.resumed, result.count_stopped) == (7, 3, False, False)
    assert result.next_cursor
    assert result.index == "subject-index"
    assert result.cost.queries >= 1


def test_the_next_cursor_resumes_after_the_page_until_the_last(store: Store) -> None:
    seen: list[str] = []
    text = "patient=p1&_count=3"
    while True:
        result = run(store, text)
        seen.extend(i for i, _ in result.resources)
        if result.next_cursor is None:
            break
        assert result.total == 7  # carried by the cursor
        text = f"patient=p1&_count=3&_offset={result.next_offset}&_cursor={result.next_cursor}"
    assert seen == IN_ORDER
    assert (result.resumed, result.next_offset) == (True, None)


def test_count_zero_gives_the_total_and_no_resources(store: Store) -> None:
    result = run(store, "_count=0")
    assert (result.resources, result.total, result.next_offset) == ([], 8, None)


def test_total_none_counts_nothing_and_still_links_on(store: Store) -> None:
    result = run(store, "patient=p1&_count=5&_total=none")
    assert ([i for i, _ in result.resources], result.total, result.next_offset) == (IN_ORDER[:5], None, 5)


def test_a_page_over_the_size_limit_is_cut_and_goes_on_from_the_cut(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(searching, "MAX_ENTRY_BYTES", 1)  # every entry is over it: one a page
    result = run(store, "patient=p1&_count=4")
    assert ([i for i, _ in result.resources], result.total, result.next_offset) == (IN_ORDER[:1], 7, 1)


def test_a_cursor_of_another_search_is_refused(store: Store) -> None:
    cursor = run(store, "patient=p1&_count=3").next_cursor
    with pytest.raises(InvalidRequestError):
        run(store, f"patient=p2&_count=3&_offset=3&_cursor={cursor}")


def test_count_zero_without_time_to_count_is_too_costly(store: Store) -> None:
    with pytest.raises(TooCostlyError):
        run_search(
            query("status:not=cancelled&_count=0"),
            store,
            started=time.monotonic(),
            remaining_seconds=searching.RESPONSE_MARGIN_SECONDS - 1,
        )
