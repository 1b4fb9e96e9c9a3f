"""The one registry of Encounter search parameters: for each, how a value parses, what the writer
extracts into index attributes, how a row matches and which index serves it. The query model,
stored attributes, GSI projections, CapabilityStatement and docs/api.md's table all derive from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_encounter.dates import (
    NEG_INFINITY,
    POS_INFINITY,
    DateRange,
    DateValueError,
    PeriodBounds,
    parse_range,
)
from fhir_encounter.references import ReferenceValueError, is_fhir_id, normalize_reference
from fhir_encounter.store import keys
from fhir_encounter.store.fields import (
    APPOINTMENTS,
    ENCOUNTER_STATUS_SYSTEM,
    PERIOD,
    STATUS,
    SUBJECT,
    SUBJECT_TYPES,
    IndexField,
    IndexRow,
)


class ParamType(StrEnum):
    TOKEN = "token"  # noqa: S105 (a FHIR search parameter type)
    REFERENCE = "reference"
    DATE = "date"
    NUMBER = "number"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class DateCriterion:
    prefix: str
    search: DateRange


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What parsing a value may depend on besides the value: this server's own base URLs."""

    local_bases: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SearchParameter:
    """One search parameter: what it is (for FHIR), how it parses, matches and is served."""

    name: str
    type: ParamType
    definition: str
    documentation: str  # the CapabilityStatement's text and docs/api.md's "Matches" column
    accepts: str  # docs/api.md's "Accepts" column (Markdown)
    parse: Callable[[str, ParseContext], Any]  # one value (between commas); ValueError says why not
    field: IndexField | None  # None: the logical id (the item key)
    match: Callable[[Any, tuple[Any, ...], int], bool]  # (row value, the OR-ed values, now)
    index: str | None = None  # the index (or "table") whose partition key the values are
    partitions: Callable[[Any], Iterable[str]] | None = None  # partition keys of one value
    period_bounds: Callable[[Any, int], PeriodBounds] | None = None  # what it implies of the period

    def row_value(self, row: IndexRow) -> Any:
        return row.id if self.field is None else row.values.get(self.field.name)


@dataclass(frozen=True, slots=True)
class ResultParameter:
    name: str
    type: ParamType
    documentation: str
    accepts: str


# ---- value parsers: one value between commas; ValueError names what is wrong -----------------


def _parse_id(value: str, context: ParseContext) -> str:
    if not is_fhir_id(value):
        raise ValueError("'_id' values must be FHIR ids ([A-Za-z0-9-.], 1 to 64 characters)")
    return value


def _reference_parser(name: str, allowed: tuple[str, ...]) -> Callable[[str, ParseContext], frozenset[str]]:
    """A reference value as the set of forms it can mean (a bare id: each allowed type)."""

    def parse(value: str, context: ParseContext) -> frozenset[str]:
        try:
            return normalize_reference(value, allowed, allow_bare=True, local_bases=context.local_bases)
        except ReferenceValueError as error:
            if error.resource_type is None:
                raise ValueError(
                    f"'{name}' needs an id, a reference like {allowed[0]}/123, or a URL"
                ) from None
            raise ValueError(
                f"'{name}' refers to {' or '.join(allowed)}, not {error.resource_type}"
            ) from None

    return parse


DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
AP_TOLERANCE_DIVISOR = 10  # ap: 10% of the gap between now and the search value


def _parse_date(value: str, context: ParseContext) -> DateCriterion:
    prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
    try:
        return DateCriterion(prefix, parse_range(text))
    except DateValueError:
        raise ValueError(
            "'date' needs an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a FHIR date "
            "such as 2021, 2021-06, 2021-06-15 or 2021-06-15T10:30:00Z"
        ) from None


ANY_CODE = ""  # ``system|``: any code of the system (an empty code is never a parsed value)


def _parse_status(value: str, context: ParseContext) -> str | None:
    """A token: ``code``, ``system|code`` or ``system|``; None when the system is another one
    (or none, ``|code``): Encounter.status is a code of the encounter-status system only."""
    if not value:
        raise ValueError("'status' needs a code, such as finished")
    if "|" not in value:
        return value
    system, _, code = value.partition("|")
    if system != ENCOUNTER_STATUS_SYSTEM:
        return None
    return code or ANY_CODE


# ---- match rules: (row value, OR-ed values, now) ------------------------------------------------


def _is_one_of(value: str, values: tuple[str, ...], now: int) -> bool:
    return value in values


def _in_any(value: str | None, values: tuple[frozenset[str], ...], now: int) -> bool:
    return value is not None and any(value in v for v in values)


def _shares_any(refs: frozenset[str] | None, values: tuple[frozenset[str], ...], now: int) -> bool:
    return refs is not None and any(not refs.isdisjoint(v) for v in values)


def _status_matches(status: str | None, values: tuple[str | None, ...], now: int) -> bool:
    return status is not None and any(v in (ANY_CODE, status) for v in values)


def _date_matches_any(period: DateRange | None, values: tuple[DateCriterion, ...], now: int) -> bool:
    return any(date_matches(period, criterion, now) for criterion in values)


def date_matches(period: DateRange | None, criterion: DateCriterion, now: int) -> bool:
    """FHIR R4 date search: the search range S against the target T = [start, end]; no period: never."""
    if period is None:
        return False
    t_lo, t_hi = period.low, period.high
    s_lo, s_hi = criterion.search.low, criterion.search.high
    eq = s_lo <= t_lo and t_hi <= s_hi
    match criterion.prefix:
        case "eq":
            return eq
        case "ne":
            return not eq
        case "gt":
            return t_hi > s_hi
        case "lt":
            return t_lo < s_lo
        case "ge":
            return t_hi > s_hi or eq
        case "le":
            return t_lo < s_lo or eq
        case "sa":
            return t_lo > s_hi
        case "eb":
            return t_hi < s_lo
        case _:  # ap
            tolerance = abs(now - s_lo) // AP_TOLERANCE_DIVISOR
            return t_lo <= s_hi + tolerance and t_hi >= s_lo - tolerance


def date_period_bounds(criterion: DateCriterion, now: int) -> PeriodBounds:
    """What every period matching the criterion satisfies: bounds on its start (-inf when missing)
    and on its end (+inf when missing), read off date_matches case by case."""
    s_lo, s_hi = criterion.search.low, criterion.search.high
    match criterion.prefix:
        case "eq":  # s_lo <= start and end <= s_hi (and start <= end)
            return _bounds(start=(s_lo, s_hi), end=(s_lo, s_hi))
        case "gt":
            return _bounds(end=(s_hi + 1, POS_INFINITY))
        case "lt":
            return _bounds(start=(NEG_INFINITY, s_lo - 1))
        case "ge":  # ends after S, or lies within it: either way ends at or after s_lo
            return _bounds(end=(s_lo, POS_INFINITY))
        case "le":  # starts before S, or lies within it
            return _bounds(start=(NEG_INFINITY, s_hi))
        case "sa":
            return _bounds(start=(s_hi + 1, POS_INFINITY), end=(s_hi + 1, POS_INFINITY))
        case "eb":
            return _bounds(start=(NEG_INFINITY, s_lo - 1), end=(NEG_INFINITY, s_lo - 1))
        case "ap":
            tolerance = abs(now - s_lo) // AP_TOLERANCE_DIVISOR
            return _bounds(start=(NEG_INFINITY, s_hi + tolerance), end=(s_lo - tolerance, POS_INFINITY))
        case _:  # ne: any period
            return _bounds()


def _bounds(
    start: tuple[int, int] = (NEG_INFINITY, POS_INFINITY), end: tuple[int, int] = (NEG_INFINITY, POS_INFINITY)
) -> PeriodBounds:
    return PeriodBounds(DateRange(*start), DateRange(*end))


def _same(value: frozenset[str]) -> Iterable[str]:
    return value


# ---- the registry -------------------------------------------------------------------------------

_SP = "http://hl7.org/fhir/SearchParameter/"

SEARCH_PARAMETERS: dict[str, SearchParameter] = {
    p.name: p
    for p in (
        SearchParameter(
            name="_id",
            type=ParamType.TOKEN,
            definition=f"{_SP}Resource-id",
            documentation="Logical id of the Encounter",
            accepts="`abc`, `abc,def`",
            parse=_parse_id,
            field=None,
            match=_is_one_of,
            index=keys.TABLE,
        ),
        SearchParameter(
            name="patient",
            type=ParamType.REFERENCE,
            definition=f"{_SP}clinical-patient",
            documentation="The Patient present at the encounter (a subject that is a Patient)",
            accepts="`123`, `Patient/123`, an absolute URL (below)",
            parse=_reference_parser("patient", ("Patient",)),
            field=SUBJECT,
            match=_in_any,
            index=keys.SUBJECT_INDEX,
            partitions=_same,
        ),
        SearchParameter(
            name="subject",
            type=ParamType.REFERENCE,
            definition=f"{_SP}Encounter-subject",
            documentation="The patient or group present at the encounter",
            accepts="`Patient/123`, `Group/7`, an absolute URL (below), or a bare `123` (any subject type)",
            parse=_reference_parser("subject", SUBJECT_TYPES),
            field=SUBJECT,
            match=_in_any,
            index=keys.SUBJECT_INDEX,
            partitions=_same,
        ),
        SearchParameter(
            name="appointment",
            type=ParamType.REFERENCE,
            definition=f"{_SP}Encounter-appointment",
            documentation="The appointment that scheduled this encounter (any of Encounter.appointment)",
            accepts="`9`, `Appointment/9`, an absolute URL (below)",
            parse=_reference_parser("appointment", ("Appointment",)),
            field=APPOINTMENTS,
            match=_shares_any,
            index=keys.APPOINTMENT_INDEX,
            partitions=_same,
        ),
        SearchParameter(
            name="date",
            type=ParamType.DATE,
            definition=f"{_SP}clinical-date",
            documentation="A date within the period the Encounter lasted (all R4 prefixes)",
            accepts=(
                "`[prefix]value`: prefixes `eq` (default) `ne` `gt` `lt` `ge` `le` `sa` `eb` `ap`; "
                "values `2021`, `2021-06`, `2021-06-15`, `2021-06-15T10:30`, `2021-06-15T10:30:00`, "
                "`…:00.123`; a time may carry `Z` or `±hh:mm` "
                "(none = UTC; a `+` sent unencoded is understood)"
            ),
            parse=_parse_date,
            field=PERIOD,
            match=_date_matches_any,
            period_bounds=date_period_bounds,
        ),
        SearchParameter(
            name="status",
            type=ParamType.TOKEN,
            definition=f"{_SP}Encounter-status",
            documentation="Encounter.status (planned, arrived, triaged, in-progress, onleave, finished, …)",
            accepts=f"`finished`, `planned,in-progress`, `{ENCOUNTER_STATUS_SYSTEM}\\|finished`",
            parse=_parse_status,
            field=STATUS,
            match=_status_matches,
        ),
    )
}

RESULT_PARAMETERS: dict[str, ResultParameter] = {
    p.name: p
    for p in (
        ResultParameter(
            "_count",
            ParamType.NUMBER,
            "Page size: default 10, maximum 100, 0 returns only the total",
            "`0` to `100` (default 10; more is clamped to 100; `0` returns only `total`)",
        ),
        ResultParameter(
            "_offset",
            ParamType.NUMBER,
            "Index of the first match on the page: default 0",
            "`0` to `10000` (default 0; past the end gives an empty page; to go deeper, follow `next`)",
        ),
        ResultParameter(
            "_total",
            ParamType.TOKEN,
            "accurate (default) or estimate: count every match; none: no total, cheaper",
            "`accurate` (default), `estimate` (same as accurate), `none`",
        ),
        ResultParameter(
            "_summary",
            ParamType.TOKEN,
            "true: the summary elements; text: text, id, meta, status, class; data: all but text; "
            "count: only the total (as _count=0); false (default): the whole Encounter",
            "`true`, `text`, `data`, `count`, `false` (not with `_elements`)",
        ),
        ResultParameter(
            "_elements",
            ParamType.STRING,
            "Only these top-level elements, with id, meta, status and class",
            "`subject,period`: top-level Encounter elements (others are ignored; "
            "a 400 under `Prefer: handling=strict`)",
        ),
        ResultParameter(
            "_cursor",
            ParamType.STRING,
            "Opaque continuation token that next links carry; do not build it",
            "only as found in a `next` link",
        ),
    )
}
