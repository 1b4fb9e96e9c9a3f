"""The local API server's mapping: HTTP request -> REST API proxy event, handler result -> HTTP
response, with stub handlers (no DynamoDB) on a 127.0.0.1 port; what http.server itself rejects
(over raw sockets: too long, too many headers, unknown methods, requests that never finish); and
how it loads the real functions: each app.py imported under the function's environment from
template.yaml."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter.cors import CorsPolicy
from fhir_encounter.errors import NotFoundError
from fhir_encounter_tools.devserver.dynamodb_local import (
    LAUNCHER,
    DynamoDBLocalError,
    dynamodb_local,
    java_command,
)
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
from fhir_encounter_tools.devserver.server import (
    LocalApiServer,
    LocalRoute,
    MethodNotAllowedError,
    PathTemplate,
    function_environment,
    load_handler,
    local_routes,
    match_route,
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
    return [LocalRoute(route, PathTemplate.parse(route.path), handler) for route in (SEARCH, READ, ECHO)]


@pytest.mark.parametrize(
    ("method", "path", "route", "parameters"),
    [
        ("GET", "/Encounter", SEARCH, {}),
        ("GET", "/Encounter/abc", READ, {"id": "abc"}),
        ("GET", "/Encounter/a%20b", READ, {"id": "a b"}),  # path parameters are decoded
        ("GET", "/Encounter/a%2Fb", READ, {"id": "a/b"}),  # an encoded slash stays in one segment
        ("GET", "/Encounter/enc%2D00001", READ, {"id": "enc-00001"}),
        ("GET", "/Encounter/enc%252D00001", READ, {"id": "enc%2D00001"}),  # decoded once only
        ("GET", "/%45ncounter", SEARCH, {}),  # the path is decoded before it is matched
    ],
)
def test_a_route_matches_method_and_path(
    method: str, path: str, route: Route, parameters: dict[str, str]
) -> None:
    found, path_parameters = match_route(routes(Stub()), method, path)
    assert (found.route, path_parameters) == (route, parameters)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/Encounter/",
        "/Encounter/a/b",
        "/encounter",
        "/Patient",
        "/Encounterx",
        "/Encounter%2Fabc",  # an encoded slash is not a separator
        "Encounter",
        "*",
        "",
    ],
)
def test_no_route_is_not_found(path: str) -> None:
    with pytest.raises(NotFoundError):
        match_route(routes(Stub()), "GET", path)


def test_another_method_on_a_known_path_is_not_allowed_with_allow() -> None:
    with pytest.raises(MethodNotAllowedError) as raised:
        match_route(routes(Stub()), "POST", "/Encounter/1")
    assert raised.value.status == 405
    assert raised.value.headers() == {"Allow": "GET, HEAD"}


@pytest.mark.parametrize(
    ("template_path", "segments", "expected"),
    [
        ("/Encounter/{id}", ["Encounter", "1"], {"id": "1"}),
        ("/files/{proxy+}", ["files", "a", "b", "c"], {"proxy": "a/b/c"}),
        ("/a/{x}/b/{y}", ["a", "1", "b", "2"], {"x": "1", "y": "2"}),
        ("/metadata", ["metadata"], {}),
        ("/Encounter/{id}", ["Encounter", ""], None),
        ("/Encounter/{id}", ["Encounter"], None),
        ("/Encounter/{id}", ["Encounter", "1", "2"], None),
        ("/files/{proxy+}", ["files"], None),
        ("/metadata", ["Metadata"], None),
    ],
)
def test_path_template_parameters(
    template_path: str, segments: list[str], expected: dict[str, str] | None
) -> None:
    assert PathTemplate.parse(template_path).match(segments) == expected


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def server(stub: Stub) -> Iterator[LocalApiServer]:
    running = LocalApiServer(("127.0.0.1", 0), "v1")
    running.routes = routes(stub)
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=5)


@pytest.fixture
def base_url(server: LocalApiServer) -> str:
    return f"http://127.0.0.1:{server.server_port}"


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
        "/Encounter/a b",  # decoded once, as API Gateway matches it
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
        "/Encounter/a b",
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


def test_the_function_sees_the_path_decoded_once(base_url: str, stub: Stub) -> None:
    assert fetch(f"{base_url}/Encounter/enc%2D00001")[0] == 200
    assert fetch(f"{base_url}/%45ncounter/enc%252D2")[0] == 200
    first, second = stub.events
    assert (first["path"], first["requestContext"]["path"]) == ("/Encounter/enc-00001",) * 2
    assert first["pathParameters"] == {"id": "enc-00001"}
    assert (second["path"], second["pathParameters"]) == ("/Encounter/enc%2D2", {"id": "enc%2D2"})


@pytest.mark.parametrize(
    ("data_dir", "storage"), [(None, ["-inMemory"]), (Path("/data/dir"), ["-dbPath", "/data/dir"])]
)
def test_dynamodb_local_runs_with_a_capped_heap_and_watches_its_parent(
    data_dir: Path | None, storage: list[str]
) -> None:
    command = java_command("java", Path("/jars"), 8123, data_dir, parent_pid=4321)
    source = command.index(str(LAUNCHER))
    jvm, program = command[1:source], command[source + 1 :]
    assert {"-Xmx512m", "-XX:+UseSerialGC", "-Dloopback.parentPid=4321"} <= set(jvm)
    assert program == [*storage, "-sharedDb", "-disableTelemetry", "-port", "8123"]
    assert f"-Dloopback.parentPid={os.getpid()}" in java_command("java", Path("/jars"), 8123)


def test_dynamodb_local_binds_the_loopback_unless_told_one_other_address() -> None:
    assert "-Dloopback.host=127.0.0.1" in java_command("java", Path("/jars"), 8123)
    assert "-Dloopback.host=172.17.0.1" in java_command("java", Path("/jars"), 8123, host="172.17.0.1")


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::"])
def test_dynamodb_local_never_listens_on_every_interface(host: str) -> None:
    with pytest.raises(DynamoDBLocalError, match="never on every interface"), dynamodb_local(host=host):
        pass


# ---- what http.server rejects itself, over raw sockets -------------------------------------------

RawResponse = tuple[int, dict[str, str], bytes]


def exchange(server: LocalApiServer, raw: bytes, client_timeout: float = 10.0) -> RawResponse:
    """Send ``raw`` and read until the server closes the connection: status, headers, body."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=client_timeout) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), headers, body


def outcome_issue(response: RawResponse, status: int) -> dict[str, Any]:
    """The one issue of a FHIR OperationOutcome answer with ``status``."""
    found, headers, body = response
    assert found == status, body[:200]
    assert headers["content-type"].startswith("application/fhir+json"), headers
    assert headers["content-length"] == str(len(body))
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error"
    return dict(issue)


def request_bytes(method: str, path: str, headers: list[str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(headers or []), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_a_request_line_over_64_kb_is_a_414_operation_outcome(server: LocalApiServer, stub: Stub) -> None:
    response = exchange(server, request_bytes("GET", "/Encounter?patient=" + "p" * 65536))
    issue = outcome_issue(response, 414)
    assert issue["code"] == "too-long"
    assert "64 KB" in issue["details"]["text"]
    assert "ppppp" not in response[2].decode()
    assert stub.events == []


def test_a_request_line_of_64_kb_is_served(server: LocalApiServer, stub: Stub) -> None:
    line_without_query = len("GET /Encounter?p= HTTP/1.1\r\n")
    raw = request_bytes("GET", "/Encounter?p=" + "x" * (65536 - line_without_query))
    assert exchange(server, raw)[0] == 200
    assert len(stub.events[0]["queryStringParameters"]["p"]) == 65536 - line_without_query


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ([f"X-Header-{n}: {n}" for n in range(101)], "More than 100 request headers"),
        (["X-Long: " + "v" * 65536], "A request header line is over 64 KB"),
    ],
    ids=["101 headers", "a 64 KB header line"],
)
def test_too_many_or_too_long_headers_are_a_431_operation_outcome(
    server: LocalApiServer, stub: Stub, headers: list[str], says: str
) -> None:
    issue = outcome_issue(exchange(server, request_bytes("GET", "/Encounter", headers)), 431)
    assert (issue["code"], issue["details"]["text"]) == ("too-long", says)
    assert stub.events == []


def test_a_hundred_headers_are_served(server: LocalApiServer, stub: Stub) -> None:
    headers = [f"X-Header-{n}: {n}" for n in range(98)]  # with Host and Connection: 100
    assert exchange(server, request_bytes("GET", "/Encounter", headers))[0] == 200
    assert stub.events[0]["headers"]["X-Header-97"] == "97"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW", "get"])
def test_an_unsupported_method_is_a_501_operation_outcome(
    server: LocalApiServer, stub: Stub, method: str
) -> None:
    issue = outcome_issue(exchange(server, request_bytes(method, "/Encounter")), 501)
    assert issue["code"] == "not-supported"
    assert issue["details"]["text"].startswith(f"Method {method} is not supported")
    assert stub.events == []


def test_a_request_that_is_not_http_is_a_400_operation_outcome(server: LocalApiServer) -> None:
    issue = outcome_issue(exchange(server, b"GET /Encounter HTTP/x.y\r\n\r\n"), 400)
    assert issue["code"] == "invalid"


def test_head_answers_the_get_headers_without_a_body(server: LocalApiServer, stub: Stub) -> None:
    stub.result = {"statusCode": 200, "multiValueHeaders": {"ETag": ['W/"3"']}, "body": '{"id":"1"}'}
    get_status, get_headers, get_body = exchange(server, request_bytes("GET", "/Encounter/1"))
    status, headers, body = exchange(server, request_bytes("HEAD", "/Encounter/1"))
    assert (get_status, get_body) == (200, b'{"id":"1"}')
    assert (status, body) == (200, b"")
    assert headers["etag"] == get_headers["etag"] == 'W/"3"'
    assert headers["content-length"] == str(len(get_body))
    assert [event["httpMethod"] for event in stub.events] == ["GET", "GET"]  # the function sees GET


def test_head_of_an_error_has_no_body_either(server: LocalApiServer) -> None:
    status, headers, body = exchange(server, request_bytes("HEAD", "/Patient/1"))
    assert (status, body) == (404, b"")
    assert headers["content-type"].startswith("application/fhir+json")


def test_headers_that_never_finish_time_out_with_a_408(server: LocalApiServer, stub: Stub) -> None:
    server.request_timeout = 0.2
    issue = outcome_issue(exchange(server, b"GET /Encounter HTTP/1.1\r\nHost: 127.0.0.1\r\n"), 408)
    assert issue["code"] == "timeout"
    assert stub.events == []


@pytest.mark.parametrize("sent", [b"", b"GET /Encounter HT"], ids=["nothing", "half a request line"])
def test_a_connection_without_a_request_line_is_closed_after_the_timeout(
    server: LocalApiServer, sent: bytes
) -> None:
    server.request_timeout = 0.2
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        sock.sendall(sent)
        assert sock.recv(1024) == b""  # closed by the server, without an answer


def test_a_body_that_never_arrives_times_out_with_a_408(server: LocalApiServer, stub: Stub) -> None:
    server.request_timeout = 0.2
    raw = request_bytes("POST", "/Echo", ["Content-Length: 10"]) + b"abc"
    assert outcome_issue(exchange(server, raw), 408)["code"] == "timeout"
    assert stub.events == []


# ---- the real functions, as serve loads them ------------------------------------------------------

TEMPLATE = load_template(ROOT / "template.yaml")
ROUTES = api_routes(TEMPLATE, ROOT)
LOCAL = {"endpoint_url": "http://127.0.0.1:8000", "table_name": "local-table"}


def served_environment(base_url: str | None) -> dict[str, str]:
    """A function's environment as serve gives it: the template's, and its AUTH_MODE (required)."""
    return {**function_environment(TEMPLATE, **LOCAL, base_url=base_url), "AUTH_MODE": "none"}


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
    environment = served_environment("http://127.0.0.1:4567")
    assert metadata_url(environment) == "http://127.0.0.1:4567"
    assert dict(os.environ) == before


def test_a_setting_the_function_environment_lacks_is_not_inherited_from_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIR_BASE_URL", "http://process.example")
    assert metadata_url(served_environment(None)) == "http://h:1"
    assert os.environ["FHIR_BASE_URL"] == "http://process.example"


def test_each_function_keeps_the_environment_it_was_loaded_under() -> None:
    first = load_handler(capability_route(), served_environment("http://a:1"))
    assert metadata_url(served_environment("http://b:2")) == "http://b:2"
    assert (
        json.loads(first(metadata_event(), LocalContext())["body"])["implementation"]["url"] == "http://a:1"
    )


def test_every_template_route_is_served_by_its_function_literal_paths_first() -> None:
    served = local_routes(ROUTES, served_environment(None))
    paths = sorted((r.route.method, r.route.path) for r in served)
    assert paths == sorted((route.method, route.path) for route in ROUTES)
    assert {("GET", "/Encounter"), ("GET", "/Encounter/{id}"), ("GET", "/metadata")} <= set(paths)
    parameters_in_order = [r.route.path.count("{") for r in served]
    assert parameters_in_order == sorted(parameters_in_order)
    found, parameters = match_route(served, "GET", "/Encounter/e-1")
    assert (found.route.function, parameters) == ("ReadEncounterFunction", {"id": "e-1"})
    functions = {(str(route.code_dir), route.handler) for route in ROUTES}
    assert len({id(r.handler) for r in served}) == len(functions) >= 3  # one import per function


SECURITY = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request_bytes("GET", "/Patient/1"), 404),
        (request_bytes("DELETE", "/Encounter"), 405),
        (request_bytes("BREW", "/Encounter"), 501),
        (request_bytes("GET", "/Encounter?p=" + "x" * 65536), 414),
        (request_bytes("GET", "/Encounter", ["X-Long: " + "v" * 65536]), 431),
        (b"GET /Encounter HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 408),
    ],
    ids=["404", "405", "501", "414", "431", "408"],
)
def test_the_server_own_errors_carry_the_security_headers(
    server: LocalApiServer, raw: bytes, status: int
) -> None:
    server.request_timeout = 0.5
    found, headers, _ = exchange(server, raw)
    assert found == status
    assert SECURITY.items() <= headers.items()


def test_the_server_own_errors_echo_the_origin_when_cors_is_on(server: LocalApiServer) -> None:
    server.cors = CorsPolicy.parse("https://app.example.org")
    raw = request_bytes("GET", "/Patient/1", ["Origin: https://other.example.org"])
    found, headers, _ = exchange(server, raw)
    assert found == 404
    assert headers["access-control-allow-origin"] == "https://other.example.org"  # as a gateway response
    assert headers["vary"] == "Origin"


def test_the_server_own_errors_expose_no_headers_but_a_challenge(server: LocalApiServer) -> None:
    server.cors = CorsPolicy.parse("https://app.example.org")
    _, headers, _ = exchange(server, request_bytes("GET", "/Patient/1", ["Origin: https://app.example.org"]))
    assert "access-control-expose-headers" not in headers  # a 404 has no WWW-Authenticate to read


def test_without_cors_the_server_own_errors_carry_no_allow_origin(server: LocalApiServer) -> None:
    found, headers, _ = exchange(server, request_bytes("GET", "/Patient/1", ["Origin: https://a.test"]))
    assert found == 404
    assert "access-control-allow-origin" not in headers


def test_the_search_by_post_is_served_and_its_path_is_not_a_read() -> None:
    served = local_routes(ROUTES, served_environment(None))
    found, parameters = match_route(served, "POST", "/Encounter/_search")
    assert (found.route.function, parameters) == ("SearchEncountersFunction", {})
    found, _ = match_route(served, "OPTIONS", "/Encounter/_search")
    assert found.route.function == "CapabilityStatementFunction"
    # As API Gateway: the literal resource is chosen first, and it takes no GET (not a read of "_search").
    for method in ("GET", "PUT"):
        with pytest.raises(MethodNotAllowedError) as raised:
            match_route(served, method, "/Encounter/_search")
        assert raised.value.headers() == {"Allow": "POST, OPTIONS"}
    with pytest.raises(MethodNotAllowedError) as raised:
        match_route(served, "POST", "/Encounter")
    assert raised.value.headers() == {"Allow": "GET, HEAD, OPTIONS"}
