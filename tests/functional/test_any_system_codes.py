"""A code searched in any system (``type=X``, ``identifier=V``) is read under each system the
table has linked a code under at that path (the bucket directory's record, store/values.py): an
Encounter coded in a system the table had not seen before is found once it is written, alone or
within its patient, by a new container (one that read the directory after the write)."""

from __future__ import annotations

import json
from typing import Any

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.values import SYSTEMS_PREFIX
from fhir_encounter.store.writer import EncounterWriter
from tests.support import TEST_TABLE, encounter, handlers_on, ids_of, search

SNOMED = "http://snomed.info/sct"


def coded(encounter_id: str, subject: str, system: str | None, code: str) -> dict[str, Any]:
    resource = encounter(encounter_id, subject=subject, start="2024-01-01T09:00:00Z")
    coding = {"code": code} if system is None else {"system": system, "code": code}
    resource["type"] = [{"coding": [coding]}]
    resource["identifier"] = [{"value": f"V-{encounter_id}", **({"system": system} if system else {})}]
    return resource


def write(table: Any, *resources: dict[str, Any]) -> None:
    EncounterWriter(table, TEST_TABLE, value_paths()).write(json.loads(json.dumps(resources)))


def found(query: str) -> list[str]:
    status, _, bundle = search(query)
    assert status == 200, bundle
    return sorted(ids_of(bundle))


def test_a_new_system_is_found_by_a_code_of_any_system(table: Any) -> None:
    write(table, coded("e1", "Patient/p1", SNOMED, "X"))
    assert found("type=X") == ["e1"]
    write(table, coded("e2", "Patient/p1", "urn:local", "X"), coded("e3", "Patient/p2", None, "X"))
    with handlers_on(table):  # a new container: it reads the directory the writes extended
        assert found("type=X") == ["e1", "e2", "e3"]
        assert found("patient=p1&type=X") == ["e1", "e2"]
        assert found("type=urn:local|X") == ["e2"]
        assert found("type=|X") == ["e3"]
        assert found("type=X&_total=accurate&_count=1") == ["e1"]
        status, _, bundle = search("type=X&_total=accurate")
        assert (status, bundle["total"]) == (200, 3)
        assert found("identifier=V-e2") == ["e2"]
        assert found("identifier=V-e3") == ["e3"]
        assert found("type=Y") == []
    directory = table.get_item(TableName=TEST_TABLE, Key=keys.bucket_directory_key())["Item"]
    assert set(directory[SYSTEMS_PREFIX + "type"]["SS"]) == {SNOMED, "urn:local", "|"}


def test_one_encounter_in_two_systems_is_one_match(table: Any) -> None:
    both = coded("e1", "Patient/p1", SNOMED, "X")
    both["type"][0]["coding"].append({"system": "urn:local", "code": "X"})
    write(table, both, coded("e2", "Patient/p1", "urn:local", "X"))
    status, _, bundle = search("type=X&_total=accurate")
    assert status == 200
    assert (sorted(ids_of(bundle)), bundle["total"]) == (["e1", "e2"], 2)
    status, _, bundle = search("patient=p1&type=X&_total=accurate")
    assert (sorted(ids_of(bundle)), bundle["total"]) == (["e1", "e2"], 2)
