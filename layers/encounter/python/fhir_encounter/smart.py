"""SMART on FHIR discovery: the issuer's OAuth endpoints for `/.well-known/smart-configuration`
and the CapabilityStatement's `oauth-uris`, from the stack's parameters or, when those are empty,
read once from the issuer's OpenID configuration."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_encounter.access import AuthMode
from fhir_encounter.config import Settings
from fhir_encounter.errors import NotFoundError, RetryLaterError

FETCH_TIMEOUT_SECONDS = 2.0
IDENTITY_SCOPES = ("openid", "fhirUser", "launch", "launch/patient", "offline_access")
RESOURCE_CONTEXTS = ("patient", "user", "system")
PRIVATE_KEY_JWT = "private_key_jwt"
Fetch = Callable[[str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OAuthEndpoints:
    issuer: str
    authorize: str
    token: str
    jwks_uri: str | None


def fetch_json(url: str) -> dict[str, Any]:
    """A JSON object over https (http only on the loopback, for local development); redirects
    are followed only to URLs that pass the same check."""
    _check_url(url)
    opener = urllib.request.build_opener(_CheckedRedirects)
    with opener.open(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
        document = json.loads(response.read(1_000_000))
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ValueError("the issuer must be served over https")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        _check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class SmartDiscovery:
    """The endpoints, built once per function and kept (the composition root owns it)."""

    def __init__(self, settings: Settings, fetch: Fetch = fetch_json) -> None:
        self._settings = settings
        self._fetch = fetch
        self._endpoints: OAuthEndpoints | None = None

    @property
    def enabled(self) -> bool:
        return self._settings.auth_mode is AuthMode.SMART

    def endpoints(self) -> OAuthEndpoints:
        if not self.enabled or not self._settings.oidc_issuer:
            raise NotFoundError("SMART on FHIR is not enabled on this server (its AuthMode is not smart)")
        if self._endpoints is None:
            self._endpoints = self._discover(self._settings.oidc_issuer)
        return self._endpoints

    def _discover(self, issuer: str) -> OAuthEndpoints:
        authorize, token = self._settings.smart_authorization_endpoint, self._settings.smart_token_endpoint
        jwks_uri = self._settings.jwks_url
        if not (authorize and token and jwks_uri):
            try:
                found = self._fetch(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
            except (OSError, ValueError):
                raise RetryLaterError("The authorization server's configuration could not be read") from None
            if found.get("issuer") not in (None, issuer):
                raise RetryLaterError("The authorization server names another issuer")
            authorize = authorize or str(found.get("authorization_endpoint") or "")
            token = token or str(found.get("token_endpoint") or "")
            jwks_uri = jwks_uri or str(found.get("jwks_uri") or "") or None
        if not (authorize and token):
            raise RetryLaterError("The authorization server does not publish its endpoints")
        return OAuthEndpoints(issuer, authorize, token, jwks_uri)


def smart_configuration(endpoints: OAuthEndpoints, settings: Settings) -> dict[str, Any]:
    """The SMART App Launch 2.0 discovery document. What it offers comes from the stack's
    parameters (capabilities, grant types, token endpoint auth methods and their signing
    algorithms), less what this deployment does not do: ``permission-user`` and user/ scopes when
    user scopes are disabled; ``issuer`` and ``sso-openid-connect`` unless the issuer is https."""
    https_issuer = endpoints.issuer.startswith("https://")
    unavailable = {"sso-openid-connect"} if not https_issuer else set()
    if not settings.user_scopes:
        unavailable.add("permission-user")
    document: dict[str, Any] = {
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "grant_types_supported": list(settings.smart_grant_types),
        "response_types_supported": ["code"],
        "scopes_supported": scopes_supported(settings),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(settings.smart_token_auth_methods),
        "capabilities": [name for name in settings.smart_capabilities if name not in unavailable],
    }
    if https_issuer:
        document = {"issuer": endpoints.issuer, **document}
    if PRIVATE_KEY_JWT in settings.smart_token_auth_methods:
        document["token_endpoint_auth_signing_alg_values_supported"] = list(settings.smart_token_signing_algs)
    if endpoints.jwks_uri:
        document["jwks_uri"] = endpoints.jwks_uri
    return document


def scopes_supported(settings: Settings) -> list[str]:
    """The identity scopes and the Encounter scopes a client may ask for, v2 and v1, written as
    the identity provider writes them (with ScopePrefix)."""
    lead = f"{settings.scope_prefix}/" if settings.scope_prefix else ""
    contexts = [context for context in RESOURCE_CONTEXTS if context != "user" or settings.user_scopes]
    return [
        *IDENTITY_SCOPES,
        *(
            f"{lead}{context}/Encounter.{permissions}"
            for context in contexts
            for permissions in ("rs", "read")
        ),
    ]


def rest_security(endpoints: OAuthEndpoints, *, cors: bool) -> dict[str, Any]:
    """CapabilityStatement.rest.security for a SMART server (the oauth-uris extension); ``cors``:
    whether browsers of other origins may call it (CorsAllowedOrigins is set)."""
    return {
        "cors": cors,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 bearer tokens (SMART App Launch)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "authorize", "valueUri": endpoints.authorize},
                    {"url": "token", "valueUri": endpoints.token},
                ],
            }
        ],
    }
