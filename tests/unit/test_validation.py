"""What the loader accepts as an Encounter, and the one-line reason for what it does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fhir_encounter_tools.ingest.validation import (
    MAX_DEPTH,
    MAX_RESOURCE_BYTES,
    STATUSES,
    ambiguity,
    encounter_problem,
    parse_json,
)
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
        # a date has no zone: its day may begin at 00:00+14:00 (2021-06-14T10:00Z) and end at
        # 24:00-12:00 (2021-06-16T12:00Z), so a time with a zone on that local day is in order
        with_changes(period={"start": "2021-06-15", "end": "2021-06-15T10:00:00+14:00"}),
        with_changes(period={"start": "2021-06-15", "end": "2021-06-14T10:00:00Z"}),
        with_changes(period={"start": "2021-06-15T23:00:00-12:00", "end": "2021-06-15"}),
        with_changes(period={"start": "2021-06-16T11:59:59Z", "end": "2021-06-15"}),
        with_changes(period={"start": "2021", "end": "2021-01-01T05:00:00+14:00"}),
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
        (  # 2021-06-17 begins at 2021-06-16T10:00Z at the earliest (+14:00)
            with_changes(period={"start": "2021-06-17", "end": "2021-06-16T09:59:59Z"}),
            "period: end is before start",
        ),
        (  # 2021-06-15 ends at 2021-06-16T12:00Z at the latest (-12:00)
            with_changes(period={"start": "2021-06-16T12:00:00Z", "end": "2021-06-15"}),
            "period: end is before start",
        ),
        (  # two dates share their zone, whatever it is
            with_changes(period={"start": "2021-06-16", "end": "2021-06-15"}),
            "period: end is before start",
        ),
        (with_changes(period={"start": "2021-07", "end": "2021-06"}), "period: end is before start"),
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
        ({"period": {"start": "1999-12-31T13:00:00Z", "end": "1999-12-30"}}, "1999"),
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
    ("changes", "place"),
    [
        ({"length": {"value": float("nan")}}, "length.value"),
        ({"extension": [{"url": "u", "valueDecimal": float("inf")}]}, "extension[0].valueDecimal"),
        ({"period": {"start": "2021", "x": [float("-inf")]}}, "period.x[0]"),
    ],
)
def test_nan_or_infinity_anywhere_is_invalid_json(changes: dict[str, Any], place: str) -> None:
    assert encounter_problem(with_changes(**changes)) == (
        f"invalid JSON: a number is NaN or Infinity, which JSON does not allow (at {place})"
    )


@pytest.mark.parametrize(
    ("changes", "place"),
    [
        ({"text": {"div": "secret \ud800 text"}}, "text.div"),
        ({"extension": [{"url": "u", "valueString": "\udfff"}]}, "extension[0].valueString"),
        ({"extension": [{"\ud83d": "a key"}]}, "extension[0]"),
        ({"status": "\udc00"}, "status"),
    ],
)
def test_a_lone_surrogate_anywhere_is_invalid_json_and_the_reason_has_no_value(
    changes: dict[str, Any], place: str
) -> None:
    problem = encounter_problem(with_changes(**changes))
    assert problem == (
        "invalid JSON: a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text "
        f"(at {place})"
    )


def nested(levels: int) -> list[Any]:
    """Arrays inside arrays, ``levels`` of them."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_resource_nested_too_deeply_is_invalid_json() -> None:
    assert encounter_problem(with_changes(extension=nested(100_000))) == (
        f"invalid JSON: nested too deeply (more than {MAX_DEPTH} levels)"
    )


def test_nesting_counts_the_resource_itself_up_to_max_depth() -> None:
    assert encounter_problem(with_changes(extension=nested(MAX_DEPTH - 1))) is None
    assert encounter_problem(with_changes(extension=nested(MAX_DEPTH))) == (
        f"invalid JSON: nested too deeply (more than {MAX_DEPTH} levels)"
    )


# ---- JSON text as the loader reads it: what cannot be stored and read back equal -----------------

HUGE = "7" * 5000  # more digits than Python converts (4300 by default)


def parsed(element: str) -> Any:
    """An Encounter read with ``parse_json``, with ``element`` (JSON text of members) added."""
    text = json.dumps(with_changes())
    return parse_json(text[:-1] + ", " + element + "}")


@pytest.mark.parametrize(
    ("element", "reason"),
    [
        (f'"length": {{"value": {HUGE}}}', "a number has more than 4300 digits (at length.value)"),
        (f'"length": {{"value": -{HUGE}}}', "a number has more than 4300 digits (at length.value)"),
        ('"length": {"value": 1e400}', "a number is beyond the range of a 64-bit float, so it cannot be"),
        ('"length": {"value": -1E+999}', "a number is beyond the range of a 64-bit float, so it cannot be"),
        (f'"length": {{"value": 1.{HUGE}}}', "a number has more digits than a 64-bit float keeps, so it"),
        ('"length": {"value": 0.12345678901234567891}', "a number has more digits than a 64-bit float keeps"),
        ('"length": {"value": 1e-400}', "a number has more digits than a 64-bit float keeps"),
        ('"length": {"value": NaN}', "a number is NaN or Infinity, which JSON does not allow (at length.v"),
        ('"extension": [{"url": "u", "valueDecimal": -Infinity}]', "a number is NaN or Infinity, which JSON"),
        ('"id": "other"', '"id" occurs twice in one object, so its value is ambiguous'),
        ('"hospitalization": {"origin": {"display": "a", "display": "b"}}', '"display" occurs twice in one'),
        ('"period": {}', '"period" occurs twice in one object, so its value is ambiguous'),
        ('"extension": [{"url": "a", "url": "b"}]', '"url" occurs twice in one object, so its value is am'),
        ('"extension": [{"url": "u", "a b": 1, "a b": 2}]', "a key occurs twice in one object, so its valu"),
        ('"note": "\\ud800"', "a string holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"),
        ('"x": ' + "[" * 150 + "]" * 150, f"nested too deeply (more than {MAX_DEPTH} levels)"),
    ],
)
def test_parse_json_leaves_what_cannot_be_read_back_equal_to_be_rejected_with_its_place(
    element: str, reason: str
) -> None:
    problem = encounter_problem(parsed(element))
    assert problem is not None
    assert problem.startswith(f"invalid JSON: {reason}")
    assert HUGE[:20] not in problem
    assert "other" not in problem


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ('"length": {"value": 1.5}', 1.5),
        ('"length": {"value": 0.1}', 0.1),
        ('"length": {"value": 1.50}', 1.5),  # the same number: it reads back equal
        ('"length": {"value": 1E2}', 100.0),
        ('"length": {"value": -0.0}', 0.0),
        ('"length": {"value": 12345678901234567890123}', 12345678901234567890123),
        (f'"length": {{"value": {"9" * 4300}}}', int("9" * 4300)),
        ('"length": {"value": 1.7976931348623157e308}', 1.7976931348623157e308),
        ('"length": {"value": 5e-324}', 5e-324),
    ],
)
def test_numbers_that_read_back_equal_are_kept(element: str, value: object) -> None:
    resource = parsed(element)
    assert encounter_problem(resource) is None
    assert resource["length"]["value"] == value
    assert json.loads(json.dumps(resource))["length"]["value"] == value


def test_parse_json_still_raises_for_text_that_is_not_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json('{"id": }')


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"length": {"value": 10**4300}}, "a number has more than 4300 digits (at length.value)"),
        ({"length": {"value": -(10**4300)}}, "a number has more than 4300 digits (at length.value)"),
        ({"extension": ({"url": "u"},)}, "a value is not of a JSON type (tuple) (at extension)"),
        ({"extension": [{"url": {"u"}}]}, "a value is not of a JSON type (set) (at extension[0].url)"),
        ({"extension": [{1: "u"}]}, "an object key is not a string (at extension[0])"),
    ],
)
def test_python_values_that_json_cannot_hold_equal_are_invalid_json(
    changes: dict[str, Any], reason: str
) -> None:
    assert encounter_problem(with_changes(**changes)) == f"invalid JSON: {reason}"


def test_the_largest_integer_that_converts_is_valid() -> None:
    assert encounter_problem(with_changes(length={"value": 10**4300 - 1})) is None


@pytest.mark.parametrize(
    ("text", "keys", "problem"),
    [
        ('{"entry": [], "entry": []}', ("entry",), 'invalid JSON: "entry" occurs twice in one object'),
        ('{"entry": [], "type": "a", "type": "b"}', ("entry",), None),
        ('{"a": {"entry": 1, "entry": 2}}', ("entry",), None),  # only the object itself counts
        ('{"entry": []}', ("entry",), None),
    ],
)
def test_ambiguity_names_a_repeated_key_of_the_object_itself(
    text: str, keys: tuple[str, ...], problem: str | None
) -> None:
    found = ambiguity(parse_json(text), keys)
    assert found == (None if problem is None else f"{problem}, so its value is ambiguous")


def test_a_python_list_that_holds_itself_is_nested_too_deeply() -> None:
    looped: list[Any] = [float("nan")]
    looped.append(looped)
    assert encounter_problem(with_changes(extension=looped)) is not None
    looped.pop(0)
    assert encounter_problem(with_changes(extension=looped)) == (
        f"invalid JSON: nested too deeply (more than {MAX_DEPTH} levels)"
    )


@pytest.mark.parametrize(
    ("changes", "place"),
    [
        (
            {"extension": [{"url": "u", "extension": [{"url": "v", "valueDecimal": float("nan")}]}]},
            "extension[0].extension[0].valueDecimal",
        ),
        ({"a b": {"x": [1, 2, float("inf")]}}, "(key).x[2]"),
        (
            {"contained": [{"resourceType": "Basic", "id": "b", "x" * 200: float("nan")}]},
            "contained[0].(key)",
        ),
    ],
)
def test_the_place_of_a_problem_is_its_path_and_odd_keys_are_not_shown(
    changes: dict[str, Any], place: str
) -> None:
    problem = encounter_problem(with_changes(**changes))
    assert problem is not None
    assert problem.endswith(f"(at {place})")
    assert "xxxxxxxxxx" not in problem


@pytest.mark.parametrize("meta", ["0", 5, [1], None, []])
def test_meta_must_be_a_json_object(meta: object) -> None:
    resource = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "planned",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "meta": meta,
    }
    assert encounter_problem(resource) == "meta: must be a JSON object"


def test_a_meta_object_loads() -> None:
    resource = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "planned",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "meta": {"source": "ehr"},
    }
    assert encounter_problem(resource) is None
