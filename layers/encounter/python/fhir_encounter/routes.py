"""The route bodies the handlers call: request in, FHIR response out. They parse, plan, read
through the repository, page and build the Bundle; no boto3 and no hand-built responses here."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from fhir_encounter.access import PUBLIC, Action
from fhir_encounter.bundle import entry_size, searchset
from fhir_encounter.capability import capability_statement_json
from fhir_encounter.dates import instant_now
from fhir_encounter.errors import InvalidRequestError, NotFoundError, TooCostlyError
from fhir_encounter.formats import pretty_json, wants_pretty
from fhir_encounter.references import is_fhir_id
from fhir_encounter.runtime import COMMON_HEADERS, Runtime, Store, fhir_response
from fhir_encounter.search.cursor import decode_cursor, encode_cursor, search_fingerprint
from fhir_encounter.search.paging import fit_page, select_page
from fhir_encounter.search.parameters import ParseContext
from fhir_encounter.search.planning import plan
from fhir_encounter.search.query import MAX_NAME_LENGTH, MAX_NAMED, parse_search
from fhir_encounter.smart import SmartDiscovery, rest_security, smart_configuration
from fhir_encounter.store.dynamodb import ReadCost
from fhir_encounter.store.repository import UNKNOWN_TEXT

# How long a first page may spend counting `total` (the functions time out at 15 s): past it the
# page is answered without a total rather than not at all.
COUNT_BUDGET_SECONDS = 4.0
# _count=0 asks only for the total: it may count until this long before the function times out.
RESPONSE_MARGIN_SECONDS = 2.0
# Lambda's response payload is at most 6 MB, the body JSON-escaped inside it: a page stops adding
# entries at this many escaped bytes and links to the rest.
MAX_ENTRY_BYTES = 5_000_000


def read_encounter(
    event: APIGatewayProxyEvent, encounter_id: str, runtime: Runtime, store: Store
) -> Response[str]:
    access = runtime.access(event, Action.READ)
    _refuse_query_tokens(event)
    pretty = wants_pretty(event.multi_value_query_string_parameters, event.headers.get("Accept"))
    if not is_fhir_id(encounter_id):
        raise InvalidRequestError(
            "Invalid Encounter id: a FHIR id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
        )
    stored = store.repository.get(encounter_id)
    if access.compartment and stored.subject_ref != access.compartment:
        raise NotFoundError(UNKNOWN_TEXT.format(id=encounter_id))  # as if missing: existence never leaks
    etag = {"ETag": f'W/"{stored.version_id}"'}
    if_none_match = event.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match, stored.version_id):
        runtime.audit(event, 304, access, [encounter_id])
        # RFC 9110 15.4.5: with an ETag, a 304 carries no other representation metadata.
        return fhir_response(304, None, etag)
    headers = {**etag, "Last-Modified": _http_date(stored.last_updated)}
    runtime.count("EncounterReads", 1)
    runtime.audit(event, 200, access, [encounter_id])
    return fhir_response(200, pretty_json(stored.resource_json) if pretty else stored.resource_json, headers)


def search_encounters(
    event: APIGatewayProxyEvent, runtime: Runtime, store: Store, remaining_seconds: float
) -> Response[str]:
    """``remaining_seconds``: the invocation's time left (Lambda context), which bounds counting."""
    started = time.monotonic()
    access = runtime.access(event, Action.SEARCH)
    _refuse_query_tokens(event)
    params = event.multi_value_query_string_parameters
    pretty = wants_pretty(params, event.headers.get("Accept"))
    context = ParseContext(frozenset({base_url(event, runtime), request_base_url(event)}))
    query, ignored = parse_search(params, strict=_prefers_strict(event), context=context)
    if access.compartment:
        query = query.within_compartment(access.compartment)
    fingerprint = search_fingerprint(query.bound_params, query.count, query.total_mode)
    cursor = (
        decode_cursor(query.cursor, fingerprint, query.offset, store.cursor_secret) if query.cursor else None
    )
    now = time.time_ns() // 1000
    search_plan = plan(query, cursor, now)
    cost = ReadCost()
    rows = store.repository.rows(search_plan, cost)
    budget = COUNT_BUDGET_SECONDS if query.count else remaining_seconds - RESPONSE_MARGIN_SECONDS
    deadline = started + budget
    page = select_page(
        (row for row in rows if query.matches(row, now)),
        query,
        cursor,
        out_of_time=lambda: time.monotonic() > deadline,
    )
    if query.count == 0 and page.total is None and query.counts_total:
        raise TooCostlyError("Counting the matches took too long; retry, or narrow the search")
    resources = store.repository.resources(page.rows, cost)
    page = fit_page(page, query, {i: entry_size(text) for i, text in resources}, MAX_ENTRY_BYTES)
    kept = {row.id for row in page.rows}
    resources = [(i, text) for i, text in resources if i in kept]
    next_offset = page.next_cursor.offset if page.next_cursor else None  # the link and its cursor agree
    body = searchset(
        base_url=base_url(event, runtime),
        query=query,
        resources=resources,
        total=page.total,
        next_offset=next_offset,
        next_cursor=encode_cursor(page.next_cursor, fingerprint, store.cursor_secret)
        if page.next_cursor
        else None,
        last_updated=instant_now(),
    )
    runtime.logger.info(
        "search answered",
        extra={
            "parameters": [name for name, _ in query.criteria_params],
            "ignored_parameters": [name[:MAX_NAME_LENGTH] for name in ignored[:MAX_NAMED]],
            "ignored_count": len(ignored),
            "count": query.count,
            "offset": query.offset,
            "index": search_plan.index,
            "queries": cost.queries,
            "rows_read": cost.rows,
            "read_units": round(cost.read_units, 2),
            "total": page.total,
            "returned": len(resources),
            "resumed": cursor is not None,
            "count_stopped": page.count_stopped,
            "ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    runtime.count("SearchReadUnits", cost.read_units)
    runtime.audit(event, 200, access, [encounter_id for encounter_id, _ in resources])
    return fhir_response(200, pretty_json(body) if pretty else body)


def capability_statement(
    event: APIGatewayProxyEvent, runtime: Runtime, smart: SmartDiscovery
) -> Response[str]:
    pretty = wants_pretty(event.multi_value_query_string_parameters, event.headers.get("Accept"))
    security = json.dumps(rest_security(smart.endpoints())) if smart.enabled else None
    body = capability_statement_json(base_url(event, runtime), security)
    runtime.audit(event, 200, PUBLIC, [])
    return fhir_response(200, pretty_json(body) if pretty else body)


def smart_configuration_document(
    event: APIGatewayProxyEvent, runtime: Runtime, smart: SmartDiscovery
) -> Response[str]:
    """GET /.well-known/smart-configuration: public, plain JSON (SMART App Launch 2.0)."""
    body = json.dumps(smart_configuration(smart.endpoints()), separators=(",", ":"))
    runtime.audit(event, 200, PUBLIC, [])
    return Response(200, "application/json", body, {**COMMON_HEADERS, "Cache-Control": "max-age=300"})


def base_url(event: APIGatewayProxyEvent, runtime: Runtime) -> str:
    """The FHIR base: FHIR_BASE_URL, else scheme and Host plus what precedes the resource path
    (the stage on an execute-api domain, a base path mapping on a custom domain, nothing locally)."""
    return runtime.settings.fhir_base_url or request_base_url(event)


def request_base_url(event: APIGatewayProxyEvent) -> str:
    """Scheme and Host of the request, plus what precedes the resource path."""
    headers = event.headers  # Powertools headers are case-insensitive
    scheme = headers.get("X-Forwarded-Proto") or "https"
    host = headers.get("Host") or event.request_context.domain_name or "localhost"
    full_path = event.request_context.path or event.path
    prefix = full_path[: -len(event.path)] if event.path and full_path.endswith(event.path) else ""
    return f"{scheme.split(',')[0].strip()}://{host}{prefix.rstrip('/')}"


def _refuse_query_tokens(event: APIGatewayProxyEvent) -> None:
    """A bearer token in a URL ends up in logs and histories: never accepted (RFC 6750 2.3), even
    when a cached authorizer decision let the request through."""
    if "access_token" in (event.multi_value_query_string_parameters or {}):
        raise InvalidRequestError("Send the access token in the Authorization header, never in the URL")


def _etag_matches(if_none_match: str, version_id: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored; * matches any."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or f'"{version_id}"' in tags


def _prefers_strict(event: APIGatewayProxyEvent) -> bool:
    """RFC 7240: comma-separated preferences, each possibly followed by ';'-parameters."""
    prefer = event.headers.get("Prefer") or ""
    return any(part.split(";")[0].strip().lower() == "handling=strict" for part in prefer.split(","))


def _http_date(instant: str) -> str:
    try:
        return format_datetime(datetime.fromisoformat(instant).astimezone(UTC), usegmt=True)
    except ValueError:
        return format_datetime(datetime.now(UTC), usegmt=True)
