"""Pure query planning: which index, which partitions or buckets, which sort-key range, how much
to read per Query. No I/O: tests drive it with plain values.

Under a compartment (the query's restrictions: a patient token's ``Patient/<id>``) the plan
reads the compartment's partitions of its index and nothing else, whatever the client asked:
every other criterion is matched on those rows, and a criterion that no row of the compartment
can satisfy (``patient=`` another patient, ``subject=Group/x``) leaves no partition to read, an
empty plan. What a compartment's search reads is then a function of the compartment's own rows
and the criteria, never of another patient's data.
"""

from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING

from fhir_encounter.dates import ANY_PERIOD, POS_INFINITY, PeriodBounds, format_instant
from fhir_encounter.store import keys
from fhir_encounter.store.fields import FieldKind
from fhir_encounter.store.plan import Plan

if TYPE_CHECKING:  # types only: pydantic stays out of the modules that do not validate queries
    from fhir_encounter.search.cursor import Cursor
    from fhir_encounter.search.query import Criterion, SearchQuery

# The most selective index first; a search with none of them walks the period-start index.
INDEX_PREFERENCE = (keys.APPOINTMENT_INDEX, keys.SUBJECT_INDEX)


def plan(query: SearchQuery, cursor: Cursor | None, now: int) -> Plan:
    after = cursor.after_sort_key if cursor else None
    if not query.restrictions and (ids := query.values_of("_id")):
        wanted = frozenset.intersection(*(frozenset(values) for values in ids))
        return Plan(keys.TABLE, tuple(sorted(wanted)), keys.NO_START, keys.SORT_KEY_END, after=after)
    bounds = period_bounds(query, now)
    low = keys.start_text(bounds.start.low)
    high = keys.SORT_KEY_END
    if bounds.start.high != POS_INFINITY:
        high = format_instant(bounds.start.high) + "#~"
    if after is not None:
        low = max(low, after)
    page_hint = None
    if cursor:
        page_hint = query.count + 1
    elif not query.counts_total:
        page_hint = query.offset + query.count + 1
    if query.restrictions:
        index, partitions, decide = _compartment(query, now)
        return Plan(index, partitions, low, high, bounds, after, page_hint, decide, _fields(query))
    for index in INDEX_PREFERENCE:
        served = [c for c in query.all_criteria if c.parameter.index == index and c.parameter.partitions]
        candidates = [_partitions(c) for c in served]
        if candidates:
            smallest: frozenset[str] = min(candidates, key=len)
            decide = all(
                c.parameter.index == index and smallest <= _partitions(c) for c in query.all_criteria
            ) and (index == keys.SUBJECT_INDEX or len(smallest) == 1)  # one subject each: disjoint
            partitions = tuple(sorted(smallest))
            return Plan(index, partitions, low, high, bounds, after, page_hint, decide, _fields(query))
    settled_before = str(int(format_instant(now)[:4]) - 1)  # last year's partitions still change
    return Plan(
        keys.PERIOD_START_INDEX,
        (),
        low,
        high,
        bounds,
        after,
        page_hint,
        fields=_fields(query),
        settled_before=settled_before,
    )


def _compartment(query: SearchQuery, now: int) -> tuple[str, tuple[str, ...], bool]:
    """The index and partitions a restricted query reads, and whether they decide the match.

    A restriction is a criterion on a single-valued field that its index is keyed on, one
    partition per value (the compartment: ``subject`` on the subject index): every row of
    partition ``p`` carries ``p`` in that field. So the partitions are those every restriction
    allows, less those that a client criterion on the same field rules out (matched on ``p``
    itself, as it would be on each of the partition's rows). Client criteria on other fields,
    or on other indexes (``_id``, ``appointment``, ``date``, any added later), filter the rows
    read and never choose what is read. When every criterion is on the field, every row of the
    partitions left matches: they decide.
    """
    restrictions = query.restrictions
    index = restrictions[0].parameter.index
    field = restrictions[0].parameter.field
    if (
        index is None
        or field is None
        or field.kind is not FieldKind.STRING
        or any((r.parameter.index, r.parameter.field) != (index, field) for r in restrictions)
    ):
        raise ValueError("a restriction is a criterion on the single-valued key of one index")
    allowed = frozenset.intersection(*(_partitions(r) for r in restrictions))
    on_field = [c for c in query.criteria if c.parameter.field == field]
    partitions = tuple(
        sorted(p for p in allowed if all(c.parameter.match(p, c.values, now) for c in on_field))
    )
    decide = bool(partitions) and len(on_field) == len(query.criteria)
    return index, partitions, decide


def _fields(query: SearchQuery) -> tuple[str, ...]:
    return tuple(sorted({c.parameter.field.name for c in query.all_criteria if c.parameter.field}))


def period_bounds(query: SearchQuery, now: int) -> PeriodBounds:
    """What every match's period satisfies: each date criterion's values OR-ed, the criteria AND-ed."""
    bounds = ANY_PERIOD
    for criterion in query.all_criteria:
        implied = criterion.parameter.period_bounds
        if implied is not None and criterion.values:
            each = (implied(value, now) for value in criterion.values)
            bounds = bounds.meet(reduce(PeriodBounds.join, each))
    return bounds


def _partitions(criterion: Criterion) -> frozenset[str]:
    """The partitions of the criterion's index that hold every row it matches."""
    partitions = criterion.parameter.partitions
    if partitions is None:
        return frozenset()
    return frozenset(key for value in criterion.values for key in partitions(value))
