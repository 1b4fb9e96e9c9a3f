"""The function's settings, read from its environment once, by its composition root."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fhir_encounter.access import AuthMode


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete; names the variable, never its value."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

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
    table_name: str | None = Field(default=None, min_length=3, max_length=255)
    cursor_secret: str | None = Field(default=None, min_length=16)
    fhir_base_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    lambda_task_root: str | None = None  # set by Lambda (and by `sam local`)
    sam_local: bool = False

    @field_validator("fhir_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        values = {field: source[name] for field, name in _READ.items() if source.get(name)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigurationError(_names(error)) from None

    @property
    def tracing(self) -> bool:
        """X-Ray tracing, as Powertools decides it: in Lambda (not `sam local`, where no X-Ray daemon
        listens) unless POWERTOOLS_TRACE_DISABLED. Off, the X-Ray SDK is never imported."""
        return self.lambda_task_root is not None and not self.sam_local and not self.trace_disabled

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
    "dynamodb_endpoint_url": "DYNAMODB_ENDPOINT_URL",
}
# Set by Lambda and by `sam local`, never by the template (Lambda reserves LAMBDA_TASK_ROOT).
RUNTIME_ENVIRONMENT = {"lambda_task_root": "LAMBDA_TASK_ROOT", "sam_local": "AWS_SAM_LOCAL"}
_READ = {**ENVIRONMENT, **RUNTIME_ENVIRONMENT}


def _names(error: ValidationError) -> str:
    names = sorted({_READ[str(issue["loc"][0])] for issue in error.errors()})
    return f"missing or invalid environment variables: {', '.join(names)}"
