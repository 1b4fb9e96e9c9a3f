"""_include and _revinclude through the search handler: a Bundle of the Encounters alone (the same
as without them, their names logged as ignored), or a 400 OperationOutcome under strict handling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_encounter.config import Settings
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.support import Writer, encounter, handlers_on, ids_of, invoke, search

STRICT = {"Prefer": "handling=strict"}


@pytest.fixture
def stored(put: Writer) -> None:
    put(encounter("e1", start="2021-01-01"), encounter("e2", start="2021-02-01"))


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    "extra",
    ["_include=Encounter:subject", "_revinclude=Observation:encounter", "_include:iterate=Encounter:*"],
)
def test_an_include_is_ignored_and_the_answer_is_the_search_without_it(extra: str) -> None:
    status, _, bundle = search(f"patient=p1&{extra}")
    _, _, plain = search("patient=p1")
    assert (status, ids_of(bundle), bundle["total"]) == (200, ["e1", "e2"], 2)
    assert [link["url"] for link in bundle["link"]] == [link["url"] for link in plain["link"]]
    assert all(entry["search"]["mode"] == "match" for entry in bundle["entry"])


@pytest.mark.usefixtures("stored")
def test_an_ignored_include_is_logged_by_name_among_the_ignored_parameters(
    table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = "fhir-encounter-logging-include"
    settings = Settings.from_environment(
        {**TEST_ENVIRONMENT, "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_SERVICE_NAME": service}
    )
    query = {"patient": ["p1"], "_revinclude": ["Observation:encounter"], "_include:iterate": ["Encounter:*"]}
    with handlers_on(table, settings):
        assert (
            invoke(rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query))[0]
            == 200
        )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (answered,) = [
        line for line in lines if line["service"] == service and line["message"] == "search answered"
    ]
    assert (answered["ignored_parameters"], answered["ignored_count"]) == (
        ["_include:iterate", "_revinclude"],
        2,
    )
    assert "Observation:encounter" not in json.dumps(lines)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("extra", ["_include=Encounter:subject", "_revinclude:iterate=Observation:encounter"])
def test_an_include_under_strict_handling_is_a_400_operation_outcome(extra: str) -> None:
    status, headers, outcome = search(f"patient=p1&{extra}", headers=STRICT)
    assert status == 400
    assert headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "not-supported")
    assert f"'{extra.split('=')[0]}' is not supported" in issue["details"]["text"]
    assert "Encounter:subject" not in json.dumps(outcome)  # the value is not echoed
