"""Checks an Encounter before it is loaded: what the table's keys need, and FHIR R4's rules for them.

Only the elements that the store indexes or that R4 makes mandatory are modelled; every other
element is allowed and left untouched (the loader writes the resource as it came, not this model).

Beyond the model, the resource must be one that the store can hold and clients can read: valid
JSON (no NaN or Infinity, no lone surrogates) of at most ``MAX_RESOURCE_BYTES`` as the store writes
it (compact UTF-8), below DynamoDB's 400 KB item limit with room for the key and index attributes.

A failed check gives one line: each wrong element's path and what is wrong with it. Never the
value itself: values can be patient data.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal, get_args

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

from fhir_encounter.dates import DateValueError, parse_range
from fhir_encounter.references import ReferenceValueError, is_fhir_id, stored_reference
from fhir_encounter.search.parameters import SUBJECT_TYPES

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
        if self.start and self.end and parse_range(self.start).low > parse_range(self.end).high:
            raise PydanticCustomError("period_order", "end is before start")
        return self


class Encounter(_Element):
    resource_type: Literal["Encounter"] = Field(alias="resourceType")
    id: str
    status: Status
    class_: Coding = Field(alias="class")
    subject: SubjectReference | None = None
    appointment: list[AppointmentReference] | None = None
    period: Period | None = None

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
    if resource.get("resourceType") != "Encounter":  # then the other elements do not matter
        return (
            "resourceType: must be Encounter" if "resourceType" in resource else "resourceType: is required"
        )
    if problem := _json_problem(resource):
        return problem
    try:
        Encounter.model_validate(resource)
    except ValidationError as error:
        problems = [_describe(detail) for detail in error.errors(include_input=False, include_url=False)]
        more = len(problems) - _MAX_PROBLEMS
        return "; ".join(problems[:_MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
    return None


def _json_problem(resource: dict[str, object]) -> str | None:
    """Why the resource, written as the store writes it, is not valid JSON or does not fit an item."""
    try:
        text = json.dumps(resource, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except UnicodeEncodeError:
        return "invalid JSON: a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"
    except ValueError:  # allow_nan=False: the error text would carry the value
        return "invalid JSON: a number is NaN or Infinity, which JSON does not allow"
    if size > MAX_RESOURCE_BYTES:
        return f"too large: {size} bytes, DynamoDB items hold at most 400 KB"
    return None


def _describe(detail: ErrorDetails) -> str:
    path = _path(detail["loc"])
    if detail["type"] == "literal_error":  # only status can be one: resourceType is checked first
        message = _STATUS_MESSAGE
    else:
        message = _MESSAGES.get(detail["type"], detail["msg"])
    return f"{path}: {message}" if path else message


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
