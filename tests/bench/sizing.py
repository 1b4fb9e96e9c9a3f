"""Bytes per Encounter in the table and each GSI, computed from the writer's own items
(``items_for_encounter``) with DynamoDB's documented item-size rules: a name's UTF-8 bytes plus
its value's (a string's UTF-8 bytes; a number about one byte per two significant digits plus one;
a set the sum of its elements). A GSI entry holds the index keys, the table keys and the projected
attributes. Storage adds 100 bytes of overhead to every item and every index entry; read units
are computed on the sizes without it (eventually consistent: 0.5 RCU per 4 KB, rounded up per
item for GetItem and BatchGetItem, on the sum of the items for a Query); a first write costs one
write unit per KB, rounded up, of each item and of each index entry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.items import items_for_encounter, projections

OVERHEAD = 100  # bytes DynamoDB adds per item and per index entry for storage


def attribute_size(name: str, value: dict[str, Any]) -> int:
    ((kind, content),) = value.items()
    match kind:
        case "S":
            size = len(content.encode())
        case "N":
            digits = len(content.lstrip("-").replace(".", "").strip("0")) or 1
            size = (digits + 1) // 2 + 1
        case "SS":
            size = sum(len(element.encode()) for element in content)
        case _:
            raise ValueError(f"no size rule for {kind}")
    return len(name.encode()) + size


def item_size(item: dict[str, Any], names: Iterable[str] | None = None) -> int:
    chosen = item.keys() if names is None else [n for n in names if n in item]
    return sum(attribute_size(name, item[name]) for name in chosen)


@dataclass
class Sizes:
    encounters: int = 0
    table_items: int = 0
    table_bytes: int = 0  # without overhead
    body_bytes: int = 0  # the resource JSON alone
    index_entries: dict[str, int] = field(default_factory=dict)
    index_bytes: dict[str, int] = field(default_factory=dict)  # without overhead
    write_units: int = 0  # on-demand WCU of a first write: 1 per KB (rounded up) of each item and index entry

    def per_encounter(self, bytes_: int, entries: int) -> float:
        """Storage bytes per Encounter, overhead included."""
        return (bytes_ + OVERHEAD * entries) / max(1, self.encounters)


def measure(resources: Iterable[dict[str, Any]]) -> Sizes:
    sizes = Sizes(index_entries=dict.fromkeys(keys.INDEXES, 0), index_bytes=dict.fromkeys(keys.INDEXES, 0))
    projected = projections()
    for resource in resources:
        meta = {"versionId": "1", "lastUpdated": "2025-01-01T00:00:00.000Z"}
        items = items_for_encounter({**resource, "meta": meta}, "1", meta["lastUpdated"], value_paths())
        sizes.encounters += 1
        sizes.table_items += len(items)
        sizes.table_bytes += sum(item_size(item) for item in items)
        sizes.write_units += sum(-(-item_size(item) // 1024) for item in items)
        sizes.body_bytes += len(items[0][keys.ATTR_RESOURCE]["S"].encode())
        for index, (partition, sort) in keys.INDEXES.items():
            names = [keys.PARTITION_KEY, keys.SORT_KEY, partition, sort, *projected[index]]
            for item in items:
                if partition in item and sort in item:
                    sizes.index_entries[index] += 1
                    entry = item_size(item, names)
                    sizes.index_bytes[index] += entry
                    sizes.write_units += -(-entry // 1024)
    return sizes


def lines(sizes: Sizes) -> list[str]:
    n = max(1, sizes.encounters)
    stored = sizes.per_encounter(sizes.table_bytes, sizes.table_items)
    out = [
        f"table: {sizes.table_items / n:.2f} items per Encounter, {sizes.table_bytes / n:,.0f} bytes "
        f"(body {sizes.body_bytes / n:,.0f}), {stored:,.0f} stored per Encounter with overhead",
        f"first write: {sizes.write_units / n:.1f} WCU per Encounter (items and index entries, on demand)",
    ]
    for index, entries in sizes.index_entries.items():
        mean = sizes.index_bytes[index] / max(1, entries)
        stored = sizes.per_encounter(sizes.index_bytes[index], entries)
        out.append(
            f"{index}: {entries / n:.2f} entries per Encounter, {mean:,.0f} bytes each, "
            f"{stored:,.0f} stored per Encounter with overhead"
        )
    return out
