"""Paging as a pure function of plain rows: the page, the total, whether more follow, the next cursor,
the counting time budget, and how far the matching rows are read."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from fhir_encounter.search.cursor import Cursor
from fhir_encounter.search.paging import Page, fit_page, select_page
from fhir_encounter.search.query import SearchQuery, parse_search
from fhir_encounter.store.fields import IndexRow

ROWS = [IndexRow(f"e{n:02d}", f"2021-06-{n + 1:02d}T10:00:00.000000Z#e{n:02d}", {}) for n in range(25)]


def parsed(query: str) -> SearchQuery:
    return parse_search(parse_qs(query, keep_blank_values=True))[0]


class Recorded:
    """The rows as a generator that counts how many were taken from it."""

    def __init__(self, rows: list[IndexRow]) -> None:
        self.rows = rows
        self.consumed = 0

    def __iter__(self) -> Iterator[IndexRow]:
        for row in self.rows:
            self.consumed += 1
            yield row


def after(cursor: Cursor) -> list[IndexRow]:
    """The matching rows a repository yields for a cursor: those after its sort key."""
    return [row for row in ROWS if row.sort_key > cursor.after_sort_key]


# ---- first pages: every match is counted -----------------------------------------------------------


def test_a_first_page_has_the_first_rows_the_total_and_a_cursor_after_its_last_row() -> None:
    page = select_page(iter(ROWS), parsed("_count=10"), None)
    assert page == Page(ROWS[:10], 25, True, Cursor(ROWS[9].sort_key, 10, 25), False)


def test_an_offset_in_the_middle_skips_to_it() -> None:
    page = select_page(iter(ROWS), parsed("_count=10&_offset=10"), None)
    assert page == Page(ROWS[10:20], 25, True, Cursor(ROWS[19].sort_key, 20, 25), False)


def test_an_offset_not_on_a_page_boundary_is_honoured() -> None:
    page = select_page(iter(ROWS), parsed("_count=4&_offset=7"), None)
    assert page == Page(ROWS[7:11], 25, True, Cursor(ROWS[10].sort_key, 11, 25), False)


@pytest.mark.parametrize(("query", "first"), [("_count=10&_offset=20", 20), ("_count=5&_offset=20", 20)])
def test_the_last_page_has_no_next_cursor(query: str, first: int) -> None:
    page = select_page(iter(ROWS), parsed(query), None)
    assert page == Page(ROWS[first:], 25, False, None, False)


def test_a_page_that_ends_exactly_at_the_last_match_has_no_next_cursor() -> None:
    page = select_page(iter(ROWS[:20]), parsed("_count=10&_offset=10"), None)
    assert page == Page(ROWS[10:20], 20, False, None, False)


@pytest.mark.parametrize("offset", [25, 26, 40, 1000])
def test_an_offset_past_the_end_gives_an_empty_page_with_the_exact_total(offset: int) -> None:
    page = select_page(iter(ROWS), parsed(f"_count=10&_offset={offset}"), None)
    assert page == Page([], 25, False, None, False)


def test_no_matches_give_an_empty_page_with_total_zero() -> None:
    assert select_page(iter([]), parsed(""), None) == Page([], 0, False, None, False)


@pytest.mark.parametrize("offset", [0, 10])
def test_count_zero_gives_only_the_total(offset: int) -> None:
    recorded = Recorded(ROWS)
    page = select_page(recorded, parsed(f"_count=0&_offset={offset}"), None)
    assert page == Page([], 25, True, None, False)  # matches follow, but a page of 0 has no next
    assert recorded.consumed == 25


def test_a_counting_first_page_reads_every_match() -> None:
    recorded = Recorded(ROWS)
    select_page(recorded, parsed("_count=3"), None)
    assert recorded.consumed == 25


@pytest.mark.parametrize(
    ("query", "page_ids"), [("_count=3", ["e00", "e01", "e02"]), ("_count=2&_offset=5", ["e05", "e06"])]
)
def test_a_full_page_is_told_while_the_count_goes_on(query: str, page_ids: list[str]) -> None:
    recorded = Recorded(ROWS)
    told: list[tuple[list[str], int]] = []
    page = select_page(
        recorded,
        parsed(query),
        None,
        on_page=lambda rows: told.append(([r.id for r in rows], recorded.consumed)),
    )
    assert told == [(page_ids, len(page_ids) + parsed(query).offset)]  # told at its last row, not at the end
    assert ([row.id for row in page.rows], page.total, recorded.consumed) == (page_ids, 25, 25)


@pytest.mark.parametrize("query", ["_count=10&_offset=20", "_count=10&_offset=30", "_count=0"])
def test_a_page_that_ends_short_is_not_told(query: str) -> None:
    told: list[list[IndexRow]] = []
    page = select_page(iter(ROWS), parsed(query), None, on_page=told.append)
    assert told == []
    assert page.total == 25


def test_with_a_known_total_the_page_is_told_before_the_total_is_asked_for() -> None:
    events: list[str] = []

    def total() -> int:
        events.append("total")
        return 25

    page = select_page(
        iter(ROWS),
        parsed("_count=4"),
        None,
        known_total=total,
        on_page=lambda rows: events.append(f"page {len(rows)}"),
    )
    assert events == ["page 4", "total"]
    assert (page.total, page.has_more) == (25, True)


# ---- _total=none: a look-ahead row decides has_more ---------------------------------------------------


def test_total_none_has_no_total_and_a_next_cursor_when_a_match_follows() -> None:
    page = select_page(iter(ROWS), parsed("_count=10&_total=none"), None)
    assert page == Page(ROWS[:10], None, True, Cursor(ROWS[9].sort_key, 10, None), False)


def test_total_none_with_an_offset_skips_to_it() -> None:
    page = select_page(iter(ROWS), parsed("_count=10&_offset=10&_total=none"), None)
    assert page == Page(ROWS[10:20], None, True, Cursor(ROWS[19].sort_key, 20, None), False)


@pytest.mark.parametrize("matches", [10, 7])
def test_total_none_without_a_look_ahead_row_has_no_more(matches: int) -> None:
    page = select_page(iter(ROWS[:matches]), parsed("_count=10&_total=none"), None)
    assert page == Page(ROWS[:matches], None, False, None, False)


def test_total_none_past_the_end_is_empty() -> None:
    page = select_page(iter(ROWS), parsed("_count=10&_offset=30&_total=none"), None)
    assert page == Page([], None, False, None, False)


@pytest.mark.parametrize(
    ("query", "read"), [("_count=10&_total=none", 11), ("_count=5&_offset=7&_total=none", 13)]
)
def test_total_none_stops_one_row_after_the_page(query: str, read: int) -> None:
    recorded = Recorded(ROWS)
    select_page(recorded, parsed(query), None)
    assert recorded.consumed == read


# ---- cursor pages: resume after the cursor's key, reuse its total ---------------------------------------


def test_a_cursor_page_takes_the_rows_after_the_cursor_and_reuses_its_total() -> None:
    cursor = Cursor(ROWS[9].sort_key, 10, 25)
    page = select_page(iter(after(cursor)), parsed("_count=10&_offset=10"), cursor)
    assert page == Page(ROWS[10:20], 25, True, Cursor(ROWS[19].sort_key, 20, 25), False)


def test_a_cursor_page_trusts_the_cursors_total_over_the_rows() -> None:
    """Matches added after the first page do not change the total the pages show."""
    cursor = Cursor(ROWS[9].sort_key, 10, 20)
    page = select_page(iter(after(cursor)), parsed("_count=10&_offset=10"), cursor)
    assert page == Page(ROWS[10:20], 20, False, None, False)


def test_the_last_cursor_page_has_no_next_cursor() -> None:
    cursor = Cursor(ROWS[19].sort_key, 20, 25)
    page = select_page(iter(after(cursor)), parsed("_count=10&_offset=20"), cursor)
    assert page == Page(ROWS[20:], 25, False, None, False)


def test_a_cursor_page_reads_only_the_page_when_the_total_is_known() -> None:
    cursor = Cursor(ROWS[9].sort_key, 10, 25)
    recorded = Recorded(after(cursor))
    select_page(recorded, parsed("_count=5&_offset=10"), cursor)
    assert recorded.consumed == 5


def test_a_cursor_page_without_a_total_uses_a_look_ahead_row() -> None:
    cursor = Cursor(ROWS[9].sort_key, 10, None)
    recorded = Recorded(after(cursor))
    page = select_page(recorded, parsed("_count=5&_offset=10&_total=none"), cursor)
    assert page == Page(ROWS[10:15], None, True, Cursor(ROWS[14].sort_key, 15, None), False)
    assert recorded.consumed == 6


def test_a_cursor_page_without_a_total_ends_when_no_row_follows() -> None:
    cursor = Cursor(ROWS[19].sort_key, 20, None)
    page = select_page(iter(after(cursor)), parsed("_count=5&_offset=20&_total=none"), cursor)
    assert page == Page(ROWS[20:], None, False, None, False)


def test_a_cursor_page_does_not_skip_the_offset_again() -> None:
    cursor = Cursor(ROWS[2].sort_key, 3, 25)
    page = select_page(iter(after(cursor)), parsed("_count=3&_offset=3"), cursor)
    assert [row.id for row in page.rows] == ["e03", "e04", "e05"]


def test_following_next_cursors_visits_every_row_once() -> None:
    for query in ("_count=7", "_count=7&_total=none"):
        seen: list[IndexRow] = []
        page = select_page(iter(ROWS), parsed(query), None)
        seen += page.rows
        while page.next_cursor is not None:
            cursor = page.next_cursor
            page = select_page(iter(after(cursor)), parsed(f"{query}&_offset={cursor.offset}"), cursor)
            seen += page.rows
        assert seen == ROWS, query


# ---- the counting time budget --------------------------------------------------------------------


class Budget:
    """out_of_time that answers ``answer`` and notes how many rows had been read at each call."""

    def __init__(self, rows: Recorded, answer: bool) -> None:
        self.rows = rows
        self.answer = answer
        self.calls: list[int] = []

    def __call__(self) -> bool:
        self.calls.append(self.rows.consumed)
        return self.answer


def test_out_of_time_keeps_the_full_page_and_drops_the_total() -> None:
    recorded = Recorded(ROWS)
    budget = Budget(recorded, answer=True)
    page = select_page(recorded, parsed("_count=10&_offset=5"), None, out_of_time=budget)
    assert page == Page(ROWS[5:15], None, True, Cursor(ROWS[14].sort_key, 15, None), True)
    assert budget.calls == [1]  # asked from the first row; once out of time, no more
    assert recorded.consumed == 16  # the page, then one match past it


def test_out_of_time_is_asked_at_every_row_while_counting() -> None:
    recorded = Recorded(ROWS)
    budget = Budget(recorded, answer=False)
    page = select_page(recorded, parsed("_count=10&_offset=5"), None, out_of_time=budget)
    assert page == Page(ROWS[5:15], 25, True, Cursor(ROWS[14].sort_key, 15, 25), False)
    assert budget.calls == list(range(1, 26))


def test_out_of_time_while_skipping_still_finds_the_page_then_stops() -> None:
    """A deep _offset cannot outrun the budget: skipping stops counting, the page is still found."""
    recorded = Recorded(ROWS)
    budget = Budget(recorded, answer=True)
    page = select_page(recorded, parsed("_count=3&_offset=12"), None, out_of_time=budget)
    assert page == Page(ROWS[12:15], None, True, Cursor(ROWS[14].sort_key, 15, None), True)
    assert recorded.consumed == 16


@pytest.mark.parametrize(
    ("matches", "query"), [(10, "_count=10"), (3, "_count=10"), (25, "_count=5&_offset=30")]
)
def test_out_of_time_with_no_match_past_the_page_leaves_page_and_total_exact(
    matches: int, query: str
) -> None:
    """The matches ran out with the page: everything was counted, whatever the clock says."""
    recorded = Recorded(ROWS[:matches])
    budget = Budget(recorded, answer=True)
    page = select_page(recorded, parsed(query), None, out_of_time=budget)
    assert page.total == matches
    assert page.count_stopped is False
    assert page.has_more is False


def test_count_zero_out_of_time_gives_no_total() -> None:
    page = select_page(Recorded(ROWS), parsed("_count=0"), None, out_of_time=lambda: True)
    assert (page.rows, page.total, page.count_stopped) == ([], None, True)


def test_out_of_time_is_not_asked_on_cursor_or_total_none_pages() -> None:
    cursor = Cursor(ROWS[9].sort_key, 10, 25)
    for rows, query, page_cursor in (
        (after(cursor), "_count=5&_offset=10", cursor),
        (ROWS, "_count=5&_total=none", None),
    ):
        recorded = Recorded(rows)
        budget = Budget(recorded, answer=True)
        page = select_page(recorded, parsed(query), page_cursor, out_of_time=budget)
        assert (len(page.rows), page.count_stopped, budget.calls) == (5, False, [])


# ---- response size: a page shorter than _count ---------------------------------------------------


def test_fit_page_keeps_a_page_under_the_limit_as_it_is() -> None:
    query = parsed("_count=5")
    page = select_page(iter(ROWS), query, None)
    assert fit_page(page, query, {row.id: 100 for row in ROWS}, 500) == page


def test_fit_page_cuts_at_the_limit_and_resumes_after_the_cut() -> None:
    query = parsed("_count=5&_offset=10")
    page = select_page(iter(ROWS), query, None)
    fitted = fit_page(page, query, {row.id: 100 for row in ROWS}, 250)
    assert fitted == Page(ROWS[10:12], 25, True, Cursor(ROWS[11].sort_key, 12, 25), False)


def test_fit_page_keeps_one_entry_even_when_it_alone_is_over_the_limit() -> None:
    query = parsed("_count=5")
    page = select_page(iter(ROWS), query, None)
    fitted = fit_page(page, query, {row.id: 1000 for row in ROWS}, 10)
    assert [row.id for row in fitted.rows] == [ROWS[0].id]
    assert fitted.next_cursor == Cursor(ROWS[0].sort_key, 1, 25)


def test_fit_page_on_a_last_page_links_to_the_rest() -> None:
    query = parsed("_count=5&_offset=20")
    page = select_page(iter(ROWS), query, None)
    assert page.has_more is False
    fitted = fit_page(page, query, {row.id: 100 for row in ROWS}, 300)
    assert (len(fitted.rows), fitted.has_more, fitted.next_cursor) == (
        3,
        True,
        Cursor(ROWS[22].sort_key, 23, 25),
    )
