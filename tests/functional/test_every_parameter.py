"""Every search parameter, modifier and form against the brute-force oracle on a moto table
(tests/every_parameter.py has the queries and data; the integration suite runs them on more data
and smaller pages over DynamoDB Local)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fhir_encounter.search.parameters import SEARCH_PARAMETERS, value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests.every_parameter import api_answer, encounters, oracle_answer, queries, walk
from tests.support import ROOT, TEST_TABLE, handlers_on

ENCOUNTERS = encounters(40)


@pytest.fixture(scope="module")
def stored() -> Iterator[list[dict[str, Any]]]:
    """The table loaded once; the stored resources (with their meta) as the API serves them."""
    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, TEST_TABLE, ROOT / "template.yaml")
        EncounterWriter(client, TEST_TABLE, value_paths()).write(json.loads(json.dumps(ENCOUNTERS)))
        with handlers_on(client):
            resources = [entry["resource"] for page in walk([("_count", "100")]) for entry in page["entry"]]
            assert len(resources) == len(ENCOUNTERS)
            yield resources


def test_every_parameter_answers_as_the_oracle(stored: list[dict[str, Any]]) -> None:
    covered: set[str] = set()
    mismatches = []
    for pairs in queries(stored):
        covered.update(name.partition(":")[0] for name, _ in pairs)
        found, expected = api_answer(pairs, count=30), oracle_answer(stored, pairs)
        if found != expected:
            mismatches.append((pairs, found, expected))
    assert mismatches == []
    assert covered == set(SEARCH_PARAMETERS)


def test_the_queries_find_something_and_not_everything(stored: list[dict[str, Any]]) -> None:
    """The comparison above is not vacuous: most queries match some Encounters and not all."""
    sizes = [oracle_answer(stored, pairs)[1] for pairs in queries(stored)]
    assert sum(0 < size < len(stored) for size in sizes) >= 0.7 * len(sizes)
