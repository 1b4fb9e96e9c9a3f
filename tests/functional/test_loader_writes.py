"""What a load writes on a moto table: reindexing of items stored under another INDEX_VERSION,
throttling left to botocore's retries, and unprocessed keys and items retried by the batch helpers
(a whole load that meets UnprocessedItems on every batch loses nothing)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import UNPROCESSED_ATTEMPTS, UnprocessedError, dynamodb_client
from fhir_encounter.store.fields import INDEX_VERSION, STATUS
from fhir_encounter.store.values import index_version
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.ingest.loader import LoadReport, load_paths, load_resources
from fhir_encounter_tools.tables import tools_client
from tests.support import TEST_TABLE, encounter, ids_of, search

CURRENT_VERSION = index_version(INDEX_VERSION, value_paths())  # what the writer stores

STATUS_ATTRIBUTE = STATUS.attributes[0]
RESOURCE = encounter(
    "e1",
    subject="Patient/p1",
    start="2021-06-15T10:00:00Z",
    end="2021-06-15T11:00:00Z",
    appointments=["Appointment/a1"],
)
NOTHING = json.dumps({"RequestItems": {}}).encode()  # a batch request with no keys or items
Responder = Callable[[AWSPreparedRequest, int], AWSResponse | None]


def clock(*instants: str) -> Callable[[], str]:
    """A writer clock that gives each instant in turn (one per batch written)."""
    return iter(instants).__next__


def stored_item(table: Any, encounter_id: str) -> dict[str, Any]:
    item: dict[str, Any] = table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key(encounter_id))["Item"]
    return item


def load(writer: EncounterWriter, *resources: dict[str, Any]) -> LoadReport:
    return load_resources([json.loads(json.dumps(r)) for r in resources], writer, source="test")


def make_old(table: Any, encounter_id: str) -> None:
    """The item as a writer of another INDEX_VERSION left it: another version, no status attribute."""
    table.update_item(
        TableName=TEST_TABLE,
        Key=keys.encounter_key(encounter_id),
        UpdateExpression="SET #v = :old REMOVE #s",
        ExpressionAttributeNames={"#v": keys.ATTR_INDEX_VERSION, "#s": STATUS_ATTRIBUTE},
        ExpressionAttributeValues={":old": {"S": "old"}},
    )


# ---- reindexing ---------------------------------------------------------------------------------


def test_a_reload_rewrites_an_item_of_another_index_version_keeping_its_version(table: Any) -> None:
    writer = EncounterWriter(
        table, TEST_TABLE, value_paths(), clock=clock("2024-01-01T00:00:00Z", "2025-05-05T00:00:00Z")
    )
    assert load(writer, RESOURCE).written == 1
    before = stored_item(table, "e1")
    make_old(table, "e1")
    assert STATUS_ATTRIBUTE not in stored_item(table, "e1")
    # matched on the item's own attributes (an _id search): the status filter needs the attribute
    assert ids_of(search("_id=e1&status=finished")[2]) == []

    report = load(writer, RESOURCE)

    assert (report.written, report.reindexed, report.unchanged) == (0, 1, 0)
    after = stored_item(table, "e1")
    assert after[keys.ATTR_INDEX_VERSION] == {"S": CURRENT_VERSION}
    assert after[STATUS_ATTRIBUTE] == {"S": "finished"}
    assert after[keys.ATTR_VERSION_ID] == before[keys.ATTR_VERSION_ID] == {"S": "1"}
    assert after[keys.ATTR_LAST_UPDATED] == before[keys.ATTR_LAST_UPDATED] == {"S": "2024-01-01T00:00:00Z"}
    assert json.loads(after[keys.ATTR_RESOURCE]["S"])["meta"] == {
        "versionId": "1",
        "lastUpdated": "2024-01-01T00:00:00Z",
    }
    assert ids_of(search("_id=e1&status=finished")[2]) == ["e1"]
    assert ids_of(search("patient=p1&status=finished")[2]) == ["e1"]
    assert ids_of(search("appointment=a1&status=finished")[2]) == ["e1"]


def test_a_reload_of_an_item_of_the_current_index_version_changes_nothing(table: Any) -> None:
    writer = EncounterWriter(
        table, TEST_TABLE, value_paths(), clock=clock("2024-01-01T00:00:00Z", "2025-05-05T00:00:00Z")
    )
    load(writer, RESOURCE)
    before = stored_item(table, "e1")
    report = load(writer, RESOURCE)
    assert (report.written, report.reindexed, report.unchanged) == (0, 0, 1)
    assert stored_item(table, "e1") == before


def test_changed_content_of_another_index_version_is_a_new_version(table: Any) -> None:
    writer = EncounterWriter(
        table, TEST_TABLE, value_paths(), clock=clock("2024-01-01T00:00:00Z", "2025-05-05T00:00:00Z")
    )
    load(writer, RESOURCE)
    make_old(table, "e1")
    report = load(writer, {**RESOURCE, "status": "cancelled"})
    assert (report.written, report.reindexed, report.unchanged) == (1, 0, 0)
    after = stored_item(table, "e1")
    assert (after[keys.ATTR_VERSION_ID], after[keys.ATTR_LAST_UPDATED]) == (
        {"S": "2"},
        {"S": "2025-05-05T00:00:00Z"},
    )
    assert (after[keys.ATTR_INDEX_VERSION], after[STATUS_ATTRIBUTE]) == (
        {"S": CURRENT_VERSION},
        {"S": "cancelled"},
    )


# ---- DynamoDB answers that are not a plain success -------------------------------------------------


def aws_response(request: AWSPreparedRequest, status: int, body: dict[str, Any]) -> AWSResponse:
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["x-amzn-RequestId"] = "test"
    return AWSResponse(request.url, status, headers, MockRawResponse(json.dumps(body)))


def throttled(request: AWSPreparedRequest) -> AWSResponse:
    body = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}
    return aws_response(request, 400, {**body, "message": "Rate of requests exceeds the allowed throughput"})


def request_items(request: AWSPreparedRequest) -> Any:
    assert isinstance(request.body, bytes)
    return json.loads(request.body)["RequestItems"]


def unprocessed_items(request: AWSPreparedRequest) -> AWSResponse:
    """BatchWriteItem's answer when DynamoDB processed none of the items."""
    return aws_response(request, 200, {"UnprocessedItems": request_items(request)})


def unprocessed_keys(request: AWSPreparedRequest) -> AWSResponse:
    """BatchGetItem's answer when DynamoDB read none of the keys."""
    requested = request_items(request)
    return aws_response(request, 200, {"Responses": {}, "UnprocessedKeys": requested})


@pytest.fixture
def answer() -> Iterator[Callable[[Any, str, Responder], list[int]]]:
    """``answer(client, operation, responder)``: each batch request of ``operation`` that ``client``
    sends (botocore's retries included) is answered by ``responder(request, n)`` instead of moto
    when it returns a response, as DynamoDB would answer it over HTTP. Returns the send numbers."""
    registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def install(client: Any, operation: str, responder: Responder) -> list[int]:
        sends: list[int] = []

        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            sends.append(len(sends) + 1)
            response = responder(request, sends[-1])
            if response is not None:  # moto sees the request too: make it one that changes nothing
                request.body = NOTHING
            return response

        event = f"before-send.dynamodb.{operation}"
        client.meta.events.register_first(event, before_send)
        registered.append((client, event, before_send))
        return sends

    yield install
    for client, event, handler in registered:
        client.meta.events.unregister(event, handler)


def test_a_throttled_batch_write_is_retried_by_botocore_and_the_load_completes(
    table: Any, answer: Callable[[Any, str, Responder], list[int]]
) -> None:
    client = tools_client(None)  # the load's client, with its retry configuration
    sends = answer(client, "BatchWriteItem", lambda request, n: throttled(request) if n <= 2 else None)
    report = load(EncounterWriter(client, TEST_TABLE, value_paths()), RESOURCE)
    assert report.written == 1
    assert sends == [1, 2, 3]
    assert json.loads(stored_item(table, "e1")[keys.ATTR_RESOURCE]["S"])["id"] == "e1"


def test_a_batch_write_that_stays_throttled_surfaces_after_botocores_attempts_only(
    table: Any, answer: Callable[[Any, str, Responder], list[int]]
) -> None:
    client = dynamodb_client(None, Config(retries={"total_max_attempts": 2, "mode": "standard"}))
    sends = answer(client, "BatchWriteItem", lambda request, n: throttled(request))
    with pytest.raises(ClientError) as raised:
        EncounterWriter(client, TEST_TABLE, value_paths(), sleep=lambda seconds: None).write([RESOURCE])
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert sends == [1, 2]  # botocore's two attempts, and no loop of the writer's own
    assert "Item" not in table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key("e1"))


def test_unprocessed_items_are_sent_again_after_a_backoff(
    table: Any, answer: Callable[[Any, str, Responder], list[int]]
) -> None:
    sleeps: list[float] = []
    sends = answer(table, "BatchWriteItem", lambda request, n: unprocessed_items(request) if n == 1 else None)
    result = EncounterWriter(table, TEST_TABLE, value_paths(), sleep=sleeps.append).write([RESOURCE])
    assert (result.written, sends, len(sleeps)) == (1, [1, 2], 1)
    assert ids_of(search("appointment=a1")[2]) == ["e1"]  # the link item was written too


def test_items_left_unprocessed_on_every_attempt_are_an_unprocessed_error(
    table: Any, answer: Callable[[Any, str, Responder], list[int]]
) -> None:
    sends = answer(table, "BatchWriteItem", lambda request, n: unprocessed_items(request))
    with pytest.raises(UnprocessedError):
        EncounterWriter(table, TEST_TABLE, value_paths(), sleep=lambda seconds: None).write([RESOURCE])
    assert len(sends) == UNPROCESSED_ATTEMPTS
    assert "Item" not in table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key("e1"))


def test_unprocessed_keys_of_the_existing_items_are_read_again_so_a_reload_stays_unchanged(
    table: Any, answer: Callable[[Any, str, Responder], list[int]]
) -> None:
    sleeps: list[float] = []
    writer = EncounterWriter(
        table,
        TEST_TABLE,
        value_paths(),
        clock=clock("2024-01-01T00:00:00Z", "2025-05-05T00:00:00Z"),
        sleep=sleeps.append,
    )
    load(writer, RESOURCE)
    before = stored_item(table, "e1")
    sends = answer(table, "BatchGetItem", lambda request, n: unprocessed_keys(request) if n == 1 else None)
    report = load(writer, RESOURCE)
    assert (report.written, report.unchanged, sends, len(sleeps)) == (0, 1, [1, 2], 1)
    assert stored_item(table, "e1") == before


def test_a_load_that_meets_unprocessed_items_on_every_batch_loses_nothing(
    table: Any, answer: Callable[[Any, str, Responder], list[int]], tmp_path: Path
) -> None:
    """DynamoDB takes half of each BatchWriteItem's items at its first send and returns the rest as
    UnprocessedItems (it does so under load); the writer sends the rest again. The load's batches
    are written concurrently: a resend is told by its items, not by the order of the sends."""
    backend = boto3.client("dynamodb")  # the same moto table, through a client nobody answers for
    first_sends: list[int] = []
    returned: set[str] = set()  # the unprocessed halves, as sent back
    lock = threading.Lock()

    def half_processed(request: AWSPreparedRequest, n: int) -> AWSResponse | None:
        items = request_items(request)[TEST_TABLE]
        with lock:
            if json.dumps(items, sort_keys=True) in returned:  # the resend of the rest: DynamoDB takes it
                return None
            first_sends.append(n)
            taken, left = items[: len(items) // 2], items[len(items) // 2 :]
            returned.add(json.dumps(left, sort_keys=True))
        if taken:
            backend.batch_write_item(RequestItems={TEST_TABLE: taken})
        return aws_response(request, 200, {"UnprocessedItems": {TEST_TABLE: left}})

    resources = [
        encounter(f"e{n}", start="2021-06-15T10:00:00Z", appointments=[f"Appointment/a{n}"])
        for n in range(250)
    ]
    path = tmp_path / "many.ndjson"
    path.write_text("\n".join(json.dumps(resource) for resource in resources))
    sends = answer(table, "BatchWriteItem", half_processed)
    sleeps: list[float] = []

    report = load_paths([path], EncounterWriter(table, TEST_TABLE, value_paths(), sleep=sleeps.append))

    assert (report.written, report.rejected) == (250, 0)
    assert len(first_sends) >= 3 * 2  # every batch of the load, each in several requests
    assert len(sends) == 2 * len(first_sends)  # each request once more, for its unprocessed half
    assert len(sleeps) == len(first_sends)
    for resource in resources:
        stored = json.loads(stored_item(table, resource["id"])[keys.ATTR_RESOURCE]["S"])
        assert {k: v for k, v in stored.items() if k != "meta"} == resource
    assert all(ids_of(search(f"appointment=a{n}")[2]) == [f"e{n}"] for n in range(0, 250, 7))


# ---- the bucket directory's spans ----------------------------------------------------------------


def directory(table: Any) -> dict[str, Any]:
    item: dict[str, Any] = table.get_item(TableName=TEST_TABLE, Key=keys.bucket_directory_key())["Item"]
    return item


def at(encounter_id: str, start: str) -> dict[str, Any]:
    """A half-hour Encounter (class c0 of its start's year)."""
    return encounter(encounter_id, start=f"{start}T10:00:00Z", end=f"{start}T10:30:00Z")


def test_each_partition_records_the_span_of_its_sort_keys_and_it_only_widens(table: Any) -> None:
    writer = EncounterWriter(table, TEST_TABLE, value_paths())
    writer.write([at("b", "2021-06-01"), at("c", "2021-07-01"), at("x", "2022-01-01")])
    spans = keys.directory_spans(directory(table))
    assert spans["c0#2021"] == ("2021-06-01T10:00:00.000000Z#b", "2021-07-01T10:00:00.000000Z#c")
    assert spans["c0#2022"] == ("2022-01-01T10:00:00.000000Z#x",) * 2
    writer.write([at("d", "2021-06-15")])  # inside: nothing to change
    writer.write([at("a", "2021-03-01"), at("e", "2021-12-01")])
    assert keys.directory_spans(directory(table))["c0#2021"] == (
        "2021-03-01T10:00:00.000000Z#a",
        "2021-12-01T10:00:00.000000Z#e",
    )


def test_a_writer_that_knows_less_never_narrows_what_another_recorded(table: Any) -> None:
    EncounterWriter(table, TEST_TABLE, value_paths()).write([at("a", "2021-01-01"), at("z", "2021-12-31")])
    late = EncounterWriter(table, TEST_TABLE, value_paths())
    late.write([at("m", "2021-06-01")])  # its own span is narrower: the condition keeps the wider one
    late.write([at("n", "2021-11-01"), at("0", "2021-02-01")])
    assert keys.directory_spans(directory(table))["c0#2021"] == (
        "2021-01-01T10:00:00.000000Z#a",
        "2021-12-31T10:00:00.000000Z#z",
    )
    late.write([at("y", "2022-01-01"), at("0a", "2020-12-31")])  # new partitions, and wider than both
    spans = keys.directory_spans(directory(table))
    assert (spans["c0#2022"][0], spans["c0#2020"][1]) == (
        "2022-01-01T10:00:00.000000Z#y",
        "2020-12-31T10:00:00.000000Z#0a",
    )
    assert set(directory(table)[keys.ATTR_BUCKETS]["SS"]) == {"c0#2020", "c0#2021", "c0#2022"}


def test_writers_in_threads_leave_the_widest_span(table: Any) -> None:
    writers = [EncounterWriter(table, TEST_TABLE, value_paths()) for _ in range(4)]
    days = [f"2019-{month:02d}-{day:02d}" for month in range(1, 13) for day in (3, 17)]
    work = [[at(f"w{n}-{day}", day) for day in days[n::4]] for n in range(4)]
    threads = [
        threading.Thread(target=w.write, args=(items,)) for w, items in zip(writers, work, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, last = keys.directory_spans(directory(table))["c0#2019"]
    assert (first[:13], last[:13]) == ("2019-01-03T10", "2019-12-17T10")


def test_a_settled_year_search_sees_every_encounter_its_spans_hold(table: Any) -> None:
    writer = EncounterWriter(table, TEST_TABLE, value_paths())
    writer.write([at("e1", "2021-01-05"), at("e2", "2021-12-30"), at("e3", "2020-12-31")])
    status, _, body = search("date=ge2021-01-01&date=lt2022-01-01")
    assert (status, sorted(ids_of(body)), body["total"]) == (200, ["e1", "e2"], 2)
    status, _, body = search("date=ge2020-12-31&date=lt2021-01-01")
    assert (status, ids_of(body)) == (200, ["e3"])


def test_a_directory_from_before_spans_were_kept_has_every_partition_read_whole(table: Any) -> None:
    EncounterWriter(table, TEST_TABLE, value_paths()).write(
        [at("old1", "2021-03-01"), at("old2", "2021-09-01")]
    )
    assert directory(table)[keys.ATTR_SPANS_KEPT] == {"BOOL": True}  # this writer created it
    attributes = [name for name in directory(table) if name.startswith((keys.SPAN_FIRST, keys.SPAN_LAST))]
    names = {f"#n{n}": name for n, name in enumerate([keys.ATTR_SPANS_KEPT, *attributes])}
    table.update_item(  # the directory as a release before spans left it: the buckets only
        TableName=TEST_TABLE,
        Key=keys.bucket_directory_key(),
        UpdateExpression="REMOVE " + ", ".join(names),
        ExpressionAttributeNames=names,
    )
    EncounterWriter(table, TEST_TABLE, value_paths()).write(
        [at("new", "2021-06-01")]
    )  # records a span of its own
    assert keys.ATTR_SPANS_KEPT not in directory(table)
    assert keys.directory_spans(directory(table)) == {}
    status, _, body = search("date=ge2021-01-01&date=lt2022-01-01")
    assert (status, sorted(ids_of(body))) == (200, ["new", "old1", "old2"])
