"""Search shapes and what each reads: rows read per match against the floor.

Rows read are counted on the client that the search handler uses, from botocore's ``after-call``
events, independently of the project's own accounting: a Query's ``ScannedCount`` (so a
``Select=COUNT`` Query counts the rows it counted), the items a BatchGetItem or GetItem returned.
Read units are DynamoDB's ``ConsumedCapacity`` of the same calls.

The floor of a search that counts ``total`` is the matching index rows plus the page's bodies
(total + page); of one that does not (``_total=none``, a cursor page), the page's rows and bodies
(2 x page). Rows read per match
is rows read / floor: 1.0 reads nothing beyond the answer.
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
        counted = self.returned if self.total is None or self.shape.resumed else self.total
        return counted + self.returned

    @property
    def per_match(self) -> float:
        return self.rows / max(1, self.floor)
