"""The fhir-encounter command's arguments: usage errors (exit 2), --help, what ``serve`` is given,
the template it finds, and ``python -m fhir_encounter_tools``. Nothing here reaches a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter.cors import CorsPolicy
from fhir_encounter_tools import cli, template
from tests.support import ROOT, TEST_TABLE

DATA = ROOT / "tests" / "data"
UNREACHABLE = "http://127.0.0.1:9"


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
        ["serve", "--log-level", "LOUD"],
        ["load", "--endpoint-url", "not-a-url", str(DATA)],
        ["load", "--endpoint-url", "127.0.0.1:8000", str(DATA)],
        ["create-table", "--endpoint-url", "ftp://127.0.0.1:8000"],
        ["seed", "--endpoint-url", "http://"],
        ["seed", "--endpoint-url", "http://127.0.0.1:port"],
        ["serve", "--endpoint-url", "http://bad host:8000"],
        ["serve", "--dynamodb-port", "0"],
        ["serve", "--dynamodb-port", "65536"],
        ["serve", "--endpoint-url", "http://127.0.0.1:8000", "--data-dir", "data"],
        ["serve", "--endpoint-url", "http://127.0.0.1:8000", "--dynamodb-port", "8000"],
    ],
)
def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "error:" in err
    assert "Traceback" not in err


def test_an_endpoint_url_from_the_environment_that_is_not_a_url_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", "not-a-url")
    assert cli.main(["load", str(DATA)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == (
        "fhir-encounter: error: $DYNAMODB_ENDPOINT_URL must be an http:// or https:// URL with a host"
    )


def test_serve_options_for_its_own_dynamodb_local_conflict_with_an_endpoint_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:8000")
    assert cli.main(["serve", "--data-dir", "data"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "fhir-encounter: error: serve: --data-dir and --dynamodb-port are for the DynamoDB Local "
        "it starts without --endpoint-url or $DYNAMODB_ENDPOINT_URL"
    )


def test_serve_help_says_it_starts_its_own_dynamodb_local_without_an_endpoint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "else AWS" not in text
    assert "(default: $DYNAMODB_ENDPOINT_URL, else it starts its own DynamoDB Local on 127.0.0.1)" in text
    for option in ("--data-dir DIR", "--dynamodb-port P"):
        assert option in text


def test_load_help_still_defaults_to_aws(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["load", "--help"]) == 0
    assert "(default: $DYNAMODB_ENDPOINT_URL, else AWS)" in " ".join(capsys.readouterr().out.split())


def test_the_package_template_is_found_before_one_in_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "template.yaml").write_text("Resources: {}\n")  # another SAM project's
    monkeypatch.chdir(tmp_path)
    assert template.find_template() == ROOT / "template.yaml"


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

    monkeypatch.setattr(cli, "serve", serve)  # the server itself is tested on its own
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    assert (
        cli.main(
            [
                "serve",
                "--port",
                "3456",
                "--seed-count",
                "20",
                "--data-dir",
                "run/data",
                "--dynamodb-port",
                "8123",
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "serve",
                "--host",
                "0.0.0.0",
                "--endpoint-url",
                "http://127.0.0.1:8000",
                "--table",
                "t-1",
                "--log-level",
                "info",
                "--auth",
                "smart",
                "--dev-issuer-key",
                "run/dev.pem",
                "--cors-origin",
                "http://127.0.0.1:8080,https://app.example.org/",
                "--cors-origin",
                "https://EHR.example.net",
            ]
        )
        == 0
    )
    assert calls == [
        {
            "host": "127.0.0.1",
            "port": 3456,
            "endpoint_url": None,
            "table_name": TEST_TABLE,
            "seed_count": 20,
            "log_level": "WARNING",
            "data_dir": Path("run/data"),
            "dynamodb_port": 8123,
            "auth": "none",
            "dev_issuer_key": None,
            "cors": CorsPolicy(),
        },
        {
            "host": "0.0.0.0",
            "port": 3000,
            "endpoint_url": "http://127.0.0.1:8000",
            "table_name": "t-1",
            "seed_count": 500,
            "log_level": "INFO",
            "data_dir": None,
            "dynamodb_port": None,
            "auth": "smart",
            "dev_issuer_key": Path("run/dev.pem"),
            "cors": CorsPolicy(
                ("http://127.0.0.1:8080", "https://app.example.org", "https://ehr.example.net")
            ),
        },
    ]


def test_python_dash_m_runs_the_command() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fhir_encounter_tools",
            "load",
            "--endpoint-url",
            UNREACHABLE,
            "missing.ndjson",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr == "fhir-encounter: error: missing.ndjson: no such file or directory\n"
