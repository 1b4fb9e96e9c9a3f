"""The period-start index's families: which partition an Encounter's period falls in, and which
partitions and sort-key ranges a search reads, checked against the match rule itself."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from fhir_encounter.dates import MICROS_PER_DAY, NEG_INFINITY, POS_INFINITY, DateRange
from fhir_encounter.search.cursor import Cursor
from fhir_encounter.search.parameters import DATE_PREFIXES
from fhir_encounter.search.planning import plan
from fhir_encounter.search.query import parse_search
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.store.items import index_row_of, period_partition
from fhir_encounter.store.periods import CLASS_LIMITS, HOUR, SHARDS, partition_of
from tests.support import encounter, micros

START = micros("2021-06-15T10:00:00Z")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, "c0#2021"),
        (HOUR, "c0#2021"),
        (HOUR + 1, "c1#2021"),
        (4 * HOUR, "c1#2021"),
        (MICROS_PER_DAY, "c2#2021"),
        (4 * MICROS_PER_DAY, "c3#2021"),
        (16 * MICROS_PER_DAY, "c4#2021"),
        (64 * MICROS_PER_DAY, "c5#2021"),
        (64 * MICROS_PER_DAY + 1, "end#2021"),
        (400 * MICROS_PER_DAY, "end#2022"),  # a long stay is kept by the year it ends
    ],
)
def test_a_closed_period_falls_in_its_duration_class_by_start_year(length: int, expected: str) -> None:
    assert partition_of(DateRange(START, START + length), "e1") == expected


def test_open_start_less_and_missing_periods_have_their_own_families() -> None:
    assert partition_of(DateRange(NEG_INFINITY, START), "e1") == "end#2021"  # by its end, as long stays
    opened = {partition_of(DateRange(START, POS_INFINITY), f"e{n}") for n in range(200)}
    assert opened == {f"open#{n}" for n in range(SHARDS["open"])}
    missing = {partition_of(None, f"e{n}") for n in range(200)}
    assert missing == {f"none#{n}" for n in range(SHARDS["none"])}
    assert partition_of(None, "e1") == partition_of(None, "e1")  # stable: not Python's salted hash()


def test_the_class_limits_grow_geometrically() -> None:
    assert all(later <= 6 * earlier for earlier, later in itertools.pairwise(CLASS_LIMITS))
    assert CLASS_LIMITS[-1] == 64 * MICROS_PER_DAY


def test_a_day_window_reads_each_class_only_from_its_longest_length_before() -> None:
    query = parse_search({"date": ["ge2021-01-15", "lt2021-01-16"]})[0]
    chosen = plan(query, None, micros("2026-01-01T00:00:00Z"))
    directory = [f"c{k}#{year}" for k in range(6) for year in (2019, 2020, 2021, 2022)]
    directory += ["open#0", "open#1", "end#2020", "end#2021", "end#2022", "none#0"]
    streams = {s.partition: s for s in chosen.streams(directory)}
    assert sorted(streams) == [
        "c0#2021",
        "c1#2021",
        "c2#2021",
        "c3#2021",
        "c4#2020",  # 16 days before 2021-01-15 is in 2020
        "c4#2021",
        "c5#2020",
        "c5#2021",
        "end#2021",  # long or start-less ones that end in or after 2021
        "end#2022",
        "open#0",
        "open#1",
    ]
    assert streams["c0#2021"].low == "2021-01-14T23:00:00.000000Z"
    assert streams["c2#2021"].low == "2021-01-14T00:00:00.000000Z"
    assert streams["c4#2020"].low == "2020-12-30T00:00:00.000000Z"
    assert streams["c0#2021"].high == "2021-01-15T23:59:59.999999Z#~"
    assert streams["open#0"].high == "2021-01-15T23:59:59.999999Z#~"  # every open one before Y
    assert (streams["end#2021"].low, streams["open#0"].low) == ("0000-00-00T00:00:00.000000Z",) * 2


@pytest.mark.parametrize("now", ["2026-01-01T00:00:00Z", "2026-12-31T23:00:00Z"])
def test_a_settled_partition_is_read_only_within_its_span_and_not_at_all_outside_it(now: str) -> None:
    query = parse_search({"date": ["ge2024-01-01", "lt2024-02-01"]})[0]
    chosen = plan(query, None, micros(now))
    assert chosen.settled_before == "2025"  # last year's partitions may still take Encounters
    directory = ["c0#2023", "c4#2023", "c0#2024", "c4#2024", "open#0", "open#1"]
    spans = {
        "c0#2023": ("2023-01-02T10:00:00.000000Z#e1", "2023-12-30T10:00:00.000000Z#e9"),  # ends before
        "c4#2023": ("2023-02-01T10:00:00.000000Z#e2", "2023-12-20T10:00:00.000000Z#e3"),  # reaches in
        "c0#2024": ("2024-01-10T08:00:00.000000Z#e4", "2024-12-01T08:00:00.000000Z#e5"),
        "open#1": ("2024-03-01T08:00:00.000000Z#e6", "2025-01-01T08:00:00.000000Z#e7"),  # shards: whole
    }
    streams = {s.partition: s for s in chosen.streams(directory, spans)}
    assert sorted(streams) == ["c0#2024", "c4#2023", "c4#2024", "open#0", "open#1"]
    assert streams["c4#2023"].low == "2023-12-16T00:00:00.000000Z"  # the class's own bound
    assert streams["c4#2023"].high == "2023-12-20T10:00:00.000000Z#e3"  # the span's last
    assert streams["c0#2024"].low == "2024-01-10T08:00:00.000000Z#e4"  # the span's first
    assert streams["open#1"].low == streams["open#0"].low == "0000-00-00T00:00:00.000000Z"
    without = {s.partition for s in chosen.streams(directory)}
    assert without == {"c0#2023", "c4#2023", "c0#2024", "c4#2024", "open#0", "open#1"}


def test_this_and_last_years_partitions_are_read_whole_whatever_their_span() -> None:
    query = parse_search({"date": ["ge2025-12-01", "lt2026-01-05"]})[0]
    chosen = plan(query, None, micros("2026-01-02T00:00:00Z"))
    spans = {"c0#2025": ("2025-01-01T00:00:00.000000Z#a", "2025-06-01T00:00:00.000000Z#b")}
    spans |= {"c0#2026": ("2026-01-01T00:00:00.000000Z#c", "2026-01-01T01:00:00.000000Z#d")}
    streams = {s.partition: s for s in chosen.streams(["c0#2025", "c0#2026"], spans)}
    assert streams["c0#2025"].low == "2025-11-30T23:00:00.000000Z"
    assert streams["c0#2026"].high == "2026-01-04T23:59:59.999999Z#~"


# ---- property: every match lies in a stream, for periods of every family ----------------------------


def _text(instant: int, cut: int) -> str:
    return (EPOCH + timedelta(microseconds=instant)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:cut] + (
        "Z" if cut >= 16 else ""
    )


def _row(rng: random.Random, number: int) -> IndexRow:
    """Periods of every family: lengths spread over all classes, open, start-less and none."""
    start = rng.randrange(micros("2019-01-01T00:00:00Z"), micros("2023-01-01T00:00:00Z"))
    length = int(rng.choice([60_000_000, HOUR, MICROS_PER_DAY, 200 * MICROS_PER_DAY]) * rng.random() * 4)
    shape = rng.random()
    cut = rng.choice([10, 16, 19, 26])
    start_text = None if shape < 0.1 else _text(start, cut)
    end_text = None if shape < 0.05 or shape > 0.9 else _text(start + length, cut)
    return index_row_of(encounter(f"e{number}", start=start_text, end=end_text))


def _criterion(rng: random.Random) -> str:
    instant = rng.randrange(micros("2019-01-01T00:00:00Z"), micros("2023-01-01T00:00:00Z"))
    return f"{rng.choice(DATE_PREFIXES)}{_text(instant, rng.choice([4, 7, 10, 16, 19]))}"


def test_every_match_of_any_prefix_lies_in_one_of_the_streams() -> None:
    rng = random.Random(7)
    rows = [_row(rng, n) for n in range(300)]
    directory = sorted({period_partition(row) for row in rows})
    assert {p.split("#")[0] for p in directory} >= {
        "c0",
        "c1",
        "c2",
        "c3",
        "c4",
        "c5",
        "end",
        "open",
        "none",
    }
    checked = skipped = 0
    for _ in range(300):
        dates = [
            ",".join(_criterion(rng) for _ in range(rng.randint(1, 2))) for _ in range(rng.randint(0, 2))
        ]
        query = parse_search({"date": dates} if dates else {})[0]
        now = micros("2026-01-01T00:00:00Z")
        cursor = Cursor(rng.choice(rows).sort_key, 10, None) if rng.random() < 0.3 else None
        streams = plan(query, cursor, now).streams(directory)
        for row in rows:
            read = any(
                s.partition == period_partition(row) and s.low <= row.sort_key <= s.high for s in streams
            )
            wanted = query.matches(row, now) and (cursor is None or row.sort_key > cursor.after_sort_key)
            assert read or not wanted, (dates, cursor, row)
            checked += wanted
            skipped += not read
    assert checked > 5000
    assert skipped > 20000  # the streams leave most non-matching rows unread
