"""/metadata and /.well-known/smart-configuration in SMART mode: public, through the handler."""

from __future__ import annotations

import json
from typing import Any

from fhir_encounter.config import Settings
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.support import handlers_on, lambda_response

SMART = Settings.from_environment(
    {
        **TEST_ENVIRONMENT,
        "AUTH_MODE": "smart",
        "OIDC_ISSUER": "https://issuer.example.org",
        "SMART_AUTHORIZATION_ENDPOINT": "https://issuer.example.org/authorize",
        "SMART_TOKEN_ENDPOINT": "https://issuer.example.org/token",
        "JWKS_URL": "https://issuer.example.org/jwks",
    }
)


def get(path: str) -> dict[str, Any]:
    return lambda_response(rest_api_event(method="GET", path=path, resource=path))


def test_smart_configuration_is_served_without_a_token(table: Any) -> None:
    with handlers_on(table, SMART):
        response = get("/.well-known/smart-configuration")
    assert response["statusCode"] == 200
    headers = {
        **response.get("headers", {}),
        **{k: v[0] for k, v in response.get("multiValueHeaders", {}).items()},
    }
    assert headers["Content-Type"] == "application/json"
    document = json.loads(response["body"])
    assert document["issuer"] == "https://issuer.example.org"
    assert document["token_endpoint"] == "https://issuer.example.org/token"
    assert "permission-v2" in document["capabilities"]


def test_the_capability_statement_carries_smart_security_in_smart_mode(table: Any) -> None:
    with handlers_on(table, SMART):
        statement = json.loads(get("/metadata")["body"])
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {
        "authorize": "https://issuer.example.org/authorize",
        "token": "https://issuer.example.org/token",
    }


def test_iam_mode_has_no_smart_security(table: Any) -> None:
    statement = json.loads(get("/metadata")["body"])
    assert "security" not in statement["rest"][0]


def test_the_capability_statement_says_cors_when_origins_are_allowed(table: Any) -> None:
    with handlers_on(table, Settings.from_environment({**TEST_ENVIRONMENT, "CORS_ALLOWED_ORIGINS": "*"})):
        statement = json.loads(get("/metadata")["body"])
    assert statement["rest"][0]["security"] == {"cors": True}


def test_smart_security_says_cors_false_without_allowed_origins(table: Any) -> None:
    with handlers_on(table, SMART):
        statement = json.loads(get("/metadata")["body"])
    assert statement["rest"][0]["security"]["cors"] is False
