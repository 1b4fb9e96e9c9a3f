"""Date searches on DynamoDB Local over Encounters of every period family (each duration class,
long stays, open and start-less periods, none), checked against the registry's match rule applied
to every Encounter: each walk of next links returns exactly the matches, in (start, id) order, with
the right total, and `_total=none` walks the same ids."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from fhir_encounter.search.parameters import DATE_PREFIXES, value_paths
from fhir_encounter.search.query import parse_search
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import dynamodb_client
from fhir_encounter.store.items import index_row_of, period_partition
from fhir_encounter.store.writer import SPAN_UPDATE_PARTITIONS, EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests.support import ROOT, TEST_SETTINGS, encounter, handlers_on, ids_of, link, micros, search

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.integration

TABLE = "encounters-period-families"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST, LAST = micros("2019-01-01T00:00:00Z"), micros("2024-01-01T00:00:00Z")
MINUTE, HOUR, DAY = 60_000_000, 3_600_000_000, 86_400_000_000
# lengths spread over every class edge: minutes, hours, days, weeks, months, a year
LENGTHS = [0, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 10 * HOUR, DAY, 3 * DAY, 4 * DAY, 10 * DAY, 16 * DAY]
LENGTHS += [40 * DAY, 64 * DAY, 65 * DAY, 200 * DAY, 400 * DAY]


def _text(instant: int, cut: int) -> str:
    text = (EPOCH + timedelta(microseconds=instant)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:cut]
    return text + ("Z" if cut >= 16 else "")


def _encounters(rng: random.Random, count: int) -> list[dict[str, Any]]:
    resources = []
    for n in range(count):
        start = rng.randrange(FIRST, LAST)
        end = start + rng.choice(LENGTHS) + rng.randrange(0, MINUTE)
        cut = rng.choice([10, 19, 19, 19, 26])
        shape = rng.random()
        period = {"start": _text(start, cut), "end": _text(end, cut)}
        if shape < 0.08:
            period = {}  # no period
        elif shape < 0.16:
            period = {"start": period["start"]}  # open
        elif shape < 0.2:
            period = {"end": period["end"]}  # start-less
        resource = encounter(f"pf-{n:04d}", subject=f"Patient/pf-{n % 7}", **period)
        resources.append(resource)
    return resources


@pytest.fixture(scope="module")
def population(dynamodb: DynamoDBClient, dynamodb_endpoint: str) -> Iterator[list[dict[str, Any]]]:
    create_table(dynamodb, TABLE, ROOT / "template.yaml")
    resources = _encounters(random.Random(2026), 600)
    EncounterWriter(dynamodb, TABLE, value_paths()).write(resources)
    settings = replace(TEST_SETTINGS, table_name=TABLE)
    with handlers_on(dynamodb_client(dynamodb_endpoint), settings):
        yield resources


def _walk(query: dict[str, list[str]]) -> tuple[list[str], list[int | None]]:
    """Every id of a search, following next links; and each page's total."""
    status, _, bundle = search(query)
    assert status == 200, bundle
    ids, totals = ids_of(bundle), [bundle.get("total")]
    while (url := link(bundle, "next")) is not None:
        status, _, bundle = search(parse_qs(urlsplit(url).query))
        assert status == 200, bundle
        ids += ids_of(bundle)
        totals.append(bundle.get("total"))
    return ids, totals


def _expected(resources: list[dict[str, Any]], query: dict[str, list[str]]) -> list[str]:
    parsed = parse_search(query)[0]
    now = time.time_ns() // 1000  # as the handler's: ap's tolerance depends on it
    rows = sorted((index_row_of(resource) for resource in resources), key=lambda row: row.sort_key)
    return [row.id for row in rows if parsed.matches(row, now)]


def _value(rng: random.Random) -> str:
    return f"{rng.choice(DATE_PREFIXES)}{_text(rng.randrange(FIRST, LAST), rng.choice([4, 7, 10, 16, 19]))}"


def _queries() -> list[dict[str, list[str]]]:
    rng = random.Random(11)
    queries = [
        {"date": [f"{prefix}{value}"]}
        for prefix in DATE_PREFIXES
        for value in ("2021", "2021-03", "2021-03-15", "2021-03-15T10:00:00Z")
    ]
    queries += [
        {"date": [f"ge{low}", f"lt{high}"]}
        for low, high in (("2021-03-15", "2021-03-16"), ("2021-03", "2021-04"), ("2021", "2022"))
    ]
    for _ in range(40):
        dates = [",".join(_value(rng) for _ in range(rng.randint(1, 2))) for _ in range(rng.randint(1, 2))]
        query = {"date": dates}
        if rng.random() < 0.25:
            query["patient"] = [f"pf-{rng.randrange(7)}"]
        queries.append(query)
    return queries


@pytest.mark.parametrize("query", _queries(), ids=lambda query: urlencode(query, doseq=True))
def test_a_date_walk_returns_exactly_the_matches_in_order(
    population: list[dict[str, Any]], query: dict[str, list[str]]
) -> None:
    expected = _expected(population, query)
    ids, totals = _walk({**query, "_count": ["23"]})
    assert ids == expected
    assert totals[0] == len(expected)
    lean, _ = _walk({**query, "_count": ["17"], "_total": ["none"]})
    assert lean == expected


@pytest.mark.parametrize("query", ["", "status=finished", "patient=pf-3"])
def test_searches_without_a_date_walk_every_family(population: list[dict[str, Any]], query: str) -> None:
    params = parse_qs(query)
    expected = _expected(population, params)
    assert len(expected) >= 80
    ids, totals = _walk({**params, "_count": ["50"]})
    assert (ids, totals[0]) == (expected, len(expected))


def test_every_partition_has_a_span_that_holds_each_of_its_encounters(
    population: list[dict[str, Any]], dynamodb: DynamoDBClient
) -> None:
    """600 Encounters in one write: batches of 100 that touch more partitions than one UpdateItem's
    condition may name (DynamoDB's 4 KB expression limit)."""
    item = dynamodb.get_item(TableName=TABLE, Key=keys.bucket_directory_key())["Item"]
    spans = keys.directory_spans(item)
    partitions = {period_partition(index_row_of(resource)) for resource in population}
    assert len(partitions) > SPAN_UPDATE_PARTITIONS
    assert set(spans) == partitions == set(item[keys.ATTR_BUCKETS]["SS"])
    for resource in population:
        row = index_row_of(resource)
        first, last = spans[period_partition(row)]
        assert first <= row.sort_key <= last
