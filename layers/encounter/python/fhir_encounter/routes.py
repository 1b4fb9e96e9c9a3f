"""The route bodies the handlers call: request in, FHIR response out. A route keeps HTTP, access,
logging and audit: it parses the request, hands the search to searching.run_search and turns its
result into the Bundle; no boto3 and no hand-built responses here."""

from __future__ import annotations

import json
import time

from fhir_encounter.access import PUBLIC, Action
from fhir_encounter.bundle import searchset
from fhir_encounter.capability import capability_statement_json
from fhir_encounter.dates import instant_now
from fhir_encounter.errors import MAX_NAME_LENGTH, MAX_NAMED
from fhir_encounter.form_body import with_form_parameters
from fhir_encounter.formats import pretty_json, wants_pretty
from fhir_encounter.gateway import COMMON_HEADERS, Request, Response
from fhir_encounter.read import refuse_query_tokens
from fhir_encounter.runtime import Runtime, Store, base_url, fhir_response, request_base_url
from fhir_encounter.search.parameters import ParseContext
from fhir_encounter.search.query import parse_search
from fhir_encounter.searching import run_search
from fhir_encounter.smart import SmartDiscovery, rest_security, smart_configuration


def search_encounters(request: Request, runtime: Runtime, store: Store, remaining_seconds: float) -> Response:
    """``remaining_seconds``: the invocation's time left (Lambda context), which bounds counting."""
    started = time.monotonic()
    refuse_query_tokens(request)
    access = runtime.access(request, Action.SEARCH)
    params = request.query
    pretty = wants_pretty(params, request.headers.get("Accept"))
    context = ParseContext(frozenset({base_url(request, runtime), request_base_url(request)}))
    query, ignored = parse_search(params, strict=_prefers_strict(request), context=context)
    if access.compartment:
        query = query.within_compartment(access.compartment)
    found = run_search(query, store, started=started, remaining_seconds=remaining_seconds)
    body = searchset(
        base_url=base_url(request, runtime),
        query=query,
        resources=found.resources,
        total=found.total,
        next_offset=found.next_offset,
        next_cursor=found.next_cursor,
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
            "index": found.index,
            **found.cost.figures(),
            "total": found.total,
            "returned": len(found.resources),
            "resumed": found.resumed,
            "count_stopped": found.count_stopped,
            "ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    runtime.count("SearchReadUnits", found.cost.read_units)
    runtime.audit(request, 200, access, [encounter_id for encounter_id, _ in found.resources])
    return fhir_response(200, pretty_json(body) if pretty else body)


def search_encounters_by_post(
    request: Request, runtime: Runtime, store: Store, remaining_seconds: float
) -> Response:
    """POST /Encounter/_search (FHIR R4 http.html#search): the form body's parameters join the
    URL's, and the answer is the one GET /Encounter gives for them all (its links GET URLs)."""
    refuse_query_tokens(request)  # the URL's first, with its own text
    return search_encounters(with_form_parameters(request), runtime, store, remaining_seconds)


def capability_statement(request: Request, runtime: Runtime, smart: SmartDiscovery) -> Response:
    pretty = wants_pretty(request.query, request.headers.get("Accept"))
    cors = runtime.settings.cors.enabled
    security: str | None = None
    if smart.enabled:
        security = json.dumps(rest_security(smart.endpoints(), cors=cors))
    elif cors:
        security = json.dumps({"cors": True})
    body = capability_statement_json(base_url(request, runtime), security)
    runtime.audit(request, 200, PUBLIC, [])
    return fhir_response(200, pretty_json(body) if pretty else body)


def smart_configuration_document(request: Request, runtime: Runtime, smart: SmartDiscovery) -> Response:
    """GET /.well-known/smart-configuration: public, plain JSON (SMART App Launch 2.0)."""
    body = json.dumps(smart_configuration(smart.endpoints(), runtime.settings), separators=(",", ":"))
    runtime.audit(request, 200, PUBLIC, [])
    return Response(
        200, body, {"Content-Type": "application/json", **COMMON_HEADERS, "Cache-Control": "max-age=300"}
    )


def _prefers_strict(request: Request) -> bool:
    """RFC 7240: comma-separated preferences, each possibly followed by ';'-parameters."""
    prefer = request.headers.get("Prefer") or ""
    return any(part.split(";")[0].strip().lower() == "handling=strict" for part in prefer.split(","))
