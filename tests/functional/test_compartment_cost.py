"""What a patient token's request reads does not depend on other patients' data: naming another
patient's busy partition (its id, its Encounters' ids, their appointment, a Group) costs what
naming ids that do not exist costs, read for read, as the routes' log lines count it (Queries,
index rows, keys, read units), and answers the same. Through the handlers, on moto; the same
comparison runs on DynamoDB Local in tests/integration/test_compartment_cost.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fhir_encounter.config import Settings
from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests.environment import TEST_ENVIRONMENT
from tests.support import (
    BUSY,
    COMPARTMENT_PAGING,
    COMPARTMENT_PAIRS,
    OWN,
    ROOT,
    TEST_TABLE,
    USER_TOKEN,
    compartment_population,
    costed_read,
    costed_walk,
    handlers_on,
    patient_token,
)

SMART_AT_INFO = Settings.from_environment(
    {**TEST_ENVIRONMENT, "AUTH_MODE": "smart", "POWERTOOLS_LOG_LEVEL": "INFO"}
)
PATIENT_A = patient_token("pa")


@pytest.fixture(scope="module")
def busy_table() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, TEST_TABLE, ROOT / "template.yaml")
        EncounterWriter(client, TEST_TABLE, value_paths()).write(compartment_population())
        with handlers_on(client, SMART_AT_INFO):
            yield client


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("paging", COMPARTMENT_PAGING)
@pytest.mark.parametrize(("another_patients", "missing"), COMPARTMENT_PAIRS)
def test_naming_another_patients_data_costs_what_naming_nothing_costs(
    caplog: pytest.LogCaptureFixture, another_patients: str, missing: str, paging: str
) -> None:
    pages = costed_walk(another_patients + paging, PATIENT_A, lambda: caplog.records)
    assert pages == costed_walk(missing + paging, PATIENT_A, lambda: caplog.records)
    for cost, (status, *_) in pages:
        assert status == 200
        assert cost["rows_read"] <= 2 * OWN  # the asking patient's partition (counted, then read) at most
        assert cost["keys_read"] <= OWN  # the page's bodies, never the ids asked for


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("query", ["patient=pb", "subject=Group/g1", "appointment=ap-b"])
def test_without_a_compartment_the_same_search_reads_the_busy_partition(
    caplog: pytest.LogCaptureFixture, query: str
) -> None:
    """What the figures above compare is real: a user/ token's search reads every row it names."""
    [(cost, shape)] = costed_walk(query + "&_count=0", USER_TOKEN, lambda: caplog.records)
    assert cost["rows_read"] >= BUSY
    assert shape[3] == BUSY


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("paging", COMPARTMENT_PAGING)
@pytest.mark.parametrize(
    "query", ["patient=pb", "subject=Group/g1", "subject=pb", "patient=pb&appointment=ap-b&_id=b-001"]
)
def test_a_criterion_that_contradicts_the_compartment_reads_nothing_and_answers_an_empty_searchset(
    caplog: pytest.LogCaptureFixture, query: str, paging: str
) -> None:
    [(cost, shape)] = costed_walk(query + paging, PATIENT_A, lambda: caplog.records)
    assert cost == {"queries": 0, "rows_read": 0, "keys_read": 0, "read_units": 0}
    # the searchset any token gets for a search that matches nothing: total 0 (unless _total=none), its links
    [(_, usual)] = costed_walk("patient=nobody" + paging, USER_TOKEN, lambda: caplog.records)
    assert shape == usual
    assert shape[:5] == (200, "Bundle", "searchset", None if "_total=none" in paging else 0, [])
    assert "self" in shape[5]


@pytest.mark.usefixtures("busy_table")
def test_a_search_within_the_compartment_still_finds_the_patients_own_encounters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pages = costed_walk("appointment=ap-a,ap-b&_count=3", PATIENT_A, lambda: caplog.records)
    assert [shape[3:5] for _, shape in pages] == [(OWN, ["a-1", "a-2", "a-3"]), (OWN, ["a-4"])]


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("encounter_id", ["b-000", "g-000"])
def test_reading_another_patients_encounter_costs_and_answers_what_a_missing_one_does(
    caplog: pytest.LogCaptureFixture, encounter_id: str
) -> None:
    cost, status, text = costed_read(encounter_id, PATIENT_A, lambda: caplog.records)
    missing_cost, missing_status, missing_text = costed_read("nobody", PATIENT_A, lambda: caplog.records)
    assert (cost, status, text) == (
        missing_cost,
        missing_status,
        missing_text.replace("nobody", encounter_id),
    )
    assert (status, text) == (404, f"Unknown Encounter resource '{encounter_id}'")
    assert (cost["queries"], cost["rows_read"], cost["keys_read"]) == (0, 0, 1)  # one GetItem by key
    assert costed_read("a-1", PATIENT_A, lambda: caplog.records)[:2] == (cost, 200)  # its own: the same
