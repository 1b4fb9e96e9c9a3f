"""Reads for read and search: GetItem, Query, BatchGetItem and the bucket directory, never Scan.

It executes a Plan (store.plan, made by search.planning) and knows nothing of FHIR semantics or HTTP.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from fhir_encounter.errors import StoreUnavailableError
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import (
    BATCH_GET_LIMIT,
    BUSY_TEXT,
    PARALLEL_QUERIES,
    ReadCost,
    UnprocessedError,
    batch_get,
    call,
)
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.store.items import row_attributes, row_from_item
from fhir_encounter.store.periods import Stream
from fhir_encounter.store.plan import Plan, Term, next_limit, stream_limit
from fhir_encounter.store.values import SYSTEMS_PREFIX, Systems

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Every date or unfiltered search needs the bucket directory: each container keeps it this long,
# so the item is never a hot key. An Encounter in a period-start partition that the cached
# directory does not list yet (a duration class and UTC year, or a shard, that no Encounter had
# used before: store/periods.py), or outside the span it records for a settled year, is found by
# those searches within this time; the others at once.
BUCKET_TTL_SECONDS = 10.0
# Choosing the term of a value-index plan to read: each candidate's first rows of each partition
# (terms of more partitions are not probed), and how many rows are checked by lookups at once.
PROBE_ROWS = 32
PROBE_PARTITIONS = 8
FIRST_CHECK_ROWS = 16


class _Directory(NamedTuple):
    """What a container keeps of the bucket directory item for BUCKET_TTL_SECONDS."""

    read_at: float
    buckets: list[str]
    spans: dict[str, tuple[str, str]]
    paths: frozenset[str] | None
    systems: Systems


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
        pool: Executor | None = None,
    ) -> None:
        self._client = client
        self._pool = pool or ThreadPoolExecutor(PARALLEL_QUERIES, thread_name_prefix="query")
        # Its own thread: queued behind a counting walk's read-ahead on the pool, a page's bodies
        # would wait for the count they are meant to overlap.
        self._bodies = ThreadPoolExecutor(1, thread_name_prefix="bodies")
        self._table = table_name
        self._bucket_ttl = bucket_ttl
        self._clock = clock
        self._bucket_cache: _Directory | None = None

    def find(self, encounter_id: str, cost: ReadCost | None = None) -> StoredEncounter | None:
        """The stored Encounter or None: one GetItem by key either way."""
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
            ReturnConsumedCapacity="TOTAL",
        )
        if cost is not None:
            cost.record_lookup(dict(response), 1)
        item = response.get("Item")
        if item is None:
            return None
        subject = item.get(keys.ATTR_SUBJECT)
        return StoredEncounter(
            item[keys.ATTR_RESOURCE]["S"],
            item[keys.ATTR_VERSION_ID]["S"],
            item[keys.ATTR_LAST_UPDATED]["S"],
            subject["S"] if subject else None,
        )

    def rows(self, plan: Plan, cost: ReadCost) -> Iterator[IndexRow]:
        """The plan's index rows in sort-key order, each Encounter once, after ``plan.after``.

        Lazy: a partition is read only as far as the merge needs it. The Queries of several
        partitions run at once on the pool; when nothing limits the walk (it counts every match)
        each partition's next page and the next partitions are read ahead.
        """
        if plan.empty:
            return iter(())
        rows: Iterator[IndexRow]
        if plan.terms:
            rows = self._linked_rows(plan, cost)
        elif plan.index == keys.TABLE:
            items = self._batch_get([keys.encounter_key(i) for i in plan.partitions], None, cost)
            found = [row_from_item(item, ordered=bool(plan.order)) for item in items.values()]
            rows = iter(sorted(found, key=lambda row: row.sort_key, reverse=plan.descending))
        else:
            directory, spans = self._bucket_directory(cost) if plan.walks_buckets else ([], {})
            rows = self._walk(plan, plan.index, plan.streams(directory, spans), cost)
            if plan.index == keys.LINK_INDEX:
                rows = _distinct(rows)
        return rows if plan.after is None else (row for row in rows if plan.beyond(row.sort_key))

    def count(self, plan: Plan, cost: ReadCost) -> Callable[[], int]:
        """Starts counting the rows of the plan's partitions (Select=COUNT, for a plan whose
        partitions decide the match); the function returned waits for the sum. An empty plan
        counts 0 without a Query."""
        if plan.empty:
            return lambda: 0
        index = plan.terms[0].index if plan.terms else plan.index
        requests = [{**self._query(index, stream), "Select": "COUNT"} for stream in plan.streams()]
        futures = [self._pool.submit(_count, self._client, request, cost) for request in requests]
        return lambda: sum(future.result() for future in futures)

    def indexed_paths(self, cost: ReadCost) -> frozenset[str] | None:
        """The value paths every Encounter in the table is linked under (the bucket directory's,
        kept BUCKET_TTL_SECONDS); None when the table has no directory, so holds no Encounter."""
        return self._directory(cost).paths

    def value_systems(self, cost: ReadCost) -> Systems:
        """The code systems the table has linked at each namespace (the bucket directory's, kept
        BUCKET_TTL_SECONDS): a code of any system is read under each (store.values)."""
        return self._directory(cost).systems

    def with_bodies(self, rows: Iterator[IndexRow], cost: ReadCost) -> Iterator[IndexRow]:
        """The rows, each carrying its resource JSON: read a batch at a time (growing from
        FIRST_CHECK_ROWS to BATCH_GET_LIMIT), as the caller asks for more. An Encounter deleted
        meanwhile is left out."""
        size = FIRST_CHECK_ROWS
        while chunk := list(itertools.islice(rows, size)):
            missing = [keys.encounter_key(row.id) for row in chunk if row.resource is None]
            items = self._batch_get(missing, [keys.ATTR_RESOURCE], cost) if missing else {}
            for row in chunk:
                text = row.resource or items.get(row.id, {}).get(keys.ATTR_RESOURCE, {}).get("S")
                if text is not None:
                    yield replace(row, resource=text)
            size = min(size * 2, BATCH_GET_LIMIT)

    def resources(self, rows: list[IndexRow], cost: ReadCost) -> list[tuple[str, str]]:
        """(id, resource JSON) of the page's rows in their order; reads only the bodies that the
        rows do not carry. An Encounter deleted meanwhile is left out."""
        missing = [keys.encounter_key(row.id) for row in rows if row.resource is None]
        items = self._batch_get(missing, [keys.ATTR_RESOURCE], cost) if missing else {}
        found = {i: item[keys.ATTR_RESOURCE]["S"] for i, item in items.items()}
        return [(row.id, text) for row in rows if (text := row.resource or found.get(row.id)) is not None]

    def start_resources(self, rows: list[IndexRow], cost: ReadCost) -> Callable[[], list[tuple[str, str]]]:
        """Starts :meth:`resources` on its own thread (while a count goes on); the function
        returned waits for them and raises what they raised."""
        return self._bodies.submit(self.resources, rows, cost).result

    def _batch_get(
        self, item_keys: list[keys.Item], attributes: list[str] | None, cost: ReadCost
    ) -> dict[str, Any]:
        try:
            return batch_get(self._client, self._table, item_keys, attributes=attributes, cost=cost)
        except UnprocessedError:
            raise StoreUnavailableError(BUSY_TEXT) from None

    def _bucket_directory(self, cost: ReadCost) -> tuple[list[str], dict[str, tuple[str, str]]]:
        """The period-start partitions in use and their spans of sort keys (kept BUCKET_TTL_SECONDS)."""
        directory = self._directory(cost)
        return directory.buckets, directory.spans

    def _directory(self, cost: ReadCost) -> _Directory:
        cached = self._bucket_cache
        if cached is not None and self._clock() - cached.read_at < self._bucket_ttl:
            return cached
        response = call(
            self._client.get_item,
            TableName=self._table,
            Key=keys.bucket_directory_key(),
            ReturnConsumedCapacity="TOTAL",
        )
        cost.record_lookup(dict(response), 1)
        item = response.get("Item")
        buckets = sorted((item or {}).get(keys.ATTR_BUCKETS, {}).get("SS", []))
        spans = keys.directory_spans(item or {})
        paths = None if item is None else frozenset(item.get(keys.ATTR_VALUE_PATHS, {}).get("SS", []))
        systems = {
            name[len(SYSTEMS_PREFIX) :]: frozenset(value["SS"])
            for name, value in (item or {}).items()
            if name.startswith(SYSTEMS_PREFIX)
        }
        self._bucket_cache = _Directory(self._clock(), buckets, spans, paths, systems)
        return self._bucket_cache

    def _linked_rows(self, plan: Plan, cost: ReadCost) -> Iterator[IndexRow]:
        """A value-index plan's rows: the driving term's partitions merged in sort-key order, each
        Encounter once, each row kept when the other terms' link items are found for it."""
        driver = self._driver(plan, cost)
        others = [term for term in plan.terms if term is not driver]
        if driver is None:  # the period walk: each Encounter once, in sort-key order
            walk = replace(plan, index=keys.PERIOD_START_INDEX, terms=())
            rows = self._walk(plan, walk.index, walk.streams(*self._bucket_directory(cost)), cost)
        else:
            streams = [Stream(partition, plan.low, plan.high) for partition in driver.partitions]
            # A link item (value or appointment) is one row shape in every index: the value index's.
            rows = _distinct(self._walk(plan, driver.index, streams, cost, rows_as=keys.VALUE_INDEX))
        return self._checked(rows, others, plan.page_hint, cost) if others else rows

    def _walk(
        self, plan: Plan, index: str, streams: list[Stream], cost: ReadCost, rows_as: str | None = None
    ) -> Iterator[IndexRow]:
        """The rows of ``streams`` of ``index`` merged in the plan's direction, each carrying the
        fields the plan matches (as ``rows_as``'s rows carry them, when given). A page hint shares
        out the first Query Limits; without one (counting every match) partitions are read ahead."""
        eager = plan.page_hint is None
        limit = stream_limit(plan.page_hint, len(streams))
        projection = _projection(row_attributes(rows_as or index, plan.fields))

        def reader(stream: Stream) -> _PartitionRows:
            request = _with_projection(self._query(index, stream, limit, plan.descending), projection)
            return _PartitionRows(self._pool, self._client, request, eager, cost)

        ahead = PARALLEL_QUERIES if eager else 0
        return _merge(streams, reader, ahead=ahead, descending=plan.descending)

    def _driver(self, plan: Plan, cost: ReadCost) -> Term | None:
        """The term to read: of those that may drive, the one found smallest (all of its
        partitions ended within PROBE_ROWS), else the sparsest (its probes reached furthest).
        None, for the period walk: when the plan may walk and no term ended within its probe
        (dates then bound the walk to about their matches, while every term has more rows)."""
        candidates = [term for term in plan.terms if term.drives]
        if len(candidates) == 1 and not plan.may_walk:
            return candidates[0]
        probed = [term for term in candidates if len(term.partitions) <= PROBE_PARTITIONS]
        if not probed:
            return None if plan.may_walk else min(candidates, key=lambda term: len(term.partitions))
        projection = _projection((keys.PARTITION_KEY, keys.ATTR_SORT_KEY))
        futures = {
            id(term): [
                self._pool.submit(
                    _query,
                    self._client,
                    _with_projection(
                        self._query(term.index, Stream(p, plan.low, plan.high), PROBE_ROWS, plan.descending),
                        projection,
                    ),
                )
                for p in term.partitions
            ]
            for term in probed
        }
        ended: list[tuple[int, int, Term]] = []
        reaching: list[tuple[str, int, Term]] = []
        for order, term in enumerate(probed):
            responses = [future.result() for future in futures[id(term)]]
            for response in responses:
                cost.record_query(response)
            if all("LastEvaluatedKey" not in response for response in responses):
                ended.append((sum(response.get("Count", 0) for response in responses), order, term))
            else:  # how far the probe reached in the walk's direction
                last = [r["Items"][-1][keys.ATTR_SORT_KEY]["S"] for r in responses if r.get("Items")]
                if plan.descending:
                    reaching.append((_inverted(max(last, default=keys.SORT_KEY_END)), -order, term))
                else:
                    reaching.append((min(last, default=""), -order, term))
        if ended:
            return min(ended, key=lambda found: found[:2])[2]
        if plan.may_walk:
            return None
        return max(reaching, key=lambda found: found[:2])[2]

    def _checked(
        self, rows: Iterator[IndexRow], terms: list[Term], page_hint: int | None, cost: ReadCost
    ) -> Iterator[IndexRow]:
        """The rows for which every term has a link item (a BatchGetItem of the lookup keys, a
        batch of rows at a time, growing as the caller asks for more)."""
        per_row = max(1, sum(len(term.lookups) for term in terms))
        most = max(1, 4 * BATCH_GET_LIMIT // per_row)
        size = min(page_hint or FIRST_CHECK_ROWS, most)
        while chunk := list(itertools.islice(rows, size)):
            lookups = [
                {keys.PARTITION_KEY: {"S": row.id}, keys.SORT_KEY: {"S": lookup}}
                for row in chunk
                for term in terms
                for lookup in term.lookups
            ]
            try:
                found = batch_get(
                    self._client,
                    self._table,
                    lookups,
                    attributes=[keys.SORT_KEY],
                    cost=cost,
                    key_of=_item_key,
                )
            except UnprocessedError:
                raise StoreUnavailableError(BUSY_TEXT) from None
            for row in chunk:
                if all(any(f"{row.id}\n{lookup}" in found for lookup in term.lookups) for term in terms):
                    yield row
            size = min(size * 2, most)

    def _query(
        self, index: str, stream: Stream, limit: int | None = None, descending: bool = False
    ) -> dict[str, Any]:
        partition_attr, sort_attr = keys.INDEXES[index]
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#p": partition_attr, "#s": sort_attr},
            "ExpressionAttributeValues": {
                ":p": {"S": stream.partition},
                ":lo": {"S": stream.low},
                ":hi": {"S": stream.high},
            },
            "ReturnConsumedCapacity": "TOTAL",
        }
        if limit:
            request["Limit"] = limit
        if descending:
            request["ScanIndexForward"] = False
        return request


class _PartitionRows:
    """One partition's rows in sort-key order, a Query page at a time on the pool. The first
    Query is sent when the reader is made; when ``eager``, each next page as soon as the last
    arrives, else when the rows run out."""

    def __init__(
        self, pool: Executor, client: DynamoDBClient, request: dict[str, Any], eager: bool, cost: ReadCost
    ) -> None:
        self._pool = pool
        self._client = client
        self._eager = eager
        self._cost = cost
        self._items: Iterator[keys.Item] = iter(())
        self._next: dict[str, Any] | None = None
        self._sent = request
        self._future: Future[Any] | None = self._send(request)

    def __iter__(self) -> Iterator[IndexRow]:
        return self

    def __next__(self) -> IndexRow:
        while True:
            item = next(self._items, None)
            if item is not None:
                return row_from_item(item)
            if self._future is None:
                if self._next is None:
                    raise StopIteration
                self._future, self._next = self._send(self._next), None
            response = self._future.result()
            self._future = None
            self._cost.record_query(response)
            if last_key := response.get("LastEvaluatedKey"):
                request = {**self._sent, "ExclusiveStartKey": last_key}
                if "Limit" in request:
                    request["Limit"] = next_limit(request["Limit"])
                if self._eager:
                    self._future = self._send(request)
                else:
                    self._next = request
            self._items = iter(response.get("Items", ()))

    def close(self) -> None:
        """A page still being read when the walk ends is recorded when it arrives."""
        future, self._future = self._future, None
        if future is not None and not future.cancel():
            future.add_done_callback(self._record_late)

    def _send(self, request: dict[str, Any]) -> Future[Any]:
        self._sent = request
        return self._pool.submit(_query, self._client, request)

    def _record_late(self, future: Future[Any]) -> None:
        if future.exception() is None:
            self._cost.record_query(future.result())


def _projection(attributes: tuple[str, ...]) -> dict[str, Any]:
    """A ProjectionExpression of ``attributes``: a row carries only what its matching needs, and
    botocore parses no more (its parsing of each attribute was most of a search's client CPU)."""
    names = {f"#a{n:02d}": name for n, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def _with_projection(request: dict[str, Any], projection: dict[str, Any]) -> dict[str, Any]:
    names = {**request["ExpressionAttributeNames"], **projection["ExpressionAttributeNames"]}
    return {**request, **projection, "ExpressionAttributeNames": names}


def _query(client: DynamoDBClient, request: dict[str, Any]) -> dict[str, Any]:
    return dict(call(client.query, **request))


def _count(client: DynamoDBClient, request: dict[str, Any], cost: ReadCost) -> int:
    counted = 0
    while True:
        response = call(client.query, **request)
        cost.record_query(response)
        counted += response.get("Count", 0)
        if not (last_key := response.get("LastEvaluatedKey")):
            return counted
        request = {**request, "ExclusiveStartKey": last_key}


def _merge(
    streams: list[Stream],
    open_stream: Callable[[Stream], _PartitionRows],
    *,
    ahead: int,
    descending: bool = False,
) -> Iterator[IndexRow]:
    """The rows of every stream in sort-key order (``streams`` ordered by ``low``), or from the
    highest key down (``streams`` ordered by ``high``, highest first) when ``descending``.

    A stream is opened (its first Query sent) once the merge may need it: when its first possible
    key is not past the next row in hand. Streams needed together are opened together, so that
    their Queries run at once; ``ahead`` more are kept open beyond that when everything will be read.
    """
    pending = deque(streams)
    heap: list[tuple[str, int, IndexRow, _PartitionRows]] = []
    opened: list[_PartitionRows] = []
    order = itertools.count()
    place: Callable[[str], str] = _inverted if descending else _same

    def first_key(stream: Stream) -> str:
        return place(stream.high if descending else stream.low)

    def open_until(key: str) -> None:
        batch: list[_PartitionRows] = []
        while pending and (first_key(pending[0]) <= key or len(heap) + len(batch) < ahead):
            batch.append(open_stream(pending.popleft()))
        opened.extend(batch)
        for reader in batch:
            if (row := next(reader, None)) is not None:
                heapq.heappush(heap, (place(row.sort_key), next(order), row, reader))

    try:
        while heap or pending:
            if not heap:
                open_until(first_key(pending[0]))
                continue
            if pending and first_key(pending[0]) <= heap[0][0]:
                open_until(heap[0][0])
                continue
            _, _, row, reader = heap[0]
            yield row
            if (following := next(reader, None)) is not None:
                heapq.heapreplace(heap, (place(following.sort_key), next(order), following, reader))
            else:
                heapq.heappop(heap)
    finally:
        for reader in opened:
            reader.close()


def _same(key: str) -> str:
    return key


def _inverted(key: str) -> str:
    """A text whose order is the reverse of the keys' order (for a min-heap read from the top).
    Every code point maps below 0x110000 - c; a key that is a prefix of another sorts after it,
    which the terminator (above every mapped code point) gives."""
    return "".join(chr(0x10FFFF - ord(c)) for c in key) + "\U0010ffff"


def _item_key(item: keys.Item) -> str:
    return f"{item[keys.PARTITION_KEY]['S']}\n{item[keys.SORT_KEY]['S']}"


def _distinct(rows: Iterator[IndexRow]) -> Iterator[IndexRow]:
    """An Encounter found through two of its appointments counts once."""
    previous = None
    for row in rows:
        if row.sort_key != previous:
            previous = row.sort_key
            yield row
