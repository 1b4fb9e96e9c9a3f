"""Settings from a function's environment: every variable's spelling, what is checked, and the
name (never the value) of what is wrong. Missing and invalid store variables: test_errors.py."""

from __future__ import annotations

import pytest

from fhir_encounter.access import AuthMode, ScopePolicy
from fhir_encounter.config import ConfigurationError, Settings
from tests.environment import TEST_ENVIRONMENT


def test_the_test_environment_reads_as_written() -> None:
    settings = Settings.from_environment(TEST_ENVIRONMENT)
    assert settings.table_name == "encounters-test"
    assert settings.cursor_secret == TEST_ENVIRONMENT["CURSOR_SECRET"]
    assert (settings.metrics_disabled, settings.trace_disabled) == (True, True)
    assert settings.log_level == "WARNING"
    assert settings.auth_mode is AuthMode.IAM


def test_unset_variables_take_the_defaults() -> None:
    assert Settings.from_environment({"AUTH_MODE": "iam"}) == Settings(auth_mode=AuthMode.IAM)


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
    settings = Settings.from_environment(
        {"AUTH_MODE": "iam", "POWERTOOLS_METRICS_DISABLED": text, "AWS_SAM_LOCAL": text}
    )
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
        ({"AUTH_MODE": ""}, "AUTH_MODE"),
        ({"USER_SCOPES": "true"}, "USER_SCOPES"),
        ({"USER_SCOPES": "Disabled"}, "USER_SCOPES"),
        ({"SCOPE_PREFIX": "fhir/"}, "SCOPE_PREFIX"),
        ({"SCOPE_PREFIX": "a b"}, "SCOPE_PREFIX"),
        ({"SCOPE_PREFIX": "caf\u00e9"}, "SCOPE_PREFIX"),
        ({"SMART_CAPABILITIES": "launch-standalone,,client-public"}, "SMART_CAPABILITIES"),
        ({"SMART_GRANT_TYPES": "authorization_code client_credentials"}, "SMART_GRANT_TYPES"),
        ({"SMART_TOKEN_AUTH_METHODS": "private_key_jwt,"}, "SMART_TOKEN_AUTH_METHODS"),
        ({"SMART_TOKEN_SIGNING_ALGS": "RS384;ES384"}, "SMART_TOKEN_SIGNING_ALGS"),
        ({"AUTH_MODE": "x", "CURSOR_SECRET": "0123456789abcde"}, "AUTH_MODE, CURSOR_SECRET"),
    ],
)
def test_an_invalid_value_is_named_never_shown(environment: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({"AUTH_MODE": "iam", **environment})
    assert str(raised.value) == f"missing or invalid environment variables: {named}"
    assert all(value not in str(raised.value) for value in environment.values() if value)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("https://fhir.example.org/r4/", "https://fhir.example.org/r4"),
        ("https://x.org", "https://x.org"),
        ("/", None),
    ],
)
def test_the_base_url_loses_its_trailing_slash(text: str, url: str | None) -> None:
    assert Settings.from_environment({"AUTH_MODE": "iam", "FHIR_BASE_URL": text}).fhir_base_url == url


def test_settings_are_frozen() -> None:
    settings = Settings(auth_mode=AuthMode.SMART)
    with pytest.raises(AttributeError):
        settings.table_name = "other"  # type: ignore[misc]


# ---- fail closed: AUTH_MODE is required, and none is for local development only --------------------


@pytest.mark.parametrize(
    "environment",
    [{}, {"AUTH_MODE": ""}, {k: v for k, v in TEST_ENVIRONMENT.items() if k != "AUTH_MODE"}],
    ids=["empty", "blank", "everything-else"],
)
def test_a_function_without_auth_mode_refuses_to_start(environment: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment(environment)
    assert str(raised.value) == "missing or invalid environment variables: AUTH_MODE"


@pytest.mark.parametrize(
    "runtime",
    [
        {"AWS_LAMBDA_FUNCTION_NAME": "stack-ReadEncounterFunction-abc"},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"AWS_LAMBDA_FUNCTION_NAME": "stack-ReadEncounterFunction-abc", "AWS_SAM_LOCAL": "false"},
    ],
    ids=["function-name", "task-root", "sam-local-false"],
)
def test_auth_mode_none_is_refused_in_lambda(runtime: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({**TEST_ENVIRONMENT, "AUTH_MODE": "none", **runtime})
    assert "AUTH_MODE" in str(raised.value)
    assert "AWS_LAMBDA_FUNCTION_NAME" in str(raised.value)
    assert all(value not in str(raised.value) for value in runtime.values())


@pytest.mark.parametrize(
    ("mode", "runtime"),
    [
        ("none", {}),  # `make run`: the dev server, in-process
        ("none", {"AWS_LAMBDA_FUNCTION_NAME": "f", "LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}),
        ("iam", {"AWS_LAMBDA_FUNCTION_NAME": "f", "LAMBDA_TASK_ROOT": "/var/task"}),
        ("smart", {"AWS_LAMBDA_FUNCTION_NAME": "f", "LAMBDA_TASK_ROOT": "/var/task"}),
    ],
    ids=["none-locally", "none-under-sam-local", "iam-in-lambda", "smart-in-lambda"],
)
def test_the_other_modes_start_anywhere_and_none_locally(mode: str, runtime: dict[str, str]) -> None:
    assert Settings.from_environment({**TEST_ENVIRONMENT, "AUTH_MODE": mode, **runtime}).auth_mode == mode


# ---- scopes and SMART discovery ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "policy"),
    [
        ({}, ScopePolicy("", True)),
        ({"SCOPE_PREFIX": "fhir"}, ScopePolicy("fhir", True)),
        ({"SCOPE_PREFIX": "https://api.example.org"}, ScopePolicy("https://api.example.org", True)),
        ({"USER_SCOPES": "enabled"}, ScopePolicy("", True)),
        ({"USER_SCOPES": "disabled"}, ScopePolicy("", False)),
    ],
)
def test_the_scope_policy_comes_from_scope_prefix_and_user_scopes(
    environment: dict[str, str], policy: ScopePolicy
) -> None:
    assert Settings.from_environment({"AUTH_MODE": "smart", **environment}).scope_policy == policy


def test_discovery_lists_are_comma_separated_and_default_to_what_cognito_supports() -> None:
    defaults = Settings.from_environment({"AUTH_MODE": "smart"})
    assert defaults.smart_grant_types == ("authorization_code", "client_credentials")
    assert defaults.smart_token_auth_methods == ("client_secret_basic", "client_secret_post")
    assert "permission-user" in defaults.smart_capabilities
    assert "sso-openid-connect" not in defaults.smart_capabilities
    configured = Settings.from_environment(
        {
            "AUTH_MODE": "smart",
            "SMART_CAPABILITIES": "launch-ehr, permission-v2",
            "SMART_TOKEN_AUTH_METHODS": "private_key_jwt",
            "SMART_TOKEN_SIGNING_ALGS": "ES384",
        }
    )
    assert configured.smart_capabilities == ("launch-ehr", "permission-v2")
    assert (configured.smart_token_auth_methods, configured.smart_token_signing_algs) == (
        ("private_key_jwt",),
        ("ES384",),
    )
