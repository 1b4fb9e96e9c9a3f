"""Synthetic Encounters: repeatable, valid, and as varied as the search scenarios need."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from fhir_encounter_tools.ingest.seed import (
    FOREIGN_BASE_URL,
    SEED_PATIENT,
    synthetic_encounter,
    synthetic_encounters,
)
from fhir_encounter_tools.ingest.validation import STATUSES, encounter_problem

SEEDED = list(synthetic_encounters(500, 7))


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
    assert {c["system"] for r in SEEDED for t in r["type"] for c in t["coding"]} == {"http://snomed.info/sct"}
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
    minutes = [r["length"]["value"] for r in SEEDED if "length" in r]
    assert min(minutes) < 30
    assert max(minutes) > 7 * 24 * 60
