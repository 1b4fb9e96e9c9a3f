"""The FHIR error family: each failure a client can see, with its HTTP status and issue code.

Texts name what was wrong (a parameter name, an id the client sent), never stack traces, AWS
error text or stored data. ``Runtime.router`` maps them to responses.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

FHIR_JSON = "application/fhir+json"
CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
INTERNAL_ERROR_TEXT = "The server could not complete the request. It has been logged; try again later."
RETRY_AFTER_SECONDS = 2
# Parameter names (never values) that an error text or a log line names: at most this many, each
# cut to this length.
MAX_NAMED = 10
MAX_NAME_LENGTH = 64


def cut_name(text: str) -> str:
    """A client's parameter name (or modifier) as an error or log line may show it: at most
    MAX_NAME_LENGTH characters."""
    return text if len(text) <= MAX_NAME_LENGTH else text[: MAX_NAME_LENGTH - 1] + "…"


def is_text(value: str) -> bool:
    """Whether the value is valid Unicode text (no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FhirError(Exception):
    """An error with its HTTP status and FHIR issue code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequestError(FhirError):
    """Bad input: a path id, a search value, a cursor."""

    status = 400
    code = "invalid"


class NotSupportedError(FhirError):
    """A well-formed request for something this server does not do (a modifier, strict unknowns)."""

    status = 400
    code = "not-supported"


class InvalidTokenError(FhirError):
    """The bearer token is not (or no longer) usable: expired, or its lifetime unknown (401, as
    API Gateway answers a Deny), whatever decision the authorizer cached."""

    status = 401
    code = "login"
    challenge: ClassVar[str] = 'Bearer error="invalid_token"'  # RFC 6750 3.1

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class TokenInUrlError(InvalidTokenError):
    """An ``access_token`` query parameter: a token in a URL is never accepted (RFC 6750 2.3)."""

    challenge = 'Bearer error="invalid_request"'


class ForbiddenError(FhirError):
    """The token does not allow this interaction (its scopes, or a missing patient context)."""

    status = 403
    code = "forbidden"


class NotAcceptableError(FhirError):
    """The client accepts only formats this server does not produce (XML, Turtle, ...)."""

    status = 406
    code = "not-supported"


class ContentTooLargeError(FhirError):
    """A request body over what the route reads (RFC 9110 15.5.14)."""

    status = 413
    code = "too-long"


class UnsupportedMediaTypeError(FhirError):
    """A request body of a media type, charset or content coding the route does not read."""

    status = 415
    code = "not-supported"


class NotFoundError(FhirError):
    status = 404
    code = "not-found"


class RetryLaterError(FhirError):
    """Worth retrying after Retry-After seconds (503)."""

    status = 503
    code = "transient"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class StoreUnavailableError(RetryLaterError):
    """DynamoDB throttled or timed out."""


class TooCostlyError(RetryLaterError):
    """Counting did not finish within the function's time."""

    code = "too-costly"


class InternalError(FhirError):
    status = 500
    code = "exception"

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR_TEXT)


def operation_outcome(severity: str, code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "details": {"text": text}}],
    }


def error_body(error: FhirError) -> str:
    return json.dumps(operation_outcome("error", error.code, error.text), separators=(",", ":"))
