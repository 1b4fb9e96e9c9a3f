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

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

from fhir_encounter.dates import ANY_PERIOD, NEG_INFINITY, POS_INFINITY, PeriodBounds, format_instant
from fhir_encounter.errors import NotSupportedError
from fhir_encounter.search.criteria import Criterion
from fhir_encounter.search.generic import token_key
from fhir_encounter.search.parameters import date_period_bounds
from fhir_encounter.search.sorting import reorders
from fhir_encounter.store import keys
from fhir_encounter.store.fields import PERIOD, SUBJECT, FieldKind, IndexRow
from fhir_encounter.store.plan import Plan, Term
from fhir_encounter.store.values import Systems, ValuePath, any_system_keys, compartment_key, order_shards

if TYPE_CHECKING:  # types only: pydantic stays out of the modules that do not validate queries
    from fhir_encounter.search.cursor import Cursor
    from fhir_encounter.search.query import SearchQuery
    from fhir_encounter.store.dynamodb import ReadCost


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """The store's plan, and the criteria left to match on what it reads: on the index rows
    (``rows``), and on the resources (``bodies``, read for the rows that pass the first)."""

    plan: Plan
    rows: tuple[Criterion, ...]
    bodies: tuple[Criterion, ...]


def matching(
    rows: Iterable[IndexRow],
    planned: SearchPlan,
    now: int,
    with_bodies: Callable[[Iterator[IndexRow], ReadCost], Iterator[IndexRow]],
    cost: ReadCost,
) -> Iterator[IndexRow]:
    """The rows that the criteria the plan leaves match: on the rows first, then on the
    resources (read only for the rows that passed, and only when a criterion needs them)."""
    kept = (row for row in rows if all(c.matches_row(row, now) for c in planned.rows))
    if not planned.bodies:
        return kept
    return (
        row
        for row in with_bodies(kept, cost)
        if row.resource is not None and _resource_matches(json.loads(row.resource), planned.bodies, now)
    )


def _resource_matches(resource: Any, criteria: tuple[Criterion, ...], now: int) -> bool:
    return isinstance(resource, dict) and all(c.matches_resource(resource, now) for c in criteria)


class NotIndexedError(NotSupportedError):
    """A parameter whose values the table has not been linked under yet (a reindex does it)."""


def plan_search(
    query: SearchQuery,
    cursor: Cursor | None,
    now: int,
    indexed: Collection[str] | None = None,
    systems: Systems | None = None,
) -> SearchPlan:
    """``indexed``: the value paths (ValuePath.state_name) the table is linked under; None when
    the table holds no Encounter yet (nothing to find, so every path is as good as linked).
    ``systems``: the code systems the table has linked at each namespace (a code of any system
    is read under each of them); none when not given."""
    systems = systems or {}
    if query.order:
        return _ordered_plan(query, cursor, now, indexed, systems)
    linked = _linked_plan(query, cursor, now, indexed, systems)
    if linked is not None:
        return linked
    return _keyed(query, plan(query, cursor, now))


def _keyed(query: SearchQuery, search_plan: Plan) -> SearchPlan:
    """A keyed index's plan: every keyed criterion matched on its rows, the rest on the resources."""
    criteria = query.all_criteria
    return SearchPlan(
        search_plan, tuple(c for c in criteria if c.on_rows), tuple(c for c in criteria if not c.on_rows)
    )


# The most selective index first; a search with none of them walks the period-start index.
INDEX_PREFERENCE = (keys.APPOINTMENT_INDEX, keys.SUBJECT_INDEX)


def plan(query: SearchQuery, cursor: Cursor | None, now: int) -> Plan:
    after = cursor.after_sort_key if cursor else None
    descending = query.descending
    if table := _by_ids(query, after):
        return table
    bounds = period_bounds(query, now)
    low, high, after, page_hint = _range(query, cursor, bounds)

    def keyed(index: str, partitions: tuple[str, ...], decide: bool) -> Plan:
        return Plan(
            index,
            partitions,
            low,
            high,
            bounds,
            after,
            page_hint,
            decide,
            _fields(query),
            descending=descending,
        )

    if query.restrictions:
        return keyed(*_compartment(query, now))
    for index in INDEX_PREFERENCE:
        served = [
            c
            for c in query.all_criteria
            if c.on_rows and c.parameter.index == index and c.parameter.partitions
        ]
        candidates = [_partitions(c) for c in served]
        if candidates:
            smallest: frozenset[str] = min(candidates, key=len)
            decide = all(
                c.on_rows and c.parameter.index == index and smallest <= _partitions(c)
                for c in query.all_criteria
            ) and (index == keys.SUBJECT_INDEX or len(smallest) == 1)  # one subject each: disjoint
            return keyed(index, tuple(sorted(smallest)), decide)
    return Plan(
        keys.PERIOD_START_INDEX,
        (),
        low,
        high,
        bounds,
        after,
        page_hint,
        fields=_fields(query),
        settled_before=_settled_before(now),
        descending=descending,
    )


def _settled_before(now: int) -> str:
    """The year (text) from which period partitions may still be written to: last year's still change."""
    return str(int(format_instant(now)[:4]) - 1)


def _by_ids(query: SearchQuery, after: str | None) -> Plan | None:
    """A BatchGetItem of the ids that ``_id`` names (outside a compartment), in the query's order."""
    if query.restrictions or not (ids := query.values_of("_id")):
        return None
    wanted = frozenset.intersection(*(frozenset(values) for values in ids))
    return Plan(
        keys.TABLE,
        tuple(sorted(wanted)),
        keys.NO_START,
        keys.SORT_KEY_END,
        after=after,
        descending=query.descending,
        order=query.order,
    )


def _ordered_plan(
    query: SearchQuery, cursor: Cursor | None, now: int, indexed: Collection[str] | None, systems: Systems
) -> SearchPlan:
    """A plan that reads an order link's partitions (``_sort=_lastUpdated``): the subjects'
    partitions of the order when subject criteria choose them, else its global shards; linked and
    appointment criteria are checked by their link items, dates on the rows, the rest on the
    resources. ``_id`` outside a compartment reads its ids and orders them."""
    after = cursor.after_sort_key if cursor else None
    sort_key = query.sort[0]
    path = sort_key.parameter.path
    if path is None or (indexed is not None and path.state_name not in indexed):
        raise NotIndexedError(NOT_INDEXED_TEXT.format(what=f"Sorting by '{sort_key.parameter.name}'"))
    if table := _by_ids(query, after):
        return _keyed(query, table)
    criteria = query.all_criteria
    subjects = [c for c in criteria if c.on_rows and c.parameter.field is SUBJECT]
    order = query.order
    if subjects:
        allowed = frozenset.intersection(*(_partitions(c) for c in subjects))
        order_term = Term(
            keys.COMPARTMENT_INDEX, tuple(compartment_key(subject, order) for subject in sorted(allowed)), ()
        )
    else:
        order_term = Term(keys.VALUE_INDEX, order_shards(path), ())
    terms = [order_term]
    checked: set[int] = {id(c) for c in subjects}
    for criterion in criteria:
        value_path = criterion.parameter.path
        if (
            criterion.keys is not None
            and value_path is not None
            and (indexed is None or value_path.state_name in indexed)
        ):
            found = _linked_keys(criterion, systems)
            terms.append(Term(keys.VALUE_INDEX, found, _value_lookups(found), drives=False))
        elif criterion.on_rows and criterion.parameter.index == keys.APPOINTMENT_INDEX:
            terms.append(_appointment_term(criterion, drives=False))
        else:
            continue
        checked.add(id(criterion))
    rest = [c for c in criteria if id(c) not in checked]
    # On the order's rows: the period (projected) and the id; everything else on the resource.
    rows = tuple(c for c in rest if c.on_rows and c.parameter.field in (PERIOD, None))
    bodies = tuple(c for c in rest if c not in rows)
    if any(c.body is None for c in bodies):
        _not_linked(next(c for c in bodies if c.body is None))
    low, high = _resumed(*_order_range(query, path, now), after, query.descending)
    _, _, _, page_hint = _range(query, cursor, ANY_PERIOD)
    decide = len(terms) == 1 and len(order_term.partitions) == 1 and not rows and not bodies
    search_plan = Plan(
        keys.VALUE_INDEX,
        (),
        low,
        high,
        ANY_PERIOD,
        after,
        page_hint,
        decide,
        (PERIOD.name,) if rows else (),
        terms=tuple(terms),
        descending=query.descending,
        order=order,
    )
    return SearchPlan(search_plan, rows, bodies)


# The store sets meta.lastUpdated to the millisecond: an instant's end is less than this after its start.
INSTANT_WIDTH = 1_000_000


def _order_range(query: SearchQuery, path: ValuePath, now: int) -> tuple[str, str]:
    """The order's sort-key range that the criteria on its own path allow (``_lastUpdated=gt…``):
    each occurrence's values OR-ed, the occurrences AND-ed, as date_period_bounds reads them (an
    instant is a range of its precision: its end bounds its start to within INSTANT_WIDTH). The
    criteria are still matched on the resources: the range only has to hold every match."""
    bounds = ANY_PERIOD
    for criterion in query.all_criteria:
        if criterion.parameter.path == path and criterion.values and not criterion.modifier:
            each = (date_period_bounds(value, now) for value in criterion.values)
            bounds = bounds.meet(reduce(PeriodBounds.join, each))
    low = max(
        bounds.start.low, bounds.end.low - INSTANT_WIDTH if bounds.end.low != NEG_INFINITY else NEG_INFINITY
    )
    high = min(bounds.start.high, bounds.end.high)
    low_text = keys.start_text(low)  # every instant's text lies between NO_START and SORT_KEY_END
    high_text = keys.SORT_KEY_END if high == POS_INFINITY else format_instant(high) + "#~"
    return low_text, high_text


NOT_INDEXED_TEXT = (
    "{what} is not indexed in this server's table yet; its operator must reindex it "
    "(fhir-encounter reindex, docs/deploying.md)"
)


def _not_linked(criterion: Criterion) -> None:
    raise NotIndexedError(NOT_INDEXED_TEXT.format(what=f"Search parameter '{criterion.parameter.name}'"))


def _linked_keys(criterion: Criterion, systems: Systems) -> tuple[str, ...]:
    """The linked keys that hold the criterion's matches: its value keys, a code of any system
    (``=code``, never linked) read as ``system|code`` for each system the table has seen."""
    found = set(criterion.keys or ())
    for namespace, code in criterion.any_system:
        found.discard(token_key(namespace, None, code))
        found |= any_system_keys(namespace, code, systems)
    return tuple(sorted(found))


def _value_lookups(value_keys: tuple[str, ...]) -> tuple[str, ...]:
    """The table sort keys whose presence in an Encounter's partition proves one of the values."""
    return tuple(keys.VALUE_LINK_PREFIX + key for key in value_keys)


def _appointment_term(criterion: Criterion, *, drives: bool) -> Term:
    """An ``appointment`` criterion as a term: its partitions of the appointment index, and the
    link items that prove it."""
    refs = tuple(sorted(_partitions(criterion)))
    lookups = tuple(keys.link_key("", ref)[keys.SORT_KEY]["S"] for ref in refs)
    return Term(keys.APPOINTMENT_INDEX, refs, lookups, drives=drives)


def _resumed(low: str, high: str, after: str | None, descending: bool) -> tuple[str, str]:
    """A sort-key range narrowed to what follows a cursor's key in the walk's direction."""
    if after is not None and descending:
        return low, min(high, after)
    if after is not None:
        return max(low, after), high
    return low, high


def _linked_plan(
    query: SearchQuery, cursor: Cursor | None, now: int, indexed: Collection[str] | None, systems: Systems
) -> SearchPlan | None:
    """A value-index plan when a criterion is linked and no ``_id`` names the Encounters.

    Subject criteria (``patient``, ``subject``, the compartment) choose the subjects: each linked
    criterion's term then reads its keys within them. ``appointment`` is a term of its own index
    (outside a compartment it may drive; inside, it is only checked). Dates narrow the sort-key
    range and are matched on the rows (the value index projects the period); the rest on the
    resources.
    """
    criteria = query.all_criteria
    if any(c.on_rows and c.parameter.field is None for c in criteria):
        return None  # _id: a BatchGetItem of the ids reads less
    linked: list[Criterion] = []
    for criterion in criteria:
        path = criterion.parameter.path
        if criterion.keys is None or path is None:
            continue
        if indexed is None or path.state_name in indexed:
            linked.append(criterion)
        elif not criterion.on_rows:  # status still matches on rows; the others need the links
            _not_linked(criterion)
    if not linked:
        return None
    subjects = [c for c in criteria if c.on_rows and c.parameter.field is SUBJECT]
    compartment = bool(query.restrictions)
    allowed: frozenset[str] | None = None
    if subjects:
        allowed = frozenset.intersection(*(_partitions(c) for c in subjects))
    terms: list[Term] = []
    for criterion in linked:
        found = _linked_keys(criterion, systems)
        if allowed is None:
            terms.append(Term(keys.VALUE_INDEX, found, _value_lookups(found)))
        else:
            partitions = tuple(compartment_key(s, key) for s in sorted(allowed) for key in found)
            terms.append(Term(keys.COMPARTMENT_INDEX, partitions, _value_lookups(found)))
    appointments = [c for c in criteria if c.on_rows and c.parameter.index == keys.APPOINTMENT_INDEX]
    terms += [_appointment_term(criterion, drives=not compartment) for criterion in appointments]
    satisfied = {id(c) for c in (*linked, *subjects, *appointments)}
    rest = [c for c in criteria if id(c) not in satisfied]
    rows = tuple(c for c in rest if c.on_rows and c.parameter.field is PERIOD)
    bodies = tuple(c for c in rest if c not in rows)
    if any(c.body is None for c in bodies):
        return None  # a keyed criterion the value index's rows cannot carry: the keyed plan
    bounds = period_bounds(query, now)
    low, high, after, page_hint = _range(query, cursor, bounds)
    decide = len(terms) == 1 and len(terms[0].partitions) == 1 and not rows and not bodies
    search_plan = Plan(
        keys.VALUE_INDEX,
        (),
        low,
        high,
        bounds,
        after,
        page_hint,
        decide,
        (PERIOD.name,) if rows else (),
        settled_before=_settled_before(now),
        terms=tuple(terms),
        descending=query.descending,
        # Dates, and no subject: the period walk may drive instead, every term then checked
        # (outside a compartment only: a compartment's search reads only its own partitions).
        may_walk=bool(rows) and not subjects and not compartment,
    )
    return SearchPlan(search_plan, rows, bodies)


def _range(
    query: SearchQuery, cursor: Cursor | None, bounds: PeriodBounds
) -> tuple[str, str, str | None, int | None]:
    """The sort-key range the period bounds allow, the cursor's resume point and the page hint."""
    after = cursor.after_sort_key if cursor else None
    low = keys.start_text(bounds.start.low)
    high = keys.SORT_KEY_END
    if bounds.start.high != POS_INFINITY:
        high = format_instant(bounds.start.high) + "#~"
    low, high = _resumed(low, high, after, query.descending)
    page_hint = None
    # One match past the page says whether there are more; an order whose ties are put in order
    # in memory needs one more, which ends the page's last run (search.sorting).
    beyond = 2 if reorders(query.sort) else 1
    if cursor:
        page_hint = query.count + beyond
    elif not query.counts_total:
        page_hint = query.offset + query.count + beyond
    return low, high, after, page_hint


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
    on_field = [c for c in query.criteria if c.on_rows and c.parameter.field == field]
    partitions = tuple(sorted(p for p in allowed if all(_matches_value(c, p, now) for c in on_field)))
    decide = bool(partitions) and len(on_field) == len(query.criteria)
    return index, partitions, decide


def _matches_value(criterion: Criterion, value: str, now: int) -> bool:
    match = criterion.parameter.match
    return match is not None and match(value, criterion.values, now)


def _fields(query: SearchQuery) -> tuple[str, ...]:
    return tuple(
        sorted({c.parameter.field.name for c in query.all_criteria if c.on_rows and c.parameter.field})
    )


def period_bounds(query: SearchQuery, now: int) -> PeriodBounds:
    """What every match's period satisfies: each date criterion's values OR-ed, the criteria AND-ed."""
    bounds = ANY_PERIOD
    for criterion in query.all_criteria:
        implied = criterion.parameter.period_bounds
        if implied is not None and criterion.on_rows and criterion.values:
            each = (implied(value, now) for value in criterion.values)
            bounds = bounds.meet(reduce(PeriodBounds.join, each))
    return bounds


def _partitions(criterion: Criterion) -> frozenset[str]:
    """The partitions of the criterion's index that hold every row it matches."""
    partitions = criterion.parameter.partitions
    if partitions is None:
        return frozenset()
    return frozenset(key for value in criterion.values for key in partitions(value))
