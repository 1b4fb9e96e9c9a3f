"""DynamoDB throttling in the middle of a next-link walk (moto, the fault injected into the client
the handlers use): the page that meets it is a 503 with Retry-After, and the same next URL, sent
again once the fault clears, resumes from the same cursor: the walk ends with every match once, in
order, exactly as a walk that met no fault."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from fhir_encounter.errors import CONTENT_TYPE
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.support import Writer, encounter, ids_of, lambda_response

BUSY = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "transient",
            "details": {"text": "The Encounter store is busy; retry the request later"},
        }
    ],
}


@pytest.fixture
def stored(put: Writer) -> None:
    """Twelve Encounters of Patient/p1 over two years (three months' buckets), three of another
    patient among them, and two without a start."""
    resources = [
        encounter(f"enc-{n:02d}", subject="Patient/p1", start=f"202{1 + n % 2}-{1 + n % 3:02d}-{10 + n:02d}")
        for n in range(12)
    ]
    resources += [encounter(f"other-{n}", subject="Patient/p2", start=f"2021-02-0{n + 1}") for n in range(3)]
    resources += [encounter(f"open-{n}", subject="Patient/p1") for n in range(2)]
    put(*resources)


def get(url_or_query: str) -> dict[str, Any]:
    """The search handler's whole response to a next URL (or a query string)."""
    query = parse_qs(urlsplit(url_or_query).query if "?" in url_or_query else url_or_query)
    return lambda_response(
        rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query)
    )


def next_url(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def walk(first: str) -> list[tuple[list[str], str | None]]:
    """Each page of a walk: its ids and its next URL."""
    pages = []
    url: str | None = first
    while url is not None:
        response = get(url)
        assert response["statusCode"] == 200, response["body"]
        bundle = json.loads(response["body"])
        url = next_url(bundle)
        pages.append((ids_of(bundle), url))
    return pages


@contextmanager
def throttled(client: Any, operation: str) -> Iterator[list[int]]:
    """Every ``operation`` call on ``client`` fails as DynamoDB throttling does (raised before the
    call is sent, so botocore's retries do not hide it) while the block lasts; yields the count."""
    calls: list[int] = []

    def fail(**_: Any) -> None:
        calls.append(1)
        raise ClientError(
            {
                "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"},
                "ResponseMetadata": {
                    "RequestId": "throttled",
                    "HostId": "",
                    "HTTPStatusCode": 400,
                    "HTTPHeaders": {},
                    "RetryAttempts": 0,
                },
            },
            operation,
        )

    event = f"before-call.dynamodb.{operation}"
    client.meta.events.register(event, fail)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, fail)


WALKS = [
    "patient=p1&_count=3",  # subject-index
    "_count=4",  # period-start index, bucket by bucket
    "date=ge2021-02&_count=2",  # period-start index from a bound
    "patient=p1&status=finished&_count=3&_total=none",  # no total: the cursor carries none
]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("first", WALKS)
@pytest.mark.parametrize("operation", ["Query", "BatchGetItem"])
@pytest.mark.parametrize("faulty_page", [1, 2])
def test_throttling_mid_walk_is_503_and_the_same_next_url_resumes_without_gap_or_repeat(
    table: Any, first: str, operation: str, faulty_page: int
) -> None:
    expected = walk(first)  # the walk when nothing fails
    assert len(expected) > faulty_page + 1  # the fault meets a page in the middle
    everything = [i for ids, _ in expected for i in ids]
    assert len(everything) == len(set(everything))

    pages: list[tuple[list[str], str | None]] = []
    url: str | None = first
    for page in range(len(expected)):
        assert url is not None
        if page == faulty_page:
            with throttled(table, operation) as calls:
                response = get(url)
            assert calls  # the page did reach the failing call
            assert response["statusCode"] == 503
            assert response["multiValueHeaders"]["Retry-After"] == ["2"]
            assert response["multiValueHeaders"]["Content-Type"] == [CONTENT_TYPE]
            assert json.loads(response["body"]) == BUSY
        response = get(url)  # the same next URL again (or for the first time)
        assert response["statusCode"] == 200
        bundle = json.loads(response["body"])
        url = next_url(bundle)
        pages.append((ids_of(bundle), url))

    assert url is None
    assert pages == expected  # the same pages and next URLs: the cursor resumed where it stood
    seen = [i for ids, _ in pages for i in ids]
    assert seen == everything  # every match once, in search order


@pytest.mark.usefixtures("stored")
def test_a_walk_that_meets_throttling_on_every_page_still_reaches_every_match_once(table: Any) -> None:
    """Each page fails once, then succeeds when its next URL is sent again."""
    expected = [i for ids, _ in walk("patient=p1&_count=2") for i in ids]
    seen: list[str] = []
    url: str | None = "patient=p1&_count=2"
    failures = 0
    while url is not None:
        with throttled(table, "Query"):
            failed = get(url)
        assert failed["statusCode"] == 503
        failures += 1
        response = get(url)
        assert response["statusCode"] == 200
        bundle = json.loads(response["body"])
        seen += ids_of(bundle)
        url = next_url(bundle)
    assert seen == expected
    assert len(seen) == 14  # twelve Encounters and two without a start, of Patient/p1
    assert failures == 7
