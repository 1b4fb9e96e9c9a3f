"""Settings from a function's environment: every variable's spelling, what is checked, and the
name (never the value) of what is wrong. Missing and invalid store variables: test_errors.py."""

from __future__ import annotations

import pytest

from fhir_encounter.access import AuthMode
from fhir_encounter.config import ConfigurationError, Settings
from tests.environment import TEST_ENVIRONMENT


def test_the_test_environment_reads_as_written() -> None:
    settings = Settings.from_environment(TEST_ENVIRONMENT)
    assert settings.table_name == "encounters-test"
    assert settings.cursor_secret == TEST_ENVIRONMENT["CURSOR_SECRET"]
    assert (settings.metrics_disabled, settings.trace_disabled) == (True, True)
    assert settings.log_level == "WARNING"
    assert settings.auth_mode is AuthMode.IAM  # the default


def test_unset_variables_take_the_defaults() -> None:
    assert Settings.from_environment({}) == Settings()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        (" true ", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
    ],
)
def test_flags_take_the_usual_spellings(text: str, value: bool) -> None:
    settings = Settings.from_environment({"POWERTOOLS_METRICS_DISABLED": text, "AWS_SAM_LOCAL": text})
    assert (settings.metrics_disabled, settings.sam_local) == (value, value)


@pytest.mark.parametrize(
    ("text", "mode"), [("none", AuthMode.NONE), ("iam", AuthMode.IAM), ("smart", AuthMode.SMART)]
)
def test_auth_mode_is_one_of_three(text: str, mode: AuthMode) -> None:
    assert Settings.from_environment({"AUTH_MODE": text}).auth_mode is mode


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"AUTH_MODE": "SMART"}, "AUTH_MODE"),
        ({"AUTH_MODE": "open"}, "AUTH_MODE"),
        ({"POWERTOOLS_TRACE_DISABLED": "2"}, "POWERTOOLS_TRACE_DISABLED"),
        ({"ENCOUNTER_TABLE": "t" * 256}, "ENCOUNTER_TABLE"),
        ({"AUTH_MODE": "x", "CURSOR_SECRET": "0123456789abcde"}, "AUTH_MODE, CURSOR_SECRET"),
    ],
)
def test_an_invalid_value_is_named_never_shown(environment: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment(environment)
    assert str(raised.value) == f"missing or invalid environment variables: {named}"
    assert all(value not in str(raised.value) for value in environment.values())


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("https://fhir.example.org/r4/", "https://fhir.example.org/r4"),
        ("https://x.org", "https://x.org"),
        ("/", None),
    ],
)
def test_the_base_url_loses_its_trailing_slash(text: str, url: str | None) -> None:
    assert Settings.from_environment({"FHIR_BASE_URL": text}).fhir_base_url == url


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.table_name = "other"  # type: ignore[misc]
