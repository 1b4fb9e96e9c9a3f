"""What the handlers log (Runtime.handler and the routes): JSON lines on stdout with the configured
service name and level, the request's correlation id and parameter names, never their values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_encounter.config import Settings
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.support import Writer, encounter, handlers_on, invoke

SECRET_VALUE = "p1-not-for-logs"


def settings_with(**variables: str) -> Settings:
    return Settings.from_environment({**TEST_ENVIRONMENT, **variables})


def search_event(query: dict[str, list[str]]) -> dict[str, Any]:
    return rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query)


@pytest.fixture
def stored(put: Writer) -> None:
    put(encounter("enc-1", subject=f"Patient/{SECRET_VALUE}", start="2021-06-15"))


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("level", "messages"), [("INFO", ["search answered"]), ("DEBUG", ["search answered"]), ("WARNING", [])]
)
def test_a_search_logs_json_lines_with_the_configured_service_and_level(
    table: Any, capsys: pytest.CaptureFixture[str], level: str, messages: list[str]
) -> None:
    # A service of the test's own: Powertools sets a service's logger up (its level and its
    # stream, here the captured stdout) only when the first Logger for that service is made.
    service = f"fhir-encounter-logging-{level.lower()}"
    event = search_event({"patient": [SECRET_VALUE]})
    with handlers_on(table, settings_with(POWERTOOLS_LOG_LEVEL=level, POWERTOOLS_SERVICE_NAME=service)):
        assert invoke(event)[0] == 200
    out = capsys.readouterr().out
    lines = [line for line in map(json.loads, out.splitlines()) if line["service"] == service]
    assert [(line["service"], line["level"], line["message"]) for line in lines] == [
        (service, "INFO", message) for message in messages
    ]
    for line in lines:
        assert line["correlation_id"] == event["requestContext"]["requestId"]
        assert (line["parameters"], line["total"], line["returned"]) == (["patient"], 1, 1)
    assert SECRET_VALUE not in out


@pytest.mark.usefixtures("stored")
def test_a_client_error_is_logged_at_info_with_its_status_and_code(
    table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = "fhir-encounter-logging-client-error"
    with handlers_on(table, settings_with(POWERTOOLS_LOG_LEVEL="INFO", POWERTOOLS_SERVICE_NAME=service)):
        assert invoke(search_event({"date": [SECRET_VALUE]}))[0] == 400
    out = capsys.readouterr().out
    lines = [line for line in map(json.loads, out.splitlines()) if line["service"] == service]
    assert [(line["level"], line["message"], line["status"], line["code"]) for line in lines] == [
        ("INFO", "request failed", 400, "invalid")
    ]
    assert SECRET_VALUE not in out


@pytest.mark.usefixtures("stored")
def test_the_configured_level_applies_to_the_fhir_encounter_service(
    table: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The table fixture has composed handlers for "fhir-encounter" at WARNING already, as one process
    (the dev server, the tests) composes several functions: handlers composed at INFO log at INFO."""
    with handlers_on(table, settings_with(POWERTOOLS_LOG_LEVEL="INFO")):
        assert invoke(search_event({"patient": [SECRET_VALUE]}))[0] == 200
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "fhir-encounter"] == [
        ("INFO", "search answered")
    ]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_every_request_writes_one_audit_line_whatever_the_log_level(
    table: Any, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    service = f"fhir-encounter-audit-test-{level.lower()}"
    event = search_event({"patient": [SECRET_VALUE], "_count": ["5"]})
    failing = search_event({"date": [SECRET_VALUE]})
    with handlers_on(table, settings_with(POWERTOOLS_LOG_LEVEL=level, POWERTOOLS_SERVICE_NAME=service)):
        assert invoke(event)[0] == 200
        assert invoke(failing)[0] == 400
    out = capsys.readouterr().out
    audit = [line for line in map(json.loads, out.splitlines()) if line["service"] == f"{service}-audit"]
    assert [
        (a["message"], a["route"], a["parameters"], a["encounter_ids"], a["status"], a["compartment"])
        for a in audit
    ] == [
        ("access", "GET /Encounter", ["_count", "patient"], ["enc-1"], 200, "all"),
        ("access", "GET /Encounter", ["date"], [], 400, "all"),
    ]
    assert audit[0]["request_id"] == event["requestContext"]["requestId"]
    assert audit[0]["principal"] == "iam"  # the test event carries no IAM caller
    assert "timestamp" in audit[0]
    assert SECRET_VALUE not in out
