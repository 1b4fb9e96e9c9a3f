"""The CORS policy: which origins may read answers, and what a preflight grants."""

from __future__ import annotations

import pytest

from fhir_encounter.config import ConfigurationError, Settings
from fhir_encounter.cors import (
    ALLOWED_HEADERS,
    EXPOSED_HEADERS,
    MAX_AGE_SECONDS,
    CorsOriginError,
    CorsPolicy,
)

APP = "https://app.example.org"
OTHER = "https://evil.example.net"
LISTED = CorsPolicy.parse(f"{APP}, http://127.0.0.1:8080")
ANY = CorsPolicy.parse("*")
OFF = CorsPolicy.parse("")


@pytest.mark.parametrize(
    ("text", "origins"),
    [
        ("", ()),
        (" , ", ()),
        ("*", ("*",)),
        (f"{APP}", (APP,)),
        (f"{APP}/, HTTP://LOCALHOST:3000", (APP, "http://localhost:3000")),
        (f"{APP},{APP}", (APP,)),
    ],
)
def test_origins_are_parsed_from_a_comma_separated_list(text: str, origins: tuple[str, ...]) -> None:
    assert CorsPolicy.parse(text).origins == origins


def test_origins_are_parsed_from_repeated_options_each_a_list() -> None:
    assert CorsPolicy.parse([APP, "http://a.test,http://b.test"]).origins == (
        APP,
        "http://a.test",
        "http://b.test",
    )


@pytest.mark.parametrize(
    "text",
    [
        "app.example.org",
        "ftp://app.example.org",
        "https://app.example.org/path",
        "https://app.example.org?x=1",
        "https://user@app.example.org",
        "https://app.example.org:99999",
        "https://app.example.org:port",
        "https://",
        f"*, {APP}",
        "null",
    ],
)
def test_anything_but_star_or_origins_is_refused(text: str) -> None:
    with pytest.raises(CorsOriginError):
        CorsPolicy.parse(text)


def test_settings_read_the_origins_and_refuse_a_bad_list_by_its_variable_name() -> None:
    iam = {"AUTH_MODE": "iam"}
    settings = Settings.from_environment({**iam, "CORS_ALLOWED_ORIGINS": f"{APP},http://127.0.0.1:8080"})
    assert settings.cors == LISTED
    assert not Settings.from_environment(iam).cors.enabled
    with pytest.raises(ConfigurationError, match="CORS_ALLOWED_ORIGINS") as raised:
        Settings.from_environment({**iam, "CORS_ALLOWED_ORIGINS": "https://secret.example/path"})
    assert "secret" not in str(raised.value)


def test_without_origins_no_answer_carries_cors_headers() -> None:
    assert OFF.response_headers(APP) == {}
    assert OFF.preflight_headers(APP, "GET") == {"Allow": "GET, HEAD, OPTIONS"}


def test_a_listed_origin_is_echoed_with_vary_and_the_exposed_headers() -> None:
    assert LISTED.response_headers(APP) == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
        "Vary": "Origin",
    }


@pytest.mark.parametrize("origin", [OTHER, None, "", "null", APP.upper(), f"{APP}.evil.net"])
def test_an_origin_not_listed_gets_only_vary(origin: str | None) -> None:
    assert LISTED.response_headers(origin) == {"Vary": "Origin"}


def test_any_origin_is_answered_with_a_star_and_no_vary() -> None:
    assert ANY.response_headers(OTHER) == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": (
            "ETag, Last-Modified, Location, Content-Location, WWW-Authenticate, Retry-After"
        ),
    }
    assert ANY.response_headers(None) == {}


def test_a_preflight_of_a_listed_origin_for_get_is_granted() -> None:
    assert LISTED.preflight_headers(APP, "GET") == {
        "Allow": "GET, HEAD, OPTIONS",
        "Vary": "Origin",
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": "GET",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Prefer, If-None-Match",
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
    }
    assert set(ALLOWED_HEADERS) == {"Authorization", "Content-Type", "Prefer", "If-None-Match"}


@pytest.mark.parametrize(("origin", "method"), [(OTHER, "GET"), (APP, "DELETE"), (APP, None), (None, "GET")])
def test_a_preflight_of_another_origin_or_method_is_not_granted(
    origin: str | None, method: str | None
) -> None:
    assert LISTED.preflight_headers(origin, method) == {"Allow": "GET, HEAD, OPTIONS", "Vary": "Origin"}


def test_a_preflight_from_any_origin_is_granted_with_a_star() -> None:
    headers = ANY.preflight_headers(OTHER, "get")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in headers


def test_a_preflight_of_the_search_by_post_grants_post_only() -> None:
    assert LISTED.preflight_headers(APP, "POST", "/Encounter/_search") == {
        "Allow": "POST, OPTIONS",
        "Vary": "Origin",
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Prefer, If-None-Match",
        "Access-Control-Max-Age": "600",
    }
    assert LISTED.preflight_headers(APP, "GET", "/Encounter/_search") == {
        "Allow": "POST, OPTIONS",
        "Vary": "Origin",
    }
    assert OFF.preflight_headers(APP, "POST", "/Encounter/_search") == {"Allow": "POST, OPTIONS"}


@pytest.mark.parametrize("resource", ["/Encounter", "/Encounter/{id}", "/metadata", ""])
def test_a_preflight_for_post_on_a_get_path_is_not_granted(resource: str) -> None:
    assert LISTED.preflight_headers(APP, "POST", resource) == {
        "Allow": "GET, HEAD, OPTIONS",
        "Vary": "Origin",
    }
