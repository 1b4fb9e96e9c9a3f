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


ENDPOINTS = OAuthEndpoints(ISSUER, "https://a/authorize", "https://a/token", "https://a/jwks")


def test_the_smart_configuration_document_with_the_defaults() -> None:
    document = smart_configuration(ENDPOINTS, settings())
    assert document == {
        "issuer": ISSUER,
        "authorization_endpoint": "https://a/authorize",
        "token_endpoint": "https://a/token",
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "scopes_supported": [
            "openid",
            "fhirUser",
            "launch",
            "launch/patient",
            "offline_access",
            "patient/Encounter.rs",
            "patient/Encounter.read",
            "user/Encounter.rs",
            "user/Encounter.read",
            "system/Encounter.rs",
            "system/Encounter.read",
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "permission-v1",
            "permission-v2",
            "permission-patient",
            "permission-user",
        ],
        "jwks_uri": "https://a/jwks",
    }


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        (
            "SMART_CAPABILITIES",
            "launch-ehr,context-ehr-patient",
            "capabilities",
            ["launch-ehr", "context-ehr-patient"],
        ),
        ("SMART_GRANT_TYPES", "authorization_code", "grant_types_supported", ["authorization_code"]),
        (
            "SMART_TOKEN_AUTH_METHODS",
            "client_secret_basic,private_key_jwt",
            "token_endpoint_auth_methods_supported",
            ["client_secret_basic", "private_key_jwt"],
        ),
    ],
)
def test_what_discovery_offers_comes_from_the_stack_parameters(
    variable: str, value: str, field: str, expected: list[str]
) -> None:
    assert smart_configuration(ENDPOINTS, settings(**{variable: value}))[field] == expected


@pytest.mark.parametrize(
    ("methods", "algs", "expected"),
    [
        ("private_key_jwt", None, ["RS384", "ES384"]),
        ("client_secret_basic,private_key_jwt", "ES384", ["ES384"]),
        ("client_secret_basic", "ES384", None),
        (None, None, None),
    ],
)
def test_private_key_jwt_always_comes_with_its_signing_algorithms(
    methods: str | None, algs: str | None, expected: list[str] | None
) -> None:
    values = {"SMART_TOKEN_AUTH_METHODS": methods, "SMART_TOKEN_SIGNING_ALGS": algs}
    document = smart_configuration(ENDPOINTS, settings(**{k: v for k, v in values.items() if v}))
    assert document.get("token_endpoint_auth_signing_alg_values_supported") == expected
    advertised = "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert advertised == ("token_endpoint_auth_signing_alg_values_supported" in document)


@pytest.mark.parametrize(
    ("issuer", "https"),
    [
        (ISSUER, True),
        ("http://127.0.0.1:9000/issuer", False),
        ("urn:fhir-encounter:dev-issuer", False),
        ("HTTPS-less.example.org", False),
    ],
)
def test_issuer_and_sso_openid_connect_only_with_an_https_issuer(issuer: str, https: bool) -> None:
    capabilities = "launch-standalone,sso-openid-connect,permission-v2"
    document = smart_configuration(
        OAuthEndpoints(issuer, "https://a/authorize", "https://a/token", None),
        settings(SMART_CAPABILITIES=capabilities, OIDC_ISSUER=issuer),
    )
    assert ("issuer" in document) is https
    assert document.get("issuer", issuer) == issuer
    assert document["capabilities"] == (
        ["launch-standalone", "sso-openid-connect", "permission-v2"]
        if https
        else ["launch-standalone", "permission-v2"]
    )


def test_with_user_scopes_disabled_neither_permission_user_nor_user_scopes_are_advertised() -> None:
    document = smart_configuration(ENDPOINTS, settings(USER_SCOPES="disabled"))
    assert "permission-user" not in document["capabilities"]
    assert "permission-patient" in document["capabilities"]
    assert not [scope for scope in document["scopes_supported"] if scope.startswith("user/")]
    assert "system/Encounter.rs" in document["scopes_supported"]


def test_with_a_scope_prefix_the_resource_scopes_are_advertised_as_the_provider_writes_them() -> None:
    scopes = smart_configuration(ENDPOINTS, settings(SCOPE_PREFIX="fhir"))["scopes_supported"]
    assert [scope for scope in scopes if "Encounter" in scope] == [
        f"fhir/{context}/Encounter.{permissions}"
        for context in ("patient", "user", "system")
        for permissions in ("rs", "read")
    ]
    assert "openid" in scopes


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
