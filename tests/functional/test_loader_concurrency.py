"""A load writes its batches on several threads: on a moto table, what it stores is what a load one
batch at a time would store (first id wins, nothing lost to UnprocessedItems, idempotent reloads),
and the existing-item check is made only where the table may hold an Encounter."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from moto.core.botocore_stubber import MockRawResponse

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import LOAD_WORKERS
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.ingest.loader import BATCH_SIZE, Rejection, load_paths
from tests.support import TEST_TABLE, encounter, ids_of, search

COUNT = 2 * LOAD_WORKERS * BATCH_SIZE + 37  # more batches than the load keeps in flight


def resources(count: int = COUNT, status: str = "finished") -> list[dict[str, Any]]:
    return [
        encounter(
            f"e{n}",
            subject=f"Patient/p{n % 50}",
            start=f"{2015 + n % 10}-0{1 + n % 9}-15T10:00:00Z",
            appointments=[f"Appointment/a{n}"] if n % 3 == 0 else [],
            status=status,
        )
        for n in range(count)
    ]


def ndjson(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def stored(table: Any, encounter_id: str) -> dict[str, Any]:
    item: dict[str, Any] = table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key(encounter_id))["Item"]
    return item


def body(table: Any, encounter_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(stored(table, encounter_id)[keys.ATTR_RESOURCE]["S"])
    return resource


@pytest.fixture
def sent(
    table: Any,
) -> Iterator[Callable[[str, Callable[[AWSPreparedRequest], AWSResponse | None]], set[int]]]:
    """``sent(operation, responder)``: each request of ``operation`` that the table's client sends is
    answered by ``responder`` when it returns a response; returns the ids of the threads that sent."""
    registered = []

    def install(operation: str, responder: Callable[[AWSPreparedRequest], AWSResponse | None]) -> set[int]:
        threads: set[int] = set()

        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            threads.add(threading.get_ident())
            response = responder(request)
            if response is not None:  # moto sees the request too: make it one that changes nothing
                request.body = json.dumps({"RequestItems": {}}).encode()
            return response

        event = f"before-send.dynamodb.{operation}"
        table.meta.events.register_first(event, before_send)
        registered.append((event, before_send))
        return threads

    yield install
    for event, handler in registered:
        table.meta.events.unregister(event, handler)


def unprocessed(request: AWSPreparedRequest, items: list[Any]) -> AWSResponse:
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["x-amzn-RequestId"] = "test"
    raw = MockRawResponse(json.dumps({"UnprocessedItems": {TEST_TABLE: items}}))
    return AWSResponse(request.url, 200, headers, raw)


def test_items_left_unprocessed_under_concurrent_writers_are_all_written_in_the_end(
    table: Any, sent: Callable[..., set[int]], tmp_path: Path
) -> None:
    """DynamoDB takes a random part (at least half) of each request and returns the rest, on any
    thread; the writers send the rest again until it is taken."""
    backend = boto3.client("dynamodb")  # the same moto table, through a client nobody answers for
    chance = random.Random(11)
    lock = threading.Lock()
    answered: list[int] = []

    def take_some(request: AWSPreparedRequest) -> AWSResponse | None:
        assert isinstance(request.body, bytes)
        items = json.loads(request.body)["RequestItems"][TEST_TABLE]
        with lock:
            keep = chance.randrange((len(items) + 1) // 2, len(items) + 1)
        if keep == len(items):
            return None  # all taken
        with lock:
            answered.append(len(items) - keep)
        if keep:
            backend.batch_write_item(RequestItems={TEST_TABLE: items[:keep]})
        return unprocessed(request, items[keep:])

    records = resources()
    threads = sent("BatchWriteItem", take_some)
    report = load_paths(
        [ndjson(tmp_path / "all.ndjson", records)],
        EncounterWriter(table, TEST_TABLE, value_paths(), sleep=lambda _: None),
    )

    assert (report.written, report.rejected) == (COUNT, 0)
    assert len(threads) > 1  # the batches were written by several threads
    assert len(answered) > COUNT / BATCH_SIZE  # and DynamoDB left items over many times
    for record in records:
        assert {k: v for k, v in body(table, record["id"]).items() if k != "meta"} == record
    assert all(ids_of(search(f"appointment=a{n}")[2]) == [f"e{n}"] for n in range(0, COUNT, 3 * 17))


def test_the_first_of_an_id_wins_when_its_repeats_are_in_batches_written_by_other_threads(
    table: Any, tmp_path: Path
) -> None:
    records = resources()
    repeats = [{**records[n], "status": "cancelled"} for n in (0, 5, BATCH_SIZE + 1)]
    path = ndjson(tmp_path / "repeats.ndjson", [*records, *repeats, {**records[7], "status": "planned"}])
    rejections: list[Rejection] = []

    report = load_paths(
        [path], EncounterWriter(table, TEST_TABLE, value_paths()), on_reject=rejections.append
    )

    assert (report.written, report.rejected) == (COUNT, 4)
    assert [(r.where, r.encounter_id) for r in rejections] == [
        (f"{path}:{COUNT + 1}", "e0"),
        (f"{path}:{COUNT + 2}", "e5"),
        (f"{path}:{COUNT + 3}", f"e{BATCH_SIZE + 1}"),
        (f"{path}:{COUNT + 4}", "e7"),
    ]
    assert rejections[0].reason == f"duplicate id: first seen at {path}:1"
    assert [body(table, f"e{n}")["status"] for n in (0, 5, 7, BATCH_SIZE + 1)] == ["finished"] * 4


def test_a_concurrent_reload_keeps_the_versions_of_unchanged_encounters(table: Any, tmp_path: Path) -> None:
    records = resources()
    first = load_paths(
        [ndjson(tmp_path / "a.ndjson", records)], EncounterWriter(table, TEST_TABLE, value_paths())
    )
    before = {n: stored(table, f"e{n}") for n in (1, 2, BATCH_SIZE * 3 + 4)}
    changed = [{**record, "status": "cancelled"} if record["id"] == "e2" else record for record in records]

    report = load_paths(
        [ndjson(tmp_path / "b.ndjson", changed)], EncounterWriter(table, TEST_TABLE, value_paths())
    )

    assert first.written == COUNT
    assert (report.written, report.reindexed, report.unchanged) == (1, 0, COUNT - 1)
    assert stored(table, "e1") == before[1]
    assert stored(table, f"e{BATCH_SIZE * 3 + 4}") == before[BATCH_SIZE * 3 + 4]
    assert stored(table, "e2")[keys.ATTR_VERSION_ID] == {"S": "2"}


def test_a_load_into_a_table_without_encounters_reads_nothing_back(
    table: Any, sent: Callable[..., set[int]], tmp_path: Path
) -> None:
    reads = sent("BatchGetItem", lambda request: None)
    path = ndjson(tmp_path / "all.ndjson", resources())
    writer = EncounterWriter(table, TEST_TABLE, value_paths())

    first = load_paths([path], writer)
    assert (first.written, reads) == (COUNT, set())

    again = load_paths([path], writer)  # the same writer: it knows what it wrote, so it checks
    assert (again.written, again.unchanged) == (0, COUNT)
    assert reads != set()


def test_a_load_into_a_table_that_holds_encounters_checks_every_batch(
    table: Any, sent: Callable[..., set[int]], tmp_path: Path
) -> None:
    EncounterWriter(table, TEST_TABLE, value_paths()).write([encounter("e3", status="cancelled")])
    reads: list[int] = []
    lock = threading.Lock()

    def count(request: AWSPreparedRequest) -> None:
        with lock:
            reads.append(1)

    sent("BatchGetItem", count)
    report = load_paths(
        [ndjson(tmp_path / "all.ndjson", resources())], EncounterWriter(table, TEST_TABLE, value_paths())
    )

    assert len(reads) == -(-COUNT // BATCH_SIZE)
    assert (report.written, report.unchanged) == (COUNT, 0)
    assert stored(table, "e3")[keys.ATTR_VERSION_ID] == {"S": "2"}  # it was there: a new version
