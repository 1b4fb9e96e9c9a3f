"""A table loaded by the release before the value index (its writer linked no value and left the
table unmarked) keeps answering the six parameters it answered, unchanged; a parameter it is not
indexed for is a 400 that says to reindex, never an empty answer; ``fhir-encounter reindex``
links every Encounter (versions kept) and marks the table, after which every parameter answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.cli import main
from tests.every_parameter import api_answer, encounters, oracle_answer, walk
from tests.support import TEST_TABLE, handlers_on, search

ENCOUNTERS = encounters(30)
SIX = [
    [("patient", "patient-0001")],
    [("subject", "Group/g1")],
    [("date", "ge2021"), ("date", "lt2023")],
    [("status", "finished")],
    [("status", "in-progress"), ("patient", "patient-0001")],
    [("_id", "x-multi,x-bare")],
    [("appointment:missing", "true"), ("status", "planned")],
    [("patient", "patient-0001"), ("_sort", "-date")],  # the sort key's order needs no new index
]


def old_release_load(table: Any) -> None:
    """What the previous release's writer left: no value links, no value paths on the directory."""
    EncounterWriter(table, TEST_TABLE, ()).write(json.loads(json.dumps(ENCOUNTERS)))


def stored_resources() -> list[dict[str, Any]]:
    return [entry["resource"] for page in walk([("_count", "100")]) for entry in page["entry"]]


def test_the_six_parameters_answer_before_a_reindex_and_the_others_say_to_reindex(
    table: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    old_release_load(table)
    stored = stored_resources()
    for pairs in SIX:
        assert api_answer(pairs, count=5) == oracle_answer(stored, pairs), pairs
    for query in (
        "class=AMB",
        "patient=patient-0001&type=185347001",
        "identifier=urn:x|1",
        "_sort=-_lastUpdated",
    ):
        status, _, outcome = search(query)
        assert status == 400
        text = outcome["issue"][0]["details"]["text"]
        assert "not indexed in this server's table yet" in text
        assert "fhir-encounter reindex" in text

    assert main(["reindex", "--table", TEST_TABLE]) == 0
    printed = capsys.readouterr().out
    assert f"reindexed {len(ENCOUNTERS)}" in printed
    assert "the table is indexed for every search parameter" in printed

    # A container keeps what it read of the table's state for 10 s: a new one (as after that) sees it.
    with handlers_on(table):
        assert stored_resources() == stored  # versions and lastUpdated kept
        for pairs in [
            *SIX,
            [("class", "AMB")],
            [("patient", "patient-0001"), ("type", "185347001")],
            [("patient", "patient-0001"), ("_sort", "-_lastUpdated,date")],
        ]:
            assert api_answer(pairs, count=5) == oracle_answer(stored, pairs), pairs
    directory = table.get_item(TableName=TEST_TABLE, Key=keys.bucket_directory_key())["Item"]
    assert set(directory[keys.ATTR_VALUE_PATHS]["SS"]) == {p.state_name for p in value_paths()}


def test_a_second_reindex_changes_nothing(table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    old_release_load(table)
    assert main(["reindex", "--table", TEST_TABLE]) == 0
    capsys.readouterr()
    assert main(["reindex", "--table", TEST_TABLE]) == 0
    assert f"unchanged {len(ENCOUNTERS)}" in capsys.readouterr().out


def test_a_table_first_loaded_by_this_release_needs_no_reindex(table: Any) -> None:
    EncounterWriter(table, TEST_TABLE, value_paths()).write(json.loads(json.dumps(ENCOUNTERS)))
    assert search("class=AMB")[0] == 200
