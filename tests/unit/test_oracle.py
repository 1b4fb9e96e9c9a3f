"""The brute-force R4 search oracle (tests/oracle.py) on hand-made Encounters: which ids each query finds.

Each case names a small corpus, a query as ``name=value`` pairs (decoded, as a query string gives them)
and the ids R4 says it matches, worked out by hand from the search page's tables.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.oracle import (
    PARAMETERS,
    SUBSETTED,
    UnsupportedQueryError,
    date_range,
    elements,
    matches,
    micros,
    search,
    summary,
)

BASE = "https://fhir.example.org/r4"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OTHER = "https://other.example.org/fhir"


def encounter(encounter_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"system": ACT, "code": "AMB"},
        **fields,
    }


def concept(*codings: tuple[str | None, str | None], text: str | None = None) -> dict[str, Any]:
    coding = [{k: v for k, v in (("system", s), ("code", c)) if v is not None} for s, c in codings]
    return {k: v for k, v in (("coding", coding), ("text", text)) if v}


def ref(reference: str) -> dict[str, Any]:
    return {"reference": reference}


def duration(
    value: float, code: str | None = "min", system: str | None = UCUM, **more: Any
) -> dict[str, Any]:
    fields = {"value": value, "system": system, "code": code, **more}
    return {k: v for k, v in fields.items() if v is not None}


def query(*pairs: str) -> list[tuple[str, str]]:
    """``name=value`` strings as decoded pairs (split at the first ``=``)."""
    return [(pair.split("=", 1)[0], pair.split("=", 1)[1]) for pair in pairs]


# ---- corpora ----------------------------------------------------------------------------------

PTYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ARRANGEMENT = "http://terminology.hl7.org/CodeSystem/encounter-special-arrangements"
DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
ICD = "http://hl7.org/fhir/sid/icd-10"

TOKENS = [
    encounter(
        "t1",
        type=[concept((SCT, "111"), ("urn:local", "A")), concept((SCT, "222"))],
        identifier=[{"system": "urn:mrn", "value": "123"}, {"system": "urn:other", "value": "ABC"}],
        reasonCode=[concept((ICD, "J10"))],
        participant=[{"type": [concept((PTYPE, "ATND"))], "individual": ref("Practitioner/d1")}],
        hospitalization={
            "specialArrangement": [concept((ARRANGEMENT, "wheel")), concept((ARRANGEMENT, "int"))],
            "dischargeDisposition": concept((DISPOSITION, "home")),
        },
    ),
    encounter(
        "t2",
        status="arrived",
        **{"class": {"system": ACT, "code": "EMER"}},
        type=[concept((None, "111"))],
        identifier=[{"value": "123"}],
        reasonCode=[concept((SCT, "J10"))],
        participant=[{"type": [concept((PTYPE, "CON"))]}],
        hospitalization={"dischargeDisposition": concept((DISPOSITION, "snf"))},
    ),
    encounter(
        "t3",
        status="cancelled",
        **{"class": {"system": "urn:other-classes", "code": "AMB"}},
        type=[concept(text="a visit")],
    ),
    encounter(
        "t4",
        **{"class": {"system": ACT, "code": "amb"}},
        type=[concept((SCT, None))],
        identifier=[{"system": "urn:mrn", "value": "999"}, {"system": "urn:odd", "value": "a,b|c"}],
        hospitalization={"specialArrangement": [concept((ARRANGEMENT, "WHEEL"))]},
    ),
    encounter("t5", status="planned", **{"class": {"system": ACT, "code": "IMP"}}),
]

REFERENCES = [
    encounter(
        "r1",
        subject=ref("Patient/p1"),
        participant=[{"individual": ref("Practitioner/d1")}, {"individual": ref("PractitionerRole/d1")}],
        location=[{"location": ref("Location/l1")}],
        serviceProvider=ref("Organization/o1"),
        episodeOfCare=[ref("EpisodeOfCare/e1")],
        basedOn=[ref("ServiceRequest/s1")],
        partOf=ref("Encounter/x1"),
        reasonReference=[ref("Condition/c1"), ref("Observation/ob1")],
        diagnosis=[{"condition": ref("Condition/c1")}, {"condition": ref("Procedure/pr1")}],
        account=[ref("Account/a1")],
        appointment=[ref("Appointment/ap1")],
    ),
    encounter(
        "r2",
        subject=ref(f"{BASE}/Patient/p2"),
        participant=[{"individual": ref("RelatedPerson/d1")}],
        diagnosis=[{"condition": ref("Condition/c2/_history/3")}],
        account=[ref(f"{OTHER}/Account/a1")],
    ),
    encounter(
        "r3",
        subject=ref("Group/p1"),
        participant=[{"individual": ref(f"{BASE}/Practitioner/d2")}],
        location=[{"location": ref(f"{OTHER}/Location/l1/_history/2")}],
    ),
    encounter(
        "r4",
        subject={"identifier": {"system": "urn:mrn", "value": "42"}},
        participant=[{"individual": ref("Practitioner?identifier=urn:npi|7")}],
        serviceProvider=ref("#org1"),
        contained=[{"resourceType": "Organization", "id": "org1"}],
    ),
    encounter(
        "r5",
        subject=ref(f"{OTHER}/Patient/p1"),
        participant=[{"individual": ref(f"{OTHER}/Practitioner/d1")}],
    ),
    encounter("r6"),
    encounter("r7", subject={"reference": "Patient/p7", "identifier": {"system": "urn:mrn", "value": "42"}}),
    encounter("r8", subject={"type": "Patient", "identifier": {"system": "urn:mrn", "value": "43"}}),
]

DATES = [
    encounter("d1", period={"start": "2023-03-10T10:00:00Z", "end": "2023-03-10T11:00:00Z"}),
    # 2023-03-11T04:30Z to 06:00Z
    encounter("d2", period={"start": "2023-03-10T23:30:00-05:00", "end": "2023-03-11T01:00:00-05:00"}),
    encounter("d3", period={"start": "2023-03-01"}),  # still open
    encounter("d4", period={"end": "2023-02-15"}),  # no start
    encounter("d5", period={"start": "2022-12-31T23:00:00Z", "end": "2023-01-01T01:00:00Z"}),
    encounter("d6"),
    encounter("d8", period={"start": "2023-03", "end": "2023-04"}),
    encounter(
        "lp1",
        location=[
            {
                "location": ref("Location/a"),
                "period": {"start": "2023-01-01T00:00:00Z", "end": "2023-01-01T23:00:00Z"},
            },
            {"location": ref("Location/b"), "period": {"start": "2023-02-01", "end": "2023-02-02"}},
        ],
    ),
    encounter("lp2", location=[{"location": ref("Location/a")}]),
    encounter("u1", meta={"lastUpdated": "2024-05-01T10:00:00.123Z"}),
    encounter("u2", meta={"lastUpdated": "2024-05-01T10:00:00Z"}),
    encounter("u3", meta={"lastUpdated": "2024-04-30T22:00:00-05:00"}),  # 2024-05-01T03:00Z
]
PERIODS = {"d1", "d2", "d3", "d4", "d5", "d8"}  # the DATES with a period
UPDATED = {"u1", "u2", "u3"}

LENGTHS = [
    encounter("q1", length=duration(90)),
    encounter("q2", length=duration(1.5, "h")),
    encounter("q3", length=duration(2, "d")),
    encounter("q4", length=duration(100)),
    encounter("q5", length=duration(5400, "s")),
    encounter("q6", length=duration(90, None, None, unit="minutes")),
    encounter("q7", length=duration(90, "min", "http://example.org/units")),
    encounter("q8"),
    encounter("q9", length=duration(99.5)),
    encounter("q10", length=duration(100.5)),
]

CORPORA = {"tokens": TOKENS, "references": REFERENCES, "dates": DATES, "lengths": LENGTHS}


def found(corpus: str, params: list[tuple[str, str]], now: datetime = NOW) -> set[str]:
    """The ids ``search`` returns, after checking that ``matches`` agrees with it one by one."""
    encounters = CORPORA[corpus]
    ids = {e["id"] for e in search(encounters, params, base_url=BASE, now=now)}
    assert ids == {e["id"] for e in encounters if matches(e, params, base_url=BASE, now=now)}
    return ids


def ids_of(corpus: str) -> set[str]:
    return {e["id"] for e in CORPORA[corpus]}


# ---- token ------------------------------------------------------------------------------------

TOKEN_CASES = [
    # status: a code with the implicit system http://hl7.org/fhir/encounter-status
    (("status=finished",), {"t1", "t4"}),
    (("status=finished,arrived",), {"t1", "t2", "t4"}),
    (("status=http://hl7.org/fhir/encounter-status|arrived",), {"t2"}),
    (("status=http://hl7.org/fhir/encounter-status|",), {"t1", "t2", "t3", "t4", "t5"}),
    (("status=|finished",), set()),
    (("status=urn:other|finished",), set()),
    (("status=Finished",), set()),  # codes are case-sensitive
    (("status:not=finished",), {"t2", "t3", "t5"}),
    (("status:not=finished,arrived",), {"t3", "t5"}),
    (("status=finished", "status=arrived"), set()),  # repeated: AND
    (("status=finished,arrived", "status=arrived,cancelled"), {"t2"}),
    (("status:missing=false",), {"t1", "t2", "t3", "t4", "t5"}),
    (("status:missing=true",), set()),
    # class: a Coding
    (("class=AMB",), {"t1", "t3"}),
    (("class=amb",), {"t4"}),
    ((f"class={ACT}|AMB",), {"t1"}),
    ((f"class={ACT}|",), {"t1", "t2", "t4", "t5"}),
    (("class=|AMB",), set()),
    (("class=urn:other-classes|",), {"t3"}),
    (("class:not=AMB",), {"t2", "t4", "t5"}),
    (("class:missing=true",), set()),
    ((f"class:not={ACT}|AMB",), {"t2", "t3", "t4", "t5"}),
    # type: CodeableConcept, any coding; several codings and several concepts
    (("type=111",), {"t1", "t2"}),
    ((f"type={SCT}|111",), {"t1"}),
    (("type=|111",), {"t2"}),
    ((f"type={SCT}|",), {"t1", "t4"}),  # t4's coding has the system and no code
    (("type=urn:local|A",), {"t1"}),
    (("type=222",), {"t1"}),
    ((f"type={SCT}|111", f"type={SCT}|222"), {"t1"}),  # in two concepts of one Encounter
    ((f"type={SCT}|111", "type=urn:local|A"), {"t1"}),  # two codings of one concept
    (("type=urn:local|A,|111",), {"t1", "t2"}),
    (("type=a visit",), set()),  # text is not a code
    (("type:not=111",), {"t3", "t4", "t5"}),
    (("type:missing=true",), {"t5"}),
    (("type:missing=false",), {"t1", "t2", "t3", "t4"}),  # a concept with text only is a value
    # identifier: system and value
    (("identifier=123",), {"t1", "t2"}),
    (("identifier=urn:mrn|123",), {"t1"}),
    (("identifier=|123",), {"t2"}),
    (("identifier=urn:other|",), {"t1"}),
    (("identifier=urn:mrn|",), {"t1", "t4"}),
    (("identifier=ABC",), {"t1"}),
    (("identifier=abc",), set()),
    (("identifier=urn:mrn|123", "identifier=urn:other|ABC"), {"t1"}),
    (("identifier=urn:mrn|123,urn:mrn|999",), {"t1", "t4"}),
    (("identifier:not=123",), {"t3", "t4", "t5"}),
    (("identifier:missing=true",), {"t3", "t5"}),
    # escapes: \, and \| are part of the value
    (("identifier=urn:odd|a\\,b\\|c",), {"t4"}),
    (("identifier=a\\,b\\|c",), {"t4"}),
    (("identifier=a\\,b",), set()),
    (("identifier=a\\,b\\|c,123",), {"t1", "t2", "t4"}),
    # reason-code
    (("reason-code=J10",), {"t1", "t2"}),
    ((f"reason-code={ICD}|J10",), {"t1"}),
    ((f"reason-code={SCT}|J10",), {"t2"}),
    (("reason-code:missing=true",), {"t3", "t4", "t5"}),
    # participant-type
    (("participant-type=ATND",), {"t1"}),
    ((f"participant-type={PTYPE}|CON",), {"t2"}),
    (("participant-type=ATND,CON",), {"t1", "t2"}),
    (("participant-type:not=ATND",), {"t2", "t3", "t4", "t5"}),
    (("participant-type:missing=true",), {"t3", "t4", "t5"}),
    # special-arrangement
    (("special-arrangement=wheel",), {"t1"}),
    (("special-arrangement=WHEEL",), {"t4"}),
    ((f"special-arrangement={ARRANGEMENT}|int",), {"t1"}),
    (("special-arrangement=wheel", "special-arrangement=int"), {"t1"}),
    (("special-arrangement:missing=false",), {"t1", "t4"}),
    # discharge-disposition (US Core)
    (("discharge-disposition=home",), {"t1"}),
    ((f"discharge-disposition={DISPOSITION}|snf",), {"t2"}),
    (("discharge-disposition:not=home",), {"t2", "t3", "t4", "t5"}),
    (("discharge-disposition:missing=true",), {"t3", "t4", "t5"}),
    # _id: a token without a system
    (("_id=t1",), {"t1"}),
    (("_id=t1,t3",), {"t1", "t3"}),
    (("_id=|t1",), {"t1"}),
    (("_id=urn:x|t1",), set()),
    (("_id:not=t1",), {"t2", "t3", "t4", "t5"}),
    (("_id:missing=true",), set()),
    # parameters that shape the result do not filter
    (("status=arrived", "_count=1", "_sort=-date", "_summary=true", "_total=accurate"), {"t2"}),
    # both :missing values
    (("type:missing=true,false",), {"t1", "t2", "t3", "t4", "t5"}),
]


@pytest.mark.parametrize(
    ("pairs", "expected"), TOKEN_CASES, ids=lambda v: "&".join(v) if isinstance(v, tuple) else ""
)
def test_token_search_finds(pairs: tuple[str, ...], expected: set[str]) -> None:
    assert found("tokens", query(*pairs)) == expected


# ---- reference --------------------------------------------------------------------------------

REFERENCE_CASES = [
    # subject: Group or Patient; a bare id matches either type
    (("subject=p1",), {"r1", "r3"}),
    (("subject=Patient/p1",), {"r1"}),
    (("subject:Patient=p1",), {"r1"}),
    (("subject:Group=p1",), {"r3"}),
    (("subject:Patient=Patient/p1",), {"r1"}),
    ((f"subject={BASE}/Patient/p1",), {"r1"}),  # absolute under the base = local
    (("subject=Patient/p2",), {"r2"}),  # stored absolute under the base
    (("subject=p2",), {"r2"}),
    ((f"subject={OTHER}/Patient/p1",), {"r5"}),  # another server: that URL only
    ((f"subject={OTHER}/Patient/p1/_history/9",), {"r5"}),
    (("subject=Patient/p1/_history/2",), {"r1"}),
    (("subject=p1,p2",), {"r1", "r2", "r3"}),
    (("subject=Device/p1",), set()),  # not a target type
    (("subject=p7",), {"r7"}),
    (("subject:identifier=urn:mrn|42",), {"r4", "r7"}),
    (("subject:identifier=42",), {"r4", "r7"}),
    (("subject:identifier=urn:mrn|",), {"r4", "r7", "r8"}),
    (("subject:identifier=|42",), set()),
    (("subject:missing=true",), {"r6"}),
    (("subject:missing=false",), {"r1", "r2", "r3", "r4", "r5", "r7", "r8"}),
    # patient: subject.where(resolve() is Patient)
    (("patient=p1",), {"r1"}),
    (("patient=Patient/p1",), {"r1"}),
    (("patient:Patient=p1",), {"r1"}),
    (("patient=Group/p1",), set()),
    ((f"patient={OTHER}/Patient/p1",), {"r5"}),
    (("patient:identifier=urn:mrn|43",), {"r8"}),  # typed logical reference
    (("patient:identifier=urn:mrn|42",), {"r7"}),  # r4's logical reference has no type
    (("patient:missing=true",), {"r3", "r4", "r6"}),
    (("patient:missing=false",), {"r1", "r2", "r5", "r7", "r8"}),
    # participant (any of its types) and practitioner (Practitioner only)
    (("participant=d1",), {"r1", "r2"}),
    (("participant=PractitionerRole/d1",), {"r1"}),
    (("participant:RelatedPerson=d1",), {"r2"}),
    (("participant=d2",), {"r3"}),
    (("practitioner=d1",), {"r1"}),
    (("practitioner=Practitioner/d2",), {"r3"}),
    ((f"practitioner={OTHER}/Practitioner/d1",), {"r5"}),
    (("practitioner:missing=true",), {"r2", "r6", "r7", "r8"}),  # r4's conditional is a Practitioner
    (("participant:missing=true",), {"r6", "r7", "r8"}),
    # location, service-provider, episode-of-care, based-on, part-of
    (("location=l1",), {"r1"}),
    (("location=Location/l1",), {"r1"}),
    ((f"location={OTHER}/Location/l1",), {"r3"}),
    (("location:missing=true",), {"r2", "r4", "r5", "r6", "r7", "r8"}),
    (("service-provider=o1",), {"r1"}),
    (("service-provider=org1",), set()),  # contained: no value to match
    (("service-provider:missing=false",), {"r1", "r4"}),
    (("episode-of-care=e1",), {"r1"}),
    (("episode-of-care=EpisodeOfCare/e2",), set()),
    (("episode-of-care:missing=false",), {"r1"}),
    (("based-on=ServiceRequest/s1",), {"r1"}),
    (("based-on:missing=true",), {"r2", "r3", "r4", "r5", "r6", "r7", "r8"}),
    (("part-of=x1",), {"r1"}),
    (("part-of=Encounter/x1",), {"r1"}),
    (("part-of:missing=true",), {"r2", "r3", "r4", "r5", "r6", "r7", "r8"}),
    # reason-reference and diagnosis: several target types
    (("reason-reference=c1",), {"r1"}),
    (("reason-reference=Observation/ob1",), {"r1"}),
    (("reason-reference:Condition=ob1",), set()),
    (("reason-reference:Observation=ob1",), {"r1"}),
    (("reason-reference:missing=false",), {"r1"}),
    (("diagnosis=c2",), {"r2"}),  # stored with a version
    (("diagnosis=Procedure/pr1",), {"r1"}),
    (("diagnosis:Procedure=c1",), set()),
    (("diagnosis=c1,c2",), {"r1", "r2"}),
    (("diagnosis:missing=false",), {"r1", "r2"}),
    # account and appointment
    (("account=a1",), {"r1"}),
    ((f"account={OTHER}/Account/a1",), {"r2"}),
    ((f"account={BASE}/Account/a1",), {"r1"}),
    (("account:missing=false",), {"r1", "r2"}),
    (("appointment=ap1",), {"r1"}),
    (("appointment:missing=true",), {"r2", "r3", "r4", "r5", "r6", "r7", "r8"}),
    # AND across parameters
    (("subject=p1", "practitioner=d2"), {"r3"}),
]


@pytest.mark.parametrize(
    ("pairs", "expected"), REFERENCE_CASES, ids=lambda v: "&".join(v) if isinstance(v, tuple) else ""
)
def test_reference_search_finds(pairs: tuple[str, ...], expected: set[str]) -> None:
    assert found("references", query(*pairs)) == expected


def test_a_base_url_with_a_trailing_slash_is_the_same_base() -> None:
    ids = {e["id"] for e in search(REFERENCES, query("subject=Patient/p2"), base_url=BASE + "/")}
    assert ids == {"r2"}


# ---- date -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2023", "2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("2023-02", "2023-02-01T00:00:00Z", "2023-03-01T00:00:00Z"),
        ("2023-12-31", "2023-12-31T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2023-03-10T10:30", "2023-03-10T10:30:00Z", "2023-03-10T10:31:00Z"),
        ("2023-03-10T10:30+02:00", "2023-03-10T08:30:00Z", "2023-03-10T08:31:00Z"),
        ("2023-03-10T10:30:15", "2023-03-10T10:30:15Z", "2023-03-10T10:30:16Z"),
        ("2023-03-10T23:30:00-05:00", "2023-03-11T04:30:00Z", "2023-03-11T04:30:01Z"),
        ("2023-03-10T10:30:15.5Z", "2023-03-10T10:30:15.500000Z", "2023-03-10T10:30:15.600000Z"),
        ("2023-03-10T10:30:15.123Z", "2023-03-10T10:30:15.123000Z", "2023-03-10T10:30:15.124000Z"),
        ("2023-03-10T10:30:15.1234567Z", "2023-03-10T10:30:15.123456Z", "2023-03-10T10:30:15.123457Z"),
    ],
)
def test_a_date_spans_its_precision(text: str, low: str, high: str) -> None:
    assert date_range(text) == (micros(datetime.fromisoformat(low)), micros(datetime.fromisoformat(high)))


DATE_CASES = [
    # a day: [2023-03-10T00Z, 2023-03-11T00Z)
    (("date=2023-03-10",), {"d1"}),
    (("date=eq2023-03-10",), {"d1"}),
    (("date=ne2023-03-10",), {"d2", "d3", "d4", "d5", "d8"}),  # never the Encounter without a period
    (("date=gt2023-03-10",), {"d2", "d3", "d8"}),
    (("date=lt2023-03-10",), {"d3", "d4", "d5", "d8"}),
    (("date=ge2023-03-10",), {"d1", "d2", "d3", "d8"}),
    (("date=le2023-03-10",), {"d1", "d3", "d4", "d5", "d8"}),
    (("date=sa2023-03-10",), {"d2"}),
    (("date=eb2023-03-10",), {"d4", "d5"}),
    (("date=ap2023-03-10",), {"d1", "d2", "d3", "d4", "d8"}),  # +-66 days from 2025-01-01
    # a year and a month
    (("date=2023",), {"d1", "d2", "d8"}),
    (("date=ne2023",), {"d3", "d4", "d5"}),
    (("date=lt2023",), {"d4", "d5"}),
    (("date=eb2023",), set()),
    (("date=sa2022",), {"d1", "d2", "d3", "d8"}),
    (("date=gt2023",), {"d3"}),
    (("date=2023-03",), {"d1", "d2"}),
    (("date=le2023-02",), {"d4", "d5"}),
    (("date=ge2023-04",), {"d3"}),  # d8 ends with April: not above it
    # times and zones
    (("date=2023-03-10T23:30:00-05:00",), set()),
    (("date=ge2023-03-10T23:30:00-05:00",), {"d2", "d3", "d8"}),
    (("date=sa2023-03-10T19:00:00-05:00",), {"d2"}),
    (("date=sa2023-03-11T00:00:00Z",), {"d2"}),
    (("date=sa2023-03-11T00:00:00",), {"d2"}),  # no zone: UTC
    (("date=ge2023-03-10T10:00:00Z", "date=le2023-03-10T11:00:00Z"), {"d1", "d3", "d8"}),
    (("date=eq2023-03-10T10:00Z",), set()),
    (("date=ge2023-03-10T10:59Z", "date=lt2023-03-10T11:00:01Z"), {"d1", "d3", "d8"}),
    (("date=2023-03-11",), {"d2"}),
    (("date=2023-03-11T04:00+00:00",), set()),
    (("date=lt2023-03-11T04:30:00Z",), {"d1", "d3", "d4", "d5", "d8"}),
    (("date=le2023-03-11T04:30:00Z",), {"d1", "d3", "d4", "d5", "d8"}),
    (("date=lt2023-03-11T04:30:01Z",), {"d1", "d2", "d3", "d4", "d5", "d8"}),
    # a date-only start covers its whole day
    (("date=ge2023-03-01",), {"d1", "d2", "d3", "d8"}),
    (("date=lt2023-03-01",), {"d4", "d5"}),
    # AND and OR
    (("date=ge2023-03-01", "date=lt2023-03-11"), {"d1", "d3", "d8"}),
    (("date=eq2023-03-10,lt2023",), {"d1", "d4", "d5"}),
    (("date:missing=true",), ids_of("dates") - PERIODS),
    (("date:missing=false",), PERIODS),
    # location-period: each location's period on its own
    (("location-period=2023-01-01",), {"lp1"}),
    (("location-period=ne2023-01-01",), {"lp1"}),
    (("location-period=2023-02-01",), set()),  # 2023-02-02 as an end spans that whole day
    (("location-period=2023-02",), {"lp1"}),
    (("location-period=2023-03",), set()),
    (("location-period=sa2022",), {"lp1"}),
    (("location-period:missing=true",), ids_of("dates") - {"lp1"}),
    # _lastUpdated: an instant spans its precision
    (("_lastUpdated=2024-05-01",), {"u1", "u2", "u3"}),
    (("_lastUpdated=2024-04-30",), set()),
    (("_lastUpdated=ge2024-05-01T10:00:00Z",), {"u1", "u2"}),
    (("_lastUpdated=gt2024-05-01T10:00:00Z",), set()),
    (("_lastUpdated=lt2024-05-01T10:00:00.100Z",), {"u2", "u3"}),
    (("_lastUpdated=eq2024-05-01T10:00:00.123Z",), {"u1"}),
    (("_lastUpdated=2024-05-01T05:00:00+02:00",), {"u3"}),
    (("_lastUpdated=sa2024-05-01T03:00:00Z",), {"u1", "u2"}),
    (("_lastUpdated:missing=true",), ids_of("dates") - UPDATED),
]


@pytest.mark.parametrize(
    ("pairs", "expected"), DATE_CASES, ids=lambda v: "&".join(v) if isinstance(v, tuple) else ""
)
def test_date_search_finds(pairs: tuple[str, ...], expected: set[str]) -> None:
    assert found("dates", query(*pairs)) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), {"d1", "d2", "d3", "d4", "d8"}),  # +-66 days
        (datetime(2023, 3, 20, tzinfo=UTC), {"d1", "d2", "d3", "d8"}),  # +-1 day
        (datetime(2023, 3, 10, tzinfo=UTC), {"d1", "d3", "d8"}),  # no margin: the day itself
        (datetime(2023, 3, 10), {"d1", "d3", "d8"}),  # a naive now is UTC
    ],
)
def test_ap_widens_by_a_tenth_of_the_distance_to_now(now: datetime, expected: set[str]) -> None:
    assert found("dates", query("date=ap2023-03-10"), now=now) == expected


# ---- quantity ---------------------------------------------------------------------------------

LENGTH_CASES = [
    # a bare number ignores units: [89.5, 90.5)
    (("length=90",), {"q1", "q6", "q7"}),
    (("length=90,2",), {"q1", "q2", "q3", "q6", "q7"}),  # 1.5 h is within [1.5, 2.5)
    # UCUM: compared in seconds, [89.5 min, 90.5 min)
    ((f"length=90|{UCUM}|min",), {"q1", "q2", "q5"}),
    (("length=90||min",), {"q1", "q2", "q5", "q7"}),  # q7's code, no conversion
    (("length=90||minutes",), {"q6"}),  # the unit
    (("length=90|http://example.org/units|min",), {"q7"}),
    ((f"length=1.5|{UCUM}|h",), {"q1", "q2", "q5"}),
    ((f"length=5400|{UCUM}|s",), {"q1", "q2", "q5"}),
    ((f"length=2|{UCUM}|d",), {"q3"}),
    ((f"length=48|{UCUM}|h",), {"q3"}),
    ((f"length=0.3|{UCUM}|wk",), {"q3"}),
    ((f"length=2|{UCUM}|mo",), set()),  # not converted, and no Duration in mo
    # eq's range follows the significant figures
    (("length=100||min",), {"q4", "q9"}),
    (("length=100.0||min",), {"q4"}),
    (("length=1e2||min",), {"q1", "q2", "q4", "q5", "q7", "q9", "q10"}),
    (("length=ne100||min",), {"q1", "q2", "q3", "q5", "q7", "q10"}),
    # the other prefixes compare exactly
    (("length=gt90||min",), {"q3", "q4", "q9", "q10"}),
    (("length=ge90||min",), {"q1", "q2", "q3", "q4", "q5", "q7", "q9", "q10"}),
    (("length=lt100||min",), {"q1", "q2", "q5", "q7", "q9"}),
    (("length=le100||min",), {"q1", "q2", "q4", "q5", "q7", "q9"}),
    (("length=sa100||min",), {"q3", "q10"}),
    (("length=eb100||min",), {"q1", "q2", "q5", "q7", "q9"}),
    (("length=ap100||min",), {"q1", "q2", "q4", "q5", "q7", "q9", "q10"}),  # 90 min is exactly 10% off
    (("length=ap110||min",), {"q4", "q9", "q10"}),
    (("length=ge1||h", "length=lt2||h"), {"q1", "q2", "q4", "q5", "q9", "q10"}),
    (("length:missing=true",), {"q8"}),
    (("length:missing=false",), ids_of("lengths") - {"q8"}),
]


@pytest.mark.parametrize(
    ("pairs", "expected"), LENGTH_CASES, ids=lambda v: "&".join(v) if isinstance(v, tuple) else ""
)
def test_length_search_finds(pairs: tuple[str, ...], expected: set[str]) -> None:
    assert found("lengths", query(*pairs)) == expected


# ---- every parameter ------------------------------------------------------------------------

ALL_CASES = [pair for cases in (TOKEN_CASES, REFERENCE_CASES, DATE_CASES, LENGTH_CASES) for pair, _ in cases]


def test_every_parameter_is_searched_by_value_and_by_missing() -> None:
    names = {p.split("=", 1)[0] for pairs in ALL_CASES for p in pairs}
    by_value = {n for n in names if ":" not in n}
    by_missing = {n.split(":")[0] for n in names if n.endswith(":missing")}
    assert set(PARAMETERS) - by_value == set()
    assert set(PARAMETERS) - by_missing == set()


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_missing_splits_the_corpora_in_two(name: str) -> None:
    for corpus in CORPORA:
        present = found(corpus, query(f"{name}:missing=false"))
        absent = found(corpus, query(f"{name}:missing=true"))
        assert present | absent == ids_of(corpus)
        assert present & absent == set()


@pytest.mark.parametrize("name", sorted(p for p, d in PARAMETERS.items() if d.type == "reference"))
def test_every_reference_parameter_reads_its_own_path(name: str) -> None:
    """Each reference parameter finds r1 by the id r1 holds at its path, and nothing by a stranger's."""
    param = PARAMETERS[name]
    value = {"patient": "p1", "subject": "p1", "practitioner": "d1", "participant": "d1"}.get(name)
    held = {
        "account": "a1",
        "appointment": "ap1",
        "based-on": "s1",
        "diagnosis": "pr1",
        "episode-of-care": "e1",
        "location": "l1",
        "part-of": "x1",
        "reason-reference": "ob1",
        "service-provider": "o1",
    }
    wanted = value or held[name]
    assert "r1" in found("references", query(f"{name}={wanted}"))
    assert found("references", query(f"{name}=nobody")) == set()
    assert found("references", query(f"{name}:{param.targets[0]}=nobody")) == set()


# ---- errors: what the API answers with a 400 --------------------------------------------------


@pytest.mark.parametrize(
    "pair",
    [
        "foo=bar",
        "status:=finished",
        "status=",
        "status=finished,,arrived",
        "status=finished\\",
        "status=a|b|c",
        "status=|",
        "status:text=finished",
        "status:above=finished",
        "status:exact=finished",
        "status:missing=yes",
        "identifier:of-type=urn:x|MR|1",
        "subject:Device=p1",
        "subject:not=p1",
        "subject:above=p1",
        "subject:Patient=Group/p1",
        f"subject:Patient={OTHER}/Patient/p1",
        "subject=not a reference",
        "subject=Patient?identifier=urn:mrn|42",
        "service-provider=#org1",
        "patient:Group=p1",
        "date=2023-13",
        "date=2023-02-30",
        "date=xx2023",
        "date=2023/03/01",
        "date=2023-03-10T10",
        "date=2023-03-10T10:00:00+5",
        "date=2023-03-10T10:00:00 05:00",
        "date=ge",
        "date:not=2023",
        "date:exact=2023",
        "_lastUpdated:above=2023",
        "location-period=2023-03-10T25:00Z",
        "length=abc",
        "length=NaN",
        "length=90|min",
        f"length=90|{UCUM}|",
        "length=xx90",
        "length:not=90",
        "length=90||min|x",
    ],
)
def test_a_bad_query_raises(pair: str) -> None:
    with pytest.raises(UnsupportedQueryError):
        search([], query(pair), base_url=BASE)  # raised before any Encounter is looked at


def test_the_error_is_a_value_error() -> None:
    assert issubclass(UnsupportedQueryError, ValueError)


# ---- order ------------------------------------------------------------------------------------

ORDER = [
    encounter("s0", period={"start": "2023-01-02T08:00:00Z"}, meta={"lastUpdated": "2024-01-03T00:00:00Z"}),
    encounter("s1", period={"start": "2023-01-02T08:00:00Z"}, meta={"lastUpdated": "2024-01-01T00:00:00Z"}),
    encounter("s2", period={"start": "2023-01-01"}, meta={"lastUpdated": "2024-01-03T00:00:00Z"}),
    encounter("s3"),
    encounter("s4", period={"start": "2023-01-01T00:00:00Z"}),  # equal to s2's start
    encounter("s5", period={"end": "2023-01-05"}, status="cancelled"),
]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["s3", "s5", "s2", "s4", "s0", "s1"]),
        ("date", ["s3", "s5", "s2", "s4", "s0", "s1"]),
        ("-date", ["s0", "s1", "s2", "s4", "s3", "s5"]),
        ("_lastUpdated", ["s3", "s4", "s5", "s1", "s0", "s2"]),
        ("-_lastUpdated", ["s0", "s2", "s1", "s3", "s4", "s5"]),
        ("_lastUpdated,-date", ["s4", "s3", "s5", "s1", "s0", "s2"]),
        ("-_lastUpdated,date", ["s2", "s0", "s1", "s3", "s5", "s4"]),
        ("date,-_id", ["s5", "s3", "s4", "s2", "s1", "s0"]),
        ("_id", ["s0", "s1", "s2", "s3", "s4", "s5"]),
        ("-_id", ["s5", "s4", "s3", "s2", "s1", "s0"]),
    ],
)
def test_sort_orders_with_ties_by_id_and_missing_values_lowest(sort: str | None, expected: list[str]) -> None:
    params = query(f"_sort={sort}") if sort else []
    assert [e["id"] for e in search(reversed(ORDER), params, base_url=BASE)] == expected


def test_sort_applies_to_the_matches_only() -> None:
    params = query("status=finished", "_sort=-date")
    assert [e["id"] for e in search(ORDER, params, base_url=BASE)] == ["s0", "s1", "s2", "s4", "s3"]


@pytest.mark.parametrize(
    "params",
    [
        query("_sort=status"),
        query("_sort="),
        query("_sort=date,"),
        query("_sort=+date"),
        query("_sort=date", "_sort=_id"),
        query("_sort:asc=date"),
    ],
)
def test_a_bad_sort_raises(params: list[tuple[str, str]]) -> None:
    with pytest.raises(UnsupportedQueryError):
        search([], params, base_url=BASE)


# ---- _summary and _elements -------------------------------------------------------------------

FULL = encounter(
    "full",
    meta={"lastUpdated": "2024-01-01T00:00:00Z", "versionId": "2"},
    implicitRules="http://example.org/rules",
    language="en",
    text={"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"},
    contained=[{"resourceType": "Organization", "id": "o"}],
    extension=[{"url": "http://example.org/x", "valueString": "x"}],
    identifier=[{"system": "urn:mrn", "value": "1"}],
    statusHistory=[{"status": "arrived", "period": {"start": "2023-01-01"}}],
    classHistory=[{"class": {"system": ACT, "code": "EMER"}, "period": {"start": "2023-01-01"}}],
    type=[concept((SCT, "111"))],
    serviceType=concept((SCT, "222")),
    priority=concept((SCT, "333")),
    subject=ref("Patient/p1"),
    episodeOfCare=[ref("EpisodeOfCare/e1")],
    basedOn=[ref("ServiceRequest/s1")],
    participant=[
        {
            "id": "part1",
            "type": [concept((PTYPE, "ATND"))],
            "period": {"start": "2023-01-01"},
            "individual": ref("Practitioner/d1"),
        }
    ],
    appointment=[ref("Appointment/ap1")],
    period={"start": "2023-01-01", "end": "2023-01-02"},
    length=duration(1, "d"),
    reasonCode=[concept((ICD, "J10"))],
    reasonReference=[ref("Condition/c1")],
    diagnosis=[{"condition": ref("Condition/c1"), "use": concept((None, "AD")), "rank": 1}],
    account=[ref("Account/a1")],
    hospitalization={"dischargeDisposition": concept((DISPOSITION, "home"))},
    location=[{"location": ref("Location/l1")}],
    serviceProvider=ref("Organization/o1"),
    partOf=ref("Encounter/x1"),
)


def tags(resource: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = resource.get("meta", {}).get("tag", [])
    return result


def test_summary_true_keeps_the_summary_elements() -> None:
    result = summary(FULL, "true")
    assert set(result) == {
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "identifier",
        "status",
        "class",
        "type",
        "serviceType",
        "subject",
        "episodeOfCare",
        "participant",
        "appointment",
        "reasonCode",
        "reasonReference",
        "diagnosis",
    }
    assert result["participant"] == [
        {"type": FULL["participant"][0]["type"], "individual": ref("Practitioner/d1")}
    ]
    assert result["diagnosis"] == [{"condition": ref("Condition/c1")}]
    assert result["meta"]["versionId"] == "2"
    assert tags(result) == [SUBSETTED]


def test_summary_true_agrees_with_the_fhir_resources_models() -> None:
    """fhir.resources' R4B Encounter (unchanged from R4 in these flags) marks the same summary elements."""
    from fhir.resources.R4B import encounter as models

    def flagged(model: Any) -> set[str]:
        fields = model.model_fields.items()
        return {
            field.alias or name
            for name, field in fields
            if (field.json_schema_extra or {}).get("summary_element_property")
        }

    result = summary(FULL, "true")
    assert set(result) - {"resourceType"} == flagged(models.Encounter)
    assert set(result["participant"][0]) == flagged(models.EncounterParticipant) - {"modifierExtension"}
    assert set(result["diagnosis"][0]) == flagged(models.EncounterDiagnosis) - {"modifierExtension"}


def test_summary_text_keeps_text_id_meta_and_the_mandatory_elements() -> None:
    result = summary(FULL, "text")
    assert set(result) == {"resourceType", "id", "meta", "text", "status", "class"}
    assert tags(result) == [SUBSETTED]


def test_summary_data_drops_only_the_text() -> None:
    result = summary(FULL, "data")
    assert set(result) == set(FULL) - {"text"}
    assert tags(result) == [SUBSETTED]
    assert {k: v for k, v in result.items() if k != "meta"} == {
        k: v for k, v in FULL.items() if k not in ("meta", "text")
    }


def test_summary_false_is_the_resource_untagged() -> None:
    assert summary(FULL, "false") == FULL


def test_summary_does_not_change_its_input_or_tag_twice() -> None:
    before = copy.deepcopy(FULL)
    once = summary(FULL, "true")
    assert before == FULL
    assert tags(summary(once, "true")) == [SUBSETTED]


def test_summary_adds_meta_when_the_resource_has_none() -> None:
    assert summary(encounter("bare"), "data")["meta"] == {"tag": [SUBSETTED]}


@pytest.mark.parametrize("mode", ["count", "TRUE", "", "yes"])
def test_summary_of_one_resource_refuses_other_modes(mode: str) -> None:
    with pytest.raises(UnsupportedQueryError):
        summary(FULL, mode)


@pytest.mark.parametrize("names", ["subject,period", ["subject", "period"]])
def test_elements_keeps_the_named_and_the_mandatory_elements(names: str | list[str]) -> None:
    result = elements(FULL, names)
    assert set(result) == {"resourceType", "id", "meta", "status", "class", "subject", "period"}
    assert result["period"] == FULL["period"]
    assert tags(result) == [SUBSETTED]


def test_elements_of_an_absent_element_leaves_it_out() -> None:
    assert set(elements(encounter("bare"), "period")) == {"resourceType", "id", "meta", "status", "class"}


@pytest.mark.parametrize("names", ["subject,foo", "period.start", "Subject"])
def test_elements_refuses_what_is_not_an_encounter_element(names: str) -> None:
    with pytest.raises(UnsupportedQueryError):
        elements(FULL, names)
