"""DynamoDB access for read and search: GetItem, BatchGetItem and Query only (never Scan).

Key design: see ``store.schema``. Which index serves a search:

1. ``_id`` given: BatchGetItem of those ids (no index); the other criteria are checked on the items.
2. else ``appointment``: ``appointment-index``, one partition per appointment in the smallest OR-set.
3. else ``patient`` / ``subject``: ``subject-index``, one partition per reference in the smallest
   OR-set (a bare subject id is ``Patient/<id>`` and ``Group/<id>``).
4. else (``date`` or nothing): ``period-start-index``, walking the month buckets in order.

Each index walk is ordered by ``sort_key`` (period start, then id); several partitions are
merged in that order and an Encounter seen twice (two of its appointments) counts once. The date
criteria bound the sort key range and the buckets; ``search.matches`` decides every row.

Paging: a first request (or a bare ``_offset``) walks the index rows, which are small projections,
not resources, counting matches to give ``total`` and skipping to the offset; then only the page's
Encounters are fetched with BatchGetItem. A cursor request starts the walk right after the
cursor's sort key and stops after one page, reusing the cursor's total.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from fhir_encounter.config import get_settings
from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, format_instant
from fhir_encounter.observability import logger
from fhir_encounter.outcome import NotFoundError, StoreUnavailableError
from fhir_encounter.search import IndexRow, SearchQuery, matches, start_bounds
from fhir_encounter.store import schema
from fhir_encounter.store.cursor import Cursor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_GET_LIMIT = 100
BATCH_GET_ATTEMPTS = 5
# Throttling and server-side faults: the client should retry later (503), not see an error.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
UNKNOWN_TEXT = "Unknown Encounter resource '{id}'"
# The bucket directory is one item that every date or unfiltered search needs: each container
# keeps it this long, so that item is never a hot key. A new month shows up within this time;
# new Encounters in known months show up at once.
BUCKET_TTL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class StoredEncounter:
    resource_json: str
    version_id: str
    last_updated: str


@dataclass(slots=True)
class SearchPage:
    resources: list[tuple[str, str]]  # (id, resource JSON text), in search order
    total: int | None  # None: _total=none
    has_more: bool  # matches follow this page
    next_cursor: Cursor | None
    index: str
    read_units: float = 0.0


@dataclass(slots=True)
class _Walk:
    """Counters for one search, reported in logs and metrics."""

    read_units: float = 0.0
    rows: int = 0
    queries: int = 0
    count_stopped: bool = False


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    settings = get_settings()
    # Worst case 3 attempts x (1 s + 3 s) stays inside the function's 15 s timeout.
    config = Config(
        connect_timeout=1,
        read_timeout=3,
        retries={"max_attempts": 3, "mode": "standard"},
        tcp_keepalive=True,
    )
    client: DynamoDBClient = boto3.client(
        "dynamodb", endpoint_url=settings.dynamodb_endpoint_url, config=config
    )
    return client


class EncounterRepository:
    def __init__(
        self, client: DynamoDBClient, table_name: str, *, bucket_ttl: float = BUCKET_TTL_SECONDS
    ) -> None:
        self._client = client
        self._table = table_name
        self._bucket_ttl = bucket_ttl
        self._bucket_cache: tuple[float, list[str]] | None = None

    # ---- read -------------------------------------------------------------------------------
    def get(self, encounter_id: str) -> StoredEncounter:
        response = _call(
            self._client.get_item,
            TableName=self._table,
            Key={schema.PARTITION_KEY: {"S": encounter_id}, schema.SORT_KEY: {"S": schema.ENCOUNTER_SK}},
            ProjectionExpression="#r, #v, #u",
            ExpressionAttributeNames={
                "#r": schema.ATTR_RESOURCE,
                "#v": schema.ATTR_VERSION_ID,
                "#u": schema.ATTR_LAST_UPDATED,
            },
        )
        item = response.get("Item")
        if item is None:
            raise NotFoundError(UNKNOWN_TEXT.format(id=encounter_id))
        return StoredEncounter(
            item[schema.ATTR_RESOURCE]["S"],
            item[schema.ATTR_VERSION_ID]["S"],
            item[schema.ATTR_LAST_UPDATED]["S"],
        )

    # ---- search -----------------------------------------------------------------------------
    def search(
        self, query: SearchQuery, now: int, cursor: Cursor | None = None, count_deadline: float | None = None
    ) -> SearchPage:
        """One page of matches. ``count_deadline`` (time.monotonic) bounds the counting of ``total``:
        once the page is complete and the deadline has passed, the count stops and the page is
        answered without a total (as FHIR allows), its next link continuing as _total=none does."""
        walk = _Walk()
        if query.ids:
            page = self._search_by_id(query, now, walk)
        else:
            index, rows = self._index_rows(query, now, cursor, walk)
            page = self._page_from_rows(query, now, cursor, rows, index, walk, count_deadline)
        page.read_units = walk.read_units
        logger.info(
            "search served",
            extra={
                "index": page.index,
                "rows_read": walk.rows,
                "queries": walk.queries,
                "total": page.total,
                "returned": len(page.resources),
                "read_units": round(walk.read_units, 2),
                "resumed": cursor is not None,
                "count_stopped": walk.count_stopped,
            },
        )
        return page

    def _search_by_id(self, query: SearchQuery, now: int, walk: _Walk) -> SearchPage:
        wanted = sorted(frozenset.intersection(*query.ids))
        items = self._batch_get(wanted, None, walk)
        rows = sorted(
            (row for row in map(schema.row_from_item, items.values()) if matches(row, query, now)),
            key=lambda row: row.sort_key,
        )
        page_rows = rows[query.offset : query.offset + query.count]
        has_more = query.offset + len(page_rows) < len(rows)
        resources = [(row.id, items[row.id][schema.ATTR_RESOURCE]["S"]) for row in page_rows]
        return SearchPage(resources, len(rows), has_more, None, "table")

    def _page_from_rows(
        self,
        query: SearchQuery,
        now: int,
        cursor: Cursor | None,
        rows: Iterator[IndexRow],
        index: str,
        walk: _Walk,
        count_deadline: float | None,
    ) -> SearchPage:
        matching = (row for row in rows if matches(row, query, now))
        page_rows: list[IndexRow] = []
        total: int | None
        if cursor is None and query.counts_total:  # walk every match: count, keep the page
            counted = 0
            end = query.offset + query.count
            for position, row in enumerate(matching):
                if position >= end and count_deadline is not None and time.monotonic() > count_deadline:
                    walk.count_stopped = True  # out of time; this row is a match past the page
                    break
                if query.offset <= position < end:
                    page_rows.append(row)
                counted = position + 1
            total = None if walk.count_stopped else counted
            has_more = walk.count_stopped or query.offset + len(page_rows) < counted
        else:  # a cursor (total known or not wanted) or _total=none: stop after the page
            total = cursor.total if cursor else None
            has_more = False
            for row in itertools.islice(matching, 0 if cursor else query.offset, None):
                if len(page_rows) == query.count:
                    has_more = True  # one match past the page: only read when the total is unknown
                    break
                page_rows.append(row)
                if total is not None and len(page_rows) == query.count:
                    break
            if total is not None:
                has_more = query.offset + len(page_rows) < total
        next_cursor = None
        if page_rows and has_more:
            next_cursor = Cursor(page_rows[-1].sort_key, query.offset + len(page_rows), total)
        items = self._batch_get([row.id for row in page_rows], [schema.ATTR_RESOURCE], walk)
        resources = [
            (row.id, items[row.id][schema.ATTR_RESOURCE]["S"]) for row in page_rows if row.id in items
        ]
        return SearchPage(resources, total, has_more, next_cursor, index)

    def _index_rows(
        self, query: SearchQuery, now: int, cursor: Cursor | None, walk: _Walk
    ) -> tuple[str, Iterator[IndexRow]]:
        bounds = start_bounds(query, now)
        low, high = _sort_key_range(bounds)
        after = cursor.after_sort_key if cursor else None
        if after is not None:
            low = max(low, after)
        # Without a count to make, read about a page (and one look-ahead row) per Query.
        page_hint = None
        if cursor:
            page_hint = query.count + 1
        elif not query.counts_total:
            page_hint = query.offset + query.count + 1
        if query.appointments:
            partitions = min(query.appointments, key=len)
            index = schema.APPOINTMENT_INDEX
        elif query.subject_sets:
            partitions = min(query.subject_sets, key=len)
            index = schema.SUBJECT_INDEX
        else:
            buckets = self._buckets(bounds, after, walk)
            streams = (self._query(schema.PERIOD_START_INDEX, b, low, high, page_hint, walk) for b in buckets)
            return schema.PERIOD_START_INDEX, _after(_chain(streams), after)
        merged = heapq.merge(
            *(self._query(index, value, low, high, page_hint, walk) for value in sorted(partitions)),
            key=lambda row: row.sort_key,
        )
        return index, _after(_distinct(merged), after)

    def _buckets(self, bounds: DateRange, after: str | None, walk: _Walk) -> list[str]:
        buckets = self._bucket_directory(walk)
        first = schema.NO_START_BUCKET if bounds.low == NEG_INFINITY else format_instant(bounds.low)[:7]
        last = "9999-99" if bounds.high == POS_INFINITY else format_instant(bounds.high)[:7]
        if after is not None:
            first = max(first, schema.bucket_of(after))
        return [bucket for bucket in buckets if first <= bucket <= last]

    def _bucket_directory(self, walk: _Walk) -> list[str]:
        cached = self._bucket_cache
        if cached is not None and time.monotonic() - cached[0] < self._bucket_ttl:
            return cached[1]
        response = _call(
            self._client.get_item,
            TableName=self._table,
            Key={schema.PARTITION_KEY: {"S": schema.META_PK}, schema.SORT_KEY: {"S": schema.BUCKETS_SK}},
            ReturnConsumedCapacity="TOTAL",
        )
        walk.read_units += response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)
        buckets = sorted(response.get("Item", {}).get(schema.ATTR_BUCKETS, {}).get("SS", []))
        self._bucket_cache = (time.monotonic(), buckets)
        return buckets

    def _query(
        self, index: str, partition: str, low: str, high: str, page_hint: int | None, walk: _Walk
    ) -> Iterator[IndexRow]:
        if low > high:  # dates that contradict each other: nothing matches (BETWEEN would be a 400)
            return
        partition_attr, sort_attr = schema.INDEXES[index]
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#p": partition_attr, "#s": sort_attr},
            "ExpressionAttributeValues": {":p": {"S": partition}, ":lo": {"S": low}, ":hi": {"S": high}},
            "ReturnConsumedCapacity": "TOTAL",
        }
        if page_hint:
            request["Limit"] = page_hint
        while True:
            response = _call(self._client.query, **request)
            walk.queries += 1
            walk.read_units += response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)
            for item in response.get("Items", []):
                walk.rows += 1
                yield schema.row_from_item(item)
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key
            if page_hint:  # the filter may drop rows: widen the next read
                request["Limit"] = min(request["Limit"] * 2, 1000)

    def _batch_get(
        self, ids: list[str], attributes: list[str] | None, walk: _Walk
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            keys = [
                {schema.PARTITION_KEY: {"S": i}, schema.SORT_KEY: {"S": schema.ENCOUNTER_SK}}
                for i in ids[start : start + BATCH_GET_LIMIT]
            ]
            request: dict[str, Any] = {"Keys": keys}
            if attributes:
                names = {f"#a{n}": name for n, name in enumerate([schema.PARTITION_KEY, *attributes])}
                request["ProjectionExpression"] = ", ".join(names)
                request["ExpressionAttributeNames"] = names
            pending: Any = {self._table: request}
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = _call(
                    self._client.batch_get_item, RequestItems=pending, ReturnConsumedCapacity="TOTAL"
                )
                walk.read_units += sum(
                    c.get("CapacityUnits", 0.0) for c in response.get("ConsumedCapacity", [])
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    found[item[schema.PARTITION_KEY]["S"]] = item
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.0))  # noqa: S311
            else:
                raise StoreUnavailableError("The Encounter store is busy; retry the request later")
        return found


def _sort_key_range(bounds: DateRange) -> tuple[str, str]:
    low = schema.NO_START if bounds.low == NEG_INFINITY else format_instant(bounds.low)
    high = "~" if bounds.high == POS_INFINITY else format_instant(bounds.high) + "#~"
    return low, high


def _chain(streams: Iterable[Iterator[IndexRow]]) -> Iterator[IndexRow]:
    for stream in streams:
        yield from stream


def _distinct(rows: Iterator[IndexRow]) -> Iterator[IndexRow]:
    previous = None
    for row in rows:
        if row.sort_key != previous:
            previous = row.sort_key
            yield row


def _after(rows: Iterator[IndexRow], after: str | None) -> Iterator[IndexRow]:
    return rows if after is None else (row for row in rows if row.sort_key > after)


def _call[T](operation: Callable[..., T], **kwargs: Any) -> T:
    """One DynamoDB call, with its failures mapped to the error family (no AWS text leaks)."""
    try:
        return operation(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_ERROR_CODES or status >= 500:
            logger.warning("dynamodb transient failure", extra={"error_code": code})
            raise StoreUnavailableError("The Encounter store is busy; retry the request later") from None
        raise
    except (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError) as error:
        logger.warning("dynamodb unreachable", extra={"error_type": type(error).__name__})
        raise StoreUnavailableError("The Encounter store did not answer in time; retry later") from None
