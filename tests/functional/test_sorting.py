"""``_sort`` against the brute-force oracle (tests/oracle.py): every supported key and combination,
alone and with criteria that pick each kind of plan, walked by next links three matches a page
(so that pages end inside runs of equal values), totals included. The data has runs: Encounters
with the same period start, without a start, and two loads, so many share meta.lastUpdated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.every_parameter import SORTS, api_answer, encounters, oracle_answer, sort_queries, ties, walk
from tests.support import loaded_moto_table, search

FIRST = encounters(30)


@pytest.fixture(scope="module")
def stored() -> Iterator[list[dict[str, Any]]]:
    """Two loads (the second a few milliseconds later); the resources as the API serves them."""
    with loaded_moto_table(FIRST, ties(FIRST)):
        yield [entry["resource"] for page in walk([("_count", "100")]) for entry in page["entry"]]


def test_the_data_has_runs(stored: list[dict[str, Any]]) -> None:
    updated = [r["meta"]["lastUpdated"] for r in stored]
    starts = [r.get("period", {}).get("start") for r in stored]
    assert len(set(updated)) < len(updated) / 4  # most share a load's instant
    assert starts.count(next(s for s in starts if starts.count(s) >= 5)) >= 5


@pytest.mark.parametrize("sort", SORTS)
def test_each_order_walks_as_the_oracle(stored: list[dict[str, Any]], sort: str) -> None:
    mismatches = []
    for pairs in sort_queries(sort):
        found, expected = api_answer(pairs, count=3), oracle_answer(stored, pairs)
        if found != expected:
            mismatches.append((pairs, found, expected))
    assert mismatches == []


def test_last_updated_criteria_narrow_its_order_and_answer_as_the_oracle(
    stored: list[dict[str, Any]],
) -> None:
    """Each prefix against the first load's instant (and a second before and after it)."""
    first = min(r["meta"]["lastUpdated"] for r in stored)
    mismatches = []
    for prefix in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"):
        for value, sort in ((first, "_lastUpdated"), (first[:19], "-_lastUpdated,date")):
            pairs = [("_lastUpdated", prefix + value), ("_sort", sort)]
            found, expected = api_answer(pairs, count=5), oracle_answer(stored, pairs)
            if found != expected:
                mismatches.append((pairs, found, expected))
    assert mismatches == []
    both = [("_lastUpdated", f"gt{first}"), ("_lastUpdated", "lt2100"), ("_sort", "-_lastUpdated")]
    assert api_answer(both, count=4) == oracle_answer(stored, both)
    assert 0 < len(oracle_answer(stored, both)[0]) < len(stored)


def test_links_carry_the_sort_and_a_cursor_is_bound_to_it(stored: list[dict[str, Any]]) -> None:
    status, _, bundle = search({"_sort": ["-_lastUpdated, date"], "_count": ["2"]})
    assert status == 200
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert "?_sort=-_lastUpdated,date&" in links["self"]  # normalised: no space
    assert "?_sort=-_lastUpdated,date&" in links["next"]
    next_query = links["next"].split("?", 1)[1].replace("_sort=-_lastUpdated,date", "_sort=date")
    status, _, outcome = search(next_query)
    assert status == 400
    assert "_cursor" in diagnostics(outcome)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("status", "sorting is supported by date, _lastUpdated"),
        ("date,-date", "'date' is named twice"),
        ("-", "an empty sort key"),
        ("date,,_lastUpdated", "an empty sort key"),
        ("_id", "sorting is supported by"),
    ],
)
def test_a_sort_it_cannot_give_is_a_400_naming_it(
    stored: list[dict[str, Any]], value: str, named: str
) -> None:
    status, _, outcome = search({"_sort": [value]})
    assert status == 400
    assert "'_sort'" in diagnostics(outcome)
    assert named in diagnostics(outcome)


def diagnostics(outcome: dict[str, Any]) -> str:
    return str(outcome["issue"][0]["details"]["text"])
