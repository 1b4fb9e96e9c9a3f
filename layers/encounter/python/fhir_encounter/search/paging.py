"""Pure paging: matching rows in, the page, total, has-more and next cursor out.

A first page counts every match for ``total`` (within a time budget); a cursor page or
``_total=none`` stops one row after the page.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fhir_encounter.search.cursor import Cursor
from fhir_encounter.search.parameters import IndexRow
from fhir_encounter.search.query import SearchQuery


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
) -> Page:
    """``matching``: the matching rows in sort order, after the cursor's key when there is one.

    ``out_of_time`` is asked only once the page is complete: then counting stops and the page is
    answered without a total, its next link continuing as ``_total=none`` does.
    """
    rows: list[IndexRow] = []
    stopped = False
    total: int | None
    if cursor is None and query.counts_total:
        counted = 0
        end = query.offset + query.count
        for position, row in enumerate(matching):
            if position >= end and out_of_time():
                stopped = True  # this row is a match past the page
                break
            if query.offset <= position < end:
                rows.append(row)
            counted = position + 1
        total = None if stopped else counted
        has_more = stopped or query.offset + len(rows) < counted
    else:
        total = cursor.total if cursor else None
        has_more = False
        for row in itertools.islice(matching, 0 if cursor else query.offset, None):
            if len(rows) == query.count:
                has_more = True  # one match past the page: read only when the total is unknown
                break
            rows.append(row)
            if total is not None and len(rows) == query.count:
                break
        if total is not None:
            has_more = query.offset + len(rows) < total
    next_cursor = Cursor(rows[-1].sort_key, query.offset + len(rows), total) if rows and has_more else None
    return Page(rows, total, has_more, next_cursor, stopped)
