"""The one registry of Encounter search parameters. Each entry says what FHIR calls it, which
element path it compares (a ValuePath: the writer links its values in the generic value index,
store.values) and, for the six keyed parameters, how its plain form is served by the keyed indexes
(parse, index field, row match, partitions). A new parameter of an existing type is one entry:
its path's values are linked by the next load or reindex, and search.criteria compiles and
matches it generically. The query model, the writer's paths, the CapabilityStatement and
docs/api.md's table all derive from this registry.
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
from fhir_encounter.store.values import ValueKind, ValuePath


class ParamType(StrEnum):
    TOKEN = "token"  # noqa: S105 (a FHIR search parameter type)
    REFERENCE = "reference"
    DATE = "date"
    QUANTITY = "quantity"
    NUMBER = "number"
    STRING = "string"


# The modifiers each type takes (R4 search.html#modifiers, those this server implements);
# a reference parameter also takes :[type] for each of its target types.
MODIFIERS: dict[ParamType, tuple[str, ...]] = {
    ParamType.TOKEN: ("missing", "not"),
    ParamType.REFERENCE: ("missing", "identifier"),
    ParamType.DATE: ("missing",),
    ParamType.QUANTITY: ("missing",),
}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


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
    """One search parameter: what it is (for FHIR), the element path it compares, and for a keyed
    parameter how its plain form is served by a keyed index."""

    name: str
    type: ParamType
    definition: str
    documentation: str  # the CapabilityStatement's text and docs/api.md's "Matches" column
    accepts: str  # docs/api.md's "Accepts" column (Markdown)
    path: ValuePath | None  # what it compares; None: the logical id
    targets: tuple[str, ...] = ()  # a reference parameter's target types
    only: str | None = None  # the one target type its expression keeps (where(resolve() is X))
    # Keyed parameters: their plain form, parsed, matched on index rows and served by an index.
    parse: Callable[[str, ParseContext], Any] | None = None  # one value (between commas)
    field: IndexField | None = None  # the row field it matches; None: the logical id
    match: Callable[[Any, tuple[Any, ...], int], bool] | None = None  # (row value, OR-ed values, now)
    index: str | None = None  # the index (or "table") whose partition key the values are
    partitions: Callable[[Any], Iterable[str]] | None = None  # partition keys of one value
    period_bounds: Callable[[Any, int], PeriodBounds] | None = None  # what it implies of the period

    @property
    def keyed(self) -> bool:
        return self.parse is not None

    @property
    def modifiers(self) -> tuple[str, ...]:
        """What follows the name after a colon: the type's modifiers, and a reference's types."""
        return (*MODIFIERS[self.type], *self.targets)

    @property
    def capability_documentation(self) -> str:
        """The CapabilityStatement's documentation: what it matches, and the modifiers and
        comparators it takes (R4's searchParam has no field for them)."""
        parts = [self.documentation]
        parts.append("Modifiers: " + ", ".join(f":{m}" for m in self.modifiers) + ".")
        if self.type in (ParamType.DATE, ParamType.QUANTITY):
            parts.append("Comparators: " + ", ".join(PREFIXES) + ".")
        return " ".join(parts)

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


def _date_parser(name: str) -> Callable[[str, ParseContext], DateCriterion]:
    def parse(value: str, context: ParseContext) -> DateCriterion:
        prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
        try:
            return DateCriterion(prefix, parse_range(text))
        except DateValueError:
            raise ValueError(
                f"'{name}' needs an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a FHIR date "
                "such as 2021, 2021-06, 2021-06-15 or 2021-06-15T10:30:00Z"
            ) from None

    return parse


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
_US_CORE = "http://hl7.org/fhir/us/core/SearchParameter/"
_TOKEN_ACCEPTS = "`code`, `system\\|code`, `\\|code`, `system\\|`; `:not`, `:missing`"  # noqa: S105
_REFERENCE_ACCEPTS = "`id`, `{0}/id`, a URL; `:identifier`, `:{0}`, `:missing`"


def _token(name: str, path: str, kind: ValueKind, definition: str, documentation: str) -> SearchParameter:
    return SearchParameter(
        name=name,
        type=ParamType.TOKEN,
        definition=definition,
        documentation=documentation,
        accepts=_TOKEN_ACCEPTS,
        path=ValuePath(path, kind),
    )


def _reference(
    name: str, path: str, targets: tuple[str, ...], documentation: str, only: str | None = None
) -> SearchParameter:
    return SearchParameter(
        name=name,
        type=ParamType.REFERENCE,
        definition=f"{_SP}Encounter-{name}",
        documentation=documentation,
        accepts=_REFERENCE_ACCEPTS.format(only or targets[0]),
        path=ValuePath(path, ValueKind.REFERENCE),
        targets=targets,
        only=only,
    )


_SUBJECT_PATH = ValuePath("subject", ValueKind.REFERENCE, literal=False)  # subject-index serves it
_DATE_ACCEPTS = (
    "`[prefix]value`: prefixes `eq` (default) `ne` `gt` `lt` `ge` `le` `sa` `eb` `ap`; "
    "values `2021`, `2021-06`, `2021-06-15`, `2021-06-15T10:30`, `2021-06-15T10:30:00`, "
    "`…:00.123`; a time may carry `Z` or `±hh:mm` "
    "(none = UTC; a `+` sent unencoded is understood)"
)

_ALL: dict[str, SearchParameter] = {
    p.name: p
    for p in (
        SearchParameter(
            name="_id",
            type=ParamType.TOKEN,
            definition=f"{_SP}Resource-id",
            documentation="Logical id of the Encounter",
            accepts="`abc`, `abc,def`",
            path=None,
            parse=_parse_id,
            match=_is_one_of,
            index=keys.TABLE,
        ),
        SearchParameter(
            name="_lastUpdated",
            type=ParamType.DATE,
            definition=f"{_SP}Resource-lastUpdated",
            documentation="When the Encounter was last stored (meta.lastUpdated; all R4 prefixes)",
            accepts="as `date`",
            path=ValuePath("meta.lastUpdated", ValueKind.INSTANT),
        ),
        _reference("account", "account", ("Account",), "An account of the Encounter (Encounter.account)"),
        SearchParameter(
            name="appointment",
            type=ParamType.REFERENCE,
            definition=f"{_SP}Encounter-appointment",
            documentation="The appointment that scheduled this encounter (any of Encounter.appointment)",
            accepts="`9`, `Appointment/9`, an absolute URL (below); `:identifier`, `:missing`",
            path=ValuePath("appointment", ValueKind.REFERENCE, literal=False),
            targets=("Appointment",),
            parse=_reference_parser("appointment", ("Appointment",)),
            field=APPOINTMENTS,
            match=_shares_any,
            index=keys.APPOINTMENT_INDEX,
            partitions=_same,
        ),
        _reference(
            "based-on",
            "basedOn",
            ("ServiceRequest",),
            "The request this encounter fulfils (Encounter.basedOn)",
        ),
        _token(
            "class",
            "class",
            ValueKind.CODING,
            f"{_SP}Encounter-class",
            "Encounter.class (v3-ActCode: AMB, IMP, EMER, …)",
        ),
        SearchParameter(
            name="date",
            type=ParamType.DATE,
            definition=f"{_SP}clinical-date",
            documentation="A date within the period the Encounter lasted (all R4 prefixes)",
            accepts=_DATE_ACCEPTS,
            path=ValuePath("period", ValueKind.PERIOD),
            parse=_date_parser("date"),
            field=PERIOD,
            match=_date_matches_any,
            period_bounds=date_period_bounds,
        ),
        _reference(
            "diagnosis",
            "diagnosis.condition",
            ("Condition", "Procedure"),
            "A diagnosis of the Encounter (Encounter.diagnosis.condition)",
        ),
        _token(
            "discharge-disposition",
            "hospitalization.dischargeDisposition",
            ValueKind.CONCEPT,
            f"{_US_CORE}us-core-encounter-discharge-disposition",
            "Encounter.hospitalization.dischargeDisposition (US Core)",
        ),
        _reference(
            "episode-of-care",
            "episodeOfCare",
            ("EpisodeOfCare",),
            "An episode of care the Encounter belongs to (Encounter.episodeOfCare)",
        ),
        _token(
            "identifier",
            "identifier",
            ValueKind.IDENTIFIER,
            f"{_SP}clinical-identifier",
            "An identifier of the Encounter (its system and value)",
        ),
        SearchParameter(
            name="length",
            type=ParamType.QUANTITY,
            definition=f"{_SP}Encounter-length",
            documentation="Encounter.length, a Duration (UCUM s, min, h, d, wk compared after conversion)",
            accepts="`[prefix]number`, `[prefix]number\\|system\\|code`, `[prefix]number\\|\\|code`",
            path=ValuePath("length", ValueKind.QUANTITY),
        ),
        _reference(
            "location",
            "location.location",
            ("Location",),
            "A location the patient was at during the Encounter (Encounter.location.location)",
        ),
        SearchParameter(
            name="location-period",
            type=ParamType.DATE,
            definition=f"{_SP}Encounter-location-period",
            documentation="A date within a period the patient was at a location (Encounter.location.period)",
            accepts="as `date`",
            path=ValuePath("location.period", ValueKind.PERIOD),
        ),
        _reference(
            "part-of", "partOf", ("Encounter",), "The Encounter this one is part of (Encounter.partOf)"
        ),
        _reference(
            "participant",
            "participant.individual",
            ("Practitioner", "PractitionerRole", "RelatedPerson"),
            "A person involved in the Encounter other than the patient (Encounter.participant.individual)",
        ),
        _token(
            "participant-type",
            "participant.type",
            ValueKind.CONCEPT,
            f"{_SP}Encounter-participant-type",
            "The role of a participant (Encounter.participant.type, v3-ParticipationType)",
        ),
        SearchParameter(
            name="patient",
            type=ParamType.REFERENCE,
            definition=f"{_SP}clinical-patient",
            documentation="The Patient present at the encounter (a subject that is a Patient)",
            accepts="`123`, `Patient/123`, an absolute URL (below); `:identifier`, `:missing`",
            path=_SUBJECT_PATH,
            targets=("Patient",),
            only="Patient",
            parse=_reference_parser("patient", ("Patient",)),
            field=SUBJECT,
            match=_in_any,
            index=keys.SUBJECT_INDEX,
            partitions=_same,
        ),
        _reference(
            "practitioner",
            "participant.individual",
            ("Practitioner",),
            "A Practitioner involved in the Encounter (Encounter.participant.individual)",
            only="Practitioner",
        ),
        _token(
            "reason-code",
            "reasonCode",
            ValueKind.CONCEPT,
            f"{_SP}Encounter-reason-code",
            "A coded reason for the Encounter (Encounter.reasonCode)",
        ),
        _reference(
            "reason-reference",
            "reasonReference",
            ("Condition", "ImmunizationRecommendation", "Observation", "Procedure"),
            "A reason for the Encounter (Encounter.reasonReference)",
        ),
        _reference(
            "service-provider",
            "serviceProvider",
            ("Organization",),
            "The organization responsible for the Encounter (Encounter.serviceProvider)",
        ),
        _token(
            "special-arrangement",
            "hospitalization.specialArrangement",
            ValueKind.CONCEPT,
            f"{_SP}Encounter-special-arrangement",
            "A special arrangement of the hospitalization (wheelchair, interpreter, …)",
        ),
        SearchParameter(
            name="status",
            type=ParamType.TOKEN,
            definition=f"{_SP}Encounter-status",
            documentation="Encounter.status (planned, arrived, triaged, in-progress, onleave, finished, …)",
            accepts=(
                f"`finished`, `planned,in-progress`, `{ENCOUNTER_STATUS_SYSTEM}\\|finished`; "
                "`:not`, `:missing`"
            ),
            path=ValuePath("status", ValueKind.CODE, system=ENCOUNTER_STATUS_SYSTEM),
            parse=_parse_status,
            field=STATUS,
            match=_status_matches,
        ),
        SearchParameter(
            name="subject",
            type=ParamType.REFERENCE,
            definition=f"{_SP}Encounter-subject",
            documentation="The patient or group present at the encounter",
            accepts=(
                "`Patient/123`, `Group/7`, an absolute URL (below), or a bare `123` (any subject type); "
                "`:identifier`, `:Patient`, `:Group`, `:missing`"
            ),
            path=_SUBJECT_PATH,
            targets=SUBJECT_TYPES,
            parse=_reference_parser("subject", SUBJECT_TYPES),
            field=SUBJECT,
            match=_in_any,
            index=keys.SUBJECT_INDEX,
            partitions=_same,
        ),
        _token(
            "type",
            "type",
            ValueKind.CONCEPT,
            f"{_SP}clinical-type",
            "The specific type of the Encounter (Encounter.type, e.g. SNOMED CT)",
        ),
    )
}

# The six keyed parameters first, in the order links have always carried them; then by name.
_KEYED_ORDER = ("_id", "patient", "subject", "appointment", "date", "status")
SEARCH_PARAMETERS: dict[str, SearchParameter] = {
    name: _ALL[name] for name in (*_KEYED_ORDER, *sorted(set(_ALL) - set(_KEYED_ORDER)))
}


def value_paths() -> tuple[ValuePath, ...]:
    """The paths the writer links (each once, in registry order): what EncounterWriter is given."""
    found: dict[str, ValuePath] = {}
    for parameter in SEARCH_PARAMETERS.values():
        path = parameter.path
        if path is not None and path.linked and found.setdefault(path.name, path) != path:
            raise ValueError(f"two parameters read {path.name} differently")
    return tuple(found.values())


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
            "_sort",
            ParamType.STRING,
            "The order: date (period.start) or _lastUpdated (meta.lastUpdated), '-' for descending, "
            "comma-separated keys in turn, then the id ascending; a missing value sorts lowest "
            "(default: date)",
            "`date`, `_lastUpdated`, each may be preceded by `-`, one or both in either order "
            "(`-date,_lastUpdated`)",
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
