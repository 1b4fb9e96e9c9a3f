"""`fhir-encounter serve` (`make run`, no Docker) and `sam local start-api` (real Lambda containers)
answer the same requests identically, on the same DynamoDB Local table: the same status, the
headers that matter and the same body. Only what is inherently per server is normalised: each
server's own base URL (they listen on different ports) and the cursor signature (each has its own
key), whose next pages are then compared too."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support import PARITY_CORS_ORIGIN, Api, Reply, link

# Headers a client acts on. Server, Date, Connection and Content-Length are the HTTP servers' own.
HEADERS = (
    "Content-Type",
    "Cache-Control",
    "X-Content-Type-Options",
    "ETag",
    "Last-Modified",
    "Retry-After",
    "WWW-Authenticate",
    "Allow",
    "Location",
    "Content-Location",
    "Vary",
    "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
)
STRICT = {"Prefer": "handling=strict"}
REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("/metadata", {}),
    ("/metadata?_format=xml", {}),
    ("/.well-known/smart-configuration", {}),
    ("/Encounter?patient=patient-0001", {}),
    ("/Encounter?patient=patient-0001&date=ge2020-01-01", {}),
    ("/Encounter?patient=Patient/patient-0001&_count=5", {}),
    ("/Encounter?patient=patient-0001&patient=patient-0002", {}),
    ("/Encounter?patient=https://ehr.example.net/fhir/Patient/patient-0002", {}),
    ("/Encounter?patient=", {}),
    ("/Encounter?subject=Group/group-01", {}),
    ("/Encounter?appointment=Appointment/appointment-0001", {}),
    ("/Encounter?date=ge2024-01-01&date=lt2024-02-01", {}),
    ("/Encounter?date=ap2022-06-15&_count=4", {}),
    ("/Encounter?status=in-progress,planned", {}),
    ("/Encounter?status=http://hl7.org/fhir/encounter-status|finished&_count=3", {}),
    ("/Encounter?_id=enc-00001,enc-00002,enc-99999", {}),
    ("/Encounter", {}),
    ("/Encounter?_count=0", {}),
    ("/Encounter?_total=none&_count=7", {}),
    ("/Encounter?_offset=495&_count=10", {}),
    ("/Encounter?_count=500&_total=none", {}),
    ("/Encounter?patient=patient-0001&_pretty=true", {}),
    ("/Encounter?patient=patient-0001&_format=json", {}),
    ("/Encounter?_sort=date&patient=patient-0001", {}),
    ("/Encounter?_sort=date&patient=patient-0001", STRICT),
    ("/Encounter?_offset=10001", {}),
    ("/Encounter?_count=abc", {}),
    ("/Encounter?_count=-1", {}),
    ("/Encounter?date=yesterday", {}),
    ("/Encounter?date:missing=true", {}),
    ("/Encounter?_cursor=forged", {}),
    ("/Encounter?access_token=abc", {}),
    ("/Encounter?_format=xml", {}),
    ("/Encounter?patient=patient-0001", {"Accept": "application/fhir+xml"}),
    ("/Encounter?patient=patient-0001", {"Accept": "*/*"}),
    ("/Encounter/enc-00001", {}),
    ("/Encounter/enc%2D00002", {}),
    ("/Encounter/enc-99999", {}),
    ("/Encounter/not_an_id", {}),
    ("/Encounter/enc-00001?_format=xml", {}),
    ("/Encounter/enc-00001", {"If-None-Match": 'W/"1"'}),
    ("/Encounter/enc-00001", {"If-None-Match": 'W/"2"'}),
    ("/Encounter?patient=patient-0001", {"Origin": PARITY_CORS_ORIGIN}),  # CORS: the origin both allow
    ("/Encounter/enc-00001", {"Origin": PARITY_CORS_ORIGIN}),
    ("/Encounter/enc-99999", {"Origin": PARITY_CORS_ORIGIN}),
    ("/metadata", {"Origin": "https://other.example.org"}),
]
PREFLIGHTS: list[tuple[str, dict[str, str]]] = [
    ("/Encounter", {"Origin": PARITY_CORS_ORIGIN, "Access-Control-Request-Method": "GET"}),
    ("/Encounter/enc-00001", {"Origin": PARITY_CORS_ORIGIN, "Access-Control-Request-Method": "GET"}),
    ("/Encounter", {"Origin": "https://other.example.org", "Access-Control-Request-Method": "GET"}),
    ("/Encounter", {"Origin": PARITY_CORS_ORIGIN, "Access-Control-Request-Method": "DELETE"}),
]


def normalised(reply: Reply, base_url: str) -> tuple[int, dict[str, str], Any]:
    """Status, the headers that matter, and the body with this server's base URL and cursor
    signatures replaced by placeholders and meta.lastUpdated left out."""
    headers = {name: reply.headers[name] for name in HEADERS if reply.headers[name] is not None}
    text = reply.text.replace(base_url, "{base}")
    text = re.sub(r"_cursor=[A-Za-z0-9_\-.%]+", "_cursor={cursor}", text)
    body = _without_last_updated(_parsed(text))
    return reply.status, headers, body


def _parsed(text: str) -> Any:
    return json.loads(text) if text else None


def _without_last_updated(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                {k: v for k, v in item.items() if k != "lastUpdated"}
                if key == "meta" and isinstance(item, dict)
                else _without_last_updated(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_last_updated(item) for item in value]
    return value


@pytest.mark.parametrize(("path", "headers"), REQUESTS, ids=[f"{p} {h}" if h else p for p, h in REQUESTS])
def test_serve_and_start_api_answer_alike(api: Api, served: Api, path: str, headers: dict[str, str]) -> None:
    from_sam = api.request(path, headers)
    from_serve = served.request(path, headers)
    assert normalised(from_serve, served.base_url) == normalised(from_sam, api.base_url)
    next_sam, next_serve = _next(from_sam), _next(from_serve)
    assert (next_sam is None) == (next_serve is None)
    if next_sam is not None and next_serve is not None:
        assert normalised(served.request(next_serve, headers), served.base_url) == normalised(
            api.request(next_sam, headers), api.base_url
        )


def _next(reply: Reply) -> str | None:
    if reply.status != 200 or not reply.text:
        return None
    body = reply.body
    return link(body, "next") if body.get("resourceType") == "Bundle" else None


@pytest.mark.parametrize(("path", "headers"), PREFLIGHTS, ids=[f"OPTIONS {p} {h}" for p, h in PREFLIGHTS])
def test_serve_and_start_api_answer_preflights_alike(
    api: Api, served: Api, path: str, headers: dict[str, str]
) -> None:
    """Both route OPTIONS to the capability function (sam local runs no MOCK integration, and
    without a SAM Cors setting in the template it leaves OPTIONS to the routes)."""
    from_sam = api.request(path, headers, method="OPTIONS")
    from_serve = served.request(path, headers, method="OPTIONS")
    assert from_sam.status == 204
    sam_status, sam_headers, sam_body = normalised(from_sam, api.base_url)
    # start-api (as API Gateway does) gives an answer without Content-Type application/json; a 204
    # has no body for it to describe.
    assert sam_headers.pop("Content-Type", "application/json") == "application/json"
    assert normalised(from_serve, served.base_url) == (sam_status, sam_headers, sam_body)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
POSTS: list[tuple[str, str, dict[str, str]]] = [
    ("/Encounter/_search", "patient=patient-0001&date=ge2020-01-01", FORM),
    ("/Encounter/_search?_count=5", "patient=Patient%2Fpatient-0001", FORM),
    ("/Encounter/_search", "date=yesterday", FORM),
    ("/Encounter/_search", "patient=patient-0001", {"Content-Type": "application/json"}),
    ("/Encounter/_search", "_include=Encounter:subject", {**FORM, **STRICT}),
]


@pytest.mark.parametrize(("path", "body", "headers"), POSTS, ids=[f"POST {p} {b}" for p, b, _ in POSTS])
def test_serve_and_start_api_answer_a_search_by_post_alike(
    api: Api, served: Api, path: str, body: str, headers: dict[str, str]
) -> None:
    from_sam = api.request(path, headers, method="POST", body=body.encode())
    from_serve = served.request(path, headers, method="POST", body=body.encode())
    assert normalised(from_serve, served.base_url) == normalised(from_sam, api.base_url)
