"""Synthetic Encounters, the seed's and the bench's data set (tests/bench/dataset.py): repeatable,
valid, and as varied as the search scenarios need. The details that ``add_details`` adds are tested
on both, which both carry them; what each had before the details (today's part) is held to digests
of their output taken before the details existed, so that what tests, docs and measured figures
relied on stays the same."""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from fhir_encounter.dates import parse_range
from fhir_encounter_tools.ingest.seed import (
    FOREIGN_BASE_URL,
    SEED_PATIENT,
    synthetic_encounter,
    synthetic_encounters,
)
from fhir_encounter_tools.ingest.validation import STATUSES, encounter_problem, parse_json
from tests.bench.dataset import generate

SEEDED = list(synthetic_encounters(500, 7))
MANY = list(synthetic_encounters(2000, 7))
BENCH = generate(2000)
DATA_SETS = {"seed": MANY, "bench": BENCH.encounters}

# Elements that only the details add (today_part says what they add to the elements already there).
DETAIL_KEYS = frozenset(
    {"reasonReference", "diagnosis", "episodeOfCare", "basedOn", "account", "hospitalization", "partOf"}
)
# sha256 of the compact JSON text of the Encounters as the seed wrote them before the details.
SEED_7_FIRST_2000 = "1d76c0cb6198699874de8cc1a92c9c2d7557c3640b4b354093912f4741a80c1f"
SEED_7_5000_12345_99999 = "ad09c58d4b9d319ce0b9648066e5dc195271c0d8c5b7572e3ff3768198a8d1d2"
SEED_2026_FIRST_2000 = "c959d51b5db0191183e3f05be7ad4b15b6e887a602e18b569ebb529f7862d229"
# The same of generate(2000): its Encounters, and the patient counts, typical and busiest patient,
# shared appointment and sample id.
BENCH_2000_ENCOUNTERS = "7933d8815a6885f4241bdb053d4f0167978044a6915be501024d534c652cd6d7"
BENCH_2000_SUMMARY = "d8a84d5da6972995915e660d959db84758c713678596a868c6b38c39a218cb93"

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SNOMED = "http://snomed.info/sct"
NPI = "http://hl7.org/fhir/sid/us-npi"


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def today_part(
    resource: dict[str, Any], *, participants: int, location_keys: tuple[str, ...], length: bool
) -> dict[str, Any]:
    """``resource`` without what the details added: their own elements, the items after the first
    identifier, type and location, the codings after the first type's first, the participants after
    the first ``participants``, the first location's keys other than ``location_keys``, and the length
    unless ``length`` (an Encounter whose length was there before)."""
    part: dict[str, Any] = {}
    for key, value in resource.items():
        if key in DETAIL_KEYS or (key == "length" and not length):
            continue
        if key in ("identifier", "location"):
            value = value[:1]
        if key == "type":
            value = [{**value[0], "coding": value[0]["coding"][:1]}]
        if key == "participant":
            value = value[:participants]
        if key == "location":
            value = [{k: v for k, v in value[0].items() if k in location_keys}]
        part[key] = value
    return part


def seed_today_part(resource: dict[str, Any]) -> dict[str, Any]:
    """The seed wrote an attender for IMP and EMER, a location's status, and a length for periods
    with times (the details add one for periods given as dates)."""
    return today_part(
        resource,
        participants=2 if resource["class"]["code"] in ("IMP", "EMER") else 1,
        location_keys=("location", "status"),
        length="T" in resource.get("period", {}).get("start", ""),
    )


def bench_today_part(resource: dict[str, Any]) -> dict[str, Any]:
    """The bench's set had one participant, a location without status, and no length."""
    return today_part(resource, participants=1, location_keys=("location",), length=False)


def period_texts(resources: list[dict[str, Any]]) -> list[str]:
    return [value for r in resources for value in r.get("period", {}).values()]


def test_the_same_seed_gives_the_same_encounters() -> None:
    assert list(synthetic_encounters(500, 7)) == SEEDED


def test_another_seed_gives_other_encounters_with_the_same_ids() -> None:
    other = list(synthetic_encounters(500, 8))
    assert other != SEEDED
    assert [r["id"] for r in other] == [r["id"] for r in SEEDED]


@pytest.mark.parametrize("count", [1, 9, 10, 99, 100, 101, 499])
def test_an_encounter_depends_on_the_seed_and_its_number_only_not_on_the_count(count: int) -> None:
    assert list(synthetic_encounters(count, 7)) == SEEDED[:count]


def test_the_first_500_of_5000_are_the_500() -> None:
    assert list(synthetic_encounters(5000, 7))[:500] == SEEDED


def test_one_encounter_can_be_made_by_its_number() -> None:
    assert [synthetic_encounter(n, 7) for n in (1, 2, 250, 500)] == [SEEDED[n - 1] for n in (1, 2, 250, 500)]


def test_there_are_about_four_encounters_per_patient_whatever_the_count() -> None:
    for count in (500, 5000):
        subjects = Counter(r["subject"]["reference"] for r in synthetic_encounters(count, 7))
        patients = [ref for ref in subjects if "Patient/" in ref and not ref.endswith(SEED_PATIENT)]
        assert count / 5 < len(patients) < count / 3


@pytest.mark.parametrize("count", [0, 1, 9, 10, 500])
def test_it_gives_count_encounters_with_distinct_ids(count: int) -> None:
    resources = list(synthetic_encounters(count, 7))
    assert len(resources) == count
    assert len({r["id"] for r in resources}) == count


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_every_synthetic_encounter_passes_the_loader_validation(seed: int) -> None:
    problems = {r["id"]: encounter_problem(r) for r in synthetic_encounters(1000, seed)}
    assert {i: p for i, p in problems.items() if p} == {}


@pytest.mark.parametrize("count", [10, 500])
def test_every_status_is_present(count: int) -> None:
    assert {r["status"] for r in synthetic_encounters(count, 7)} == set(STATUSES)


def test_there_are_many_patients_some_groups_and_some_on_another_server() -> None:
    subjects = Counter(r["subject"]["reference"] for r in SEEDED)
    patients = {ref.rsplit("/", 1)[1] for ref in subjects if "/Patient/" in f"/{ref}"}
    assert len(patients) >= 100
    assert any(ref.startswith("Group/") for ref in subjects)
    absolute = [ref for ref in subjects if "://" in ref]
    assert absolute
    assert all(ref.startswith(f"{FOREIGN_BASE_URL}/Patient/patient-") for ref in absolute)
    assert f"{FOREIGN_BASE_URL}/Patient/{SEED_PATIENT}" not in subjects


def test_some_encounters_have_several_appointments() -> None:
    counts = Counter(len(r.get("appointment", [])) for r in SEEDED)
    assert counts[1] > 0
    assert counts[2] > 0
    assert counts[3] > 0


def test_class_codes_and_snomed_types_are_the_common_ones() -> None:
    assert {r["class"]["code"] for r in SEEDED} == {"AMB", "IMP", "EMER", "VR", "HH"}
    assert {r["class"]["system"] for r in SEEDED} == {"http://terminology.hl7.org/CodeSystem/v3-ActCode"}
    assert {t["coding"][0]["system"] for r in SEEDED for t in r["type"]} == {"http://snomed.info/sct"}
    assert all(r["participant"] and r["location"] for r in SEEDED)
    assert sum("reasonCode" in r for r in SEEDED) > 200


def test_periods_are_open_missing_date_only_and_in_several_zones() -> None:
    assert any(r["status"] == "planned" and "period" not in r for r in SEEDED)
    assert any(r["status"] == "in-progress" and "end" not in r.get("period", {"end": 1}) for r in SEEDED)
    texts = period_texts(SEEDED)
    assert any(len(text) == 10 for text in texts)  # date only
    for zone in ("Z", "+00:00", "+05:30", "-08:00"):
        assert any(text.endswith(zone) for text in texts), zone
    assert {text[:4] for text in texts} == {str(year) for year in range(2019, 2027)}


def test_periods_last_from_minutes_to_weeks() -> None:
    minutes = [r["length"]["value"] for r in SEEDED if r.get("length", {}).get("unit") == "min"]
    assert min(minutes) < 30
    assert max(minutes) > 7 * 24 * 60


# ---- what was there before the details ----------------------------------------------------------


@pytest.mark.parametrize(
    ("encounters", "expected"),
    [
        (lambda: MANY, SEED_7_FIRST_2000),
        (lambda: [synthetic_encounter(n, 7) for n in (5000, 12345, 99999)], SEED_7_5000_12345_99999),
        (lambda: list(synthetic_encounters(2000, 2026)), SEED_2026_FIRST_2000),
    ],
    ids=["seed 7, 1 to 2000", "seed 7, 5000 12345 99999", "seed 2026, 1 to 2000"],
)
def test_the_details_leave_what_the_seed_wrote_before_byte_for_byte(
    encounters: Callable[[], list[dict[str, Any]]], expected: str
) -> None:
    assert digest([seed_today_part(r) for r in encounters()]) == expected


def test_the_details_leave_the_bench_encounters_as_they_were_byte_for_byte() -> None:
    assert digest([bench_today_part(r) for r in BENCH.encounters]) == BENCH_2000_ENCOUNTERS


def test_the_details_leave_the_bench_patients_and_samples_as_they_were() -> None:
    summary = [
        BENCH.patient_counts,
        BENCH.typical_patient,
        BENCH.busiest_patient,
        BENCH.shared_appointment,
        BENCH.sample_id,
    ]
    assert digest(summary) == BENCH_2000_SUMMARY


def test_the_same_bench_seed_and_size_give_the_same_set_details_included() -> None:
    assert generate(2000).encounters == BENCH.encounters


def test_another_bench_seed_gives_other_details_too() -> None:
    other = generate(2000, seed=10).encounters
    assert [r.get("diagnosis") for r in other] != [r.get("diagnosis") for r in BENCH.encounters]


# ---- the details, on the seed's Encounters and on the bench's data set --------------------------


@pytest.fixture(params=list(DATA_SETS))
def encounters(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return DATA_SETS[request.param]


def share(encounters: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float:
    return sum(1 for r in encounters if test(r)) / len(encounters)


def individuals(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["individual"] for p in resource["participant"]]


def is_logical(individual: dict[str, Any]) -> bool:
    return "reference" not in individual


def is_conditional(individual: dict[str, Any]) -> bool:
    return "?" in individual.get("reference", "")


def is_related_person(individual: dict[str, Any]) -> bool:
    return str(individual.get("reference", "")).startswith("RelatedPerson/")


SHARES = [
    pytest.param(lambda r: len(r["identifier"]) == 2, 0.60, id="a second identifier"),
    pytest.param(lambda r: len(r["type"][0]["coding"]) == 2, 0.25, id="a local type coding"),
    pytest.param(lambda r: len(r["type"]) == 2, 0.20, id="a second type"),
    pytest.param(lambda r: "reasonReference" in r, 0.25, id="reasonReference"),
    pytest.param(lambda r: "diagnosis" in r, 0.40, id="diagnosis"),
    pytest.param(lambda r: "episodeOfCare" in r, 0.15, id="episodeOfCare"),
    pytest.param(lambda r: "basedOn" in r, 0.20, id="basedOn"),
    pytest.param(lambda r: "account" in r, 0.30, id="account"),
    pytest.param(lambda r: "partOf" in r, 0.025, id="partOf"),  # 3% drawn; some have no earlier Encounter
    pytest.param(
        lambda r: "specialArrangement" in r.get("hospitalization", {}), 0.03, id="specialArrangement"
    ),
    pytest.param(lambda r: any(map(is_logical, individuals(r))), 0.01, id="a logical reference"),
    pytest.param(lambda r: any(map(is_conditional, individuals(r))), 0.01, id="a conditional reference"),
    pytest.param(lambda r: any(map(is_related_person, individuals(r))), 0.02, id="an escort"),
]


@pytest.mark.parametrize(("test", "expected"), SHARES)
def test_each_detail_has_its_share(
    encounters: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool], expected: float
) -> None:
    tolerance = 0.04 if expected >= 0.1 else expected * 0.7  # 2,000 Encounters: a few standard errors
    assert abs(share(encounters, test) - expected) <= tolerance


def discharge_code(resource: dict[str, Any]) -> str | None:
    disposition = resource.get("hospitalization", {}).get("dischargeDisposition")
    return None if disposition is None else str(disposition["coding"][0]["code"])


def test_most_finished_inpatient_and_emergency_stays_and_no_others_have_a_discharge_disposition(
    encounters: list[dict[str, Any]],
) -> None:
    finished = [r for r in encounters if r["class"]["code"] in ("IMP", "EMER") and r["status"] == "finished"]
    assert abs(share(finished, lambda r: discharge_code(r) is not None) - 0.9) < 0.05
    finished_ids = {r["id"] for r in finished}
    assert all(r["id"] in finished_ids for r in encounters if discharge_code(r) is not None)
    codes = Counter(code for r in finished if (code := discharge_code(r)) is not None)
    assert codes.most_common(1)[0][0] == "home"
    assert len(codes) >= 8


def codings(resource: dict[str, Any], *path: str) -> list[dict[str, Any]]:
    """The objects at ``path`` in ``resource``, through arrays and objects alike."""
    found: list[Any] = [resource]
    for key in path:
        values = [f[key] for f in found if key in f]
        found = [item for value in values for item in (value if isinstance(value, list) else [value])]
    return found


CODED = {
    "class": ("class",),
    "type": ("type", "coding"),
    "participant": ("participant", "type", "coding"),
    "diagnosis": ("diagnosis", "use", "coding"),
    "discharge": ("hospitalization", "dischargeDisposition", "coding"),
    "arrangement": ("hospitalization", "specialArrangement", "coding"),
    "length": ("length",),
}


def test_codes_come_from_their_code_systems(encounters: list[dict[str, Any]]) -> None:
    systems = {
        name: {c["system"] for r in encounters for c in codings(r, *path)} for name, path in CODED.items()
    }
    assert systems == {
        "class": {ACT_CODE},
        "type": {SNOMED, "https://ehr.example.org/CodeSystem/encounter-type"},
        "participant": {PARTICIPATION_TYPE},
        "diagnosis": {"http://terminology.hl7.org/CodeSystem/diagnosis-role"},
        "discharge": {"http://terminology.hl7.org/CodeSystem/discharge-disposition"},
        "arrangement": {"http://terminology.hl7.org/CodeSystem/encounter-special-arrangements"},
        "length": {"http://unitsofmeasure.org"},
    }
    assert all(t["coding"][0]["system"] == SNOMED for r in encounters for t in r["type"])
    roles = {c["code"] for r in encounters for c in codings(r, *CODED["participant"])}
    assert roles == {"PPRF", "ATND", "SPRF", "CON", "ADM", "DIS", "ESC", "REF"}


def test_participants_are_mostly_practitioners_from_a_skewed_pool(encounters: list[dict[str, Any]]) -> None:
    kinds = Counter(
        "logical" if is_logical(i) else i["reference"].split("?")[0].split("/")[0]
        for r in encounters
        for i in individuals(r)
    )
    assert set(kinds) == {"Practitioner", "PractitionerRole", "RelatedPerson", "logical"}
    assert kinds["Practitioner"] > 0.85 * kinds.total()
    added = Counter(  # after the first participant: drawn from a Zipf law
        i["reference"]
        for r in encounters
        for i in individuals(r)[1:]
        if "Practitioner/" in i.get("reference", "")
    )
    assert added.most_common(1)[0][1] > 4 * statistics.median(added.values())


def test_non_literal_references_name_a_practitioner_by_npi(encounters: list[dict[str, Any]]) -> None:
    logical = [i for r in encounters for i in individuals(r) if is_logical(i)]
    conditional = [i["reference"] for r in encounters for i in individuals(r) if is_conditional(i)]
    assert logical
    assert all(i["type"] == "Practitioner" and i["identifier"]["system"] == NPI for i in logical)
    assert conditional
    assert all(reference.startswith(f"Practitioner?identifier={NPI}|") for reference in conditional)


def test_identifiers_are_unique_in_each_system(encounters: list[dict[str, Any]]) -> None:
    pairs = [(i["system"], i["value"]) for r in encounters for i in r["identifier"]]
    assert len(set(pairs)) == len(pairs)
    assert {system for system, _ in pairs} == {
        "https://fhir.example.org/visit-number",
        "https://ehr.example.org/encounter-id",
    }


def within(inner: dict[str, str], outer: dict[str, str]) -> bool:
    """Whether the period ``inner`` lies within ``outer`` (a missing bound is open)."""
    low = parse_range(outer["start"]).low if "start" in outer else None
    high = parse_range(outer["end"]).high if "end" in outer else None
    bounds = [parse_range(value) for value in inner.values()]
    return all((low is None or b.low >= low) and (high is None or b.high <= high) for b in bounds)


def test_each_location_has_a_status_and_a_period_within_the_encounters(
    encounters: list[dict[str, Any]],
) -> None:
    for r in encounters:
        for location in r["location"]:
            assert location["status"] in ("planned", "active", "completed"), r["id"]
            assert ("period" in location) == ("period" in r), r["id"]
            assert within(location.get("period", {}), r.get("period", {})), r["id"]


def test_some_closed_inpatient_and_emergency_stays_move_once(encounters: list[dict[str, Any]]) -> None:
    moved = [r for r in encounters if len(r["location"]) == 2]
    assert len(moved) > 10
    for r in moved:
        first, second = (location["period"] for location in r["location"])
        assert r["class"]["code"] in ("IMP", "EMER")
        assert {first["start"], first["end"], second["start"], second["end"]} >= set(r["period"].values())
        assert first["end"] == second["start"] or first["start"] == second["end"]


MINUTES = {"min": 1, "h": 60, "d": 24 * 60}


def test_every_finished_closed_stay_and_no_other_has_a_length(encounters: list[dict[str, Any]]) -> None:
    def finished_and_closed(r: dict[str, Any]) -> bool:
        return bool(r["status"] == "finished" and {"start", "end"} <= r.get("period", {}).keys())

    assert [r["id"] for r in encounters if ("length" in r) != finished_and_closed(r)] == []
    assert {r["length"]["unit"] for r in encounters if "length" in r} == set(MINUTES)


def test_a_length_is_what_its_period_gives(encounters: list[dict[str, Any]]) -> None:
    for r in (r for r in encounters if "length" in r):
        length, period = r["length"], r["period"]
        assert length["code"] == length["unit"], r["id"]
        minutes = length["value"] * MINUTES[length["unit"]]
        rounding = 1 if length["unit"] == "min" else MINUTES[length["unit"]] / 20  # tenths, rounded
        span = datetime.fromisoformat(period["end"]) - datetime.fromisoformat(period["start"])
        if "T" in period["start"]:
            assert abs(minutes - span.total_seconds() / 60) <= rounding, r["id"]
        else:  # dates: the stay began and ended somewhere in those days
            assert abs(minutes - span.days * 24 * 60) <= 24 * 60 + rounding, r["id"]


def test_conditions_episodes_and_accounts_belong_to_the_subject(encounters: list[dict[str, Any]]) -> None:
    named: Counter[str] = Counter()
    for r in encounters:
        owner = r["subject"]["reference"].rpartition("/")[2]
        references = [
            ref["reference"]
            for key in ("reasonReference", "episodeOfCare", "account")
            for ref in r.get(key, [])
        ]
        references += [d["condition"]["reference"] for d in r.get("diagnosis", [])]
        for reference in references:
            kind = reference.split("/")[0]
            assert kind == "Observation" or reference.startswith(f"{kind}/{owner}-"), r["id"]
        named.update(set(references))
    assert sum(count > 1 for count in named.values()) > 0.2 * len(named)  # a patient's Encounters share them
    assert any(reference.startswith("Observation/") for reference in named)


def test_diagnoses_are_ranked_from_one(encounters: list[dict[str, Any]]) -> None:
    ranks = [[d["rank"] for d in r["diagnosis"]] for r in encounters if "diagnosis" in r]
    assert all(rank == list(range(1, len(rank) + 1)) for rank in ranks)
    assert {len(rank) for rank in ranks} == {1, 2, 3}


def test_based_on_names_a_service_request(encounters: list[dict[str, Any]]) -> None:
    references = [ref["reference"] for r in encounters for ref in r.get("basedOn", [])]
    assert references
    assert all(reference.startswith("ServiceRequest/") for reference in references)


def test_part_of_names_an_earlier_encounter_of_the_same_subject(encounters: list[dict[str, Any]]) -> None:
    by_id = {r["id"]: r for r in encounters}
    parts = [r for r in encounters if "partOf" in r]
    assert parts
    for r in parts:
        parent = by_id[r["partOf"]["reference"].removeprefix("Encounter/")]
        assert parent["id"] < r["id"]
        assert parent["subject"] == r["subject"]


def test_every_encounter_with_its_details_loads_and_reads_back_equal(
    encounters: list[dict[str, Any]],
) -> None:
    assert [r["id"] for r in encounters if encounter_problem(r)] == []
    assert all(parse_json(json.dumps(r)) == r for r in encounters)


def test_an_encounter_is_a_few_kilobytes(encounters: list[dict[str, Any]]) -> None:
    sizes = [len(json.dumps(r, separators=(",", ":")).encode()) for r in encounters]
    assert 1200 < statistics.mean(sizes) < 2500
    assert max(sizes) < 5000
