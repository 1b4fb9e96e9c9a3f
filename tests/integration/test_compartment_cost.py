"""The compartment's cost on AWS's DynamoDB Local: with a patient token, a search or read that
names another patient's busy partition consumes what one naming data that does not exist
consumes (Queries, rows scanned, keys, and the read capacity DynamoDB Local reports). The
handlers run in this process on a client of DynamoDB Local over 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from fhir_encounter.access import AuthMode
from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.dynamodb import dynamodb_client
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests.support import (
    BUSY,
    COMPARTMENT_PAGING,
    COMPARTMENT_PAIRS,
    OWN,
    ROOT,
    TEST_SETTINGS,
    USER_TOKEN,
    compartment_population,
    costed_read,
    costed_walk,
    handlers_on,
    patient_token,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.integration

TABLE = "encounters-compartment-cost"
PATIENT_A = patient_token("pa")


@pytest.fixture(scope="module")
def busy_table(dynamodb: DynamoDBClient, dynamodb_endpoint: str) -> Iterator[None]:
    create_table(dynamodb, TABLE, ROOT / "template.yaml")
    EncounterWriter(dynamodb, TABLE, value_paths()).write(compartment_population())
    settings = replace(TEST_SETTINGS, table_name=TABLE, auth_mode=AuthMode.SMART, log_level="INFO")
    with handlers_on(dynamodb_client(dynamodb_endpoint), settings):
        yield


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("paging", COMPARTMENT_PAGING)
@pytest.mark.parametrize(("another_patients", "missing"), COMPARTMENT_PAIRS)
def test_naming_another_patients_data_consumes_what_naming_nothing_consumes(
    caplog: pytest.LogCaptureFixture, another_patients: str, missing: str, paging: str
) -> None:
    pages = costed_walk(another_patients + paging, PATIENT_A, lambda: caplog.records)
    assert pages == costed_walk(missing + paging, PATIENT_A, lambda: caplog.records)
    for cost, (status, *_) in pages:
        assert status == 200
        assert cost["rows_read"] <= 2 * OWN


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("query", ["patient=pb", "subject=Group/g1", "appointment=ap-b"])
def test_the_busy_partitions_cost_capacity_to_read(caplog: pytest.LogCaptureFixture, query: str) -> None:
    """The figures compared above are DynamoDB's: a user/ token reading a busy partition consumes
    capacity for every row, where the patient token naming it consumes none."""
    [(cost, _)] = costed_walk(query + "&_count=0", USER_TOKEN, lambda: caplog.records)
    assert cost["rows_read"] >= BUSY
    assert cost["read_units"] > 1
    [(within, _)] = costed_walk(query + "&_count=0", PATIENT_A, lambda: caplog.records)
    assert within["read_units"] <= 1


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("encounter_id", ["b-000", "g-000"])
def test_reading_another_patients_encounter_consumes_what_a_missing_one_does(
    caplog: pytest.LogCaptureFixture, encounter_id: str
) -> None:
    cost, status, text = costed_read(encounter_id, PATIENT_A, lambda: caplog.records)
    missing_cost, missing_status, missing_text = costed_read("nobody", PATIENT_A, lambda: caplog.records)
    assert (cost, status, text) == (
        missing_cost,
        missing_status,
        missing_text.replace("nobody", encounter_id),
    )
    assert (cost["keys_read"], cost["read_units"], status) == (1, 0.5, 404)
