"""POST /Encounter/_search through `fhir-encounter serve` over HTTP, on DynamoDB Local: the GET's
answer for the same parameters, GET links that page on, 415 for another body type, the preflight,
and GET on its path a 405."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support import Api, ids_of, issue, link

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def without_last_updated(text: str) -> Any:
    body = json.loads(text)
    body.pop("meta", None)
    return body


@pytest.mark.parametrize(
    "pairs",
    [
        [("patient", "itest-pat-1")],
        [("patient", "Patient/itest-pat-1"), ("_count", "2")],
        [("date", "ge2021-01-01T00:00:00+00:00"), ("_total", "none")],
        [("status", "finished,planned"), ("_count", "3")],
        [("_id", "itest-e1,itest-e2")],
    ],
)
def test_a_search_by_post_answers_as_the_get(api: Api, pairs: list[tuple[str, str]]) -> None:
    got = api.search(pairs)
    posted = api.request("/Encounter/_search", FORM, method="POST", body=urlencode(pairs).encode())
    assert (posted.status, posted.headers["Content-Type"]) == (got.status, got.headers["Content-Type"])
    assert without_last_updated(posted.text) == without_last_updated(got.text)


def test_url_and_body_both_apply_and_next_links_are_get_urls(api: Api) -> None:
    posted = api.request("/Encounter/_search?_count=1", FORM, method="POST", body=b"_total=none")
    assert posted.status == 200
    following = link(posted.body, "next")
    assert following is not None
    assert "/Encounter?" in following
    assert "_total=none" in following
    assert "_count=1" in following
    assert ids_of(api.request(following).body) != ids_of(posted.body)


def test_another_body_type_is_a_415(api: Api) -> None:
    reply = api.request(
        "/Encounter/_search", {"Content-Type": "application/json"}, method="POST", body=b'{"patient":"x"}'
    )
    assert reply.status == 415
    assert issue(reply)["code"] == "not-supported"


def test_get_on_the_post_path_is_a_405_that_allows_post(api: Api) -> None:
    reply = api.request("/Encounter/_search")
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST, OPTIONS"
    assert issue(reply)["code"] == "not-supported"


def test_the_preflight_of_the_post_path_allows_post(api: Api) -> None:
    reply = api.request(
        "/Encounter/_search",
        {"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"},
        method="OPTIONS",
    )
    assert (reply.status, reply.headers["Allow"]) == (204, "POST, OPTIONS")
