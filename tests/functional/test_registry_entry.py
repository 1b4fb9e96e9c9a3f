"""A search parameter that is only a registry entry is searchable end to end: the writer links
its path, the query compiles it, the value index serves it; on moto (DynamoDB Local: the
integration suite)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from fhir_encounter.search.parameters import SEARCH_PARAMETERS, SearchParameter, value_paths
from fhir_encounter.store.values import ValueKind, ValuePath
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests import oracle
from tests.every_parameter import BASE_URL, SNOMED, api_answer
from tests.support import ROOT, TEST_TABLE, handlers_on, search


def test_a_parameter_added_as_a_registry_entry_is_searchable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token parameter that exists only as one registry entry (R4's Encounter.serviceType is not
    searchable in R4): the writer links it and the search finds it, with no other change."""
    entry = SearchParameter(
        name="service-type",
        type=SEARCH_PARAMETERS["class"].type,
        definition="http://example.org/SearchParameter/Encounter-service-type",
        documentation="Encounter.serviceType",
        accepts="as a token",
        path=ValuePath("serviceType", ValueKind.CONCEPT),
    )
    monkeypatch.setitem(SEARCH_PARAMETERS, "service-type", entry)
    encounters = [
        {
            "resourceType": "Encounter",
            "id": f"st-{n}",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/p{n % 2}"},
            "serviceType": {"coding": [{"system": SNOMED, "code": "394814009" if n % 3 else "408443003"}]},
        }
        for n in range(9)
    ]
    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, TEST_TABLE, ROOT / "template.yaml")
        EncounterWriter(client, TEST_TABLE, value_paths()).write(encounters)
        with handlers_on(client):
            for pairs in (
                [("service-type", "408443003")],
                [("service-type", f"{SNOMED}|394814009"), ("patient", "p1")],
                [("service-type:not", "408443003")],
            ):
                assert api_answer(pairs) == oracle_answer_for(encounters, pairs), pairs
            status, _, _ = search({"service-type:text": ["x"]})
            assert status == 400


def oracle_answer_for(
    encounters: list[dict[str, Any]], pairs: list[tuple[str, str]]
) -> tuple[list[str], int]:
    """The oracle knows R4's parameters only: serviceType matched by hand, as a token on codes."""
    name, value = pairs[0]
    system, _, code = value.rpartition("|") if "|" in value else (None, "", value)

    def has(encounter: dict[str, Any]) -> bool:
        codings = encounter["serviceType"]["coding"]
        return any(c["code"] == code and (system is None or c["system"] == system) for c in codings)

    rest = pairs[1:]
    kept = [
        e
        for e in encounters
        if (has(e) != name.endswith(":not")) and oracle.matches(e, rest, base_url=BASE_URL)
    ]
    ordered = sorted(kept, key=lambda e: e["id"])
    return [e["id"] for e in ordered], len(ordered)
