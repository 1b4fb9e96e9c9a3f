"""Pure query planning: which index, which partitions or buckets, which sort-key range, how much
to read per Query. No I/O: tests drive it with plain values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, format_instant
from fhir_encounter.search.cursor import Cursor
from fhir_encounter.search.parameters import TABLE
from fhir_encounter.search.query import SearchQuery
from fhir_encounter.store import keys

# The most selective index first; a search with none of them walks the period-start index.
INDEX_PREFERENCE = (keys.APPOINTMENT_INDEX, keys.SUBJECT_INDEX)
MAX_QUERY_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Plan:
    index: str  # TABLE (BatchGetItem of ids) or an index name
    partitions: tuple[str, ...]  # ids for TABLE, partition keys for a GSI; () for the period walk
    low: str  # sort-key bounds, inclusive
    high: str
    first_bucket: str = keys.NO_START_BUCKET  # the period walk's bucket range
    last_bucket: str = keys.LAST_BUCKET
    after: str | None = None  # resume after this sort key (a cursor's)
    page_hint: int | None = None  # Query Limit: about a page when nothing is counted

    @property
    def walks_buckets(self) -> bool:
        return self.index == keys.PERIOD_START_INDEX

    @property
    def empty(self) -> bool:
        """Dates that contradict each other: nothing can match (BETWEEN would be a 400)."""
        return self.low > self.high

    def buckets(self, directory: Iterable[str]) -> list[str]:
        """The buckets of the directory that the walk reads, in order."""
        return sorted(bucket for bucket in directory if self.first_bucket <= bucket <= self.last_bucket)


def plan(query: SearchQuery, cursor: Cursor | None, now: int) -> Plan:
    after = cursor.after_sort_key if cursor else None
    if ids := query.values_of("_id"):
        wanted = frozenset.intersection(*(frozenset(values) for values in ids))
        return Plan(TABLE, tuple(sorted(wanted)), keys.NO_START, keys.SORT_KEY_END, after=after)
    bounds = start_bounds(query, now)
    low = keys.start_text(bounds.low)
    high = keys.SORT_KEY_END if bounds.high == POS_INFINITY else format_instant(bounds.high) + "#~"
    if after is not None:
        low = max(low, after)
    page_hint = None
    if cursor:
        page_hint = query.count + 1
    elif not query.counts_total:
        page_hint = query.offset + query.count + 1
    for index in INDEX_PREFERENCE:
        candidates: list[frozenset[str]] = [
            frozenset(key for value in c.values for key in c.parameter.partitions(value))
            for c in query.all_criteria
            if c.parameter.index == index and c.parameter.partitions is not None
        ]
        if candidates:
            smallest: frozenset[str] = min(candidates, key=len)
            return Plan(index, tuple(sorted(smallest)), low, high, after=after, page_hint=page_hint)
    first = keys.NO_START_BUCKET if bounds.low == NEG_INFINITY else format_instant(bounds.low)[:7]
    last = keys.LAST_BUCKET if bounds.high == POS_INFINITY else format_instant(bounds.high)[:7]
    if after is not None:
        first = max(first, keys.bucket_of(after))
    return Plan(keys.PERIOD_START_INDEX, (), low, high, first, last, after, page_hint)


def start_bounds(query: SearchQuery, now: int) -> DateRange:
    """Bounds on period.start that every match satisfies (NEG/POS_INFINITY: unbounded)."""
    low, high = NEG_INFINITY, POS_INFINITY
    for criterion in query.all_criteria:
        bound = criterion.parameter.start_bounds
        if bound is None:
            continue
        ranges = [bound(value, now) for value in criterion.values]
        low = max(low, min(r.low for r in ranges))
        high = min(high, max(r.high for r in ranges))
    return DateRange(low, high)


def next_limit(limit: int) -> int:
    """The filter may drop rows: each further read of a partition is twice as large."""
    return min(limit * 2, MAX_QUERY_LIMIT)
