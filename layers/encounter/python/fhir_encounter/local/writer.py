"""Writes validated Encounters to the table: the only write path (the API is read-only).

- Idempotent: an Encounter whose content (all but meta.versionId / meta.lastUpdated) is unchanged is
  not written again; a changed one gets versionId + 1 and a new lastUpdated.
- Appointment link items follow the resource: links for appointments it no longer names are deleted.
- Nothing is lost: BatchWriteItem's unprocessed items and throttling are retried with backoff
  until they go through or the retry budget is spent (then it raises, and the caller reports it).
- The period-start bucket directory gets every bucket the batch used.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fhir_encounter.dates import instant_now
from fhir_encounter.store import schema
from fhir_encounter.store.repository import TRANSIENT_ERROR_CODES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

WRITE_BATCH = 25
READ_BATCH = 100
MAX_ATTEMPTS = 12


class WriteFailedError(RuntimeError):
    """DynamoDB kept refusing some items after every retry."""


@dataclass(slots=True)
class WriteResult:
    written: int = 0
    unchanged: int = 0


class EncounterWriter:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], str] = instant_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._sleep = sleep

    def write(self, resources: Iterable[dict[str, Any]]) -> WriteResult:
        """Write Encounters (validated already); the last of several with one id wins."""
        by_id = {str(resource["id"]): resource for resource in resources}
        result = WriteResult()
        ids = list(by_id)
        for start in range(0, len(ids), READ_BATCH):
            chunk = ids[start : start + READ_BATCH]
            existing = self._existing(chunk)
            requests: list[dict[str, Any]] = []
            buckets: set[str] = set()
            last_updated = self._clock()
            for encounter_id in chunk:
                resource = by_id[encounter_id]
                old = existing.get(encounter_id)
                if old and old[schema.ATTR_CONTENT_HASH]["S"] == schema.content_hash(resource):
                    result.unchanged += 1
                    continue
                version = str(int(old[schema.ATTR_VERSION_ID]["S"]) + 1) if old else "1"
                meta = {
                    k: v
                    for k, v in (resource.get("meta") or {}).items()
                    if k not in ("versionId", "lastUpdated")
                }
                stored = {**resource, "meta": {**meta, "versionId": version, "lastUpdated": last_updated}}
                items = schema.items_for_encounter(stored, version, last_updated)
                buckets.add(items[0][schema.ATTR_BUCKET]["S"])
                requests.extend({"PutRequest": {"Item": item}} for item in items)
                requests.extend(self._stale_links(encounter_id, old, items))
                result.written += 1
            if buckets:
                self._add_buckets(buckets)
            for batch_start in range(0, len(requests), WRITE_BATCH):
                self._batch_write(requests[batch_start : batch_start + WRITE_BATCH])
        return result

    def _existing(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        keys = [{schema.PARTITION_KEY: {"S": i}, schema.SORT_KEY: {"S": schema.ENCOUNTER_SK}} for i in ids]
        names = {"#k": schema.PARTITION_KEY, "#h": schema.ATTR_CONTENT_HASH, "#v": schema.ATTR_VERSION_ID}
        names["#a"] = schema.ATTR_APPOINTMENTS
        pending: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ProjectionExpression": "#k, #h, #v, #a",
                "ExpressionAttributeNames": names,
            }
        }
        found: dict[str, dict[str, Any]] = {}
        for attempt in range(MAX_ATTEMPTS):
            response = self._retrying(self._client.batch_get_item, RequestItems=pending)
            for item in response.get("Responses", {}).get(self._table, []):
                found[item[schema.PARTITION_KEY]["S"]] = item
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return found
            self._backoff(attempt)
        raise WriteFailedError("DynamoDB left keys unprocessed after every retry")

    @staticmethod
    def _stale_links(encounter_id: str, old: dict[str, Any] | None, items: list[dict[str, Any]]) -> list[Any]:
        if not old or schema.ATTR_APPOINTMENTS not in old:
            return []
        kept = {item[schema.SORT_KEY]["S"] for item in items}
        return [
            {
                "DeleteRequest": {
                    "Key": {schema.PARTITION_KEY: {"S": encounter_id}, schema.SORT_KEY: {"S": sk}}
                }
            }
            for ref in old[schema.ATTR_APPOINTMENTS]["SS"]
            if (sk := schema.APPOINTMENT_SK_PREFIX + ref) not in kept
        ]

    def _add_buckets(self, buckets: set[str]) -> None:
        self._retrying(
            self._client.update_item,
            TableName=self._table,
            Key={schema.PARTITION_KEY: {"S": schema.META_PK}, schema.SORT_KEY: {"S": schema.BUCKETS_SK}},
            UpdateExpression="ADD #b :b",
            ExpressionAttributeNames={"#b": schema.ATTR_BUCKETS},
            ExpressionAttributeValues={":b": {"SS": sorted(buckets)}},
        )

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table: requests}
        for attempt in range(MAX_ATTEMPTS):
            response = self._retrying(self._client.batch_write_item, RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            self._backoff(attempt)
        raise WriteFailedError("DynamoDB left items unprocessed after every retry")

    def _retrying(self, call: Callable[..., Any], **kwargs: Any) -> Any:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return call(**kwargs)
            except ClientError as error:
                if (
                    error.response.get("Error", {}).get("Code") not in TRANSIENT_ERROR_CODES
                    or attempt == MAX_ATTEMPTS - 1
                ):
                    raise
                self._backoff(attempt)
        raise WriteFailedError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(0.05 * 2**attempt, 5.0) * random.uniform(0.5, 1.0))  # noqa: S311
