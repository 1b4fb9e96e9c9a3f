"""Query planning as a pure function of plain values: which index and partitions, the sort-key range
and buckets the date criteria allow, where a cursor resumes, and how much each Query reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, PeriodBounds, parse_range
from fhir_encounter.search.criteria import Criterion
from fhir_encounter.search.cursor import Cursor
from fhir_encounter.search.parameters import DATE_PREFIXES, SEARCH_PARAMETERS, ParamType
from fhir_encounter.search.planning import period_bounds, plan, plan_search
from fhir_encounter.search.query import SearchQuery, parse_search
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.store.items import index_row_of, period_partition
from fhir_encounter.store.keys import APPOINTMENT_INDEX, PERIOD_START_INDEX, SUBJECT_INDEX, VALUE_INDEX
from fhir_encounter.store.plan import MAX_QUERY_LIMIT, Plan, next_limit, stream_limit
from tests.support import encounter, micros

NOW = micros("2026-01-01T00:00:00Z")
NO_START = "0000-00-00T00:00:00.000000Z"  # the sort-key text of a missing period.start
END = "~"  # after every sort key
CURSOR = Cursor("2021-08-03T10:00:00.000000Z#e7", 10, 57)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parsed(query: str) -> SearchQuery:
    return parse_search(parse_qs(query, keep_blank_values=True))[0]


def plan_of(query: str, cursor: Cursor | None = None) -> Plan:
    return plan(parsed(query), cursor, NOW)


# ---- which index, which partitions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "index", "partitions"),
    [
        ("", PERIOD_START_INDEX, ()),
        ("date=ge2021", PERIOD_START_INDEX, ()),
        ("status=finished", PERIOD_START_INDEX, ()),
        ("patient=p1", SUBJECT_INDEX, ("Patient/p1",)),
        ("patient=p1&date=2021&status=finished", SUBJECT_INDEX, ("Patient/p1",)),
        ("subject=Group/7", SUBJECT_INDEX, ("Group/7",)),
        ("appointment=a1", APPOINTMENT_INDEX, ("Appointment/a1",)),
        ("patient=p1&appointment=a2,a1&date=2021", APPOINTMENT_INDEX, ("Appointment/a1", "Appointment/a2")),
        ("subject=7&appointment=a1", APPOINTMENT_INDEX, ("Appointment/a1",)),
        ("_id=e1&patient=p1&appointment=a1&date=2021", "table", ("e1",)),
    ],
)
def test_appointment_beats_patient_and_subject_which_beat_date(
    query: str, index: str, partitions: tuple[str, ...]
) -> None:
    chosen = plan_of(query)
    assert (chosen.index, chosen.partitions) == (index, partitions)
    assert chosen.walks_buckets is (index == PERIOD_START_INDEX)


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("_id=a", ("a",)),
        ("_id=c,a,b", ("a", "b", "c")),
        ("_id=a,b&_id=b,c", ("b",)),
        ("_id=a,b,c&_id=c,b&_id=b,x", ("b",)),
        ("_id=a&_id=b", ()),
        ("_id=a,a", ("a",)),
    ],
)
def test_id_reads_the_table_by_the_intersection_of_repeated_id_sets(query: str, ids: tuple[str, ...]) -> None:
    assert plan_of(query) == Plan("table", ids, NO_START, END)


def test_an_id_plan_resumes_after_a_cursor() -> None:
    assert plan_of("_id=a,b", CURSOR) == Plan("table", ("a", "b"), NO_START, END, after=CURSOR.after_sort_key)


@pytest.mark.parametrize(
    ("query", "partitions"),
    [
        ("patient=1,2,3&subject=Patient/2", ("Patient/2",)),
        ("subject=Patient/1,Patient/2,Group/3&patient=1,2", ("Patient/1", "Patient/2")),
        ("patient=1,2,3&subject=9", ("Group/9", "Patient/9")),
        ("patient=1,2&patient=3", ("Patient/3",)),
        ("patient=1,Patient/1,https://h/Patient/1", ("Patient/1", "https://h/Patient/1")),
        ("appointment=1,2,3&appointment=3,2", ("Appointment/2", "Appointment/3")),
        # a tie goes to the first criterion in registry order
        ("subject=Group/7&patient=1", ("Patient/1",)),
    ],
)
def test_the_smallest_or_set_of_the_chosen_index_gives_the_partitions(
    query: str, partitions: tuple[str, ...]
) -> None:
    assert plan_of(query).partitions == partitions


def test_a_bare_subject_id_reads_its_patient_and_group_partitions() -> None:
    chosen = plan_of("subject=9")
    assert (chosen.index, chosen.partitions) == (SUBJECT_INDEX, ("Group/9", "Patient/9"))
    assert plan_of("subject=9,Group/4").partitions == ("Group/4", "Group/9", "Patient/9")


# ---- the sort-key range from the date criteria ------------------------------------------------------

SEARCH_DAY = "2021-06-15"
S_RANGE = parse_range(SEARCH_DAY)


@pytest.mark.parametrize(
    ("prefix", "low", "high"),
    [
        ("eq", "2021-06-15T00:00:00.000000Z", "2021-06-15T23:59:59.999999Z#~"),
        ("lt", NO_START, "2021-06-14T23:59:59.999999Z#~"),
        ("eb", NO_START, "2021-06-14T23:59:59.999999Z#~"),
        ("le", NO_START, "2021-06-15T23:59:59.999999Z#~"),
        ("sa", "2021-06-16T00:00:00.000000Z", END),
        # ap: 10% of the 1661 days from S to NOW (166.1 days) past the end of S
        ("ap", NO_START, "2021-11-29T02:23:59.999999Z#~"),
        ("ge", NO_START, END),
        ("gt", NO_START, END),
        ("ne", NO_START, END),
    ],
)
@pytest.mark.parametrize("other", ["", "patient=p1&", "appointment=a1&status=finished&"])
def test_date_prefixes_bound_the_sort_key(prefix: str, low: str, high: str, other: str) -> None:
    chosen = plan_of(f"{other}date={prefix}{SEARCH_DAY}")
    assert (chosen.low, chosen.high) == (low, high)
    assert not chosen.empty


def test_without_dates_the_sort_key_is_unbounded() -> None:
    for query in ("", "patient=p1", "appointment=a1", "status=finished"):
        chosen = plan_of(query)
        assert (chosen.low, chosen.high, chosen.after) == (NO_START, END, None)


@pytest.mark.parametrize(
    "query",
    [
        "date=eq2021&date=eq2022",
        "date=sa2021-06-15&date=lt2021-06-16",
        "date=sa2021&date=eb2021",
        "patient=p1&date=eq2021&date=eq2022",
        "appointment=a1&date=lt2020&date=sa2020",
    ],
)
def test_contradictory_dates_make_an_empty_plan(query: str) -> None:
    assert plan_of(query).empty


@pytest.mark.parametrize(
    "query",
    [
        "date=sa2021-06-15&date=le2021-06-16",
        "date=eq2021-06-15&date=eq2021-06-15T10:00",
        # an OR set bounds by its hull: 2021 to 2023 meets 2022
        "date=eq2021,eq2023&date=eq2022",
    ],
)
def test_dates_that_can_meet_do_not_make_an_empty_plan(query: str) -> None:
    assert not plan_of(query).empty


# ---- period_bounds: what the date criteria imply of a match's start and end --------------------------

ANY = DateRange(NEG_INFINITY, POS_INFINITY)


def test_period_bounds_without_dates_are_unbounded_and_need_no_period() -> None:
    assert period_bounds(parsed("patient=1&status=finished"), NOW) == PeriodBounds(
        ANY, ANY, needs_period=False
    )


@pytest.mark.parametrize(
    ("prefix", "start", "end"),
    [
        ("eq", DateRange(S_RANGE.low, S_RANGE.high), DateRange(S_RANGE.low, S_RANGE.high)),
        ("ne", ANY, ANY),
        ("gt", ANY, DateRange(S_RANGE.high + 1, POS_INFINITY)),
        ("ge", ANY, DateRange(S_RANGE.low, POS_INFINITY)),
        ("lt", DateRange(NEG_INFINITY, S_RANGE.low - 1), ANY),
        ("eb", DateRange(NEG_INFINITY, S_RANGE.low - 1), DateRange(NEG_INFINITY, S_RANGE.low - 1)),
        ("le", DateRange(NEG_INFINITY, S_RANGE.high), ANY),
        ("sa", DateRange(S_RANGE.high + 1, POS_INFINITY), DateRange(S_RANGE.high + 1, POS_INFINITY)),
        (
            "ap",
            DateRange(NEG_INFINITY, S_RANGE.high + (NOW - S_RANGE.low) // 10),
            DateRange(S_RANGE.low - (NOW - S_RANGE.low) // 10, POS_INFINITY),
        ),
    ],
)
def test_period_bounds_per_prefix(prefix: str, start: DateRange, end: DateRange) -> None:
    assert period_bounds(parsed(f"date={prefix}{SEARCH_DAY}"), NOW) == PeriodBounds(start, end)


@pytest.mark.parametrize(
    ("query", "low", "high"),
    [
        ("date=eq2021-06-15,eq2021-06-20", "2021-06-15T00:00:00Z", "2021-06-20T23:59:59.999999Z"),
        ("date=sa2021-06-15&date=lt2021-07", "2021-06-16T00:00:00Z", "2021-06-30T23:59:59.999999Z"),
        ("date=eq2021&date=eq2021-06", "2021-06-01T00:00:00Z", "2021-06-30T23:59:59.999999Z"),
        ("date=eq2021-06-15,ge2020", None, None),
        ("date=ge2020&date=le2021", None, "2021-12-31T23:59:59.999999Z"),
    ],
)
def test_period_bounds_hull_or_sets_and_intersect_repeats(
    query: str, low: str | None, high: str | None
) -> None:
    expected = DateRange(micros(low) if low else NEG_INFINITY, micros(high) if high else POS_INFINITY)
    assert period_bounds(parsed(query), NOW).start == expected


def test_a_window_bounds_the_end_from_below_and_the_start_from_above() -> None:
    bounds = period_bounds(parsed("date=ge2021-03-01&date=lt2021-04-01"), NOW)
    assert bounds.end == DateRange(micros("2021-03-01T00:00:00Z"), POS_INFINITY)
    assert bounds.start == DateRange(NEG_INFINITY, micros("2021-03-31T23:59:59.999999Z"))
    assert bounds.needs_period


# ---- cursors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["", "patient=p1&", "appointment=a1&"])
@pytest.mark.parametrize(
    ("date", "low", "high"),
    [
        ("ge2021", CURSOR.after_sort_key, END),
        ("eq2021", CURSOR.after_sort_key, "2021-12-31T23:59:59.999999Z#~"),
        # a cursor below the date range leaves the range's low
        ("sa2021-09-01", "2021-09-02T00:00:00.000000Z", END),
    ],
)
def test_a_cursor_sets_after_and_raises_low_to_its_key(date: str, low: str, high: str, other: str) -> None:
    chosen = plan_of(f"{other}date={date}", CURSOR)
    assert (chosen.after, chosen.low, chosen.high) == (CURSOR.after_sort_key, low, high)


def test_without_a_cursor_nothing_is_skipped() -> None:
    assert plan_of("date=ge2021").after is None
    assert plan_of("patient=p1").after is None


# ---- the period walk's streams (store.periods picks them; test_periods covers the families) --------


@pytest.mark.parametrize(
    ("query", "cursor", "directory", "expected"),
    [
        ("", None, ["c0#2021", "none#0", "c0#2019"], ["none#0", "c0#2019", "c0#2021"]),
        ("date=eq2021-06", None, ["c0#2022", "none#1", "c0#2021", "c0#2020"], ["c0#2021"]),
        ("date=eq2019", None, ["c0#2021", "none#0", "c0#2020"], []),
        (
            "date=lt2021",
            None,
            ["c0#2021", "none#2", "end#2020", "c0#2020"],
            ["end#2020", "c0#2020"],
        ),
        (
            # a cursor in 2021-08 skips 2020 and keeps 2021 on; end#2022 may hold long ones from 2021
            "date=ge2021",
            CURSOR,
            ["c0#2022", "end#2022", "c0#2020", "c0#2021", "c1#2021"],
            ["c0#2021", "c1#2021", "end#2022", "c0#2022"],
        ),
        ("patient=p1", CURSOR, ["c0#2021"], ["Patient/p1"]),
        ("", None, [], []),
        ("", None, ["2021-06", "0000-00"], []),  # the partitions of an older index version
    ],
)
def test_streams_pick_the_directorys_partitions_in_order_of_their_low_key(
    query: str, cursor: Cursor | None, directory: list[str], expected: list[str]
) -> None:
    assert [stream.partition for stream in plan_of(query, cursor).streams(directory)] == expected


# ---- how much each Query reads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cursor", "hint"),
    [
        # a first page that counts reads every match anyway
        ("patient=p1", None, None),
        ("patient=p1&_count=5&_offset=20", None, None),
        ("patient=p1&_total=estimate", None, None),
        ("date=ge2021", None, None),
        # a cursor page needs the page and one more
        ("patient=p1&_count=5", CURSOR, 6),
        ("patient=p1&_count=5&_total=none", CURSOR, 6),
        ("date=ge2021&_count=20", CURSOR, 21),
        # _total=none stops one match after the page
        ("patient=p1&_count=5&_offset=20&_total=none", None, 26),
        ("_total=none", None, 11),
        ("date=ge2021&_count=0&_total=none", None, 1),
        # _id reads items by key: no Query
        ("_id=a&_total=none", None, None),
        ("_id=a", CURSOR, None),
    ],
)
def test_page_hint(query: str, cursor: Cursor | None, hint: int | None) -> None:
    assert plan_of(query, cursor).page_hint == hint


@pytest.mark.parametrize(
    ("limit", "expected"), [(1, 2), (6, 12), (11, 22), (499, 998), (500, 1000), (501, 1000), (1000, 1000)]
)
def test_next_limit_doubles_up_to_1000(limit: int, expected: int) -> None:
    assert next_limit(limit) == expected


@pytest.mark.parametrize(
    ("hint", "streams", "expected"),
    [(None, 5, None), (11, 0, 11), (11, 1, 11), (11, 2, 7), (11, 4, 4), (11, 10, 3), (11, 40, 2), (1, 10, 1)],
)
def test_merged_partitions_each_read_a_share_of_the_page_first(
    hint: int | None, streams: int, expected: int | None
) -> None:
    assert stream_limit(hint, streams) == expected


def test_next_limit_grows_from_a_page_hint_to_the_cap_and_stays() -> None:
    limits = [11]
    for _ in range(8):
        limits.append(next_limit(limits[-1]))
    assert limits == [11, 22, 44, 88, 176, 352, 704, 1000, 1000]
    assert MAX_QUERY_LIMIT == 1000


# ---- property: the plan never leaves out a match ----------------------------------------------------


def _random_value(rng: random.Random, *, zones: bool) -> str:
    instant = rng.randrange(micros("2019-01-01T00:00:00Z"), micros("2024-01-01T00:00:00Z"))
    text = (EPOCH + timedelta(microseconds=instant)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    cut = rng.choice([4, 7, 10, 16, 19, 21, 23, 26])
    zone = rng.choice(["", "Z", "+02:00", "-05:30", "+14:00"]) if zones and cut >= 16 else ""
    return text[:cut] + zone


def _random_row(rng: random.Random, number: int) -> IndexRow:
    """The index row of a generated Encounter: a period with either side missing, or none."""
    shape = rng.random()
    start = None if shape < 0.2 else _random_value(rng, zones=True)
    end = None if shape < 0.1 or 0.2 <= shape < 0.35 else _random_value(rng, zones=True)
    subject = rng.choice(["Patient/p1", "Patient/p2", "Group/p1"])
    status = rng.choice(["finished", "in-progress", "planned"])
    row = index_row_of(encounter(f"e{number}", subject=subject, start=start, end=end, status=status))
    period = row.values.get("period")
    if period is not None and period.low > period.high:  # an end before the start: swap them
        row = index_row_of(encounter(f"e{number}", subject=subject, start=end, end=start, status=status))
    return row


def _within(chosen: Plan, row: IndexRow, directory: list[str]) -> bool:
    """The row lies in one of the plan's streams, within its sort-key range."""
    if chosen.empty or not chosen.low <= row.sort_key <= chosen.high:
        return False
    if not chosen.walks_buckets:
        return True
    partition = period_partition(row)
    return any(
        s.partition == partition and s.low <= row.sort_key <= s.high for s in chosen.streams(directory)
    )


def test_every_matching_row_lies_within_the_plans_sort_key_range_and_streams() -> None:
    """Property: whenever a row matches the query, its period lies within period_bounds, its sort
    key within [low, high] and within one of the walk's streams, with or without a cursor."""
    rng = random.Random(42)
    rows = sorted((_random_row(rng, number) for number in range(80)), key=lambda row: row.sort_key)
    assert sum("period" not in row.values for row in rows) >= 5
    directory = sorted({period_partition(row) for row in rows})
    checked = bounded = resumed = 0
    for _ in range(400):
        groups = [
            ",".join(
                f"{rng.choice(DATE_PREFIXES)}{_random_value(rng, zones=True)}"
                for _ in range(rng.randint(1, 3))
            )
            for _ in range(rng.randint(1, 3))
        ]
        params = {"date": groups, **({"patient": ["p1,p2"]} if rng.random() < 0.3 else {})}
        query = parse_search(params)[0]
        now = rng.randrange(micros("2018-01-01T00:00:00Z"), micros("2027-01-01T00:00:00Z"))
        bounds = period_bounds(query, now)
        chosen = plan(query, None, now)
        cursor = Cursor(rng.choice(rows).sort_key, 10, None)
        after_cursor = plan(query, cursor, now)
        for row in rows:
            if not query.matches(row, now):
                continue
            assert "period" in row.values  # no period matches no date criterion
            period = row.values["period"]
            assert bounds.start.low <= period.low <= bounds.start.high, (groups, now, row, bounds)
            assert bounds.end.low <= period.high <= bounds.end.high, (groups, now, row, bounds)
            assert _within(chosen, row, directory), (groups, now, row, chosen)
            checked += 1
            bounded += chosen.low > NO_START or chosen.high < END
            if row.sort_key > cursor.after_sort_key:
                assert _within(after_cursor, row, directory), (groups, now, row, after_cursor)
                resumed += 1
    # the property was exercised, including with real (finite) bounds and after cursors
    assert checked > 2000
    assert bounded > 500
    assert resumed > 500


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", ()),
        ("_total=none", ()),
        ("date=ge2021&date=lt2022", ("period",)),
        ("patient=p1&status=finished", ("status", "subject")),
        ("appointment=a1&date=2021", ("appointments", "period")),
        ("status=finished,cancelled&subject=Patient/p1&date=ge2020", ("period", "status", "subject")),
    ],
)
def test_a_plan_names_the_index_fields_its_criteria_match(query: str, fields: tuple[str, ...]) -> None:
    assert plan_of(query).fields == fields


def test_a_compartment_adds_the_subject_field() -> None:
    query = parsed("date=ge2021").within_compartment("Patient/p1")
    assert plan(query, None, NOW).fields == ("period", "subject")


# ---- under a compartment: the compartment is the partition read, whatever else is asked ---------------

COMPARTMENT = "Patient/pa"
# A value of each parameter type that parses: every parameter of the registry is planned below.
EXAMPLE_VALUES = {
    ParamType.TOKEN: "x1",
    ParamType.REFERENCE: "x1",
    ParamType.DATE: "ge2021",
    ParamType.QUANTITY: "gt1",
}


def compartment_plan(query: str, cursor: Cursor | None = None) -> Plan:
    return plan(parsed(query).within_compartment(COMPARTMENT), cursor, NOW)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "patient=pa",
        "patient=Patient/pa",
        "patient=pa,pb",
        "subject=pa",
        "subject=Patient/pa,Group/g1",
        "appointment=ap-b",
        "appointment=ap-1,ap-2&appointment=ap-2",
        "_id=b-1",
        "_id=a-1,b-1,b-2",
        "_id=a-1&_id=b-1",
        "date=ge2021&date=lt2022",
        "status=finished",
        "patient=pa&appointment=ap-b&_id=b-1&date=2021&status=finished",
        "_id=b-1&_total=none",
        "appointment=ap-b&_count=0",
        "_count=1&_offset=5",
    ],
)
@pytest.mark.parametrize("cursor", [None, CURSOR])
def test_a_compartment_plan_reads_only_the_compartments_partition(query: str, cursor: Cursor | None) -> None:
    chosen = compartment_plan(query, cursor)
    assert (chosen.index, chosen.partitions) == (SUBJECT_INDEX, (COMPARTMENT,))
    assert [stream.partition for stream in chosen.streams()] == [COMPARTMENT]
    assert not chosen.empty


@pytest.mark.parametrize(
    "query",
    [
        "patient=pb",
        "patient=Patient/pb",
        "patient=pb,pc",
        "patient=pa&patient=pb",
        "patient=https://other.example/fhir/Patient/pa",  # another server's Patient pa
        "subject=Group/pa",
        "subject=Patient/pb",
        "subject=pb",
        "subject=Group/g1,Patient/pb",
        "patient=pb&appointment=ap-b&_id=b-1&date=2021&status=finished",
        "subject=Group/pa&_total=none",
        "patient=pb&_count=0",
    ],
)
@pytest.mark.parametrize("cursor", [None, CURSOR])
def test_a_criterion_that_contradicts_the_compartment_makes_an_empty_plan_with_no_query(
    query: str, cursor: Cursor | None
) -> None:
    chosen = compartment_plan(query, cursor)
    assert (chosen.index, chosen.partitions, chosen.streams()) == (SUBJECT_INDEX, (), [])
    assert chosen.empty
    assert not chosen.partitions_decide


@pytest.mark.parametrize(
    ("query", "decide"),
    [
        ("", True),
        ("patient=pa", True),
        ("subject=pa", True),
        ("patient=pa,pb&subject=Patient/pa", True),
        ("_total=none", True),
        ("appointment=ap-a", False),
        ("_id=a-1", False),
        ("date=ge2021", False),
        ("status=finished", False),
        ("patient=pa&status=finished", False),
        ("patient=pb", False),
    ],
)
def test_the_compartments_partition_decides_only_when_every_criterion_is_on_the_subject(
    query: str, decide: bool
) -> None:
    assert compartment_plan(query).partitions_decide is decide


@pytest.mark.parametrize(
    ("another_patients", "missing"),
    [
        ("patient=pb", "patient=nobody"),
        ("subject=Patient/pb", "subject=Patient/nobody"),
        ("subject=pb", "subject=nobody"),
        ("subject=Group/g1", "subject=Group/nobody"),
        ("appointment=ap-b", "appointment=ap-nobody"),
        ("_id=b-1,b-2,b-3", "_id=x-1,x-2,x-3"),
        ("_id=a-1,b-1&_count=1", "_id=a-1,x-1&_count=1"),
        ("patient=pa,pb&appointment=ap-b&_total=none", "patient=pa,nobody&appointment=ap-nobody&_total=none"),
        ("appointment=ap-b&_count=0", "appointment=ap-nobody&_count=0"),
        ("_id=b-1&date=2021&status=finished", "_id=x-1&date=2021&status=finished"),
    ],
)
@pytest.mark.parametrize("cursor", [None, CURSOR])
def test_naming_another_patients_encounters_plans_as_naming_none_that_exist(
    another_patients: str, missing: str, cursor: Cursor | None
) -> None:
    assert compartment_plan(another_patients, cursor) == compartment_plan(missing, cursor)


@pytest.mark.parametrize("modifier", ["", ":missing"])
@pytest.mark.parametrize("name", sorted(SEARCH_PARAMETERS))
def test_every_search_parameter_is_planned_within_the_compartment(name: str, modifier: str) -> None:
    """Every registry entry, including any added later: the plan reads the compartment's
    partition (or its partitions of the value index), or nothing when the criterion rules the
    compartment out."""
    value = "true" if modifier else EXAMPLE_VALUES[SEARCH_PARAMETERS[name].type]
    for query in (
        f"{name}{modifier}={value}",
        f"{name}{modifier}={value}&patient=pb",
        f"{name}{modifier}={value}&patient=pa",
    ):
        chosen = plan_search(parsed(query).within_compartment(COMPARTMENT), None, NOW).plan
        if chosen.terms:
            read = [p for term in chosen.terms if term.drives for p in term.partitions]
            assert chosen.index == VALUE_INDEX
            assert all(p.startswith(COMPARTMENT + "#") for p in read), query
        else:
            assert chosen.index == SUBJECT_INDEX
            assert set(chosen.partitions) <= {COMPARTMENT}, query
        assert chosen.empty or "patient=pb" not in query, query


def test_dates_bound_the_compartments_sort_key() -> None:
    chosen = compartment_plan("date=eq2021-06-15&appointment=ap-b")
    assert (chosen.low, chosen.high) == ("2021-06-15T00:00:00.000000Z", "2021-06-15T23:59:59.999999Z#~")
    assert compartment_plan("date=eq2021&date=eq2022").empty


def test_a_compartment_plan_without_a_count_reads_about_a_page() -> None:
    assert compartment_plan("_id=b-1&_total=none&_count=5").page_hint == 6
    assert compartment_plan("_id=b-1", CURSOR).page_hint == 11


def test_a_restriction_must_be_on_the_single_valued_key_of_an_index() -> None:
    query = parsed("").within_compartment(COMPARTMENT)
    appointment = Criterion(SEARCH_PARAMETERS["appointment"], "a", (frozenset({"Appointment/a"}),))
    with pytest.raises(ValueError, match="single-valued key"):
        plan(query.model_copy(update={"restrictions": (appointment,)}), None, NOW)


# ---- _sort ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "low", "high"),
    [
        ("", NO_START, END),
        ("_lastUpdated=ge2025-06", "2025-05-31T23:59:59.000000Z", END),  # ends at or after: 1 s earlier
        ("_lastUpdated=gt2025", "2025-12-31T23:59:59.000000Z", END),
        ("_lastUpdated=lt2025", NO_START, "2024-12-31T23:59:59.999999Z#~"),
        ("_lastUpdated=eq2025-03-01", "2025-03-01T00:00:00.000000Z", "2025-03-01T23:59:59.999999Z#~"),
        (
            "_lastUpdated=ge2025&_lastUpdated=lt2025-02",
            "2024-12-31T23:59:59.000000Z",
            "2025-01-31T23:59:59.999999Z#~",
        ),
        ("_lastUpdated=lt2024,ge2025", NO_START, END),  # an OR: the hull
        ("_lastUpdated=ne2025", NO_START, END),
        ("_lastUpdated:missing=false", NO_START, END),
    ],
)
def test_last_updated_criteria_bound_its_order(query: str, low: str, high: str) -> None:
    chosen = plan_search(parsed(f"{query}&_sort=_lastUpdated" if query else "_sort=_lastUpdated"), None, NOW)
    assert chosen.plan.index == VALUE_INDEX
    assert (chosen.plan.low, chosen.plan.high) == (low, high)
    assert chosen.plan.terms[0].partitions == tuple(f"meta.lastUpdated|order#{n}" for n in range(8))


def test_a_sorted_plan_reads_backwards_and_a_cursor_bounds_it_from_above() -> None:
    chosen = plan_search(
        parsed("_sort=-_lastUpdated&patient=p1"), Cursor("2025-03-01T00:00:00.000000Z#e1", 10, 20), NOW
    )
    assert chosen.plan.descending
    assert chosen.plan.terms[0].partitions == ("Patient/p1#meta.lastUpdated|order",)
    assert (chosen.plan.low, chosen.plan.high) == (NO_START, "2025-03-01T00:00:00.000000Z#e1")
    by_date = plan_of("_sort=-date&patient=p1", CURSOR)
    assert by_date.descending
    assert (by_date.low, by_date.high) == (NO_START, CURSOR.after_sort_key)
