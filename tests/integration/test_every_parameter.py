"""Every search parameter, modifier and form against the brute-force oracle on DynamoDB Local,
through the handlers in-process: more Encounters and smaller pages than the moto run, so that
value-index plans read several Query pages and check terms across BatchGetItem batches. Then a
parameter that exists only as a registry entry, searched end to end on the same engine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from fhir_encounter.search.parameters import SEARCH_PARAMETERS, ParamType, SearchParameter, value_paths
from fhir_encounter.store.values import ValueKind, ValuePath
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests.every_parameter import (
    SNOMED,
    SORTS,
    api_answer,
    encounters,
    oracle_answer,
    queries,
    sort_queries,
    ties,
    walk,
)
from tests.support import ROOT, TEST_SETTINGS, handlers_on, search

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ENCOUNTERS = encounters(300)
TABLE = "every-parameter"


@pytest.fixture(scope="module")
def stored(dynamodb: DynamoDBClient) -> Iterator[list[dict[str, Any]]]:
    create_table(dynamodb, TABLE, ROOT / "template.yaml")
    EncounterWriter(dynamodb, TABLE, value_paths()).write(json.loads(json.dumps(ENCOUNTERS)))
    with handlers_on(dynamodb, replace(TEST_SETTINGS, table_name=TABLE)):
        resources = [entry["resource"] for page in walk([("_count", "100")]) for entry in page["entry"]]
        assert len(resources) == len(ENCOUNTERS)
        yield resources


def test_every_parameter_answers_as_the_oracle(stored: list[dict[str, Any]]) -> None:
    mismatches = []
    for pairs in queries(stored):
        found, expected = api_answer(pairs, count=7), oracle_answer(stored, pairs)
        if found != expected:
            mismatches.append((pairs, found, expected))
    assert mismatches == []
    assert {name.partition(":")[0] for pairs in queries(stored) for name, _ in pairs} == set(
        SEARCH_PARAMETERS
    )


def test_every_sort_walks_as_the_oracle(dynamodb: DynamoDBClient) -> None:
    """``_sort`` on DynamoDB Local (backward Queries, order links merged across shards): two
    loads, so that most Encounters share a load's meta.lastUpdated, and runs of equal starts."""
    first = encounters(60)
    create_table(dynamodb, "sorting", ROOT / "template.yaml")
    writer = EncounterWriter(dynamodb, "sorting", value_paths())
    writer.write(json.loads(json.dumps(first)))
    time.sleep(0.01)
    writer.write(ties(first))
    mismatches = []
    with handlers_on(dynamodb, replace(TEST_SETTINGS, table_name="sorting")):
        stored = [entry["resource"] for page in walk([("_count", "100")]) for entry in page["entry"]]
        assert len(stored) == len(first) + len(ties(first))
        for sort in SORTS:
            for pairs in sort_queries(sort):
                found, expected = api_answer(pairs, count=4), oracle_answer(stored, pairs)
                if found != expected:
                    mismatches.append((pairs, found, expected))
    assert mismatches == []


def test_a_parameter_added_as_a_registry_entry_is_searchable(
    dynamodb: DynamoDBClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = SearchParameter(
        name="service-type",
        type=ParamType.TOKEN,
        definition="http://example.org/SearchParameter/Encounter-service-type",
        documentation="Encounter.serviceType",
        accepts="as a token",
        path=ValuePath("serviceType", ValueKind.CONCEPT),
    )
    monkeypatch.setitem(SEARCH_PARAMETERS, "service-type", entry)
    resources = [
        {
            "resourceType": "Encounter",
            "id": f"st-{n:02d}",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/p{n % 2}"},
            "serviceType": {
                "coding": [{"system": SNOMED, "code": "408443003" if n % 3 == 0 else "394814009"}]
            },
        }
        for n in range(30)
    ]
    create_table(dynamodb, "registry-entry", ROOT / "template.yaml")
    EncounterWriter(dynamodb, "registry-entry", value_paths()).write(resources)
    with handlers_on(dynamodb, replace(TEST_SETTINGS, table_name="registry-entry")):
        assert api_answer([("service-type", "408443003")], count=4) == (
            [f"st-{n:02d}" for n in range(0, 30, 3)],
            10,
        )
        assert api_answer([("service-type", f"{SNOMED}|394814009"), ("patient", "p1")], count=4) == (
            [f"st-{n:02d}" for n in range(1, 30, 2) if n % 3],
            10,
        )
        assert search({"service-type:text": ["x"]})[0] == 400
