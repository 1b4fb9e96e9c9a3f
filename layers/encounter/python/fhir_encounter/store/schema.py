"""The Encounter table's key design: names (held equal to template.yaml by a test) and item shapes.

One table, three sparse GSIs, no Scan on any path.

Items (partition key ``pk``, sort key ``sk``):
- Encounter item, ``pk=<id>``, ``sk="Encounter"``: the resource as JSON text (returned as is, no
  Decimal round trip), ``version_id``, ``last_updated``, ``content_hash`` and the index attributes.
- Appointment link item, ``pk=<id>``, ``sk="appointment|Appointment/<aid>"``: one per appointment the
  Encounter references, carrying ``appointment_ref`` and copies of the index attributes, its
  subject as ``link_subject_ref`` (so that links stay out of ``subject-index``). An Encounter with
  three appointments is found from each of them, and once from its subject.
- Bucket directory item, ``pk="_meta"``, ``sk="period-start-buckets"``: the string set of
  period-start buckets in use (``_`` cannot start a FHIR id, so it never collides).

Index attributes, on every item that is in an index:
- ``sort_key``: ``<period.start as fixed-width UTC instant>#<id>``, or ``0000-00-00T00:00:00.000000Z#<id>``
  when there is no start: string order is (start, id) order, a missing start first. Every index
  sorts on it, so every search returns the same documented order and a cursor is one sort key.
- ``subject_ref`` (``Patient/123``, ``Group/7``), ``appointment_refs`` (string set),
  ``period_lo`` / ``period_hi`` (UTC microseconds of the period's range; +-1e18 for an open end;
  absent when there is no period): projected into every index so that a match is decided on
  the index row and counting never reads a resource body.

Indexes (all INCLUDE-projected: keys plus the few attributes above, about 150 bytes a row):
- ``subject-index`` (subject_ref, sort_key): ``patient`` and ``subject``; a bare subject id
  queries both ``Patient/<id>`` and ``Group/<id>``.
- ``appointment-index`` (appointment_ref, sort_key): ``appointment``; only link items have it.
- ``period-start-index`` (start_bucket, sort_key): ``date`` and the search with no criteria.
  ``start_bucket`` is the start's UTC month (``2021-06``; ``0000-00`` without a start), so a busy
  system spreads over one partition per month instead of one hot partition. Searches walk the
  buckets listed in the directory item, in order, skipping those outside the date bounds.
- ``_id`` needs no index: BatchGetItem on the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, format_instant, parse_range
from fhir_encounter.references import typed_reference
from fhir_encounter.search import IndexRow

PARTITION_KEY = "pk"
SORT_KEY = "sk"
ENCOUNTER_SK = "Encounter"
APPOINTMENT_SK_PREFIX = "appointment|"
META_PK = "_meta"
BUCKETS_SK = "period-start-buckets"

SUBJECT_INDEX = "subject-index"
APPOINTMENT_INDEX = "appointment-index"
PERIOD_START_INDEX = "period-start-index"

ATTR_RESOURCE = "resource"
ATTR_VERSION_ID = "version_id"
ATTR_LAST_UPDATED = "last_updated"
ATTR_CONTENT_HASH = "content_hash"
ATTR_SORT_KEY = "sort_key"
ATTR_SUBJECT = "subject_ref"
ATTR_LINK_SUBJECT = "link_subject_ref"  # the subject on link items: not a subject-index key
ATTR_APPOINTMENT = "appointment_ref"
ATTR_APPOINTMENTS = "appointment_refs"
ATTR_BUCKET = "start_bucket"
ATTR_PERIOD_LO = "period_lo"
ATTR_PERIOD_HI = "period_hi"
ATTR_BUCKETS = "buckets"

# (index name, partition key attribute, sort key attribute): compared with template.yaml by a test.
INDEXES = {
    SUBJECT_INDEX: (ATTR_SUBJECT, ATTR_SORT_KEY),
    APPOINTMENT_INDEX: (ATTR_APPOINTMENT, ATTR_SORT_KEY),
    PERIOD_START_INDEX: (ATTR_BUCKET, ATTR_SORT_KEY),
}
# What each index projects beside its keys: all that ``search.matches`` reads.
PROJECTED = {
    SUBJECT_INDEX: (ATTR_PERIOD_LO, ATTR_PERIOD_HI, ATTR_APPOINTMENTS),
    APPOINTMENT_INDEX: (ATTR_LINK_SUBJECT, ATTR_PERIOD_LO, ATTR_PERIOD_HI, ATTR_APPOINTMENTS),
    PERIOD_START_INDEX: (ATTR_SUBJECT, ATTR_PERIOD_LO, ATTR_PERIOD_HI, ATTR_APPOINTMENTS),
}

NO_START = "0000-00-00T00:00:00.000000Z"
NO_START_BUCKET = NO_START[:7]

Item = dict[str, Any]  # a low-level DynamoDB item: {"name": {"S": "..."}}


def bucket_of(sort_key: str) -> str:
    return sort_key[:7]


def period_range(resource: Mapping[str, Any]) -> DateRange | None:
    """[start, end] of Encounter.period at each one's precision; None without a period."""
    period = resource.get("period")
    if not isinstance(period, Mapping) or not (period.get("start") or period.get("end")):
        return None
    start, end = period.get("start"), period.get("end")
    low = parse_range(start).low if start else NEG_INFINITY
    high = parse_range(end).high if end else POS_INFINITY
    return DateRange(low, high)


def content_hash(resource: Mapping[str, Any]) -> str:
    """Hash of the resource without meta.versionId / meta.lastUpdated: what a reload compares."""
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    body = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        body["meta"] = meta
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def index_row_of(resource: Mapping[str, Any]) -> IndexRow:
    """The index attributes of an Encounter resource (references must already be valid)."""
    resource_id = str(resource["id"])
    period = period_range(resource)
    start = format_instant(period.low) if period and period.low != NEG_INFINITY else NO_START
    subject = resource.get("subject") or {}
    subject_ref = typed_reference(subject["reference"]) if subject.get("reference") else None
    appointments = frozenset(
        typed_reference(ref["reference"]) for ref in resource.get("appointment") or () if ref.get("reference")
    )
    return IndexRow(resource_id, f"{start}#{resource_id}", subject_ref, appointments, period)


def items_for_encounter(resource: Mapping[str, Any], version_id: str, last_updated: str) -> list[Item]:
    """The Encounter item and its appointment link items, ready for BatchWriteItem.

    ``resource`` must already carry its meta; raises ReferenceValueError / DateValueError when
    a reference or date cannot be indexed.
    """
    row = index_row_of(resource)
    main: Item = {
        PARTITION_KEY: {"S": row.id},
        SORT_KEY: {"S": ENCOUNTER_SK},
        ATTR_RESOURCE: {"S": json.dumps(resource, separators=(",", ":"), ensure_ascii=False)},
        ATTR_VERSION_ID: {"S": version_id},
        ATTR_LAST_UPDATED: {"S": last_updated},
        ATTR_CONTENT_HASH: {"S": content_hash(resource)},
        ATTR_BUCKET: {"S": bucket_of(row.sort_key)},
        **_index_attributes(row, ATTR_SUBJECT),
    }
    links = [
        {
            PARTITION_KEY: {"S": row.id},
            SORT_KEY: {"S": APPOINTMENT_SK_PREFIX + ref},
            ATTR_APPOINTMENT: {"S": ref},
            **_index_attributes(row, ATTR_LINK_SUBJECT),
        }
        for ref in sorted(row.appointment_refs)
    ]
    return [main, *links]


def _index_attributes(row: IndexRow, subject_attribute: str) -> Item:
    attrs: Item = {ATTR_SORT_KEY: {"S": row.sort_key}}
    if row.subject_ref:
        attrs[subject_attribute] = {"S": row.subject_ref}
    if row.appointment_refs:
        attrs[ATTR_APPOINTMENTS] = {"SS": sorted(row.appointment_refs)}
    if row.period:
        attrs[ATTR_PERIOD_LO] = {"N": str(row.period.low)}
        attrs[ATTR_PERIOD_HI] = {"N": str(row.period.high)}
    return attrs


def row_from_item(item: Item) -> IndexRow:
    """An IndexRow from any indexed item (Encounter item, link item or index projection)."""
    period = None
    if ATTR_PERIOD_LO in item:
        period = DateRange(int(item[ATTR_PERIOD_LO]["N"]), int(item[ATTR_PERIOD_HI]["N"]))
    subject = item.get(ATTR_SUBJECT) or item.get(ATTR_LINK_SUBJECT)
    return IndexRow(
        id=item[PARTITION_KEY]["S"],
        sort_key=item[ATTR_SORT_KEY]["S"],
        subject_ref=subject["S"] if subject else None,
        appointment_refs=frozenset(item[ATTR_APPOINTMENTS]["SS"])
        if ATTR_APPOINTMENTS in item
        else frozenset(),
        period=period,
    )
