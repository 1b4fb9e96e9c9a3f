"""Paging over HTTP: walking every next link, the links of each page, cursors, _count and _offset."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from tests.support import PAGER_ORDER, Api, ids_of, issue, link, link_params

pytestmark = pytest.mark.integration

PAGE = 3


def offset_of(bundle: dict[str, Any], relation: str) -> int:
    return int(link_params(bundle, relation)["_offset"][0])


def with_params(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced (the others kept in order)."""
    parts = urlsplit(url)
    params = [(name, value) for name, values in parse_qs(parts.query).items() for value in values]
    params = [(name, changes.get(name, value)) for name, value in params]
    params += [(name, value) for name, value in changes.items() if name not in dict(params)]
    return urlunsplit(parts._replace(query=urlencode(params)))


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", PAGE),
        ("patient=itest-pager", PAGE),
        ("date=ge2021-01-01", PAGE),  # bucket after bucket of the period-start index
        ("patient=itest-pager,itest-pat-1", PAGE),  # two subject partitions merged
        ("appointment=itest-appt-1,itest-appt-2,itest-appt-3,itest-appt-4", 1),  # one encounter, 3 links
    ],
    ids=["no parameters", "patient", "date", "two patients", "appointments"],
)
def test_walking_next_links_visits_every_match_once(api: Api, query: str, count: int) -> None:
    pages = api.walk(f"{query}&_count={count}")
    walked = [encounter_id for page in pages for encounter_id in ids_of(page)]
    total = pages[0]["total"]
    assert len(pages) == -(-total // count)
    assert all(page["total"] == total for page in pages)
    assert [len(ids_of(page)) for page in pages[:-1]] == [count] * (len(pages) - 1)
    assert 1 <= len(ids_of(pages[-1])) <= count
    assert len(set(walked)) == len(walked) == total
    assert walked == api.ids(query)  # the same order as 100 a page


def test_walking_the_patient_search_follows_the_documented_order(api: Api) -> None:
    pages = api.walk(f"patient=itest-pager&_count={PAGE}")
    assert [ids_of(page) for page in pages] == [PAGER_ORDER[i : i + PAGE] for i in range(0, 8, PAGE)]


def test_search_with_no_parameters_lists_encounters_without_a_period(api: Api) -> None:
    assert {"itest-e4", "itest-p5"} <= set(api.ids(""))


@pytest.mark.parametrize("query", ["", "patient=itest-pager"], ids=["no parameters", "patient"])
def test_every_page_has_self_first_last_and_previous_or_next_as_due(api: Api, query: str) -> None:
    pages = api.walk(f"{query}&_count={PAGE}")
    total = pages[0]["total"]
    for number, page in enumerate(pages):
        relations = [item["relation"] for item in page["link"]]
        expected = ["self", "first"]
        expected += ["previous"] if number > 0 else []
        expected += ["next"] if number < len(pages) - 1 else []
        assert relations == [*expected, "last"]
        assert all(item["url"].startswith(f"{api.base_url}/Encounter?") for item in page["link"])
        assert offset_of(page, "self") == number * PAGE
        assert offset_of(page, "first") == 0
        assert offset_of(page, "last") == (total - 1) // PAGE * PAGE
        assert link_params(page, "self")["_count"] == [str(PAGE)]
        if number > 0:
            assert offset_of(page, "previous") == (number - 1) * PAGE
        if number < len(pages) - 1:
            assert offset_of(page, "next") == (number + 1) * PAGE
            assert "_cursor" in link_params(page, "next")


def test_previous_and_last_links_lead_to_those_pages(api: Api) -> None:
    pages = api.walk(f"patient=itest-pager&_count={PAGE}")
    previous = api.request(str(link(pages[1], "previous")))
    last = api.request(str(link(pages[0], "last")))
    assert ids_of(previous.body) == ids_of(pages[0])
    assert ids_of(last.body) == ids_of(pages[-1])


def tampered(cursor: str, how: str) -> str:
    """The cursor with its signed payload or its signature altered (and not re-signed)."""
    body, signature = cursor.split(".")
    if how == "signature":
        middle = len(signature) // 2  # not the last character: its low bits are base64 padding
        return (
            f"{body}.{signature[:middle]}{'B' if signature[middle] == 'A' else 'A'}{signature[middle + 1 :]}"
        )
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["k"] = "0000-00-00T00:00:00.000000Z#"  # resume from the start of the index
    encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{encoded.decode().rstrip('=')}.{signature}"


@pytest.mark.parametrize("how", ["payload", "signature"])
def test_a_tampered_cursor_is_a_400(api: Api, how: str) -> None:
    next_url = str(link(api.search(f"_count={PAGE}").body, "next"))
    cursor = parse_qs(urlsplit(next_url).query)["_cursor"][0]
    reply = api.request(with_params(next_url, _cursor=tampered(cursor, how)))
    assert reply.status == 400
    assert "'_cursor'" in issue(reply)["details"]["text"]


@pytest.mark.parametrize(
    "changes",
    [{"patient": "itest-pat-1"}, {"_offset": "6"}, {"_count": "4"}],
    ids=["other search", "other offset", "other count"],
)
def test_a_cursor_from_another_request_is_a_400(api: Api, changes: dict[str, str]) -> None:
    next_url = str(link(api.search(f"patient=itest-pager&_count={PAGE}").body, "next"))
    reply = api.request(with_params(next_url, **changes))
    assert reply.status == 400
    assert issue(reply)["code"] == "invalid"


def test_count_zero_answers_only_the_total(api: Api) -> None:
    total = len(api.ids("patient=itest-pager"))
    bundle = api.search("patient=itest-pager&_count=0").body
    assert bundle["total"] == total == len(PAGER_ORDER)
    assert "entry" not in bundle
    assert [item["relation"] for item in bundle["link"]] == ["self"]


def test_offset_past_the_end_is_an_empty_page_whose_previous_is_the_last_page(api: Api) -> None:
    reply = api.search(f"patient=itest-pager&_count={PAGE}&_offset=30")
    assert reply.status == 200
    assert reply.body["total"] == len(PAGER_ORDER)
    assert "entry" not in reply.body
    assert link(reply.body, "next") is None
    last_page = (len(PAGER_ORDER) - 1) // PAGE * PAGE
    assert offset_of(reply.body, "previous") == offset_of(reply.body, "last") == last_page
    assert ids_of(api.request(str(link(reply.body, "previous"))).body) == PAGER_ORDER[last_page:]


def test_offset_jumps_to_that_match(api: Api) -> None:
    reply = api.search(f"patient=itest-pager&_count={PAGE}&_offset=4")
    assert ids_of(reply.body) == PAGER_ORDER[4 : 4 + PAGE]


def test_a_count_over_the_maximum_is_clamped_and_shown(api: Api) -> None:
    bundle = api.search("_count=1000").body
    assert link_params(bundle, "self")["_count"] == ["100"]
    assert len(ids_of(bundle)) == min(100, bundle["total"])
