"""Running a parsed search: what happens between the query and the Bundle. Decode the cursor, plan,
count (DynamoDB's Select=COUNT when the partitions decide), walk the rows, pick the page within the
counting budget, read the page's bodies (early when they are known first), and cut the page to fit
Lambda's response. No HTTP here: the route turns the SearchResult into the Bundle, logs and audits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from fhir_encounter.bundle import entry_size
from fhir_encounter.dates import parse_range
from fhir_encounter.errors import TooCostlyError
from fhir_encounter.runtime import Store
from fhir_encounter.search.cursor import decode_cursor, encode_cursor, search_fingerprint
from fhir_encounter.search.paging import fit_page, select_page
from fhir_encounter.search.planning import matching, plan_search
from fhir_encounter.search.query import SearchQuery
from fhir_encounter.search.sorting import SortKey, in_order, period_starts, reorders, resume_point
from fhir_encounter.store.dynamodb import ReadCost
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.subsetting import subset_all

# How long a first page may spend counting `total` (the functions time out at 15 s): past it the
# page is answered without a total rather than not at all.
COUNT_BUDGET_SECONDS = 4.0
# _count=0 asks only for the total: it may count until this long before the function times out.
RESPONSE_MARGIN_SECONDS = 2.0
# Lambda's response payload is at most 6 MB, the body JSON-escaped inside it: a page stops adding
# entries at this many escaped bytes and links to the rest.
MAX_ENTRY_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of a search, ready for the Bundle: its resources (id, JSON text) in order, the
    total when counted, where the next page starts, and what reading it took."""

    resources: list[tuple[str, str]]
    total: int | None
    next_offset: int | None  # the next link's _offset; None on the last page
    next_cursor: str | None  # the next link's signed _cursor
    index: str  # the index the plan read
    cost: ReadCost
    resumed: bool  # the query carried a cursor
    count_stopped: bool  # counting ran out of time: no total


def run_search(query: SearchQuery, store: Store, *, started: float, remaining_seconds: float) -> SearchResult:
    """``started``: time.monotonic() when the request arrived; ``remaining_seconds``: the
    invocation's time left (Lambda context), which bounds counting for ``_count=0``. Raises
    InvalidRequestError for a bad cursor, TooCostlyError when ``_count=0`` cannot count in time,
    StoreUnavailableError when DynamoDB fails."""
    fingerprint = search_fingerprint((*query.bound_params, *query.sort_params), query.count, query.total_mode)
    cursor = (
        decode_cursor(query.cursor, fingerprint, query.offset, store.cursor_secret) if query.cursor else None
    )
    resumed = ("", 0)
    if cursor is not None:  # a cursor that stopped inside a run resumes at the run (search.sorting)
        after, run, sent = resume_point(cursor.after_sort_key)
        cursor, resumed = replace(cursor, after_sort_key=after or ""), (run, sent)
    now = time.time_ns() // 1000
    cost = ReadCost()
    linked = query.order or any(c.keys for c in query.all_criteria)
    indexed = store.repository.indexed_paths(cost) if linked else None
    systems = store.repository.value_systems(cost) if linked else None
    planned = plan_search(query, cursor, now, indexed, systems)
    search_plan = planned.plan
    counted = None
    if search_plan.partitions_decide and cursor is None and query.counts_total:
        # Every row of the partitions matches: DynamoDB counts them, and only the page is read.
        counted = store.repository.count(search_plan, cost)
        # The total is known: the page's rows are all that is read (no row past it).
        search_plan = replace(search_plan, page_hint=max(1, query.offset + query.count))
    rows = store.repository.rows(search_plan, cost)
    budget = COUNT_BUDGET_SECONDS if query.count else remaining_seconds - RESPONSE_MARGIN_SECONDS
    deadline = started + budget
    early: list[tuple[list[str], Callable[[], list[tuple[str, str]]]]] = []  # a full page's bodies

    def read_bodies_early(page_rows: list[IndexRow]) -> None:
        early.append(([row.id for row in page_rows], store.repository.start_resources(page_rows, cost)))

    found = matching(rows, planned, now, store.repository.with_bodies, cost)
    if reorders(query.sort):
        found = in_order(found, query.sort, partial(_sort_values, store, cost), resumed)
    page = select_page(
        found,
        query,
        cursor,
        out_of_time=lambda: time.monotonic() > deadline,
        known_total=counted,
        on_page=read_bodies_early,
    )
    if query.count == 0 and page.total is None and query.counts_total:
        raise TooCostlyError("Counting the matches took too long; retry, or narrow the search")
    if early and early[0][0] == [row.id for row in page.rows]:
        resources = early[0][1]()
    else:
        resources = store.repository.resources(page.rows, cost)
    resources = subset_all(resources, query.subset)  # _summary, _elements: entries' sizes as sent
    page = fit_page(page, query, {i: entry_size(text) for i, text in resources}, MAX_ENTRY_BYTES)
    kept = {row.id for row in page.rows}
    return SearchResult(
        resources=[(i, text) for i, text in resources if i in kept],
        total=page.total,
        next_offset=page.next_cursor.offset if page.next_cursor else None,  # the link and its cursor agree
        next_cursor=encode_cursor(page.next_cursor, fingerprint, store.cursor_secret)
        if page.next_cursor
        else None,
        index=search_plan.index,
        cost=cost,
        resumed=cursor is not None,
        count_stopped=page.count_stopped,
    )


def _sort_values(
    store: Store, cost: ReadCost, rows: list[IndexRow], sort_keys: tuple[SortKey, ...]
) -> dict[str, dict[str, int]]:
    """The values of ``sort_keys`` for the Encounters of one run: the period start from the rows,
    meta.lastUpdated from the resources (read for the run, unless the rows carry them)."""
    values: dict[str, dict[str, int]] = {}
    for key in sort_keys:
        if key.order == "":
            values[key.parameter.name] = period_starts(rows)
            continue
        carried = [(row.id, row.resource) for row in rows if row.resource is not None]
        read = store.repository.resources([row for row in rows if row.resource is None], cost)
        values[key.parameter.name] = {
            encounter_id: instant for encounter_id, text in (*carried, *read) if (instant := _updated(text))
        }
    return values


def _updated(resource_json: str) -> int | None:
    """meta.lastUpdated as microseconds (the store sets it on every Encounter)."""
    try:
        return parse_range(json.loads(resource_json)["meta"]["lastUpdated"]).low
    except (KeyError, TypeError, ValueError):
        return None
