"""The Encounter table's key design: attribute and index names (a test holds them equal to
template.yaml) and the one builder of item keys and sort keys. docs/design.md explains the design."""

from __future__ import annotations

from typing import Any

from fhir_encounter.dates import NEG_INFINITY, format_instant

PARTITION_KEY = "pk"
SORT_KEY = "sk"
ENCOUNTER_SK = "Encounter"
APPOINTMENT_SK_PREFIX = "appointment|"
META_PK = "_meta"  # "_" cannot start a FHIR id: never an Encounter's partition
BUCKETS_SK = "period-start-buckets"

SUBJECT_INDEX = "subject-index"
APPOINTMENT_INDEX = "appointment-index"
PERIOD_START_INDEX = "period-start-index"
VALUE_INDEX = "value-index"  # the generic index: link items of every indexed value (store.values)
TABLE = "table"  # not an index: the _id "index", BatchGetItem on the table's own key

ATTR_RESOURCE = "resource"
ATTR_VERSION_ID = "version_id"
ATTR_LAST_UPDATED = "last_updated"
ATTR_CONTENT_HASH = "content_hash"
ATTR_INDEX_VERSION = "index_version"
ATTR_SORT_KEY = "sort_key"
ATTR_SUBJECT = "subject_ref"
ATTR_LINK_SUBJECT = "link_subject_ref"  # the subject on link items: not a subject-index key
ATTR_APPOINTMENT = "appointment_ref"
ATTR_APPOINTMENTS = "appointment_refs"
ATTR_BUCKET = "start_bucket"  # the period-start index partition (store.periods)
ATTR_PERIOD_LO = "period_lo"
ATTR_PERIOD_HI = "period_hi"
ATTR_BUCKETS = "buckets"
ATTR_VALUE_KEY = "value_key"  # a link item's value-index partition (store.values)
# On the bucket directory: the value paths (ValuePath.state_name) that every Encounter in the table
# is linked under. A writer that creates the directory sets its own; a reindex adds them.
ATTR_VALUE_PATHS = "value_paths"
# The directory's span of each period-start partition: the lowest and highest sort key ever
# written to it ("first#c0#2023", "last#c0#2023"). Spans only widen, so every row lies inside.
SPAN_FIRST, SPAN_LAST = "first#", "last#"
# Set by the writer that created the directory: every item since has been inside a recorded span.
# A directory from before spans were kept lacks it, and its spans (of newer items only) are not used.
ATTR_SPANS_KEPT = "spans_kept"

# index name -> (partition key attribute, sort key attribute): compared with template.yaml by a test.
INDEXES = {
    SUBJECT_INDEX: (ATTR_SUBJECT, ATTR_SORT_KEY),
    APPOINTMENT_INDEX: (ATTR_APPOINTMENT, ATTR_SORT_KEY),
    PERIOD_START_INDEX: (ATTR_BUCKET, ATTR_SORT_KEY),
    VALUE_INDEX: (ATTR_VALUE_KEY, ATTR_SORT_KEY),
}
VALUE_LINK_PREFIX = "v|"  # sort key of a value's link item: "v|<key>"
# A value link item is in two indexes at once: the value index by its value (ATTR_VALUE_KEY), and
# the link index by its value within the Encounter's subject (``<subject>#<key>``, in the
# appointment_ref attribute). A subject reference (``Patient/1``, ``Group/2``) never names an
# Appointment, so the two kinds of partition there cannot meet; one item, not two, per value.
COMPARTMENT_INDEX = "appointment-index"
ATTR_COMPARTMENT_KEY = ATTR_APPOINTMENT
# Attributes that link items carry under another name, so that they stay out of an index.
LINK_RENAMES = {ATTR_SUBJECT: ATTR_LINK_SUBJECT}
LINK_INDEX = APPOINTMENT_INDEX  # the index that holds link items (and only them)

NO_START = "0000-00-00T00:00:00.000000Z"
SORT_KEY_END = "~"  # after every sort key

Item = dict[str, Any]  # a low-level DynamoDB item: {"name": {"S": "..."}}


def encounter_key(encounter_id: str) -> Item:
    return {PARTITION_KEY: {"S": encounter_id}, SORT_KEY: {"S": ENCOUNTER_SK}}


def link_key(encounter_id: str, appointment_ref: str) -> Item:
    return {PARTITION_KEY: {"S": encounter_id}, SORT_KEY: {"S": APPOINTMENT_SK_PREFIX + appointment_ref}}


def value_link_key(encounter_id: str, value_key: str) -> Item:
    """The table key of the Encounter's global link item for ``value_key``: whether it exists is
    whether the Encounter has the value."""
    return {PARTITION_KEY: {"S": encounter_id}, SORT_KEY: {"S": VALUE_LINK_PREFIX + value_key}}


def bucket_directory_key() -> Item:
    return {PARTITION_KEY: {"S": META_PK}, SORT_KEY: {"S": BUCKETS_SK}}


def directory_spans(item: Item) -> dict[str, tuple[str, str]]:
    """The spans a bucket directory item records, by partition (those with both bounds); none
    unless the directory has kept them since it was created."""
    if ATTR_SPANS_KEPT not in item:
        return {}
    firsts = {
        name[len(SPAN_FIRST) :]: value["S"] for name, value in item.items() if name.startswith(SPAN_FIRST)
    }
    return {
        partition: (first, item[SPAN_LAST + partition]["S"])
        for partition, first in firsts.items()
        if SPAN_LAST + partition in item
    }


def start_text(start: int) -> str:
    """period.start as sort-key text: a fixed-width UTC instant, or NO_START (sorts first)."""
    return NO_START if start == NEG_INFINITY else format_instant(start)


def sort_key_of(start: int, encounter_id: str) -> str:
    """``<start>#<id>``: string order is (start, id) order, a missing start first."""
    return f"{start_text(start)}#{encounter_id}"
