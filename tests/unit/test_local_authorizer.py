"""``serve --auth smart`` without a database: the dev issuer (its key file, kid and tokens), the
real authorizer function composed as serve composes it, and API Gateway's reading of its answer
(401 with WWW-Authenticate, 503 with Retry-After, the context handed to the function), over
HTTP through the local server too; and ``fhir-encounter token``."""

from __future__ import annotations

import json
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fhir_encounter.access import AuthMode
from fhir_encounter.cors import CorsPolicy
from fhir_encounter.errors import FhirError
from fhir_encounter_tools.devserver.authorizer import (
    AUTHORIZER_CODE_DIR,
    AUTHORIZER_FUNCTION,
    AUTHORIZER_HANDLER,
    AuthorizerFailedError,
    LocalAuthorizer,
    authorizer_environment,
    function_auth_environment,
    startup_lines,
)
from fhir_encounter_tools.devserver.events import rest_api_event
from fhir_encounter_tools.devserver.issuer import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    DevIssuer,
    IssuerKeyError,
    thumbprint,
)
from fhir_encounter_tools.devserver.server import LocalApiServer, LocalRoute, PathTemplate, load_module
from fhir_encounter_tools.template import Route, load_template
from tests.support import ROOT, run_cli

APP_ORIGIN = "https://app.example.org"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
READ = Route("GET", "/Encounter/{id}", "ReadEncounterFunction", Path("functions/read"), "app.lambda_handler")
METADATA = Route(
    "GET", "/metadata", "CapabilityStatementFunction", Path("functions/cap"), "app.lambda_handler"
)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.from_key_file(tmp_path_factory.mktemp("issuer") / "key.pem")


def authorizer_app(port: int = 3000) -> ModuleType:
    """functions/authorizer/app.py, loaded from its file as serve loads it."""
    route = Route("", "", AUTHORIZER_FUNCTION, ROOT / AUTHORIZER_CODE_DIR, AUTHORIZER_HANDLER)
    return load_module(route, authorizer_environment(port))


def dev_authorizer(issuer: DevIssuer) -> LocalAuthorizer:
    return LocalAuthorizer.for_dev_issuer(authorizer_app(), issuer, authorizer_environment(3000))


def read_event(authorization: str | None = None, query: str = "") -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    query_values = dict(item.split("=", 1) for item in query.split("&") if item)
    return rest_api_event(
        method="GET",
        path="/Encounter/enc-1",
        resource="/Encounter/{id}",
        path_parameters={"id": "enc-1"},
        query={name: [value] for name, value in query_values.items()},
        headers=headers,
        stage_in_path=False,
    )


class Recorder:
    """An authorizer handler that records its events and answers (or raises) what it was given."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def answer(effect: str, resource: Any = "arn:aws:execute-api:*", context: Any = None) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
    return {"principalId": "user-1", "policyDocument": {"Statement": [statement]}, "context": context or {}}


def refused(error: FhirError | None) -> tuple[int, str, dict[str, str]]:
    assert error is not None
    return error.status, error.code, error.headers()


def test_serve_loads_the_authorizer_that_the_template_deploys() -> None:
    properties = load_template(ROOT / "template.yaml")["Resources"][AUTHORIZER_FUNCTION]["Properties"]
    assert Path(properties["CodeUri"]) == Path(AUTHORIZER_CODE_DIR)
    assert properties["Handler"] == AUTHORIZER_HANDLER


# ---- the dev issuer ------------------------------------------------------------------------------


def test_the_key_file_is_created_once_as_pkcs8_pem_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "dev.pem"
    first = DevIssuer.from_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, not encrypted
    assert serialization.load_pem_private_key(text.encode(), password=None).key_size == 2048  # type: ignore[union-attr]
    again = DevIssuer.from_key_file(path)
    assert (again.kid, path.read_text()) == (first.kid, text)
    assert [entry.name for entry in tmp_path.iterdir()] == ["dev.pem"]  # no draft left beside it


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dev.pem"
    DevIssuer.from_key_file(path)
    path.chmod(0o644)
    with pytest.raises(IssuerKeyError, match="chmod 600"):
        DevIssuer.from_key_file(path)


@pytest.mark.parametrize("content", [b"not a key", "ec"], ids=["garbage", "ec-key"])
def test_a_key_file_without_an_rsa_private_key_is_refused(tmp_path: Path, content: Any) -> None:
    path = tmp_path / "dev.pem"
    if content == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
        content = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(IssuerKeyError):
        DevIssuer.from_key_file(path)


def test_the_kid_is_the_rfc_7638_thumbprint() -> None:
    """RFC 7638 section 3.1's example key and its thumbprint."""
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJE"
            "CPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
            "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
            "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_token_carries_the_issuer_audience_kid_and_the_claims_asked_for(issuer: DevIssuer) -> None:
    token = issuer.token(
        scope="patient/Encounter.rs", patient="p-1", expires_in=120, client_id="c", subject="s"
    )
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}
    key = jwt.PyJWK(issuer.jwks()["keys"][0])
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=DEV_AUDIENCE, issuer=DEV_ISSUER)
    assert {name: claims[name] for name in ("sub", "client_id", "scope", "patient")} == {
        "sub": "s",
        "client_id": "c",
        "scope": "patient/Encounter.rs",
        "patient": "p-1",
    }
    assert claims["exp"] - claims["iat"] == 120


# ---- the authorizer as serve composes it ---------------------------------------------------------


def test_a_dev_token_is_allowed_and_its_claims_reach_the_function(issuer: DevIssuer) -> None:
    now = int(time.time())
    event = read_event(f"Bearer {issuer.token(scope='patient/Encounter.rs', patient='p-1', now=now)}")
    assert dev_authorizer(issuer).refusal("/Encounter/{id}", event) is None
    assert event["requestContext"]["authorizer"] == {
        "sub": "dev-user",
        "client_id": "fhir-encounter-dev",
        "scope": "patient/Encounter.rs",
        "exp": str(now + 3600),  # API Gateway hands context numbers on as text
        "patient": "p-1",
        "principalId": "dev-user",
    }


def test_without_a_token_it_is_401_with_a_bare_bearer_challenge(issuer: DevIssuer) -> None:
    event = read_event()
    assert refused(dev_authorizer(issuer).refusal("/Encounter/{id}", event)) == (
        401,
        "login",
        {"WWW-Authenticate": "Bearer"},
    )
    assert "authorizer" not in event["requestContext"]


@pytest.mark.parametrize(
    "token",
    [
        "not.a.token",
        "expired",
        "other-issuer-key",
        "wrong-audience",
    ],
)
def test_a_refused_token_is_401_invalid_token(issuer: DevIssuer, tmp_path: Path, token: str) -> None:
    match token:
        case "expired":
            token = issuer.token(scope="user/Encounter.rs", now=time.time() - 7200, expires_in=60)
        case "other-issuer-key":
            token = DevIssuer.from_key_file(tmp_path / "other.pem").token(scope="user/Encounter.rs")
        case "wrong-audience":
            token = jwt.encode(
                {"iss": DEV_ISSUER, "aud": "urn:other", "sub": "s", "exp": int(time.time()) + 60},
                issuer.private_key,
                algorithm="RS256",
                headers={"kid": issuer.kid},
            )
    event = read_event(f"Bearer {token}")
    assert refused(dev_authorizer(issuer).refusal("/Encounter/{id}", event)) == (
        401,
        "login",
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )
    assert "authorizer" not in event["requestContext"]


def test_a_token_in_the_query_string_is_left_to_the_functions(issuer: DevIssuer) -> None:
    """The authorizer decides from the Authorization header alone, as API Gateway caches it;
    the read and search functions refuse ?access_token= themselves (401)."""
    token = issuer.token(scope="user/Encounter.rs")
    event = read_event(f"Bearer {token}", query=f"access_token={token}")
    assert dev_authorizer(issuer).refusal("/Encounter/{id}", event) is None
    assert event["requestContext"]["authorizer"]["scope"] == "user/Encounter.rs"


def test_keys_that_cannot_be_fetched_are_503_with_retry_after_never_an_allow(issuer: DevIssuer) -> None:
    app = authorizer_app()

    def unreachable(url: str) -> Any:
        raise app.KeysUnavailableError(f"cannot fetch {url}: URLError")

    verifier = app.TokenVerifier.from_environment(authorizer_environment(3000), fetch=unreachable)
    authorizer = LocalAuthorizer(app.create_handler(verifier))
    event = read_event(f"Bearer {issuer.token(scope='user/Encounter.rs')}")
    error = authorizer.refusal("/Encounter/{id}", event)
    assert isinstance(error, AuthorizerFailedError)
    assert refused(error) == (503, "transient", {"Retry-After": "2"})
    assert "authorizer" not in event["requestContext"]


@pytest.mark.parametrize("path", ["/metadata", "/.well-known/smart-configuration", "/.well-known/jwks.json"])
def test_public_routes_skip_the_authorizer(path: str) -> None:
    recorder = Recorder(RuntimeError("must not be called"))
    assert LocalAuthorizer(recorder).refusal(path, read_event()) is None
    assert recorder.events == []


# ---- API Gateway's reading of an authorizer's answer ---------------------------------------------


def test_the_authorizer_gets_a_request_event_with_the_method_arn() -> None:
    recorder = Recorder(answer("Allow"))
    event = read_event("Bearer abc", query="_count=5")
    LocalAuthorizer(recorder).refusal("/Encounter/{id}", event)
    [request] = recorder.events
    assert request["type"] == "REQUEST"
    assert request["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/Encounter/enc-1"
    assert request["headers"]["Authorization"] == "Bearer abc"
    assert request["multiValueQueryStringParameters"] == {"_count": ["5"]}
    assert (request["resource"], request["pathParameters"]) == ("/Encounter/{id}", {"id": "enc-1"})


@pytest.mark.parametrize(
    ("result", "allowed"),
    [
        (answer("Allow", "arn:aws:execute-api:us-east-1:123456789012:local/v1/*/*"), True),
        (answer("Allow", ["arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/Encounter/*"]), True),
        (answer("Allow", "arn:aws:execute-api:us-east-1:123456789012:local/v2/*/*"), False),  # other stage
        (answer("Allow", "arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/metadata"), False),
        (answer("Deny"), False),
        (
            {
                "principalId": "u",
                "policyDocument": {
                    "Statement": [
                        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"},
                        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"},
                    ]
                },
            },
            False,
        ),  # an explicit Deny wins
        (
            {
                "principalId": "u",
                "policyDocument": {
                    "Statement": {"Action": "s3:GetObject", "Effect": "Allow", "Resource": "*"}
                },
            },
            False,
        ),
    ],
    ids=["stage", "path-prefix", "other-stage", "other-path", "deny", "deny-wins", "other-action"],
)
def test_a_policy_allows_only_what_covers_the_method_arn(result: dict[str, Any], allowed: bool) -> None:
    error = LocalAuthorizer(Recorder(result)).refusal("/Encounter/{id}", read_event("Bearer abc"))
    assert (error is None) is allowed
    if not allowed:
        assert refused(error)[0] == 401


@pytest.mark.parametrize(
    "result",
    [
        None,
        {"policyDocument": {"Statement": []}},
        {"principalId": "u"},
        answer("Allow", context={"nested": {"a": 1}}),
        {"principalId": 7, "policyDocument": answer("Allow")["policyDocument"]},
    ],
    ids=["none", "no-principal", "no-policy", "nested-context", "principal-not-text"],
)
def test_an_answer_api_gateway_cannot_use_is_503(result: Any) -> None:
    error = LocalAuthorizer(Recorder(result)).refusal("/Encounter/{id}", read_event("Bearer abc"))
    assert refused(error)[0] == 503


def test_context_values_reach_the_function_as_strings() -> None:
    event = read_event("Bearer abc")
    LocalAuthorizer(Recorder(answer("Allow", context={"n": 3, "flag": True, "s": "x"}))).refusal(
        "/Encounter/{id}", event
    )
    assert event["requestContext"]["authorizer"] == {
        "n": "3",
        "flag": "true",
        "s": "x",
        "principalId": "user-1",
    }


def test_only_the_exact_unauthorized_exception_is_a_401() -> None:
    assert refused(LocalAuthorizer(Recorder(Exception("Unauthorized"))).refusal("/x", read_event()))[0] == 401
    assert (
        refused(LocalAuthorizer(Recorder(RuntimeError("Unauthorized"))).refusal("/x", read_event()))[0] == 503
    )
    assert refused(LocalAuthorizer(Recorder(Exception("unauthorized"))).refusal("/x", read_event()))[0] == 503


# ---- through the local server over HTTP ------------------------------------------------------------


class Function:
    """A stand-in function that records what it was invoked with."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return {"statusCode": 200, "body": "{}"}


@pytest.fixture
def function() -> Function:
    return Function()


@pytest.fixture
def serving(function: Function, issuer: DevIssuer) -> Iterator[LocalApiServer]:
    running = LocalApiServer(("127.0.0.1", 0), "v1")
    running.routes = [
        LocalRoute(route, PathTemplate.parse(route.path), function) for route in (READ, METADATA)
    ]
    running.authorizer = dev_authorizer(issuer)
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=5)


def get(server: LocalApiServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}{path}", headers=headers or {})
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, json.loads(error.read())


def test_over_http_no_token_is_a_401_operation_outcome_and_the_function_never_runs(
    serving: LocalApiServer, function: Function
) -> None:
    status, headers, body = get(serving, "/Encounter/enc-1")
    assert (status, headers["WWW-Authenticate"], body["resourceType"]) == (401, "Bearer", "OperationOutcome")
    assert headers["Content-Type"].startswith("application/fhir+json")
    assert body["issue"][0]["code"] == "login"
    assert function.events == []


def test_over_http_a_bad_token_is_401_invalid_token(serving: LocalApiServer, function: Function) -> None:
    status, headers, body = get(serving, "/Encounter/enc-1", {"Authorization": "Bearer e30.e30.e30"})
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer error="invalid_token"')
    assert body["resourceType"] == "OperationOutcome"
    assert function.events == []


@pytest.mark.parametrize(
    ("authorization", "challenge"), [(None, "Bearer"), ("Bearer e30.e30.e30", 'Bearer error="invalid_token"')]
)
def test_over_http_a_401_lets_a_browser_app_of_an_allowed_origin_read_its_challenge(
    serving: LocalApiServer, authorization: str | None, challenge: str
) -> None:
    serving.cors = CorsPolicy.parse(APP_ORIGIN)
    headers = {"Origin": APP_ORIGIN, **({"Authorization": authorization} if authorization else {})}
    status, answered, _ = get(serving, "/Encounter/enc-1", headers)
    assert (status, answered["WWW-Authenticate"]) == (401, challenge)
    assert answered["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert answered["Access-Control-Expose-Headers"] == "WWW-Authenticate"
    assert (answered["Cache-Control"], answered["X-Content-Type-Options"]) == ("no-store", "nosniff")


def test_over_http_an_allowed_token_reaches_the_function_with_its_context(
    serving: LocalApiServer, function: Function, issuer: DevIssuer
) -> None:
    token = issuer.token(scope="user/Encounter.rs", subject="clinician-9")
    status, _, _ = get(serving, "/Encounter/enc-1", {"Authorization": f"Bearer {token}"})
    assert status == 200
    [event] = function.events
    assert event["requestContext"]["authorizer"]["sub"] == "clinician-9"
    assert event["requestContext"]["authorizer"]["principalId"] == "clinician-9"


def test_over_http_metadata_needs_no_token(serving: LocalApiServer, function: Function) -> None:
    assert get(serving, "/metadata")[0] == 200
    assert "authorizer" not in function.events[0]["requestContext"]


def test_over_http_an_authorizer_failure_is_503_with_retry_after(
    serving: LocalApiServer, function: Function, issuer: DevIssuer
) -> None:
    serving.authorizer = LocalAuthorizer(Recorder(RuntimeError("cannot fetch the keys")))
    token = issuer.token(scope="user/Encounter.rs")
    status, headers, body = get(serving, "/Encounter/enc-1", {"Authorization": f"Bearer {token}"})
    assert (status, headers["Retry-After"], body["issue"][0]["code"]) == (503, "2", "transient")
    assert function.events == []


# ---- what serve tells the functions and the person who started it -------------------------------


def test_smart_mode_tells_the_functions_the_issuer_and_its_local_endpoints() -> None:
    assert function_auth_environment(AuthMode.SMART, "http://127.0.0.1:3000") == {
        "AUTH_MODE": "smart",
        "OIDC_ISSUER": DEV_ISSUER,
        "SMART_AUTHORIZATION_ENDPOINT": "http://127.0.0.1:3000/dev-issuer/authorize",
        "SMART_TOKEN_ENDPOINT": "http://127.0.0.1:3000/dev-issuer/token",
        "JWKS_URL": "http://127.0.0.1:3000/.well-known/jwks.json",
    }
    assert function_auth_environment(AuthMode.NONE, "http://127.0.0.1:3000") == {"AUTH_MODE": "none"}


def test_open_mode_says_so_and_how_to_try_smart() -> None:
    lines = startup_lines(
        AuthMode.NONE, program="fhir-encounter", base_url="http://127.0.0.1:3000", key_file=None
    )
    assert lines == [
        "Authorization: none (--auth none): every request is served, without a token",
        "Try SMART locally: fhir-encounter serve --auth smart --dev-issuer-key .dev-issuer-key.pem",
        '  then: curl -H "Authorization: Bearer $(fhir-encounter token --dev-issuer-key .dev-issuer-key.pem '
        "--patient patient-0001 --scope 'patient/Encounter.rs')\" 'http://127.0.0.1:3000/Encounter'",
    ]


# ---- fhir-encounter token ------------------------------------------------------------------------


def test_the_token_command_prints_only_a_token_that_the_authorizer_allows(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    run = run_cli(
        "token", "--dev-issuer-key", str(key), "--scope", "patient/Encounter.rs", "--patient", "pat-1",
        "--expires-in", "90", "--client-id", "app-9", "--subject", "sub-9", "--fhir-user", "Patient/pat-1",
    )  # fmt: skip
    assert run.status == 0, run.stderr
    token = run.stdout.removesuffix("\n")
    assert run.stdout.count("\n") == 1
    assert len(token.split(".")) == 3
    assert "created the dev issuer key" in run.stderr
    event = read_event(f"Bearer {token}")
    assert dev_authorizer(DevIssuer.from_key_file(key)).refusal("/Encounter/{id}", event) is None
    context = event["requestContext"]["authorizer"]
    assert abs(int(context.pop("exp")) - (time.time() + 90)) < 60
    assert context == {
        "sub": "sub-9",
        "client_id": "app-9",
        "scope": "patient/Encounter.rs",
        "patient": "pat-1",
        "fhirUser": "Patient/pat-1",
        "principalId": "sub-9",
    }


@pytest.mark.parametrize(
    "arguments",
    [
        ["--scope", "user/Encounter.rs"],  # no key
        ["--dev-issuer-key", "k.pem"],  # no scope
        ["--dev-issuer-key", "k.pem", "--scope", "x", "--patient", "not an id"],
        ["--dev-issuer-key", "k.pem", "--scope", "x", "--expires-in", "0"],
        ["--dev-issuer-key", "k.pem", "--scope", "x", "--expires-in", "86401"],
        ["--dev-issuer-key", "k.pem", "--scope", " "],
        ["--dev-issuer-key", "k.pem", "--scope", "x", "--fhir-user", " "],
    ],
    ids=[
        "no-key",
        "no-scope",
        "bad-patient",
        "zero-lifetime",
        "over-a-day",
        "blank-scope",
        "blank-fhir-user",
    ],
)
def test_the_token_command_rejects_bad_arguments_with_nothing_on_stdout(arguments: list[str]) -> None:
    run = run_cli("token", *arguments)
    assert (run.status, run.stdout) == (2, "")


def test_the_token_command_refuses_a_key_others_may_read(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    DevIssuer.from_key_file(key)
    key.chmod(0o640)
    run = run_cli("token", "--dev-issuer-key", str(key), "--scope", "user/Encounter.rs")
    assert (run.status, run.stdout) == (1, "")
    assert "chmod 600" in run.stderr


@pytest.mark.parametrize(
    "arguments",
    [["--auth", "smart"], ["--dev-issuer-key", "k.pem"], ["--auth", "iam", "--dev-issuer-key", "k.pem"]],
    ids=["smart-without-key", "key-without-smart", "iam"],
)
def test_serve_needs_the_key_with_smart_and_only_then(arguments: list[str]) -> None:
    assert run_cli("serve", *arguments).status == 2
