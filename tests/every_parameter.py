"""Queries for every search parameter, modifier and form, with values taken from the data, and
the Encounters they run over: seeded ones and hand-made edge cases (fields absent, repeated,
multi-coded, system-less, references logical, conditional, absolute here and elsewhere). The
functional suite (moto) and the integration suite (DynamoDB Local) both hold the API's full
next-link walks and totals equal to the oracle's (tests/oracle.py) answers over them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_encounter.search.sorting import SORTABLE
from fhir_encounter_tools.ingest.seed import synthetic_encounters
from tests import oracle
from tests.support import ids_of, link, search

BASE_URL = "http://127.0.0.1:3000/v1"  # the in-process handlers' base URL
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
LOCAL_TYPES = "https://ehr.example.org/visit-type"


def edge_cases() -> list[dict[str, Any]]:
    """Encounters whose fields are absent, repeated, multi-coded, system-less or not literal."""
    amb = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    return [
        {"resourceType": "Encounter", "id": "x-bare", "status": "finished", "class": amb},
        {
            "resourceType": "Encounter",
            "id": "x-multi",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
            "subject": {"reference": "Patient/patient-0001"},
            "period": {"start": "2021-03-04T10:00:00Z", "end": "2021-03-04T12:00:00Z"},
            "identifier": [{"value": "no-system-1"}, {"system": "https://x.example/id", "value": "X1"}],
            "type": [
                {
                    "coding": [
                        {"system": SNOMED, "code": "185347001"},
                        {"system": LOCAL_TYPES, "code": "walk-in"},
                    ]
                },
                {"coding": [{"code": "no-system-type"}], "text": "typed by hand"},
                {"text": "text only"},
            ],
            "reasonCode": [{"coding": [{"code": "headache"}]}],
            "participant": [
                {"individual": {"reference": f"{BASE_URL}/Practitioner/practitioner-14"}},
                {"individual": {"reference": "PractitionerRole/role-1"}},
                {
                    "type": [{"coding": [{"system": "urn:local", "code": "helper"}]}],
                    "individual": {
                        "type": "Practitioner",
                        "identifier": {"system": "urn:npi", "value": "123"},
                    },
                },
            ],
            "length": {"value": 2, "unit": "h", "system": UCUM, "code": "h"},
            "location": [
                {
                    "location": {"reference": "Location?identifier=urn:loc|L9"},
                    "period": {"start": "2021-03-04T10:00:00Z", "end": "2021-03-04T11:00:00Z"},
                },
                {
                    "location": {"reference": "Location/location-01"},
                    "period": {"start": "2021-03-04T11:00:00Z"},
                },
            ],
            "serviceProvider": {"type": "Organization", "identifier": {"system": "urn:org", "value": "O7"}},
            "hospitalization": {
                "dischargeDisposition": {"coding": [{"system": "urn:dd", "code": "home"}]},
                "specialArrangement": [{"coding": [{"code": "wheel"}]}, {"text": "interpreter"}],
            },
            "account": [{"reference": "https://other.example.org/fhir/Account/a1"}],
            "partOf": {"reference": "Encounter/x-bare"},
        },
        {
            "resourceType": "Encounter",
            "id": "x-units",
            "status": "finished",
            "class": amb,
            "subject": {"reference": "Group/g1"},
            "period": {"start": "2020-01-01"},
            "length": {"value": 90, "unit": "min"},
            "episodeOfCare": [{"reference": "EpisodeOfCare/eoc-1"}, {"reference": "EpisodeOfCare/eoc-2"}],
            "basedOn": [
                {"reference": "ServiceRequest/sr-1", "identifier": {"system": "urn:sr", "value": "S1"}}
            ],
            "reasonReference": [{"reference": "Observation/o-1"}],
            "diagnosis": [{"condition": {"reference": "Procedure/pr-1"}}],
        },
    ]


def encounters(seeded: int) -> list[dict[str, Any]]:
    return [*synthetic_encounters(seeded, 11), *edge_cases()]


def walk(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every page of a search, following next links; each page's total the same."""
    pages = []
    following: list[tuple[str, str]] | None = pairs
    while following is not None:
        query: dict[str, list[str]] = {}
        for name, value in following:
            query.setdefault(name, []).append(value)
        status, _, bundle = search(query)
        assert status == 200, bundle
        pages.append(bundle)
        url = link(bundle, "next")
        following = parse_qsl(urlsplit(url).query, keep_blank_values=True) if url else None
        assert len(pages) < 100
    return pages


def api_answer(pairs: list[tuple[str, str]], count: int = 7) -> tuple[list[str], int]:
    """The ids of a full walk of ``count`` a page, in order, and the total every page gave."""
    pages = walk([*pairs, ("_count", str(count))])
    found = [i for page in pages for i in ids_of(page)]
    assert {page.get("total") for page in pages} == {len(found)}, pairs
    return found, len(found)


def oracle_answer(resources: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> tuple[list[str], int]:
    found = [r["id"] for r in oracle.search(resources, pairs, base_url=BASE_URL, now=datetime.now(UTC))]
    return found, len(found)


def first_value(resources: list[dict[str, Any]], getter: Any) -> Any:
    return next(v for r in resources if (v := getter(r)) is not None)


def queries(resources: list[dict[str, Any]]) -> list[list[tuple[str, str]]]:
    """Queries for every parameter and modifier, with values taken from the data."""
    seeded = [r for r in resources if r["id"].startswith("enc-")]
    some = seeded[3]
    cls = some["class"]
    type_coding = some["type"][0]["coding"][0]
    identifier = some["identifier"][0]
    practitioner = first_value(
        seeded, lambda r: next((p["individual"]["reference"] for p in r.get("participant", [])), None)
    )
    location = first_value(
        seeded, lambda r: next((x["location"]["reference"] for x in r.get("location", [])), None)
    )
    provider = first_value(seeded, lambda r: (r.get("serviceProvider") or {}).get("reference"))
    reason = first_value(seeded, lambda r: next((c["coding"][0] for c in r.get("reasonCode", [])), None))
    disposition = first_value(
        seeded,
        lambda r: ((r.get("hospitalization") or {}).get("dischargeDisposition") or {}).get("coding", [None])[
            0
        ],
    )
    diagnosis = first_value(
        seeded, lambda r: next((d["condition"]["reference"] for d in r.get("diagnosis", [])), None)
    )
    patient = some["subject"]["reference"]
    q: list[list[tuple[str, str]]] = [
        [("class", cls["code"])],
        [("class", f"{cls['system']}|{cls['code']}")],
        [("class", f"{cls['system']}|")],
        [("class", f"|{cls['code']}")],
        [("class", "EMER,IMP")],
        [("class:not", cls["code"])],
        [("type", type_coding["code"])],
        [("type", f"{SNOMED}|{type_coding['code']}")],
        [("type", "walk-in"), ("type", "185347001")],
        [("type", "|no-system-type")],
        [("type", f"{LOCAL_TYPES}|")],
        [("type:missing", "true")],
        [("type:missing", "false")],
        [("type:not", f"{SNOMED}|{type_coding['code']}")],
        [("identifier", f"{identifier['system']}|{identifier['value']}")],
        [("identifier", identifier["value"])],
        [("identifier", "|no-system-1")],
        [("identifier", "no-system-1")],
        [("participant-type", "PPRF")],
        [("participant-type", "urn:local|helper")],
        [("participant-type:missing", "true")],
        [("reason-code", reason["code"])],
        [("reason-code", "headache")],
        [("reason-code:missing", "true")],
        [("special-arrangement", "wheel")],
        [("special-arrangement:missing", "false")],
        [("discharge-disposition", disposition["code"])],
        [("discharge-disposition", "urn:dd|home")],
        [("status", "finished")],
        [("status:not", "finished,cancelled")],
        [("participant", practitioner)],
        [("participant", practitioner.split("/")[1])],
        [("participant", f"{BASE_URL}/{practitioner}")],
        [("participant", "PractitionerRole/role-1")],
        [("participant:identifier", "urn:npi|123")],
        [("participant:Practitioner", "practitioner-14")],
        [("participant:missing", "true")],
        [("practitioner", "practitioner-14")],
        [("practitioner", "PractitionerRole/role-1")],
        [("practitioner:missing", "true")],
        [("location", location)],
        [("location", "location-01")],
        [("location:identifier", "urn:loc|L9")],
        [("location:missing", "false")],
        [("service-provider", provider)],
        [("service-provider:identifier", "urn:org|O7")],
        [("service-provider:identifier", "O7")],
        [("service-provider:missing", "true")],
        [("episode-of-care", "eoc-2")],
        [("based-on:identifier", "urn:sr|S1")],
        [("based-on", "ServiceRequest/sr-1")],
        [("part-of", "x-bare")],
        [("part-of:missing", "false")],
        [("reason-reference", "Observation/o-1")],
        [("diagnosis", diagnosis)],
        [("diagnosis", "Procedure/pr-1")],
        [("account", "https://other.example.org/fhir/Account/a1")],
        [("account", "a1")],
        [("account:missing", "false")],
        [("location-period", "ge2021-03-04T11:30:00Z")],
        [("location-period", "eq2021-03-04")],
        [("location-period:missing", "true")],
        [("_lastUpdated", "ge2000")],
        [("_lastUpdated", "lt2000")],
        [("length", "gt30|http://unitsofmeasure.org|min")],
        [("length", "2|http://unitsofmeasure.org|h")],
        [("length", "120||min")],
        [("length", "90||min")],
        [("length", "le1.5")],
        [("length:missing", "true")],
        [("subject:Patient", patient.split("/")[1])],
        [("subject:Group", "g1")],
        [("patient:missing", "true")],
        [("subject:identifier", "urn:x|nothing")],
        [("date:missing", "true")],
        [("appointment:missing", "false")],
        [("_id:not", "x-bare,x-multi")],
        # US Core shapes: patient and another parameter
        [("patient", patient), ("class", cls["code"])],
        [("patient", patient), ("type", type_coding["code"])],
        [("patient", patient), ("status", "finished")],
        [("patient", patient), ("identifier", f"{identifier['system']}|{identifier['value']}")],
        [("patient", patient), ("location", location)],
        [("patient", patient), ("discharge-disposition", disposition["code"])],
        [("patient", patient), ("_lastUpdated", "ge2000")],
        [("patient", patient), ("date", "ge2015")],
        [("patient", "patient-0001"), ("type", "walk-in"), ("class", "EMER")],
        # several indexed criteria, and indexed ones with dates
        [("class", cls["code"]), ("type", type_coding["code"]), ("status", "finished")],
        [("class", cls["code"]), ("date", "ge2021"), ("date", "lt2023")],
        [("participant-type", "PPRF"), ("participant", practitioner)],
        [("subject", "Group/g1"), ("episode-of-care", "eoc-1")],
    ]
    return q


# ---- _sort ---------------------------------------------------------------------------------------

PATIENT = "Patient/patient-0001"


def ties(first: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Encounters that tie with the first load's on period.start (and with each other), and one
    with an end but no start."""
    dated = next(r for r in first if r.get("subject", {}).get("reference") == PATIENT and "period" in r)
    made = []
    for n in range(4):
        twin = copy.deepcopy(dated)
        twin["id"] = f"tie-{n}"
        made.append(twin)
    made.append({**copy.deepcopy(dated), "id": "end-only", "period": {"end": "2022-05-01T00:00:00Z"}})
    made.append({**copy.deepcopy(dated), "id": "no-period"} | {"period": {}})
    return made


# Every sortable key each way, and every pair of them in each pair of directions.
SORTS = [
    *SORTABLE,
    *(f"-{name}" for name in SORTABLE),
    "date,_lastUpdated",
    "date,-_lastUpdated",
    "-date,_lastUpdated",
    "-date,-_lastUpdated",
    "_lastUpdated,date",
    "_lastUpdated,-date",
    "-_lastUpdated,date",
    "-_lastUpdated,-date",
]
SORT_CRITERIA: list[list[tuple[str, str]]] = [
    [],
    [("patient", PATIENT)],
    [("patient", PATIENT), ("status", "finished")],
    [("class", "AMB")],
    [("date", "ge2021")],
    [("status", "finished,in-progress")],
    [("_id", "tie-0,tie-3,x-multi,end-only")],
    [("patient", PATIENT), ("date", "lt2023"), ("class", "AMB,EMER")],
    [("subject:missing", "true")],
]


def sort_queries(sort: str) -> list[list[tuple[str, str]]]:
    """``_sort=sort`` alone and with criteria that pick each kind of plan."""
    return [[*criteria, ("_sort", sort)] for criteria in SORT_CRITERIA]
