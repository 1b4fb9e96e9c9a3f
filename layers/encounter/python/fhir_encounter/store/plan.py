"""What the store executes for a search: the index, its partitions and sort-key ranges (a Plan,
which search/planning.py makes from a query), and how much each Query reads. Pure.

A value-index plan is an AND of Terms: one term drives (its partitions are read in sort-key
order) and each of the others is checked on the driver's rows by looking up the link items that
prove it (store.values): rows read are the driver's matches, and one key per check. With dates,
the period walk may drive instead (``may_walk``), every term then checked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fhir_encounter.dates import ANY_PERIOD, PeriodBounds
from fhir_encounter.store import keys
from fhir_encounter.store.periods import Stream, period_streams

MAX_QUERY_LIMIT = 1000
MIN_STREAM_LIMIT = 2


@dataclass(frozen=True, slots=True)
class Term:
    """One criterion of a value-index plan: the partitions of ``index`` whose rows are its matches
    (any of them), and the table sort keys whose presence in an Encounter's partition proves it.
    ``drives``: it may be the term that is read (not one outside the caller's compartment)."""

    index: str
    partitions: tuple[str, ...]
    lookups: tuple[str, ...]
    drives: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    index: str  # keys.TABLE (BatchGetItem of ids) or an index name
    partitions: tuple[str, ...]  # ids for keys.TABLE, partition keys for a GSI; () for the period walk
    low: str  # sort-key bounds, inclusive
    high: str
    bounds: PeriodBounds = ANY_PERIOD  # the period walk's: which partitions, which starts
    after: str | None = None  # resume after this sort key (a cursor's)
    page_hint: int | None = None  # Query Limit: about a page when nothing is counted
    partitions_decide: bool = False  # every row of the partitions matches: Select=COUNT counts
    fields: tuple[str, ...] = ()  # the index fields the criteria match: all a row must carry
    settled_before: str = ""  # the year (text) from which period partitions may still be written to
    terms: tuple[Term, ...] = ()  # a value-index plan's criteria (AND); then index is VALUE_INDEX
    descending: bool = False  # read from the highest sort key down (``after`` is then "before")
    order: str = ""  # the order (store.values.order_key) the rows come in; "" for the sort key's
    may_walk: bool = False  # a value-index plan whose period bounds the period walk may drive

    @property
    def walks_buckets(self) -> bool:
        return self.index == keys.PERIOD_START_INDEX

    @property
    def empty(self) -> bool:
        """Nothing can match, and nothing is read: dates that contradict each other (BETWEEN
        would be a 400), or no partition of a keyed index left to read."""
        if self.terms:
            return self.low > self.high or any(not term.partitions for term in self.terms)
        return self.low > self.high or (not self.walks_buckets and not self.partitions)

    def streams(
        self, directory: Iterable[str] = (), spans: Mapping[str, tuple[str, str]] | None = None
    ) -> list[Stream]:
        """The partitions to Query and their sort-key ranges; the period walk picks from the
        directory of period-start partitions in use, within their spans of sort keys."""
        if self.walks_buckets:
            return period_streams(
                self.bounds, directory, self.after, spans, self.settled_before, self.descending
            )
        partitions = self.terms[0].partitions if self.terms else self.partitions
        return [Stream(partition, self.low, self.high) for partition in partitions]

    def beyond(self, sort_key: str) -> bool:
        """Whether a row comes after the cursor's key in the walk's direction."""
        if self.after is None:
            return True
        return sort_key < self.after if self.descending else sort_key > self.after


def stream_limit(page_hint: int | None, streams: int) -> int | None:
    """The first Query Limit of each of ``streams`` merged partitions: a share of the page hint
    (and one more), so that a page from many partitions reads about a page, not one per partition;
    a partition that supplies more reads on, each time twice as much."""
    if page_hint is None or streams <= 1:
        return page_hint
    return min(page_hint, max(MIN_STREAM_LIMIT, -(-page_hint // streams) + 1))


def next_limit(limit: int) -> int:
    """The filter may drop rows: each further read of a partition is twice as large."""
    return min(limit * 2, MAX_QUERY_LIMIT)
