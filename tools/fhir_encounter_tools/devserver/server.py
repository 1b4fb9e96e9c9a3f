"""``fhir-encounter serve``: a local stand-in for API Gateway in front of the real handlers.

- Routes and handlers come from template.yaml (``api_routes``); each function's handler file is
  imported from its path, as Lambda loads it (no ``sys.path`` edits).
- Each HTTP request that matches a route (``{id}`` is one path segment) becomes the REST API proxy
  event that API Gateway would send: path (percent-encoded, as REST APIs pass it), resource,
  pathParameters and multi-value query parameters (both decoded), every header, requestContext
  with the stage (served at the root, so the stage is not in the path). The function's
  ``lambda_handler`` runs in-process with a fresh context, and its statusCode, headers,
  multiValueHeaders and body (base64 when ``isBase64Encoded``) are written back.
- No route: 404 OperationOutcome; a known path with another method: 405 OperationOutcome.
- One line per request on stderr: method, path (never the query string: it can hold patient
  ids), status, milliseconds.
- Lambda gives an execution environment one event at a time, and the handlers share the layer's
  module state (Logger keys, Metrics) here, so invocations run one at a time; threads serve the
  sockets.
- Without an endpoint URL it runs DynamoDB Local (in memory), creates the table from the template,
  seeds synthetic Encounters, and stops DynamoDB Local by pid on exit. SIGTERM stops the server as
  Ctrl-C does; signals that arrive while it stops are ignored, so the cleanup always finishes.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import os
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from fhir_encounter.config import ENVIRONMENT
from fhir_encounter.errors import CONTENT_TYPE, FhirError, InvalidRequestError, NotFoundError, error_body
from fhir_encounter.references import ReferenceValueError, split_reference
from fhir_encounter.store.dynamodb import LOCAL_REGION
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
from fhir_encounter_tools.ingest.loader import load_resources
from fhir_encounter_tools.ingest.seed import SEED, SEED_PATIENT, synthetic_encounters
from fhir_encounter_tools.reporting import PROGRAM, error_message, print_rejection
from fhir_encounter_tools.tables import create_table, require_table, tools_client
from fhir_encounter_tools.template import Route, TemplateError, api_routes, find_template, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Handler = Callable[[dict[str, Any], Any], Any]

DEFAULT_STAGE = "v1"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
DEFAULT_LOG_LEVEL = "WARNING"  # the server prints its own line per request
_WILDCARD_HOSTS = ("", "0.0.0.0")  # noqa: S104 (only compared with, never bound here)
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_NO_BODY = frozenset({204, 304})
_SEGMENT_PARAMETER = re.compile(r"\{(\w+)(\+?)\}")


class MethodNotAllowedError(FhirError):
    status = 405
    code = "not-supported"

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(f"Method {method} is not allowed on this path; allowed: {', '.join(allowed)}")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class BadGatewayError(FhirError):
    """The function raised or returned something API Gateway cannot use (it answers 502)."""

    status = 502
    code = "exception"


class PayloadTooLargeError(FhirError):
    status = 413
    code = "too-costly"


@dataclass(frozen=True, slots=True)
class LocalRoute:
    route: Route
    pattern: re.Pattern[str]
    handler: Handler


def route_pattern(path: str) -> re.Pattern[str]:
    """``/Encounter/{id}`` as a regex: ``{name}`` is one path segment, ``{name+}`` the rest."""
    segments = []
    for segment in path.strip("/").split("/"):
        parameter = _SEGMENT_PARAMETER.fullmatch(segment)
        if parameter is None:
            segments.append(re.escape(segment))
        else:
            segments.append(f"(?P<{parameter[1]}>{'.+' if parameter[2] else '[^/]+'})")
    return re.compile("/" + "/".join(segments))


def load_handler(route: Route, environment: Mapping[str, str] | None = None) -> Handler:
    """The ``lambda_handler`` that ``route.handler`` (``module.function``) names in its code dir,
    imported (and so initialised) under the function's ``environment``, as Lambda does."""
    module_name, _, function_name = route.handler.rpartition(".")
    path = route.code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"{route.function}_{module_name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise TemplateError(f"{route.function}: handler file {path} not found")
    module = importlib.util.module_from_spec(spec)
    with _function_environment(environment or {}):
        spec.loader.exec_module(module)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise TemplateError(f"{route.function}: {path} has no function {function_name}")
    return cast(Handler, handler)


def local_routes(routes: list[Route], environment: Mapping[str, str] | None = None) -> list[LocalRoute]:
    """Every route with its handler (one import per function), literal paths before parameters."""
    handlers: dict[tuple[str, str], Handler] = {}
    served = []
    for route in sorted(routes, key=lambda route: route.path.count("{")):
        key = (str(route.code_dir), route.handler)
        if key not in handlers:
            handlers[key] = load_handler(route, environment)
        served.append(LocalRoute(route, route_pattern(route.path), handlers[key]))
    return served


def match_route(routes: list[LocalRoute], method: str, path: str) -> tuple[LocalRoute, dict[str, str]]:
    """The route for ``method path`` and its decoded path parameters; NotFoundError or
    MethodNotAllowedError when there is none."""
    allowed = []
    for candidate in routes:
        found = candidate.pattern.fullmatch(path)
        if found is None:
            continue
        if candidate.route.method in (method, "ANY"):
            return candidate, {name: unquote(value) for name, value in found.groupdict().items()}
        allowed.append(candidate.route.method)
    if allowed:
        raise MethodNotAllowedError(method, sorted(set(allowed)))
    raise NotFoundError(f"No route for {method} {path}")


def error_result(error: FhirError) -> dict[str, Any]:
    """An error as a Lambda proxy result, so that every answer is written the same way."""
    return {
        "statusCode": error.status,
        "multiValueHeaders": {"Content-Type": [CONTENT_TYPE]} | {k: [v] for k, v in error.headers().items()},
        "body": error_body(error),
        "isBase64Encoded": False,
    }


class LocalApiServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], stage: str) -> None:
        super().__init__(address, _RequestHandler)
        self.stage = stage
        self.routes: list[LocalRoute] = []
        self._invocations = threading.Lock()

    def invoke(self, target: LocalRoute, event: dict[str, Any]) -> dict[str, Any]:
        """Run the function's handler as Lambda would: one event at a time, a fresh context."""
        context = LocalContext(
            function_name=target.route.function,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:{LOCAL_REGION}:123456789012:function:{target.route.function}",
        )
        with self._invocations:
            try:
                result = target.handler(event, context)
            except Exception as error:  # API Gateway answers 502 when the function fails
                _log(f"{target.route.function} raised {type(error).__name__}")
                return error_result(BadGatewayError("The function failed; see the server log"))
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            return error_result(BadGatewayError("The function returned a malformed response"))
        return result


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    server_version = "fhir-encounter-serve"

    def do_GET(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = split.path or "/"
        try:
            body = self._body()
            target, path_parameters = match_route(self.server.routes, self.command, path)
        except FhirError as error:
            result = error_result(error)
        else:
            event = self._event(target, path, path_parameters, split.query, body)
            result = self.server.invoke(target, event)
        status = self._write(result)
        _log(f"{self.command} {path} {status} {(time.perf_counter() - started) * 1000:.1f} ms")

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815 (http.server's names)

    def _body(self) -> bytes | None:
        """The request body (API Gateway passes it on), read so that the connection stays sane."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise InvalidRequestError("Content-Length is not a number") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise PayloadTooLargeError(f"Request body over {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length > 0 else None

    def _event(
        self, target: LocalRoute, path: str, path_parameters: dict[str, str], query: str, body: bytes | None
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers[name] = value  # API Gateway's headers keep the last value of a repeated one
            multi_headers.setdefault(name, []).append(value)
        event = rest_api_event(
            method=self.command,
            path=path,
            resource=target.route.path,
            path_parameters=path_parameters,
            query=parse_qs(query, keep_blank_values=True),
            headers=headers,
            stage=self.server.stage,
            stage_in_path=False,
        )
        event["multiValueHeaders"].update(multi_headers)
        event["requestContext"]["identity"]["sourceIp"] = self.client_address[0]
        if body is not None:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event

    def _write(self, result: dict[str, Any]) -> int:
        status = int(result["statusCode"])
        try:
            body = result.get("body") or ""
            data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        except (binascii.Error, ValueError):
            result, status = error_result(BadGatewayError("The function returned a malformed body")), 502
            data = str(result["body"]).encode()
        # API Gateway merges headers and multiValueHeaders; for a name in both, multiValueHeaders wins.
        headers = {name: [str(value)] for name, value in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = [str(value) for value in values]
        try:
            self.send_response(status)
            for name, values in headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    for value in values:
                        self.send_header(name, value)
            if status not in _NO_BODY:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if status not in _NO_BODY:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return status

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """do_GET logs each request itself (http.server's line would carry the query string)."""

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's own messages quote the request line; log the status code only."""
        code = next((arg for arg in args if isinstance(arg, int)), None)
        if code is not None:
            _log(f"{self.command or '-'} - {code} (answered by http.server)")


def serve(
    *,
    host: str,
    port: int,
    endpoint_url: str | None,
    table_name: str,
    seed_count: int,
    log_level: str = DEFAULT_LOG_LEVEL,
) -> int:
    """Serve the API on http://host:port until Ctrl-C or SIGTERM; 0 then, 1 when it cannot start."""
    try:
        template_path = find_template()
        template = load_template(template_path)
        routes = api_routes(template, template_path.parent)
    except TemplateError as error:
        return _fail(str(error))
    try:
        server = LocalApiServer((host, port), _stage(template))
    except OSError as error:
        return _fail(f"cannot listen on {host}:{port}: {error.strerror or type(error).__name__}")
    base_url = f"http://{host}:{server.server_port}"
    with server, _stop_on_signals(), ExitStack() as stack:
        try:
            if endpoint_url is None:
                endpoint_url = stack.enter_context(dynamodb_local())
                print(f"DynamoDB Local (in memory) on {endpoint_url}", flush=True)
                client = tools_client(endpoint_url)
                create_table(client, table_name, template_path)
                _seed(client, table_name, seed_count, base_url)
            else:
                require_table(tools_client(endpoint_url), table_name)
            environment = function_environment(
                template,
                endpoint_url=endpoint_url,
                table_name=table_name,
                base_url=None if host in _WILDCARD_HOSTS else base_url,
                log_level=log_level,
            )
            server.routes = local_routes(routes, environment)
            print(f"Serving FHIR Encounter API on {base_url}", flush=True)
            server.serve_forever()
        except KeyboardInterrupt:
            print("Stopping", flush=True)
        except Exception as error:
            message = error_message(error, endpoint_url=endpoint_url, table=table_name)
            if message is None:
                raise
            return _fail(message)
    return 0


def function_environment(
    template: dict[str, Any],
    *,
    endpoint_url: str,
    table_name: str,
    base_url: str | None,
    log_level: str = DEFAULT_LOG_LEVEL,
) -> dict[str, str]:
    """The functions' environment as the template gives it, pointed at the local table. Without a
    usable base URL (a wildcard host), links follow the request's Host header."""
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    environment = {name: value for name, value in variables.items() if isinstance(value, str) and value}
    environment.update(
        {
            "ENCOUNTER_TABLE": table_name,
            "DYNAMODB_ENDPOINT_URL": endpoint_url,
            "CURSOR_SECRET": secrets.token_urlsafe(32),
            "POWERTOOLS_LOG_LEVEL": log_level,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    if base_url:
        environment["FHIR_BASE_URL"] = base_url
    return environment


@contextmanager
def _function_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """The process environment holds exactly the function's settings while its module initialises
    (a setting it lacks is absent, not inherited), and is restored afterwards."""
    names = set(environment) | set(ENVIRONMENT.values())
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(environment)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _seed(client: DynamoDBClient, table_name: str, count: int, base_url: str) -> None:
    resources = list(synthetic_encounters(count, seed=SEED))
    report = load_resources(
        resources, EncounterWriter(client, table_name), source="seed", on_reject=print_rejection
    )
    patients = {_patient_id(resource) for resource in resources} - {None}
    example = SEED_PATIENT if SEED_PATIENT in patients else min(cast(set[str], patients), default=None)
    note = f" (example patient: {example})" if example else ""
    print(f"Seeded {report.loaded} synthetic Encounters into table {table_name}{note}", flush=True)
    if example:
        print(f"Try: curl '{base_url}/Encounter?patient={example}&date=ge2020-01-01'", flush=True)


def _patient_id(resource: dict[str, Any]) -> str | None:
    try:
        kind, patient_id = split_reference(str((resource.get("subject") or {}).get("reference", "")))
    except ReferenceValueError:
        return None
    return patient_id if kind == "Patient" else None


def _stage(template: dict[str, Any]) -> str:
    stage = template.get("Parameters", {}).get("Stage", {}).get("Default")
    return stage if isinstance(stage, str) and stage else DEFAULT_STAGE


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise KeyboardInterrupt once; later ones are ignored while it stops."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _fail(message: str) -> int:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)
    return 1


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
