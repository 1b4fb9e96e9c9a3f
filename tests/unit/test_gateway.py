"""The API Gateway seam: the request view of a proxy event (whatever its shape), route matching by
resource template, the base path in front of it, and the proxy response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from fhir_encounter.cors import CorsPolicy
from fhir_encounter.gateway import COMMON_HEADERS, Request, Response, Router, match_template
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

CONTEXT = cast("LambdaContext", LocalContext())


def event(path: str, resource: str, **options: Any) -> dict[str, Any]:
    return rest_api_event(method="GET", path=path, resource=resource, **options)


def test_a_request_reads_method_resource_path_query_and_context() -> None:
    request = Request.from_event(
        event("/Encounter", "/Encounter", query={"date": ["ge2024", "lt2025"], "_count": ["5"]})
    )
    assert (request.method, request.resource, request.path) == ("GET", "/Encounter", "/Encounter")
    assert request.query == {"date": ["ge2024", "lt2025"], "_count": ["5"]}
    assert request.context["stage"] == "v1"


def test_headers_are_read_case_insensitively() -> None:
    request = Request.from_event(event("/metadata", "/metadata", headers={"accept": "application/fhir+json"}))
    assert request.headers.get("Accept") == request.headers["ACCEPT"] == "application/fhir+json"
    assert request.headers.get("If-None-Match") is None


def test_single_value_headers_win_over_multi_value_ones() -> None:
    raw = event("/metadata", "/metadata")
    raw["multiValueHeaders"]["Prefer"] = ["handling=lenient", "handling=strict"]
    raw["headers"]["Prefer"] = "handling=lenient"
    assert Request.from_event(raw).headers["prefer"] == "handling=lenient"
    del raw["headers"]["Prefer"]
    assert Request.from_event(raw).headers["prefer"] == "handling=strict"


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"httpMethod": 7, "path": None, "resource": ["x"]},
        {"headers": "Host: x", "multiValueHeaders": {"A": "b", "C": [], "D": [1]}, "requestContext": []},
        {"multiValueQueryStringParameters": {"a": "b", "c": [None], 3: ["x"]}, "pathParameters": {"id": 5}},
    ],
)
def test_parts_of_the_wrong_shape_read_as_absent(raw: dict[str, Any]) -> None:
    request = Request.from_event(raw)
    assert (request.method, request.resource, request.path) == ("", "", "")
    assert dict(request.headers) == {}
    assert request.query == {}
    assert request.path_parameters == {}
    assert request.context == {}


@pytest.mark.parametrize(
    ("template", "path", "parameters"),
    [
        ("/Encounter/{id}", "/Encounter/enc-1", {"id": "enc-1"}),
        ("/Encounter/{id}", "/fhir/Encounter/enc%2D1", {"id": "enc-1"}),  # a base path, percent-decoded
        ("/Encounter/{id}", "/Encounter/enc-1/", {"id": "enc-1"}),
        ("/Encounter", "/Encounter", {}),
        ("/.well-known/smart-configuration", "/.well-known/smart-configuration", {}),
        ("/Encounter/{id}", "/Patient/1", None),
        ("/Encounter/{id}", "/Encounter", None),
        ("/Encounter/{id}", "/Encounter//", None),
        ("/Encounter", "/Encounter/enc-1", None),
        ("/metadata", "", None),
    ],
)
def test_a_path_matches_a_template_it_ends_with(
    template: str, path: str, parameters: dict[str, str] | None
) -> None:
    assert match_template(template, path) == parameters


@pytest.mark.parametrize(
    ("path", "resource", "full_path", "base"),
    [
        ("/Encounter/enc-1", "/Encounter/{id}", "/v1/Encounter/enc-1", "/v1"),  # execute-api: the stage
        ("/fhir/Encounter", "/Encounter", "/fhir/Encounter", "/fhir"),  # custom domain, base path mapping
        ("/Encounter", "/Encounter", "/prod/r4/Encounter", "/prod/r4"),
        ("/metadata", "/metadata", "/metadata", ""),  # served at the root
        ("/Encounter", "", "/v1/Encounter", "/v1"),  # no resource: what precedes the path
    ],
)
def test_the_base_path_is_what_precedes_the_resource(
    path: str, resource: str, full_path: str, base: str
) -> None:
    raw = event(path, resource)
    raw["requestContext"]["path"] = full_path
    assert Request.from_event(raw).base_path == base


def _router(calls: list[tuple[str, Request]], cors: CorsPolicy | None = None) -> Router:
    router = Router(
        on_error=lambda request, error: Response(500, type(error).__name__),
        on_no_route=lambda request: Response(404, f"none {request.path}"),
        cors=cors or CorsPolicy(),
    )

    @router.get("/Encounter/{id}")
    def read(request: Request, _: Any) -> Response:
        calls.append(("read", request))
        return Response(200, request.path_parameters["id"], {"ETag": 'W/"1"'})

    @router.get("/Encounter")
    def search(request: Request, _: Any) -> Response:
        calls.append(("search", request))
        raise ValueError("boom")

    return router


def test_the_router_takes_the_resource_api_gateway_matched() -> None:
    calls: list[tuple[str, Request]] = []
    result = _router(calls).resolve(
        event("/Encounter/enc%2D1", "/Encounter/{id}", path_parameters={"id": "enc-1"}), CONTEXT
    )
    assert result == {
        "statusCode": 200,
        "body": "enc-1",
        "isBase64Encoded": False,
        "multiValueHeaders": {"ETag": ['W/"1"']},
    }
    assert [name for name, _ in calls] == ["read"]


def test_without_path_parameters_the_path_supplies_them() -> None:
    calls: list[tuple[str, Request]] = []
    result = _router(calls).resolve(event("/Encounter/enc%2D2", "/Encounter/{id}"), CONTEXT)
    assert (result["statusCode"], result["body"]) == (200, "enc-2")


@pytest.mark.parametrize(
    ("method", "path", "resource"),
    [
        ("GET", "/Patient/1", "/Encounter/{id}"),  # the path must end with the resource
        ("GET", "/Patient", "/Patient"),
        ("POST", "/Encounter", "/Encounter"),
        ("DELETE", "/Encounter/enc-1", "/Encounter/{id}"),
    ],
)
def test_a_request_no_route_takes_goes_to_on_no_route(method: str, path: str, resource: str) -> None:
    calls: list[tuple[str, Request]] = []
    raw = rest_api_event(method=method, path=path, resource=resource)
    result = _router(calls).resolve(raw, CONTEXT)
    assert (result["statusCode"], result["body"]) == (404, f"none {path}")
    assert calls == []


def test_an_exception_in_a_route_goes_to_on_error() -> None:
    calls: list[tuple[str, Request]] = []
    result = _router(calls).resolve(event("/Encounter", "/Encounter"), CONTEXT)
    assert (result["statusCode"], result["body"]) == (500, "ValueError")
    assert [name for name, _ in calls] == ["search"]


def test_an_event_that_is_not_a_mapping_is_no_route() -> None:
    result = _router([]).resolve([], CONTEXT)  # type: ignore[arg-type]
    assert result["statusCode"] == 404


APP = "https://app.example.org"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


def headers_of(result: dict[str, Any]) -> dict[str, str]:
    return {name: values[0] for name, values in result["multiValueHeaders"].items()}


@pytest.mark.parametrize(
    ("path", "resource"), [("/Encounter", "/Encounter"), ("/Encounter/e1", "/Encounter/{id}")]
)
def test_an_options_request_is_a_preflight_answered_without_a_route(path: str, resource: str) -> None:
    calls: list[tuple[str, Request]] = []
    raw = rest_api_event(method="OPTIONS", path=path, resource=resource, headers=PREFLIGHT)
    result = _router(calls, CorsPolicy.parse(APP)).resolve(raw, CONTEXT)
    assert (result["statusCode"], result["body"], calls) == (204, None, [])
    headers = headers_of(result)
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, Prefer, If-None-Match"
    assert headers["Access-Control-Allow-Methods"] == "GET"
    assert COMMON_HEADERS.items() <= headers.items()


def test_a_preflight_without_cors_grants_nothing() -> None:
    raw = rest_api_event(method="OPTIONS", path="/Encounter", resource="/Encounter", headers=PREFLIGHT)
    result = _router([]).resolve(raw, CONTEXT)
    assert result["statusCode"] == 204
    assert headers_of(result) == {**COMMON_HEADERS, "Allow": "GET, HEAD, OPTIONS"}


@pytest.mark.parametrize(
    ("path", "resource", "status"),
    [
        ("/Encounter/e1", "/Encounter/{id}", 200),
        ("/Encounter", "/Encounter", 500),
        ("/Patient", "/Patient", 404),
    ],
)
def test_every_answer_carries_the_cors_headers_of_its_origin(path: str, resource: str, status: int) -> None:
    raw = rest_api_event(method="GET", path=path, resource=resource, headers={"Origin": APP})
    result = _router([], CorsPolicy.parse(APP)).resolve(raw, CONTEXT)
    assert result["statusCode"] == status
    headers = headers_of(result)
    assert (headers["Access-Control-Allow-Origin"], headers["Vary"]) == (APP, "Origin")
    assert (
        headers["Access-Control-Expose-Headers"]
        == "ETag, Last-Modified, Location, Content-Location, WWW-Authenticate, Retry-After"
    )


def test_an_answer_to_another_origin_carries_no_grant() -> None:
    raw = rest_api_event(
        method="GET", path="/Encounter/e1", resource="/Encounter/{id}", headers={"Origin": "https://x.test"}
    )
    headers = headers_of(_router([], CorsPolicy.parse(APP)).resolve(raw, CONTEXT))
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["Vary"] == "Origin"


def test_a_vary_of_the_route_and_of_cors_are_both_kept() -> None:
    response = Response(200, "x", {"Vary": "Accept"}).with_headers({"Vary": "Origin"})
    assert response.headers["Vary"] == "Accept, Origin"


def _post_router(calls: list[tuple[str, Request]]) -> Router:
    router = _router(calls)

    @router.post("/Encounter/_search")
    def search_by_post(request: Request, _: Any) -> Response:
        calls.append(("post", request))
        return Response(200, request.body)

    return router


def test_a_post_route_takes_the_post_and_its_body() -> None:
    calls: list[tuple[str, Request]] = []
    raw = rest_api_event(
        method="POST",
        path="/Encounter/_search",
        resource="/Encounter/_search",
        body="cGF0aWVudD1wMQ==",
        is_base64_encoded=True,
    )
    result = _post_router(calls).resolve(raw, CONTEXT)
    assert (result["statusCode"], result["body"]) == (200, "cGF0aWVudD1wMQ==")
    ((name, request),) = calls
    assert (name, request.method, request.body, request.body_base64) == (
        "post",
        "POST",
        "cGF0aWVudD1wMQ==",
        True,
    )


@pytest.mark.parametrize(
    ("method", "path", "resource"),
    [
        ("GET", "/Encounter/_search", "/Encounter/_search"),  # the POST route's path, another method
        ("POST", "/Encounter", "/Encounter"),  # a GET route's path
        ("PUT", "/Encounter/_search", "/Encounter/_search"),
        ("DELETE", "/Encounter/e1", "/Encounter/{id}"),
    ],
)
def test_a_method_the_path_has_no_route_for_is_no_route(method: str, path: str, resource: str) -> None:
    calls: list[tuple[str, Request]] = []
    result = _post_router(calls).resolve(rest_api_event(method=method, path=path, resource=resource), CONTEXT)
    assert (result["statusCode"], result["body"], calls) == (404, f"none {path}", [])


def test_a_request_reads_no_body_from_an_event_without_one_or_of_another_type() -> None:
    raw = rest_api_event(method="POST", path="/Encounter/_search", resource="/Encounter/_search")
    assert (Request.from_event(raw).body, Request.from_event(raw).body_base64) == (None, False)
    raw["body"], raw["isBase64Encoded"] = {"not": "text"}, "yes"
    assert (Request.from_event(raw).body, Request.from_event(raw).body_base64) == (None, False)


def test_the_router_takes_only_get_and_post_routes() -> None:
    with pytest.raises(ValueError, match="GET and POST"):
        _router([]).route("PUT", "/Encounter/{id}")


def test_a_preflight_of_the_search_by_post_grants_post() -> None:
    raw = rest_api_event(
        method="OPTIONS",
        path="/Encounter/_search",
        resource="/Encounter/_search",
        headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"},
    )
    headers = headers_of(_router([], CorsPolicy.parse(APP)).resolve(raw, CONTEXT))
    assert (headers["Allow"], headers["Access-Control-Allow-Methods"]) == ("POST, OPTIONS", "POST")
