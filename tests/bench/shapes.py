"""Search shapes and what each reads: rows read per match against the floor.

Rows read are counted on the client that the search handler uses, from botocore's ``after-call``
events, independently of the project's own accounting: a Query's ``ScannedCount`` (so a
``Select=COUNT`` Query counts the rows it counted), the items a BatchGetItem or GetItem returned.
Read units are DynamoDB's ``ConsumedCapacity`` of the same calls.

The floor is the ideal that issue 17 states: bare boto3 on indexes that exactly fit the shape,
answering a first page with a ``Select=COUNT`` Query (the matches), a page Query (the page's rows)
and one BatchGetItem (the page's bodies): total + 2 x page; a page without a total (``_total=none``,
a cursor page), the page's rows and bodies: 2 x page. Rows read per match is rows read / floor:
1.0 reads nothing beyond the answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.bench.dataset import Dataset

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
DAY, MONTH, YEAR = "2022-06-15", "2022-06", "2022"
EDGE_START = "2022-06-15T00:00:00Z"
# [X, Y) windows as long as each duration class's longest period (its edge), then a month and a year.
WINDOWS = (
    ("1 hour (c0 edge)", EDGE_START, "2022-06-15T01:00:00Z"),
    ("1 day (c1 edge)", EDGE_START, "2022-06-16T00:00:00Z"),
    ("4 days (c2 edge)", EDGE_START, "2022-06-19T00:00:00Z"),
    ("16 days (c3 edge)", EDGE_START, "2022-07-01T00:00:00Z"),
    ("64 days (c4 edge)", EDGE_START, "2022-08-18T00:00:00Z"),
    ("a month", "2022-06-01", "2022-07-01"),
    ("a year", "2022-01-01", "2023-01-01"),
)
DATE_TARGET = 1.2  # rows read per match, every date shape


@dataclass(frozen=True)
class Shape:
    name: str
    query: str
    target: float | None = None  # rows read per match
    resumed: bool = False  # a cursor page: its total is carried, not counted


def window_shapes() -> list[Shape]:
    """ge + lt windows at each duration class's edge, a month and a year."""
    return [
        Shape(f"date window of {label}", f"date=ge{low}&date=lt{high}", DATE_TARGET)
        for label, low, high in WINDOWS
    ]


def prefix_shapes() -> list[Shape]:
    """Each date prefix with a day, a month and a year."""
    return [
        Shape(f"date={prefix}{value}", f"date={prefix}{value}", DATE_TARGET)
        for prefix in PREFIXES
        for value in (DAY, MONTH, YEAR)
    ]


def other_shapes(data: Dataset) -> list[Shape]:
    typical, busiest = data.typical_patient, data.busiest_patient
    return [
        Shape("no criteria, with total", "_count=10"),
        Shape("no criteria, _total=none", "_count=10&_total=none"),
        Shape("status=finished", "status=finished"),
        Shape("status=in-progress", "status=in-progress"),
        Shape(f"patient (typical, {data.patient_counts[typical]:,})", f"patient={typical}"),
        Shape(f"patient (busiest, {data.patient_counts[busiest]:,})", f"patient={busiest}"),
        Shape("patient (typical) + date month", f"patient={typical}&date={MONTH}"),
        Shape("patient (busiest) + date=ge2024-01-01", f"patient={busiest}&date=ge2024-01-01"),
        Shape("patient (busiest) + date year", f"patient={busiest}&date={YEAR}"),
        Shape("appointment (shared)", f"appointment={data.shared_appointment}"),
        Shape(
            "status=finished + date window of a month", "status=finished&date=ge2022-06-01&date=lt2022-07-01"
        ),
    ]


VALUE_TARGET = 1.2  # rows read per match: positive single-parameter shapes, patient + X, sorted pages
# US Core's Encounter searches are patient + one of these (and date, above).
US_CORE = ("class", "type", "status", "identifier", "location", "discharge-disposition")


def _first(encounters: list[dict[str, Any]], found: Any) -> str:
    """The first value ``found`` gives for the Encounters (searching from the middle)."""
    middle = len(encounters) // 2
    for encounter in [*encounters[middle:], *encounters[:middle]]:
        try:
            value = found(encounter)
        except (KeyError, IndexError, TypeError):
            continue
        if value:
            return str(value)
    raise ValueError("no Encounter has the value")


def _token(coding: dict[str, Any]) -> str:
    return f"{coding['system']}|{coding['code']}"


def value_shapes(data: Dataset) -> list[Shape]:
    """Each search parameter of the value index alone, with values the data has (targets: rows
    read per match <= 1.2), its modifiers (reported), and every US Core combination with the
    typical patient (target)."""
    typical = data.typical_patient
    everyone = data.encounters
    mine = [e for e in everyone if e["subject"]["reference"] == typical]
    values = {
        "class": lambda e: e["class"]["code"],
        "type": lambda e: _token(e["type"][0]["coding"][0]),
        "status": lambda e: e["status"],
        "identifier": lambda e: _token({**e["identifier"][0], "code": e["identifier"][0]["value"]}),
        "location": lambda e: e["location"][0]["location"]["reference"],
        "discharge-disposition": lambda e: _token(e["hospitalization"]["dischargeDisposition"]["coding"][0]),
        "practitioner": lambda e: next(
            p["individual"]["reference"]
            for p in e["participant"]
            if p["individual"].get("reference", "").startswith("Practitioner/")
        ),
        "participant-type": lambda e: _token(e["participant"][-1]["type"][0]["coding"][0]),
        "reason-code": lambda e: _token(e["reasonCode"][0]["coding"][0]),
        "service-provider": lambda e: e["serviceProvider"]["reference"],
        "episode-of-care": lambda e: e["episodeOfCare"][0]["reference"],
        "diagnosis": lambda e: e["diagnosis"][0]["condition"]["reference"],
        "account": lambda e: e["account"][0]["reference"],
        "special-arrangement": lambda e: _token(e["hospitalization"]["specialArrangement"][0]["coding"][0]),
    }
    shapes = [
        Shape(f"{name} (one value)", f"{name}={_first(everyone, found)}", VALUE_TARGET)
        for name, found in values.items()
    ]
    shapes += [
        Shape("class:not=AMB", "class:not=AMB"),
        Shape("discharge-disposition:missing=false", "discharge-disposition:missing=false"),
        Shape("length=gt1|http://unitsofmeasure.org|d", "length=gt1|http://unitsofmeasure.org|d"),
        Shape("location-period month", "location-period=ge2022-06-01&location-period=lt2022-07-01"),
    ]
    shapes += [
        Shape(
            f"patient (typical) + {name}",
            f"patient={typical}&{name}={_first(mine, values[name])}",
            VALUE_TARGET,
        )
        for name in US_CORE
    ]
    shapes.append(Shape("patient (typical) + _lastUpdated=ge2020", f"patient={typical}&_lastUpdated=ge2020"))
    return shapes


def sort_shapes(data: Dataset) -> list[Shape]:
    """Pages in another order than the default, without counting (target: rows read per row
    returned <= 1.2, the floor of a page without total)."""
    typical, busiest = data.typical_patient, data.busiest_patient
    return [
        Shape(f"_sort={sort}{label}", f"{query}_sort={sort}&_total=none", VALUE_TARGET)
        for sort in ("-date", "_lastUpdated", "-_lastUpdated")
        for label, query in (
            ("", ""),
            (" (typical patient)", f"patient={typical}&"),
            (" (busiest patient)", f"patient={busiest}&"),
        )
    ]


class ReadCounter:
    """What the calls on one client read, since the last ``reset``. The repository's Queries run
    on a pool of threads: botocore calls the hook in each, so the sums take a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queries = 0
        self.rows = 0
        self.read_units = 0.0

    def attach(self, client: DynamoDBClient) -> None:
        client.meta.events.register("after-call.dynamodb", self._after_call)

    def reset(self) -> None:
        with self._lock:
            self.queries, self.rows, self.read_units = 0, 0, 0.0

    def _after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        operation, queries, rows = model.name, 0, 0
        if operation == "Query":
            queries, rows = 1, int(parsed.get("ScannedCount", 0))
        elif operation == "BatchGetItem":
            rows = sum(len(items) for items in parsed.get("Responses", {}).values())
        elif operation == "GetItem":
            rows = 1 if "Item" in parsed else 0
        consumed = parsed.get("ConsumedCapacity", [])
        units = sum(
            float(c.get("CapacityUnits", 0.0))
            for c in ([consumed] if isinstance(consumed, dict) else consumed)
        )
        with self._lock:
            self.queries += queries
            self.rows += rows
            self.read_units += units


@dataclass(frozen=True)
class Reading:
    """One search's reads: what it read, its answer, and the floor."""

    shape: Shape
    rows: int
    queries: int
    read_units: float
    total: int | None  # the matches (None: not counted)
    returned: int
    ms: float
    count_stopped: bool = False  # the first page's count stopped at its budget: the count alone measured

    @property
    def floor(self) -> int:
        counted = 0 if self.total is None or self.shape.resumed else self.total
        return counted + 2 * self.returned

    @property
    def per_match(self) -> float:
        return self.rows / max(1, self.floor)
