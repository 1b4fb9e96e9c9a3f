"""The route bodies the handlers call: request in, FHIR response out. They parse, plan, read
through the repository, page and build the Bundle; no boto3 and no hand-built responses here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

from fhir_encounter.access import PUBLIC, Action
from fhir_encounter.bundle import entry_size, searchset
from fhir_encounter.capability import capability_statement_json
from fhir_encounter.dates import instant_now
from fhir_encounter.errors import MAX_NAME_LENGTH, MAX_NAMED, TooCostlyError
from fhir_encounter.formats import pretty_json, wants_pretty
from fhir_encounter.gateway import COMMON_HEADERS, Request, Response, prefers_strict
from fhir_encounter.read import refuse_query_tokens
from fhir_encounter.runtime import Runtime, Store, base_url, fhir_response, request_base_url
from fhir_encounter.search.cursor import decode_cursor, encode_cursor, search_fingerprint
from fhir_encounter.search.paging import fit_page, select_page
from fhir_encounter.search.parameters import ParseContext
from fhir_encounter.search.planning import matching, plan_search
from fhir_encounter.search.query import parse_search
from fhir_encounter.smart import SmartDiscovery, rest_security, smart_configuration
from fhir_encounter.store.dynamodb import ReadCost
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.subsetting import subset_all

# How long a first page may spend counting `total` (the functions time out at 15 s): past it the
# page is answered without a total rather than not at all.
COUNT_BUDGET_SECONDS = 4.0
# _count=0 asks only for the total: it may count until this long before the function times out.
RESPONSE_MARGIN_SECONDS = 2.0
# Lambda's response payload is at most 6 MB, the body JSON-escaped inside it: a page stops adding
# entries at this many escaped bytes and links to the rest.
MAX_ENTRY_BYTES = 5_000_000


def search_encounters(request: Request, runtime: Runtime, store: Store, remaining_seconds: float) -> Response:
    """``remaining_seconds``: the invocation's time left (Lambda context), which bounds counting."""
    started = time.monotonic()
    refuse_query_tokens(request)
    access = runtime.access(request, Action.SEARCH)
    params = request.query
    pretty = wants_pretty(params, request.headers.get("Accept"))
    context = ParseContext(frozenset({base_url(request, runtime), request_base_url(request)}))
    query, ignored = parse_search(params, strict=prefers_strict(request), context=context)
    if access.compartment:
        query = query.within_compartment(access.compartment)
    fingerprint = search_fingerprint(query.bound_params, query.count, query.total_mode)
    cursor = (
        decode_cursor(query.cursor, fingerprint, query.offset, store.cursor_secret) if query.cursor else None
    )
    now = time.time_ns() // 1000
    cost = ReadCost()
    indexed = store.repository.indexed_paths(cost) if any(c.keys for c in query.all_criteria) else None
    planned = plan_search(query, cursor, now, indexed)
    search_plan = planned.plan
    counted = None
    if search_plan.partitions_decide and cursor is None and query.counts_total:
        # Every row of the partitions matches: DynamoDB counts them, and only the page is read.
        counted = store.repository.count(search_plan, cost)
        search_plan = replace(search_plan, page_hint=query.offset + query.count + 1)
    rows = store.repository.rows(search_plan, cost)
    budget = COUNT_BUDGET_SECONDS if query.count else remaining_seconds - RESPONSE_MARGIN_SECONDS
    deadline = started + budget
    early: list[tuple[list[str], Callable[[], list[tuple[str, str]]]]] = []  # a full page's bodies

    def read_bodies_early(page_rows: list[IndexRow]) -> None:
        early.append(([row.id for row in page_rows], store.repository.start_resources(page_rows, cost)))

    page = select_page(
        matching(rows, planned, now, store.repository.with_bodies, cost),
        query,
        cursor,
        out_of_time=lambda: time.monotonic() > deadline,
        known_total=counted,
        on_page=read_bodies_early,
    )
    if query.count == 0 and page.total is None and query.counts_total:
        raise TooCostlyError("Counting the matches took too long; retry, or narrow the search")
    if early and early[0][0] == [row.id for row in page.rows]:
        resources = early[0][1]()
    else:
        resources = store.repository.resources(page.rows, cost)
    resources = subset_all(resources, query.subset)  # _summary, _elements: entries' sizes as sent
    page = fit_page(page, query, {i: entry_size(text) for i, text in resources}, MAX_ENTRY_BYTES)
    kept = {row.id for row in page.rows}
    resources = [(i, text) for i, text in resources if i in kept]
    next_offset = page.next_cursor.offset if page.next_cursor else None  # the link and its cursor agree
    body = searchset(
        base_url=base_url(request, runtime),
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
            **cost.figures(),
            "total": page.total,
            "returned": len(resources),
            "resumed": cursor is not None,
            "count_stopped": page.count_stopped,
            "ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    runtime.count("SearchReadUnits", cost.read_units)
    runtime.audit(request, 200, access, [encounter_id for encounter_id, _ in resources])
    return fhir_response(200, pretty_json(body) if pretty else body)


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
