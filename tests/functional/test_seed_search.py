"""The seeded data set on a moto table: the example patient that ``seed`` and ``serve`` print
has Encounters that search finds; the few subjects on another server are found by their URL only."""

from __future__ import annotations

from typing import Any

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.ingest.loader import load_resources
from fhir_encounter_tools.ingest.seed import FOREIGN_BASE_URL, SEED, SEED_PATIENT, synthetic_encounters
from tests.support import TEST_TABLE, ids_of, search

SEEDED = list(synthetic_encounters(500, SEED))


def test_the_seed_patient_has_encounters_from_2020_on_that_search_finds(table: Any) -> None:
    report = load_resources(SEEDED, EncounterWriter(table, TEST_TABLE, value_paths()), source="seed")
    assert (report.written, report.rejected) == (500, 0)
    status, _, bundle = search(f"patient={SEED_PATIENT}&date=ge2020-01-01&_count=100")
    assert status == 200
    expected = {r["id"] for r in SEEDED if r["subject"]["reference"] == f"Patient/{SEED_PATIENT}"}
    assert len(expected) >= 5
    assert set(ids_of(bundle)) == expected
    assert bundle["total"] == len(expected)


def test_subjects_on_another_server_are_found_by_their_url_only(table: Any) -> None:
    load_resources(SEEDED, EncounterWriter(table, TEST_TABLE, value_paths()), source="seed")
    foreign = [r for r in SEEDED if r["subject"]["reference"].startswith(f"{FOREIGN_BASE_URL}/")]
    assert foreign
    url = foreign[0]["subject"]["reference"]
    local = url.removeprefix(f"{FOREIGN_BASE_URL}/")
    by_url = {r["id"] for r in SEEDED if r["subject"]["reference"] == url}
    by_local = {r["id"] for r in SEEDED if r["subject"]["reference"] == local}
    assert set(ids_of(search({"patient": [url], "_count": ["100"]})[2])) == by_url
    for query in (local, local.removeprefix("Patient/")):
        assert set(ids_of(search({"patient": [query], "_count": ["100"]})[2])) == by_local
