"""The function's settings, read from its environment once, by its composition root."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from fhir_encounter.access import SCOPE_TOKEN, AuthMode, ScopePolicy
from fhir_encounter.cors import CorsPolicy

# SMART discovery's defaults: what a Cognito user pool supports (template.yaml's defaults too).
DEFAULT_CAPABILITIES = (
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
)
DEFAULT_GRANT_TYPES = ("authorization_code", "client_credentials")
DEFAULT_TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
DEFAULT_TOKEN_SIGNING_ALGS = ("RS384", "ES384")  # SMART's for private_key_jwt, when it is offered
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete; names the variable, never its value."""


@dataclass(frozen=True, slots=True)
class Settings:
    """A frozen dataclass, not a pydantic model: importing pydantic and building a model's
    validator was a fifth of the read function's cold start, and these few checks need neither.
    ``auth_mode`` has no default: a function whose AUTH_MODE is missing refuses to start."""

    auth_mode: AuthMode
    service_name: str = "fhir-encounter"
    log_level: str = "INFO"
    metrics_namespace: str = "FhirEncounterApi"
    metrics_disabled: bool = False
    trace_disabled: bool = False
    oidc_issuer: str | None = None
    smart_authorization_endpoint: str | None = None
    smart_token_endpoint: str | None = None
    jwks_url: str | None = None
    table_name: str | None = None  # 3 to 255 characters (DynamoDB's table name length)
    cursor_secret: str | None = None  # at least 16 characters
    fhir_base_url: str | None = None  # without a trailing slash
    cors_allowed_origins: tuple[str, ...] = ()  # empty: no CORS; ("*",): any origin
    dynamodb_endpoint_url: str | None = None
    scope_prefix: str = ""  # the resource-server prefix of the identity provider's scopes
    user_scopes: bool = True  # USER_SCOPES enabled (the default) or disabled
    smart_capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    smart_grant_types: tuple[str, ...] = DEFAULT_GRANT_TYPES
    smart_token_auth_methods: tuple[str, ...] = DEFAULT_TOKEN_AUTH_METHODS
    smart_token_signing_algs: tuple[str, ...] = DEFAULT_TOKEN_SIGNING_ALGS
    lambda_task_root: str | None = None  # set by Lambda (and by `sam local`)
    lambda_function_name: str | None = None  # set by Lambda (and by `sam local`)
    sam_local: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from the variables that are set and not empty; ConfigurationError naming
        every invalid one. AUTH_MODE is required, and ``none`` (local development) is refused in
        Lambda (AWS_LAMBDA_FUNCTION_NAME or LAMBDA_TASK_ROOT set), unless under `sam local`."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        invalid: list[str] = [] if source.get(ENVIRONMENT["auth_mode"]) else [ENVIRONMENT["auth_mode"]]
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
        settings = cls(**values)
        if settings.auth_mode is AuthMode.NONE and settings.in_lambda and not settings.sam_local:
            raise ConfigurationError(
                "AUTH_MODE none serves every request without authentication: it is for local "
                "development only, and refused in Lambda (AWS_LAMBDA_FUNCTION_NAME or "
                "LAMBDA_TASK_ROOT set, AWS_SAM_LOCAL not true)"
            )
        return settings

    @property
    def in_lambda(self) -> bool:
        """Running in Lambda's runtime (or `sam local`'s, which sets AWS_SAM_LOCAL too)."""
        return self.lambda_task_root is not None or self.lambda_function_name is not None

    @property
    def scope_policy(self) -> ScopePolicy:
        return ScopePolicy(prefix=self.scope_prefix, user_scopes=self.user_scopes)

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
    "scope_prefix": "SCOPE_PREFIX",
    "user_scopes": "USER_SCOPES",
    "smart_capabilities": "SMART_CAPABILITIES",
    "smart_grant_types": "SMART_GRANT_TYPES",
    "smart_token_auth_methods": "SMART_TOKEN_AUTH_METHODS",
    "smart_token_signing_algs": "SMART_TOKEN_SIGNING_ALGS",
}
# Set by Lambda and by `sam local`, never by the template (Lambda reserves these names).
RUNTIME_ENVIRONMENT = {
    "lambda_task_root": "LAMBDA_TASK_ROOT",
    "lambda_function_name": "AWS_LAMBDA_FUNCTION_NAME",
    "sam_local": "AWS_SAM_LOCAL",
}
_READ = {**ENVIRONMENT, **RUNTIME_ENVIRONMENT}


def _flag(value: str) -> bool:
    """A boolean variable, spelled as pydantic and Powertools accept it."""
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(value)


def _enabled(value: str) -> bool:
    if value not in ("enabled", "disabled"):
        raise ValueError(value)
    return value == "enabled"


def _scope_prefix(value: str) -> str:
    """A prefix is one scope-token (RFC 6749 3.3) that does not end in a slash."""
    if SCOPE_TOKEN.fullmatch(value) is None or value.endswith("/"):
        raise ValueError(value)
    return value


def _names(value: str) -> tuple[str, ...]:
    """A comma-separated list of names (capabilities, grant types, methods, algorithms)."""
    names = tuple(part.strip() for part in value.split(","))
    if not all(_NAME.fullmatch(name) for name in names):
        raise ValueError(value)
    return names


_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


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
    "scope_prefix": _scope_prefix,
    "user_scopes": _enabled,
    "smart_capabilities": _names,
    "smart_grant_types": _names,
    "smart_token_auth_methods": _names,
    "smart_token_signing_algs": _names,
}
