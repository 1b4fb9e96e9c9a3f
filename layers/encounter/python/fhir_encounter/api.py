"""What the handlers share: the resolver with its error map, responses, base URL, the routes' work.

Handlers stay thin: they declare the route and call ``read_encounter`` / ``search_encounters``
here. Every error leaves through ``_fhir_error`` or ``_unexpected_error``: an OperationOutcome.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from fhir_encounter.bundle import searchset
from fhir_encounter.capability import capability_statement_json
from fhir_encounter.config import get_settings
from fhir_encounter.dates import instant_now
from fhir_encounter.observability import logger, metrics
from fhir_encounter.outcome import (
    FHIR_JSON,
    FhirError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    error_body,
)
from fhir_encounter.references import is_fhir_id
from fhir_encounter.search import parse_search
from fhir_encounter.store.cursor import decode_cursor, encode_cursor, search_fingerprint
from fhir_encounter.store.repository import EncounterRepository, dynamodb_client

CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
# How long a first page may spend counting `total` (the functions time out at 15 s): past it the
# page is answered without a total rather than not at all.
COUNT_BUDGET_SECONDS = 4.0
# Responses carry patient data: no shared or browser cache may keep them.
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def create_resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    @app.exception_handler(FhirError)  # type: ignore[untyped-decorator]
    def _fhir_error(error: FhirError) -> Response[str]:
        if error.status >= 500:
            logger.warning("request failed", extra={"status": error.status, "code": error.code})
        else:
            logger.info("request rejected", extra={"status": error.status, "code": error.code})
        return error_response(error)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected_error(error: Exception) -> Response[str]:
        logger.exception("unexpected error", extra={"error_type": type(error).__name__})
        return error_response(InternalError())

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        event = app.current_event
        return error_response(NotFoundError(f"No route for {event.http_method} {event.path}"))

    return app


def error_response(error: FhirError) -> Response[str]:
    return fhir_response(error.status, error_body(error), error.headers())


def fhir_response(status: int, body: str, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=CONTENT_TYPE,
        body=body,
        headers={**COMMON_HEADERS, **(headers or {})},
    )


@lru_cache(maxsize=1)
def encounter_repository() -> EncounterRepository:
    return EncounterRepository(dynamodb_client(), get_settings().table_name)


def base_url(event: APIGatewayProxyEvent) -> str:
    """The FHIR base: FHIR_BASE_URL, else scheme and Host plus what precedes the resource path
    (the stage on an execute-api domain, a base path mapping on a custom domain, nothing locally)."""
    configured = get_settings().fhir_base_url
    if configured:
        return configured
    headers = event.headers
    scheme = headers.get("X-Forwarded-Proto") or headers.get("x-forwarded-proto") or "https"
    host = headers.get("Host") or headers.get("host") or event.request_context.domain_name or "localhost"
    full_path = event.request_context.path or event.path
    prefix = full_path[: -len(event.path)] if event.path and full_path.endswith(event.path) else ""
    return f"{scheme.split(',')[0].strip()}://{host}{prefix.rstrip('/')}"


def read_encounter(event: APIGatewayProxyEvent, encounter_id: str) -> Response[str]:
    if not is_fhir_id(encounter_id):
        raise InvalidRequestError(
            "Invalid Encounter id: a FHIR id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
        )
    stored = encounter_repository().get(encounter_id)
    etag = f'W/"{stored.version_id}"'
    headers = {"ETag": etag, "Last-Modified": _http_date(stored.last_updated)}
    if_none_match = event.headers.get("If-None-Match") or event.headers.get("if-none-match")
    if if_none_match and _etag_matches(if_none_match, stored.version_id):
        return Response(status_code=304, headers={**COMMON_HEADERS, **headers})
    logger.info("encounter read", extra={"encounter_id": encounter_id})
    metrics.add_metric(name="EncounterReads", unit=MetricUnit.Count, value=1)
    return fhir_response(200, stored.resource_json, headers)


def search_encounters(event: APIGatewayProxyEvent) -> Response[str]:
    started = time.perf_counter()
    settings = get_settings()
    query, ignored = parse_search(event.multi_value_query_string_parameters, strict=_prefers_strict(event))
    fingerprint = search_fingerprint(query.criteria_params, query.count, query.total_mode)
    cursor = (
        decode_cursor(query.cursor, fingerprint, query.offset, settings.cursor_secret)
        if query.cursor
        else None
    )
    now = time.time_ns() // 1000
    page = encounter_repository().search(
        query, now, cursor, count_deadline=time.monotonic() + COUNT_BUDGET_SECONDS
    )
    shown = len(page.resources)
    next_offset = query.offset + shown if shown and page.has_more else None
    body = searchset(
        base_url=base_url(event),
        query=query,
        resources=page.resources,
        total=page.total,
        next_offset=next_offset,
        next_cursor=encode_cursor(page.next_cursor, fingerprint, settings.cursor_secret)
        if page.next_cursor
        else None,
        last_updated=instant_now(),
    )
    logger.info(
        "search answered",
        extra={
            "parameters": [name for name, _ in query.criteria_params],
            "ignored_parameters": ignored,
            "count": query.count,
            "offset": query.offset,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    metrics.add_metric(name="SearchReadUnits", unit=MetricUnit.Count, value=page.read_units)
    return fhir_response(200, body)


def capability_statement(event: APIGatewayProxyEvent) -> Response[str]:
    return fhir_response(200, capability_statement_json(base_url(event)))


def _etag_matches(if_none_match: str, version_id: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored; * matches any."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or f'"{version_id}"' in tags


def _prefers_strict(event: APIGatewayProxyEvent) -> bool:
    """RFC 7240: comma-separated preferences, each possibly followed by ';'-parameters."""
    prefer = event.headers.get("Prefer") or event.headers.get("prefer") or ""
    return any(part.split(";")[0].strip().lower() == "handling=strict" for part in prefer.split(","))


def _http_date(instant: str) -> str:
    try:
        return format_datetime(datetime.fromisoformat(instant).astimezone(UTC), usegmt=True)
    except ValueError:
        return format_datetime(datetime.now(UTC), usegmt=True)
