"""SMART discovery: the smart-configuration document and the CapabilityStatement's security,
from the stack's parameters or the issuer's OpenID configuration (read once)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_encounter.config import Settings
from fhir_encounter.errors import NotFoundError, RetryLaterError
from fhir_encounter.smart import OAuthEndpoints, SmartDiscovery, rest_security, smart_configuration

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
OPENID = {
    "issuer": ISSUER,
    "authorization_endpoint": "https://auth.example.org/oauth2/authorize",
    "token_endpoint": "https://auth.example.org/oauth2/token",
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
}


def settings(**values: str) -> Settings:
    return Settings.from_environment({"AUTH_MODE": "smart", "OIDC_ISSUER": ISSUER, **values})


class Fetcher:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.urls: list[str] = []

    def __call__(self, url: str) -> dict[str, Any]:
        self.urls.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_endpoints_are_discovered_once_from_the_issuer() -> None:
    fetch = Fetcher(OPENID)
    discovery = SmartDiscovery(settings(), fetch)
    expected = OAuthEndpoints(
        ISSUER, OPENID["authorization_endpoint"], OPENID["token_endpoint"], OPENID["jwks_uri"]
    )
    assert discovery.endpoints() == expected
    assert discovery.endpoints() == expected
    assert fetch.urls == [f"{ISSUER}/.well-known/openid-configuration"]


def test_stack_parameters_win_and_need_no_fetch() -> None:
    fetch = Fetcher(OSError("no network"))
    discovery = SmartDiscovery(
        settings(
            SMART_AUTHORIZATION_ENDPOINT="https://a.example/authorize",
            SMART_TOKEN_ENDPOINT="https://a.example/token",
            JWKS_URL="https://a.example/jwks",
        ),
        fetch,
    )
    assert discovery.endpoints().authorize == "https://a.example/authorize"
    assert fetch.urls == []


@pytest.mark.parametrize("failure", [OSError("timeout"), ValueError("not JSON")])
def test_an_issuer_that_cannot_be_read_is_a_503_and_is_asked_again_next_time(failure: Exception) -> None:
    fetch = Fetcher(failure)
    discovery = SmartDiscovery(settings(), fetch)
    for _ in range(2):
        with pytest.raises(RetryLaterError) as caught:
            discovery.endpoints()
        assert caught.value.status == 503
    assert len(fetch.urls) == 2


def test_an_issuer_without_endpoints_is_a_503() -> None:
    with pytest.raises(RetryLaterError):
        SmartDiscovery(settings(), Fetcher({"issuer": ISSUER})).endpoints()


@pytest.mark.parametrize("mode", ["iam", "none"])
def test_without_smart_there_is_no_smart_configuration(mode: str) -> None:
    discovery = SmartDiscovery(Settings.from_environment({"AUTH_MODE": mode}), Fetcher(OPENID))
    assert discovery.enabled is False
    with pytest.raises(NotFoundError):
        discovery.endpoints()


def test_the_smart_configuration_document() -> None:
    endpoints = OAuthEndpoints(ISSUER, "https://a/authorize", "https://a/token", "https://a/jwks")
    document = smart_configuration(endpoints)
    assert document["issuer"] == ISSUER
    assert (document["authorization_endpoint"], document["token_endpoint"]) == (
        "https://a/authorize",
        "https://a/token",
    )
    assert document["jwks_uri"] == "https://a/jwks"
    assert {"authorization_code", "client_credentials"} <= set(document["grant_types_supported"])
    assert {"permission-v2", "permission-v1", "launch-standalone", "context-standalone-patient"} <= set(
        document["capabilities"]
    )
    assert {"patient/Encounter.rs", "user/Encounter.rs", "system/Encounter.rs", "launch/patient"} <= set(
        document["scopes_supported"]
    )


def test_the_capability_statement_security_names_smart_and_its_oauth_uris() -> None:
    security = rest_security(
        OAuthEndpoints(ISSUER, "https://a/authorize", "https://a/token", None), cors=False
    )
    assert security["cors"] is False
    assert security["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR",
    }
    (oauth,) = security["extension"]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert {e["url"]: e["valueUri"] for e in oauth["extension"]} == {
        "authorize": "https://a/authorize",
        "token": "https://a/token",
    }


@pytest.mark.parametrize("cors", [True, False])
def test_the_capability_statement_says_cors_only_when_it_is_on(cors: bool) -> None:
    endpoints = OAuthEndpoints(ISSUER, "https://a/authorize", "https://a/token", None)
    assert rest_security(endpoints, cors=cors)["cors"] is cors


@pytest.mark.parametrize(
    "url",
    [
        "http://issuer.example.org/x",
        "http://127.0.0.1.evil.example/x",
        "ftp://issuer/x",
        "file:///etc/passwd",
    ],
)
def test_only_https_or_the_loopback_is_fetched(url: str) -> None:
    from fhir_encounter.smart import fetch_json

    with pytest.raises(ValueError, match="https"):
        fetch_json(url)


def test_an_issuer_whose_configuration_names_another_issuer_is_refused() -> None:
    with pytest.raises(RetryLaterError):
        SmartDiscovery(settings(), Fetcher({**OPENID, "issuer": "https://evil.example"})).endpoints()
