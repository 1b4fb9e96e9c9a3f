"""What a patient token's request reads does not depend on other patients' data: naming another
patient's busy partition (its id, its Encounters' ids, their appointment, a Group) costs what
naming ids that do not exist costs, read for read, as the routes' log lines count it (Queries,
index rows, keys, read units), and answers the same. Through the handlers, on moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from fhir_encounter.config import Settings
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.tables import create_table
from tests.environment import TEST_ENVIRONMENT
from tests.support import (
    ROOT,
    TEST_TABLE,
    costed_read,
    costed_walk,
    encounter,
    handlers_on,
    patient_token,
)

SMART_AT_INFO = Settings.from_environment(
    {**TEST_ENVIRONMENT, "AUTH_MODE": "smart", "POWERTOOLS_LOG_LEVEL": "INFO"}
)
BUSY = 300  # Encounters of patient pb, and of Group g1
OWN = 4  # Encounters of patient pa, whose token asks
PATIENT_A = patient_token("pa")
ALL = {**PATIENT_A, "scope": "user/Encounter.rs"}
B_IDS = [f"b-{n:03d}" for n in range(BUSY)]
MISSING_IDS = [f"x-{n:03d}" for n in range(BUSY)]


def own_encounters() -> list[dict[str, Any]]:
    return [
        encounter(f"a-{n}", subject="Patient/pa", start=f"2021-0{n}-01", appointments=["Appointment/ap-a"])
        for n in range(1, OWN + 1)
    ]


def busy_encounters() -> list[dict[str, Any]]:
    return [
        *(
            encounter(i, subject="Patient/pb", start="2021-05-01", appointments=["Appointment/ap-b"])
            for i in B_IDS
        ),
        *(encounter(f"g-{n:03d}", subject="Group/g1", start="2021-05-01") for n in range(BUSY)),
    ]


@pytest.fixture(scope="module")
def busy_table() -> Iterator[Any]:
    with mock_aws():
        import boto3

        client = boto3.client("dynamodb")
        create_table(client, TEST_TABLE, ROOT / "template.yaml")
        EncounterWriter(client, TEST_TABLE).write([*own_encounters(), *busy_encounters()])
        with handlers_on(client, SMART_AT_INFO):
            yield client


# (another patient's, none that exist): each pair must cost and answer the same
PAIRS = [
    ("patient=pb", "patient=nobody"),
    ("patient=Patient/pb", "patient=Patient/nobody"),
    ("subject=Patient/pb", "subject=Patient/nobody"),
    ("subject=pb", "subject=nobody"),
    ("subject=Group/g1", "subject=Group/nobody"),
    ("appointment=ap-b", "appointment=ap-nobody"),
    ("_id=" + ",".join(B_IDS[:100]), "_id=" + ",".join(MISSING_IDS[:100])),
    ("_id=" + ",".join(B_IDS[:50]) + "&_id=" + ",".join(B_IDS[25:75]), "_id=" + ",".join(MISSING_IDS[:50])),
    # combinations, some of which match the asking patient's own Encounters
    ("patient=pa,pb", "patient=pa,nobody"),
    ("subject=Patient/pa,Group/g1", "subject=Patient/pa,Group/nobody"),
    ("_id=a-1,a-2,a-3," + ",".join(B_IDS[:90]), "_id=a-1,a-2,a-3," + ",".join(MISSING_IDS[:90])),
    ("appointment=ap-a,ap-b", "appointment=ap-a,ap-nobody"),
    ("patient=pb&appointment=ap-b&date=2021", "patient=nobody&appointment=ap-nobody&date=2021"),
    ("appointment=ap-b&status=finished&date=ge2021", "appointment=ap-nobody&status=finished&date=ge2021"),
    ("_id=b-001,b-002&appointment=ap-b&date=2021-05", "_id=x-001,x-002&appointment=ap-nobody&date=2021-05"),
]
PAGING = ["", "&_count=0", "&_total=none", "&_count=1", "&_count=1&_total=none", "&_count=2&_offset=1"]


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("paging", PAGING)
@pytest.mark.parametrize(("another_patients", "missing"), PAIRS)
def test_naming_another_patients_data_costs_what_naming_nothing_costs(
    caplog: pytest.LogCaptureFixture, another_patients: str, missing: str, paging: str
) -> None:
    pages = costed_walk(another_patients + paging, PATIENT_A, lambda: caplog.records)
    assert pages == costed_walk(missing + paging, PATIENT_A, lambda: caplog.records)
    for cost, (status, *_) in pages:
        assert status == 200
        assert cost["rows_read"] <= 2 * OWN  # the asking patient's partition (counted, then read) at most
        assert cost["keys_read"] <= OWN  # the page's bodies, never the ids asked for


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("paging", PAGING)
@pytest.mark.parametrize(
    "query", ["patient=pb", "subject=Group/g1", "subject=pb", "patient=pb&appointment=ap-b&_id=b-001"]
)
def test_a_criterion_that_contradicts_the_compartment_reads_nothing_and_answers_an_empty_searchset(
    caplog: pytest.LogCaptureFixture, query: str, paging: str
) -> None:
    [(cost, shape)] = costed_walk(query + paging, PATIENT_A, lambda: caplog.records)
    assert cost == {"queries": 0, "rows_read": 0, "keys_read": 0, "read_units": 0}
    # the searchset any token gets for a search that matches nothing: total 0 (unless _total=none), its links
    [(_, usual)] = costed_walk("patient=nobody" + paging, ALL, lambda: caplog.records)
    assert shape == usual
    assert shape[:5] == (200, "Bundle", "searchset", None if "_total=none" in paging else 0, [])
    assert "self" in shape[5]


@pytest.mark.usefixtures("busy_table")
def test_a_search_within_the_compartment_still_finds_the_patients_own_encounters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pages = costed_walk("appointment=ap-a,ap-b&_count=3", PATIENT_A, lambda: caplog.records)
    assert [shape[3:5] for _, shape in pages] == [(OWN, ["a-1", "a-2", "a-3"]), (OWN, ["a-4"])]


@pytest.mark.usefixtures("busy_table")
@pytest.mark.parametrize("encounter_id", ["b-000", "g-000"])
def test_reading_another_patients_encounter_costs_and_answers_what_a_missing_one_does(
    caplog: pytest.LogCaptureFixture, encounter_id: str
) -> None:
    cost, status, text = costed_read(encounter_id, PATIENT_A, lambda: caplog.records)
    missing_cost, missing_status, missing_text = costed_read("nobody", PATIENT_A, lambda: caplog.records)
    assert (cost, status, text) == (
        missing_cost,
        missing_status,
        missing_text.replace("nobody", encounter_id),
    )
    assert (status, text) == (404, f"Unknown Encounter resource '{encounter_id}'")
    assert (cost["queries"], cost["rows_read"], cost["keys_read"]) == (0, 0, 1)  # one GetItem by key
    assert costed_read("a-1", PATIENT_A, lambda: caplog.records)[:2] == (cost, 200)  # its own: the same
