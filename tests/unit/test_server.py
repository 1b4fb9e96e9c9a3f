"""The local API server's mapping: HTTP request -> REST API proxy event, handler result -> HTTP
response, with stub handlers (no DynamoDB) on a 127.0.0.1 port; and how it loads the real
functions: each app.py imported under the function's environment from template.yaml."""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter.errors import NotFoundError
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
from fhir_encounter_tools.devserver.server import (
    LocalApiServer,
    LocalRoute,
    MethodNotAllowedError,
    function_environment,
    load_handler,
    local_routes,
    match_route,
    route_pattern,
)
from fhir_encounter_tools.template import Route, api_routes, load_template
from tests.support import ROOT

READ = Route("GET", "/Encounter/{id}", "ReadEncounterFunction", Path("functions/read"), "app.lambda_handler")
SEARCH = Route(
    "GET", "/Encounter", "SearchEncountersFunction", Path("functions/search"), "app.lambda_handler"
)
ECHO = Route("POST", "/Echo", "EchoFunction", Path("functions/echo"), "app.lambda_handler")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Stub:
    """A handler that records its events and answers what the test set."""

    result: Any = field(default_factory=lambda: {"statusCode": 200, "body": "{}"})
    events: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def routes(handler: Stub) -> list[LocalRoute]:
    return [LocalRoute(route, route_pattern(route.path), handler) for route in (SEARCH, READ, ECHO)]


@pytest.mark.parametrize(
    ("method", "path", "route", "parameters"),
    [
        ("GET", "/Encounter", SEARCH, {}),
        ("GET", "/Encounter/abc", READ, {"id": "abc"}),
        ("GET", "/Encounter/a%20b", READ, {"id": "a b"}),  # path parameters are decoded
        ("GET", "/Encounter/a%2Fb", READ, {"id": "a/b"}),  # an encoded slash stays in one segment
    ],
)
def test_a_route_matches_method_and_path(
    method: str, path: str, route: Route, parameters: dict[str, str]
) -> None:
    found, path_parameters = match_route(routes(Stub()), method, path)
    assert (found.route, path_parameters) == (route, parameters)


@pytest.mark.parametrize(
    "path", ["/", "/Encounter/", "/Encounter/a/b", "/encounter", "/Patient", "/Encounterx"]
)
def test_no_route_is_not_found(path: str) -> None:
    with pytest.raises(NotFoundError):
        match_route(routes(Stub()), "GET", path)


def test_another_method_on_a_known_path_is_not_allowed_with_allow() -> None:
    with pytest.raises(MethodNotAllowedError) as raised:
        match_route(routes(Stub()), "POST", "/Encounter/1")
    assert raised.value.status == 405
    assert raised.value.headers() == {"Allow": "GET"}


@pytest.mark.parametrize(
    ("template_path", "path", "expected"),
    [
        ("/Encounter/{id}", "/Encounter/1", {"id": "1"}),
        ("/files/{proxy+}", "/files/a/b/c", {"proxy": "a/b/c"}),
        ("/a/{x}/b/{y}", "/a/1/b/2", {"x": "1", "y": "2"}),
    ],
)
def test_route_pattern_parameters(template_path: str, path: str, expected: dict[str, str]) -> None:
    found = route_pattern(template_path).fullmatch(path)
    assert found is not None
    assert found.groupdict() == expected


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def base_url(stub: Stub) -> Iterator[str]:
    server = LocalApiServer(("127.0.0.1", 0), "v1")
    server.routes = routes(stub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET", data: bytes | None = None
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def test_the_event_is_a_rest_api_proxy_event(base_url: str, stub: Stub) -> None:
    fetch(
        f"{base_url}/Encounter/a%20b?date=ge2021&date=lt2022&x=&p=Patient%2F1", {"Prefer": "handling=strict"}
    )
    event = stub.events[0]
    assert (event["httpMethod"], event["path"], event["resource"]) == (
        "GET",
        "/Encounter/a%20b",
        "/Encounter/{id}",
    )
    assert event["pathParameters"] == {"id": "a b"}
    assert event["multiValueQueryStringParameters"] == {
        "date": ["ge2021", "lt2022"],
        "x": [""],
        "p": ["Patient/1"],
    }
    assert event["queryStringParameters"] == {"date": "lt2022", "x": "", "p": "Patient/1"}
    assert event["headers"]["Prefer"] == "handling=strict"
    assert event["multiValueHeaders"]["Prefer"] == ["handling=strict"]
    context = event["requestContext"]
    assert (context["stage"], context["path"], context["resourcePath"]) == (
        "v1",
        "/Encounter/a%20b",
        "/Encounter/{id}",
    )


def test_each_request_gets_a_fresh_context(base_url: str, stub: Stub) -> None:
    fetch(f"{base_url}/Encounter")
    fetch(f"{base_url}/Encounter")
    first, second = stub.contexts
    assert first.aws_request_id != second.aws_request_id
    assert first.function_name == "SearchEncountersFunction"


def test_headers_and_multi_value_headers_are_merged(base_url: str, stub: Stub) -> None:
    stub.result = {
        "statusCode": 201,
        "headers": {"X-One": "1", "X-Both": "single"},
        "multiValueHeaders": {"X-Both": ["m1", "m2"], "Set-Cookie": ["a=1", "b=2"]},
        "body": "text",
    }
    status, headers, body = fetch(f"{base_url}/Encounter")
    assert (status, body) == (201, b"text")
    assert headers["X-One"] == "1"
    assert headers.get_all("X-Both") == ["m1", "m2"]  # multiValueHeaders win, as in API Gateway
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert headers["Content-Length"] == "4"


def test_a_base64_body_is_decoded(base_url: str, stub: Stub) -> None:
    payload = bytes(range(256))
    stub.result = {"statusCode": 200, "body": base64.b64encode(payload).decode(), "isBase64Encoded": True}
    assert fetch(f"{base_url}/Encounter")[2] == payload


def test_not_modified_has_no_body(base_url: str, stub: Stub) -> None:
    stub.result = {"statusCode": 304, "multiValueHeaders": {"ETag": ['W/"1"']}, "body": ""}
    status, headers, body = fetch(f"{base_url}/Encounter/1")
    assert (status, headers["ETag"], body) == (304, 'W/"1"', b"")


@pytest.mark.parametrize("result", [RuntimeError("boom"), {"body": "no status"}, None])
def test_a_failing_function_is_a_502_operation_outcome(base_url: str, stub: Stub, result: Any) -> None:
    stub.result = result
    status, headers, body = fetch(f"{base_url}/Encounter")
    assert status == 502
    assert headers["Content-Type"].startswith("application/fhir+json")
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "boom" not in body.decode()


@pytest.mark.parametrize(
    ("sent", "body", "encoded"),
    [(b"text", "text", False), (b"\xff\x00", "/wA=", True)],
    ids=["text", "binary"],
)
def test_a_request_body_is_passed_on(
    base_url: str, stub: Stub, sent: bytes, body: str, encoded: bool
) -> None:
    assert fetch(f"{base_url}/Echo", method="POST", data=sent)[0] == 200
    assert (stub.events[0]["body"], stub.events[0]["isBase64Encoded"]) == (body, encoded)


# ---- the real functions, as serve loads them ------------------------------------------------------

TEMPLATE = load_template(ROOT / "template.yaml")
ROUTES = api_routes(TEMPLATE, ROOT)
LOCAL = {"endpoint_url": "http://127.0.0.1:8000", "table_name": "local-table"}


def capability_route() -> Route:
    return next(route for route in ROUTES if route.path == "/metadata")


def metadata_event() -> dict[str, Any]:
    """GET /metadata as serve passes it: served at the root, Host h:1."""
    return rest_api_event(
        method="GET", path="/metadata", resource="/metadata", headers={"Host": "h:1"}, stage_in_path=False
    )


def metadata_url(environment: dict[str, str]) -> str:
    """The CapabilityStatement's implementation.url from the capability function loaded under
    ``environment`` (FHIR_BASE_URL, else the request's Host)."""
    handler = load_handler(capability_route(), environment)
    response = handler(metadata_event(), LocalContext())
    assert response["statusCode"] == 200
    url: str = json.loads(response["body"])["implementation"]["url"]
    return url


def test_the_function_environment_is_the_templates_pointed_at_the_local_table() -> None:
    environment = function_environment(TEMPLATE, **LOCAL, base_url="http://127.0.0.1:3000", log_level="INFO")
    assert len(environment.pop("CURSOR_SECRET")) >= 32
    assert environment == {
        "POWERTOOLS_SERVICE_NAME": "fhir-encounter",
        "POWERTOOLS_METRICS_NAMESPACE": "FhirEncounterApi",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "ENCOUNTER_TABLE": "local-table",
        "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8000",
        "FHIR_BASE_URL": "http://127.0.0.1:3000",
    }


def test_without_a_base_url_the_function_environment_has_none_and_logs_warnings() -> None:
    environment = function_environment(TEMPLATE, **LOCAL, base_url=None)
    assert "FHIR_BASE_URL" not in environment
    assert environment["POWERTOOLS_LOG_LEVEL"] == "WARNING"


def test_a_function_is_initialised_under_its_environment_and_the_process_environment_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIR_BASE_URL", "http://process.example")
    before = dict(os.environ)
    environment = function_environment(TEMPLATE, **LOCAL, base_url="http://127.0.0.1:4567")
    assert metadata_url(environment) == "http://127.0.0.1:4567"
    assert dict(os.environ) == before


def test_a_setting_the_function_environment_lacks_is_not_inherited_from_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIR_BASE_URL", "http://process.example")
    assert metadata_url(function_environment(TEMPLATE, **LOCAL, base_url=None)) == "http://h:1"
    assert os.environ["FHIR_BASE_URL"] == "http://process.example"


def test_each_function_keeps_the_environment_it_was_loaded_under() -> None:
    first = load_handler(capability_route(), function_environment(TEMPLATE, **LOCAL, base_url="http://a:1"))
    assert metadata_url(function_environment(TEMPLATE, **LOCAL, base_url="http://b:2")) == "http://b:2"
    assert (
        json.loads(first(metadata_event(), LocalContext())["body"])["implementation"]["url"] == "http://a:1"
    )


def test_every_template_route_is_served_by_its_function_literal_paths_first() -> None:
    served = local_routes(ROUTES, function_environment(TEMPLATE, **LOCAL, base_url=None))
    assert sorted((r.route.method, r.route.path) for r in served) == [
        ("GET", "/Encounter"),
        ("GET", "/Encounter/{id}"),
        ("GET", "/metadata"),
    ]
    assert [r.route.path.count("{") for r in served] == [0, 0, 1]
    found, parameters = match_route(served, "GET", "/Encounter/e-1")
    assert (found.route.function, parameters) == ("ReadEncounterFunction", {"id": "e-1"})
    assert len({id(r.handler) for r in served}) == 3
