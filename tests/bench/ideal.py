"""The ideal floor for latency (issue 17): bare boto3 on a table of its own, whose one index is
KEYS_ONLY and holds, for each measured shape, one partition of exactly its matches in the API's
order (the oracle's answer, tests/oracle.py: by patient sorted by start, by patient and a token
value, by a date window, ...). So no key design can read less for the same answer.

- a first page with total: a ``Select=COUNT`` Query of the shape's partition, a Query with
  ``Limit`` = page, one BatchGetItem of the page's bodies, one after another;
- a next page: the page Query from ``ExclusiveStartKey`` (the last row shown), and the bodies;
- a page without total: the page Query and the bodies;
- read: one GetItem of the body.

Only the Encounters of the measured shapes are written (bodies and partition items): a Query's
cost is set by the rows it returns, not by what else the index holds, and the build stays short
at 200,000 Encounters.

DynamoDB Local reads the table item behind each index entry a Query reads (measured here: a
KEYS_ONLY count of 2,700 entries takes 5 Queries and 3x as long when the items hold a 2 KB body as
when they hold keys alone; DynamoDB itself reads the index's own entries). So where an ideal key
design's index is over the Encounter items themselves (one entry per Encounter: by patient, by
start), the partition items here carry the body too (``whole``); per-value partitions (US Core's
patient + value) are small link items, as in any design that indexes a repeating element.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from fhir_encounter.store.items import index_row_of
from tests.bench.floor import bundle_json, count_pages

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]
TABLE = "bench-ideal"
INDEX = "ideal-index"
BODY_SK = "body"
WRITERS = 4


class Ideal:
    def __init__(self, client: DynamoDBClient, table: str = TABLE) -> None:
        self.client = client
        self.table = table

    @classmethod
    def build(
        cls,
        client: DynamoDBClient,
        shapes: Mapping[str, Sequence[Mapping[str, Any]]],
        whole: Collection[str] = (),
        table: str = TABLE,
    ) -> Ideal:
        """A new table holding each shape's matches (in result order) as its own partition; the
        partition items of the ``whole`` shapes are as large as the Encounter items."""
        client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g", "s")
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": INDEX,
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "s", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        )
        bodies: dict[str, Item] = {}
        items: list[Item] = []
        for shape, matches in shapes.items():
            for position, resource in enumerate(matches):
                encounter_id = str(resource["id"])
                bodies[encounter_id] = {
                    "pk": {"S": encounter_id},
                    "sk": {"S": BODY_SK},
                    "resource": {"S": json.dumps(resource, separators=(",", ":"))},
                }
                # The API's default order is the sort key's; a shape in another order (none here
                # yet) keeps the oracle's by its position.
                order = index_row_of(resource).sort_key
                item = {
                    "pk": {"S": encounter_id},
                    "sk": {"S": f"in|{shape}"},
                    "g": {"S": shape},
                    "s": {"S": f"{order}|{position:09d}"},
                }
                if shape in whole:
                    item["resource"] = bodies[encounter_id]["resource"]
                items.append(item)
        batches = [
            [*bodies.values(), *items][start : start + 25] for start in range(0, len(bodies) + len(items), 25)
        ]

        def write(batch: list[Item]) -> None:
            pending: Any = {table: [{"PutRequest": {"Item": item}} for item in batch]}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None

        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, batches))
        return cls(client, table)

    def read(self, encounter_id: str) -> str:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": encounter_id}, "sk": {"S": BODY_SK}},
            ProjectionExpression="#r",
            ExpressionAttributeNames={"#r": "resource"},
        )["Item"]
        text: str = item["resource"]["S"]
        return text

    def first_page(self, shape: str, page: int) -> tuple[str, Item | None]:
        """The shape's first page with its total; (Bundle JSON, key to resume after)."""
        total = self.count(shape)
        rows, last = self.rows(shape, page)
        return bundle_json(self.bodies(rows), total), last

    def first_page_text(self, shape: str, page: int) -> str:
        return self.first_page(shape, page)[0]

    def next_page(self, shape: str, page: int, after: Item) -> str:
        rows, _ = self.rows(shape, page, after)
        return bundle_json(self.bodies(rows), None)

    def uncounted_page(self, shape: str, page: int) -> str:
        rows, _ = self.rows(shape, page)
        return bundle_json(self.bodies(rows), None)

    def count(self, shape: str) -> int:
        return count_pages(self.client, self._query(shape))

    def rows(self, shape: str, limit: int, after: Item | None = None) -> tuple[list[Item], Item | None]:
        request = self._query(shape) | {"Limit": limit}
        if after:
            request["ExclusiveStartKey"] = after
        response = self.client.query(**request)
        return response["Items"], response.get("LastEvaluatedKey")

    def bodies(self, rows: list[Item]) -> list[str]:
        ids = [row["pk"]["S"] for row in rows]
        if not ids:
            return []
        pending: Any = {
            self.table: {
                "Keys": [{"pk": {"S": i}, "sk": {"S": BODY_SK}} for i in ids],
                "ProjectionExpression": "pk, #r",
                "ExpressionAttributeNames": {"#r": "resource"},
            }
        }
        found: dict[str, str] = {}
        while pending:
            response = self.client.batch_get_item(RequestItems=pending)
            for item in response["Responses"].get(self.table, []):
                found[item["pk"]["S"]] = item["resource"]["S"]
            pending = response.get("UnprocessedKeys") or None
        return [found[i] for i in ids if i in found]

    def _query(self, shape: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "IndexName": INDEX,
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": shape}},
        }
