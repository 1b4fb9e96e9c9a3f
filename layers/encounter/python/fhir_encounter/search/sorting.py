"""``_sort`` (FHIR R4 3.1.1.5.3): which parameters a search can be sorted by, and the order of the
matches. Pure.

The order is: the sort keys in turn, each ascending or (``-``) descending, then the id
ascending. A missing value sorts lowest: first ascending, last descending. Without ``_sort`` it
is ``date``. Two orders are stored, so that the walk reads an index in order and never sorts all
the matches in memory:
- ``date`` sorts by Encounter.period.start (R4 leaves the value of a Period to sort by open; like
  HAPI this server uses its start both ways): every index's sort key, ``<start>#<id>``;
- ``_lastUpdated`` by meta.lastUpdated: its order links, ``<instant>#<id>`` (store.values).
The walk reads the first key's order forwards or backwards. Matches with the same first value
(a run: the sort key before its ``#<id>``) are then put in the order of the other keys and the
id (:func:`in_order`); only a run of more than one Encounter is reordered, and a cursor that
stops inside a run resumes at the run and skips what was sent (:func:`resume_point`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from fhir_encounter.dates import NEG_INFINITY
from fhir_encounter.search.parameters import SEARCH_PARAMETERS, SearchParameter
from fhir_encounter.store.fields import PERIOD, IndexRow
from fhir_encounter.store.values import ValueKind, order_key

RUN_MARK = "\x00"  # separates a cursor's run boundary from the matches of the run already sent
RUN_END = "#~"  # above every sort key of a run (ids sort below "~")


@dataclass(frozen=True, slots=True)
class SortKey:
    parameter: SearchParameter
    descending: bool = False

    @property
    def text(self) -> str:
        return f"-{self.parameter.name}" if self.descending else self.parameter.name

    @property
    def order(self) -> str:
        """The stored order the key reads: "" for the sort key's, else an order link's key."""
        order = stored_order(self.parameter)
        if order is None:
            raise ValueError(f"{self.parameter.name} cannot sort")
        return order


def stored_order(parameter: SearchParameter) -> str | None:
    """The stored order a parameter sorts by ("" for the sort key's), or None when it cannot sort."""
    if parameter.field is PERIOD:
        return ""
    if parameter.path is not None and parameter.path.kind is ValueKind.INSTANT:
        return order_key(parameter.path)
    return None


SORTABLE = tuple(name for name, parameter in SEARCH_PARAMETERS.items() if stored_order(parameter) is not None)


def parse_sort(text: str) -> tuple[SortKey, ...]:
    """The sort keys of a ``_sort`` value; ValueError names what is wrong."""
    sort_keys: list[SortKey] = []
    for item in text.split(","):
        item = item.strip()
        name = item.removeprefix("-")
        if not name:
            raise ValueError("an empty sort key")
        parameter = SEARCH_PARAMETERS.get(name)
        if parameter is None or stored_order(parameter) is None:
            raise ValueError(f"sorting is supported by {', '.join(SORTABLE)} (each may be preceded by '-')")
        if any(key.parameter is parameter for key in sort_keys):
            raise ValueError(f"'{name}' is named twice")
        sort_keys.append(SortKey(parameter, item.startswith("-")))
    return tuple(sort_keys)


def reorders(sort: tuple[SortKey, ...]) -> bool:
    """Whether runs must be reordered: the walk gives (first key, id) in the first key's
    direction, which is the order asked for only when that is ascending and alone."""
    return len(sort) > 1 or (bool(sort) and sort[0].descending)


def resume_point(after: str | None) -> tuple[str | None, str, int]:
    """A cursor's key as (where the walk resumes, the run it stopped in or "", how many of that
    run's matches were sent)."""
    if after is None or RUN_MARK not in after:
        return after, "", 0
    boundary, _, sent = after.partition(RUN_MARK)
    return boundary, boundary.removesuffix(RUN_END), int(sent)


# The values of the keys after the first, for the Encounters of a run of more than one:
# parameter name -> {id: value}; the id's absence means no value.
Values = Callable[[list[IndexRow], tuple[SortKey, ...]], Mapping[str, Mapping[str, int]]]


def in_order(
    rows: Iterable[IndexRow], sort: tuple[SortKey, ...], values: Values, resumed: tuple[str, int] = ("", 0)
) -> Iterator[IndexRow]:
    """The walk's matching rows in the order ``sort`` asks for: each run put in the order of the
    keys after the first and the id, each row's sort key made the cursor key that resumes after
    it. ``resumed``: the run a cursor stopped in and how many of its matches were sent."""
    descending = sort[0].descending
    rest = sort[1:]
    for run, grouped in itertools.groupby(rows, key=lambda row: row.sort_key.rpartition("#")[0]):
        members = list(grouped)
        if len(members) > 1:
            members = _sorted_run(members, rest, values(members, rest) if rest else {})
        boundary = run + RUN_END if descending else run
        skip = resumed[1] if run == resumed[0] else 0
        for position, row in enumerate(members[skip:], start=skip + 1):
            yield replace(row, sort_key=f"{boundary}{RUN_MARK}{position}")


def _sorted_run(
    members: list[IndexRow], rest: tuple[SortKey, ...], values: Mapping[str, Mapping[str, int]]
) -> list[IndexRow]:
    """A run by the other keys (a missing value lowest), then the id ascending: stable sorts,
    the least significant first."""
    result = sorted(members, key=lambda row: row.id)
    for key in reversed(rest):
        found = values.get(key.parameter.name, {})
        result.sort(key=lambda row: (row.id in found, found.get(row.id, 0)), reverse=key.descending)
    return result


def period_starts(rows: list[IndexRow]) -> dict[str, int]:
    """The period start of each row that carries its period and has a start."""
    starts = {}
    for row in rows:
        period = row.values.get(PERIOD.name)
        if period is not None and period.low != NEG_INFINITY:
            starts[row.id] = period.low
    return starts
