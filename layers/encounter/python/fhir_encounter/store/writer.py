"""The write half of the key design; the API itself is read-only.

Reloads are idempotent (versionId moves only when content changes), and items written under an
older INDEX_VERSION are rewritten in place, which is how a new projected parameter is backfilled.

What is stored is read first (BatchGetItem) only where something can be: every write adds its
buckets to the bucket directory before it puts an item, so a table without the directory holds no
Encounter, and then only the ids this writer has written since can be stored. One writer may be
used by several threads at once (the loader's concurrent batches), each with its own ids.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fhir_encounter.dates import instant_now
from fhir_encounter.search.parameters import INDEX_VERSION
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import BATCH_GET_LIMIT, Sleep, batch_get, batch_write
from fhir_encounter.store.items import content_hash, items_for_encounter, without_store_meta

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_EXISTING = [keys.ATTR_CONTENT_HASH, keys.ATTR_VERSION_ID, keys.ATTR_LAST_UPDATED, keys.ATTR_INDEX_VERSION]


@dataclass(slots=True)
class WriteResult:
    written: int = 0  # new, or changed content (a new version)
    reindexed: int = 0  # same content and version, index attributes brought up to date
    unchanged: int = 0


class EncounterWriter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], str] = instant_now,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._empty_at_start: bool | None = None  # the table held no Encounter when first written to
        self._written: set[str] = set()  # ids sent by this writer (kept while the above is True)
        self._buckets: set[str] = set()  # buckets this writer has put in the directory

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
            buckets: set[str] = set()
            now = self._clock()
            for encounter_id in chunk:
                resource, old = by_id[encounter_id], existing.get(encounter_id)
                version, last_updated = self._version(resource, old, now, result)
                if version is None:
                    continue
                body = without_store_meta(resource)
                meta = {**body.get("meta", {}), "versionId": version, "lastUpdated": last_updated}
                items = items_for_encounter({**body, "meta": meta}, version, last_updated)
                buckets.add(items[0][keys.ATTR_BUCKET]["S"])
                requests.extend({"PutRequest": {"Item": item}} for item in items)
                requests.extend(_stale_links(encounter_id, old, items))
            self._add_buckets(buckets)
            batch_write(self._client, self._table, requests, sleep=self._sleep)
        return result

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

    def _add_buckets(self, buckets: set[str]) -> None:
        """Adds to the bucket directory the buckets it may lack, before any item in them is put."""
        with self._lock:
            new = sorted(buckets - self._buckets)
        if new:
            self._client.update_item(
                TableName=self._table,
                Key=keys.bucket_directory_key(),
                UpdateExpression="ADD #b :b",
                ExpressionAttributeNames={"#b": keys.ATTR_BUCKETS},
                ExpressionAttributeValues={":b": {"SS": new}},
            )
            with self._lock:
                self._buckets.update(new)

    @staticmethod
    def _version(
        resource: dict[str, Any], old: dict[str, Any] | None, now: str, result: WriteResult
    ) -> tuple[str | None, str]:
        """(versionId, lastUpdated) to write, or (None, "") when the stored item is current."""
        if old is None:
            result.written += 1
            return "1", now
        if old[keys.ATTR_CONTENT_HASH]["S"] != content_hash(resource):
            result.written += 1
            return str(int(old[keys.ATTR_VERSION_ID]["S"]) + 1), now
        if old.get(keys.ATTR_INDEX_VERSION, {}).get("S") != INDEX_VERSION:
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
