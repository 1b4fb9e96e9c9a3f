"""The write half of the key design; the API itself is read-only.

Reloads are idempotent (versionId moves only when content changes), and items written under an
older INDEX_VERSION are rewritten in place, which is how a new projected parameter is backfilled.

What is stored is read first (BatchGetItem) only where something can be: every write adds its
buckets to the bucket directory before it puts an item, so a table without the directory holds no
Encounter, and then only the ids this writer has written since can be stored. The directory also
keeps each partition's span of sort keys, widened before an item outside it is put, so that a date
search skips the partitions that cannot hold its range. One writer may be used by several threads
at once (the loader's concurrent batches), each with its own ids.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fhir_encounter.dates import instant_now
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import BATCH_GET_LIMIT, Sleep, batch_get, batch_write
from fhir_encounter.store.fields import INDEX_VERSION
from fhir_encounter.store.items import content_hash, items_for_encounter, without_store_meta
from fhir_encounter.store.values import SYSTEMS_PREFIX, ValuePath, index_version, systems_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Span = tuple[str, str]  # (first, last) sort key of a period-start partition
# Another writer may widen a span between this writer's read and its update; each retry starts from
# what that writer left, and spans only widen, so a few rounds always settle.
SPAN_ATTEMPTS = 20
# Partitions whose bounds one UpdateItem widens: its condition (about 100 characters a partition)
# must stay under DynamoDB's 4 KB limit on an expression.
SPAN_UPDATE_PARTITIONS = 24
SYSTEM_UPDATE_NAMESPACES = 50  # namespaces whose systems one UpdateItem adds (its expression < 4 KB)
_EXISTING = [keys.ATTR_CONTENT_HASH, keys.ATTR_VERSION_ID, keys.ATTR_LAST_UPDATED, keys.ATTR_INDEX_VERSION]


@dataclass(slots=True)
class WriteResult:
    written: int = 0  # new, or changed content (a new version)
    reindexed: int = 0  # same content and version, index attributes brought up to date
    unchanged: int = 0


class EncounterWriter:
    """``paths``: the value paths to link each Encounter under (the search registry's,
    search.parameters.value_paths())."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        paths: Sequence[ValuePath],
        *,
        clock: Callable[[], str] = instant_now,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._paths = tuple(paths)
        self._index_version = index_version(INDEX_VERSION, self._paths)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._empty_at_start: bool | None = None  # the table held no Encounter when first written to
        self._written: set[str] = set()  # ids sent by this writer (kept while the above is True)
        self._buckets: set[str] = set()  # buckets this writer has put in the directory
        self._systems: set[tuple[str, str]] = set()  # (namespace, system) it has put there
        # The directory's bounds as this writer last knew them, each side apart: (first, last).
        self._known: dict[str, tuple[str | None, str | None]] = {}

    def write(self, resources: Iterable[dict[str, Any]]) -> WriteResult:
        """Write Encounters (validated already); the last of several with one id wins."""
        by_id = {str(resource["id"]): resource for resource in resources}
        result = WriteResult()
        ids = list(by_id)
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            chunk = ids[start : start + BATCH_GET_LIMIT]
            stored = self._maybe_stored(chunk)
            existing = (
                batch_get(
                    self._client,
                    self._table,
                    [keys.encounter_key(i) for i in stored],
                    attributes=[*_EXISTING, keys.ATTR_APPOINTMENTS],
                    sleep=self._sleep,
                )
                if stored
                else {}
            )
            requests: list[dict[str, Any]] = []
            spans: dict[str, Span] = {}
            now = self._clock()
            rewritten: list[tuple[str, list[dict[str, Any]]]] = []
            systems: set[tuple[str, str]] = set()
            for encounter_id in chunk:
                resource, old = by_id[encounter_id], existing.get(encounter_id)
                version, last_updated = self._version(resource, old, now, result)
                if version is None:
                    continue
                body = without_store_meta(resource)
                meta = {**body.get("meta", {}), "versionId": version, "lastUpdated": last_updated}
                items = items_for_encounter({**body, "meta": meta}, version, last_updated, self._paths)
                systems |= systems_of(self._paths, body)
                partition, sort_key = items[0][keys.ATTR_BUCKET]["S"], items[0][keys.ATTR_SORT_KEY]["S"]
                spans[partition] = _widened(spans.get(partition), (sort_key, sort_key))
                requests.extend({"PutRequest": {"Item": item}} for item in items)
                requests.extend(_stale_links(encounter_id, old, items))
                if old is not None:
                    rewritten.append((encounter_id, items))
            requests.extend(self._stale_value_links(rewritten))
            self._extend_directory(spans)
            self._record_systems(systems)  # after: the directory that creates the table's state
            batch_write(self._client, self._table, requests, sleep=self._sleep)
        return result

    def mark_indexed(self) -> None:
        """Records on the bucket directory that every Encounter in the table is linked under this
        writer's paths (what a reindex says once it has rewritten every Encounter)."""
        names = self._created_paths()
        if names:
            self._client.update_item(
                TableName=self._table,
                Key=keys.bucket_directory_key(),
                UpdateExpression="ADD #p :p",
                ExpressionAttributeNames={"#p": keys.ATTR_VALUE_PATHS},
                ExpressionAttributeValues={":p": {"SS": names}},
            )

    def _created_paths(self) -> list[str]:
        return sorted(path.state_name for path in self._paths if path.linked)

    def _stale_value_links(self, rewritten: list[tuple[str, list[dict[str, Any]]]]) -> list[Any]:
        """Delete requests for the value link items of rewritten Encounters that their new items
        no longer have (a value removed, or a path no longer linked): one Query of each one's keys."""
        requests: list[Any] = []
        for encounter_id, items in rewritten:
            kept = {item[keys.SORT_KEY]["S"] for item in items}
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "#p = :p",
                "ExpressionAttributeNames": {"#p": keys.PARTITION_KEY, "#s": keys.SORT_KEY},
                "ExpressionAttributeValues": {":p": {"S": encounter_id}},
                "ProjectionExpression": "#p, #s",
            }
            while True:
                response = self._client.query(**request)
                for item in response.get("Items", ()):
                    sort_key = item[keys.SORT_KEY]["S"]
                    if sort_key.startswith(keys.VALUE_LINK_PREFIX) and sort_key not in kept:
                        requests.append({"DeleteRequest": {"Key": dict(item)}})
                if not (last := response.get("LastEvaluatedKey")):
                    break
                request = {**request, "ExclusiveStartKey": last}
        return requests

    def _maybe_stored(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` that the table may hold: all of them, unless it held no Encounter when
        this writer first wrote to it (then only the ones written since). Marks them all written."""
        with self._lock:
            if self._empty_at_start is None:
                directory = self._client.get_item(
                    TableName=self._table,
                    Key=keys.bucket_directory_key(),
                    ProjectionExpression=keys.PARTITION_KEY,
                    ConsistentRead=True,
                )
                self._empty_at_start = "Item" not in directory
            if not self._empty_at_start:
                return ids
            stored = [i for i in ids if i in self._written]
            self._written.update(ids)
            return stored

    def _record_systems(self, systems: set[tuple[str, str]]) -> None:
        """Adds to the bucket directory the code systems of ``systems`` (namespace, system) it may
        lack, before any item is linked under them: a search for a code of any system reads the
        code under each system recorded (store.values). ADD is idempotent: writers at once agree."""
        with self._lock:
            new = sorted(systems - self._systems)
        by_namespace: dict[str, list[str]] = {}
        for namespace, system in new:
            by_namespace.setdefault(namespace, []).append(system)
        namespaces = sorted(by_namespace)
        for start in range(0, len(namespaces), SYSTEM_UPDATE_NAMESPACES):
            part = namespaces[start : start + SYSTEM_UPDATE_NAMESPACES]
            self._client.update_item(
                TableName=self._table,
                Key=keys.bucket_directory_key(),
                UpdateExpression="ADD " + ", ".join(f"#s{n:03d} :s{n:03d}" for n in range(len(part))),
                ExpressionAttributeNames={f"#s{n:03d}": SYSTEMS_PREFIX + ns for n, ns in enumerate(part)},
                ExpressionAttributeValues={
                    f":s{n:03d}": {"SS": by_namespace[ns]} for n, ns in enumerate(part)
                },
            )
        with self._lock:
            self._systems.update(new)

    def _extend_directory(self, spans: dict[str, Span]) -> None:
        """Adds to the bucket directory the partitions it may lack and widens their spans, before any
        item in them is put: UpdateItems (SPAN_UPDATE_PARTITIONS partitions each) whose condition
        holds each bound they set only where no other writer has set a wider one (when one has,
        the writer learns the directory and goes on from what it holds)."""
        for _ in range(SPAN_ATTEMPTS + len(spans) // SPAN_UPDATE_PARTITIONS):
            with self._lock:
                new = sorted(set(spans) - self._buckets)
                wider = {
                    partition: bounds
                    for partition, span in sorted(spans.items())
                    if (bounds := _beyond(self._known.get(partition, (None, None)), span)) != (None, None)
                }
            if not new and not wider:
                return
            part = dict(list(wider.items())[:SPAN_UPDATE_PARTITIONS])
            try:
                update = _directory_update(
                    new, part, created=self._empty_at_start is True, paths=self._created_paths()
                )
                self._client.update_item(TableName=self._table, Key=keys.bucket_directory_key(), **update)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                self._learn_directory()
                continue
            with self._lock:
                self._buckets.update(new)
                for partition, bounds in part.items():
                    self._learn(partition, *bounds)
        raise RuntimeError("the bucket directory kept changing under this writer")  # never, in practice

    def _learn_directory(self) -> None:
        item = self._client.get_item(
            TableName=self._table, Key=keys.bucket_directory_key(), ConsistentRead=True
        ).get("Item", {})
        with self._lock:
            self._buckets.update(item.get(keys.ATTR_BUCKETS, {}).get("SS", []))
            for name, value in item.items():
                if name.startswith(keys.SPAN_FIRST):
                    self._learn(name[len(keys.SPAN_FIRST) :], value["S"], None)
                elif name.startswith(keys.SPAN_LAST):
                    self._learn(name[len(keys.SPAN_LAST) :], None, value["S"])

    def _learn(self, partition: str, first: str | None, last: str | None) -> None:
        """Widens what this writer knows of a partition's bounds (its lock held)."""
        known_first, known_last = self._known.get(partition, (None, None))
        if first is not None and (known_first is None or first < known_first):
            known_first = first
        if last is not None and (known_last is None or last > known_last):
            known_last = last
        self._known[partition] = (known_first, known_last)

    def _version(
        self, resource: dict[str, Any], old: dict[str, Any] | None, now: str, result: WriteResult
    ) -> tuple[str | None, str]:
        """(versionId, lastUpdated) to write, or (None, "") when the stored item is current."""
        if old is None:
            result.written += 1
            return "1", now
        if old[keys.ATTR_CONTENT_HASH]["S"] != content_hash(resource):
            result.written += 1
            return str(int(old[keys.ATTR_VERSION_ID]["S"]) + 1), now
        if old.get(keys.ATTR_INDEX_VERSION, {}).get("S") != self._index_version:
            result.reindexed += 1
            return old[keys.ATTR_VERSION_ID]["S"], old[keys.ATTR_LAST_UPDATED]["S"]
        result.unchanged += 1
        return None, ""


def _stale_links(encounter_id: str, old: dict[str, Any] | None, items: list[dict[str, Any]]) -> list[Any]:
    """Delete requests for link items of appointments the Encounter no longer names."""
    if not old or keys.ATTR_APPOINTMENTS not in old:
        return []
    kept = {item[keys.SORT_KEY]["S"] for item in items}
    return [
        {"DeleteRequest": {"Key": key}}
        for ref in old[keys.ATTR_APPOINTMENTS]["SS"]
        if (key := keys.link_key(encounter_id, ref))[keys.SORT_KEY]["S"] not in kept
    ]


def _widened(span: Span | None, other: Span) -> Span:
    return other if span is None else (min(span[0], other[0]), max(span[1], other[1]))


def _beyond(known: tuple[str | None, str | None], span: Span) -> tuple[str | None, str | None]:
    """The bounds of ``span`` outside ``known`` (None for a side that is inside; a side not known
    is outside)."""
    first, last = known
    return (
        span[0] if first is None or span[0] < first else None,
        span[1] if last is None or span[1] > last else None,
    )


def _directory_update(
    new: list[str],
    wider: dict[str, tuple[str | None, str | None]],
    *,
    created: bool,
    paths: list[str],
) -> dict[str, Any]:
    """ADD the new partitions; SET each widened bound where the one stored is narrower or absent;
    ``created``: this writer found no directory, so it marks the spans as kept from the start."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    conditions: list[str] = []
    if created:
        names["#k"], values[":k"] = keys.ATTR_SPANS_KEPT, {"BOOL": True}
        sets.append("#k = :k")
    adds: list[str] = []
    if created and paths:  # every Encounter of a table this writer found empty is linked under them
        names["#v"], values[":v"] = keys.ATTR_VALUE_PATHS, {"SS": paths}
        adds.append("#v :v")
    for n, (partition, (first, last)) in enumerate(sorted(wider.items())):
        for side, attribute, value, narrower in (
            ("f", keys.SPAN_FIRST + partition, first, ">"),
            ("l", keys.SPAN_LAST + partition, last, "<"),
        ):
            if value is None:
                continue
            # Fixed width: no placeholder is the start of another (#f1 in #f10), which moto misreads.
            name, placeholder = f"#{side}{n:04d}", f":{side}{n:04d}"
            names[name], values[placeholder] = attribute, {"S": value}
            sets.append(f"{name} = {placeholder}")
            conditions.append(f"(attribute_not_exists({name}) OR {name} {narrower} {placeholder})")
    expression = f"SET {', '.join(sets)}" if sets else ""
    if new:
        names["#b"], values[":b"] = keys.ATTR_BUCKETS, {"SS": new}
        adds.append("#b :b")
    if adds:
        expression = f"{expression} ADD {', '.join(adds)}".strip()
    update: dict[str, Any] = {
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    if conditions:
        update["ConditionExpression"] = " AND ".join(conditions)
    return update
