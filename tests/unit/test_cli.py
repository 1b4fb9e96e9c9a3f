"""The fhir-encounter command: exit statuses, output, and one-line errors (never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fhir_encounter.local import cli, template
from tests.conftest import ROOT, TEST_TABLE, encounter

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
    assert out.startswith("loaded 34 (written 34, unchanged 0), rejected 7, skipped 2 in ")
    assert out.endswith(" Encounters/s)\n")
    rejected = err.splitlines()
    assert len(rejected) == 7
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


@pytest.mark.usefixtures("table")
def test_an_unreadable_file_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "locked.ndjson"
    path.write_text(json.dumps(encounter("e1")))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    assert cli.main(["load", str(path)]) == 1
    assert error_line(capsys) == f"fhir-encounter: error: {path}: cannot read (Permission denied)"


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


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["unknown"],
        ["load"],
        ["seed", "--count", "many"],
        ["seed", "--count", "-1"],
        ["seed", "--random-seed", "x"],
        ["create-table", "--table", "ab"],
        ["create-table", "--table", "no/slash"],
        ["serve", "--port", "70000"],
    ],
)
def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "error:" in err
    assert "Traceback" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("create-table", "load", "seed", "serve"):
        assert command in out


def test_serve_passes_its_arguments_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def serve(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 0

    monkeypatch.setattr("fhir_encounter.local.server.serve", serve)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    assert cli.main(["serve", "--port", "3456", "--seed-count", "20"]) == 0
    assert (
        cli.main(["serve", "--host", "0.0.0.0", "--endpoint-url", "http://127.0.0.1:8000", "--table", "t-1"])
        == 0
    )
    assert calls == [
        {"host": "127.0.0.1", "port": 3456, "endpoint_url": None, "table_name": TEST_TABLE, "seed_count": 20},
        {
            "host": "0.0.0.0",
            "port": 3000,
            "endpoint_url": "http://127.0.0.1:8000",
            "table_name": "t-1",
            "seed_count": 500,
        },
    ]


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fhir_encounter", "load", "--endpoint-url", UNREACHABLE, "missing.ndjson"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr == "fhir-encounter: error: missing.ndjson: no such file or directory\n"
