"""The fhir-encounter command on moto: exit statuses, output, and one-line errors (never a traceback)."""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import UnprocessedError
from fhir_encounter.store.fields import INDEX_VERSION
from fhir_encounter.store.values import index_version
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools import cli, tables, template
from fhir_encounter_tools.ingest.loader import BATCH_SIZE
from tests.support import ROOT, TEST_TABLE, encounter

CURRENT_VERSION = index_version(INDEX_VERSION, value_paths())  # what the writer stores

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DATA = ROOT / "tests" / "data"
UNREACHABLE = "http://127.0.0.1:9"


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a failed command printed on stderr (and nothing on stdout)."""
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_table() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.usefixtures("table")
def test_load_of_the_data_directory_exits_1_with_each_rejection_and_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["load", str(DATA)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("loaded 37 (written 37, unchanged 0), rejected 8, skipped 9 in ")
    assert out.endswith(" Encounters/s)\n")
    rejected = err.splitlines()
    assert len(rejected) == 8
    assert rejected[1].startswith(f"rejected {DATA}/encounters.ndjson:6: invalid JSON: ")
    assert rejected[2] == (
        f"rejected {DATA}/encounters.ndjson:19 (Encounter/bad-status): status: is not an R4 Encounter status "
        "(planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown)"
    )


@pytest.mark.usefixtures("table")
def test_load_of_valid_files_exits_0_and_a_reload_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["load", str(DATA / "encounter.json"), str(DATA / "bundle.json")]) == 1  # bn-bad
    capsys.readouterr()
    assert cli.main(["load", str(DATA / "encounter.json")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("loaded 1 (written 0, unchanged 1), rejected 0, skipped 0 in ")
    assert err == ""


def test_the_endpoint_comes_from_the_environment_without_endpoint_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", UNREACHABLE)
    path = tmp_path / "one.ndjson"
    path.write_text(json.dumps(encounter("e1")))
    assert cli.main(["load", "--table", "named", str(path)]) == 1
    assert error_line(capsys) == f"fhir-encounter: error: cannot reach DynamoDB at {UNREACHABLE}"


@pytest.mark.parametrize(
    "argv",
    [
        ["create-table", "--endpoint-url", UNREACHABLE],
        ["load", "--endpoint-url", UNREACHABLE, str(DATA)],
        ["seed", "--endpoint-url", UNREACHABLE],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unreachable_endpoint_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli.main(argv) == 1
    assert error_line(capsys) == f"fhir-encounter: error: cannot reach DynamoDB at {UNREACHABLE}"


@pytest.mark.usefixtures("no_table")
@pytest.mark.parametrize("argv", [["load", str(DATA)], ["seed", "--count", "3"]], ids=lambda argv: argv[0])
def test_a_missing_table_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli.main(argv) == 1
    assert error_line(capsys) == (
        f"fhir-encounter: error: table '{TEST_TABLE}' does not exist in AWS: "
        "run `fhir-encounter create-table` first"
    )


@pytest.mark.usefixtures("table")
@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["missing.ndjson"], "missing.ndjson: no such file or directory"),
        ([str(DATA), "notes.txt"], "notes.txt: not a .json or .ndjson file"),
    ],
)
def test_a_path_that_cannot_be_read_is_one_line_and_nothing_is_loaded(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    paths: list[str],
    message: str,
    table: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    assert cli.main(["load", *paths]) == 1
    assert error_line(capsys) == f"fhir-encounter: error: {message}"
    assert table.scan(TableName=TEST_TABLE)["Count"] == 0


def test_a_huge_number_in_one_file_is_one_rejection_and_every_other_file_loads_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, table: Any
) -> None:
    (tmp_path / "a.ndjson").write_text("\n".join(json.dumps(encounter(f"a{n}")) for n in range(3)))
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps(encounter("b1"))[:-1] + ', "length": {"value": ' + "7" * 5000 + "}}")
    (tmp_path / "c.ndjson").write_text("\n".join(json.dumps(encounter(f"c{n}")) for n in range(3)))
    assert cli.main(["load", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == (
        f"rejected {bad} (Encounter/b1): invalid JSON: a number has more than 4300 digits (at length.value)\n"
    )
    assert out.startswith("loaded 6 (written 6, unchanged 0), rejected 1, skipped 0 in ")
    for encounter_id in ("a0", "a1", "a2", "c0", "c1", "c2"):
        assert "Item" in table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key(encounter_id))
    assert "Item" not in table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key("b1"))


@pytest.mark.usefixtures("table")
def test_a_symlink_loop_given_as_a_path_is_one_line_that_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    loop = tmp_path / "loop.ndjson"
    loop.symlink_to(loop)
    assert cli.main(["load", str(DATA / "encounter.json"), str(loop)]) == 1
    assert error_line(capsys) == f"fhir-encounter: error: {loop}: symlink loop"


def test_an_unreadable_file_is_one_line_and_the_other_files_load_with_a_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: Any
) -> None:
    good, locked = tmp_path / "a-good.ndjson", tmp_path / "b-locked.ndjson"
    good.write_text(json.dumps(encounter("e1")))
    locked.write_text(json.dumps(encounter("e2")))
    original = Path.open

    def refuse_locked(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse_locked)
    assert cli.main(["load", str(good), str(locked)]) == 1
    out, err = capsys.readouterr()
    assert err == f"rejected {locked}: cannot read (Permission denied)\n"
    assert out.startswith("loaded 1 (written 1, unchanged 0), rejected 0, skipped 0, unreadable files 1 in ")
    assert table.scan(TableName=TEST_TABLE)["Count"] > 0


BUSY_LINE = (
    f"fhir-encounter: error: DynamoDB in AWS stayed busy (table '{TEST_TABLE}'); "
    "loading again resumes without duplicates"
)
LOAD_OR_SEED = pytest.mark.parametrize(
    "command", [["load"], ["seed", "--count", "250"]], ids=lambda argv: argv[0]
)


def many_encounters(tmp_path: Path) -> Path:
    """Encounters e0 ... e249; each batch of the load starts in a year of its own (its own bucket)."""
    path = tmp_path / "many.ndjson"
    path.write_text(
        "\n".join(
            json.dumps(
                encounter(
                    f"e{n}",
                    start=f"{2010 + n // BATCH_SIZE}-01-01T10:00:00Z",
                    end=f"{2010 + n // BATCH_SIZE}-01-01T10:30:00Z",  # closed: c0#<year>
                )
            )
            for n in range(250)
        )
    )
    return path


def summary_then_error(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> tuple[str, str]:
    """Run the command; the two lines it printed (stdout and stderr in the order written)."""
    output = io.StringIO()
    monkeypatch.setattr(sys, "stdout", output)
    monkeypatch.setattr(sys, "stderr", output)
    assert cli.main(argv) == 1
    summary, error = output.getvalue().splitlines()
    return summary, error


def client_error(code: str, http_status: int, operation: str) -> ClientError:
    """The error botocore raises for an AWS error response once its retries are spent."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": "AWS text that must not be shown"},
            "ResponseMetadata": {
                "RequestId": "test",
                "HostId": "",
                "HTTPStatusCode": http_status,
                "HTTPHeaders": {},
                "RetryAttempts": 10,
            },
        },
        operation,
    )


def failing_from_the_second_batch(
    monkeypatch: pytest.MonkeyPatch, table: Any, operation: str, error: Exception
) -> None:
    """The command's client raises ``error`` on ``operation`` (before the request is sent) in the
    writes of every batch but the first: the first BATCH_SIZE Encounters of `load` or `seed`. The
    batches are written concurrently, so a batch is told by its Encounters, not by the order of the
    calls. The table holds another Encounter already, so that each batch reads what is stored."""
    EncounterWriter(table, TEST_TABLE, value_paths()).write([encounter("stored-before")])
    first_batch = {f"e{n}" for n in range(BATCH_SIZE)} | {f"enc-{n:05d}" for n in range(1, BATCH_SIZE + 1)}
    writing = threading.local()  # the batch that this worker thread writes
    original = EncounterWriter.write

    def write(self: EncounterWriter, resources: Any) -> Any:
        resources = list(resources)
        writing.late = not {resource["id"] for resource in resources} <= first_batch
        return original(self, resources)

    def fail(**_: Any) -> None:
        if getattr(writing, "late", False):
            raise error

    def client_with_fault(endpoint_url: str | None) -> DynamoDBClient:
        client = tables.tools_client(endpoint_url)
        client.meta.events.register(f"before-call.dynamodb.{operation}", fail)
        return client

    monkeypatch.setattr(EncounterWriter, "write", write)
    monkeypatch.setattr(cli, "tools_client", client_with_fault)


def argv_for(command: list[str], path: Path) -> list[str]:
    return [*command, str(path)] if command == ["load"] else command


@pytest.mark.usefixtures("table")
@LOAD_OR_SEED
def test_a_write_failure_midway_prints_the_summary_so_far_then_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    original = EncounterWriter.write
    calls: list[int] = []

    def write_once(self: EncounterWriter, resources: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise UnprocessedError("DynamoDB left items unprocessed after every retry")
        return original(self, resources)

    monkeypatch.setattr(EncounterWriter, "write", write_once)
    summary, error = summary_then_error(monkeypatch, argv_for(command, many_encounters(tmp_path)))
    assert summary.startswith(
        f"loaded {BATCH_SIZE} (written {BATCH_SIZE}, unchanged 0), rejected 0, skipped 0 in "
    )
    assert summary.endswith("; stopped early")
    assert error == BUSY_LINE


@LOAD_OR_SEED
@pytest.mark.parametrize(
    ("operation", "code", "http_status"),
    [
        ("BatchWriteItem", "ProvisionedThroughputExceededException", 400),
        ("BatchWriteItem", "ThrottlingException", 400),
        ("BatchWriteItem", "InternalServerError", 500),
        ("BatchGetItem", "ProvisionedThroughputExceededException", 400),
        ("UpdateItem", "ThrottlingException", 400),
    ],
)
def test_a_store_that_stays_busy_midway_is_the_summary_then_the_busy_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    table: Any,
    command: list[str],
    operation: str,
    code: str,
    http_status: int,
) -> None:
    failing_from_the_second_batch(monkeypatch, table, operation, client_error(code, http_status, operation))
    summary, error = summary_then_error(monkeypatch, argv_for(command, many_encounters(tmp_path)))
    assert summary.startswith(
        f"loaded {BATCH_SIZE} (written {BATCH_SIZE}, unchanged 0), rejected 0, skipped 0 in "
    )
    assert summary.endswith("; stopped early")
    assert error == BUSY_LINE


def test_a_refused_write_is_one_line_with_the_error_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: Any
) -> None:
    operation = "BatchWriteItem"
    failing_from_the_second_batch(
        monkeypatch, table, operation, client_error("ValidationException", 400, operation)
    )
    summary, error = summary_then_error(monkeypatch, ["load", str(many_encounters(tmp_path))])
    assert summary.endswith("; stopped early")
    assert error == "fhir-encounter: error: DynamoDB in AWS refused the request (ValidationException)"


def test_a_reload_after_an_index_change_reindexes_and_says_so(
    capsys: pytest.CaptureFixture[str], table: Any
) -> None:
    path = str(DATA / "encounter.json")
    assert cli.main(["load", path]) == 0
    table.update_item(
        TableName=TEST_TABLE,
        Key=keys.encounter_key("single-01"),
        UpdateExpression="SET #v = :old",
        ExpressionAttributeNames={"#v": keys.ATTR_INDEX_VERSION},
        ExpressionAttributeValues={":old": {"S": "old"}},
    )
    capsys.readouterr()
    assert cli.main(["load", path]) == 0
    assert capsys.readouterr().out.startswith(
        "loaded 1 (written 0, reindexed 1, unchanged 0), rejected 0, skipped 0 in "
    )
    item = table.get_item(TableName=TEST_TABLE, Key=keys.encounter_key("single-01"))["Item"]
    assert item[keys.ATTR_INDEX_VERSION]["S"] == CURRENT_VERSION
    assert cli.main(["load", path]) == 0
    assert capsys.readouterr().out.startswith("loaded 1 (written 0, unchanged 1), rejected 0, skipped 0 in ")


@pytest.mark.usefixtures("no_table")
def test_create_table_creates_once_then_says_it_exists(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["create-table", "--table", "made"]) == 0
    assert capsys.readouterr().out == "table 'made' created in AWS us-east-1\n"
    assert cli.main(["create-table", "--table", "made"]) == 0
    assert capsys.readouterr().out == "table 'made' already exists in AWS us-east-1\n"
    assert boto3.client("dynamodb").list_tables()["TableNames"] == ["made"]


@pytest.mark.usefixtures("no_table")
def test_create_table_without_a_template_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(template, "TEMPLATE_NAME", "no-such-template.yaml")
    assert cli.main(["create-table"]) == 1
    assert error_line(capsys) == (
        "fhir-encounter: error: no-such-template.yaml not found in this folder or above it"
    )


@pytest.mark.usefixtures("table")
def test_seed_writes_count_encounters_and_reseeding_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["seed", "--count", "40", "--random-seed", "3"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("loaded 40 (written 40, unchanged 0), rejected 0, skipped 0 in ")
    assert out.endswith(" from random seed 3; e.g. patient=patient-0001\n")
    assert err == ""
    assert cli.main(["seed", "--count", "40", "--random-seed", "3"]) == 0
    assert capsys.readouterr().out.startswith("loaded 40 (written 0, unchanged 40)")


@pytest.mark.usefixtures("table")
def test_seeding_more_with_the_same_random_seed_keeps_the_encounters_already_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["seed", "--count", "500"]) == 0
    capsys.readouterr()
    assert cli.main(["seed", "--count", "5000"]) == 0
    assert capsys.readouterr().out.startswith("loaded 5000 (written 4500, unchanged 500), rejected 0, ")


def test_serve_seeds_through_the_same_validation_as_seed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, table: Any
) -> None:
    from fhir_encounter_tools.devserver import server

    def synthetic(count: int, seed: int) -> Iterator[dict[str, Any]]:
        yield from (encounter("good"), encounter("bad", status="done"), encounter("good", status="planned"))

    monkeypatch.setattr(server, "synthetic_encounters", synthetic)
    server._seed(table, TEST_TABLE, 3, "http://127.0.0.1:3000")
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "rejected seed #2 (Encounter/bad): status: is not an R4 Encounter status "
        "(planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown)",
        "rejected seed #3 (Encounter/good): duplicate id: first seen at seed #1",
    ]
    assert out.startswith(f"Seeded 1 synthetic Encounters into table {TEST_TABLE}")
    keys = table.scan(TableName=TEST_TABLE, ProjectionExpression="pk")["Items"]
    assert {key["pk"]["S"] for key in keys} - {"_meta"} == {"good"}
