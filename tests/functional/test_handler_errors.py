"""Request handling through the real handlers over the moto table: read, conditional read, every
error the map produces (including DynamoDB faults, injected into the client the handlers use), and
the base URL that links are built on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from fhir_encounter.config import Settings
from fhir_encounter.runtime import LambdaHandler
from fhir_encounter.search.cursor import BAD_CURSOR_TEXT
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.support import encounter, handlers_on, ids_of, invoke, read, search

Put = Callable[..., None]
FHIR_JSON = "application/fhir+json; charset=utf-8"
INTERNAL_TEXT = "The server could not complete the request. It has been logged; try again later."
AWS_TEXT = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "arn:aws:dynamodb:us-east-1:123456789012:table/encounters-test RequestId: 8f7e6d5c"
)
BUSY_TEXT = "The Encounter store is busy; retry the request later"
TIMEOUT_TEXT = "The Encounter store did not answer in time; retry later"
EXECUTE_API = "abc123defg.execute-api.us-east-1.amazonaws.com"


def outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "details": {"text": text}}],
    }


@pytest.fixture
def handlers(table: Any) -> Iterator[dict[str, LambdaHandler]]:
    """The handlers on the table's client, by API resource (for responses as API Gateway gets them)."""
    with handlers_on(table) as composed:
        yield composed


def raw(handlers: dict[str, LambdaHandler], event: dict[str, Any]) -> dict[str, Any]:
    """The handler's response as API Gateway gets it (the body unparsed), headers flattened."""
    response: dict[str, Any] = handlers[event["resource"]](event, LocalContext())  # type: ignore[arg-type]
    response["headers"] = {k: v[-1] for k, v in response.get("multiValueHeaders", {}).items()}
    return response


def read_event(encounter_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return rest_api_event(
        method="GET",
        path=f"/Encounter/{encounter_id}",
        resource="/Encounter/{id}",
        path_parameters={"id": encounter_id},
        headers=headers,
    )


def search_event(query: dict[str, list[str]] | None = None, **options: Any) -> dict[str, Any]:
    return rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query, **options)


def assert_safe(body: str) -> None:
    """No AWS error text, exception names or stack traces reach a client."""
    for leak in (
        "arn:aws",
        "RequestId",
        "provisioned",
        "Traceback",
        "Exception",
        "Error:",
        'File "',
        "botocore",
    ):
        assert leak not in body


@contextmanager
def failing(client: Any, operation: str, error: Exception) -> Iterator[None]:
    """Every ``operation`` call on ``client`` raises ``error`` before it is sent, as botocore
    raises a fault (no retry: the hook runs before the retrying send)."""

    def fail(**_: Any) -> None:
        raise error

    event = f"before-call.dynamodb.{operation}"
    client.meta.events.register(event, fail)
    try:
        yield
    finally:
        client.meta.events.unregister(event, fail)


# ---- read -------------------------------------------------------------------------------------


def test_read_returns_the_encounter_with_meta_etag_and_last_modified(
    put: Put, handlers: dict[str, LambdaHandler]
) -> None:
    stored = encounter("enc-1", start="2021-06-15T10:00:00Z", end="2021-06-15T11:00:00Z")
    put(stored)
    response = raw(handlers, read_event("enc-1"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body == {**stored, "meta": {"versionId": "1", "lastUpdated": body["meta"]["lastUpdated"]}}
    last_modified = format_datetime(datetime.fromisoformat(body["meta"]["lastUpdated"]), usegmt=True)
    assert response["headers"] == {
        "Content-Type": FHIR_JSON,
        "ETag": 'W/"1"',
        "Last-Modified": last_modified,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def test_a_changed_encounter_is_read_as_the_next_version(put: Put) -> None:
    put(encounter("enc-1", status="in-progress"))
    put(encounter("enc-1", status="finished"))
    status, headers, body = read("enc-1")
    assert (status, headers["ETag"], body["meta"]["versionId"], body["status"]) == (
        200,
        'W/"2"',
        "2",
        "finished",
    )


@pytest.mark.parametrize("if_none_match", ['W/"1"', 'W/"0", W/"1"', ' W/"1" '])
def test_if_none_match_with_the_current_etag_is_304_without_a_body(
    put: Put, handlers: dict[str, LambdaHandler], if_none_match: str
) -> None:
    put(encounter("enc-1"))
    response = raw(handlers, read_event("enc-1", {"If-None-Match": if_none_match}))
    assert response["statusCode"] == 304
    assert response["body"] is None
    assert response["headers"]["ETag"] == 'W/"1"'
    assert "Last-Modified" not in response["headers"]  # RFC 9110 15.4.5: the ETag validates


@pytest.mark.parametrize("if_none_match", ['W/"2"', 'W/"10"', 'W/"1-x"'])
def test_if_none_match_with_another_etag_is_200(put: Put, if_none_match: str) -> None:
    put(encounter("enc-1"))
    status, headers, body = read("enc-1", {"If-None-Match": if_none_match})
    assert (status, headers["ETag"], body["id"]) == (200, 'W/"1"', "enc-1")


def test_an_old_etag_after_a_change_is_200_with_the_new_one(put: Put) -> None:
    put(encounter("enc-1", status="in-progress"))
    put(encounter("enc-1", status="finished"))
    status, headers, _ = read("enc-1", {"If-None-Match": 'W/"1"'})
    assert (status, headers["ETag"]) == (200, 'W/"2"')


@pytest.mark.parametrize("encounter_id", ["enc-9999", "a.b-C", "x" * 64])
def test_an_unknown_id_is_404_naming_it(table: Any, encounter_id: str) -> None:
    status, headers, body = read(encounter_id)
    assert (status, headers["Content-Type"]) == (404, FHIR_JSON)
    assert body == outcome("not-found", f"Unknown Encounter resource '{encounter_id}'")


@pytest.mark.parametrize("encounter_id", ["bad_id", "x" * 65, "a,b", "a:b", "a=b", "_meta"])
def test_an_id_that_is_not_a_fhir_id_is_400(table: Any, encounter_id: str) -> None:
    status, headers, body = read(encounter_id)
    assert (status, headers["Content-Type"]) == (400, FHIR_JSON)
    assert body == outcome(
        "invalid", "Invalid Encounter id: a FHIR id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
    )


def test_a_path_without_a_route_is_404(handlers: dict[str, LambdaHandler]) -> None:
    event = rest_api_event(
        method="GET", path="/Patient/1", resource="/Encounter/{id}", path_parameters={"id": "1"}
    )
    response = raw(handlers, event)
    assert (response["statusCode"], response["headers"]["Content-Type"]) == (404, FHIR_JSON)
    assert json.loads(response["body"]) == outcome("not-found", "No route for GET /Patient/1")


# ---- search errors through the handler ---------------------------------------------------------


def test_an_invalid_search_value_is_400_naming_the_parameter(table: Any) -> None:
    status, headers, body = search("patient=Group/7")
    assert (status, headers["Content-Type"]) == (400, FHIR_JSON)
    assert body == outcome(
        "invalid", "Invalid value for search parameter 'patient': 'patient' refers to Patient, not Group"
    )


def test_a_modifier_is_400_not_supported(table: Any) -> None:
    status, _, body = search("date:above=2021")
    assert status == 400
    assert body == outcome("not-supported", "Search parameter 'date' does not support the modifier ':above'")


@pytest.mark.parametrize("prefer", ["handling=strict", "HANDLING=STRICT", "return=minimal, handling=strict"])
def test_prefer_handling_strict_rejects_unknown_parameters(table: Any, prefer: str) -> None:
    status, _, body = search("foo=1&patient=p1", {"Prefer": prefer})
    assert status == 400
    assert body == outcome("not-supported", "Unknown search parameter(s): foo")


@pytest.mark.parametrize("headers", [None, {"Prefer": "handling=lenient"}, {"Prefer": "return=minimal"}])
def test_unknown_parameters_are_ignored_and_left_out_of_the_self_link(
    put: Put, headers: dict[str, str] | None
) -> None:
    put(encounter("enc-1", subject="Patient/p1"), encounter("enc-2", subject="Patient/p2"))
    status, _, body = search("foo=1&patient=p1&_tag=urgent", headers)
    assert (status, ids_of(body)) == (200, ["enc-1"])
    assert body["link"][0] == {
        "relation": "self",
        "url": "http://127.0.0.1:3000/v1/Encounter?patient=p1&_count=10&_offset=0",
    }


def _next_cursor(bundle: dict[str, Any]) -> str:
    next_url: str = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return next_url.split("_cursor=")[1]


@pytest.fixture
def three(put: Put) -> None:
    put(*(encounter(f"enc-{i}", subject="Patient/p1", start=f"2021-06-1{i}") for i in range(3)))


@pytest.mark.usefixtures("three")
def test_a_tampered_cursor_is_400(table: Any) -> None:
    _, _, first = search("patient=p1&_count=1")
    cursor = _next_cursor(first)
    tampered = ("A" if cursor[5] != "A" else "B").join([cursor[:5], cursor[6:]])
    status, _, body = search({"patient": ["p1"], "_count": ["1"], "_offset": ["1"], "_cursor": [tampered]})
    assert status == 400
    assert body == outcome("invalid", BAD_CURSOR_TEXT)


@pytest.mark.usefixtures("three")
@pytest.mark.parametrize(
    "query",
    [
        {"patient": ["p2"], "_count": ["1"], "_offset": ["1"]},
        {"patient": ["p1"], "_count": ["2"], "_offset": ["1"]},
        {"patient": ["p1"], "_count": ["1"], "_offset": ["2"]},
        {"patient": ["p1"], "date": ["ge2021"], "_count": ["1"], "_offset": ["1"]},
    ],
)
def test_a_cursor_used_with_another_search_or_offset_is_400(query: dict[str, list[str]]) -> None:
    _, _, first = search("patient=p1&_count=1")
    status, _, body = search({**query, "_cursor": [_next_cursor(first)]})
    assert status == 400
    assert body == outcome("invalid", BAD_CURSOR_TEXT)


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "x" * 5000, "..."])
def test_a_garbage_cursor_is_400(table: Any, cursor: str) -> None:
    status, _, body = search({"_cursor": [cursor], "_offset": ["1"]})
    assert status == 400
    assert body == outcome("invalid", BAD_CURSOR_TEXT)


@pytest.mark.usefixtures("three")
def test_count_zero_returns_only_the_total(table: Any) -> None:
    status, _, body = search("patient=p1&_count=0")
    assert status == 200
    assert (body["total"], "entry" in body, [link["relation"] for link in body["link"]]) == (
        3,
        False,
        ["self"],
    )


@pytest.mark.usefixtures("three")
def test_an_offset_past_the_end_is_an_empty_page_with_the_total(table: Any) -> None:
    status, _, body = search("patient=p1&_offset=50")
    assert (status, body["total"], ids_of(body)) == (200, 3, [])
    assert [link["relation"] for link in body["link"]] == ["self", "first", "previous", "last"]


# ---- DynamoDB faults ------------------------------------------------------------------------------

TRANSIENT_CODES = [
    ("ProvisionedThroughputExceededException", 400),
    ("ThrottlingException", 400),
    ("RequestLimitExceeded", 400),
    ("InternalServerError", 500),
    ("ServiceUnavailable", 503),
]
REQUESTS: dict[str, Callable[[], dict[str, Any]]] = {
    "read": lambda: read_event("enc-1"),
    "search by patient": lambda: search_event({"patient": ["p1"]}),
    "search all": lambda: search_event(),
    "search by id": lambda: search_event({"_id": ["enc-1"]}),
}
# Every DynamoDB call each request makes (the search of all reads the bucket directory first).
REQUEST_CALLS = [
    ("read", "GetItem"),
    ("search by patient", "Query"),
    ("search by patient", "BatchGetItem"),
    ("search all", "GetItem"),
    ("search all", "Query"),
    ("search all", "BatchGetItem"),
    ("search by id", "BatchGetItem"),
]


@pytest.fixture
def stored(put: Put) -> None:
    put(encounter("enc-1", subject="Patient/p1", start="2021-06-15T10:00:00Z"))


def client_error(code: str, http_status: int, operation: str) -> ClientError:
    """The error botocore raises for an AWS error response."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": AWS_TEXT},
            "ResponseMetadata": {
                "RequestId": "8f7e6d5c",
                "HostId": "",
                "HTTPStatusCode": http_status,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        operation,
    )


def _assert_transient(response: dict[str, Any], text: str) -> None:
    assert response["statusCode"] == 503
    assert response["headers"]["Content-Type"] == FHIR_JSON
    assert response["headers"]["Retry-After"] == "2"
    assert json.loads(response["body"]) == outcome("transient", text)
    assert_safe(response["body"])


def _assert_internal(response: dict[str, Any]) -> None:
    assert (response["statusCode"], response["headers"]["Content-Type"]) == (500, FHIR_JSON)
    assert "Retry-After" not in response["headers"]
    assert json.loads(response["body"]) == outcome("exception", INTERNAL_TEXT)
    assert_safe(response["body"])


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("code", "http_status"), TRANSIENT_CODES)
def test_dynamodb_throttling_on_read_is_503_with_retry_after(
    table: Any, handlers: dict[str, LambdaHandler], code: str, http_status: int
) -> None:
    with Stubber(table) as stubber:
        stubber.add_client_error("get_item", code, AWS_TEXT, http_status)
        response = raw(handlers, read_event("enc-1"))
    _assert_transient(response, BUSY_TEXT)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("code", "http_status"), TRANSIENT_CODES)
def test_dynamodb_throttling_on_search_is_503_with_retry_after(
    table: Any, handlers: dict[str, LambdaHandler], code: str, http_status: int
) -> None:
    with Stubber(table) as stubber:
        for _ in ("count", "page"):  # a patient's first page counts and reads at once: two Queries
            stubber.add_client_error("query", code, AWS_TEXT, http_status)
        response = raw(handlers, search_event({"patient": ["p1"]}))
    _assert_transient(response, BUSY_TEXT)


@pytest.mark.usefixtures("stored")
def test_a_503_lets_a_browser_app_of_an_allowed_origin_read_when_to_retry(table: Any) -> None:
    origin = "https://app.example.org"
    settings = Settings.from_environment({**TEST_ENVIRONMENT, "CORS_ALLOWED_ORIGINS": origin})
    with handlers_on(table, settings), Stubber(table) as stubber:
        stubber.add_client_error("get_item", "ThrottlingException", AWS_TEXT, 400)
        status, headers, _ = read("enc-1", headers={"Origin": origin})
    assert (status, headers["Retry-After"], headers["Access-Control-Allow-Origin"]) == (503, "2", origin)
    assert "Retry-After" in headers["Access-Control-Expose-Headers"].split(", ")


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("request_name", "operation"), REQUEST_CALLS)
def test_throttling_on_any_call_of_a_request_is_503_and_the_request_succeeds_after(
    table: Any, handlers: dict[str, LambdaHandler], request_name: str, operation: str
) -> None:
    event = REQUESTS[request_name]
    with failing(table, operation, client_error("ProvisionedThroughputExceededException", 400, operation)):
        _assert_transient(raw(handlers, event()), BUSY_TEXT)
    assert raw(handlers, event())["statusCode"] == 200


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=lambda error: type(error).__name__,
)
@pytest.mark.parametrize(("request_name", "operation"), REQUEST_CALLS)
def test_dynamodb_unreachable_is_503_with_retry_after(
    table: Any, handlers: dict[str, LambdaHandler], error: Exception, request_name: str, operation: str
) -> None:
    with failing(table, operation, error):
        response = raw(handlers, REQUESTS[request_name]())
    _assert_transient(response, TIMEOUT_TEXT)
    assert "dynamodb.us-east-1" not in response["body"]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("code", "http_status"),
    [("ResourceNotFoundException", 400), ("AccessDeniedException", 400), ("ValidationException", 400)],
)
def test_a_non_transient_dynamodb_error_is_500_with_the_fixed_message(
    table: Any, handlers: dict[str, LambdaHandler], code: str, http_status: int
) -> None:
    with Stubber(table) as stubber:
        stubber.add_client_error("get_item", code, AWS_TEXT, http_status)
        response = raw(handlers, read_event("enc-1"))
    _assert_internal(response)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("request_name", "operation"), REQUEST_CALLS)
def test_an_unexpected_exception_is_500_with_the_fixed_message_and_no_stack_trace(
    table: Any, handlers: dict[str, LambdaHandler], request_name: str, operation: str
) -> None:
    error = RuntimeError('Traceback (most recent call last): File "x.py" secret Patient/p1 arn:aws:dynamodb')
    with failing(table, operation, error):
        response = raw(handlers, REQUESTS[request_name]())
    _assert_internal(response)
    assert "secret" not in response["body"]
    assert "Patient/p1" not in response["body"]


# ---- base URL --------------------------------------------------------------------------------


def _search_urls(event: dict[str, Any]) -> tuple[str, str]:
    status, _, body = invoke(event)
    assert status == 200
    return body["link"][0]["url"], body["entry"][0]["fullUrl"]


@pytest.fixture
def configured_base_url(table: Any) -> Iterator[None]:
    """The handlers composed with FHIR_BASE_URL set (with a trailing slash, which is dropped)."""
    settings = Settings.from_environment(
        {**TEST_ENVIRONMENT, "FHIR_BASE_URL": "https://fhir.example.org/r4/"}
    )
    with handlers_on(table, settings):
        yield


def _without(event: dict[str, Any], header: str) -> dict[str, Any]:
    event["headers"].pop(header)
    event["multiValueHeaders"].pop(header)
    return event


@pytest.mark.parametrize(
    ("headers", "base"),
    [
        ({"Host": EXECUTE_API, "X-Forwarded-Proto": "https"}, f"https://{EXECUTE_API}/v1"),
        ({"Host": EXECUTE_API, "X-Forwarded-Proto": "http"}, f"http://{EXECUTE_API}/v1"),
        ({"Host": EXECUTE_API, "X-Forwarded-Proto": "https, http"}, f"https://{EXECUTE_API}/v1"),
        ({"host": "api.example.org:8443", "x-forwarded-proto": "https"}, "https://api.example.org:8443/v1"),
    ],
)
def test_base_url_is_scheme_host_and_stage(put: Put, headers: dict[str, str], base: str) -> None:
    put(encounter("enc-1"))
    event = search_event(headers=headers)
    if "host" in headers:
        event = _without(_without(event, "Host"), "X-Forwarded-Proto")
    assert _search_urls(event) == (f"{base}/Encounter?_count=10&_offset=0", f"{base}/Encounter/enc-1")


def test_base_url_defaults_to_https_without_x_forwarded_proto(put: Put) -> None:
    put(encounter("enc-1"))
    event = _without(search_event(headers={"Host": EXECUTE_API}), "X-Forwarded-Proto")
    assert _search_urls(event)[1] == f"https://{EXECUTE_API}/v1/Encounter/enc-1"


def test_base_url_follows_the_stage_name(put: Put) -> None:
    put(encounter("enc-1"))
    assert _search_urls(search_event(stage="prod"))[1] == "http://127.0.0.1:3000/prod/Encounter/enc-1"


def test_base_url_has_no_prefix_when_served_at_the_root(put: Put) -> None:
    put(encounter("enc-1"))
    assert _search_urls(search_event(stage_in_path=False)) == (
        "http://127.0.0.1:3000/Encounter?_count=10&_offset=0",
        "http://127.0.0.1:3000/Encounter/enc-1",
    )


@pytest.mark.usefixtures("configured_base_url")
def test_fhir_base_url_when_set_wins_over_the_request(put: Put) -> None:
    put(encounter("enc-1"))
    event = search_event({"patient": ["p1"]}, headers={"Host": EXECUTE_API, "X-Forwarded-Proto": "https"})
    assert _search_urls(event) == (
        "https://fhir.example.org/r4/Encounter?patient=p1&_count=10&_offset=0",
        "https://fhir.example.org/r4/Encounter/enc-1",
    )
