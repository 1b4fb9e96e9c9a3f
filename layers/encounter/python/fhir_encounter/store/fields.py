"""The storage vocabulary of the index: the fields the writer extracts from every Encounter into
index attributes (and every index row carries), the row shape, and the index version a reload
compares. The search-parameter registry (search/parameters.py) builds on these; nothing here knows
about search parameters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, parse_range
from fhir_encounter.references import stored_reference
from fhir_encounter.store import keys


class FieldKind(StrEnum):
    """How a field is stored: one string, a string set, or a [low, high] range of integers."""

    STRING = "string"
    STRING_SET = "string-set"
    RANGE = "range"


@dataclass(frozen=True, slots=True)
class IndexField:
    """A value the writer extracts from every Encounter and every index row carries."""

    name: str
    kind: FieldKind
    attributes: tuple[str, ...]  # one attribute; (low, high) for a RANGE
    extract: Callable[[Mapping[str, Any]], Any]  # the resource -> the value, or None


@dataclass(frozen=True, slots=True)
class IndexRow:
    """An Encounter as an index row: enough to decide a match without reading the resource."""

    id: str
    sort_key: str
    values: Mapping[str, Any]  # IndexField.name -> value (absent: the Encounter has none)
    resource: str | None = None  # the resource JSON, when the read that found the row carried it


SUBJECT_TYPES = ("Patient", "Group")  # Encounter.subject: Reference(Patient | Group)
ENCOUNTER_STATUS_SYSTEM = "http://hl7.org/fhir/encounter-status"


def period_range(resource: Mapping[str, Any]) -> DateRange | None:
    """[start, end] of Encounter.period at each one's precision; None without a period."""
    period = resource.get("period")
    if not isinstance(period, Mapping) or not (period.get("start") or period.get("end")):
        return None
    start, end = period.get("start"), period.get("end")
    low = parse_range(start).low if start else NEG_INFINITY
    high = parse_range(end).high if end else POS_INFINITY
    # A date without a zone is read as UTC; against an end with a far zone (+14:00 on the same
    # local day) that can put the end before the start. The period then covers its start.
    return DateRange(low, max(high, low))


def _subject(resource: Mapping[str, Any]) -> str | None:
    reference = (resource.get("subject") or {}).get("reference")
    return stored_reference(reference, SUBJECT_TYPES) if reference else None


def _appointments(resource: Mapping[str, Any]) -> frozenset[str] | None:
    refs = frozenset(
        stored_reference(ref["reference"], ("Appointment",))
        for ref in resource.get("appointment") or ()
        if ref.get("reference")
    )
    return refs or None


def _status(resource: Mapping[str, Any]) -> str | None:
    status = resource.get("status")
    return status if isinstance(status, str) and status else None


SUBJECT = IndexField("subject", FieldKind.STRING, (keys.ATTR_SUBJECT,), _subject)
APPOINTMENTS = IndexField("appointments", FieldKind.STRING_SET, (keys.ATTR_APPOINTMENTS,), _appointments)
PERIOD = IndexField("period", FieldKind.RANGE, (keys.ATTR_PERIOD_LO, keys.ATTR_PERIOD_HI), period_range)
STATUS = IndexField("status", FieldKind.STRING, ("status_code",), _status)
INDEX_FIELDS = (SUBJECT, APPOINTMENTS, PERIOD, STATUS)

# Bump when an extract function changes what it returns for the same resource. Together with the
# field list it makes INDEX_VERSION, which the writer stores: a reload rewrites out-of-date items.
# 2: absolute references keep their server (the whole URL); 3: period-start partitions by
# duration class (store.periods)
EXTRACTION_REVISION = 3
INDEX_VERSION = hashlib.sha256(
    json.dumps(
        [EXTRACTION_REVISION, [(f.name, f.kind, f.attributes) for f in INDEX_FIELDS]], separators=(",", ":")
    ).encode()
).hexdigest()[:12]
