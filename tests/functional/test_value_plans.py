"""What a search with value criteria and dates reads: the term that is found small drives; when
every term is large and dates bound the search, the period walk drives and each term is checked by
its link items, so that an AND reads about the matches of its most selective criterion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhir_encounter.config import Settings
from tests.environment import TEST_ENVIRONMENT
from tests.support import USER_TOKEN, costed_walk, encounter, loaded_moto_table

AT_INFO = Settings.from_environment(
    {**TEST_ENVIRONMENT, "AUTH_MODE": "smart", "POWERTOOLS_LOG_LEVEL": "INFO"}
)
DAYS = 360  # one Encounter a day through 2021, all finished and AMB: both terms are large


def population() -> list[dict[str, Any]]:
    first = datetime(2021, 1, 1, 9, tzinfo=UTC)
    made = []
    for day in range(DAYS):
        start = first + timedelta(days=day)
        resource = encounter(
            f"e-{day:03d}",
            subject=f"Patient/p{day % 7}",
            start=start.isoformat().replace("+00:00", "Z"),
            end=(start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        )
        resource["identifier"] = [{"system": "urn:visit", "value": f"V{day:03d}"}]
        made.append(resource)
    return made


@pytest.fixture(scope="module")
def table() -> Iterator[Any]:
    with loaded_moto_table(population(), settings=AT_INFO) as client:
        yield client


@pytest.mark.usefixtures("table")
def test_large_terms_within_a_month_walk_the_month(caplog: pytest.LogCaptureFixture) -> None:
    query = "status=finished&class=AMB&date=ge2021-06-01&date=lt2021-07-01&_count=100"
    [(cost, shape)] = costed_walk(query, USER_TOKEN, lambda: caplog.records)
    matches = len(shape[4])
    assert matches == shape[3] == 30
    # The probes (32 rows of each term), the month's rows, and the page's bodies: not the
    # five months of finished Encounters before June that the status term's range holds.
    assert cost["rows_read"] <= 2 * 32 + 30 + 2 + matches


@pytest.mark.usefixtures("table")
def test_a_small_term_drives_within_a_wide_window(caplog: pytest.LogCaptureFixture) -> None:
    query = "identifier=urn:visit|V100&status=finished&date=ge2021&date=lt2022"
    [(cost, shape)] = costed_walk(query, USER_TOKEN, lambda: caplog.records)
    assert shape[4] == ["e-100"]
    assert cost["rows_read"] <= 32 + 3  # the status probe, the identifier's one row, its body
