"""Lambda REQUEST authorizer: checks the bearer JWT and answers with a policy for the stage and the
context (sub, client_id, scope, exp, and patient and fhirUser when the token has them) that the
read and search functions enforce. It decides from its identity source alone (the Authorization
header, API Gateway's cache key): never from the query string. PyJWT with ``cryptography``: well
kept, small, OpenSSL's signatures, reads JWK sets; only this function has it."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.error import URLError
from urllib.parse import urlsplit

import jwt

# What API Gateway passes to the authorizer and what it expects back (a policy and a context).
AuthorizerEvent = Mapping[str, Any]
AuthorizerHandler = Callable[[AuthorizerEvent, Any], dict[str, Any]]
Fetch = Callable[[str], Any]  # an https URL -> its JSON document

# alg -> (JWK kty, JWK crv): RS256 and ES256 only; "none", HS* and everything else are refused.
ALGORITHMS = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}
LEEWAY_SECONDS = 60  # clock skew, for exp, nbf and iat (the functions apply it to exp too)
FETCH_TIMEOUT_SECONDS = 2.0
MAX_DOCUMENT_BYTES = 512 * 1024
DEFAULT_CACHE_SECONDS = 300  # the keys are fetched again at least this often (at most 300)
REFETCH_SECONDS = 30.0  # an unknown kid or a failed fetch fetches again at most this often
DEFAULT_MAX_LIFETIME_SECONDS = 86_400  # an exp further ahead than this is refused
TIME_CLAIMS = ("exp", "nbf", "iat")  # NumericDate (RFC 7519 2): JSON numbers, never strings
DISCOVERY_PATH = "/.well-known/openid-configuration"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})  # plain http only there (tests, the dev issuer)
AUDIT_SERVICE = "fhir-encounter-audit"  # the functions' audit logger's service name
MAX_NAMES, MAX_NAME_LENGTH = 20, 64  # parameter names in an audit line
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*) *", re.IGNORECASE)  # RFC 6750 b64token


class InvalidTokenError(Exception):
    """The token fails a check: API Gateway gets a Deny (ACCESS_DENIED, a 401 invalid_token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # a fixed phrase for the log; never token content


class KeysUnavailableError(RuntimeError):
    """The issuer's keys cannot be fetched: the authorizer fails (AUTHORIZER_FAILURE, a 503)."""


class ConfigurationError(RuntimeError):
    """The authorizer's environment is incomplete or unsafe; names the variable."""


class Claims(NamedTuple):  # not a dataclass: the module may be loaded from its file, unregistered
    """What the functions need from a verified token."""

    subject: str
    client_id: str
    scope: str  # space-separated, as the token grants it (the functions read it)
    patient: str | None  # the SMART launch context
    exp: int  # the token's end: the functions refuse it from then on, whatever API Gateway cached
    fhir_user: str | None = None  # the SMART fhirUser claim: narrows a Patient's user/ scopes

    def context(self) -> dict[str, str | int]:
        """The authorizer context (API Gateway takes strings, numbers and booleans only)."""
        context: dict[str, str | int] = {
            "sub": self.subject,
            "client_id": self.client_id,
            "scope": self.scope,
            "exp": self.exp,
        }
        if self.patient is not None:
            context["patient"] = self.patient
        if self.fhir_user is not None:
            context["fhirUser"] = self.fhir_user
        return context


def check_url(url: str, what: str) -> str:
    """``url`` when it is https, or http on a loopback address; ValueError otherwise."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # an invalid port or IPv6 literal
        scheme, host = "", None
    if not host or not (scheme == "https" or (scheme == "http" and host in LOOPBACK_HOSTS)):
        raise ValueError(f"{what} must be an https:// URL (http:// only on 127.0.0.1)")
    return url


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed only to URLs that ``check_url`` accepts (never https -> http)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        check_url(newurl, "a redirect")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_CheckedRedirects())


def fetch_json(url: str) -> Any:
    """The JSON document at ``url`` (2 s timeouts, 512 KB at most); KeysUnavailableError otherwise."""
    try:
        checked = check_url(url, "a key URL")
        request = urllib.request.Request(checked, headers={"Accept": "application/json"})  # noqa: S310 (checked)
        with _OPENER.open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            data = response.read(MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise KeysUnavailableError(f"{url} is over {MAX_DOCUMENT_BYTES} bytes")
        return json.loads(data)
    except (URLError, OSError, ValueError) as error:  # HTTPError, timeouts, refused, bad JSON
        raise KeysUnavailableError(f"cannot fetch {url}: {type(error).__name__}") from None


def jwks_source(issuer: str, jwks_url: str | None, fetch: Fetch = fetch_json) -> Callable[[], Any]:
    """Fetches the issuer's JWKS: from ``jwks_url``, else from the ``jwks_uri`` of the issuer's
    OpenID configuration (found once, then kept; its ``issuer`` must be ``issuer``)."""
    found: list[str] = [check_url(jwks_url, "JWKS_URL")] if jwks_url else []
    discovery = f"{issuer.rstrip('/')}{DISCOVERY_PATH}"
    if not found:
        check_url(discovery, "OIDC_ISSUER (without JWKS_URL)")

    def source() -> Any:
        if not found:
            document = fetch(discovery)
            uri = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(uri, str) or document.get("issuer") != issuer:
                raise KeysUnavailableError(f"{discovery} has no jwks_uri for issuer {issuer}")
            try:
                found.append(check_url(uri, "jwks_uri"))
            except ValueError as error:
                raise KeysUnavailableError(str(error)) from None
        return fetch(found[0])

    return source


class KeySet:
    """The issuer's signing keys by kid: fetched on first use, kept ``cache_seconds``, fetched
    again for an unknown kid; fetches (successful or not) are at least ``refetch_seconds`` apart.
    Only RS256 and P-256 ES256 signature keys are kept. Expired keys whose refetch failed are not
    used: the caller gets KeysUnavailableError until a fetch succeeds."""

    def __init__(
        self,
        source: Callable[[], Any],
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        refetch_seconds: float = REFETCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # when the keys were fetched
        self._tried_at: float | None = None  # when a fetch was last tried
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            expired = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
            if expired or kid not in self._keys:
                if self._tried_at is None or now - self._tried_at >= self._refetch_seconds:
                    self._tried_at = now
                    self._keys = self._fetch()
                    self._fetched_at = now
                elif expired and self._fetched_at != self._tried_at:  # the last try failed, just now
                    raise KeysUnavailableError("the issuer's keys could not be fetched; retrying later")
            key = self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("unknown kid")
        return key

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        document = self._source()
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise KeysUnavailableError("the JWKS has no keys list")
        return {str(jwk["kid"]): key for jwk in keys if (key := _signature_key(jwk)) is not None}


def _signature_key(jwk: Any) -> jwt.PyJWK | None:
    """A JWK as a key for the algorithm its kty (and crv, alg) allow, or None to skip it."""
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
        return None
    for algorithm, (kty, crv) in ALGORITHMS.items():
        if jwk.get("kty") == kty and jwk.get("crv") == crv and jwk.get("alg", algorithm) == algorithm:
            try:
                return jwt.PyJWK(jwk, algorithm)
            except jwt.PyJWTError:
                return None
    return None


class TokenVerifier:
    """Checks a bearer JWT: RS256 or ES256 with a kid of the issuer's JWKS, the key's own
    algorithm, ``iss``, ``aud`` (or, without one, ``client_id`` as Cognito access tokens carry
    it), ``exp`` required, ``exp``, ``nbf`` and ``iat`` JSON numbers checked with 60 s leeway,
    ``exp`` at most ``max_lifetime`` seconds ahead, a ``sub``, an RSA key of 2048 bits or more;
    then reads the claims."""

    def __init__(
        self,
        *,
        issuer: str,
        audiences: Sequence[str],
        keys: KeySet,
        max_lifetime: float = DEFAULT_MAX_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self.keys = keys
        self.max_lifetime = max_lifetime
        self._clock = clock

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], fetch: Fetch = fetch_json) -> TokenVerifier:
        """OIDC_ISSUER, OIDC_AUDIENCE (comma-separated for several), JWKS_URL (optional: else
        discovered), JWKS_CACHE_SECONDS (0 to 300, default 300), MAX_TOKEN_LIFETIME_SECONDS (a
        whole number of seconds, default 86400). Nothing is fetched here."""
        issuer = environ.get("OIDC_ISSUER", "").strip()
        audiences = [part.strip() for part in environ.get("OIDC_AUDIENCE", "").split(",") if part.strip()]
        if not issuer or not audiences:
            raise ConfigurationError("OIDC_ISSUER and OIDC_AUDIENCE must be set")
        try:
            cache_seconds = float(environ.get("JWKS_CACHE_SECONDS") or DEFAULT_CACHE_SECONDS)
            if not 0 <= cache_seconds <= DEFAULT_CACHE_SECONDS:
                raise ValueError("JWKS_CACHE_SECONDS must be 0 to 300")
            source = jwks_source(issuer, environ.get("JWKS_URL") or None, fetch)
        except ValueError as error:
            raise ConfigurationError(
                f"invalid JWKS_CACHE_SECONDS, JWKS_URL or OIDC_ISSUER: {error}"
            ) from None
        lifetime = environ.get("MAX_TOKEN_LIFETIME_SECONDS") or str(DEFAULT_MAX_LIFETIME_SECONDS)
        if not (lifetime.isascii() and lifetime.isdigit() and int(lifetime) > 0):
            raise ConfigurationError("invalid MAX_TOKEN_LIFETIME_SECONDS: a whole number of seconds over 0")
        return cls(
            issuer=issuer,
            audiences=audiences,
            keys=KeySet(source, cache_seconds=cache_seconds),
            max_lifetime=int(lifetime),
        )

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise InvalidTokenError("algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("no kid")
        try:
            payload = jwt.decode(
                token,
                key=self.keys.key(kid),  # its algorithm must be the token's (PyJWT checks)
                algorithms=[str(algorithm)],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": False,  # checked below: aud, or client_id without one
                    "enforce_minimum_key_length": True,  # RSA keys under 2048 bits are refused
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("not yet valid") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("wrong issuer") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("bad signature or claims") from None
        self._check_times(payload)
        self._check_audience(payload)
        return claims_of(payload)

    def _check_times(self, payload: Mapping[str, Any]) -> None:
        """exp, nbf and iat are finite JSON numbers (PyJWT would take "123" or true); exp is at
        most ``max_lifetime`` seconds ahead."""
        for name in TIME_CLAIMS:
            value = payload.get(name)
            if name in payload and not (
                isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            ):
                raise InvalidTokenError(f"{name} is not a number")
        if payload["exp"] - self._clock() > self.max_lifetime:
            raise InvalidTokenError("lifetime over the maximum")

    def _check_audience(self, payload: Mapping[str, Any]) -> None:
        audience = payload.get("aud")
        if audience is None:  # a Cognito access token names its audience in client_id
            granted = [payload.get("client_id")]
        else:
            granted = [audience] if isinstance(audience, str) else audience
        if not isinstance(granted, list) or not any(value in self.audiences for value in granted):
            raise InvalidTokenError("wrong audience")
        if payload.get("token_use", "access") != "access":  # a Cognito ID token is no access token
            raise InvalidTokenError("not an access token")


def claims_of(payload: Mapping[str, Any]) -> Claims:
    """sub; client_id (or azp, cid); scope (a string, or scp as a list or a string); exp (a
    number, checked); patient (the SMART launch context claim only) and fhirUser, each when it is
    a string."""
    subject = payload.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidTokenError("no subject")
    client_id = next(
        (value for name in ("client_id", "azp", "cid") if isinstance(value := payload.get(name), str)), ""
    )
    scope = payload.get("scope", payload.get("scp", ""))
    if isinstance(scope, list):
        scope = " ".join(item for item in scope if isinstance(item, str))
    patient, fhir_user = payload.get("patient"), payload.get("fhirUser")
    return Claims(
        subject,
        client_id,
        scope if isinstance(scope, str) else "",
        patient if isinstance(patient, str) and patient else None,
        int(payload["exp"]),
        fhir_user if isinstance(fhir_user, str) and fhir_user else None,
    )


def bearer_token(event: AuthorizerEvent) -> str | None:
    """The token of the one ``Authorization: Bearer <token>`` header, else None."""
    values = [
        value
        for name, values in (event.get("multiValueHeaders") or {}).items()
        if name.lower() == "authorization"
        for value in values or []
    ]
    if not values:
        values = [v for n, v in (event.get("headers") or {}).items() if n.lower() == "authorization"]
    match = _BEARER.fullmatch(values[0]) if len(values) == 1 and isinstance(values[0], str) else None
    return match[1] if match else None


def stage_resource(method_arn: str) -> str:
    """Every method and path of the method ARN's stage (API Gateway caches a policy per token)."""
    api, stage = method_arn.split("/")[:2]
    return f"{api}/{stage}/*/*"


def policy(principal: str, effect: str, resource: str, context: Mapping[str, str | int]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": dict(context),
    }


def create_handler(verifier: TokenVerifier) -> AuthorizerHandler:
    """The authorizer for ``verifier``: Allow with the token's claims, Deny (``error``:
    ``invalid_token``) for a token that fails a check, "Unauthorized" without a bearer token,
    KeysUnavailableError when the keys cannot be fetched. It reads the Authorization header only:
    API Gateway caches its answer by that header, for every route and query string (a token in
    the query string is the functions' to refuse)."""

    def lambda_handler(event: AuthorizerEvent, context: Any) -> dict[str, Any]:
        resource = stage_resource(str(event["methodArn"]))
        token = bearer_token(event)
        if token is None:  # (API Gateway does not even call it without the header, unless TTL is 0)
            audit(event, 401, "no bearer token")
            raise Exception("Unauthorized")  # API Gateway's contract for a 401
        try:
            claims = verifier.verify(token)
        except InvalidTokenError as error:
            audit(event, 401, error.reason)
            return policy("anonymous", "Deny", resource, {"error": "invalid_token"})
        except KeysUnavailableError as error:
            audit(event, 503, str(error))
            raise
        return policy(claims.subject, "Allow", resource, claims.context())

    return lambda_handler


def audit(event: AuthorizerEvent, status: int, reason: str) -> None:
    """One audit line for a request refused here (the functions write it for the others): the
    route, parameter names, the status API Gateway answers and why. Never a token or a value."""
    names = sorted(event.get("multiValueQueryStringParameters") or {})
    line = {
        "level": "INFO" if status < 500 else "ERROR",
        "message": "access",
        "service": AUDIT_SERVICE,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "principal": "unknown",
        "route": f"{event.get('httpMethod', '')} {event.get('resource', '')}",
        "parameters": [str(name)[:MAX_NAME_LENGTH] for name in names[:MAX_NAMES]],
        "parameter_count": len(names),
        "compartment": "denied",
        "encounter_ids": [],
        "status": status,
        "reason": reason,
        "request_id": (event.get("requestContext") or {}).get("requestId", ""),
    }
    print(json.dumps(line), flush=True)


# Composition root: built once at init; the keys are fetched on the first request.
lambda_handler = create_handler(TokenVerifier.from_environment(os.environ))
