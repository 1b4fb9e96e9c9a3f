"""search/sorting.py: what ``_sort`` accepts, and how runs of equal first values are put in order
and resumed by a cursor (pure)."""

from __future__ import annotations

import itertools

import pytest

from fhir_encounter.dates import DateRange
from fhir_encounter.search.parameters import SEARCH_PARAMETERS
from fhir_encounter.search.sorting import (
    RUN_MARK,
    SORTABLE,
    SortKey,
    in_order,
    parse_sort,
    reorders,
    resume_point,
)
from fhir_encounter.store.fields import IndexRow

DATE = SEARCH_PARAMETERS["date"]
UPDATED = SEARCH_PARAMETERS["_lastUpdated"]


def test_the_sortable_parameters_are_the_stored_orders() -> None:
    assert SORTABLE == ("date", "_lastUpdated")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date", (SortKey(DATE),)),
        ("-date", (SortKey(DATE, True),)),
        (" -_lastUpdated , date ", (SortKey(UPDATED, True), SortKey(DATE))),
        ("date,-_lastUpdated", (SortKey(DATE), SortKey(UPDATED, True))),
    ],
)
def test_sort_keys_are_parsed_in_turn(text: str, expected: tuple[SortKey, ...]) -> None:
    assert parse_sort(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status", "sorting is supported by date, _lastUpdated"),
        ("date,-date", "'date' is named twice"),
        ("-", "an empty sort key"),
        ("date,", "an empty sort key"),
        ("Date", "sorting is supported by"),
    ],
)
def test_a_sort_it_cannot_give_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sort(text)


def test_only_the_walks_own_order_needs_no_reordering() -> None:
    assert not reorders(())
    assert not reorders(parse_sort("date"))
    assert not reorders(parse_sort("_lastUpdated"))
    assert reorders(parse_sort("-date"))
    assert reorders(parse_sort("_lastUpdated,date"))


def row(start: str, encounter_id: str, period_low: int | None = None) -> IndexRow:
    values = {} if period_low is None else {"period": DateRange(period_low, period_low)}
    return IndexRow(encounter_id, f"{start}#{encounter_id}", values)


def test_a_backward_walks_runs_are_put_in_id_order() -> None:
    walked = [row("2022", "c"), row("2021", "z"), row("2021", "b"), row("2021", "a"), row("2020", "q")]
    found = list(in_order(walked, parse_sort("-date"), lambda rows, keys: {}))
    assert [r.id for r in found] == ["c", "a", "b", "z", "q"]
    assert [r.sort_key for r in found] == [
        f"2022#~{RUN_MARK}1",
        f"2021#~{RUN_MARK}1",
        f"2021#~{RUN_MARK}2",
        f"2021#~{RUN_MARK}3",
        f"2020#~{RUN_MARK}1",
    ]


def test_a_run_is_ordered_by_the_next_key_a_missing_value_lowest() -> None:
    walked = [row("u1", "a", 30), row("u1", "b", None), row("u1", "c", 10), row("u2", "d", 5)]

    def starts(rows: list[IndexRow], keys: tuple[SortKey, ...]) -> dict[str, dict[str, int]]:
        return {"date": {r.id: r.values["period"].low for r in rows if "period" in r.values}}

    ascending = in_order(walked, parse_sort("_lastUpdated,date"), starts)
    assert [r.id for r in ascending] == ["b", "c", "a", "d"]
    descending = in_order(walked, parse_sort("_lastUpdated,-date"), starts)
    assert [r.id for r in descending] == ["a", "c", "b", "d"]


def test_a_cursor_inside_a_run_resumes_at_the_run_and_skips_what_was_sent() -> None:
    walked = [row("2021", "z"), row("2021", "b"), row("2021", "a"), row("2020", "q")]
    sort = parse_sort("-date")
    page = list(itertools.islice(in_order(walked, sort, lambda rows, keys: {}), 2))
    after, run, sent = resume_point(page[-1].sort_key)
    assert (after, run, sent) == ("2021#~", "2021", 2)
    assert after is not None
    rest = [r for r in walked if r.sort_key < after]  # what the repository gives after the boundary
    assert [r.id for r in in_order(rest, sort, lambda rows, keys: {}, (run, sent))] == ["z", "q"]


def test_a_plain_cursor_key_resumes_after_itself() -> None:
    assert resume_point("2021-01-01T00:00:00.000000Z#a") == ("2021-01-01T00:00:00.000000Z#a", "", 0)
    assert resume_point(None) == (None, "", 0)
