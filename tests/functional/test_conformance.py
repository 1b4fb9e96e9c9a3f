"""What we send parses under a strict FHIR parser (fhir.resources, R4B models: R4's Encounter and
Bundle are unchanged there), page after page, as a client that follows next links would see it."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.operationoutcome import OperationOutcome

import fhir_encounter
from fhir_encounter.search.parameters import SEARCH_PARAMETERS
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.support import encounter, ids_of, invoke, read, search

# The shape of the reference API's example Encounter (ids changed).
CANVAS_STYLE: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "7720a218-c0bd-4cee-82a2-729bd9c101f3",
    "identifier": [{"id": "ident-1", "system": "http://canvasmedical.com", "value": "7720a218"}],
    "status": "in-progress",
    "class": {"system": "https://www.hl7.org/fhir/v3/ActEncounterCode/vs.html"},
    "type": [
        {"coding": [{"system": "http://snomed.info/sct", "code": "308335008", "display": "Office Visit"}]}
    ],
    "subject": {"reference": "Patient/a1197fa9e65b4a5195af15e0234f61c2", "type": "Patient"},
    "participant": [
        {
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "PART",
                        }
                    ]
                }
            ],
            "period": {"start": "2022-04-04T05:26:34.711718+00:00"},
            "individual": {"reference": "Practitioner/4150cd20", "type": "Practitioner", "display": "Dr"},
        }
    ],
    "period": {"start": "2022-04-04T05:26:34.711718+00:00"},
    "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "308335008"}]}],
    "hospitalization": {
        "dischargeDisposition": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "oth"}
            ]
        }
    },
    "location": [{"location": {"reference": "Location/50ea08f9", "type": "Location"}}],
}


@pytest.fixture
def data(put: Any) -> None:
    put(
        CANVAS_STYLE,
        *(
            encounter(
                f"c{n:02d}",
                subject="Patient/a1197fa9e65b4a5195af15e0234f61c2",
                start=f"2022-0{n % 9 + 1}-0{n % 9 + 1}",
            )
            for n in range(12)
        ),
        encounter("planned", subject="Patient/a1197fa9e65b4a5195af15e0234f61c2", status="planned"),
    )


def test_every_page_of_a_walk_is_a_valid_searchset(data: None) -> None:
    status, headers, body = search("patient=a1197fa9e65b4a5195af15e0234f61c2&_count=4")
    seen = []
    while True:
        assert status == 200
        assert headers["Content-Type"].startswith("application/fhir+json")
        bundle = Bundle.model_validate(body)
        assert bundle.type == "searchset"
        assert bundle.total == 14
        for entry in bundle.entry or []:
            assert entry.search is not None
            assert entry.search.mode == "match"
            assert entry.fullUrl is not None
            assert entry.resource is not None
            assert entry.fullUrl.endswith(f"/Encounter/{entry.resource.id}")
        seen.extend(ids_of(body))
        next_url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
        if next_url is None:
            break
        status, headers, body = search(parse_qs(urlsplit(next_url).query))
    assert len(seen) == len(set(seen)) == 14


def test_read_returns_the_stored_resource_unchanged_plus_meta(data: None) -> None:
    status, _, body = read(CANVAS_STYLE["id"])
    assert status == 200
    Encounter.model_validate(body)
    expected = copy.deepcopy(CANVAS_STYLE)
    assert {k: v for k, v in body.items() if k != "meta"} == expected
    assert body["meta"]["versionId"] == "1"


def test_errors_are_valid_operation_outcomes(data: None) -> None:
    for status, _, body in (read("no-such-id"), read("bad$id"), search("date=2021-13")):
        assert status in (400, 404)
        outcome = OperationOutcome.model_validate(body)
        assert outcome.issue[0].severity == "error"
        assert json.dumps(body).count("Traceback") == 0


@pytest.mark.usefixtures("table")
def test_the_capability_statement_parses_and_lists_every_search_parameter() -> None:
    status, headers, body = invoke(rest_api_event(method="GET", path="/metadata", resource="/metadata"))
    assert status == 200
    assert headers["Content-Type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(body)
    assert statement.fhirVersion == "4.0.1"
    params = body["rest"][0]["resource"][0]["searchParam"]
    assert [p["name"] for p in params] == list(SEARCH_PARAMETERS)
    assert len(params) == 26  # R4's 23 for Encounter, _id, _lastUpdated and US Core's discharge-disposition
    assert all(p["definition"].startswith("http://hl7.org/fhir/") for p in params)
    assert {p["name"]: p["type"] for p in params}["status"] == "token"


@pytest.mark.usefixtures("table")
def test_the_capability_statement_reports_the_package_version() -> None:
    _, _, body = invoke(rest_api_event(method="GET", path="/metadata", resource="/metadata"))
    assert body["software"] == {"name": "fhir-encounter", "version": fhir_encounter.__version__}
    software = CapabilityStatement.model_validate(body).software
    assert software is not None
    assert software.version == fhir_encounter.__version__
