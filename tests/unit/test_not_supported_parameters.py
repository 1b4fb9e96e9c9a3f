"""_include and _revinclude (and their :iterate forms): not supported. Ignored and listed as unknown
parameters are, a 400 naming them under strict handling; the CapabilityStatement says so."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from fhir_encounter.capability import capability_statement_json
from fhir_encounter.errors import NotSupportedError
from fhir_encounter.search.query import NOT_SUPPORTED, SearchQuery, parse_search

KEYS = ["_include", "_include:iterate", "_revinclude", "_revinclude:iterate"]
VALUES = {"_include": "Encounter:subject", "_revinclude": "Observation:encounter"}


def parse(text: str, *, strict: bool = False) -> tuple[SearchQuery, list[str]]:
    return parse_search(parse_qs(text, keep_blank_values=True), strict=strict)


@pytest.mark.parametrize("key", KEYS)
def test_include_is_ignored_and_listed_as_ignored(key: str) -> None:
    query, ignored = parse(f"patient=p1&{key}={VALUES[key.split(':')[0]]}")
    assert ignored == [key]
    assert query.criteria_params == (("patient", "p1"),)
    assert query == parse("patient=p1")[0]


@pytest.mark.parametrize("key", KEYS)
def test_include_under_strict_handling_is_a_400_that_names_it(key: str) -> None:
    with pytest.raises(NotSupportedError) as caught:
        parse(f"patient=p1&{key}={VALUES[key.split(':')[0]]}", strict=True)
    assert (caught.value.status, caught.value.code) == (400, "not-supported")
    assert caught.value.text == (
        f"Search parameter '{key}' is not supported: this server returns the matching Encounters only, "
        "not the resources they refer to or that refer to them"
    )


def test_include_under_strict_handling_is_refused_even_when_empty() -> None:
    with pytest.raises(NotSupportedError):
        parse("_revinclude=", strict=True)


def test_the_capability_statement_lists_no_include_and_says_they_are_not_supported() -> None:
    (resource,) = json.loads(capability_statement_json("https://fhir.example.org"))["rest"][0]["resource"]
    assert "searchInclude" not in resource
    assert "searchRevInclude" not in resource
    assert all(f"`{name}`" in resource["documentation"] for name in NOT_SUPPORTED)
    assert "not supported" in resource["documentation"]
    assert "`POST [base]/Encounter/_search`" in resource["documentation"]
