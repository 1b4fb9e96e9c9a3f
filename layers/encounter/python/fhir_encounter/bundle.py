"""The searchset Bundle, a pure function of (page, query, base URL, cursor). Links are rebuilt from
the parsed query in a fixed order, so one request always yields the same URLs; stored resources
are spliced in as JSON text, without a parse."""

from __future__ import annotations

import json
from urllib.parse import quote

from fhir_encounter.search.query import SearchQuery

_SAFE = "/:,"


def search_url(base_url: str, params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{quote(name, safe='_:')}={quote(value, safe=_SAFE)}" for name, value in params)
    return f"{base_url}/Encounter?{query}"


ENTRY_OVERHEAD = 256  # fullUrl, search mode and separators around one resource


def entry_size(resource_json: str) -> int:
    """Bytes one entry takes once the body is JSON-escaped into Lambda's response (worst case:
    non-ASCII text as \\u escapes)."""
    return len(json.dumps(resource_json)) + ENTRY_OVERHEAD


def searchset(
    *,
    base_url: str,
    query: SearchQuery,
    resources: list[tuple[str, str]],
    total: int | None,
    next_offset: int | None,
    next_cursor: str | None,
    last_updated: str,
) -> str:
    """The Bundle as JSON text."""
    criteria = [*query.criteria_params, *query.sort_params]

    def link(relation: str, offset: int, cursor: str | None = None) -> dict[str, str]:
        params = [*criteria, ("_count", str(query.count)), ("_offset", str(offset))]
        if query.total_mode != "accurate":
            params.append(("_total", query.total_mode))
        if query.subset is not None:
            params.extend(query.subset.params)  # every page has the shape the first one had
        if cursor:
            params.append(("_cursor", cursor))
        return {"relation": relation, "url": search_url(base_url, params)}

    links = [link("self", query.offset, query.cursor)]
    if query.count > 0:
        links.append(link("first", 0))
        last = ((total - 1) // query.count) * query.count if total else 0
        if query.offset > 0:
            past_the_end = total is not None and query.offset >= total
            links.append(link("previous", last if past_the_end else max(0, query.offset - query.count)))
        if next_offset is not None:
            links.append(link("next", next_offset, next_cursor))
        if total is not None:
            links.append(link("last", last))
    head: dict[str, object] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": last_updated},
        "type": "searchset",
    }
    if total is not None:
        head["total"] = total
    head["link"] = links
    entries = ",".join(
        f'{{"fullUrl":{json.dumps(f"{base_url}/Encounter/{resource_id}")},"resource":{text},'
        '"search":{"mode":"match"}}'
        for resource_id, text in resources
    )
    head_text = json.dumps(head, separators=(",", ":"))
    if not entries:
        return head_text
    return f'{head_text[:-1]},"entry":[{entries}]}}'
