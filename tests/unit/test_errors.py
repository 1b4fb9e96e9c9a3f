"""The error family and its map: each FhirError class -> HTTP status, FHIR code, OperationOutcome and
headers; and the configuration error, which names the variable and never its value."""

from __future__ import annotations

import json

import pytest

from fhir_encounter.config import ConfigurationError, Settings
from fhir_encounter.errors import (
    INTERNAL_ERROR_TEXT,
    FhirError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    NotSupportedError,
    StoreUnavailableError,
    error_body,
    operation_outcome,
)
from fhir_encounter.gateway import COMMON_HEADERS
from fhir_encounter.runtime import Store, error_response
from tests.environment import TEST_ENVIRONMENT

CASES = [
    (InvalidRequestError("Invalid value for search parameter 'date': bad"), 400, "invalid", {}),
    (NotSupportedError("Unknown search parameter(s): foo"), 400, "not-supported", {}),
    (NotFoundError("Unknown Encounter resource 'x'"), 404, "not-found", {}),
    (
        StoreUnavailableError("The Encounter store is busy; retry the request later"),
        503,
        "transient",
        {"Retry-After": "2"},
    ),
    (InternalError(), 500, "exception", {}),
]


@pytest.mark.parametrize(("error", "status", "code", "headers"), CASES)
def test_each_error_has_its_status_code_and_headers(
    error: FhirError, status: int, code: str, headers: dict[str, str]
) -> None:
    assert isinstance(error, FhirError)
    assert (error.status, error.code, error.headers()) == (status, code, headers)


@pytest.mark.parametrize(("error", "status", "code", "headers"), CASES)
def test_each_error_body_is_an_operation_outcome(
    error: FhirError, status: int, code: str, headers: dict[str, str]
) -> None:
    assert json.loads(error_body(error)) == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "details": {"text": error.text}}],
    }


@pytest.mark.parametrize(("error", "status", "code", "headers"), CASES)
def test_each_error_response_is_fhir_json_with_its_headers(
    error: FhirError, status: int, code: str, headers: dict[str, str]
) -> None:
    response = error_response(error)
    assert response.status == status
    assert response.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert {k: v for k, v in response.headers.items() if k != "Content-Type"} == {**COMMON_HEADERS, **headers}
    assert isinstance(response.body, str)
    assert json.loads(response.body)["issue"][0]["code"] == code


def test_the_internal_error_text_is_fixed_and_safe() -> None:
    assert InternalError().text == INTERNAL_ERROR_TEXT
    assert (
        INTERNAL_ERROR_TEXT
        == "The server could not complete the request. It has been logged; try again later."
    )


def test_retry_after_is_a_whole_number_of_seconds() -> None:
    assert StoreUnavailableError("busy").headers()["Retry-After"].isdigit()


def test_texts_with_quotes_and_non_ascii_stay_valid_json() -> None:
    text = "Unknown Encounter resource 'a\"b' \u00e9 \\ \n"
    assert json.loads(error_body(NotFoundError(text)))["issue"][0]["details"]["text"] == text


def test_operation_outcome_builds_one_issue() -> None:
    assert operation_outcome("warning", "informational", "t") == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "warning", "code": "informational", "details": {"text": "t"}}],
    }


def test_an_error_keeps_its_text_as_message() -> None:
    error = NotFoundError("Unknown Encounter resource 'x'")
    assert str(error) == error.text == "Unknown Encounter resource 'x'"


def test_responses_forbid_caching_and_sniffing() -> None:
    assert COMMON_HEADERS == {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


# ---- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENCOUNTER_TABLE", "ab"),
        ("CURSOR_SECRET", "short-secret"),
        ("POWERTOOLS_METRICS_DISABLED", "maybe"),
    ],
)
def test_an_invalid_variable_is_a_configuration_error_naming_it_not_its_value(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({**TEST_ENVIRONMENT, variable: value})
    assert str(raised.value) == f"missing or invalid environment variables: {variable}"


def test_every_invalid_variable_is_named() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({"ENCOUNTER_TABLE": "ab", "CURSOR_SECRET": "short"})
    assert str(raised.value) == (
        "missing or invalid environment variables: AUTH_MODE, CURSOR_SECRET, ENCOUNTER_TABLE"
    )


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        (("ENCOUNTER_TABLE",), "ENCOUNTER_TABLE"),
        (("CURSOR_SECRET",), "CURSOR_SECRET"),
        (("ENCOUNTER_TABLE", "CURSOR_SECRET"), "ENCOUNTER_TABLE, CURSOR_SECRET"),
    ],
)
def test_a_store_without_its_variables_is_a_configuration_error_naming_them(
    unset: tuple[str, ...], named: str
) -> None:
    settings = Settings.from_environment({k: v for k, v in TEST_ENVIRONMENT.items() if k not in unset})
    with pytest.raises(ConfigurationError) as raised:
        Store.from_settings(settings)
    assert str(raised.value) == f"missing environment variables: {named}"


def test_empty_variables_count_as_unset() -> None:
    settings = Settings.from_environment({**TEST_ENVIRONMENT, "ENCOUNTER_TABLE": ""})
    assert settings.table_name is None
