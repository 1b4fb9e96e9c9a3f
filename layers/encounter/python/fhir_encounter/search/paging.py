"""Pure paging: matching rows in, the page, total, has-more and next cursor out. A first page
counts every match for ``total`` within a time budget; a cursor page or ``_total=none`` stops
one row after the page."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from fhir_encounter.search.cursor import Cursor
from fhir_encounter.search.query import SearchQuery
from fhir_encounter.store.fields import IndexRow


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[IndexRow]
    total: int | None  # None: _total=none, or counting ran out of time
    has_more: bool  # matches follow this page
    next_cursor: Cursor | None
    count_stopped: bool = False  # counting ran out of time


def never() -> bool:
    return False


def select_page(
    matching: Iterable[IndexRow],
    query: SearchQuery,
    cursor: Cursor | None,
    out_of_time: Callable[[], bool] = never,
    known_total: Callable[[], int] | None = None,
    on_page: Callable[[list[IndexRow]], None] | None = None,
) -> Page:
    """``matching``: the matching rows in sort order, after the cursor's key when there is one.

    On a counting first page ``out_of_time`` is asked at every row: once it says so, counting
    stops (the page is answered without a total, its next link continuing as ``_total=none``
    does) and the walk ends as soon as the page is complete. Skipping to ``_offset`` is bounded
    by MAX_OFFSET, so the page is always found. ``known_total``: a first page's total, counted
    alongside (Select=COUNT) and asked for once the page is read; the walk stops one row after it.
    ``on_page``: told the page's rows as soon as they are final, while a count may go on (so
    that their bodies can be read meanwhile); not told of a page that ends short.
    """
    rows: list[IndexRow] = []
    stopped = False
    total: int | None
    if cursor is None and query.counts_total and known_total is None:
        counted = 0
        end = query.offset + query.count
        exhausted = True
        for position, row in enumerate(matching):
            stopped = stopped or out_of_time()
            if stopped and position >= end:
                exhausted = False  # this row is a match past the page
                break
            if query.offset <= position < end:
                rows.append(row)
                if on_page is not None and len(rows) == query.count:
                    on_page(list(rows))
            counted = position + 1
        total = counted if exhausted else None
        stopped = stopped and not exhausted
        has_more = not exhausted or query.offset + len(rows) < counted
    else:
        total = cursor.total if cursor else None
        has_more = False
        for row in itertools.islice(matching, 0 if cursor else query.offset, None):
            if len(rows) == query.count:
                has_more = True  # one match past the page: read only when the total is unknown
                break
            rows.append(row)
            if (total is not None or known_total is not None) and len(rows) == query.count:
                break
        if known_total is not None:
            if on_page is not None and rows and len(rows) == query.count:
                on_page(list(rows))
            total = known_total()
        if total is not None:
            has_more = query.offset + len(rows) < total
    next_cursor = Cursor(rows[-1].sort_key, query.offset + len(rows), total) if rows and has_more else None
    return Page(rows, total, has_more, next_cursor, stopped)


def fit_page(page: Page, query: SearchQuery, sizes: Mapping[str, int], limit: int) -> Page:
    """The page cut to the entries whose sizes (by id) add up to at most ``limit`` (always at
    least one): FHIR allows a page shorter than _count, and its next cursor resumes after the cut."""
    used = 0
    for keep, row in enumerate(page.rows):
        used += sizes.get(row.id, 0)
        if used > limit and keep > 0:
            rows = page.rows[:keep]
            cursor = Cursor(rows[-1].sort_key, query.offset + keep, page.total)
            return Page(rows, page.total, True, cursor, page.count_stopped)
    return page
