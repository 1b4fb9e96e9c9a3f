"""The period-start index's partitions: each Encounter falls in one family by the length of its
period (geometric duration classes), so that a date search reads a family only where its matches
can start. Pure: the writer asks for an Encounter's partition, planning for a search's streams."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fhir_encounter.dates import (
    MICROS_PER_DAY,
    MICROS_PER_SECOND,
    NEG_INFINITY,
    POS_INFINITY,
    DateRange,
    PeriodBounds,
    format_instant,
)
from fhir_encounter.store.keys import SORT_KEY_END, start_text

HOUR = 3600 * MICROS_PER_SECOND
# Closed periods no longer than CLASS_LIMITS[k] (and longer than the limit before) are class
# "c<k>", bucketed by the UTC year of their start: a search reads class k only from
# (the earliest end it allows - CLASS_LIMITS[k]) on. Buckets bound the number of Queries, not
# the rows read (the sort-key range does that).
CLASS_LIMITS = (HOUR, 4 * HOUR, MICROS_PER_DAY, 4 * MICROS_PER_DAY, 16 * MICROS_PER_DAY, 64 * MICROS_PER_DAY)
# Closed and longer, or without a start: by the UTC year of the end, so that a window reads only
# those that end in or after its first year (their sort keys follow the start; a start-less
# period's is NO_START, which a bounded start leaves out).
BY_END = "end"
OPEN = "open"  # a start and no end: every one that starts before a window's end matches it
NO_PERIOD = "none"  # no period: read only by searches without a date
SHARDS = {OPEN: 2, NO_PERIOD: 4}  # partitions by a hash of the id, so that none is hot
SEPARATOR = "#"
_BEFORE_ALL, _AFTER_ALL = "", "~"  # bucket texts below and above every bucket


@dataclass(frozen=True, slots=True)
class Stream:
    """One partition to Query: its key and the inclusive sort-key range to read (a merge need not
    read it before the merged rows reach ``low``)."""

    partition: str
    low: str
    high: str


def partition_of(period: DateRange | None, encounter_id: str) -> str:
    """The period-start index partition of an Encounter with this period (None: no period)."""
    if period is None:
        return _shard(NO_PERIOD, encounter_id)
    if period.high == POS_INFINITY:
        return _shard(OPEN, encounter_id)
    length = period.high - period.low
    for k, limit in enumerate(CLASS_LIMITS):
        if length <= limit:
            return f"c{k}{SEPARATOR}{_bucket(period.low)}"
    return f"{BY_END}{SEPARATOR}{_bucket(period.high)}"  # long, or start-less (-inf start)


@dataclass(frozen=True, slots=True)
class _FamilyRange:
    buckets: tuple[str, str]  # inclusive range of bucket texts
    start: DateRange  # the starts to read
    by_start: bool  # bucketed by start: a bucket's text is a prefix of its sort keys


def period_streams(
    bounds: PeriodBounds,
    directory: Iterable[str],
    after: str | None = None,
    spans: Mapping[str, tuple[str, str]] | None = None,
    settled_before: str = "",
    descending: bool = False,
) -> list[Stream]:
    """The partitions (of those the directory lists) and sort-key ranges that hold every period
    within ``bounds``, after the sort key ``after`` in the walk's direction; in the order a merge
    opens them: by ``low``, or by ``high`` from the highest when ``descending``.

    ``spans``: the lowest and highest sort key of a partition as the directory knew them, used for
    the year partitions before the year ``settled_before``. A container keeps the directory a few
    seconds, and an Encounter written since may lie outside its partition's span; new Encounters go
    to this year's and last year's partitions (and the open shards), which are read whole."""
    ranges = _family_ranges(bounds)
    streams = []
    for partition in directory:
        family, _, bucket = partition.partition(SEPARATOR)
        found = ranges.get(family)
        if found is None or not found.buckets[0] <= bucket <= found.buckets[1]:
            continue
        low = start_text(found.start.low)
        high = SORT_KEY_END if found.start.high == POS_INFINITY else start_text(found.start.high) + "#~"
        if after is not None and descending:
            high = min(high, after)
        elif after is not None:
            low = max(low, after)
        if found.by_start:  # the bucket is a prefix of its sort keys
            low, high = max(low, bucket), min(high, bucket + SORT_KEY_END)
        settled = family not in SHARDS and bucket < settled_before
        if settled and spans and (span := spans.get(partition)):
            low, high = max(low, span[0]), min(high, span[1])
        if low <= high:
            streams.append(Stream(partition, low, high))
    if descending:
        return sorted(streams, key=lambda stream: (stream.high, stream.partition), reverse=True)
    return sorted(streams, key=lambda stream: (stream.low, stream.partition))


def _family_ranges(bounds: PeriodBounds) -> dict[str, _FamilyRange]:
    """For each family that can hold a match: its buckets and the starts to read.

    With starts in [a, b] and ends in [c, d], a closed period of length L in (shortest, longest]
    starts in [max(a, c - longest), min(b, d - shortest)].
    """
    a, b = bounds.start.low, bounds.start.high
    c, d = bounds.end.low, bounds.end.high
    if a > b or c > d:
        return {}
    ranges: dict[str, _FamilyRange] = {}
    shortest = 0
    for k, longest in enumerate(CLASS_LIMITS):
        start = DateRange(max(a, _minus(c, longest)), min(b, _minus(d, shortest)))
        if start.low <= start.high:
            ranges[f"c{k}"] = _FamilyRange((_bucket(start.low), _bucket(start.high)), start, True)
        shortest = longest + 1
    start = DateRange(a, min(b, _minus(d, shortest)))  # the longest, and the start-less (a = -inf)
    if start.low <= start.high:
        ranges[BY_END] = _FamilyRange((_bucket(c), _bucket(d)), start, False)
    if d == POS_INFINITY:  # an open period's end is +infinity
        ranges[OPEN] = _FamilyRange((_BEFORE_ALL, _AFTER_ALL), DateRange(a, b), False)
    if not bounds.needs_period:
        no_start = DateRange(NEG_INFINITY, NEG_INFINITY)  # their sort keys all begin with NO_START
        ranges[NO_PERIOD] = _FamilyRange((_BEFORE_ALL, _AFTER_ALL), no_start, False)
    return ranges


def _shard(family: str, encounter_id: str) -> str:
    return f"{family}{SEPARATOR}{zlib.crc32(encounter_id.encode()) % SHARDS[family]}"


def _minus(instant: int, length: int) -> int:
    """``instant - length``, where an infinite instant stays infinite."""
    return instant if instant in (NEG_INFINITY, POS_INFINITY) else instant - length


def _bucket(instant: int) -> str:
    """The UTC year of an instant: a bucket's text."""
    if instant == NEG_INFINITY:
        return _BEFORE_ALL
    if instant == POS_INFINITY:
        return _AFTER_ALL
    return format_instant(instant)[:4]
