"""What the loader accepts as an Encounter, and the one-line reason for what it does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fhir_encounter_tools.ingest.validation import MAX_RESOURCE_BYTES, STATUSES, encounter_problem
from tests.support import encounter


def with_changes(**changes: Any) -> dict[str, Any]:
    resource = encounter("e1", start="2021-06-15T10:00:00Z", end="2021-06-15T11:00:00Z")
    for name, value in changes.items():
        if value is None:
            resource.pop(name, None)
        else:
            resource[name] = value
    return resource


@pytest.mark.parametrize(
    "resource",
    [
        with_changes(),
        *(with_changes(status=status) for status in STATUSES),
        with_changes(subject=None, period=None),
        with_changes(subject={"reference": "Group/g-7"}),
        with_changes(subject={"reference": "https://ehr.example.org/fhir/Patient/p1"}),
        with_changes(subject={"reference": "Patient/p1/_history/3"}),
        with_changes(subject={"display": "a subject without a reference"}),
        with_changes(appointment=[{"reference": "Appointment/a1"}, {"reference": "Appointment/a2"}]),
        with_changes(appointment=[{"reference": "http://h/fhir/Appointment/a1"}, {"display": "no ref"}]),
        with_changes(period={"start": "2021"}),
        with_changes(period={"end": "2021-06"}),
        with_changes(period={"start": "2021-06-15", "end": "2021-06-15"}),
        with_changes(period={"start": "2021-06-15T10:00:00+05:30", "end": "2021-06-15T10:00:00+05:30"}),
        with_changes(period={"start": "2021-06-15T10:00:00.123456789-08:00", "end": "2021-06-16"}),
        with_changes(period={"start": "2021-06-15T23:30:00-08:00", "end": "2021-06-16T07:45:00Z"}),
        with_changes(period={"start": "2024-02-29T00:00:00+14:00"}),
        with_changes(period={}),
        with_changes(meta={"versionId": "4", "profile": ["http://example.org/p"]}, extension=[{"url": "u"}]),
        with_changes(id="A-Za-z0-9.-" + "x" * 53),
    ],
    ids=lambda resource: str(sorted(resource.items()))[:80],
)
def test_a_valid_encounter_has_no_problem(resource: dict[str, Any]) -> None:
    assert encounter_problem(resource) is None


def test_validation_leaves_the_resource_untouched() -> None:
    resource = with_changes(
        extension=[{"url": "u", "valueString": "x"}], subject={"reference": "Patient/p1/"}
    )
    before = copy.deepcopy(resource)
    encounter_problem(resource)
    assert resource == before


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ([], "not a FHIR resource (a JSON object)"),
        ("Encounter", "not a FHIR resource (a JSON object)"),
        (with_changes(resourceType="Patient"), "resourceType: must be Encounter"),
        (with_changes(resourceType=None), "resourceType: is required"),
        (with_changes(id=None), "id: is required"),
        (with_changes(id="has space"), "id: is not a FHIR id"),
        (with_changes(id="x" * 65), "id: is not a FHIR id"),
        (with_changes(id=17), "id: must be a string"),
        (with_changes(status="done"), "status: is not an R4 Encounter status (planned, arrived"),
        (with_changes(status=None), "status: is required"),
        (with_changes(**{"class": None}), "class: is required"),
        (with_changes(**{"class": [{"code": "AMB"}]}), "class: must be a JSON object"),
        (with_changes(**{"class": {"code": "AMB"}}), "class.system: is required"),
        (with_changes(**{"class": {"system": "s", "code": ""}}), "class.code: must not be empty"),
        (with_changes(subject="Patient/p1"), "subject: must be a JSON object"),
        (
            with_changes(subject={"reference": "Practitioner/d1"}),
            "subject.reference: must refer to Patient or Group",
        ),
        (with_changes(subject={"reference": "p1"}), "subject.reference: is not a literal reference"),
        (with_changes(subject={"reference": "#contained"}), "subject.reference: is not a literal reference"),
        (
            with_changes(subject={"reference": "ftp://h/Patient/p1"}),
            "subject.reference: is not a literal reference",
        ),
        (
            with_changes(appointment=[{"reference": "Appointment/a1"}, {"reference": "Patient/p1"}]),
            "appointment[1].reference: must refer to Appointment",
        ),
        (with_changes(appointment={"reference": "Appointment/a1"}), "appointment: must be a JSON array"),
        (with_changes(period={"start": "2021-06-15T10:00:00"}), "period.start: is not a FHIR dateTime"),
        (with_changes(period={"start": "2021-06-15T10:00Z"}), "period.start: is not a FHIR dateTime"),
        (with_changes(period={"start": "15/06/2021"}), "period.start: is not a FHIR dateTime"),
        (with_changes(period={"end": "2021-02-30"}), "period.end: is not a FHIR dateTime: day out of range"),
        (with_changes(period={"end": "2021-06-15T10:00:00+15:00"}), "period.end: is not a FHIR dateTime"),
        (
            with_changes(period={"start": "2021-06-15T10:00:00Z", "end": "2021-06-15T09:59:59Z"}),
            "period: end is before start",
        ),
        (
            with_changes(period={"start": "2021-06-16", "end": "2021-06-15T23:59:59Z"}),
            "period: end is before start",
        ),
        (
            with_changes(period={"start": "2021-06-15T10:00:00+05:30", "end": "2021-06-15T04:00:00Z"}),
            "period: end is before start",
        ),
        (with_changes(period="2021"), "period: must be a JSON object"),
    ],
)
def test_an_invalid_encounter_gets_its_field_and_reason(resource: Any, reason: str) -> None:
    problem = encounter_problem(resource)
    assert problem is not None
    assert problem.startswith(reason)
    assert "\n" not in problem


def test_several_problems_are_one_line_and_at_most_three_are_spelled_out() -> None:
    resource = with_changes(id="a b", status="x", subject="s", period="p", **{"class": None})
    assert encounter_problem(resource) == (
        "id: is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .); "
        f"status: is not an R4 Encounter status ({', '.join(STATUSES)}); "
        "class: is required; and 2 more"
    )


@pytest.mark.parametrize(
    ("changes", "secret"),
    [
        ({"status": "secret-status-value"}, "secret-status-value"),
        ({"subject": {"reference": "Practitioner/secret-person"}}, "secret-person"),
        ({"subject": {"reference": "secret person"}}, "secret person"),
        ({"period": {"start": "1971-02-03T04:05:06"}}, "1971"),
        ({"period": {"start": "1999-12-31T10:00:00Z", "end": "1999-12-30"}}, "1999"),
        ({"class": {"system": 12345, "code": "AMB"}}, "12345"),
        ({"appointment": [{"reference": "Patient/secret-appt"}]}, "secret-appt"),
    ],
)
def test_a_reason_never_carries_the_value(changes: dict[str, Any], secret: str) -> None:
    problem = encounter_problem(with_changes(**changes))
    assert problem is not None
    assert secret not in problem


def with_size(size: int, character: str = "x") -> dict[str, Any]:
    """An Encounter whose compact UTF-8 JSON is ``size`` bytes, padded with ``character``."""
    resource = with_changes(text={"status": "generated", "div": ""})
    padding = size - len(json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode())
    width = len(character.encode())
    resource["text"]["div"] = character * (padding // width) + "x" * (padding % width)
    return resource


@pytest.mark.parametrize("character", ["x", "é", "€"])
def test_an_encounter_up_to_the_item_limit_is_valid(character: str) -> None:
    assert encounter_problem(with_size(MAX_RESOURCE_BYTES, character)) is None


@pytest.mark.parametrize(
    ("character", "size"), [("x", MAX_RESOURCE_BYTES + 1), ("€", MAX_RESOURCE_BYTES + 1), ("€", 600_000)]
)
def test_an_encounter_over_the_item_limit_is_too_large_in_utf8_bytes(character: str, size: int) -> None:
    assert encounter_problem(with_size(size, character)) == (
        f"too large: {size} bytes, DynamoDB items hold at most 400 KB"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"length": {"value": float("nan")}},
        {"extension": [{"url": "u", "valueDecimal": float("inf")}]},
        {"period": {"start": "2021", "x": [float("-inf")]}},
    ],
)
def test_nan_or_infinity_anywhere_is_invalid_json(changes: dict[str, Any]) -> None:
    assert encounter_problem(with_changes(**changes)) == (
        "invalid JSON: a number is NaN or Infinity, which JSON does not allow"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"text": {"div": "secret \ud800 text"}},
        {"extension": [{"url": "u", "valueString": "\udfff"}]},
        {"extension": [{"\ud83d": "a key"}]},
        {"status": "\udc00"},
    ],
)
def test_a_lone_surrogate_anywhere_is_invalid_json_and_the_reason_has_no_value(
    changes: dict[str, Any],
) -> None:
    problem = encounter_problem(with_changes(**changes))
    assert problem == (
        "invalid JSON: a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"
    )


def test_a_resource_nested_too_deeply_is_invalid_json() -> None:
    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    assert encounter_problem(with_changes(extension=nested)) == "invalid JSON: nested too deeply"
