"""Checks an Encounter before it is loaded: the R4 rules for what the store indexes or R4 makes
mandatory, and that it can be stored and read back equal (JSON without NaN, duplicate keys,
lossy numbers or lone surrogates, within an item's size). A problem names the element's path,
never its value: values can be patient data."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from fhir_encounter.dates import MICROS_PER_SECOND, DateValueError, parse_range
from fhir_encounter.references import ReferenceValueError, is_fhir_id, stored_reference
from fhir_encounter.store.fields import SUBJECT_TYPES

Status = Literal[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
]
STATUSES: tuple[str, ...] = get_args(Status)
MAX_RESOURCE_BYTES = 390_000  # DynamoDB items hold at most 400 KB; the rest is for the other attributes
MAX_DEPTH = 100  # nested arrays and objects, the resource itself included; FHIR resources need far fewer
MAX_INTEGER_DIGITS = 4300  # Python's int <-> str limit: the API (e.g. _pretty) parses what the store holds

# FHIR R4 dateTime (https://hl7.org/fhir/R4/datatypes.html#dateTime): a time needs seconds and a zone.
FHIR_DATE_TIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)

# Messages for pydantic's own error types; a custom error keeps its message. None of them carries
# the input.
_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "list_type": "must be a JSON array",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}
_STATUS_MESSAGE = f"is not an R4 Encounter status ({', '.join(STATUSES)})"
_MAX_PROBLEMS = 3


class _Element(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Coding(_Element):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)


def _typed_reference(value: str, allowed: tuple[str, ...]) -> str:
    try:
        return stored_reference(value, allowed)
    except ReferenceValueError as error:
        if error.resource_type is not None:
            raise PydanticCustomError(
                "reference_type", "must refer to {allowed}", {"allowed": " or ".join(allowed)}
            ) from None
        raise PydanticCustomError(
            "reference", "is not a literal reference (Type/id, or an absolute URL ending in Type/id)"
        ) from None


def _subject(value: str) -> str:
    return _typed_reference(value, SUBJECT_TYPES)


def _appointment(value: str) -> str:
    return _typed_reference(value, ("Appointment",))


class SubjectReference(_Element):
    reference: Annotated[str, AfterValidator(_subject)] | None = None


class AppointmentReference(_Element):
    reference: Annotated[str, AfterValidator(_appointment)] | None = None


def _date_time(value: str) -> str:
    if FHIR_DATE_TIME.fullmatch(value) is None:
        raise PydanticCustomError(
            "date_time",
            "is not a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with Z or +hh:mm)",
        )
    try:
        parse_range(value)
    except DateValueError as error:
        raise PydanticCustomError(
            "date_time", "is not a FHIR dateTime: {reason}", {"reason": str(error)}
        ) from None
    return value


FhirDateTime = Annotated[str, AfterValidator(_date_time)]


class Period(_Element):
    start: FhirDateTime | None = None
    end: FhirDateTime | None = None

    @model_validator(mode="after")
    def _start_not_after_end(self) -> Period:
        if self.start and self.end and _ends_before_start(self.start, self.end):
            raise PydanticCustomError("period_order", "end is before start")
        return self


_EARLIEST_ZONE = 14 * 3600 * MICROS_PER_SECOND  # +14:00: where a local day begins first
_LATEST_ZONE = 12 * 3600 * MICROS_PER_SECOND  # -12:00: where a local day ends last


def _ends_before_start(start: str, end: str) -> bool:
    """Whether the end's range ends before the start's range begins. A value without a time has no
    zone: against one with a zone it spans its day (month, year) in every zone; two values without
    a zone share theirs, whatever it is, and compare as they are."""
    low, high = parse_range(start).low, parse_range(end).high
    start_zoned, end_zoned = "T" in start, "T" in end  # a time needs a zone (FHIR_DATE_TIME)
    if end_zoned and not start_zoned:
        low -= _EARLIEST_ZONE
    if start_zoned and not end_zoned:
        high += _LATEST_ZONE
    return high < low


class Meta(_Element):
    """Resource.meta: an object whose other elements the store keeps as they are."""


class Encounter(_Element):
    resource_type: Literal["Encounter"] = Field(alias="resourceType")
    id: str
    status: Status
    class_: Coding = Field(alias="class")
    subject: SubjectReference | None = None
    appointment: list[AppointmentReference] | None = None
    period: Period | None = None
    meta: Meta = Field(default_factory=lambda: Meta())  # the store sets meta.versionId and lastUpdated

    @field_validator("id")
    @classmethod
    def _fhir_id(cls, value: str) -> str:
        if not is_fhir_id(value):
            raise PydanticCustomError("fhir_id", "is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .)")
        return value


def encounter_problem(resource: object) -> str | None:
    """Why ``resource`` cannot be loaded as an Encounter, in one line; None when it can."""
    if not isinstance(resource, dict):
        return "not a FHIR resource (a JSON object)"
    if problem := json_problem(resource):
        return problem
    if resource.get("resourceType") != "Encounter":  # then the other elements do not matter
        return (
            "resourceType: must be Encounter" if "resourceType" in resource else "resourceType: is required"
        )
    size = len(json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_RESOURCE_BYTES:
        return f"too large: {size} bytes, DynamoDB items hold at most 400 KB"
    try:
        Encounter.model_validate(resource)
    except ValidationError as error:
        problems = [_describe(detail) for detail in error.errors(include_input=False, include_url=False)]
        more = len(problems) - _MAX_PROBLEMS
        return "; ".join(problems[:_MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
    return None


# ---- JSON that the store can hold and read back equal --------------------------------------------

NAN = "a number is NaN or Infinity, which JSON does not allow"
TOO_MANY_DIGITS = f"a number has more than {MAX_INTEGER_DIGITS} digits"
BEYOND_FLOAT = "a number is beyond the range of a 64-bit float, so it cannot be stored"
INEXACT_FLOAT = "a number has more digits than a 64-bit float keeps, so it would not read back equal"
LONE_SURROGATE = "a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"
NESTED_TOO_DEEPLY = f"nested too deeply (more than {MAX_DEPTH} levels)"
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # a key that a reason may name (FHIR's are)
_MAX_PATH = 120
_LARGEST_INTEGER = 10**MAX_INTEGER_DIGITS  # the first with one digit too many
_SAFE_BITS = 14_284  # an integer of at most this many bits has at most MAX_INTEGER_DIGITS digits


class _Unstorable:
    """What ``parse_json`` leaves in place of a value that cannot be stored and read back equal."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _AmbiguousObject(dict[str, Any]):
    """A JSON object in which some key occurs more than once (holding the last value of each)."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]], duplicates: list[str]) -> None:
        super().__init__(pairs)
        self.duplicates = tuple(duplicates)


def parse_json(text: str) -> Any:
    """JSON text as Python values, like ``json.loads``, except that what cannot be stored and read
    back equal (NaN and Infinity, an integer of more than MAX_INTEGER_DIGITS digits, a number a
    64-bit float does not keep exactly, an object with a key twice) is left in place as a marker,
    which ``json_problem`` reports with its place: one bad value spoils the resource that holds it,
    not the whole text. Raises ``json.JSONDecodeError`` for text that is not JSON and
    ``RecursionError`` for nesting deeper than the parser's stack."""
    return _DECODER.decode(text)


def json_problem(value: object) -> str | None:
    """Why ``value`` cannot be stored as JSON and read back equal, with the place of the first
    problem found (``invalid JSON: ... (at period.start)``); None when it can. Never the value."""
    root = [value]
    found = _first_problem(root)
    if found is None:
        return None
    reason, container, key = found
    if reason == NESTED_TOO_DEEPLY:
        return f"invalid JSON: {reason}"
    path = _path_to(root, container)
    return _invalid(reason, (*path, key)[1:] if key is not None else path[1:])


_JSON_TYPES = frozenset({str, int, float, bool, type(None), dict, list})
_BASE_TYPES = (str, bool, int, float, dict, list)  # bool before int: it is one
Problem = tuple[str, object, str | int | None]  # reason, the array or object, the key or index


def _first_problem(root: list[object]) -> Problem | None:
    """The first problem below ``root``: one pass with a stack, no recursion, no path kept (only
    the containers; the path of a problem is found afterwards)."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        container, depth = stack.pop()
        if isinstance(container, dict):
            for key in container:
                if not isinstance(key, str):
                    return "an object key is not a string", container, None
                if not key.isascii() and _has_surrogate(key):
                    return LONE_SURROGATE, container, None
            items: Any = container.items()
        else:
            items = enumerate(container)
        for key, child in items:
            kind: type | None = type(child)
            if kind not in _JSON_TYPES:
                if isinstance(child, _Unstorable):
                    return child.reason, container, key
                if isinstance(child, _AmbiguousObject):
                    return _duplicate_reason(child.duplicates[0]), container, key
                kind = next((base for base in _BASE_TYPES if isinstance(child, base)), None)
                if kind is None:
                    return f"a value is not of a JSON type ({type(child).__name__})", container, key
            if kind is str:
                if not child.isascii() and _has_surrogate(child):
                    return LONE_SURROGATE, container, key
            elif kind is dict or kind is list:
                if depth >= MAX_DEPTH:
                    return NESTED_TOO_DEEPLY, container, key
                stack.append((child, depth + 1))
            elif kind is int:
                if child.bit_length() > _SAFE_BITS and abs(child) >= _LARGEST_INTEGER:
                    return TOO_MANY_DIGITS, container, key
            elif kind is float and not math.isfinite(child):
                return NAN, container, key
    return None


def _path_to(root: list[object], target: object) -> tuple[str | int, ...]:
    """The keys and indexes from ``root`` to the array or object ``target`` (found by identity)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        container, path = stack.pop()
        if container is target:
            return path
        if len(path) <= MAX_DEPTH:  # no deeper than _first_problem went (a Python list may hold itself)
            items = container.items() if isinstance(container, dict) else enumerate(container)
            stack.extend((child, (*path, key)) for key, child in items if isinstance(child, dict | list))
    return ()


def ambiguity(value: object, keys: tuple[str, ...]) -> str | None:
    """The problem of a JSON object in which one of ``keys`` itself occurs twice (not counting the
    objects inside it); None when none does. For what the loader reads before validation: a
    Bundle's entries, an entry's resource, a resource's type."""
    duplicates = value.duplicates if isinstance(value, _AmbiguousObject) else ()
    repeated = next((key for key in duplicates if key in keys), None)
    return None if repeated is None else f"invalid JSON: {_duplicate_reason(repeated)}"


def element_path(parts: tuple[str | int, ...]) -> str:
    """``a.b[2].c`` for a place in a resource; a key that is not a plain name shows as ``(key)``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _SAFE_KEY.fullmatch(part) else "(key)"
            text += f".{name}" if text else name
    return text if len(text) <= _MAX_PATH else text[: _MAX_PATH - 3] + "..."


def _invalid(reason: str, path: tuple[str | int, ...]) -> str:
    return f"invalid JSON: {reason} (at {element_path(path)})" if path else f"invalid JSON: {reason}"


def _duplicate_reason(key: str) -> str:
    name = f'"{key}"' if _SAFE_KEY.fullmatch(key) else "a key"
    return f"{name} occurs twice in one object, so its value is ambiguous"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    duplicates: list[str] = []
    for key, _ in pairs:
        if key in seen and key not in duplicates:
            duplicates.append(key)
        seen.add(key)
    return _AmbiguousObject(pairs, duplicates)


def _integer(text: str) -> int | _Unstorable:
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        return _Unstorable(TOO_MANY_DIGITS)
    try:
        return int(text)
    except ValueError:  # this process has a lower limit (PYTHONINTMAXSTRDIGITS)
        return _Unstorable(TOO_MANY_DIGITS)


def _float(text: str) -> float | _Unstorable:
    value = float(text)
    if not math.isfinite(value):
        return _Unstorable(BEYOND_FLOAT)
    try:
        exact = Decimal(text) == Decimal(repr(value))
    except ArithmeticError:  # an exponent beyond what Decimal takes
        exact = False
    return value if exact else _Unstorable(INEXACT_FLOAT)


def _constant(text: str) -> _Unstorable:
    return _Unstorable(NAN)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_integer, parse_float=_float, parse_constant=_constant
)


def _describe(detail: ErrorDetails) -> str:
    path = element_path(detail["loc"])
    if detail["type"] == "literal_error":  # only status can be one: resourceType is checked first
        message = _STATUS_MESSAGE
    else:
        message = _MESSAGES.get(detail["type"], detail["msg"])
    return f"{path}: {message}" if path else message
