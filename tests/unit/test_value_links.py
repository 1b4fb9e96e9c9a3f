"""The value links the writer puts beside an Encounter: one item per linked value, in the value
index under the value and in the compartment index under the value within the subject."""

from __future__ import annotations

from typing import Any

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.items import items_for_encounter
from fhir_encounter.store.values import (
    NO_SYSTEM,
    any_system_keys,
    linked_keys,
    order_shards,
    systems_of,
    value_keys,
)

SNOMED = "http://snomed.info/sct"
UPDATED = "2025-03-01T10:00:00.000Z"


def encounter(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "1", "lastUpdated": UPDATED},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": SNOMED, "code": "185349003"}, {"code": "LOCAL"}]}],
        "participant": [{"individual": {"reference": "Practitioner/7"}}],
        "appointment": [
            {"reference": "Appointment/a1"},
            {"reference": "https://other.example/fhir/Appointment/a2"},
        ],
        "period": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T09:30:00Z"},
        **extra,
    }


def value_links(resource: dict[str, Any]) -> list[dict[str, Any]]:
    items = items_for_encounter(resource, "1", UPDATED, value_paths())
    return [item for item in items if item[keys.SORT_KEY]["S"].startswith(keys.VALUE_LINK_PREFIX)]


def test_each_value_is_one_item_in_both_indexes() -> None:
    resource = encounter(subject={"reference": "Patient/p1"})
    links = value_links(resource)
    expected = linked_keys(value_paths(), resource)
    by_value = {item[keys.ATTR_VALUE_KEY]["S"]: item for item in links}
    assert expected <= set(by_value)  # every value once, plus the lastUpdated order's shard
    assert len(links) == len(expected) + 1
    for key in expected:
        item = by_value[key]
        assert item[keys.SORT_KEY]["S"] == keys.VALUE_LINK_PREFIX + key
        assert item[keys.ATTR_COMPARTMENT_KEY]["S"] == f"Patient/p1#{key}"
        assert item[keys.ATTR_SORT_KEY]["S"].startswith("2024-05-01T09:00:00.000000Z#e1")
        assert {keys.ATTR_PERIOD_LO, keys.ATTR_PERIOD_HI} <= set(item)
    assert "type||LOCAL" in expected  # a coding without a system
    assert not any(key.split("|", 1)[1].startswith("=") for key in by_value)  # no code of any system


def test_the_last_updated_order_is_one_item_too() -> None:
    links = value_links(encounter(subject={"reference": "Group/g1"}))
    (order,) = [
        item for item in links if item[keys.ATTR_VALUE_KEY]["S"].startswith("meta.lastUpdated|order#")
    ]
    path = next(p for p in value_paths() if p.name == "meta.lastUpdated")
    assert order[keys.ATTR_VALUE_KEY]["S"] in order_shards(path)
    assert order[keys.ATTR_COMPARTMENT_KEY]["S"] == "Group/g1#meta.lastUpdated|order"
    assert order[keys.ATTR_SORT_KEY]["S"] == "2025-03-01T10:00:00.000000Z#e1"


def test_without_a_subject_a_value_is_in_the_value_index_only() -> None:
    links = value_links(encounter())
    assert links
    assert all(keys.ATTR_COMPARTMENT_KEY not in item for item in links)


def test_compartment_partitions_never_meet_appointment_partitions() -> None:
    """Both live in the appointment index: a subject (Patient/…, Group/…) is never an Appointment."""
    resource = encounter(subject={"reference": "Patient/p1"})
    items = items_for_encounter(resource, "1", UPDATED, value_paths())
    appointments = {
        item[keys.ATTR_APPOINTMENT]["S"]
        for item in items
        if item[keys.SORT_KEY]["S"].startswith(keys.APPOINTMENT_SK_PREFIX)
    }
    compartments = {
        item[keys.ATTR_COMPARTMENT_KEY]["S"]
        for item in items
        if item[keys.SORT_KEY]["S"].startswith(keys.VALUE_LINK_PREFIX)
    }
    assert appointments == {"Appointment/a1", "https://other.example/fhir/Appointment/a2"}
    assert compartments
    assert appointments.isdisjoint(compartments)
    assert all(partition.startswith("Patient/p1#") for partition in compartments)
    assert keys.COMPARTMENT_INDEX in keys.INDEXES
    assert keys.INDEXES[keys.COMPARTMENT_INDEX][0] == keys.ATTR_COMPARTMENT_KEY


def test_a_code_of_any_system_is_read_under_each_system_seen() -> None:
    resource = encounter(subject={"reference": "Patient/p1"})
    systems = systems_of(value_paths(), resource)
    assert ("type", SNOMED) in systems
    assert ("type", NO_SYSTEM) in systems
    assert ("status", "http://hl7.org/fhir/encounter-status") in systems
    seen: dict[str, frozenset[str]] = {}
    for namespace, system in systems:
        seen[namespace] = seen.get(namespace, frozenset()) | {system}
    assert any_system_keys("type", "LOCAL", seen) == {f"type|{SNOMED}|LOCAL", "type||LOCAL"}
    assert any_system_keys("class", "AMB", {}) == frozenset()  # no system seen: nothing to read
    # What a search matches on the resource still includes the any-system form.
    path = next(p for p in value_paths() if p.name == "type")
    assert "type|=LOCAL" in value_keys(path, resource)


def test_a_reference_identifier_records_its_system_under_its_namespace() -> None:
    resource = encounter(
        subject={"reference": "Patient/p1"},
        serviceProvider={"type": "Organization", "identifier": {"system": "urn:org", "value": "O1"}},
    )
    assert ("serviceProvider:identifier", "urn:org") in systems_of(value_paths(), resource)
    assert "serviceProvider:identifier|urn:org|O1" in linked_keys(value_paths(), resource)
