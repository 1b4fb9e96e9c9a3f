"""Search parsing and FHIR R4 match rules: every parameter, OR/AND, every date prefix, paging values,
unknown parameters, modifiers, and the start bounds the repository relies on."""

from __future__ import annotations

import random
from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, parse_range
from fhir_encounter.errors import InvalidRequestError, NotSupportedError
from fhir_encounter.search.parameters import (
    DATE_PREFIXES,
    RESULT_PARAMETERS,
    SEARCH_PARAMETERS,
    DateCriterion,
    IndexRow,
    SearchQuery,
    date_matches,
    matches,
    parse_search,
    start_bounds,
)
from tests.unit.test_dates import EPOCH, micros

NOW = micros("2026-01-01T00:00:00Z")


def parse(query: str, *, strict: bool = False) -> tuple[SearchQuery, list[str]]:
    """Parse a query string the way API Gateway hands it over (decoded, multi-value)."""
    return parse_search(parse_qs(query, keep_blank_values=True), strict=strict)


def parsed(query: str) -> SearchQuery:
    return parse(query)[0]


def period(start: str | None, end: str | None) -> DateRange:
    """T = [start, end], each at its own precision; a missing side is open."""
    low = parse_range(start).low if start else NEG_INFINITY
    high = parse_range(end).high if end else POS_INFINITY
    return DateRange(low, high)


def row(
    encounter_id: str = "e1",
    *,
    subject: str | None = "Patient/p1",
    appointments: tuple[str, ...] = (),
    start: str | None = None,
    end: str | None = None,
) -> IndexRow:
    has_period = start is not None or end is not None
    return IndexRow(
        id=encounter_id,
        sort_key=f"sk#{encounter_id}",
        subject_ref=subject,
        appointment_refs=frozenset(appointments),
        period=period(start, end) if has_period else None,
    )


def criterion(value: str) -> DateCriterion:
    (group,) = parsed(f"date={value}").dates
    (only,) = group
    return only


def invalid_text(query: str) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        parse(query)
    assert caught.value.status == 400
    assert caught.value.code == "invalid"
    return caught.value.text


# ---- the parameter list -------------------------------------------------------------------------


def test_the_search_parameters_are_the_reference_apis() -> None:
    assert list(SEARCH_PARAMETERS) == ["_id", "patient", "subject", "appointment", "date"]
    assert list(RESULT_PARAMETERS) == ["_count", "_offset", "_total", "_cursor"]


def test_no_parameters_give_the_defaults() -> None:
    for query in (parse_search(None)[0], parse_search({})[0], parsed("")):
        assert query.ids == []
        assert query.subject_sets == []
        assert query.appointments == []
        assert query.dates == []
        assert (query.count, query.offset, query.cursor) == (10, 0, None)
        assert query.criteria_params == ()


# ---- _id ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_id=a", [{"a"}]),
        ("_id=a,b", [{"a", "b"}]),
        ("_id=a&_id=b", [{"a"}, {"b"}]),
        ("_id=a,b&_id=b,c", [{"a", "b"}, {"b", "c"}]),
        ("_id=+a+,+b+", [{"a", "b"}]),
        ("_id=7720a218-c0bd-4cee-82a2-729bd9c101f3", [{"7720a218-c0bd-4cee-82a2-729bd9c101f3"}]),
    ],
)
def test_id_comma_is_or_and_repeat_is_and(query: str, expected: list[set[str]]) -> None:
    assert parsed(query).ids == [frozenset(values) for values in expected]


@pytest.mark.parametrize(
    "query", ["_id=a_b", "_id=a,", "_id=,a", f"_id={'x' * 65}", "_id=a%20b", "_id=Patient/1"]
)
def test_id_that_is_not_a_fhir_id_is_invalid(query: str) -> None:
    assert invalid_text(query) == (
        "Invalid value for search parameter '_id': "
        "'_id' values must be FHIR ids ([A-Za-z0-9-.], 1 to 64 characters)"
    )


# ---- patient, subject, appointment ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "123",
        "Patient/123",
        "https://host/base/Patient/123",
        "http://host/Patient/123/_history/2",
        "+Patient/123+",
    ],
)
def test_patient_accepts_every_reference_form(value: str) -> None:
    query = parsed(f"patient={value}")
    assert query.patients == [frozenset({"Patient/123"})]
    assert query.subject_sets == [frozenset({"Patient/123"})]


def test_patient_comma_is_or_and_repeat_is_and() -> None:
    assert parsed("patient=1,Patient/2").patients == [frozenset({"Patient/1", "Patient/2"})]
    assert parsed("patient=1&patient=2").patients == [frozenset({"Patient/1"}), frozenset({"Patient/2"})]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", {"Patient/123", "Group/123"}),
        ("Patient/123", {"Patient/123"}),
        ("Group/7", {"Group/7"}),
        ("https://host/base/Group/7", {"Group/7"}),
        ("https://host/base/Patient/123", {"Patient/123"}),
        ("Group/7,Patient/1", {"Group/7", "Patient/1"}),
    ],
)
def test_subject_takes_a_typed_reference_or_a_bare_id_of_any_subject_type(
    value: str, expected: set[str]
) -> None:
    assert parsed(f"subject={value}").subjects == [frozenset(expected)]


def test_patient_and_subject_both_constrain_the_subject() -> None:
    query = parsed("patient=1&subject=Group/7")
    assert query.subject_sets == [frozenset({"Patient/1"}), frozenset({"Group/7"})]


@pytest.mark.parametrize(
    "value", ["9", "Appointment/9", "https://host/base/Appointment/9", "Appointment/9/_history/1"]
)
def test_appointment_accepts_every_reference_form(value: str) -> None:
    assert parsed(f"appointment={value}").appointments == [frozenset({"Appointment/9"})]


def test_appointment_comma_is_or_and_repeat_is_and() -> None:
    assert parsed("appointment=1,2").appointments == [frozenset({"Appointment/1", "Appointment/2"})]
    assert parsed("appointment=1&appointment=2").appointments == [
        frozenset({"Appointment/1"}),
        frozenset({"Appointment/2"}),
    ]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("patient=Group/7", "'patient' refers to Patient, not Group"),
        ("patient=https://host/Practitioner/1", "'patient' refers to Patient, not Practitioner"),
        ("patient=%23p1", "'patient' needs an id, a reference like Patient/123, or a URL"),
        ("patient=urn:uuid:1", "'patient' needs an id, a reference like Patient/123, or a URL"),
        ("patient=1,", "'patient' needs an id, a reference like Patient/123, or a URL"),
        ("subject=Practitioner/1", "'subject' refers to Patient or Group, not Practitioner"),
        ("subject=a_b", "'subject' needs an id, a reference like Patient/123, or a URL"),
        ("appointment=Patient/9", "'appointment' refers to Appointment, not Patient"),
        (
            "appointment=ftp://h/Appointment/9",
            "'appointment' needs an id, a reference like Appointment/123, or a URL",
        ),
    ],
)
def test_a_reference_of_the_wrong_type_or_shape_is_invalid(query: str, text: str) -> None:
    name = query.split("=")[0]
    assert invalid_text(query) == f"Invalid value for search parameter '{name}': {text}"


# ---- date parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", DATE_PREFIXES)
def test_every_date_prefix_is_read(prefix: str) -> None:
    assert criterion(f"{prefix}2021-06-15") == DateCriterion(prefix, parse_range("2021-06-15"))


def test_a_date_without_prefix_is_eq() -> None:
    assert criterion("2021-06") == DateCriterion("eq", parse_range("2021-06"))


def test_date_comma_is_or_and_repeat_is_and() -> None:
    assert parsed("date=ge2021,lt2020").dates == [
        (DateCriterion("ge", parse_range("2021")), DateCriterion("lt", parse_range("2020")))
    ]
    assert parsed("date=ge2021&date=lt2022").dates == [
        (DateCriterion("ge", parse_range("2021")),),
        (DateCriterion("lt", parse_range("2022")),),
    ]


def test_a_date_with_a_decoded_plus_in_its_zone_is_read_as_plus() -> None:
    assert parsed("date=ge2021-06-15T10:00:00+02:00").dates == [
        (DateCriterion("ge", parse_range("2021-06-15T10:00:00+02:00")),)
    ]


@pytest.mark.parametrize(
    "value",
    [
        "2021-13",
        "xx2021",
        "GE2021",
        "ge",
        "e",
        "ge2021,",
        "2021-06-15T10:30:00%2B2",
        "ge+2021",
        "2021-02-29",
        "today",
    ],
)
def test_a_date_that_cannot_be_parsed_is_invalid(value: str) -> None:
    assert invalid_text(f"date={value}") == (
        "Invalid value for search parameter 'date': 'date' needs an optional prefix "
        "(eq, ne, gt, lt, ge, le, sa, eb, ap) and a FHIR date such as 2021, 2021-06, 2021-06-15 or "
        "2021-06-15T10:30:00Z"
    )


# ---- matches: _id, references, AND across parameters ------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", True),
        ("_id=e1", True),
        ("_id=e2,e1", True),
        ("_id=e2", False),
        ("_id=e1&_id=e2", False),
        ("_id=e1,e2&_id=e2,e1", True),
        ("patient=p1", True),
        ("patient=Patient/p1", True),
        ("patient=https://h/fhir/Patient/p1", True),
        ("patient=p2", False),
        ("patient=p2,p1", True),
        ("patient=p1&patient=p2", False),
        ("subject=p1", True),
        ("subject=Patient/p1", True),
        ("subject=Group/p1", False),
        ("patient=p1&subject=Group/g", False),
        ("appointment=a2", True),
        ("appointment=a3", True),
        ("appointment=a4", False),
        ("appointment=a4,a3", True),
        ("appointment=a2&appointment=a3", True),
        ("appointment=a2&appointment=a4", False),
        ("date=2021-06", True),
        ("date=2021-07", False),
        ("patient=p1&appointment=a2&date=2021-06&_id=e1", True),
        ("patient=p2&appointment=a2&date=2021-06&_id=e1", False),
        ("patient=p1&appointment=a9&date=2021-06&_id=e1", False),
        ("patient=p1&appointment=a2&date=2022&_id=e1", False),
        ("patient=p1&appointment=a2&date=2021-06&_id=e9", False),
    ],
)
def test_matches_ands_parameters_and_ors_values(query: str, expected: bool) -> None:
    target = row(
        "e1",
        subject="Patient/p1",
        appointments=("Appointment/a2", "Appointment/a3"),
        start="2021-06-10T09:00:00Z",
        end="2021-06-10T10:00:00Z",
    )
    assert matches(target, parsed(query), NOW) is expected


@pytest.mark.parametrize(
    ("subject", "query", "expected"),
    [
        ("Group/p1", "patient=p1", False),
        ("Group/p1", "subject=p1", True),
        ("Group/p1", "subject=Group/p1", True),
        ("Group/p1", "subject=Patient/p1", False),
        (None, "patient=p1", False),
        (None, "subject=p1", False),
        (None, "", True),
    ],
)
def test_subject_types_are_told_apart(subject: str | None, query: str, expected: bool) -> None:
    assert matches(row(subject=subject), parsed(query), NOW) is expected


def test_an_encounter_with_several_appointments_is_found_by_each() -> None:
    target = row(appointments=("Appointment/a1", "Appointment/a2", "Appointment/a3"))
    for value in ("a1", "Appointment/a2", "https://h/Appointment/a3"):
        assert matches(target, parsed(f"appointment={value}"), NOW)
    assert not matches(row(appointments=()), parsed("appointment=a1"), NOW)


# ---- date_matches: every prefix against every period shape -----------------------------------------

SEARCH_DAY = "2021-06-15"  # S = [2021-06-15T00:00:00Z, 2021-06-15T23:59:59.999999Z]

# name -> (period, the prefixes it matches against S)
PERIODS: dict[str, tuple[DateRange, set[str]]] = {
    "inside": (period("2021-06-15T10:00:00Z", "2021-06-15T11:00:00Z"), {"eq", "ge", "le"}),
    "equal": (period("2021-06-15", "2021-06-15"), {"eq", "ge", "le"}),
    "equal to the microsecond": (
        period("2021-06-15T00:00:00.000000Z", "2021-06-15T23:59:59.999999Z"),
        {"eq", "ge", "le"},
    ),
    "before": (period("2021-06-10", "2021-06-12"), {"ne", "lt", "le", "eb"}),
    "after": (period("2021-06-20", "2021-06-21"), {"ne", "gt", "ge", "sa"}),
    "overlaps the start": (period("2021-06-14T20:00:00Z", "2021-06-15T02:00:00Z"), {"ne", "lt", "le"}),
    "overlaps the end": (period("2021-06-15T22:00:00Z", "2021-06-16T02:00:00Z"), {"ne", "gt", "ge"}),
    "contains S": (period("2021-06-01", "2021-06-30"), {"ne", "gt", "lt", "ge", "le"}),
    "ends the microsecond before S": (
        period("2021-06-14T22:00:00Z", "2021-06-14T23:59:59.999999Z"),
        {"ne", "lt", "le", "eb"},
    ),
    "starts the microsecond after S": (
        period("2021-06-16T00:00:00.000000Z", "2021-06-16"),
        {"ne", "gt", "ge", "sa"},
    ),
    "ends on S's first microsecond": (
        period("2021-06-14T22:00:00Z", "2021-06-15T00:00:00.000000Z"),
        {"ne", "lt", "le"},
    ),
    "in progress, started before": (period("2021-06-01T08:00:00Z", None), {"ne", "gt", "lt", "ge", "le"}),
    "in progress, started inside": (period("2021-06-15T08:00:00Z", None), {"ne", "gt", "ge"}),
    "in progress, started after": (period("2021-07-01T08:00:00Z", None), {"ne", "gt", "ge", "sa"}),
    "no start, ended before": (period(None, "2021-06-10T08:00:00Z"), {"ne", "lt", "le", "eb"}),
    "no start, ended inside": (period(None, "2021-06-15T08:00:00Z"), {"ne", "lt", "le"}),
    "no start, ended after": (period(None, "2021-07-01"), {"ne", "gt", "lt", "ge", "le"}),
    "zone puts it on the day before": (
        period("2021-06-15T01:00:00+02:00", "2021-06-15T01:30:00+02:00"),
        {"ne", "lt", "le", "eb"},
    ),
    "zone puts it on S": (
        period("2021-06-14T22:00:00-05:00", "2021-06-14T23:00:00-05:00"),
        {"eq", "ge", "le"},
    ),
}
ORDER_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


@pytest.mark.parametrize("prefix", ORDER_PREFIXES)
@pytest.mark.parametrize("name", PERIODS)
def test_every_prefix_against_every_period_shape(name: str, prefix: str) -> None:
    target, matching = PERIODS[name]
    assert date_matches(target, criterion(f"{prefix}{SEARCH_DAY}"), NOW) is (prefix in matching)


@pytest.mark.parametrize("prefix", DATE_PREFIXES)
def test_an_encounter_without_a_period_matches_no_date_criterion(prefix: str) -> None:
    assert date_matches(None, criterion(f"{prefix}{SEARCH_DAY}"), NOW) is False
    assert matches(row(), parsed(f"date={prefix}{SEARCH_DAY}"), NOW) is False


@pytest.mark.parametrize(
    "later", ["2021-06-02", "2021-07", "2022", "2030-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z", "9999"]
)
@pytest.mark.parametrize("prefix", ["gt", "ge"])
def test_an_in_progress_encounter_matches_ge_and_gt_any_later_date(prefix: str, later: str) -> None:
    in_progress = period("2021-06-01T08:00:00Z", None)
    assert date_matches(in_progress, criterion(f"{prefix}{later}"), NOW)


@pytest.mark.parametrize(
    ("start", "end", "value", "expected"),
    [
        # a month-precision period is all of the month
        ("2021-06", "2021-06", "eq2021-06", True),
        ("2021-06", "2021-06", "eq2021", True),
        ("2021-06", "2021-06", "eq2021-06-15", False),
        ("2021-06", "2021-06", "gt2021-06-15", True),
        ("2021-06", "2021-06", "lt2021-06-15", True),
        ("2021-06", "2021-06", "sa2021-05", True),
        ("2021-06", "2021-06", "eb2021-07-01", True),
        ("2021-06", "2021-06", "eb2021-06-30", False),
        # a year-precision search value against second-precision periods
        ("2021-12-31T23:59:59Z", "2021-12-31T23:59:59Z", "eq2021", True),
        ("2021-12-31T23:59:59Z", "2022-01-01T00:00:00Z", "eq2021", False),
        ("2021-12-31T23:59:59Z", "2022-01-01T00:00:00Z", "gt2021", True),
        # a minute value covers its 60 seconds
        ("2021-06-15T10:30:00Z", "2021-06-15T10:30:59.999Z", "eq2021-06-15T10:30", True),
        ("2021-06-15T10:30:00Z", "2021-06-15T10:31:00Z", "eq2021-06-15T10:30", False),
        ("2021-06-15T10:30:00Z", "2021-06-15T10:31:00Z", "le2021-06-15T10:30", False),
        ("2021-06-15T10:30:00Z", "2021-06-15T10:31:00Z", "ge2021-06-15T10:30", True),
        # a second value covers its microseconds; a period end at second precision covers its second too
        ("2021-06-15T10:30:15.250Z", "2021-06-15T10:30:15.750Z", "eq2021-06-15T10:30:15", True),
        ("2021-06-15T10:30:15Z", "2021-06-15T10:30:15Z", "eq2021-06-15T10:30:15.5", False),
        ("2021-06-15T10:30:15Z", "2021-06-15T10:30:15Z", "ge2021-06-15T10:30:15.5", True),
        # a search value with a zone
        ("2021-06-15T08:00:00Z", "2021-06-15T09:00:00Z", "eq2021-06-15T10:00+02:00", False),
        ("2021-06-15T08:00:00Z", "2021-06-15T08:00:59Z", "eq2021-06-15T10:00+02:00", True),
        ("2021-06-15T08:00:00Z", "2021-06-15T08:00:59Z", "eq2021-06-15T10:00 02:00", True),
        ("2021-06-15T08:00:00Z", "2021-06-15T09:00:00Z", "sa2021-06-15T07:59-00:00", True),
        # day-precision period ends at the end of its day
        ("2021-06-14", "2021-06-15", "gt2021-06-15T12:00:00Z", True),
        ("2021-06-14", "2021-06-15", "sa2021-06-13", True),
        ("2021-06-14", "2021-06-15", "sa2021-06-14", False),
    ],
)
def test_precisions_mix(start: str, end: str, value: str, expected: bool) -> None:
    assert date_matches(period(start, end), criterion(value), NOW) is expected


# ---- ap: 10% of the gap between now and the search value, on each side ------------------------------


@pytest.mark.parametrize(
    ("start", "end", "value", "expected"),
    [
        # S = 2016-01-01, ten years before NOW: about 365 days of tolerance on each side
        ("2016-01-01T10:00:00Z", "2016-01-01T11:00:00Z", "ap2016-01-01", True),
        ("2015-01-10", "2015-01-15", "ap2016-01-01", True),
        ("2014-12-01", "2014-12-15", "ap2016-01-01", False),
        ("2016-12-15", "2016-12-20", "ap2016-01-01", True),
        ("2017-01-15", "2017-01-20", "ap2016-01-01", False),
        ("2010-01-01", None, "ap2016-01-01", True),
        (None, "2010-01-01", "ap2016-01-01", False),
        # S in the future, ten years after NOW: the same width
        ("2035-01-10", "2035-01-15", "ap2036-01-01", True),
        ("2034-12-01", "2034-12-15", "ap2036-01-01", False),
        # S at NOW: no tolerance left
        ("2025-12-31T22:00:00Z", "2025-12-31T23:59:59Z", "ap2026-01-01T00:00:00Z", False),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "ap2026-01-01T00:00:00Z", True),
    ],
)
def test_ap_matches_within_the_documented_tolerance(
    start: str | None, end: str | None, value: str, expected: bool
) -> None:
    assert date_matches(period(start, end), criterion(value), NOW) is expected


def test_ap_tolerance_edge_is_exactly_ten_percent() -> None:
    search = criterion("ap2016-01-01")
    s_lo, s_hi = search.search.low, search.search.high
    tolerance = (NOW - s_lo) // 10
    assert date_matches(DateRange(s_lo - tolerance - 5, s_lo - tolerance), search, NOW)
    assert not date_matches(DateRange(s_lo - tolerance - 5, s_lo - tolerance - 1), search, NOW)
    assert date_matches(DateRange(s_hi + tolerance, s_hi + tolerance + 5), search, NOW)
    assert not date_matches(DateRange(s_hi + tolerance + 1, s_hi + tolerance + 5), search, NOW)


# ---- start_bounds --------------------------------------------------------------------------------


def test_start_bounds_without_dates_are_unbounded() -> None:
    assert start_bounds(parsed("patient=1"), NOW) == DateRange(NEG_INFINITY, POS_INFINITY)


S_RANGE = parse_range(SEARCH_DAY)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("eq", DateRange(S_RANGE.low, S_RANGE.high)),
        ("ne", DateRange(NEG_INFINITY, POS_INFINITY)),
        ("gt", DateRange(NEG_INFINITY, POS_INFINITY)),
        ("ge", DateRange(NEG_INFINITY, POS_INFINITY)),
        ("lt", DateRange(NEG_INFINITY, S_RANGE.low - 1)),
        ("eb", DateRange(NEG_INFINITY, S_RANGE.low - 1)),
        ("le", DateRange(NEG_INFINITY, S_RANGE.high)),
        ("sa", DateRange(S_RANGE.high + 1, POS_INFINITY)),
        ("ap", DateRange(NEG_INFINITY, S_RANGE.high + (NOW - S_RANGE.low) // 10)),
    ],
)
def test_start_bounds_per_prefix(prefix: str, expected: DateRange) -> None:
    assert start_bounds(parsed(f"date={prefix}{SEARCH_DAY}"), NOW) == expected


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
def test_start_bounds_hull_or_sets_and_intersect_repeats(
    query: str, low: str | None, high: str | None
) -> None:
    expected = DateRange(micros(low) if low else NEG_INFINITY, micros(high) if high else POS_INFINITY)
    assert start_bounds(parsed(query), NOW) == expected


def _random_value(rng: random.Random, *, zones: bool) -> str:
    instant = rng.randrange(micros("2019-01-01T00:00:00Z"), micros("2024-01-01T00:00:00Z"))
    text = (EPOCH + timedelta(microseconds=instant)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    cut = rng.choice([4, 7, 10, 16, 19, 21, 23, 26])
    zone = rng.choice(["", "Z", "+02:00", "-05:30", "+14:00"]) if zones and cut >= 16 else ""
    return text[:cut] + zone


def _random_period(rng: random.Random) -> DateRange | None:
    shape = rng.random()
    if shape < 0.1:
        return None
    start = None if shape < 0.2 else _random_value(rng, zones=True)
    end = None if 0.2 <= shape < 0.35 else _random_value(rng, zones=True)
    result = period(start, end)
    if result.low > result.high:
        return DateRange(result.high, result.low)
    return result


def test_start_bounds_hold_every_start_that_date_matches_accepts() -> None:
    """Property: whenever a row matches, its start (-infinity when missing) lies within start_bounds."""
    rng = random.Random(42)
    periods = [_random_period(rng) for _ in range(80)]
    checked = bounded = 0
    for _ in range(400):
        groups = [
            ",".join(
                f"{rng.choice(DATE_PREFIXES)}{_random_value(rng, zones=True)}"
                for _ in range(rng.randint(1, 3))
            )
            for _ in range(rng.randint(1, 3))
        ]
        query = parse_search({"date": groups})[0]
        now = rng.randrange(micros("2018-01-01T00:00:00Z"), micros("2027-01-01T00:00:00Z"))
        bounds = start_bounds(query, now)
        for target in periods:
            if not matches(IndexRow("e", "k", None, frozenset(), target), query, now):
                continue
            assert target is not None  # no period matches no date criterion
            assert bounds.low <= target.low <= bounds.high, (groups, now, target, bounds)
            checked += 1
            bounded += bounds.low > NEG_INFINITY or bounds.high < POS_INFINITY
    # the property was exercised, including with real (finite) bounds
    assert checked > 2000
    assert bounded > 500


# ---- _count, _offset, _cursor ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", 10),
        ("_count=", 10),
        ("_count=1", 1),
        ("_count=5", 5),
        ("_count=+7+", 7),
        ("_count=0", 0),
        ("_count=00", 0),
        ("_count=99", 99),
        ("_count=100", 100),
        ("_count=101", 100),
        ("_count=999999999", 100),
    ],
)
def test_count_defaults_to_10_and_is_clamped_to_100(query: str, count: int) -> None:
    assert parsed(query).count == count


@pytest.mark.parametrize(
    ("query", "offset"),
    [("", 0), ("_offset=", 0), ("_offset=0", 0), ("_offset=30", 30), ("_offset=250", 250)],
)
def test_offset_defaults_to_0_and_is_not_clamped(query: str, offset: int) -> None:
    assert parsed(query).offset == offset


@pytest.mark.parametrize("name", ["_count", "_offset"])
@pytest.mark.parametrize(
    "value", ["-1", "abc", "1.5", "1e3", "0x10", "1234567890", "1,2", "%C2%B2", "%D9%A3", "%EF%BC%95"]
)
def test_count_and_offset_must_be_non_negative_integers(name: str, value: str) -> None:
    assert (
        invalid_text(f"{name}={value}")
        == f"Invalid value for search parameter '{name}': must be a non-negative integer"
    )


@pytest.mark.parametrize("name", ["_count", "_offset", "_cursor"])
def test_result_parameters_may_be_given_once(name: str) -> None:
    assert (
        invalid_text(f"{name}=1&{name}=2")
        == f"Invalid value for search parameter '{name}': must be given once"
    )


def test_cursor_is_kept_as_given() -> None:
    assert parsed("_cursor=abc.def").cursor == "abc.def"
    assert parsed("_cursor=").cursor is None


# ---- unknown parameters, strict handling, modifiers, empty values -------------------------------


def test_unknown_parameters_are_ignored_and_listed() -> None:
    query, ignored = parse("foo=1&patient=p1&Patient=2&_sort=date&_format=json&foo:exact=3&bar=")
    assert ignored == ["Patient", "_format", "_sort", "bar", "foo", "foo:exact"]
    assert query.criteria_params == (("patient", "p1"),)
    assert query.patients == [frozenset({"Patient/p1"})]


def test_strict_handling_rejects_unknown_parameters() -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse("foo=1&bar=2&patient=p1", strict=True)
    assert (caught.value.status, caught.value.code) == (400, "not-supported")
    assert caught.value.text == "Unknown search parameter(s): bar, foo"


def test_strict_handling_accepts_known_parameters() -> None:
    query, ignored = parse("patient=p1&date=ge2021&_count=5&_offset=5", strict=True)
    assert ignored == []
    assert query.criteria_params == (("patient", "p1"), ("date", "ge2021"))


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("key", "name", "modifier"),
    [
        ("patient:missing", "patient", "missing"),
        ("subject:Patient", "subject", "Patient"),
        ("appointment:identifier", "appointment", "identifier"),
        ("date:above", "date", "above"),
        ("_id:not", "_id", "not"),
        ("_count:x", "_count", "x"),
    ],
)
def test_a_modifier_is_not_supported(key: str, name: str, modifier: str, strict: bool) -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse(f"{key}=1", strict=strict)
    assert (caught.value.status, caught.value.code) == (400, "not-supported")
    assert caught.value.text == f"Search parameter '{name}' does not support the modifier ':{modifier}'"


@pytest.mark.parametrize(
    "query",
    ["_id=", "patient=", "subject=+", "appointment=", "date=", "date=&date=+", "_count=&_offset=&_cursor="],
)
def test_empty_values_are_ignored(query: str) -> None:
    parsed_query = parsed(query)
    assert parsed_query == parsed("")


def test_an_empty_repeat_leaves_the_others() -> None:
    query = parsed("date=&date=ge2021")
    assert query.dates == [(DateCriterion("ge", parse_range("2021")),)]
    assert query.criteria_params == (("date", "ge2021"),)


@pytest.mark.parametrize("name", ["_id", "patient", "subject", "appointment"])
def test_at_most_100_values_per_parameter(name: str) -> None:
    values = [f"v{i}" for i in range(101)]
    assert parsed(f"{name}={','.join(values[:100])}").criteria_params[0][0] == name
    assert invalid_text(f"{name}={','.join(values[:50])}&{name}={','.join(values[50:])}") == (
        f"Search parameter '{name}' has more than 100 values"
    )


def test_at_most_100_date_values() -> None:
    assert (
        invalid_text("date=" + ",".join(["ge2021"] * 101))
        == "Search parameter 'date' has more than 100 values"
    )


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("_id=a_b", "_id"),
        ("patient=Group/1", "patient"),
        ("subject=Practitioner/1", "subject"),
        ("appointment=Patient/1", "appointment"),
        ("date=2021-13", "date"),
        ("_count=x", "_count"),
        ("_offset=-1", "_offset"),
        ("_cursor=a&_cursor=b", "_cursor"),
    ],
)
def test_an_invalid_value_names_its_parameter(query: str, name: str) -> None:
    assert invalid_text(f"patient=p1&{query}").startswith(f"Invalid value for search parameter '{name}': ")


def test_criteria_are_kept_in_parameter_list_order_with_values_as_given() -> None:
    query = parsed(
        "date=lt2022&_count=5&foo=1&patient=p1&_id=a,b&date=ge2021&appointment=9&subject=Group/7&_offset=3"
    )
    assert query.criteria_params == (
        ("_id", "a,b"),
        ("patient", "p1"),
        ("subject", "Group/7"),
        ("appointment", "9"),
        ("date", "lt2022"),
        ("date", "ge2021"),
    )
