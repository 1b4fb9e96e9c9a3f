"""The generic value index, as storage vocabulary: for each indexed element path, the normalised
values (link keys) the writer links an Encounter under, and the link items that carry them.

A value key is ``<path>|<value>``: a token's value in each form a search can name it (``=code``
for any system, ``system|code``, ``|code`` for a code without a system, ``system|`` for any code
of the system), a literal reference in its stored form (``Type/id``, or the whole URL of another
server's resource), and a reference's ``identifier`` as a token under ``<path>:identifier``. The
resource matches a search when it has one of the search's keys (:func:`value_keys`).

Every key but ``=code`` is linked: one item in the Encounter's partition, in two indexes, globally
(value-index partition ``key``) and within the Encounter's subject (compartment-index partition
``<subject>#key``), so that a search for a value, or for a value within one patient, reads exactly
its matches, in sort-key order. ``=code`` is read as ``system|code`` for each system the table has
seen at its namespace (and ``|code`` when it has seen codes without one): the writer records the
systems on the bucket directory before it links anything under them (:func:`systems_of`), so a code
costs one item, not two. The same functions give the search side its keys, so that the two can never disagree.

Nothing here knows search parameters: the search registry names the paths it needs
(``ValuePath``), and the writer is given them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_encounter.dates import DateValueError, format_instant, parse_range
from fhir_encounter.references import ReferenceValueError, parse_reference
from fhir_encounter.store import keys
from fhir_encounter.store.keys import Item

# Bump when what the writer links for the same resource changes (linked_keys, link_items): the
# index state of every table (the paths it is indexed for) then names none of them until a reindex.
VALUE_REVISION = "3"
IDENTIFIER_SUFFIX = ":identifier"
# DynamoDB limits a sort key to 1,024 bytes and a partition key to 2,048: a longer key is linked
# under its digest (the search side computes the same).
MAX_KEY_BYTES = 800


class ValueKind(StrEnum):
    """The FHIR type of what a path yields, which decides its link keys."""

    CODE = "code"  # a code string, of the path's implicit system
    CODING = "Coding"
    CONCEPT = "CodeableConcept"
    IDENTIFIER = "Identifier"
    REFERENCE = "Reference"
    PERIOD = "Period"  # not linked: matched on the resource
    INSTANT = "instant"  # linked as an order (ORDER_SUFFIX): its own sorted stream, no value keys
    QUANTITY = "Quantity"  # not linked


LINKED_KINDS = frozenset(
    {
        ValueKind.CODE,
        ValueKind.CODING,
        ValueKind.CONCEPT,
        ValueKind.IDENTIFIER,
        ValueKind.REFERENCE,
        ValueKind.INSTANT,
    }
)
# An instant path (meta.lastUpdated) is linked as an order: one link item per Encounter whose
# sort key is ``<instant>#<id>``, so that the index reads the Encounters in that order (``_sort``).
# Globally the order is cut into ORDER_SHARDS partitions by the id (a bulk load would otherwise
# write one GSI partition at every Encounter's pace), merged on read; within a subject it is one.
ORDER_SUFFIX = "|order"
ORDER_SHARDS = 8


@dataclass(frozen=True, slots=True)
class ValuePath:
    """An element path of Encounter whose values a search parameter compares.

    ``literal``: whether a reference path's literal references are linked (False where a keyed
    index already serves them: subject, appointment); its identifiers are linked either way.
    """

    name: str  # the path below Encounter, dotted: "class", "participant.individual", "meta.lastUpdated"
    kind: ValueKind
    system: str | None = None  # a code's implicit system
    literal: bool = True

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    @property
    def linked(self) -> bool:
        return self.kind in LINKED_KINDS

    @property
    def state_name(self) -> str:
        """How the table's index state names this path (with the revision of its keys)."""
        return f"{VALUE_REVISION}:{self.name}:{self.kind}:{self.system or ''}:{int(self.literal)}"


def elements_at(resource: Mapping[str, Any], steps: Sequence[str]) -> list[Any]:
    """The items at ``steps``, arrays flattened at every step (FHIRPath navigation); empty
    values (None, {}, "", []) are no items."""
    found: list[Any] = [resource]
    for step in steps:
        following: list[Any] = []
        for item in found:
            if isinstance(item, Mapping):
                child = item.get(step)
                following.extend(child if isinstance(child, list) else [child])
        found = [item for item in following if item is not None and item != {} and item != ""]
    return found


# On the bucket directory, the systems seen at a namespace: attribute ``systems|<namespace>``, a
# string set; NO_SYSTEM stands for codes without a system (a system is a URI: never "|").
SYSTEMS_PREFIX = "systems|"
NO_SYSTEM = "|"
Systems = Mapping[str, frozenset[str]]  # namespace -> the systems seen there


def token_forms(system: object, code: object, *, any_system: bool = True) -> Iterator[str]:
    """The forms a (system, code) is found by: ``=code`` (unless not ``any_system``),
    ``system|code`` (``|code`` without a system) and ``system|``."""
    system = system if isinstance(system, str) and system else ""
    if isinstance(code, str) and code:
        if any_system:
            yield f"={code}"
        yield f"{system}|{code}"
    if system:
        yield f"{system}|"


def reference_form(reference: object) -> str | None:
    """A stored Reference's literal form: ``Type/id`` when relative, the whole URL (without
    ``_history``) when absolute; None for a contained, conditional or logical reference."""
    if not isinstance(reference, Mapping):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    try:
        base, resource_type, resource_id = parse_reference(text)
    except ReferenceValueError:
        return None
    if resource_type is None:
        return None
    local = f"{resource_type}/{resource_id}"
    return local if base is None else f"{base}/{local}"


def reference_type(reference: object) -> str | None:
    """The type a stored Reference points to: from its literal reference (relative, absolute or
    conditional ``Type?..``), else its ``type``; None when it cannot be told."""
    if not isinstance(reference, Mapping):
        return None
    text = reference.get("reference")
    if isinstance(text, str):
        if "?" in text:
            kind = text.split("?", 1)[0]
            if kind.isalpha() and kind[:1].isupper():
                return kind
        else:
            try:
                _, resource_type, _ = parse_reference(text)
            except ReferenceValueError:
                resource_type = None
            if resource_type is not None:
                return resource_type
    declared = reference.get("type")
    return declared if isinstance(declared, str) and declared else None


def link_key(namespace: str, form: str) -> str:
    """``namespace|form``, or its digest when it is too long to be a key."""
    key = f"{namespace}|{form}"
    if len(key.encode()) <= MAX_KEY_BYTES:
        return key
    return f"{namespace}|#{hashlib.sha256(key.encode()).hexdigest()}"


def _tokens(path: ValuePath, resource: Mapping[str, Any]) -> Iterator[tuple[str, object, object]]:
    """(namespace, system, code) of each token at ``path``: codes, codings, identifiers, and the
    identifiers of references (under ``<path>:identifier``)."""
    for item in elements_at(resource, path.steps):
        match path.kind:
            case ValueKind.CODE:
                yield path.name, path.system, item
            case ValueKind.CODING | ValueKind.IDENTIFIER if isinstance(item, Mapping):
                code = item.get("code" if path.kind is ValueKind.CODING else "value")
                yield path.name, item.get("system"), code
            case ValueKind.CONCEPT if isinstance(item, Mapping):
                for coding in item.get("coding") or ():
                    if isinstance(coding, Mapping):
                        yield path.name, coding.get("system"), coding.get("code")
            case ValueKind.REFERENCE if isinstance(item, Mapping):
                identifier = item.get("identifier")
                if isinstance(identifier, Mapping):
                    yield path.name + IDENTIFIER_SUFFIX, identifier.get("system"), identifier.get("value")


def _keys(path: ValuePath, resource: Mapping[str, Any], *, any_system: bool) -> set[str]:
    found: set[str] = set()
    if path.kind is ValueKind.REFERENCE and path.literal:
        for item in elements_at(resource, path.steps):
            if (form := reference_form(item)) is not None:
                found.add(link_key(path.name, form))
    for namespace, system, code in _tokens(path, resource):
        found.update(link_key(namespace, f) for f in token_forms(system, code, any_system=any_system))
    return found


def value_keys(path: ValuePath, resource: Mapping[str, Any]) -> set[str]:
    """Every value key of the resource's values at ``path`` (none for a path that is not linked):
    what a search's keys are matched against."""
    return _keys(path, resource, any_system=True) if path.linked else set()


def linked_keys(paths: Iterable[ValuePath], resource: Mapping[str, Any]) -> set[str]:
    """The keys the resource is linked under at ``paths``: its value keys but ``=code``."""
    return {key for path in paths if path.linked for key in _keys(path, resource, any_system=False)}


def systems_of(paths: Iterable[ValuePath], resource: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(namespace, system) of each code the resource is linked under (NO_SYSTEM for a code
    without one): what a search for the code in any system must read."""
    return {
        (namespace, system if isinstance(system, str) and system else NO_SYSTEM)
        for path in paths
        if path.linked
        for namespace, system, code in _tokens(path, resource)
        if isinstance(code, str) and code
    }


def any_system_keys(namespace: str, code: str, systems: Systems) -> frozenset[str]:
    """The linked keys that hold the matches of ``=code`` at ``namespace``: ``system|code`` for
    each system the table has seen there (``|code`` for codes without one)."""
    return frozenset(
        link_key(namespace, f"{'' if system == NO_SYSTEM else system}|{code}")
        for system in systems.get(namespace, ())
    )


def order_key(path: ValuePath) -> str:
    """The key of an instant path's order: the partition within a subject (``<subject>#key``)."""
    return path.name + ORDER_SUFFIX


def order_shards(path: ValuePath) -> tuple[str, ...]:
    """The global partitions of an instant path's order."""
    return tuple(f"{order_key(path)}#{shard}" for shard in range(ORDER_SHARDS))


def order_shard(path: ValuePath, encounter_id: str) -> str:
    return order_shards(path)[zlib.crc32(encounter_id.encode()) % ORDER_SHARDS]


def order_sort_key(instant: str, encounter_id: str) -> str:
    """An order link's sort key, ``<instant>#<id>`` (the instant fixed-width UTC): string order
    is (instant, id) order, as a sort key's is (start, id) order."""
    return f"{instant}#{encounter_id}"


def orders(paths: Iterable[ValuePath], resource: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Each instant path's order of the resource: key -> (global partition, the instant as
    fixed-width UTC text); a path without a valid instant has none."""
    found: dict[str, tuple[str, str]] = {}
    for path in paths:
        if path.kind is not ValueKind.INSTANT:
            continue
        values = elements_at(resource, path.steps)
        if len(values) == 1 and isinstance(values[0], str):
            try:
                instant = format_instant(parse_range(values[0]).low)
            except DateValueError:
                continue
            found[order_key(path)] = (order_shard(path, str(resource["id"])), instant)
    return found


def compartment_key(subject: str, key: str) -> str:
    """The compartment-index partition of ``key`` within one subject's Encounters."""
    return f"{subject}#{key}"


def link_items(
    encounter_id: str,
    sort_key: str,
    subject: str | None,
    period: Item,
    value_keys: Iterable[str],
    ordered: Mapping[str, tuple[str, str]] | None = None,
) -> list[Item]:
    """The link items of one Encounter: one per key, in the value index under the key, and in
    the compartment index under the key within its subject when it has one.
    ``period``: the period attributes, which both indexes project for date criteria.
    ``ordered``: the Encounter's orders (:func:`orders`), linked the same way under their keys."""
    entries = [(key, key, sort_key) for key in sorted(value_keys)]
    entries += [
        (key, shard, order_sort_key(instant, encounter_id))
        for key, (shard, instant) in sorted((ordered or {}).items())
    ]
    items: list[Item] = []
    for key, partition, item_sort_key in entries:
        item = {
            **keys.value_link_key(encounter_id, key),
            keys.ATTR_VALUE_KEY: {"S": partition},
            keys.ATTR_SORT_KEY: {"S": item_sort_key},
            **period,
        }
        if subject is not None:
            item[keys.ATTR_COMPARTMENT_KEY] = {"S": compartment_key(subject, key)}
        items.append(item)
    return items


def index_version(base_version: str, paths: Iterable[ValuePath]) -> str:
    """The index version the writer stores on each Encounter: the fields' and the linked paths'."""
    names = sorted(path.state_name for path in paths if path.linked)
    text = json.dumps([base_version, names], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
