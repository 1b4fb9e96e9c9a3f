"""The SMART authorizer function (functions/authorizer/app.py) with real keys and real signatures:
RSA and EC P-256 keys made here, tokens signed with PyJWT (or by hand where PyJWT refuses to make
the forgery), the JWKS handed in by a counting source, and over HTTP from a tiny server on
127.0.0.1. Every refusal fails closed: "Unauthorized", a Deny, or the RuntimeError that API
Gateway answers 503 for; never an Allow."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import threading
import time
import tomllib
import unittest.mock
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_encounter_tools.template import load_template
from tests.support import ROOT, load_function

ISSUER = "https://issuer.test/oauth2"
AUDIENCE = "urn:test:fhir-api"
ENVIRONMENT = {"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, "JWKS_URL": "https://issuer.test/jwks.json"}
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/GET/Encounter/enc-1"
STAGE_RESOURCE = "arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/*/*"


def load_authorizer() -> ModuleType:
    """The function's module, imported from its file under its environment (its composition root
    reads the environment; nothing is fetched at init)."""
    with unittest.mock.patch.dict("os.environ", ENVIRONMENT):
        return load_function("authorizer")


app = load_authorizer()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: Any, kid: str, **extra: str) -> dict[str, Any]:
    algorithm: Any = (
        jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    )
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", **extra}


JWKS = {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1"), public_jwk(P384_KEY, "ec-384")]}


class FromNow(int):
    """A time claim given as seconds from when the token is signed (not from collection time)."""


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-7",
        "client_id": "app-3",
        "scope": "launch/patient patient/Encounter.rs",
        "patient": "pat-1",
        "iat": now,
        "exp": now + 300,
    }
    values.update(
        {name: now + value if isinstance(value, FromNow) else value for name, value in changes.items()}
    )
    return {name: value for name, value in values.items() if value is not None}


def sign(key: Any = RSA_KEY, kid: str | None = "rsa-1", algorithm: str = "RS256", **changes: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


class Source:
    """A JWKS source that counts its fetches; ``fail`` makes it raise as an unreachable issuer."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document if document is not None else JWKS
        self.fetches = 0
        self.fail = False

    def __call__(self) -> Any:
        self.fetches += 1
        if self.fail:
            raise app.KeysUnavailableError("cannot fetch https://issuer.test/jwks.json: URLError")
        return json.loads(json.dumps(self.document))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(source: Source | None = None, clock: Clock | None = None) -> Any:
    keys = app.KeySet(source or Source(), clock=clock or Clock())
    return app.TokenVerifier(issuer=ISSUER, audiences=[AUDIENCE], keys=keys)


def event(authorization: str | None = None, query: dict[str, list[str]] | None = None) -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "resource": "/Encounter/{id}",
        "path": "/Encounter/enc-1",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in (query or {}).items()} or None,
        "multiValueQueryStringParameters": query,
        "requestContext": {"requestId": "req-1", "stage": "v1"},
    }


def authorize(token: str | None, handler: Any = None, **kwargs: Any) -> dict[str, Any]:
    handler = handler or app.create_handler(verifier())
    authorization = f"Bearer {token}" if token is not None else None
    result: dict[str, Any] = handler(event(authorization, **kwargs), None)
    return result


def assert_denied(result: dict[str, Any]) -> None:
    """A Deny for the whole stage, with the context the gateway response maps to invalid_token."""
    assert result["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": STAGE_RESOURCE}
    ]
    assert result["context"] == {"error": "invalid_token"}


# ---- accepted ---------------------------------------------------------------------------------


def test_an_rs256_token_is_allowed_on_the_whole_stage_with_its_claims_as_context() -> None:
    exp = int(time.time()) + 300
    result = authorize(sign(exp=exp))
    assert result == {
        "principalId": "user-7",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": STAGE_RESOURCE}],
        },
        "context": {
            "sub": "user-7",
            "client_id": "app-3",
            "scope": "launch/patient patient/Encounter.rs",
            "exp": exp,
            "patient": "pat-1",
        },
    }


def test_an_es256_token_is_allowed() -> None:
    result = authorize(sign(EC_KEY, "ec-1", "ES256"))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["principalId"] == "user-7"


def test_without_a_patient_claim_the_context_has_no_patient() -> None:
    exp = int(time.time()) + 300
    result = authorize(sign(patient=None, scope="user/Encounter.rs", exp=exp))
    assert result["context"] == {
        "sub": "user-7",
        "client_id": "app-3",
        "scope": "user/Encounter.rs",
        "exp": exp,
    }


@pytest.mark.parametrize(
    ("changes", "client_id", "scope"),
    [
        ({"client_id": None, "azp": "from-azp"}, "from-azp", "launch/patient patient/Encounter.rs"),
        ({"client_id": None, "cid": "from-cid"}, "from-cid", "launch/patient patient/Encounter.rs"),
        ({"client_id": None}, "", "launch/patient patient/Encounter.rs"),
        ({"scope": None, "scp": ["user/Encounter.rs", "openid"]}, "app-3", "user/Encounter.rs openid"),
        ({"scope": None, "scp": "system/Encounter.read"}, "app-3", "system/Encounter.read"),
        ({"scope": None}, "app-3", ""),
    ],
    ids=["azp", "cid", "no-client", "scp-list", "scp-string", "no-scope"],
)
def test_client_id_and_scope_come_from_the_claims_each_issuer_uses(
    changes: dict[str, Any], client_id: str, scope: str
) -> None:
    context = authorize(sign(**changes))["context"]
    assert (context["client_id"], context["scope"]) == (client_id, scope)


@pytest.mark.parametrize("patient", [123, "", ["pat-1"]], ids=["number", "empty", "list"])
def test_a_patient_claim_that_is_not_a_string_is_left_out(patient: Any) -> None:
    assert "patient" not in authorize(sign(patient=patient))["context"]


def test_an_audience_list_that_holds_ours_is_allowed() -> None:
    result = authorize(sign(aud=["urn:other", AUDIENCE]))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_without_aud_the_client_id_is_the_audience_as_in_cognito_access_tokens() -> None:
    cognito = app.TokenVerifier(issuer=ISSUER, audiences=["client-abc"], keys=app.KeySet(Source()))
    handler = app.create_handler(cognito)
    allowed = authorize(sign(aud=None, client_id="client-abc", token_use="access"), handler)
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert_denied(authorize(sign(aud=None, client_id="client-other"), handler))


@pytest.mark.parametrize("seconds", [-30, 30], ids=["expired-30s-ago", "valid-in-30s"])
def test_exp_and_nbf_within_the_60_second_leeway_are_allowed(seconds: int) -> None:
    now = int(time.time())
    token = sign(exp=now + seconds) if seconds < 0 else sign(nbf=now + seconds)
    assert authorize(token)["policyDocument"]["Statement"][0]["Effect"] == "Allow"


# ---- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token abc.def.ghi", 'Bearer "quoted"'],
    ids=["no-header", "empty", "basic", "bearer-alone", "bearer-space", "other-scheme", "not-b64token"],
)
def test_without_a_bearer_token_it_raises_unauthorized(authorization: str | None) -> None:
    handler = app.create_handler(verifier())
    with pytest.raises(Exception, match=r"^Unauthorized$") as raised:
        handler(event(authorization), None)
    assert type(raised.value) is Exception  # API Gateway answers 401 for exactly this


def test_two_authorization_headers_are_unauthorized() -> None:
    request = event(f"Bearer {sign()}")
    request["multiValueHeaders"]["Authorization"].append(f"Bearer {sign()}")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        app.create_handler(verifier())(request, None)


@pytest.mark.parametrize(
    "token",
    ["abc", "abc.def.ghi", "e30.e30.", b64(b"{")],
    ids=["one-part", "three-parts-not-json", "empty-objects", "broken-json"],
)
def test_a_malformed_token_is_denied(token: str) -> None:
    assert_denied(authorize(token))


def test_alg_none_is_denied_without_fetching_keys() -> None:
    source = Source()
    handler = app.create_handler(verifier(source))
    token = unsigned({"alg": "none", "kid": "rsa-1", "typ": "JWT"}, claims())
    assert_denied(authorize(token, handler))
    assert_denied(authorize(token + "c2ln", handler))
    assert source.fetches == 0


def test_hs256_signed_with_the_public_key_as_secret_is_denied() -> None:
    """The classic key-confusion forgery: HMAC with the RSA public key that anyone can fetch."""
    secret = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for kid in ("rsa-1", None):
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        signing_input = unsigned(header, claims()).rsplit(".", 1)[0]
        forged = f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"
        assert_denied(authorize(forged))


def test_a_token_signed_by_another_rsa_key_with_the_same_kid_is_denied() -> None:
    assert_denied(authorize(sign(OTHER_RSA_KEY, "rsa-1")))


@pytest.mark.parametrize(
    ("key", "kid", "algorithm"),
    [
        (EC_KEY, "rsa-1", "ES256"),
        (RSA_KEY, "ec-1", "RS256"),
        (P384_KEY, "ec-384", "ES384"),
        (RSA_KEY, "rsa-1", "PS256"),
    ],
    ids=["es256-on-an-rsa-kid", "rs256-on-an-ec-kid", "es384", "ps256"],
)
def test_an_algorithm_that_is_not_the_keys_or_not_allowed_is_denied(
    key: Any, kid: str, algorithm: str
) -> None:
    assert_denied(authorize(sign(key, kid, algorithm)))


def test_a_jwk_whose_alg_is_not_the_tokens_is_not_used() -> None:
    document = {"keys": [public_jwk(RSA_KEY, "rsa-1", alg="RS512")]}
    handler = app.create_handler(verifier(Source(document)))
    assert_denied(authorize(sign(), handler))


def test_a_jwk_for_encryption_is_not_used() -> None:
    document = {"keys": [public_jwk(RSA_KEY, "rsa-1", use="enc")]}
    assert_denied(authorize(sign(), app.create_handler(verifier(Source(document)))))


def test_a_token_signed_by_a_short_rsa_key_of_the_jwks_is_denied() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    handler = app.create_handler(verifier(Source({"keys": [public_jwk(short, "short")]})))
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT signs with it, and says so
        token = sign(short, "short")
    assert_denied(authorize(token, handler))


def test_a_token_without_kid_is_denied() -> None:
    assert_denied(authorize(sign(kid=None)))


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": FromNow(-61 - 30)},
        {"nbf": FromNow(61 + 30)},
        {"exp": None},
        {"iss": "https://issuer.test/other"},
        {"iss": None},
        {"aud": "urn:test:other-api"},
        {"aud": ["urn:a", "urn:b"]},
        {"aud": None},
        {"sub": None},
        {"sub": ""},
        {"token_use": "id"},
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "no-exp",
        "wrong-iss",
        "no-iss",
        "wrong-aud",
        "aud-list-without-ours",
        "no-aud-and-client-id-not-ours",
        "no-sub",
        "empty-sub",
        "id-token",
    ],
)
def test_a_token_whose_claims_fail_a_check_is_denied(changes: dict[str, Any]) -> None:
    assert_denied(authorize(sign(**changes)))


def test_a_token_in_the_query_string_alone_is_unauthorized() -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(None, query={"access_token": [sign()]})


@pytest.mark.parametrize(
    "query",
    [{"access_token": ["x"]}, {"access_token": [""]}, {"_count": ["5"], "access_token": ["a", "b"]}],
    ids=["token", "empty", "repeated"],
)
def test_the_decision_depends_on_the_authorization_header_alone(query: dict[str, list[str]]) -> None:
    """API Gateway caches the answer by the header (its identity source), for every route and
    query string: the query string must not change it. The functions refuse ?access_token=."""
    handler = app.create_handler(verifier())
    good, bad = sign(), sign(iss="https://issuer.test/other")
    assert authorize(good, handler, query=query) == authorize(good, handler)
    assert authorize(good, handler)["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert authorize(bad, handler, query=query) == authorize(bad, handler)
    assert_denied(authorize(bad, handler))


def test_keys_that_cannot_be_fetched_fail_the_authorizer_and_never_allow() -> None:
    source = Source()
    source.fail = True
    handler = app.create_handler(verifier(source))
    with pytest.raises(RuntimeError) as raised:
        authorize(sign(), handler)
    assert isinstance(raised.value, app.KeysUnavailableError)


def test_a_refusal_writes_one_audit_line_without_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    token = sign(iss="https://issuer.test/other")
    authorize(token, query={"_count": ["5"]})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {
            "level": "INFO",
            "message": "access",
            "service": "fhir-encounter-audit",
            "timestamp": lines[0]["timestamp"],
            "principal": "unknown",
            "route": "GET /Encounter/{id}",
            "parameters": ["_count"],
            "parameter_count": 1,
            "compartment": "denied",
            "encounter_ids": [],
            "status": 401,
            "reason": "wrong issuer",
            "request_id": "req-1",
        }
    ]
    assert token.split(".")[1] not in json.dumps(lines)


# ---- time claims: JSON numbers, and a lifetime of at most a day ----------------------------------

YEAR_2999 = 32_503_680_000


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": str(int(time.time()) + 300)},
        {"exp": YEAR_2999},
        {"exp": str(YEAR_2999)},
        {"exp": True},
        {"exp": [int(time.time()) + 300]},
        {"nbf": str(int(time.time()))},
        {"nbf": False},
        {"iat": True},
        {"iat": False},
        {"iat": str(int(time.time()))},
        {"iat": None, "nbf": None, "exp": FromNow(86_400 + 120)},
    ],
    ids=[
        "string-exp",
        "exp-in-2999",
        "string-exp-in-2999",
        "bool-exp",
        "list-exp",
        "string-nbf",
        "bool-nbf",
        "bool-iat-true",
        "bool-iat-false",
        "string-iat",
        "exp-a-day-and-2-minutes-ahead",
    ],
)
def test_a_time_claim_that_is_not_a_number_or_an_exp_too_far_ahead_is_denied(changes: dict[str, Any]) -> None:
    assert_denied(authorize(sign(**changes)))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_time_claim_that_is_not_a_finite_number_is_denied_never_an_error(claim: str, literal: str) -> None:
    """Python's JSON reader takes NaN and Infinity; signed over such a payload, they are refused."""
    payload = json.dumps({**claims(), claim: 0}).replace(f'"{claim}": 0', f'"{claim}": {literal}')
    header = {"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}"
    signature = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(
        signing_input.encode(), RSA_KEY
    )
    assert_denied(authorize(f"{signing_input}.{b64(signature)}"))


@pytest.mark.parametrize(
    "exp",
    [FromNow(300), FromNow(86_400 - 60), int(time.time()) + 300.5],
    ids=["5-minutes", "a-day-less-a-minute", "fractional"],
)
def test_a_token_within_a_day_with_numeric_times_is_allowed(exp: Any) -> None:
    result = authorize(sign(exp=exp, nbf=FromNow(0)))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert isinstance(result["context"]["exp"], int)


def test_the_maximum_lifetime_is_configurable() -> None:
    hour = app.TokenVerifier.from_environment({**ENVIRONMENT, "MAX_TOKEN_LIFETIME_SECONDS": "3600"})
    assert hour.max_lifetime == 3600
    keys = app.KeySet(Source(), clock=Clock())
    handler = app.create_handler(
        app.TokenVerifier(issuer=ISSUER, audiences=[AUDIENCE], keys=keys, max_lifetime=3600)
    )
    assert_denied(authorize(sign(exp=FromNow(3600 + 60)), handler))
    assert authorize(sign(exp=FromNow(3600 - 60)), handler)["policyDocument"]["Statement"][0]["Effect"] == (
        "Allow"
    )
    default = app.TokenVerifier.from_environment(ENVIRONMENT)
    template = load_template(ROOT / "template.yaml")
    assert default.max_lifetime == app.DEFAULT_MAX_LIFETIME_SECONDS == 86_400
    assert template["Parameters"]["MaxTokenLifetimeSeconds"]["Default"] == app.DEFAULT_MAX_LIFETIME_SECONDS


# ---- the context: what the functions enforce ----------------------------------------------------


def test_the_context_carries_exp_scope_and_fhir_user() -> None:
    exp = int(time.time()) + 600
    context = authorize(sign(exp=exp, scope="openid fhirUser user/*.read", fhirUser="Patient/patient-0012"))[
        "context"
    ]
    assert context == {
        "sub": "user-7",
        "client_id": "app-3",
        "scope": "openid fhirUser user/*.read",
        "exp": exp,
        "patient": "pat-1",
        "fhirUser": "Patient/patient-0012",
    }
    assert all(isinstance(value, str | int) and not isinstance(value, bool) for value in context.values())


@pytest.mark.parametrize("fhir_user", [123, "", ["Patient/p1"], {"reference": "Patient/p1"}])
def test_a_fhir_user_that_is_not_a_string_is_left_out(fhir_user: Any) -> None:
    assert "fhirUser" not in authorize(sign(fhirUser=fhir_user))["context"]


def test_the_functions_leeway_is_the_authorizers() -> None:
    from fhir_encounter.access import LEEWAY_SECONDS

    assert app.LEEWAY_SECONDS == LEEWAY_SECONDS


# ---- the key set: cached, refetched for an unknown kid, rate-limited ---------------------------


def test_keys_are_fetched_again_at_least_every_five_minutes_by_default() -> None:
    source, clock = Source(), Clock()
    keys = app.KeySet(source, clock=clock)
    keys.key("rsa-1")
    clock.now += 299
    keys.key("rsa-1")
    assert source.fetches == 1
    clock.now += 1
    keys.key("rsa-1")
    assert source.fetches == 2
    assert app.DEFAULT_CACHE_SECONDS == 300
    assert app.TokenVerifier.from_environment(ENVIRONMENT).keys._cache_seconds == 300


@pytest.mark.parametrize("seconds", ["0", "60", "300"])
def test_jwks_cache_seconds_may_be_shortened(seconds: str) -> None:
    verifier = app.TokenVerifier.from_environment({**ENVIRONMENT, "JWKS_CACHE_SECONDS": seconds})
    assert verifier.keys._cache_seconds == float(seconds)


def test_keys_are_fetched_once_and_kept_for_the_cache_time() -> None:
    source, clock = Source(), Clock()
    keys = app.KeySet(source, cache_seconds=3600, clock=clock)
    for _ in range(3):
        keys.key("rsa-1")
    clock.now += 3599
    keys.key("ec-1")
    assert source.fetches == 1
    clock.now += 1
    keys.key("rsa-1")
    assert source.fetches == 2


def test_an_unknown_kid_refetches_once_then_is_rate_limited() -> None:
    source, clock = Source(), Clock()
    handler = app.create_handler(verifier(source, clock))
    authorize(sign(), handler)
    assert source.fetches == 1
    clock.now += 30
    unknown = sign(kid="rotated-in")
    assert_denied(authorize(unknown, handler))
    assert source.fetches == 2  # refetched for the unknown kid
    for _ in range(5):
        assert_denied(authorize(unknown, handler))
    clock.now += 29
    assert_denied(authorize(unknown, handler))
    assert source.fetches == 2  # rate-limited: not fetched again within 30 s
    clock.now += 1
    source.document = {"keys": [*JWKS["keys"], public_jwk(RSA_KEY, "rotated-in")]}
    assert authorize(unknown, handler)["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert source.fetches == 3


def test_a_failed_fetch_is_not_retried_for_30_seconds() -> None:
    source, clock = Source(), Clock()
    keys = app.KeySet(source, clock=clock)
    source.fail = True
    for _ in range(3):
        with pytest.raises(app.KeysUnavailableError):
            keys.key("rsa-1")
    assert source.fetches == 1
    clock.now += 30
    source.fail = False
    assert keys.key("rsa-1").algorithm_name == "RS256"
    assert source.fetches == 2


def test_a_failed_refetch_for_an_unknown_kid_keeps_the_known_keys() -> None:
    source, clock = Source(), Clock()
    keys = app.KeySet(source, clock=clock)
    keys.key("rsa-1")
    source.fail = True
    clock.now += 60
    with pytest.raises(app.KeysUnavailableError):
        keys.key("unknown")
    assert keys.key("rsa-1").algorithm_name == "RS256"


def test_expired_keys_whose_refetch_failed_are_not_used() -> None:
    source, clock = Source(), Clock()
    keys = app.KeySet(source, cache_seconds=60, clock=clock)
    keys.key("rsa-1")
    source.fail = True
    clock.now += 60
    with pytest.raises(app.KeysUnavailableError):
        keys.key("rsa-1")
    with pytest.raises(app.KeysUnavailableError):  # within 30 s of the failure: no fetch, still failing
        keys.key("rsa-1")
    assert source.fetches == 2


def test_a_cache_time_shorter_than_the_refetch_interval_still_serves() -> None:
    source, clock = Source(), Clock()
    keys = app.KeySet(source, cache_seconds=0, clock=clock)
    keys.key("rsa-1")
    clock.now += 1
    assert keys.key("rsa-1").algorithm_name == "RS256"
    assert source.fetches == 1


@pytest.mark.parametrize("document", [[], {"keys": "none"}, {}], ids=["list", "keys-not-a-list", "no-keys"])
def test_a_jwks_that_is_not_a_key_set_fails_the_authorizer(document: Any) -> None:
    keys = app.KeySet(lambda: document, clock=Clock())
    with pytest.raises(app.KeysUnavailableError):
        keys.key("rsa-1")


# ---- configuration and fetching over HTTP (127.0.0.1 only) --------------------------------------


class Issuer(BaseHTTPRequestHandler):
    """``/.well-known/openid-configuration``, ``/jwks.json`` and ``/moved`` (a redirect to plain
    http on another host) of an issuer on 127.0.0.1; ``server.hits`` counts the paths asked."""

    server: IssuerServer

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://192.0.2.1/jwks.json")  # TEST-NET: never contacted
            self.end_headers()
            return
        documents = {
            "/.well-known/openid-configuration": {"issuer": base, "jwks_uri": f"{base}/jwks.json"},
            "/jwks.json": JWKS,
        }
        body = json.dumps(documents.get(self.path, {})).encode()
        self.send_response(200 if self.path in documents else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class IssuerServer(HTTPServer):
    hits: list[str]


@pytest.fixture
def issuer() -> Iterator[IssuerServer]:
    server = IssuerServer(("127.0.0.1", 0), Issuer)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_without_jwks_url_the_keys_are_discovered_from_the_issuer(issuer: IssuerServer) -> None:
    base = f"http://127.0.0.1:{issuer.server_port}"
    found = app.TokenVerifier.from_environment({"OIDC_ISSUER": base, "OIDC_AUDIENCE": AUDIENCE})
    assert issuer.hits == []  # nothing is fetched at init
    handler = app.create_handler(found)
    for _ in range(2):
        result = handler(event(f"Bearer {sign(iss=base)}"), None)
        assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert issuer.hits == ["/.well-known/openid-configuration", "/jwks.json"]


def test_a_discovery_document_for_another_issuer_fails(issuer: IssuerServer) -> None:
    base = f"http://127.0.0.1:{issuer.server_port}"
    source = app.jwks_source(f"{base}/", None)  # its document names the issuer without the slash
    with pytest.raises(app.KeysUnavailableError):
        source()


def test_jwks_url_is_fetched_over_http_on_127_0_0_1(issuer: IssuerServer) -> None:
    url = f"http://127.0.0.1:{issuer.server_port}/jwks.json"
    assert app.fetch_json(url) == JWKS


def test_an_unreachable_jwks_url_is_the_runtime_error_path() -> None:
    server = HTTPServer(("127.0.0.1", 0), Issuer)
    port = server.server_port
    server.server_close()  # nothing listens there now: connection refused
    environment = {
        "OIDC_ISSUER": ISSUER,
        "OIDC_AUDIENCE": AUDIENCE,
        "JWKS_URL": f"http://127.0.0.1:{port}/jwks",
    }
    handler = app.create_handler(app.TokenVerifier.from_environment(environment))
    with pytest.raises(RuntimeError):
        handler(event(f"Bearer {sign()}"), None)


@pytest.mark.parametrize("path", ["/missing", "/moved"], ids=["404", "redirect-to-plain-http"])
def test_a_failing_or_downgrading_jwks_url_is_refused(issuer: IssuerServer, path: str) -> None:
    with pytest.raises(app.KeysUnavailableError):
        app.fetch_json(f"http://127.0.0.1:{issuer.server_port}{path}")


@pytest.mark.parametrize(
    "environment",
    [
        {"OIDC_AUDIENCE": AUDIENCE, "JWKS_URL": "https://issuer.test/jwks"},
        {"OIDC_ISSUER": ISSUER, "JWKS_URL": "https://issuer.test/jwks"},
        {"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, "JWKS_URL": "http://issuer.test/jwks"},
        {"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, "JWKS_URL": "file:///etc/jwks"},
        {"OIDC_ISSUER": "http://issuer.test", "OIDC_AUDIENCE": AUDIENCE},
        {"OIDC_ISSUER": "urn:no-discovery", "OIDC_AUDIENCE": AUDIENCE},
        {**ENVIRONMENT, "JWKS_CACHE_SECONDS": "an hour"},
        {**ENVIRONMENT, "JWKS_CACHE_SECONDS": "3600"},
        {**ENVIRONMENT, "JWKS_CACHE_SECONDS": "-1"},
        {**ENVIRONMENT, "JWKS_CACHE_SECONDS": "nan"},
        {**ENVIRONMENT, "MAX_TOKEN_LIFETIME_SECONDS": "a day"},
        {**ENVIRONMENT, "MAX_TOKEN_LIFETIME_SECONDS": "0"},
        {**ENVIRONMENT, "MAX_TOKEN_LIFETIME_SECONDS": "-5"},
        {**ENVIRONMENT, "MAX_TOKEN_LIFETIME_SECONDS": "86400.5"},
    ],
    ids=[
        "no-issuer",
        "no-audience",
        "plain-http",
        "file",
        "plain-http-issuer",
        "urn-issuer-without-jwks",
        "cache",
        "cache-over-5-minutes",
        "cache-negative",
        "cache-nan",
        "lifetime-words",
        "lifetime-zero",
        "lifetime-negative",
        "lifetime-fraction",
    ],
)
def test_an_incomplete_or_unsafe_environment_fails_at_init(environment: dict[str, str]) -> None:
    with pytest.raises(app.ConfigurationError):
        app.TokenVerifier.from_environment(environment)


def test_the_environment_may_name_several_audiences() -> None:
    configured = app.TokenVerifier.from_environment({**ENVIRONMENT, "OIDC_AUDIENCE": "client-a, client-b"})
    assert configured.audiences == ("client-a", "client-b")


def test_the_module_composes_its_handler_from_the_environment() -> None:
    assert app.lambda_handler.__name__ == "lambda_handler"
    unset = unittest.mock.patch.dict("os.environ", {"OIDC_ISSUER": "", "OIDC_AUDIENCE": ""})
    with unset, pytest.raises(RuntimeError, match="OIDC_ISSUER and OIDC_AUDIENCE must be set"):
        load_function("authorizer")


# ---- packaging: PyJWT is the authorizer's alone ------------------------------------------------


def runtime_imports(path: Any) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "functions").glob("*/app.py")),
        *sorted((ROOT / "layers").rglob("*.py")),
    ],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_only_the_authorizer_imports_jwt(path: Any) -> None:
    imported = runtime_imports(path)
    if path.parent.name == "authorizer":
        assert "jwt" in imported
        assert not imported & {"fhir_encounter", "aws_lambda_powertools", "boto3", "pydantic"}
    else:
        assert not imported & {"jwt", "cryptography"}


def test_the_authorizer_requirements_pin_the_pyjwt_of_the_dev_tools() -> None:
    requirements = (ROOT / "functions" / "authorizer" / "requirements.txt").read_text().split()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert len(requirements) == 1
    assert requirements[0].startswith("PyJWT[crypto]==")
    assert requirements[0] in extras["dev"]
    assert requirements[0] in extras["tools"]
