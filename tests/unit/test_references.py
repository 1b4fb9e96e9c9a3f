"""Reference normalisation: every accepted form reduces to (type, id); everything else is refused."""

from __future__ import annotations

import pytest

from fhir_encounter.references import (
    ReferenceValueError,
    is_fhir_id,
    normalize_reference,
    split_reference,
    stored_reference,
)
from fhir_encounter.store.fields import SUBJECT_TYPES

ID_64 = "a" * 64
ID_65 = "a" * 65


@pytest.mark.parametrize(
    "value",
    ["1", "123", "abc", "A-b.C", "a.b-c", "7720a218-c0bd-4cee-82a2-729bd9c101f3", "...", "---", ID_64],
)
def test_is_fhir_id_accepts_1_to_64_letters_digits_dashes_and_dots(value: str) -> None:
    assert is_fhir_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        ID_65,
        "a_b",
        "a b",
        "a/b",
        "a:b",
        "a#b",
        "a%20b",
        "abc\n",
        " abc",
        "\u00e9t\u00e9",
        "\u0661\u0662\u0663",
        "a+b",
    ],
)
def test_is_fhir_id_refuses_anything_else(value: str) -> None:
    assert not is_fhir_id(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", (None, "123")),
        ("pat-1.a", (None, "pat-1.a")),
        (ID_64, (None, ID_64)),
        ("  123  ", (None, "123")),
        ("Patient/123", ("Patient", "123")),
        ("Group/7", ("Group", "7")),
        ("Appointment/9", ("Appointment", "9")),
        (f"Patient/{ID_64}", ("Patient", ID_64)),
        (" Patient/123 ", ("Patient", "123")),
        ("https://host/base/Patient/123", ("Patient", "123")),
        ("http://host/Patient/123", ("Patient", "123")),
        ("https://fhir.example.org:8443/r4/deep/path/Patient/123", ("Patient", "123")),
        ("Patient/123/_history/2", ("Patient", "123")),
        ("https://host/base/Patient/123/_history/17", ("Patient", "123")),
        ("123/_history/2", (None, "123")),
    ],
)
def test_every_accepted_form_reduces_to_type_and_id(value: str, expected: tuple[str | None, str]) -> None:
    assert split_reference(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        ID_65,
        "#p1",
        "urn:uuid:7720a218-c0bd-4cee-82a2-729bd9c101f3",
        "Patient/",
        "/123",
        "Patient/123/",
        "Patient//123",
        "patient/123",
        "Patient 123",
        "Pa-tient/123",
        "Patient/12_3",
        f"Patient/{ID_65}",
        "foo/Patient/123",
        "/base/Patient/123",
        "ftp://host/Patient/123",
        "https:/Patient/123",
        "https://host/Patient/123?x=1",
        "https://host/Patient/123#frag",
        "Patient/123/_history/",
        "Patient/123/_history/2/",
        "Patient/123/extra",
        "Patient/a b",
    ],
)
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ReferenceValueError):
        split_reference(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Patient/123", "Patient/123"),
        ("Group/7", "Group/7"),
        ("https://host/base/Patient/123", "https://host/base/Patient/123"),
        ("https://host/base/Patient/123/_history/4", "https://host/base/Patient/123"),
        ("Group/7/_history/3", "Group/7"),
    ],
)
def test_a_stored_reference_is_type_slash_id_or_its_servers_url(value: str, expected: str) -> None:
    assert stored_reference(value, SUBJECT_TYPES) == expected


def test_a_stored_appointment_reference_is_type_slash_id() -> None:
    assert stored_reference("Appointment/9/_history/3", ("Appointment",)) == "Appointment/9"


@pytest.mark.parametrize("value", ["123", "#p1", "", "patient/1"])
def test_a_stored_reference_refuses_a_bare_id_or_a_non_reference(value: str) -> None:
    with pytest.raises(ReferenceValueError) as caught:
        stored_reference(value, SUBJECT_TYPES)
    assert caught.value.resource_type is None


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("Practitioner/1", "Practitioner"),
        ("https://host/Location/2", "Location"),
        ("Appointment/9", "Appointment"),
    ],
)
def test_a_stored_reference_of_another_type_is_refused_and_names_the_type(value: str, named: str) -> None:
    with pytest.raises(ReferenceValueError) as caught:
        stored_reference(value, SUBJECT_TYPES)
    assert caught.value.resource_type == named


@pytest.mark.parametrize(
    ("value", "allowed", "expected"),
    [
        ("Patient/1", ("Patient",), {"Patient/1"}),
        ("https://host/base/Group/7/_history/2", SUBJECT_TYPES, {"https://host/base/Group/7"}),
        ("7", SUBJECT_TYPES, {"Patient/7", "Group/7"}),
        ("7", ("Patient",), {"Patient/7"}),
        ("9", ("Appointment",), {"Appointment/9"}),
    ],
)
def test_normalize_reference_gives_every_type_slash_id_a_value_can_mean(
    value: str, allowed: tuple[str, ...], expected: set[str]
) -> None:
    assert normalize_reference(value, allowed, allow_bare=True) == frozenset(expected)


def test_normalize_reference_refuses_a_bare_id_unless_allowed() -> None:
    with pytest.raises(ReferenceValueError) as caught:
        normalize_reference("7", SUBJECT_TYPES)
    assert caught.value.resource_type is None
    assert normalize_reference("Patient/7", SUBJECT_TYPES) == frozenset({"Patient/7"})


@pytest.mark.parametrize("allow_bare", [False, True])
def test_normalize_reference_refuses_another_type_and_names_it(allow_bare: bool) -> None:
    with pytest.raises(ReferenceValueError) as caught:
        normalize_reference("Group/7", ("Patient",), allow_bare=allow_bare)
    assert caught.value.resource_type == "Group"


@pytest.mark.parametrize("value", ["#p1", "urn:uuid:1", "patient/1", "Patient/a_b", ""])
def test_normalize_reference_refuses_a_non_reference_without_naming_a_type(value: str) -> None:
    with pytest.raises(ReferenceValueError) as caught:
        normalize_reference(value, SUBJECT_TYPES, allow_bare=True)
    assert caught.value.resource_type is None


def test_reference_value_error_is_a_value_error() -> None:
    assert issubclass(ReferenceValueError, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://host/base/Patient/1", {"Patient/1"}),
        ("http://api.local/Patient/1/_history/2", {"Patient/1"}),
        ("https://host/base2/Patient/1", {"https://host/base2/Patient/1"}),
        ("https://host/Patient/1", {"https://host/Patient/1"}),
    ],
)
def test_a_url_under_a_local_base_is_type_slash_id(value: str, expected: set[str]) -> None:
    local = frozenset({"https://host/base", "http://api.local"})
    assert normalize_reference(value, ("Patient",), local_bases=local) == frozenset(expected)
