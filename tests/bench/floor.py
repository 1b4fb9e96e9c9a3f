"""The floor: what a hand-written handler on bare boto3 would ask DynamoDB for the same answers.

Each method makes only the calls that the key design (store/keys.py, docs/design.md's "DynamoDB"
section) requires, and returns the JSON a handler would send, built by joining the stored texts:

- read: one GetItem of the Encounter's body;
- a partition's first page with total: a ``Select=COUNT`` Query of the partition (paginated), a
  Query with ``Limit`` = page, one BatchGetItem of the page's bodies;
- a next page: the same Query from ``ExclusiveStartKey`` (the last row shown), and the bodies;
- no criteria, ``_total=none``: the first page's rows of the period-start index (read through the
  bucket directory, which it reads once as the functions cache it), and the bodies.

It imports boto3 and the key names only, so that it also serves as the bare process of the RSS
figure.
"""

from __future__ import annotations

import heapq
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fhir_encounter.store import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]
# Families of the period-start index that hold the rows without a start, which sort first
# (store/periods.py: "none#<shard>" without a period; "end#<year>" with an end only, beside the
# long stays). A directory of plain months ("0000-00", "2021-06", ...) is the month-bucket design,
# whose order is the months'.
NO_START_FAMILIES = ("none#", "end#")
PARALLEL_QUERIES = 8


class Floor:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table
        self._pool = ThreadPoolExecutor(PARALLEL_QUERIES)
        item = client.get_item(TableName=table, Key=keys.bucket_directory_key()).get("Item", {})
        self.directory = sorted(item.get(keys.ATTR_BUCKETS, {}).get("SS", []))

    def read(self, encounter_id: str) -> str:
        item = self.client.get_item(
            TableName=self.table,
            Key=keys.encounter_key(encounter_id),
            ProjectionExpression="#r",
            ExpressionAttributeNames={"#r": keys.ATTR_RESOURCE},
        )["Item"]
        text: str = item[keys.ATTR_RESOURCE]["S"]
        return text

    def first_page(self, index: str, partition: str, page: int) -> tuple[str, Item | None]:
        """A partition's first page with its total; (Bundle JSON, key to resume after)."""
        total = self.count(index, partition)
        rows, last = self.rows(index, partition, page)
        return bundle_json(self.bodies(rows), total), last

    def next_page(self, index: str, partition: str, page: int, after: Item) -> tuple[str, Item | None]:
        rows, last = self.rows(index, partition, page, after)
        return bundle_json(self.bodies(rows), None), last

    def unfiltered_page(self, page: int) -> str:
        """No criteria, no total: the first ``page`` rows of the period-start index and their bodies."""
        if not any("#" in bucket for bucket in self.directory):
            rows: list[Item] = []
            for bucket in self.directory:
                found, _ = self.rows(keys.PERIOD_START_INDEX, bucket, page - len(rows))
                rows.extend(found)
                if len(rows) == page:
                    break
            return bundle_json(self.bodies(rows), None)
        first = [b for b in self.directory if b.startswith(NO_START_FAMILIES)]
        rows = [
            row for row in self._merged(first, page) if row[keys.ATTR_SORT_KEY]["S"] < keys.NO_START + "#~"
        ]
        if len(rows) < page:  # too few without a start: every family may hold the next rows
            rows = self._merged(self.directory, page)
        return bundle_json(self.bodies(rows), None)

    def count(self, index: str, partition: str) -> int:
        return count_pages(self.client, self._query(index, partition))

    def rows(
        self, index: str, partition: str, limit: int, after: Item | None = None
    ) -> tuple[list[Item], Item | None]:
        request = self._query(index, partition) | {"Limit": limit}
        if after:
            request["ExclusiveStartKey"] = after
        response = self.client.query(**request)
        return response["Items"], response.get("LastEvaluatedKey")

    def bodies(self, rows: list[Item]) -> list[str]:
        ids = [row[keys.PARTITION_KEY]["S"] for row in rows]
        if not ids:
            return []
        pending: Any = {
            self.table: {
                "Keys": [keys.encounter_key(i) for i in ids],
                "ProjectionExpression": "#p, #r",
                "ExpressionAttributeNames": {"#p": keys.PARTITION_KEY, "#r": keys.ATTR_RESOURCE},
            }
        }
        found: dict[str, str] = {}
        while pending:
            response = self.client.batch_get_item(RequestItems=pending)
            for item in response["Responses"].get(self.table, []):
                found[item[keys.PARTITION_KEY]["S"]] = item[keys.ATTR_RESOURCE]["S"]
            pending = response.get("UnprocessedKeys") or None
        return [found[i] for i in ids if i in found]

    def _merged(self, partitions: list[str], page: int) -> list[Item]:
        pages = self._pool.map(lambda p: self.rows(keys.PERIOD_START_INDEX, p, page)[0], partitions)
        merged = heapq.merge(*pages, key=lambda item: str(item[keys.ATTR_SORT_KEY]["S"]))
        return list(itertools.islice(merged, page))

    def _query(self, index: str, partition: str) -> dict[str, Any]:
        partition_attribute, _ = keys.INDEXES[index]
        return {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": partition_attribute},
            "ExpressionAttributeValues": {":p": {"S": partition}},
        }


def count_pages(client: DynamoDBClient, request: dict[str, Any]) -> int:
    """A ``Select=COUNT`` Query of ``request``, every page of it."""
    request = request | {"Select": "COUNT"}
    total = 0
    while True:
        response = client.query(**request)
        total += response["Count"]
        if "LastEvaluatedKey" not in response:
            return total
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def bundle_json(bodies: list[str], total: int | None) -> str:
    counted = "" if total is None else f'"total":{total},'
    entries = ",".join(f'{{"resource":{body}}}' for body in bodies)
    return f'{{"resourceType":"Bundle","type":"searchset",{counted}"entry":[{entries}]}}'
