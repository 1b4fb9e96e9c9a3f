"""Content negotiation: FHIR JSON only; XML and other formats are a 406, _pretty indents."""

from __future__ import annotations

import pytest

from fhir_encounter.errors import InvalidRequestError, NotAcceptableError
from fhir_encounter.formats import pretty_json, wants_pretty


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ({}, None),
        ({}, "*/*"),
        ({}, "application/fhir+json"),
        ({}, "application/json"),
        ({}, "application/fhir+json; fhirVersion=4.0"),
        ({}, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ({"_format": ["json"]}, None),
        ({"_format": ["application/json"]}, None),
        ({"_format": ["application/fhir+json"]}, None),
        ({"_format": ["application/fhir json"]}, None),  # sent with a raw '+', decoded to a space
        ({"_format": ["application/fhir json; fhirVersion=4.0"]}, None),
        ({"_format": ["json"]}, "application/fhir+xml"),  # _format wins over Accept (FHIR 3.1.0.1.9)
    ],
)
def test_json_is_served(query: dict[str, list[str]], accept: str | None) -> None:
    assert wants_pretty(query, accept) is False


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ({}, "application/fhir+xml"),
        ({}, "application/xml"),
        ({}, "text/html"),
        ({}, "application/fhir+json;q=0, application/xml"),
        ({"_format": ["xml"]}, None),
        ({"_format": ["application/fhir+xml"]}, None),
        ({"_format": ["application/fhir xml"]}, None),
        ({"_format": ["text/xml"]}, None),
        ({"_format": ["ttl"]}, "application/fhir+json"),
    ],
)
def test_other_formats_are_not_acceptable(query: dict[str, list[str]], accept: str | None) -> None:
    with pytest.raises(NotAcceptableError) as caught:
        wants_pretty(query, accept)
    assert (caught.value.status, caught.value.code) == (406, "not-supported")
    assert "application/fhir+json" in caught.value.text


@pytest.mark.parametrize(("value", "pretty"), [("true", True), ("TRUE", True), ("false", False)])
def test_pretty(value: str, pretty: bool) -> None:
    assert wants_pretty({"_pretty": [value]}, None) is pretty


def test_pretty_must_be_true_or_false() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        wants_pretty({"_pretty": ["yes"]}, None)
    assert caught.value.text == "Invalid value for parameter '_pretty': must be true or false"


def test_pretty_json_indents_and_keeps_the_content() -> None:
    text = pretty_json('{"resourceType":"Encounter","id":"é"}')
    assert text == '{\n  "resourceType": "Encounter",\n  "id": "é"\n}'
