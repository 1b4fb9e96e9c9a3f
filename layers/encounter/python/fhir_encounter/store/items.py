"""Encounters as DynamoDB items and items as index rows, both driven by the registry's fields.

The writer stores every field on the Encounter item and on each appointment link item; the keyed
indexes project every field they do not key on, so any of their rows can be matched on any field.
The value index (store.values) projects only the period: its rows are matched by their keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from fhir_encounter.dates import NEG_INFINITY, DateRange, format_instant, parse_range
from fhir_encounter.store import keys
from fhir_encounter.store.fields import INDEX_FIELDS, INDEX_VERSION, PERIOD, FieldKind, IndexRow
from fhir_encounter.store.keys import Item
from fhir_encounter.store.periods import partition_of
from fhir_encounter.store.values import (
    ValuePath,
    index_version,
    link_items,
    linked_keys,
    order_sort_key,
    orders,
)

PERIOD_ATTRIBUTES = PERIOD.attributes  # what the value index projects

STORE_META = ("versionId", "lastUpdated")  # meta elements the store sets: not content


def without_store_meta(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource without meta.versionId / meta.lastUpdated (and without an empty meta)."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in STORE_META}
    body = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        body["meta"] = meta
    return body


def content_hash(resource: Mapping[str, Any]) -> str:
    """Hash of the resource's content (store meta excluded): what a reload compares."""
    text = json.dumps(without_store_meta(resource), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def index_row_of(resource: Mapping[str, Any]) -> IndexRow:
    """The index row of an Encounter resource (references and dates must already be valid)."""
    resource_id = str(resource["id"])
    values = {field.name: value for field in INDEX_FIELDS if (value := field.extract(resource)) is not None}
    period: DateRange | None = values.get(PERIOD.name)
    start = period.low if period else NEG_INFINITY
    return IndexRow(resource_id, keys.sort_key_of(start, resource_id), values)


def period_partition(row: IndexRow) -> str:
    """The row's partition in the period-start index."""
    return partition_of(row.values.get(PERIOD.name), row.id)


def items_for_encounter(
    resource: Mapping[str, Any], version_id: str, last_updated: str, paths: Iterable[ValuePath]
) -> list[Item]:
    """The Encounter item, its appointment link items and its value link items (of ``paths``),
    ready for BatchWriteItem.

    ``resource`` must already carry its meta; raises ReferenceValueError / DateValueError when
    a reference or date cannot be indexed.
    """
    paths = tuple(paths)
    row = index_row_of(resource)
    attributes = _field_attributes(row)
    main: Item = {
        **keys.encounter_key(row.id),
        keys.ATTR_RESOURCE: {
            "S": json.dumps(resource, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        },
        keys.ATTR_VERSION_ID: {"S": version_id},
        keys.ATTR_LAST_UPDATED: {"S": last_updated},
        keys.ATTR_CONTENT_HASH: {"S": content_hash(resource)},
        keys.ATTR_INDEX_VERSION: {"S": index_version(INDEX_VERSION, paths)},
        keys.ATTR_SORT_KEY: {"S": row.sort_key},
        keys.ATTR_BUCKET: {"S": period_partition(row)},
        **attributes,
    }
    link_attributes = {keys.LINK_RENAMES.get(name, name): value for name, value in attributes.items()}
    links = [
        {
            **keys.link_key(row.id, ref),
            keys.ATTR_APPOINTMENT: {"S": ref},
            keys.ATTR_SORT_KEY: {"S": row.sort_key},
            **link_attributes,
        }
        for ref in sorted(row.values.get("appointments", ()))
    ]
    period = {name: attributes[name] for name in PERIOD_ATTRIBUTES if name in attributes}
    subject = row.values.get("subject")
    values = link_items(
        row.id, row.sort_key, subject, period, linked_keys(paths, resource), orders(paths, resource)
    )
    return [main, *links, *values]


def row_from_item(item: Item, *, ordered: bool = False) -> IndexRow:
    """An IndexRow from any indexed item (Encounter item, link item or index projection).
    ``ordered``: an Encounter item's row in the order of its last update (the sort key its
    meta.lastUpdated order link carries)."""
    for name, link_name in keys.LINK_RENAMES.items():
        if link_name in item:
            item = {**item, name: item[link_name]}
    values: dict[str, Any] = {}
    for field in INDEX_FIELDS:
        first = field.attributes[0]
        if first not in item:
            continue
        match field.kind:
            case FieldKind.STRING:
                values[field.name] = item[first]["S"]
            case FieldKind.STRING_SET:
                values[field.name] = frozenset(item[first]["SS"])
            case FieldKind.RANGE:
                values[field.name] = DateRange(int(item[first]["N"]), int(item[field.attributes[1]]["N"]))
    resource = item.get(keys.ATTR_RESOURCE)
    sort_key = item[keys.ATTR_SORT_KEY]["S"]
    if ordered:
        updated = format_instant(parse_range(item[keys.ATTR_LAST_UPDATED]["S"]).low)
        sort_key = order_sort_key(updated, item[keys.PARTITION_KEY]["S"])
    return IndexRow(
        item[keys.PARTITION_KEY]["S"],
        sort_key,
        values,
        resource["S"] if resource else None,
    )


def row_attributes(index: str, field_names: tuple[str, ...]) -> tuple[str, ...]:
    """The attributes of ``index``'s items that make a row with these fields: the id, the sort
    key and the fields' own (what a Query's ProjectionExpression asks for)."""
    if index == keys.VALUE_INDEX:
        return (keys.PARTITION_KEY, keys.ATTR_SORT_KEY, *PERIOD_ATTRIBUTES)
    names = [name for field in INDEX_FIELDS if field.name in field_names for name in field.attributes]
    if index == keys.LINK_INDEX:
        names = [keys.LINK_RENAMES.get(name, name) for name in names]
    return (keys.PARTITION_KEY, keys.ATTR_SORT_KEY, *names)


def projections() -> dict[str, tuple[str, ...]]:
    """What each index projects beside its keys (held equal to template.yaml by a test)."""
    stored = [name for field in INDEX_FIELDS for name in field.attributes]
    result = {}
    for index, index_keys in keys.INDEXES.items():
        if index == keys.VALUE_INDEX:
            result[index] = PERIOD_ATTRIBUTES
            continue
        names = [keys.LINK_RENAMES.get(n, n) for n in stored] if index == keys.LINK_INDEX else stored
        result[index] = tuple(n for n in names if n not in index_keys)
    return result


def _field_attributes(row: IndexRow) -> Item:
    attributes: Item = {}
    for field in INDEX_FIELDS:
        value = row.values.get(field.name)
        if value is None:
            continue
        match field.kind:
            case FieldKind.STRING:
                attributes[field.attributes[0]] = {"S": value}
            case FieldKind.STRING_SET:
                attributes[field.attributes[0]] = {"SS": sorted(value)}
            case FieldKind.RANGE:
                attributes[field.attributes[0]] = {"N": str(value.low)}
                attributes[field.attributes[1]] = {"N": str(value.high)}
    return attributes
