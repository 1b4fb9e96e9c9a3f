"""``fhir-encounter serve``: a local API Gateway in front of the real handlers, so that `make run`
behaves as the deployed API does without Docker: routes from template.yaml, proxy events as API
Gateway builds them, every answer (its own errors included) an OperationOutcome, and DynamoDB
Local started, seeded and stopped with it. docs/running-locally.md says what it does."""

from __future__ import annotations

import base64
import binascii
import email.parser
import importlib.util
import io
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from fhir_encounter.access import AuthMode
from fhir_encounter.config import ENVIRONMENT
from fhir_encounter.cors import ANY_ORIGIN, CorsPolicy
from fhir_encounter.errors import (
    CONTENT_TYPE,
    FhirError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    error_body,
)
from fhir_encounter.gateway import COMMON_HEADERS
from fhir_encounter.references import ReferenceValueError, split_reference
from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.dynamodb import LOCAL_REGION
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.devserver.authorizer import (
    AUTHORIZER_CODE_DIR,
    AUTHORIZER_FUNCTION,
    AUTHORIZER_HANDLER,
    LocalAuthorizer,
    authorizer_environment,
    dev_issuer_routes,
    function_auth_environment,
    startup_lines,
)
from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
from fhir_encounter_tools.devserver.issuer import DevIssuer, IssuerKeyError
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
MAX_LINE_BYTES = 65536  # http.server's limit on the request line and on each header line
MAX_HEADERS = 100  # http.client's: http.server answers 431 above it
REQUEST_TIMEOUT_SECONDS = 10.0
LINGER_SECONDS = 1.0  # after an error, how long the rest of a request is read before closing
LINGER_BYTES = 1024 * 1024
DEFAULT_LOG_LEVEL = "WARNING"  # the server prints its own line per request
_WILDCARD_HOSTS = ("", "0.0.0.0")  # noqa: S104 (only compared with, never bound here)
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_NO_BODY = frozenset({204, 304})
_SEGMENT_PARAMETER = re.compile(r"\{(\w+)(\+?)\}")
_SHOWN = 200


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


class RequestTimeoutError(FhirError):
    status = 408
    code = "timeout"


class RequestLineTooLongError(FhirError):
    status = 414
    code = "too-long"


class HeadersTooLargeError(FhirError):
    status = 431
    code = "too-long"


class MethodNotImplementedError(FhirError):
    status = 501
    code = "not-supported"


class VersionNotSupportedError(FhirError):
    status = 505
    code = "not-supported"


def protocol_error(status: int, method: str, message: str | None = None) -> FhirError:
    """What http.server rejects by status (``send_error``), as a FHIR error with its own text: the
    request line, its method and its headers are never echoed beyond ``method``, shortened."""
    match status:
        case 408:
            return RequestTimeoutError("The request did not arrive in time; send it again")
        case 414:
            return RequestLineTooLongError(f"The request line is over {MAX_LINE_BYTES // 1024} KB")
        case 431 if message is not None and "too many" in message.lower():
            return HeadersTooLargeError(f"More than {MAX_HEADERS} request headers")
        case 431:
            return HeadersTooLargeError(f"A request header line is over {MAX_LINE_BYTES // 1024} KB")
        case 501:
            return MethodNotImplementedError(
                f"Method {_shown(method, 32)} is not supported; this API answers GET and HEAD"
            )
        case 505:
            return VersionNotSupportedError("The HTTP version is not supported; use HTTP/1.1")
        case _ if status < 500:
            return InvalidRequestError("The request is not valid HTTP")
        case _:
            return InternalError()


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A route's path such as ``/Encounter/{id}``: ``{name}`` is one segment, ``{name+}`` the rest."""

    segments: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> PathTemplate:
        return cls(tuple(path.removeprefix("/").split("/")))

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The parameters when the decoded ``segments`` fit this template, else None."""
        parameters: dict[str, str] = {}
        for index, part in enumerate(self.segments):
            parameter = _SEGMENT_PARAMETER.fullmatch(part)
            if parameter is not None and parameter[2]:  # {name+}: the rest, not empty
                rest = "/".join(segments[index:])
                return {**parameters, parameter[1]: rest} if rest else None
            value = segments[index] if index < len(segments) else ""
            if (parameter is None and value != part) or (parameter is not None and not value):
                return None
            if parameter is not None:
                parameters[parameter[1]] = value
        return parameters if len(segments) == len(self.segments) else None


@dataclass(frozen=True, slots=True)
class LocalRoute:
    route: Route
    template: PathTemplate
    handler: Handler


def decode_path(path: str) -> tuple[str, ...] | None:
    """The segments of a request path, each percent-decoded once; None unless it starts with /."""
    if not path.startswith("/"):
        return None
    return tuple(unquote(segment, errors="replace") for segment in path[1:].split("/"))


def load_module(route: Route, environment: Mapping[str, str] | None = None) -> ModuleType:
    """The module that ``route.handler`` (``module.function``) names in its code dir, imported
    (and so initialised) under the function's ``environment``, as Lambda does."""
    module_name = route.handler.rpartition(".")[0]
    path = route.code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"{route.function}_{module_name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise TemplateError(f"{route.function}: handler file {path} not found")
    module = importlib.util.module_from_spec(spec)
    with _function_environment(environment or {}):
        spec.loader.exec_module(module)
    return module


def load_handler(route: Route, environment: Mapping[str, str] | None = None) -> Handler:
    """The ``lambda_handler`` that ``route.handler`` (``module.function``) names, loaded by
    ``load_module``."""
    module, function_name = load_module(route, environment), route.handler.rpartition(".")[2]
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise TemplateError(f"{route.function}: {module.__file__} has no function {function_name}")
    return cast(Handler, handler)


def local_routes(routes: list[Route], environment: Mapping[str, str] | None = None) -> list[LocalRoute]:
    """Every route with its handler (one import per function), literal paths before parameters."""
    handlers: dict[tuple[str, str], Handler] = {}
    served = []
    for route in sorted(routes, key=lambda route: route.path.count("{")):
        key = (str(route.code_dir), route.handler)
        if key not in handlers:
            handlers[key] = load_handler(route, environment)
        served.append(LocalRoute(route, PathTemplate.parse(route.path), handlers[key]))
    return served


def match_route(routes: list[LocalRoute], method: str, path: str) -> tuple[LocalRoute, dict[str, str]]:
    """The route for ``method path`` (the path as sent, decoded here once) and its path
    parameters; NotFoundError or MethodNotAllowedError when there is none. As API Gateway, the
    path's resource is chosen first (a literal segment before a parameter: ``/Encounter/_search``
    before ``/Encounter/{id}``), then the method among that resource's."""
    segments = decode_path(path)
    allowed = []
    resource = None
    for candidate in routes if segments is not None else []:
        parameters = candidate.template.match(segments or ())
        if parameters is None or resource not in (None, candidate.route.path):
            continue
        resource = candidate.route.path
        if candidate.route.method in (method, "ANY"):
            return candidate, parameters
        allowed.append(candidate.route.method)
    if allowed:  # HEAD is GET without a body; OPTIONS: the CORS preflight routes
        order = ["GET", "HEAD", "POST", "OPTIONS"]
        methods = set(allowed) | ({"HEAD"} if "GET" in allowed else set())
        raise MethodNotAllowedError(method, [m for m in order if m in methods] + sorted(methods - set(order)))
    raise NotFoundError(f"No route for {method} {_shown(path)}")


def error_result(error: FhirError, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An error as a Lambda proxy result, so that every answer is written the same way: with the
    functions' security headers, and ``headers`` (CORS). A 401's challenge is exposed to browser
    apps when CORS is on, as template.yaml's 401 gateway responses expose it."""
    added = {**COMMON_HEADERS, **error.headers(), **(headers or {})}
    if headers and "WWW-Authenticate" in added:
        added["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    return {
        "statusCode": error.status,
        "multiValueHeaders": {"Content-Type": [CONTENT_TYPE]} | {k: [v] for k, v in added.items()},
        "body": error_body(error),
        "isBase64Encoded": False,
    }


class LocalApiServer(ThreadingHTTPServer):
    request_timeout: float = REQUEST_TIMEOUT_SECONDS  # each socket read or write; tests lower it

    def __init__(self, address: tuple[str, int], stage: str) -> None:
        super().__init__(address, _RequestHandler)
        self.stage = stage
        self.routes: list[LocalRoute] = []
        self.authorizer: LocalAuthorizer | None = None  # --auth smart: API Gateway's authorizer step
        self.cors = CorsPolicy()  # --cors-origin: the functions' policy, and the gateway responses'
        self._invocations = threading.Lock()

    def gateway_cors_headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of the server's own errors, as template.yaml's gateway responses give
        them: they carry no data, so they echo any Origin (a gateway response cannot filter)."""
        if not self.cors.enabled:
            return {}
        if self.cors.any_origin:
            return {"Access-Control-Allow-Origin": ANY_ORIGIN}
        return {"Vary": "Origin", **({"Access-Control-Allow-Origin": origin} if origin else {})}

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

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def handle_one_request(self) -> None:
        """http.server's, with FHIR answers for what it rejects and a bounded wait for a request."""
        self.command = self.request_version = self.requestline = ""
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE_BYTES + 1)
        except TimeoutError:  # no request line in time (or an idle connection): close it
            self.close_connection = True
            return
        if len(self.raw_requestline) > MAX_LINE_BYTES:
            self.send_error(414)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        try:
            if not self.parse_request():  # it has answered (send_error)
                return
        except TimeoutError:  # the headers did not arrive in time
            self.send_error(408)
            return
        method = getattr(self, f"do_{self.command}", None)
        if method is None:
            self.send_error(501)
            return
        try:
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def parse_request(self) -> bool:
        """http.server's, with the header lines read here under exact limits: more than
        ``MAX_HEADERS`` of them (http.client would count the blank line that ends them too) or one
        over ``MAX_LINE_BYTES`` is a 431."""
        if len(self.raw_requestline.split()) < 3:  # HTTP/0.9 or malformed: http.server reads no headers
            return super().parse_request()
        lines: list[bytes] = []
        while (line := self.rfile.readline(MAX_LINE_BYTES + 1)) not in (b"\r\n", b"\n", b""):
            lines.append(line)
            if len(line) > MAX_LINE_BYTES:
                self.send_error(431, "Line too long")
                return False
            if len(lines) > MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
        rfile, self.rfile = self.rfile, io.BytesIO(b"\r\n")  # the request line is checked there
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = rfile
        # As http.client.parse_headers parses them; http.server's Connection and Expect handling
        # does nothing with protocol_version HTTP/1.0 (every connection closes after one request).
        text = b"".join(lines).decode("iso-8859-1")
        self.headers = email.parser.Parser(_class=self.MessageClass).parsestr(text)
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Everything http.server rejects itself is an OperationOutcome (not its HTML page), and
        the connection closes after the rest of the request has been read (a bounded amount)."""
        started = time.perf_counter()
        method = self.command or ""  # None when the request line could not be parsed
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # so that the answer has a status line and headers
            self.request_version = "HTTP/1.0"
        origin = self.headers.get("Origin") if getattr(self, "headers", None) is not None else None
        error = protocol_error(code, method, message)
        status = self._write(error_result(error, self.server.gateway_cors_headers(origin)), close=True)
        self._linger()
        _log(f"{_shown(method, 32) or '-'} - {status} {(time.perf_counter() - started) * 1000:.1f} ms")

    def do_GET(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = split.path or "/"
        method = "GET" if self.command == "HEAD" else self.command  # HEAD is GET without a body
        try:
            body = self._body()
            target, path_parameters = match_route(self.server.routes, method, path)
        except FhirError as error:
            result = error_result(error, self.server.gateway_cors_headers(self.headers.get("Origin")))
        else:
            decoded = "/" + "/".join(decode_path(path) or ())
            event = self._event(target, method, decoded, path_parameters, split.query, body)
            authorizer = self.server.authorizer
            refused = authorizer.refusal(target.route.path, event) if authorizer else None
            cors = self.server.gateway_cors_headers(self.headers.get("Origin"))
            result = error_result(refused, cors) if refused else self.server.invoke(target, event)
        status = self._write(result)
        _log(f"{self.command} {_shown(path)} {status} {(time.perf_counter() - started) * 1000:.1f} ms")

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
        try:
            return self.rfile.read(length) if length > 0 else None
        except TimeoutError:
            self.close_connection = True
            raise protocol_error(408, self.command) from None

    def _event(
        self,
        target: LocalRoute,
        method: str,
        path: str,
        path_parameters: dict[str, str],
        query: str,
        body: bytes | None,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers[name] = value  # API Gateway's headers keep the last value of a repeated one
            multi_headers.setdefault(name, []).append(value)
        event = rest_api_event(
            method=method,
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

    def _write(self, result: dict[str, Any], *, close: bool = False) -> int:
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
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            if status not in _NO_BODY and self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        return status

    def _linger(self) -> None:
        """Read what the client still sends (bounded in time and size) before the connection
        closes, so that closing with unread data does not reset it before the client has read the
        answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS)
            deadline, received = time.monotonic() + LINGER_SECONDS, 0
            while received < LINGER_BYTES and time.monotonic() < deadline:
                chunk = self.connection.recv(65536)
                if not chunk:
                    return
                received += len(chunk)
        except OSError:
            return

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """do_GET and send_error log each request themselves (http.server's line would carry the
        query string)."""

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's other messages quote the request line; they are not logged."""


def serve(
    *,
    host: str,
    port: int,
    endpoint_url: str | None,
    table_name: str,
    seed_count: int,
    log_level: str = DEFAULT_LOG_LEVEL,
    data_dir: Path | None = None,
    dynamodb_port: int | None = None,
    auth: AuthMode = AuthMode.NONE,
    dev_issuer_key: Path | None = None,
    cors: CorsPolicy | None = None,
) -> int:
    """Serve the API on http://host:port until Ctrl-C, SIGTERM or SIGHUP; 0 then, 1 when it cannot
    start. Without ``endpoint_url`` it runs DynamoDB Local, in ``data_dir`` (kept) or in memory,
    on ``dynamodb_port`` or a free port. ``auth`` smart puts the authorizer function in front of
    the functions, with tokens of the dev issuer whose key is ``dev_issuer_key``; none serves all.
    ``cors``: the origins whose browser apps may call it (CorsAllowedOrigins)."""
    try:
        template_path = find_template()
        template = load_template(template_path)
        routes = api_routes(template, template_path.parent)
    except TemplateError as error:
        return _fail(str(error))
    try:
        issuer = (
            DevIssuer.from_key_file(dev_issuer_key) if dev_issuer_key and auth is AuthMode.SMART else None
        )
    except IssuerKeyError as error:
        return _fail(str(error))
    if auth is AuthMode.SMART and issuer is None:
        return _fail("--auth smart needs --dev-issuer-key")
    try:
        server = LocalApiServer((host, port), _stage(template))
    except OSError as error:
        return _fail(f"cannot listen on {host}:{port}: {error.strerror or type(error).__name__}")
    base_url = f"http://{host}:{server.server_port}"
    server.cors = cors or CorsPolicy()
    with server, _stop_on_signals(), ExitStack() as stack:
        try:
            if endpoint_url is None:
                data_dir = data_dir.absolute() if data_dir is not None else None
                endpoint_url = stack.enter_context(dynamodb_local(dynamodb_port, data_dir))
                where = f"data in {data_dir}" if data_dir else "in memory: the data goes when serve stops"
                print(f"DynamoDB Local on {endpoint_url} ({where})", flush=True)
                _prepare_table(tools_client(endpoint_url), table_name, template_path, seed_count, base_url)
            else:
                require_table(tools_client(endpoint_url), table_name)
            print(f"Load your own Encounters: {load_command(endpoint_url, table_name)}", flush=True)
            environment = function_environment(
                template,
                endpoint_url=endpoint_url,
                table_name=table_name,
                base_url=None if host in _WILDCARD_HOSTS else base_url,
                log_level=log_level,
            )
            environment.update(function_auth_environment(auth, base_url))
            if server.cors.enabled:
                environment["CORS_ALLOWED_ORIGINS"] = ",".join(server.cors.origins)
                print(f"CORS: browser apps of {', '.join(server.cors.origins)} may call it", flush=True)
            server.routes = local_routes(routes, environment)
            if issuer is not None:
                _require_tokens(server, issuer, template_path.parent)
            options = (" --host " + shlex.quote(host) if host != "127.0.0.1" else "") + (
                f" --port {server.server_port}" if server.server_port != 3000 else ""
            )
            for line in startup_lines(
                auth, program=_program(), base_url=base_url, key_file=dev_issuer_key, serve_options=options
            ):
                print(line, flush=True)
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


def _require_tokens(server: LocalApiServer, issuer: DevIssuer, template_dir: Path) -> None:
    """``--auth smart``: the authorizer function (loaded from its file as the others are, and
    composed with a verifier for ``issuer``) before every route but the public ones, and the
    dev issuer's own routes (``GET /.well-known/jwks.json`` with its keys)."""
    code_dir = template_dir / AUTHORIZER_CODE_DIR
    environment = authorizer_environment(server.server_port)
    app = load_module(Route("", "", AUTHORIZER_FUNCTION, code_dir, AUTHORIZER_HANDLER), environment)
    server.authorizer = LocalAuthorizer.for_dev_issuer(app, issuer, environment)
    for method, path, handler in dev_issuer_routes(issuer):
        route = Route(method, path, "DevIssuer", code_dir, AUTHORIZER_HANDLER)
        server.routes.append(LocalRoute(route, PathTemplate.parse(path), handler))


def load_command(endpoint_url: str, table_name: str) -> str:
    """A ``fhir-encounter load`` command line for this endpoint and table, ready to paste into a
    shell in the current directory once PATH is replaced by a file or folder."""
    return (
        f"{_program()} load --endpoint-url {shlex.quote(endpoint_url)} --table {shlex.quote(table_name)} PATH"
    )


def _program() -> str:
    """How this shell would run the command: ``fhir-encounter`` when PATH finds this one, else
    the script next to this Python (``.venv/bin/fhir-encounter``), else ``python -m``."""
    script = Path(sys.executable).parent / PROGRAM
    if not script.is_file():
        return f"{shlex.quote(sys.executable)} -m fhir_encounter_tools"
    found = shutil.which(PROGRAM)
    if found is not None and Path(found).resolve() == script.resolve():
        return PROGRAM
    try:
        shown = script.absolute().relative_to(Path.cwd())
    except ValueError:
        shown = script.absolute()
    return shlex.quote(str(shown))


def _prepare_table(
    client: DynamoDBClient, table_name: str, template_path: Path, seed_count: int, base_url: str
) -> None:
    """Create the table (or keep the one a data directory holds) and seed it when it is empty."""
    if create_table(client, table_name, template_path):
        print(f"Created table {table_name}", flush=True)
    elif client.scan(TableName=table_name, Limit=1, Select="COUNT")["Count"]:
        print(f"Table {table_name} was there already, with data: kept as it is, not seeded", flush=True)
        return
    else:
        print(f"Table {table_name} was there already, empty: seeding it", flush=True)
    _seed(client, table_name, seed_count, base_url)


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
        resources,
        EncounterWriter(client, table_name, value_paths()),
        source="seed",
        on_reject=print_rejection,
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
    """SIGINT, SIGTERM and SIGHUP (a closed terminal) raise KeyboardInterrupt once; later ones are
    ignored while it stops."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    previous = {
        number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _shown(text: str, limit: int = _SHOWN) -> str:
    """``text`` cut to ``limit`` characters for a log line or an error text."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _fail(message: str) -> int:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)
    return 1


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
