"""Reads for read and search: GetItem, Query, BatchGetItem and the bucket directory, never Scan.

It executes a Plan (search.planning) and knows nothing of FHIR semantics or HTTP.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fhir_encounter.errors import NotFoundError, StoreUnavailableError
from fhir_encounter.search.parameters import IndexRow
from fhir_encounter.search.planning import Plan, next_limit
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import BUSY_TEXT, ReadCost, UnprocessedError, batch_get, call
from fhir_encounter.store.items import row_from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

UNKNOWN_TEXT = "Unknown Encounter resource '{id}'"
# Every date or unfiltered search needs the bucket directory: each container keeps it this long,
# so the item is never a hot key. A new month becomes searchable within this time.
BUCKET_TTL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class StoredEncounter:
    resource_json: str
    version_id: str
    last_updated: str
    subject_ref: str | None  # the stored subject (Type/id or a URL): what a patient compartment checks


class EncounterRepository:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        bucket_ttl: float = BUCKET_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = table_name
        self._bucket_ttl = bucket_ttl
        self._clock = clock
        self._bucket_cache: tuple[float, list[str]] | None = None

    def get(self, encounter_id: str) -> StoredEncounter:
        response = call(
            self._client.get_item,
            TableName=self._table,
            Key=keys.encounter_key(encounter_id),
            ProjectionExpression="#r, #v, #u, #s",
            ExpressionAttributeNames={
                "#r": keys.ATTR_RESOURCE,
                "#v": keys.ATTR_VERSION_ID,
                "#u": keys.ATTR_LAST_UPDATED,
                "#s": keys.ATTR_SUBJECT,
            },
        )
        item = response.get("Item")
        if item is None:
            raise NotFoundError(UNKNOWN_TEXT.format(id=encounter_id))
        subject = item.get(keys.ATTR_SUBJECT)
        return StoredEncounter(
            item[keys.ATTR_RESOURCE]["S"],
            item[keys.ATTR_VERSION_ID]["S"],
            item[keys.ATTR_LAST_UPDATED]["S"],
            subject["S"] if subject else None,
        )

    def rows(self, plan: Plan, cost: ReadCost) -> Iterator[IndexRow]:
        """The plan's index rows in sort-key order, each Encounter once, after ``plan.after``.

        Lazy: a partition is read only as far as the caller consumes it.
        """
        if plan.empty:
            return iter(())
        rows: Iterator[IndexRow]
        if plan.index == keys.PERIOD_START_INDEX:
            buckets = plan.buckets(self._bucket_directory(cost))
            rows = (row for bucket in buckets for row in self._query(plan, bucket, cost))
        elif plan.index in keys.INDEXES:
            merged = heapq.merge(
                *(self._query(plan, partition, cost) for partition in plan.partitions),
                key=lambda row: row.sort_key,
            )
            rows = _distinct(merged)
        else:
            items = self._batch_get([keys.encounter_key(i) for i in plan.partitions], None, cost)
            rows = iter(sorted(map(row_from_item, items.values()), key=lambda row: row.sort_key))
        after = plan.after
        return rows if after is None else (row for row in rows if row.sort_key > after)

    def resources(self, rows: list[IndexRow], cost: ReadCost) -> list[tuple[str, str]]:
        """(id, resource JSON) of the page's rows in their order; reads only the bodies that the
        rows do not carry. An Encounter deleted meanwhile is left out."""
        missing = [keys.encounter_key(row.id) for row in rows if row.resource is None]
        items = self._batch_get(missing, [keys.ATTR_RESOURCE], cost) if missing else {}
        found = {i: item[keys.ATTR_RESOURCE]["S"] for i, item in items.items()}
        return [(row.id, text) for row in rows if (text := row.resource or found.get(row.id)) is not None]

    def _batch_get(
        self, item_keys: list[keys.Item], attributes: list[str] | None, cost: ReadCost
    ) -> dict[str, Any]:
        try:
            return batch_get(self._client, self._table, item_keys, attributes=attributes, cost=cost)
        except UnprocessedError:
            raise StoreUnavailableError(BUSY_TEXT) from None

    def _bucket_directory(self, cost: ReadCost) -> list[str]:
        cached = self._bucket_cache
        if cached is not None and self._clock() - cached[0] < self._bucket_ttl:
            return cached[1]
        response = call(
            self._client.get_item,
            TableName=self._table,
            Key=keys.bucket_directory_key(),
            ReturnConsumedCapacity="TOTAL",
        )
        cost.add(dict(response))
        buckets = sorted(response.get("Item", {}).get(keys.ATTR_BUCKETS, {}).get("SS", []))
        self._bucket_cache = (self._clock(), buckets)
        return buckets

    def _query(self, plan: Plan, partition: str, cost: ReadCost) -> Iterator[IndexRow]:
        partition_attr, sort_attr = keys.INDEXES[plan.index]
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": plan.index,
            "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#p": partition_attr, "#s": sort_attr},
            "ExpressionAttributeValues": {
                ":p": {"S": partition},
                ":lo": {"S": plan.low},
                ":hi": {"S": plan.high},
            },
            "ReturnConsumedCapacity": "TOTAL",
        }
        if plan.page_hint:
            request["Limit"] = plan.page_hint
        while True:
            response = call(self._client.query, **request)
            cost.queries += 1
            cost.add(dict(response))
            for item in response.get("Items", []):
                cost.rows += 1
                yield row_from_item(item)
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key
            if plan.page_hint:
                request["Limit"] = next_limit(request["Limit"])


def _distinct(rows: Iterator[IndexRow]) -> Iterator[IndexRow]:
    """An Encounter found through two of its appointments counts once."""
    previous = None
    for row in rows:
        if row.sort_key != previous:
            previous = row.sort_key
            yield row
