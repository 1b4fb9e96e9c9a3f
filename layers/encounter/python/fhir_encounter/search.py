"""FHIR search for Encounter: the parameter list, query-string parsing, and the match rules.

``SEARCH_PARAMETERS`` is the one list of supported parameters. ``parse_search`` turns API Gateway's
multi-value query parameters into a validated ``SearchQuery`` (pydantic); ``matches`` says whether an
index row satisfies it. The repository narrows what it reads with keys, then applies ``matches`` to
every row, so the FHIR semantics live here and only here.

Semantics (FHIR R4 3.1.1):
- a repeated parameter is AND, a comma inside one value is OR; different parameters AND together;
- ``patient`` and ``subject`` compare normalised references (see ``references``);
- ``date`` compares the search range S (set by the value's precision) with the target
  T = [period.start, period.end], a missing start being -infinity and a missing end +infinity;
  an Encounter without a period matches no date criterion;
- ``ap`` matches when T overlaps S widened on each side by 10% of the time between now and S's
  start (FHIR's recommended tolerance for dates);
- an empty value is ignored; an unknown parameter is ignored unless ``Prefer: handling=strict``;
  an unknown modifier is an error (FHIR: a server SHALL reject modifiers it does not support).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, DateValueError, parse_range
from fhir_encounter.outcome import InvalidRequestError, NotSupportedError
from fhir_encounter.references import ReferenceValueError, is_fhir_id, split_reference


class ParamType(StrEnum):
    TOKEN = "token"  # noqa: S105 (a FHIR search parameter type)
    REFERENCE = "reference"
    DATE = "date"
    NUMBER = "number"
    STRING = "string"


class Parameter(NamedTuple):
    type: ParamType
    documentation: str
    definition: str | None = None  # the FHIR R4 SearchParameter it implements


_SP = "http://hl7.org/fhir/SearchParameter/"
# The one list: parsing, links, strict handling, the CapabilityStatement and (by a test) the
# README's table all follow it.
SEARCH_PARAMETERS: dict[str, Parameter] = {
    "_id": Parameter(ParamType.TOKEN, "Logical id of the Encounter", f"{_SP}Resource-id"),
    "patient": Parameter(
        ParamType.REFERENCE,
        "The Patient present at the encounter (a subject that is a Patient)",
        f"{_SP}clinical-patient",
    ),
    "subject": Parameter(
        ParamType.REFERENCE, "The patient or group present at the encounter", f"{_SP}Encounter-subject"
    ),
    "appointment": Parameter(
        ParamType.REFERENCE, "The appointment that scheduled this encounter", f"{_SP}Encounter-appointment"
    ),
    "date": Parameter(
        ParamType.DATE,
        "A date within the period the Encounter lasted (all R4 prefixes)",
        f"{_SP}clinical-date",
    ),
}
RESULT_PARAMETERS: dict[str, Parameter] = {
    "_count": Parameter(ParamType.NUMBER, "Page size: default 10, maximum 100, 0 returns only the total"),
    "_offset": Parameter(ParamType.NUMBER, "Index of the first match on the page: default 0"),
    "_total": Parameter(
        ParamType.TOKEN, "accurate (default) or estimate: count every match; none: no total, cheaper"
    ),
    "_cursor": Parameter(
        ParamType.STRING, "Opaque continuation token that next links carry; do not build it"
    ),
}
TOTAL_MODES = ("accurate", "estimate", "none")
DEFAULT_COUNT = 10
MAX_COUNT = 100
MAX_VALUES_PER_PARAMETER = 100
SUBJECT_TYPES = ("Patient", "Group")  # Encounter.subject: Reference(Patient | Group)

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
AP_TOLERANCE_DIVISOR = 10  # ap: 10% of the gap between now and the search value


@dataclass(frozen=True, slots=True)
class DateCriterion:
    prefix: str
    search: DateRange


@dataclass(frozen=True, slots=True)
class IndexRow:
    """What every index row carries: enough to decide a match without reading the resource."""

    id: str
    sort_key: str
    subject_ref: str | None
    appointment_refs: frozenset[str]
    period: DateRange | None  # None: the Encounter has no period


def _split_values(raw: object) -> list[str]:
    return [value.strip() for value in str(raw).split(",")]


def _reference_set(values: list[str], allowed_types: Sequence[str], name: str) -> frozenset[str]:
    refs: set[str] = set()
    for value in values:
        try:
            resource_type, resource_id = split_reference(value)
        except ReferenceValueError:
            raise ValueError(
                f"'{name}' needs an id, a reference like {allowed_types[0]}/123, or a URL"
            ) from None
        if resource_type is None:
            refs.update(f"{kind}/{resource_id}" for kind in allowed_types)
        elif resource_type in allowed_types:
            refs.add(f"{resource_type}/{resource_id}")
        else:
            raise ValueError(f"'{name}' refers to {' or '.join(allowed_types)}, not {resource_type}")
    return frozenset(refs)


def _parse_ids(raw: Any) -> list[frozenset[str]]:
    groups = []
    for occurrence in raw:
        values = _split_values(occurrence)
        if not all(is_fhir_id(value) for value in values):
            raise ValueError("'_id' values must be FHIR ids ([A-Za-z0-9-.], 1 to 64 characters)")
        groups.append(frozenset(values))
    return groups


def _reference_parser(name: str, allowed_types: Sequence[str]) -> Any:
    def parse(raw: Any) -> list[frozenset[str]]:
        return [_reference_set(_split_values(occurrence), allowed_types, name) for occurrence in raw]

    return parse


def _parse_dates(raw: Any) -> list[tuple[DateCriterion, ...]]:
    groups = []
    for occurrence in raw:
        criteria = []
        for value in _split_values(occurrence):
            prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
            try:
                criteria.append(DateCriterion(prefix, parse_range(text)))
            except DateValueError:
                raise ValueError(
                    "'date' needs an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a FHIR date "
                    "such as 2021, 2021-06, 2021-06-15 or 2021-06-15T10:30:00Z"
                ) from None
        groups.append(tuple(criteria))
    return groups


def _single_integer(raw: Any) -> Any:
    text = str(_single_text(raw)).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:  # isdigit alone takes "²", "٣"
        raise ValueError("must be a non-negative integer")
    return int(text)


def _total_mode(raw: Any) -> Any:
    value = _single_text(raw)
    if value not in TOTAL_MODES:
        raise ValueError(f"must be one of {', '.join(TOTAL_MODES)}")
    return value


def _single_text(raw: Any) -> Any:
    if isinstance(raw, list):
        if len(raw) > 1:
            raise ValueError("must be given once")
        raw = raw[0]
    return raw


class SearchQuery(BaseModel):
    """A validated Encounter search: each list is an AND of OR-sets."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    ids: Annotated[list[frozenset[str]], BeforeValidator(_parse_ids)] = Field(default=[], alias="_id")
    patients: Annotated[list[frozenset[str]], BeforeValidator(_reference_parser("patient", ("Patient",)))] = (
        Field(default=[], alias="patient")
    )
    subjects: Annotated[
        list[frozenset[str]], BeforeValidator(_reference_parser("subject", SUBJECT_TYPES))
    ] = Field(default=[], alias="subject")
    appointments: Annotated[
        list[frozenset[str]], BeforeValidator(_reference_parser("appointment", ("Appointment",)))
    ] = Field(default=[], alias="appointment")
    dates: Annotated[list[tuple[DateCriterion, ...]], BeforeValidator(_parse_dates)] = Field(
        default=[], alias="date"
    )
    count: Annotated[int, BeforeValidator(_single_integer)] = Field(default=DEFAULT_COUNT, alias="_count")
    offset: Annotated[int, BeforeValidator(_single_integer)] = Field(default=0, alias="_offset")
    total_mode: Annotated[str, BeforeValidator(_total_mode)] = Field(default="accurate", alias="_total")
    cursor: Annotated[str | None, BeforeValidator(_single_text)] = Field(default=None, alias="_cursor")
    # The criteria as the client gave them, in SEARCH_PARAMETERS order: what links carry.
    criteria_params: tuple[tuple[str, str], ...] = ()

    @field_validator("count")
    @classmethod
    def _clamp_count(cls, value: int) -> int:
        return min(value, MAX_COUNT)

    @property
    def counts_total(self) -> bool:
        """_total=none skips counting: the walk stops one match after the page."""
        return self.total_mode != "none"

    @property
    def subject_sets(self) -> list[frozenset[str]]:
        """patient and subject both constrain Encounter.subject."""
        return [*self.patients, *self.subjects]


def parse_search(
    multi_value_params: Mapping[str, Sequence[str]] | None, *, strict: bool = False
) -> tuple[SearchQuery, list[str]]:
    """The validated query, and the names of the parameters it ignored."""
    known = {**SEARCH_PARAMETERS, **RESULT_PARAMETERS}
    accepted: dict[str, list[str]] = {}
    ignored: list[str] = []
    for key, values in (multi_value_params or {}).items():
        name, _, modifier = key.partition(":")
        if name not in known:
            ignored.append(key)
            continue
        if modifier:
            raise NotSupportedError(f"Search parameter '{name}' does not support the modifier ':{modifier}'")
        present = [value for value in values if value.strip()]
        if name in SEARCH_PARAMETERS and SEARCH_PARAMETERS[name].type is ParamType.DATE:
            # An unencoded '+' of a zone offset arrives decoded as a space: restore it.
            present = [value.replace(" ", "+") for value in present]
        if present:
            accepted[name] = present
    if strict and ignored:
        raise NotSupportedError(f"Unknown search parameter(s): {', '.join(sorted(ignored))}")
    for name, values in accepted.items():
        if name in SEARCH_PARAMETERS and sum(len(v.split(",")) for v in values) > MAX_VALUES_PER_PARAMETER:
            raise InvalidRequestError(
                f"Search parameter '{name}' has more than {MAX_VALUES_PER_PARAMETER} values"
            )
    criteria = tuple((name, value) for name in SEARCH_PARAMETERS for value in accepted.get(name, ()))
    try:
        query = SearchQuery.model_validate({**accepted, "criteria_params": criteria})
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "query"
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        raise InvalidRequestError(f"Invalid value for search parameter '{name}': {message}") from None
    return query, sorted(ignored)


def matches(row: IndexRow, query: SearchQuery, now: int) -> bool:
    """Whether one Encounter (as its index row) satisfies every criterion of the query."""
    if any(row.id not in ids for ids in query.ids):
        return False
    if any(row.subject_ref not in refs for refs in query.subject_sets):
        return False
    if any(row.appointment_refs.isdisjoint(refs) for refs in query.appointments):
        return False
    return all(any(date_matches(row.period, c, now) for c in group) for group in query.dates)


def date_matches(period: DateRange | None, criterion: DateCriterion, now: int) -> bool:
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


def start_bounds(query: SearchQuery, now: int) -> DateRange:
    """Bounds on period.start that every match satisfies: what the sort key range can skip.

    NEG_INFINITY / POS_INFINITY mean unbounded; a missing start counts as NEG_INFINITY.
    """
    low, high = NEG_INFINITY, POS_INFINITY
    for group in query.dates:
        ranges = [_criterion_start_bounds(criterion, now) for criterion in group]
        low = max(low, min(r.low for r in ranges))
        high = min(high, max(r.high for r in ranges))
    return DateRange(low, high)


def _criterion_start_bounds(criterion: DateCriterion, now: int) -> DateRange:
    s_lo, s_hi = criterion.search.low, criterion.search.high
    match criterion.prefix:
        case "eq":
            return DateRange(s_lo, s_hi)
        case "lt" | "eb":
            return DateRange(NEG_INFINITY, s_lo - 1)
        case "le":
            return DateRange(NEG_INFINITY, s_hi)
        case "sa":
            return DateRange(s_hi + 1, POS_INFINITY)
        case "ap":
            return DateRange(NEG_INFINITY, s_hi + abs(now - s_lo) // AP_TOLERANCE_DIVISOR)
        case _:  # ne, gt, ge put no bound on the start
            return DateRange(NEG_INFINITY, POS_INFINITY)
