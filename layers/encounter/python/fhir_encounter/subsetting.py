"""``_summary`` and ``_elements``: which elements of an Encounter an answer carries (FHIR R4
search.html#summary and #elements), on a search and on a read.

Pure, and it imports neither search/ nor pydantic: the read function uses it, and loads neither.
The element lists are R4 (4.0.1)'s Encounter: its elements, its two mandatory ones (``status`` and
``class``, 1..1) and those its StructureDefinition marks ``isSummary``. A subsetted Encounter carries
the SUBSETTED tag in ``meta.tag`` (after the tags it had), so that no client stores it as the whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_encounter.errors import MAX_NAMED, InvalidRequestError, cut_name, is_text

SUMMARY_MODES = ("true", "text", "data", "count", "false")
SUBSETTED_TAG = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
# R4 Encounter's top-level elements (Resource's, DomainResource's, its own), in its order.
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
ALWAYS = ("resourceType", "id", "meta")  # in every subset (R4: id and meta with text, and _elements)
MANDATORY = ("status", "class")  # Encounter's 1..1 elements, which every subset keeps
# isSummary in R4's Encounter (priority, period, length, basedOn, account, hospitalization are not).
SUMMARY_ELEMENTS = (
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
# Inside a summary backbone element, its summary elements (BackboneElement.modifierExtension is one).
SUMMARY_INSIDE = {
    "participant": ("modifierExtension", "type", "individual"),
    "diagnosis": ("modifierExtension", "condition"),
}
SUMMARY_TEXT = f"must be one of {', '.join(SUMMARY_MODES)}"
READ_COUNT_TEXT = "count is for searches only; a read takes true, text, data or false"
BOTH_TEXT = "Use _summary or _elements, not both: each asks for its own subset of the Encounter"


@dataclass(frozen=True, slots=True)
class Subset:
    """What a subsetted answer keeps: a summary mode (true, text, data) or the named elements."""

    summary: str | None = None
    elements: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """What links repeat so that every page has the same shape (no known name: ``id``,
        which every subset keeps anyway)."""
        if self.summary is not None:
            return (("_summary", self.summary),)
        return (("_elements", ",".join(self.elements) or "id"),)

    def kept(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """``resource`` reduced to this subset (the tag not yet added)."""
        if self.summary == "data":
            return {name: value for name, value in resource.items() if name != "text"}
        if self.summary == "text":
            wanted: Sequence[str] = (*ALWAYS, "text", *MANDATORY)
        elif self.summary == "true":
            wanted = ("resourceType", *SUMMARY_ELEMENTS)
        else:
            wanted = (*ALWAYS, *MANDATORY, *self.elements)
        kept = {name: value for name, value in resource.items() if name in wanted}
        if self.summary == "true":
            for name, inside in SUMMARY_INSIDE.items():
                if isinstance(kept.get(name), list):
                    kept[name] = [_only(part, inside) for part in kept[name]]
        return kept


def parse_summary(text: str, *, search: bool = True) -> str:
    """One ``_summary`` value; ValueError says why not (``count`` is for searches only)."""
    if text not in SUMMARY_MODES:
        raise ValueError(SUMMARY_TEXT)
    if text == "count" and not search:
        raise ValueError(READ_COUNT_TEXT)
    return text


def parse_elements(text: str, *, strict: bool = False) -> tuple[str, ...]:
    """The Encounter elements ``_elements`` names, in its order and once each. A name that is not
    a top-level element of Encounter is ignored, or under ``strict`` a ValueError naming it."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ELEMENTS]
    if unknown and strict:
        shown = ", ".join(cut_name(name) for name in unknown[:MAX_NAMED])
        more = f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED else ""
        raise ValueError(f"not top-level elements of Encounter: {shown}{more}")
    return tuple(dict.fromkeys(name for name in names if name in ELEMENTS))


def subset_for(summary: str | None, elements: tuple[str, ...] | None) -> Subset | None:
    """The subset parsed values ask for; None for the whole resource (no parameter, or
    ``_summary=false``). ``count`` is not a subset: a search answers it as ``_count=0``."""
    if summary is not None and elements is not None:
        raise InvalidRequestError(BOTH_TEXT)
    if elements is not None:
        return Subset(elements=elements)
    if summary in ("true", "text", "data"):
        return Subset(summary=summary)
    return None


def subset_from_query(query: Mapping[str, Sequence[str]], *, strict: bool) -> Subset | None:
    """The subset a read asks for (its query string); a bad value is a 400 naming the parameter.
    Empty values are ignored, as a search ignores them."""
    given: dict[str, str] = {}
    for name in ("_summary", "_elements"):
        values = [value.strip() for value in query.get(name, ()) if value.strip()]
        if len(values) > 1:
            raise _invalid(name, "must be given once")
        if values:
            if not is_text(values[0]):
                raise _invalid(name, "not valid Unicode text (a lone surrogate)")
            given[name] = values[0]
    summary = _parsed("_summary", given, lambda text: parse_summary(text, search=False))
    elements = _parsed("_elements", given, lambda text: parse_elements(text, strict=strict))
    return subset_for(summary, elements)


def subset_json(resource_json: str, subset: Subset) -> str:
    """One stored Encounter (JSON text) as ``subset`` keeps it, tagged SUBSETTED."""
    resource = json.loads(resource_json)
    return json.dumps(tagged(subset.kept(resource)), separators=(",", ":"), ensure_ascii=False)


def subset_all(resources: list[tuple[str, str]], subset: Subset | None) -> list[tuple[str, str]]:
    """(id, JSON text) pairs, each subsetted; unchanged when ``subset`` is None."""
    if subset is None:
        return resources
    return [(resource_id, subset_json(text, subset)) for resource_id, text in resources]


def tagged(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with SUBSETTED added to ``meta.tag`` once, after the tags it has."""
    meta = resource.get("meta")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    tags = meta.get("tag")
    tags = list(tags) if isinstance(tags, list) else []
    if not any(
        isinstance(tag, Mapping)
        and tag.get("system") == SUBSETTED_TAG["system"]
        and tag.get("code") == SUBSETTED_TAG["code"]
        for tag in tags
    ):
        tags.append(dict(SUBSETTED_TAG))
    meta["tag"] = tags
    if "meta" in resource:
        return {name: (meta if name == "meta" else value) for name, value in resource.items()}
    return {**resource, "meta": meta}


def _parsed[T](name: str, given: Mapping[str, str], parse: Callable[[str], T]) -> T | None:
    if name not in given:
        return None
    try:
        return parse(given[name])
    except ValueError as error:
        raise _invalid(name, str(error)) from None


def _only(part: object, names: Sequence[str]) -> object:
    return (
        {name: value for name, value in part.items() if name in names} if isinstance(part, Mapping) else part
    )


def _invalid(name: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for parameter '{name}': {message}")
