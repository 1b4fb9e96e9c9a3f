"""Reference normalisation: every accepted form reduces to (type, id); everything else is refused."""

from __future__ import annotations

import pytest

from fhir_encounter.references import ReferenceValueError, is_fhir_id, split_reference, typed_reference

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
        ("https://host/base/Patient/123", "Patient/123"),
        ("Appointment/9/_history/3", "Appointment/9"),
    ],
)
def test_typed_reference_is_type_slash_id(value: str, expected: str) -> None:
    assert typed_reference(value) == expected


@pytest.mark.parametrize("value", ["123", "#p1", "", "patient/1"])
def test_typed_reference_refuses_a_bare_id_or_a_non_reference(value: str) -> None:
    with pytest.raises(ReferenceValueError):
        typed_reference(value)


def test_reference_value_error_is_a_value_error() -> None:
    assert issubclass(ReferenceValueError, ValueError)
