"""API Gateway REST proxy integration: the Request a route reads, the Response it returns, and the
Router that picks a route by the event's resource template (and answers CORS preflights). Ours
rather than Powertools' event_handler, whose package import (every resolver and event class) was
~40% of a cold start."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fhir_encounter.cors import CorsPolicy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Every response carries them, errors included: answers hold patient data, so no shared or browser
# cache may keep them, and no browser may guess another media type than the one sent.
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively (RFC 9110 5.1); one value per name."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {name.lower(): value for name, value in values.items()}

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True, slots=True)
class Request:
    """What a route reads of a REST API proxy event. Parts of the wrong shape read as absent: an
    event not made by API Gateway must not fail before the error map can answer it."""

    method: str
    resource: str
    path: str
    path_parameters: Mapping[str, str]
    query: Mapping[str, list[str]]  # multiValueQueryStringParameters: FHIR repeats names
    headers: Headers
    context: Mapping[str, Any]  # requestContext: stage, domain, the authorizer's principal
    body: str | None = None  # as API Gateway passes it on: text, or base64 when body_base64
    body_base64: bool = False  # isBase64Encoded

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        multi_headers = _mapping(event.get("multiValueHeaders"))
        headers = {name: values[-1] for name, values in multi_headers.items() if values and _strings(values)}
        headers.update(
            (name, value) for name, value in _mapping(event.get("headers")).items() if _text(value)
        )
        query = _mapping(event.get("multiValueQueryStringParameters"))
        return cls(
            method=_text(event.get("httpMethod")),
            resource=_text(event.get("resource")),
            path=_text(event.get("path")),
            path_parameters={k: v for k, v in _mapping(event.get("pathParameters")).items() if _text(v)},
            query={name: list(values) for name, values in query.items() if _strings(values)},
            headers=Headers(headers),
            context=_mapping(event.get("requestContext")),
            body=event.get("body") if isinstance(event.get("body"), str) else None,
            body_base64=event.get("isBase64Encoded") is True,
        )

    @property
    def base_path(self) -> str:
        """What precedes the resource in the full request path: the stage on an execute-api
        domain, a base path mapping on a custom domain (which may be in ``path`` too), or nothing."""
        full = _text(self.context.get("path")) or self.path
        if self.resource and match_template(self.resource, full) is not None:
            return "/".join(full.rstrip("/").split("/")[: -len(self.resource.strip("/").split("/"))])
        return full[: -len(self.path)] if self.path and full.endswith(self.path) else ""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str | None
    headers: Mapping[str, str] = field(default_factory=dict)

    def proxy_result(self) -> dict[str, Any]:
        """The Lambda proxy integration's response (REST API: multi-value headers)."""
        return {
            "statusCode": self.status,
            "body": self.body,
            "isBase64Encoded": False,
            "multiValueHeaders": {name: [value] for name, value in self.headers.items()},
        }

    def with_headers(self, headers: Mapping[str, str]) -> Response:
        """This response with ``headers`` added (a Vary in both lists the names of both)."""
        if not headers:
            return self
        merged = {**self.headers, **headers}
        if "Vary" in self.headers and "Vary" in headers and self.headers["Vary"] != headers["Vary"]:
            merged["Vary"] = f"{self.headers['Vary']}, {headers['Vary']}"
        return Response(self.status, self.body, merged)


Route = Callable[[Request, "LambdaContext"], Response]
ROUTED_METHODS = ("GET", "POST")


@dataclass(frozen=True, slots=True)
class Router:
    """GET and POST routes by method and resource template (``/Encounter/{id}``). The event's
    ``resource`` names the template API Gateway matched; the path must end with it (a base path
    mapping may precede it).
    ``on_error`` answers any exception a route raises; ``on_no_route`` a request no route takes.
    Any OPTIONS request is a CORS preflight, answered by ``cors`` (204, no data, no token needed:
    the template routes OPTIONS without an authorizer); every other answer carries the CORS
    headers ``cors`` gives the request's Origin."""

    on_error: Callable[[Request, Exception], Response]
    on_no_route: Callable[[Request], Response]
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)  # by (method, template)
    cors: CorsPolicy = field(default_factory=CorsPolicy)

    def get(self, template: str) -> Callable[[Route], Route]:
        return self.route("GET", template)

    def post(self, template: str) -> Callable[[Route], Route]:
        return self.route("POST", template)

    def route(self, method: str, template: str) -> Callable[[Route], Route]:
        if method not in ROUTED_METHODS:
            raise ValueError(f"the Router takes {' and '.join(ROUTED_METHODS)} routes, not {method}")

        def register(route: Route) -> Route:
            self.routes[method, template] = route
            return route

        return register

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = Request.from_event(event if isinstance(event, Mapping) else {})
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            method = request.headers.get("Access-Control-Request-Method")
            grant = self.cors.preflight_headers(origin, method, request.resource)
            return Response(204, None, {**COMMON_HEADERS, **grant}).proxy_result()
        try:
            found = self._route_for(request)
            if found is None:
                response = self.on_no_route(request)
            else:
                route, parameters = found
                response = route(_with_parameters(request, parameters), context)
        except Exception as error:  # the one place any failure becomes a response
            response = self.on_error(request, error)
        return response.with_headers(self.cors.response_headers(origin)).proxy_result()

    def _route_for(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        """The route of the event's method and resource; when the resource is none of the
        router's templates, the first template of the method that the path fits. As API Gateway
        does, a known resource without a route for the method is no route (GET /Encounter/_search
        is not a read of id "_search")."""
        routes = {
            template: route for (method, template), route in self.routes.items() if method == request.method
        }
        if request.resource in routes:
            templates = [request.resource]
        elif any(template == request.resource for _, template in self.routes):
            return None
        else:
            templates = list(routes)
        for template in templates:
            parameters = match_template(template, request.path)
            if parameters is not None:
                return routes[template], parameters
        return None


def prefers_strict(request: Request) -> bool:
    """``Prefer: handling=strict`` (FHIR R4 search.html#errors): unknown input is a 400. RFC 7240:
    comma-separated preferences, each possibly followed by ';'-parameters."""
    prefer = request.headers.get("Prefer") or ""
    return any(part.split(";")[0].strip().lower() == "handling=strict" for part in prefer.split(","))


def match_template(template: str, path: str) -> dict[str, str] | None:
    """The path parameters if ``path`` ends with ``template``'s segments (``{name}`` takes one
    non-empty segment, percent-decoded), else None."""
    wanted = template.strip("/").split("/")
    segments = path.rstrip("/").split("/")
    if len(segments) <= len(wanted):
        return None
    parameters: dict[str, str] = {}
    for pattern, segment in zip(wanted, segments[-len(wanted) :], strict=True):
        if pattern.startswith("{") and pattern.endswith("}"):
            if not segment:
                return None
            parameters[pattern[1:-1]] = unquote(segment)
        elif pattern != segment:
            return None
    return parameters


def _with_parameters(request: Request, parameters: dict[str, str]) -> Request:
    """API Gateway's decoded pathParameters win; the path's own segments fill what it left out."""
    merged = {**parameters, **request.path_parameters}
    if merged == request.path_parameters:
        return request
    return replace(request, path_parameters=merged)


def _mapping(value: object) -> dict[str, Any]:
    return {k: v for k, v in value.items() if isinstance(k, str)} if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(values: object) -> bool:
    return isinstance(values, list) and all(isinstance(value, str) for value in values)
