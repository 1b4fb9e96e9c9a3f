"""The function's settings, read from its environment once, by its composition root."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from fhir_encounter.access import AuthMode
from fhir_encounter.cors import CorsPolicy

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete; names the variable, never its value."""


@dataclass(frozen=True, slots=True)
class Settings:
    """A frozen dataclass, not a pydantic model: importing pydantic and building a model's
    validator was a fifth of the read function's cold start, and these few checks need neither."""

    service_name: str = "fhir-encounter"
    log_level: str = "INFO"
    metrics_namespace: str = "FhirEncounterApi"
    metrics_disabled: bool = False
    trace_disabled: bool = False
    auth_mode: AuthMode = AuthMode.IAM
    oidc_issuer: str | None = None
    smart_authorization_endpoint: str | None = None
    smart_token_endpoint: str | None = None
    jwks_url: str | None = None
    table_name: str | None = None  # 3 to 255 characters (DynamoDB's table name length)
    cursor_secret: str | None = None  # at least 16 characters
    fhir_base_url: str | None = None  # without a trailing slash
    cors_allowed_origins: tuple[str, ...] = ()  # empty: no CORS; ("*",): any origin
    dynamodb_endpoint_url: str | None = None
    lambda_task_root: str | None = None  # set by Lambda (and by `sam local`)
    sam_local: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from the variables that are set and not empty; ConfigurationError naming
        every invalid one."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        invalid: list[str] = []
        for name, variable in _READ.items():
            if not source.get(variable):
                continue
            try:
                values[name] = _PARSERS.get(name, str)(source[variable])
            except ValueError:
                invalid.append(variable)
        if invalid:
            raise ConfigurationError(
                f"missing or invalid environment variables: {', '.join(sorted(invalid))}"
            )
        return cls(**values)

    @property
    def tracing(self) -> bool:
        """X-Ray tracing, as Powertools decides it: in Lambda (not `sam local`, where no X-Ray daemon
        listens) unless POWERTOOLS_TRACE_DISABLED. Off, the X-Ray SDK is never imported."""
        return self.lambda_task_root is not None and not self.sam_local and not self.trace_disabled

    @property
    def cors(self) -> CorsPolicy:
        return CorsPolicy(self.cors_allowed_origins)

    def store_settings(self) -> tuple[str, str]:
        """(table name, cursor secret): what a function that reads the table needs."""
        missing = [
            ENVIRONMENT[name] for name in ("table_name", "cursor_secret") if getattr(self, name) is None
        ]
        if self.table_name is None or self.cursor_secret is None:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        return self.table_name, self.cursor_secret


ENVIRONMENT = {
    "service_name": "POWERTOOLS_SERVICE_NAME",
    "log_level": "POWERTOOLS_LOG_LEVEL",
    "metrics_namespace": "POWERTOOLS_METRICS_NAMESPACE",
    "metrics_disabled": "POWERTOOLS_METRICS_DISABLED",
    "trace_disabled": "POWERTOOLS_TRACE_DISABLED",
    "auth_mode": "AUTH_MODE",
    "oidc_issuer": "OIDC_ISSUER",
    "smart_authorization_endpoint": "SMART_AUTHORIZATION_ENDPOINT",
    "smart_token_endpoint": "SMART_TOKEN_ENDPOINT",
    "jwks_url": "JWKS_URL",
    "table_name": "ENCOUNTER_TABLE",
    "cursor_secret": "CURSOR_SECRET",
    "fhir_base_url": "FHIR_BASE_URL",
    "cors_allowed_origins": "CORS_ALLOWED_ORIGINS",
    "dynamodb_endpoint_url": "DYNAMODB_ENDPOINT_URL",
}
# Set by Lambda and by `sam local`, never by the template (Lambda reserves LAMBDA_TASK_ROOT).
RUNTIME_ENVIRONMENT = {"lambda_task_root": "LAMBDA_TASK_ROOT", "sam_local": "AWS_SAM_LOCAL"}
_READ = {**ENVIRONMENT, **RUNTIME_ENVIRONMENT}


def _flag(value: str) -> bool:
    """A boolean variable, spelled as pydantic and Powertools accept it."""
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(value)


def _length(low: int, high: int | None = None) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) < low or (high is not None and len(value) > high):
            raise ValueError(value)
        return value

    return parse


_BOOLEANS = [field.name for field in fields(Settings) if field.type in ("bool", bool)]
_PARSERS: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(_BOOLEANS, _flag),
    "auth_mode": AuthMode,
    "table_name": _length(3, 255),
    "cursor_secret": _length(16),
    "fhir_base_url": lambda value: value.rstrip("/") or None,
    "cors_allowed_origins": lambda value: CorsPolicy.parse(value).origins,
}
