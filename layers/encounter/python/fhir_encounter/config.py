"""Settings read from the environment once, on first use (never at import, so tests can set it)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete; names the variable, never its value."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    cursor_secret: str = Field(min_length=16)
    fhir_base_url: str | None = None
    dynamodb_endpoint_url: str | None = None

    @field_validator("fhir_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None


ENVIRONMENT = {
    "table_name": "ENCOUNTER_TABLE",
    "cursor_secret": "CURSOR_SECRET",
    "fhir_base_url": "FHIR_BASE_URL",
    "dynamodb_endpoint_url": "DYNAMODB_ENDPOINT_URL",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    values = {field: os.environ[name] for field, name in ENVIRONMENT.items() if os.environ.get(name)}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        names = sorted({ENVIRONMENT[str(issue["loc"][0])] for issue in error.errors()})
        raise ConfigurationError(f"missing or invalid environment variables: {', '.join(names)}") from None
