"""POST /Encounter/_search through the search handler (moto): for the same parameters, in the body,
in the URL or split between them, the answer is the GET's (status, headers, body, links that are
GET URLs); bodies it cannot read are 4xx OperationOutcomes; access, CORS, logs and audit as GET's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter.config import Settings
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.support import (
    Response,
    Writer,
    authorizer_context,
    encounter,
    handlers_on,
    ids_of,
    invoke,
    relations,
    search,
    search_by_post,
)

SECRET_VALUE = "p1-not-for-logs"
STRICT = {"Prefer": "handling=strict"}


@pytest.fixture
def stored(put: Writer) -> None:
    put(
        *(encounter(f"e{n}", subject="Patient/p1", start=f"2021-0{n}-01") for n in range(1, 8)),
        encounter("x1", subject="Patient/p2", start="2021-02-15", status="planned"),
        encounter("g1", subject="Group/g7", start="2021-03-15", appointments=["Appointment/a1"]),
    )


def comparable(response: Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, without the Bundle's meta.lastUpdated (the time of the answer)."""
    status, headers, body = response
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        body = {**body, "meta": {}}
    return status, headers, body


# (query, headers): searches and errors, each answered by GET and by POST alike.
CASES: list[tuple[str, dict[str, str]]] = [
    ("", {}),
    ("patient=p1", {}),
    ("patient=Patient/p1&_count=3", {}),
    ("patient=p1&patient=p2", {}),
    ("patient=p1,p2&status=finished", {}),
    ("subject=Group/g7", {}),
    ("appointment=Appointment/a1", {}),
    ("date=ge2021-02-01&date=lt2021-05-01", {}),
    ("date=ge2021-02-01T00:00:00+00:00", {}),  # a '+' that the form encodes
    ("_id=e1,e2,e9", {}),
    ("status=planned", {}),
    ("_count=0", {}),
    ("_total=none&_count=2", {}),
    ("_offset=5&_count=2", {}),
    ("patient=p1&_pretty=true", {}),
    ("patient=p1&_format=json", {}),
    ("patient=", {}),
    ("_sort=-date&patient=p1", {}),
    ("_tag=urgent&patient=p1", {}),
    ("_tag=urgent&patient=p1", STRICT),
    ("_sort=status", {}),
    ("_include=Encounter:subject&patient=p1", {}),
    ("_include=Encounter:subject&patient=p1", STRICT),
    ("_revinclude:iterate=Observation:encounter", STRICT),
    ("_offset=10001", {}),
    ("_count=abc", {}),
    ("_count=1&_count=2", {}),
    ("date=yesterday", {}),
    ("date:missing=true", {}),
    ("_cursor=forged", {}),
    ("_format=xml", {}),
    ("patient=p1", {"Accept": "application/fhir+xml"}),
]
IDS = [f"{query or '(none)'}{' strict' if headers else ''}" for query, headers in CASES]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("query", "headers"), CASES, ids=IDS)
def test_the_body_gives_the_answer_of_the_get(query: str, headers: dict[str, str]) -> None:
    expected = comparable(search(query, headers))
    assert expected[0] in (200, 400, 406)
    assert comparable(search_by_post(form(query), headers=headers)) == expected


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("query", "headers"), CASES, ids=IDS)
def test_the_url_of_a_post_gives_the_answer_of_the_get(query: str, headers: dict[str, str]) -> None:
    assert comparable(search_by_post("", query, headers)) == comparable(search(query, headers))


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("url", "body", "as_get"),
    [
        ("_count=2", "patient=p1", "patient=p1&_count=2"),
        (
            "date=ge2021-02-01",
            "date=lt2021-05-01&patient=p1",
            "date=ge2021-02-01&date=lt2021-05-01&patient=p1",
        ),
        ("patient=p1", "patient=p2", "patient=p1&patient=p2"),  # repeated: AND, nothing matches both
        ("_count=2", "_count=3", "_count=2&_count=3"),  # a result parameter twice: 400 either way
    ],
)
def test_url_and_body_parameters_both_apply_as_repeats(url: str, body: str, as_get: str) -> None:
    assert comparable(search_by_post(form(body), url)) == comparable(search(as_get))


@pytest.mark.usefixtures("stored")
def test_a_base64_body_gives_the_same_answer() -> None:
    query = "patient=p1&date=ge2021-03-01&_count=2"
    assert comparable(search_by_post(form(query), base64_encoded=True)) == comparable(search(query))


@pytest.mark.usefixtures("stored")
def test_the_links_are_get_urls_and_following_them_walks_every_match_once() -> None:
    status, _, page = search_by_post("patient=p1&_count=3")
    assert (status, ids_of(page), page["total"]) == (200, ["e1", "e2", "e3"], 7)
    links = relations(page)
    assert all(urlsplit(url).path == "/v1/Encounter" for url in links.values()), links
    assert parse_qs(urlsplit(links["self"]).query) == {"patient": ["p1"], "_count": ["3"], "_offset": ["0"]}
    seen = ids_of(page)
    following: str | None = links["next"]
    while following is not None:
        status, _, page = search(urlsplit(following).query)
        assert status == 200
        seen.extend(ids_of(page))
        following = relations(page).get("next")
    assert seen == [f"e{n}" for n in range(1, 8)]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "text"),
    [
        (
            "patient=p1",
            {"Content-Type": "application/json"},
            415,
            "not-supported",
            "POST /Encounter/_search takes a body of type application/x-www-form-urlencoded, "
            "not 'application/json'",
        ),
        (
            "patient=p1",
            {"Content-Type": "application/x-www-form-urlencoded; charset=latin-1"},
            415,
            "not-supported",
            "The form body must be UTF-8 (Content-Type: application/x-www-form-urlencoded; charset=utf-8)",
        ),
        (
            "patient=%FF",
            {},
            400,
            "invalid",
            "The form body is not valid UTF-8 form encoding (a byte, or a percent-encoded byte sequence, "
            "is not UTF-8)",
        ),
        ("_id=" + "a" * 70_000, {}, 413, "too-long", "The form body is over 64 KB"),
    ],
    ids=["json", "latin-1", "not utf-8", "too large"],
)
def test_a_body_it_cannot_read_is_a_4xx_operation_outcome(
    body: str, headers: dict[str, str], status: int, code: str, text: str
) -> None:
    answer = search_by_post(body, headers=headers)
    assert answer[0] == status
    assert answer[1]["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert (answer[1]["Cache-Control"], answer[1]["X-Content-Type-Options"]) == ("no-store", "nosniff")
    assert answer[2] == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "details": {"text": text}}],
    }


@pytest.mark.usefixtures("stored")
def test_raw_bytes_that_are_not_utf8_are_a_400() -> None:
    status, _, outcome = search_by_post(b"patient=\xff", base64_encoded=True)
    assert (status, outcome["issue"][0]["code"]) == (400, "invalid")


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("url", "body"), [("", "patient=p1&access_token=abc"), ("access_token=abc", "patient=p1")]
)
def test_an_access_token_in_the_body_or_the_url_is_a_401_invalid_request(url: str, body: str) -> None:
    status, headers, outcome = search_by_post(body, url)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
    assert outcome["issue"][0]["code"] == "login"
    assert "abc" not in json.dumps(outcome)


# ---- access: SMART scopes and the patient compartment, as for GET ----------------------------

SMART = Settings.from_environment({**TEST_ENVIRONMENT, "AUTH_MODE": "smart"})


@pytest.fixture
def smart(table: Any, put: Writer) -> Iterator[None]:
    put(
        encounter("a-1", subject="Patient/pa", start="2021-01-01"),
        encounter("a-2", subject="Patient/pa", start="2021-02-01"),
        encounter("b-1", subject="Patient/pb", start="2021-01-15"),
    )
    with handlers_on(table, SMART):
        yield


def post_as(token: dict[str, str], body: str) -> Response:
    event = rest_api_event(
        method="POST",
        path="/Encounter/_search",
        resource="/Encounter/_search",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=body,
    )
    event["requestContext"]["authorizer"] = token
    return invoke(event)


def get_as(token: dict[str, str], query: str) -> Response:
    event = rest_api_event(
        method="GET", path="/Encounter", resource="/Encounter", query=parse_qs(query, keep_blank_values=True)
    )
    event["requestContext"]["authorizer"] = token
    return invoke(event)


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize("body", ["", "patient=pb", "patient=pa,pb", "_id=a-1,b-1", "date=2021-01"])
def test_a_patient_token_finds_only_its_own_encounters(body: str) -> None:
    token = authorizer_context("patient/Encounter.rs", patient="pa")
    answer = post_as(token, body)
    status, _, bundle = answer
    assert status == 200
    assert set(ids_of(bundle)) <= {"a-1", "a-2"}
    assert "Patient/pb" not in json.dumps(bundle.get("entry", []))
    assert comparable(answer) == comparable(get_as(token, body))


@pytest.mark.usefixtures("smart")
def test_a_token_without_search_is_a_403() -> None:
    token = authorizer_context("patient/Encounter.r", patient="pa")
    status, _, outcome = post_as(token, "patient=pa")
    assert (status, outcome["issue"][0]["code"]) == (403, "forbidden")
    assert comparable(get_as(token, "patient=pa")) == (status, *comparable(post_as(token, "patient=pa"))[1:])


# ---- CORS, logs and audit ---------------------------------------------------------------------


@pytest.mark.usefixtures("stored")
def test_an_allowed_origin_gets_the_cors_headers_as_for_get(table: Any) -> None:
    origin = "https://app.example.org"
    settings = Settings.from_environment({**TEST_ENVIRONMENT, "CORS_ALLOWED_ORIGINS": origin})
    with handlers_on(table, settings):
        _, posted, _ = search_by_post("patient=p1", headers={"Origin": origin})
        _, got, _ = search("patient=p1", headers={"Origin": origin})
    assert posted["Access-Control-Allow-Origin"] == origin
    assert {k: v for k, v in posted.items() if k.startswith(("Access-Control", "Vary"))} == {
        k: v for k, v in got.items() if k.startswith(("Access-Control", "Vary"))
    }


@pytest.mark.usefixtures("stored")
def test_the_log_and_audit_lines_name_the_parameters_of_url_and_body_never_their_values(
    table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = "fhir-encounter-post-logging"
    settings = Settings.from_environment(
        {**TEST_ENVIRONMENT, "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_SERVICE_NAME": service}
    )
    with handlers_on(table, settings):
        assert search_by_post(f"patient={SECRET_VALUE}&_tag=urgent", "_count=5")[0] == 200
        assert search_by_post(f"date={SECRET_VALUE}", "_count=5")[0] == 400
        assert search_by_post(f"patient={SECRET_VALUE}", headers={"Content-Type": "text/plain"})[0] == 415
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    audit = [line for line in lines if line["service"] == f"{service}-audit"]
    assert [(a["route"], a["parameters"], a["status"], a["compartment"]) for a in audit] == [
        ("POST /Encounter/_search", ["_count", "_tag", "patient"], 200, "all"),
        ("POST /Encounter/_search", ["_count", "date"], 400, "all"),
        ("POST /Encounter/_search", [], 415, "all"),
    ]
    (answered,) = [
        line for line in lines if line["service"] == service and line["message"] == "search answered"
    ]
    assert (answered["parameters"], answered["ignored_parameters"]) == (["patient"], ["_tag"])
    assert SECRET_VALUE not in out


def form(query: str) -> str:
    """A query string as a form body: the same pairs, form-encoded ('+' of a date as %2B)."""
    pairs = [part.split("=", 1) for part in query.split("&") if part]
    return "&".join(
        "=".join(piece.replace("%", "%25").replace("+", "%2B").replace(" ", "+") for piece in pair)
        for pair in pairs
    )
