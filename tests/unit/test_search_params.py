"""Search parsing and FHIR R4 match rules: every parameter, OR/AND, every date prefix, status tokens,
paging values, unknown parameters and modifiers. Rows are plain IndexRow values; no store."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, parse_range
from fhir_encounter.errors import InvalidRequestError, NotSupportedError
from fhir_encounter.search.parameters import (
    DATE_PREFIXES,
    RESULT_PARAMETERS,
    SEARCH_PARAMETERS,
    DateCriterion,
    ParseContext,
    date_matches,
)
from fhir_encounter.search.query import SearchQuery, parse_search
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.store.items import index_row_of
from tests.support import encounter, micros

NOW = micros("2026-01-01T00:00:00Z")
STATUS_SYSTEM = "http://hl7.org/fhir/encounter-status"


# This server's own base URLs: absolute references under them are local (Type/id).
LOCAL = ParseContext(frozenset({"https://host/base", "http://host"}))


def parse(query: str, *, strict: bool = False) -> tuple[SearchQuery, list[str]]:
    """Parse a query string the way API Gateway hands it over (decoded, multi-value)."""
    return parse_search(parse_qs(query, keep_blank_values=True), strict=strict, context=LOCAL)


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
    status: str | None = "finished",
) -> IndexRow:
    """An index row as the writer makes it: a field the Encounter lacks is absent."""
    values: dict[str, Any] = {}
    if subject is not None:
        values["subject"] = subject
    if appointments:
        values["appointments"] = frozenset(appointments)
    if start is not None or end is not None:
        values["period"] = period(start, end)
    if status is not None:
        values["status"] = status
    return IndexRow(encounter_id, f"sk#{encounter_id}", values)


def matches(target: IndexRow, query: str) -> bool:
    return parsed(query).matches(target, NOW)


def criterion(value: str) -> DateCriterion:
    (group,) = parsed(f"date={value}").values_of("date")
    (only,) = group
    assert isinstance(only, DateCriterion)
    return only


def invalid_text(query: str) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        parse(query)
    assert caught.value.status == 400
    assert caught.value.code == "invalid"
    return caught.value.text


def test_the_row_helper_has_the_shape_the_writer_gives_a_row() -> None:
    resource = encounter(
        "e1",
        subject="https://h/fhir/Patient/p1",  # another server's Patient: stored as its URL
        start="2021-06-10T09:00:00+02:00",
        end="2021-06-10",
        appointments=["Appointment/a2", "Appointment/a3/_history/1"],
        status="in-progress",
    )
    expected = row(
        subject="https://h/fhir/Patient/p1",
        appointments=("Appointment/a2", "Appointment/a3"),
        start="2021-06-10T09:00:00+02:00",
        end="2021-06-10",
        status="in-progress",
    )
    assert index_row_of(resource).values == expected.values
    bare = encounter("e2", subject=None)
    del bare["status"]
    assert index_row_of(bare).values == row("e2", subject=None, status=None).values == {}


# ---- the parameter list -------------------------------------------------------------------------


def test_the_keyed_parameters_come_first_in_the_order_links_carry_them() -> None:
    assert list(SEARCH_PARAMETERS)[:6] == ["_id", "patient", "subject", "appointment", "date", "status"]
    assert list(SEARCH_PARAMETERS)[6:] == sorted(list(SEARCH_PARAMETERS)[6:])
    assert [p.name for p in SEARCH_PARAMETERS.values() if p.keyed] == list(SEARCH_PARAMETERS)[:6]
    assert list(RESULT_PARAMETERS)[-1] == "_cursor"  # the one a client never builds, listed last


def test_no_parameters_give_the_defaults() -> None:
    for query in (parse_search(None)[0], parse_search({})[0], parsed("")):
        assert query.criteria == ()
        assert all(query.values_of(name) == [] for name in SEARCH_PARAMETERS)
        assert (query.count, query.offset, query.total_mode, query.cursor) == (10, 0, "accurate", None)
        assert query.counts_total
        assert query.criteria_params == ()


# ---- _id ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_id=a", [("a",)]),
        ("_id=a,b", [("a", "b")]),
        ("_id=a&_id=b", [("a",), ("b",)]),
        ("_id=a,b&_id=b,c", [("a", "b"), ("b", "c")]),
        ("_id=+a+,+b+", [("a", "b")]),
        ("_id=7720a218-c0bd-4cee-82a2-729bd9c101f3", [("7720a218-c0bd-4cee-82a2-729bd9c101f3",)]),
    ],
)
def test_id_comma_is_or_and_repeat_is_and(query: str, expected: list[tuple[str, ...]]) -> None:
    assert parsed(query).values_of("_id") == expected


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
    assert parsed(f"patient={value}").values_of("patient") == [(frozenset({"Patient/123"}),)]


def test_patient_comma_is_or_and_repeat_is_and() -> None:
    assert parsed("patient=1,Patient/2").values_of("patient") == [
        (frozenset({"Patient/1"}), frozenset({"Patient/2"}))
    ]
    assert parsed("patient=1&patient=2").values_of("patient") == [
        (frozenset({"Patient/1"}),),
        (frozenset({"Patient/2"}),),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", [{"Patient/123", "Group/123"}]),
        ("Patient/123", [{"Patient/123"}]),
        ("Group/7", [{"Group/7"}]),
        ("https://host/base/Group/7", [{"Group/7"}]),
        ("https://host/base/Patient/123", [{"Patient/123"}]),
        ("Group/7,Patient/1", [{"Group/7"}, {"Patient/1"}]),
    ],
)
def test_subject_takes_a_typed_reference_or_a_bare_id_of_any_subject_type(
    value: str, expected: list[set[str]]
) -> None:
    assert parsed(f"subject={value}").values_of("subject") == [tuple(frozenset(refs) for refs in expected)]


def test_patient_and_subject_both_constrain_the_subject() -> None:
    query = parsed("patient=1&subject=Group/7")
    assert query.values_of("patient") == [(frozenset({"Patient/1"}),)]
    assert query.values_of("subject") == [(frozenset({"Group/7"}),)]
    assert [c.parameter.field for c in query.criteria] == [SEARCH_PARAMETERS["subject"].field] * 2


@pytest.mark.parametrize(
    "value", ["9", "Appointment/9", "https://host/base/Appointment/9", "Appointment/9/_history/1"]
)
def test_appointment_accepts_every_reference_form(value: str) -> None:
    assert parsed(f"appointment={value}").values_of("appointment") == [(frozenset({"Appointment/9"}),)]


def test_appointment_comma_is_or_and_repeat_is_and() -> None:
    assert parsed("appointment=1,2").values_of("appointment") == [
        (frozenset({"Appointment/1"}), frozenset({"Appointment/2"}))
    ]
    assert parsed("appointment=1&appointment=2").values_of("appointment") == [
        (frozenset({"Appointment/1"}),),
        (frozenset({"Appointment/2"}),),
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
    assert parsed("date=ge2021,lt2020").values_of("date") == [
        (DateCriterion("ge", parse_range("2021")), DateCriterion("lt", parse_range("2020")))
    ]
    assert parsed("date=ge2021&date=lt2022").values_of("date") == [
        (DateCriterion("ge", parse_range("2021")),),
        (DateCriterion("lt", parse_range("2022")),),
    ]


def test_a_date_with_a_decoded_plus_in_its_zone_is_read_as_plus() -> None:
    assert parsed("date=ge2021-06-15T10:00:00+02:00").values_of("date") == [
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
        ("patient=https://host/base/Patient/p1", True),
        ("patient=https://h/fhir/Patient/p1", False),  # another server's p1
        ("patient=http://evil.example/fhir/Patient/p1", False),
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
    assert matches(target, query) is expected


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
    assert matches(row(subject=subject), query) is expected


def test_an_encounter_with_several_appointments_is_found_by_each() -> None:
    target = row(appointments=("Appointment/a1", "Appointment/a2", "Appointment/a3"))
    for value in ("a1", "Appointment/a2", "https://host/base/Appointment/a3"):
        assert matches(target, f"appointment={value}")
    assert not matches(row(appointments=()), "appointment=a1")


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
    assert matches(row(), f"date={prefix}{SEARCH_DAY}") is False


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


# ---- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=finished", [("finished",)]),
        ("status=+finished+", [("finished",)]),
        ("status=planned,in-progress", [("planned", "in-progress")]),
        ("status=planned&status=finished", [("planned",), ("finished",)]),
        (f"status={STATUS_SYSTEM}|finished", [("finished",)]),
        (f"status={STATUS_SYSTEM}|finished,planned", [("finished", "planned")]),
    ],
)
def test_status_takes_codes_comma_is_or_and_repeat_is_and(
    query: str, expected: list[tuple[str, ...]]
) -> None:
    assert parsed(query).values_of("status") == expected


def test_status_system_without_a_code_means_any_code() -> None:
    assert parsed(f"status={STATUS_SYSTEM}|").values_of("status") == [("",)]


@pytest.mark.parametrize(
    "value",
    ["http://example.org/status|finished", "|finished", "|", "http://hl7.org/fhir/encounter-status2|x"],
)
def test_status_of_another_system_or_none_parses_to_a_value_that_matches_nothing(value: str) -> None:
    assert parsed(f"status={value}").values_of("status") == [(None,)]


@pytest.mark.parametrize("query", ["status=finished,", "status=,finished", "status=,"])
def test_an_empty_status_value_between_commas_is_invalid(query: str) -> None:
    assert invalid_text(query) == (
        "Invalid value for search parameter 'status': 'status' needs a code, such as finished"
    )


@pytest.mark.parametrize("query", ["status=", "status=+", "status=&status="])
def test_an_empty_status_is_ignored(query: str) -> None:
    assert parsed(query) == parsed("")


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("modifier", ["text", "in", "above", "identifier"])
def test_a_status_modifier_is_not_supported(modifier: str, strict: bool) -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse(f"status:{modifier}=finished", strict=strict)
    assert (caught.value.status, caught.value.code) == (400, "not-supported")
    assert caught.value.text == f"Search parameter 'status' does not support the modifier ':{modifier}'"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=finished", True),
        ("status=planned", False),
        ("status=Finished", False),
        ("status=planned,finished", True),
        ("status=planned,arrived", False),
        ("status=finished&status=finished", True),
        ("status=finished&status=planned", False),
        ("status=planned,finished&status=finished,cancelled", True),
        (f"status={STATUS_SYSTEM}|finished", True),
        (f"status={STATUS_SYSTEM}|planned", False),
        (f"status={STATUS_SYSTEM}|", True),
        (f"status={STATUS_SYSTEM}|&status=finished", True),
        (f"status={STATUS_SYSTEM}|&status=planned", False),
        ("status=http://example.org/status|finished", False),
        ("status=|finished", False),
        ("status=|finished,finished", True),
        ("status=finished&patient=p1", True),
        ("status=finished&patient=p2", False),
    ],
)
def test_status_matches_the_rows_code(query: str, expected: bool) -> None:
    assert matches(row(status="finished"), query) is expected


@pytest.mark.parametrize("query", ["status=finished", f"status={STATUS_SYSTEM}|", "status=|finished"])
def test_a_row_without_status_matches_no_status_criterion(query: str) -> None:
    assert matches(row(status=None), query) is False
    assert matches(row(status=None), "patient=p1") is True


# ---- _count, _offset, _total, _cursor -------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("query", "mode", "counts"),
    [
        ("", "accurate", True),
        ("_total=", "accurate", True),
        ("_total=accurate", "accurate", True),
        ("_total=estimate", "estimate", True),
        ("_total=none", "none", False),
    ],
)
def test_total_defaults_to_accurate_and_none_skips_counting(query: str, mode: str, counts: bool) -> None:
    assert (parsed(query).total_mode, parsed(query).counts_total) == (mode, counts)


@pytest.mark.parametrize("value", ["all", "None", "0", "accurate,none"])
def test_total_must_be_one_of_the_modes(value: str) -> None:
    assert invalid_text(f"_total={value}") == (
        "Invalid value for search parameter '_total': must be one of accurate, estimate, none"
    )


@pytest.mark.parametrize("name", ["_count", "_offset", "_total", "_summary", "_elements", "_cursor"])
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
    assert ignored == ["Patient", "bar", "foo", "foo:exact"]
    assert query.criteria_params == (("patient", "p1"),)
    assert query.values_of("patient") == [(frozenset({"Patient/p1"}),)]


def test_strict_handling_rejects_unknown_parameters() -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse("foo=1&bar=2&patient=p1", strict=True)
    assert (caught.value.status, caught.value.code) == (400, "not-supported")
    assert caught.value.text == "Unknown search parameter(s): bar, foo"


def test_format_and_pretty_are_general_parameters_not_unknown_under_strict_handling() -> None:
    query, ignored = parse("patient=p1&_format=json&_pretty=true", strict=True)
    assert ignored == []
    assert query.criteria_params == (("patient", "p1"),)


def test_strict_handling_names_at_most_ten_unknown_parameters_each_cut_short() -> None:
    names = [f"x{n:04d}" + "y" * 100 for n in range(1000)]
    with pytest.raises(NotSupportedError) as caught:
        parse("&".join(f"{name}=1" for name in names), strict=True)
    text = caught.value.text
    assert text.startswith("Unknown search parameter(s): x0000" + "y" * 58 + "…, x0001")
    assert text.endswith(" and 990 more")
    assert text.count(", ") == 9
    assert len(text) < 800


def test_an_unknown_modifier_is_named_cut_short() -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse("patient:" + "m" * 5000 + "=p1")
    assert len(caught.value.text) < 200


@pytest.mark.parametrize("offset", ["10001", "999999999"])
def test_an_offset_above_ten_thousand_says_to_follow_next_links(offset: str) -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse(f"patient=p1&_offset={offset}")
    assert (caught.value.status, caught.value.code) == (400, "not-supported")
    assert "next links" in caught.value.text


def test_an_offset_of_ten_thousand_is_allowed_and_a_cursor_may_go_deeper() -> None:
    assert parse("_offset=10000")[0].offset == 10000
    assert parse("_offset=20000&_cursor=abc")[0].offset == 20000


def test_strict_handling_accepts_known_parameters() -> None:
    query, ignored = parse("patient=p1&date=ge2021&_count=5&_offset=5", strict=True)
    assert ignored == []
    assert query.criteria_params == (("patient", "p1"), ("date", "ge2021"))


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    ("key", "name", "modifier"),
    [
        ("patient:Group", "patient", "Group"),
        ("subject:Practitioner", "subject", "Practitioner"),
        ("appointment:not", "appointment", "not"),
        ("date:above", "date", "above"),
        ("_id:identifier", "_id", "identifier"),
        ("status:text", "status", "text"),
        ("class:below", "class", "below"),
        ("length:not", "length", "not"),
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
    [
        "_id=",
        "patient=",
        "subject=+",
        "appointment=",
        "date=",
        "date=&date=+",
        "status=",
        "_count=&_offset=&_total=&_cursor=",
    ],
)
def test_empty_values_are_ignored(query: str) -> None:
    parsed_query = parsed(query)
    assert parsed_query == parsed("")


def test_an_empty_repeat_leaves_the_others() -> None:
    query = parsed("date=&date=ge2021")
    assert query.values_of("date") == [(DateCriterion("ge", parse_range("2021")),)]
    assert query.criteria_params == (("date", "ge2021"),)


@pytest.mark.parametrize("name", ["_id", "patient", "subject", "appointment", "status"])
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
        ("status=a,,b", "status"),
        ("_count=x", "_count"),
        ("_total=some", "_total"),
        ("_offset=-1", "_offset"),
        ("_cursor=a&_cursor=b", "_cursor"),
    ],
)
def test_an_invalid_value_names_its_parameter(query: str, name: str) -> None:
    assert invalid_text(f"patient=p1&{query}").startswith(f"Invalid value for search parameter '{name}': ")


def test_criteria_are_kept_in_parameter_list_order_with_values_as_given() -> None:
    query = parsed(
        "status=finished,planned&date=lt2022&_count=5&foo=1&patient=p1&_id=a,b&date=ge2021&appointment=9"
        "&subject=Group/7&_offset=3"
    )
    assert query.criteria_params == (
        ("_id", "a,b"),
        ("patient", "p1"),
        ("subject", "Group/7"),
        ("appointment", "9"),
        ("date", "lt2022"),
        ("date", "ge2021"),
        ("status", "finished,planned"),
    )


# ---- absolute references name a server (FHIR R4 3.1.1.4.8) -----------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://evil.example/fhir/Patient/p1", "http://evil.example/fhir/Patient/p1"),
        ("https://other.org/r4/Patient/p1/_history/3", "https://other.org/r4/Patient/p1"),
        ("https://host/base/Patient/p1", "Patient/p1"),
        ("https://host/other/Patient/p1", "https://host/other/Patient/p1"),
    ],
)
def test_an_absolute_url_is_local_only_under_this_servers_base(value: str, expected: str) -> None:
    assert parsed(f"patient={value}").values_of("patient") == [(frozenset({expected}),)]


def test_without_a_known_base_every_absolute_url_is_another_servers() -> None:
    query = parse_search({"patient": ["https://host/base/Patient/p1"]})[0]
    assert query.values_of("patient") == [(frozenset({"https://host/base/Patient/p1"}),)]


def test_another_servers_patient_matches_only_that_url() -> None:
    foreign = row(subject="http://example.org/fhir/Patient/p2")
    assert matches(foreign, "patient=http://example.org/fhir/Patient/p2")
    assert not matches(foreign, "patient=p2")
    assert not matches(foreign, "patient=Patient/p2")
    assert not matches(foreign, "subject=p2")
    assert not matches(row(subject="Patient/p2"), "patient=http://example.org/fhir/Patient/p2")


def test_a_period_whose_end_zone_puts_it_before_its_start_covers_the_start() -> None:
    from fhir_encounter.store.fields import period_range

    span = period_range({"period": {"start": "2021-06-15", "end": "2021-06-15T10:00:00+14:00"}})
    assert span is not None
    assert span.low == micros("2021-06-15T00:00:00Z")
    assert span.high >= span.low


@pytest.mark.parametrize("name", ["status", "_id", "patient", "date", "_count", "_cursor"])
def test_a_value_that_is_not_unicode_text_is_a_400(name: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_search({name: ["finished\ud800"]})
    assert (
        caught.value.text
        == f"Invalid value for search parameter '{name}': not valid Unicode text (a lone surrogate)"
    )


# ---- the criteria's pydantic model --------------------------------------------------------------


def test_the_criteria_model_has_a_field_per_parameter_and_modifier_of_the_registry() -> None:
    from fhir_encounter.search.query import criteria_model

    model, fields = criteria_model()
    aliases = [model.model_fields[field].alias for field in fields]
    expected = [
        f"{name}:{modifier}" if modifier else name
        for name, parameter in SEARCH_PARAMETERS.items()
        for modifier in ("", *sorted(parameter.modifiers))
    ]
    assert aliases == expected
    assert {"class:not", "subject:Patient", "length:missing"} <= set(aliases)


def test_a_registry_entry_added_is_a_field_of_the_next_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from fhir_encounter.search.query import criteria_model

    entry = replace(SEARCH_PARAMETERS["class"], name="service-type")
    monkeypatch.setitem(SEARCH_PARAMETERS, "service-type", entry)
    model, fields = criteria_model()
    assert "service-type:not" in [model.model_fields[field].alias for field in fields]
    query, _ = parse("service-type:not=AMB")
    assert [(c.name, c.text) for c in query.criteria] == [("service-type:not", "AMB")]
