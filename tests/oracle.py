r"""A brute-force FHIR R4 (4.0.1) search over Encounters: the oracle that tests hold the API to.

It reads each Encounter's JSON directly, with the parameters' FHIRPath expressions from R4's
SearchParameter definitions (US Core's for ``discharge-disposition``), and imports nothing from
``fhir_encounter``: it is an independent check, written from https://hl7.org/fhir/R4/search.html.

    matches(encounter, [("date", "ge2023-01"), ("status", "finished,arrived")], base_url=...)
    search(encounters, params, base_url=..., now=...)   # the matches, in result order
    elements(encounter, "status,subject")                # _elements
    summary(encounter, "true")                           # _summary

``params`` are decoded (name[:modifier], value) pairs as a query string gives them: a repeated name is
AND, a comma in a value is OR, and ``\,`` ``\|`` ``\$`` ``\\`` escape. Input that R4 calls an error, or that
this oracle does not implement, raises ``UnsupportedQueryError`` (a ValueError), so that a test can
expect a 400.

Where R4 leaves room, the oracle chooses:

- Parameters. An unknown parameter name raises (the oracle is strict; a server may ignore it, and a
  test decides which it expects). ``_count``, ``_total``, ``_elements``, ``_summary``, ``_format``,
  ``_pretty`` and ``_sort`` do not filter; ``search`` reads ``_sort``.
- Values. A resource matches a criterion when any one of its values (the items its expression yields)
  matches any one of the comma's alternatives; ``:not`` is the exception below.
- ``:missing=true`` matches when the expression yields nothing, ``false`` when it yields something:
  a CodeableConcept with text only, or a Reference with only a display, is a value. A Period counts
  only with a start or an end.
- token. Codes, systems and identifier values are compared exactly (case-sensitive). ``status`` has the
  implicit system http://hl7.org/fhir/encounter-status, so ``status=|finished`` matches nothing;
  ``_id`` has no system, so ``_id=|x`` matches x and ``_id=s|x`` nothing. ``system|`` matches any
  code in that system (a Coding with a system and no code too). ``:not`` matches an Encounter none of
  whose values matches any alternative: ``status:not=a,b`` is "neither a nor b", and an Encounter with
  no value at all matches. ``:text``, ``:above``, ``:below``, ``:in``, ``:not-in`` and ``:of-type``
  are R4 modifiers the oracle does not implement: they raise.
- reference. ``id`` (any target type), ``Type/id``, and an absolute URL under ``base_url`` (the same
  as ``Type/id``) match local references, whether stored relative or absolute under ``base_url``;
  any other absolute URL matches only the same stored URL. ``/_history/..`` is ignored on both
  sides. A type outside the parameter's targets in a value matches nothing; as a ``:[type]``
  modifier it raises. Only ``patient`` and ``practitioner`` filter by type (their expressions have
  ``where(resolve() is ..)``): the type is read from the reference, from an absolute URL's last two
  segments, or from ``Reference.type``; a reference of unknown type is not theirs. A logical
  reference (identifier only), a conditional one (``Type?...``) and a contained one (``#id``) match
  no value: ``:identifier`` and ``:missing`` find them. ``:above``/``:below`` raise.
- date. A value without a zone is UTC, a date-only value is its whole UTC day, and a time to the
  minute is accepted. Ranges are half-open, [low, high) in microseconds: a value spans its
  precision; a Period spans [start's low, end's high) with a missing start -inf and a missing end
  +inf. Prefixes follow R4's table (target range vs search range). ``ap`` widens the search range on
  both sides by 10% of |now - the search value's low bound|. With several values
  (``location-period``) each is tested alone, so ``ne`` matches when any one is not inside.
- quantity (``length``). ``number`` alone ignores units; ``number||code`` matches Encounter.length's
  code or unit; ``number|system|code`` matches system and code. When the value is UCUM (or ``||``)
  with s, min, h, d or wk, and the stored Duration is UCUM in one of those, both are compared in
  seconds. ``eq`` and ``ne`` use the range of the value's significant figures (100 is [99.5, 100.5),
  1e2 is [50, 150)); ``gt``, ``lt``, ``ge``, ``le`` compare exactly; ``sa`` and ``eb`` are ``gt`` and
  ``lt`` (a stored Duration is a point); ``ap`` is within 10% of the value, inclusive.
- Order. Without ``_sort``, by period.start ascending, then id. ``_sort`` takes ``date``,
  ``_lastUpdated`` and ``_id``, each with an optional ``-``; ``date`` sorts on period.start (the low
  bound of its precision) in both directions, ``_lastUpdated`` on meta.lastUpdated. A missing sort
  value sorts lowest: first ascending, last descending, so that ``_sort=date`` is the default order.
  Equal keys (``2023-01-01`` and ``2023-01-01T00:00:00Z`` are equal) fall back to id ascending.
- ``_summary``. ``true`` keeps the elements R4's Encounter marks isSummary (and, inside participant
  and diagnosis, their summary elements); ``text`` keeps text, id, meta and the mandatory status and
  class; ``data`` drops text; ``false`` is the resource. ``true``, ``text`` and ``data`` add the
  SUBSETTED tag. ``_elements`` keeps the named top-level elements plus id, meta, status and class,
  with the tag; a name that is not an Encounter element raises.
"""

from __future__ import annotations

import calendar
import copy
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

Resource = dict[str, Any]
Params = Sequence[tuple[str, str]]
Predicate = Callable[[Resource], bool]

ENCOUNTER_STATUS = "http://hl7.org/fhir/encounter-status"
UCUM = "http://unitsofmeasure.org"
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}


class UnsupportedQueryError(ValueError):
    """A query that R4 calls an error, or that the oracle does not implement: the API's 400."""


# ---- the parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One search parameter: its type, its FHIRPath expression, what that yields, and its targets."""

    type: str  # token | reference | date | quantity
    expression: str  # as R4's SearchParameter writes it, for Encounter
    element: str  # the FHIR type of the items: code, id, Coding, CodeableConcept, Identifier, ...
    targets: tuple[str, ...] = ()  # reference parameters: the resource types they may point to
    system: str | None = None  # a code's implicit system

    @functools.cached_property
    def path(self) -> tuple[str, ...]:
        return tuple(_expression(self.expression)[0].split("."))

    @functools.cached_property
    def only(self) -> str | None:
        """The resource type that ``where(resolve() is ..)`` keeps, if the expression has one."""
        return _expression(self.expression)[1]


def _expression(expression: str) -> tuple[str, str | None]:
    match = re.fullmatch(r"(?:Encounter|Resource)\.([\w.]+?)(?:\.where\(resolve\(\) is (\w+)\))?", expression)
    if match is None:
        raise ValueError(f"not an expression this oracle reads: {expression}")
    return match[1], match[2]


PARAMETERS: dict[str, Parameter] = {
    "_id": Parameter("token", "Resource.id", "id"),
    "_lastUpdated": Parameter("date", "Resource.meta.lastUpdated", "instant"),
    "account": Parameter("reference", "Encounter.account", "Reference", ("Account",)),
    "appointment": Parameter("reference", "Encounter.appointment", "Reference", ("Appointment",)),
    "based-on": Parameter("reference", "Encounter.basedOn", "Reference", ("ServiceRequest",)),
    "class": Parameter("token", "Encounter.class", "Coding"),
    "date": Parameter("date", "Encounter.period", "Period"),
    "diagnosis": Parameter(
        "reference", "Encounter.diagnosis.condition", "Reference", ("Condition", "Procedure")
    ),
    "discharge-disposition": Parameter(
        "token", "Encounter.hospitalization.dischargeDisposition", "CodeableConcept"
    ),
    "episode-of-care": Parameter("reference", "Encounter.episodeOfCare", "Reference", ("EpisodeOfCare",)),
    "identifier": Parameter("token", "Encounter.identifier", "Identifier"),
    "length": Parameter("quantity", "Encounter.length", "Duration"),
    "location": Parameter("reference", "Encounter.location.location", "Reference", ("Location",)),
    "location-period": Parameter("date", "Encounter.location.period", "Period"),
    "part-of": Parameter("reference", "Encounter.partOf", "Reference", ("Encounter",)),
    "participant": Parameter(
        "reference",
        "Encounter.participant.individual",
        "Reference",
        ("Practitioner", "PractitionerRole", "RelatedPerson"),
    ),
    "participant-type": Parameter("token", "Encounter.participant.type", "CodeableConcept"),
    "patient": Parameter(
        "reference", "Encounter.subject.where(resolve() is Patient)", "Reference", ("Patient",)
    ),
    "practitioner": Parameter(
        "reference",
        "Encounter.participant.individual.where(resolve() is Practitioner)",
        "Reference",
        ("Practitioner",),
    ),
    "reason-code": Parameter("token", "Encounter.reasonCode", "CodeableConcept"),
    "reason-reference": Parameter(
        "reference",
        "Encounter.reasonReference",
        "Reference",
        ("Condition", "ImmunizationRecommendation", "Observation", "Procedure"),
    ),
    "service-provider": Parameter("reference", "Encounter.serviceProvider", "Reference", ("Organization",)),
    "special-arrangement": Parameter(
        "token", "Encounter.hospitalization.specialArrangement", "CodeableConcept"
    ),
    "status": Parameter("token", "Encounter.status", "code", system=ENCOUNTER_STATUS),
    "subject": Parameter("reference", "Encounter.subject", "Reference", ("Group", "Patient")),
    "type": Parameter("token", "Encounter.type", "CodeableConcept"),
}

# Parameters that shape the result rather than select: matches() passes over them.
RESULT_PARAMETERS = frozenset({"_sort", "_count", "_total", "_elements", "_summary", "_format", "_pretty"})

# R4 modifiers per type that the oracle does not implement (a clearer message than "unknown").
UNIMPLEMENTED_MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"text", "above", "below", "in", "not-in", "of-type"}),
    "reference": frozenset({"above", "below"}),
    "date": frozenset(),
    "quantity": frozenset(),
}

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


# ---- the public functions -------------------------------------------------------------------


def matches(encounter: Resource, params: Params, *, base_url: str, now: datetime | None = None) -> bool:
    """Whether ``encounter`` meets every criterion of ``params``."""
    return criteria(params, base_url=base_url, now=now)(encounter)


def search(
    encounters: Iterable[Resource], params: Params, *, base_url: str, now: datetime | None = None
) -> list[Resource]:
    """The Encounters that match ``params``, in result order (``_sort``, or the default order)."""
    keep = criteria(params, base_url=base_url, now=now)
    return ordered([e for e in encounters if keep(e)], sort_order(params))


def criteria(params: Params, *, base_url: str, now: datetime | None = None) -> Predicate:
    """``params`` parsed once into one predicate (raises for a bad query even with no Encounters).

    ``now`` is the instant ``ap`` on dates measures from (the current time when not given)."""
    base = base_url.rstrip("/")
    now_us = micros(now if now is not None else datetime.now(UTC))
    tests = [
        criterion(name, value, base, now_us)
        for name, value in params
        if name.partition(":")[0] not in RESULT_PARAMETERS
    ]
    return lambda resource: all(test(resource) for test in tests)


def criterion(name: str, value: str, base_url: str, now_us: int) -> Predicate:
    """One ``name[:modifier]=value`` pair as a predicate."""
    code, colon, modifier = name.partition(":")
    param = PARAMETERS.get(code)
    if param is None:
        raise UnsupportedQueryError(f"unknown search parameter: {code}")
    if colon and not modifier:
        raise UnsupportedQueryError(f"empty modifier on {code}")
    alternatives = split_escaped(value, ",")
    if any(not alternative for alternative in alternatives):
        raise UnsupportedQueryError(f"empty value for {name}")
    if modifier == "missing":
        return missing_criterion(param, alternatives, base_url)
    if modifier in UNIMPLEMENTED_MODIFIERS[param.type]:
        raise UnsupportedQueryError(f":{modifier} on {code} is not implemented by the oracle")
    if param.type == "token":
        return token_criterion(param, modifier, alternatives)
    if param.type == "reference":
        return reference_criterion(param, modifier, alternatives, base_url)
    if modifier:
        raise UnsupportedQueryError(f"unknown modifier :{modifier} for the {param.type} parameter {code}")
    if param.type == "date":
        return date_criterion(param, alternatives, now_us)
    return quantity_criterion(param, alternatives)


# ---- values ---------------------------------------------------------------------------------


def walk(resource: Resource, path: Sequence[str]) -> list[Any]:
    """The items at ``path``, with arrays flattened at every step (FHIRPath's navigation)."""
    found: list[Any] = [resource]
    for step in path:
        following: list[Any] = []
        for item in found:
            if not isinstance(item, dict):
                continue
            child = item.get(step)
            following.extend(child if isinstance(child, list) else [child])
        found = [item for item in following if item is not None and item != {} and item != ""]
    return found


def items(resource: Resource, param: Parameter, base_url: str = "") -> list[Any]:
    """What ``param``'s expression yields for ``resource``."""
    found = walk(resource, param.path)
    if param.element == "Period":
        found = [p for p in found if isinstance(p, dict) and (p.get("start") or p.get("end"))]
    if param.only is not None:
        found = [ref for ref in found if stored_reference(ref, base_url).type == param.only]
    return found


def missing_criterion(param: Parameter, alternatives: list[str], base_url: str) -> Predicate:
    wanted = set()
    for alternative in alternatives:
        if alternative not in ("true", "false"):
            raise UnsupportedQueryError(f":missing takes true or false, not {alternative!r}")
        wanted.add(alternative == "true")
    return lambda resource: (not items(resource, param, base_url)) in wanted


# ---- escapes ----------------------------------------------------------------------------------


def split_escaped(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` that no backslash escapes (escapes are kept)."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise UnsupportedQueryError("a value ends with a lone backslash")
            current += (char, escaped)
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,$|])", r"\1", text)


# ---- token ------------------------------------------------------------------------------------

Token = tuple[str | None, str | None]  # (system: None = any, "" = none; code: None = any)


def parse_token(text: str) -> Token:
    """``code``, ``system|code``, ``|code`` or ``system|``."""
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        return None, unescape(parts[0])
    if len(parts) > 2 or parts == ["", ""]:
        raise UnsupportedQueryError(f"not a token: {text!r}")
    return unescape(parts[0]), unescape(parts[1]) or None


def pair_matches(system: Any, code: Any, token: Token) -> bool:
    """A stored (system, code), or (system, value) for an Identifier, against a searched token."""
    wanted_system, wanted_code = token
    if wanted_system == "" and system:
        return False
    if wanted_system and system != wanted_system:
        return False
    return wanted_code is None or code == wanted_code


def token_matches(param: Parameter, item: Any, token: Token) -> bool:
    """One item of a token parameter (by its element type) against one token."""
    if param.element in ("code", "id"):
        return isinstance(item, str) and pair_matches(param.system, item, token)
    if not isinstance(item, dict):
        return False
    if param.element == "Identifier":
        return pair_matches(item.get("system"), item.get("value"), token)
    codings = (item.get("coding") or []) if param.element == "CodeableConcept" else [item]
    return any(isinstance(c, dict) and pair_matches(c.get("system"), c.get("code"), token) for c in codings)


def token_criterion(param: Parameter, modifier: str, alternatives: list[str]) -> Predicate:
    if modifier not in ("", "not"):
        raise UnsupportedQueryError(f"unknown modifier :{modifier} for a token parameter")
    tokens = [parse_token(alternative) for alternative in alternatives]

    def hit(resource: Resource) -> bool:
        return any(token_matches(param, item, t) for item in items(resource, param) for t in tokens)

    if modifier == "not":
        return lambda resource: not hit(resource)
    return hit


# ---- reference --------------------------------------------------------------------------------

RESOURCE_TYPE = r"[A-Z][A-Za-z]+"
ID = r"[A-Za-z0-9\-.]{1,64}"
HISTORY = re.compile(r"/_history/[^/]*$")
ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
URL_TAIL = re.compile(rf"/({RESOURCE_TYPE})/{ID}$")


@dataclass(frozen=True)
class Target:
    """Where a reference points: a resource here (type, id), elsewhere (url), or it cannot be told."""

    type: str | None
    id: str | None = None
    url: str | None = None

    def found_by(self, wanted: Target) -> bool:
        if wanted.url is not None:
            return self.url == wanted.url
        return self.id == wanted.id and (wanted.type is None or self.type == wanted.type)


def local_part(text: str, base_url: str) -> str | None:
    """``Type/id`` for a reference on this server (relative, or absolute under ``base_url``); else None."""
    if not ABSOLUTE.match(text):
        return text
    if text.startswith(base_url + "/"):
        return text[len(base_url) + 1 :]
    return None


def stored_reference(ref: Any, base_url: str) -> Target:
    """A stored Reference as a Target (``reference`` first, ``Reference.type`` for a type it lacks)."""
    if not isinstance(ref, dict):
        return Target(None)
    declared = ref.get("type") if isinstance(ref.get("type"), str) else None
    literal = ref.get("reference")
    if not isinstance(literal, str):
        return Target(declared)
    literal = HISTORY.sub("", literal)
    if "?" in literal:  # conditional: Type?identifier=..
        kind = literal.split("?", 1)[0]
        return Target(kind if re.fullmatch(RESOURCE_TYPE, kind) else declared)
    local = local_part(literal, base_url)
    if local is None:
        tail = URL_TAIL.search(literal)
        return Target(tail[1] if tail else declared, url=literal)
    match = re.fullmatch(rf"({RESOURCE_TYPE})/({ID})", local)
    if match is None:  # contained (#id) or not a reference at all
        return Target(declared)
    return Target(match[1], id=match[2])


def search_reference(text: str, type_modifier: str | None, base_url: str) -> Target:
    """A searched reference: ``id``, ``Type/id`` or an absolute URL (``:[type]`` gives a bare id its type)."""
    value = HISTORY.sub("", unescape(text))
    local = local_part(value, base_url)
    if local is None:
        if type_modifier:
            raise UnsupportedQueryError(f":{type_modifier} takes an id, not the URL {value!r}")
        return Target(None, url=value)
    if re.fullmatch(ID, local):
        return Target(type_modifier, id=local)
    match = re.fullmatch(rf"({RESOURCE_TYPE})/({ID})", local)
    if match is None:
        raise UnsupportedQueryError(f"not a reference: {text!r}")
    if type_modifier and match[1] != type_modifier:
        raise UnsupportedQueryError(f":{type_modifier} with a reference to a {match[1]}")
    return Target(match[1], id=match[2])


def reference_criterion(param: Parameter, modifier: str, alternatives: list[str], base_url: str) -> Predicate:
    if modifier == "identifier":
        tokens = [parse_token(alternative) for alternative in alternatives]

        def by_identifier(resource: Resource) -> bool:
            refs = items(resource, param, base_url)
            identifiers = [ref.get("identifier") for ref in refs if isinstance(ref, dict)]
            return any(
                isinstance(i, dict) and pair_matches(i.get("system"), i.get("value"), t)
                for i in identifiers
                for t in tokens
            )

        return by_identifier
    if modifier and modifier not in param.targets:
        kind = "a type this parameter cannot point to" if re.fullmatch(RESOURCE_TYPE, modifier) else "unknown"
        raise UnsupportedQueryError(f"modifier :{modifier} on a reference parameter: {kind}")
    wanted = [search_reference(alternative, modifier or None, base_url) for alternative in alternatives]
    in_targets = [w for w in wanted if w.type is None or w.type in param.targets]

    def by_reference(resource: Resource) -> bool:
        stored = [stored_reference(ref, base_url) for ref in items(resource, param, base_url)]
        return any(s.found_by(w) for s in stored for w in in_targets)

    return by_reference


# ---- date -------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUS_INFINITY = -(10**30)
PLUS_INFINITY = 10**30
DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (a naive datetime is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def date_range(text: str) -> tuple[int, int]:
    """A FHIR date, dateTime or instant as [low, high) microseconds: the span of its precision."""
    match = DATE.fullmatch(text)
    if match is None:
        raise UnsupportedQueryError(f"not a date: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    zone_info = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        zone_info = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        start = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=zone_info,
        )
    except ValueError as error:
        raise UnsupportedQueryError(f"not a date: {text!r}") from error
    day_us = 86_400_000_000
    if month is None:
        width = (366 if calendar.isleap(start.year) else 365) * day_us
    elif day is None:
        width = calendar.monthrange(start.year, start.month)[1] * day_us
    elif hour is None:
        width = day_us
    elif second is None:
        width = 60_000_000
    elif fraction is None:
        width = 1_000_000
    else:
        width = 10 ** max(6 - len(fraction), 0)
    low = micros(start)
    return low, low + width


def split_prefix(text: str) -> tuple[str, str]:
    """(prefix, rest): ``eq`` when the value starts with no letters."""
    if text[:2].isalpha():
        if text[:2] not in PREFIXES:
            raise UnsupportedQueryError(f"unknown prefix: {text[:2]!r}")
        return text[:2], text[2:]
    return "eq", text


def date_targets(item: Any, element: str) -> tuple[int, int]:
    if element == "Period":
        start, end = item.get("start"), item.get("end")
        return (
            date_range(start)[0] if start else MINUS_INFINITY,
            date_range(end)[1] if end else PLUS_INFINITY,
        )
    return date_range(item)


def date_matches(prefix: str, search: tuple[int, int], target: tuple[int, int], now_us: int) -> bool:
    """R4's prefix table: the target's range against the search value's range."""
    low, high = search
    target_low, target_high = target
    contained = low <= target_low and target_high <= high
    if prefix == "eq":
        return contained
    if prefix == "ne":
        return not contained
    if prefix == "gt":
        return target_high > high
    if prefix == "lt":
        return target_low < low
    if prefix == "ge":
        return target_high > high or contained
    if prefix == "le":
        return target_low < low or contained
    if prefix == "sa":
        return target_low >= high
    if prefix == "eb":
        return target_high <= low
    margin = abs(now_us - low) // 10  # ap
    return target_low < high + margin and target_high > low - margin


def date_criterion(param: Parameter, alternatives: list[str], now_us: int) -> Predicate:
    wanted = []
    for alternative in alternatives:
        prefix, text = split_prefix(unescape(alternative))
        wanted.append((prefix, date_range(text)))

    def hit(resource: Resource) -> bool:
        targets = [date_targets(item, param.element) for item in items(resource, param)]
        return any(
            date_matches(prefix, span, target, now_us) for target in targets for prefix, span in wanted
        )

    return hit


# ---- quantity ---------------------------------------------------------------------------------

SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86_400, "wk": 604_800}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class QuantitySearch:
    prefix: str
    number: Decimal
    system: str | None  # None: a bare number; "": the ``number||code`` form
    code: str | None

    @property
    def half(self) -> Decimal:
        """Half the last significant digit's unit: 100 -> 0.5, 1.50 -> 0.005, 1e2 -> 50."""
        exponent = self.number.as_tuple().exponent
        assert isinstance(exponent, int)
        return Decimal(5) * Decimal(10) ** (exponent - 1)


def parse_quantity(text: str) -> QuantitySearch:
    """``[prefix]number``, ``[prefix]number|system|code`` or ``[prefix]number||code``."""
    prefix, rest = split_prefix(text)
    parts = [unescape(part) for part in split_escaped(rest, "|")]
    if not NUMBER.fullmatch(parts[0]) or len(parts) not in (1, 3) or (len(parts) == 3 and not parts[2]):
        raise UnsupportedQueryError(f"not a quantity: {text!r}")
    if len(parts) == 1:
        return QuantitySearch(prefix, Decimal(parts[0]), None, None)
    return QuantitySearch(prefix, Decimal(parts[0]), parts[1], parts[2])


def number_matches(prefix: str, number: Decimal, half: Decimal, value: Decimal) -> bool:
    """R4's number prefixes: eq and ne on the precision range, the others on the exact number."""
    if prefix in ("eq", "ne"):
        return (number - half <= value < number + half) == (prefix == "eq")
    if prefix in ("gt", "sa"):
        return value > number
    if prefix in ("lt", "eb"):
        return value < number
    if prefix == "ge":
        return value >= number
    if prefix == "le":
        return value <= number
    return abs(value - number) <= abs(number) / 10  # ap


def quantity_matches(search: QuantitySearch, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    raw = item.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        return False
    value = Decimal(str(raw))
    if search.code is None:
        return number_matches(search.prefix, search.number, search.half, value)
    stored_code = item.get("code")
    if (
        search.code in SECONDS
        and search.system in ("", UCUM)
        and item.get("system") == UCUM
        and stored_code in SECONDS
    ):
        scale = SECONDS[search.code]
        return number_matches(
            search.prefix, search.number * scale, search.half * scale, value * SECONDS[stored_code]
        )
    if search.system == "":
        same_unit = search.code in (stored_code, item.get("unit"))
    else:
        same_unit = item.get("system") == search.system and stored_code == search.code
    return same_unit and number_matches(search.prefix, search.number, search.half, value)


def quantity_criterion(param: Parameter, alternatives: list[str]) -> Predicate:
    wanted = [parse_quantity(alternative) for alternative in alternatives]
    return lambda resource: any(
        quantity_matches(search, item) for item in items(resource, param) for search in wanted
    )


# ---- order ------------------------------------------------------------------------------------

SortKey = tuple[str, bool]  # (name, descending)
SORTABLE = ("date", "_lastUpdated", "_id")


def sort_order(params: Params) -> list[SortKey]:
    """The ``_sort`` keys of ``params``; without ``_sort``, period.start ascending."""
    values = [value for name, value in params if name.partition(":")[0] == "_sort"]
    if any(name.startswith("_sort:") for name, _ in params):
        raise UnsupportedQueryError("_sort takes no modifier")
    if not values:
        return [("date", False)]
    if len(values) > 1:
        raise UnsupportedQueryError("_sort given more than once")
    keys = []
    for item in values[0].split(","):
        name = item.removeprefix("-")
        if name not in SORTABLE:
            raise UnsupportedQueryError(f"cannot sort by {item!r}")
        keys.append((name, item.startswith("-")))
    return keys


def sort_value(resource: Resource, name: str) -> tuple[bool, int | str]:
    """(present, value): a missing value sorts lowest."""
    if name == "_id":
        return True, str(resource.get("id", ""))
    path = ("period", "start") if name == "date" else ("meta", "lastUpdated")
    found = walk(resource, path)
    return (True, date_range(found[0])[0]) if found else (False, 0)


def ordered(resources: list[Resource], keys: Sequence[SortKey]) -> list[Resource]:
    """``resources`` by ``keys``, then id ascending (stable sorts, least significant key first)."""
    result = sorted(resources, key=lambda r: str(r.get("id", "")))
    for name, descending in reversed(keys):
        result.sort(key=functools.partial(sort_value, name=name), reverse=descending)
    return result


# ---- _elements and _summary -------------------------------------------------------------------

ELEMENTS = (
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "identifier",
    "status",
    "statusHistory",
    "class",
    "classHistory",
    "type",
    "serviceType",
    "priority",
    "subject",
    "episodeOfCare",
    "basedOn",
    "participant",
    "appointment",
    "period",
    "length",
    "reasonCode",
    "reasonReference",
    "diagnosis",
    "account",
    "hospitalization",
    "location",
    "serviceProvider",
    "partOf",
)
MANDATORY = ("status", "class")  # Encounter's 1..1 elements
# isSummary in R4's Encounter StructureDefinition; inside a summary backbone element, its summary elements.
SUMMARY = (
    "id",
    "meta",
    "implicitRules",
    "identifier",
    "status",
    "class",
    "type",
    "serviceType",
    "subject",
    "episodeOfCare",
    "participant",
    "appointment",
    "reasonCode",
    "reasonReference",
    "diagnosis",
)
SUMMARY_INSIDE = {
    "participant": ("modifierExtension", "type", "individual"),
    "diagnosis": ("modifierExtension", "condition"),
}


def subsetted(resource: Resource) -> Resource:
    """``resource`` with the SUBSETTED tag in meta.tag (once)."""
    meta = resource.setdefault("meta", {})
    tags = meta.setdefault("tag", [])
    if not any(t.get("system") == SUBSETTED["system"] and t.get("code") == SUBSETTED["code"] for t in tags):
        tags.append(dict(SUBSETTED))
    return resource


def kept(encounter: Resource, names: Iterable[str]) -> Resource:
    wanted = {"resourceType", *names}
    return {key: copy.deepcopy(value) for key, value in encounter.items() if key in wanted}


def elements(encounter: Resource, names: str | Iterable[str]) -> Resource:
    """``_elements``: the named top-level elements, id, meta and the mandatory ones, tagged SUBSETTED."""
    wanted = names.split(",") if isinstance(names, str) else list(names)
    unknown = [name for name in wanted if name not in ELEMENTS]
    if unknown:
        raise UnsupportedQueryError(f"not Encounter elements: {unknown}")
    return subsetted(kept(encounter, ["id", "meta", *MANDATORY, *wanted]))


def summary(encounter: Resource, mode: str) -> Resource:
    """``_summary=true|text|data|false`` applied to one Encounter."""
    if mode == "false":
        return copy.deepcopy(encounter)
    if mode == "data":
        return subsetted(kept(encounter, [name for name in encounter if name != "text"]))
    if mode == "text":
        return subsetted(kept(encounter, ["id", "meta", "text", *MANDATORY]))
    if mode != "true":
        raise UnsupportedQueryError(f"_summary={mode} is not a summary of one resource")
    result = kept(encounter, SUMMARY)
    for name, inside in SUMMARY_INSIDE.items():
        if name in result:
            result[name] = [{k: v for k, v in part.items() if k in inside} for part in result[name]]
    return subsetted(result)
