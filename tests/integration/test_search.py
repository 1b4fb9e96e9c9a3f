"""Read and search over HTTP against ``fhir-encounter serve`` on DynamoDB Local.

The scenarios (``tests.support.SCENARIOS``) use ids and references that tests/data does not, so each
search scoped to them has one exact answer. Searches by ``date`` alone also see tests/data: their
answers are compared on the scenario Encounters only.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import pytest

from tests.support import PAGER_ORDER, Api, issue, link, link_params

pytestmark = pytest.mark.integration

ALL_PAT1 = {"itest-e1", "itest-e2", "itest-e3", "itest-e4"}


def only_scenarios(ids: list[str]) -> set[str]:
    return {encounter_id for encounter_id in ids if encounter_id.startswith("itest-")}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=itest-pat-1", ALL_PAT1),
        ("patient=Patient/itest-pat-1", ALL_PAT1),
        ("patient={base}/Patient/itest-pat-1", ALL_PAT1),  # under this server's base: local
        ("patient=https://other.example.com/fhir/Patient/itest-pat-1", set()),  # another server's
        # itest-e8 stores another server's absolute URL: only that exact URL finds it
        ("patient=itest-pat-2", {"itest-e9"}),
        ("patient=Patient/itest-pat-2", {"itest-e9"}),
        ("patient=https://ehr.example.org/fhir/Patient/itest-pat-2", {"itest-e8"}),
        ("patient=itest-pat-2,https://ehr.example.org/fhir/Patient/itest-pat-2", {"itest-e8", "itest-e9"}),
        ("patient=itest-pat-1,itest-pat-2", ALL_PAT1 | {"itest-e9"}),
        ("patient=itest-grp-1", set()),  # a Group is not a Patient
        ("patient=itest-shared", {"itest-e6"}),
    ],
)
def test_patient_search_matches_every_reference_form(api: Api, query: str, expected: set[str]) -> None:
    assert set(api.ids(query.format(base=api.base_url))) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("subject=Patient/itest-pat-1", ALL_PAT1),
        ("subject=Group/itest-grp-1", {"itest-e5"}),
        ("subject={base}/Group/itest-grp-1", {"itest-e5"}),
        ("subject=https://ehr.example.org/fhir/Group/itest-grp-1", set()),  # another server's group
        ("subject=itest-grp-1", {"itest-e5"}),
        ("subject=itest-shared", {"itest-e6", "itest-e7"}),  # a bare id: any subject type
        ("subject=Group/itest-shared", {"itest-e7"}),
        ("subject=Patient/itest-shared", {"itest-e6"}),
        ("subject=Group/itest-pat-1", set()),
    ],
)
def test_subject_search_matches_typed_and_bare_references(api: Api, query: str, expected: set[str]) -> None:
    assert set(api.ids(query.format(base=api.base_url))) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("itest-appt-2", ["itest-e2"]),
        ("Appointment/itest-appt-3", ["itest-e2"]),
        ("{base}/Appointment/itest-appt-3", ["itest-e2"]),
        ("https://ehr.example.org/fhir/Appointment/itest-appt-4", ["itest-e2"]),  # stored as that URL
        ("itest-appt-4", []),  # names this server's Appointment, not the other server's
    ],
)
def test_each_appointment_of_an_encounter_finds_it_once(api: Api, value: str, expected: list[str]) -> None:
    assert api.ids([("appointment", value.format(base=api.base_url))]) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("appointment=itest-appt-1,itest-appt-2", ["itest-e1", "itest-e2"]),
        ("appointment=itest-appt-2,itest-appt-3,itest-appt-4", ["itest-e2"]),  # OR, counted once
        ("appointment=itest-appt-2&appointment=itest-appt-3", ["itest-e2"]),  # AND of one encounter's
        ("appointment=itest-appt-1&appointment=itest-appt-2", []),
        ("appointment=itest-appt-none", []),
    ],
)
def test_appointment_or_and_lists(api: Api, query: str, expected: list[str]) -> None:
    assert api.ids(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=2021", {"itest-e1", "itest-e2"}),
        ("date=eq2021-03-10", {"itest-e1"}),
        ("date=eq2021-06-16", {"itest-e2"}),  # the offset moves it from the 15th to the 16th UTC
        ("date=eq2021-06-15", set()),
        ("date=ge2022-01-01", {"itest-e3"}),  # open end: ends after any date
        ("date=gt2021-06-16", {"itest-e3"}),
        ("date=lt2021-06-01", {"itest-e1"}),
        ("date=le2021-06-16", {"itest-e1", "itest-e2"}),
        ("date=sa2021-12-31", {"itest-e3"}),
        ("date=eb2021-06-01", {"itest-e1"}),
        ("date=ne2021", {"itest-e3"}),  # not itest-e4: no period matches no date criterion
        ("date=ge2021-01-01&date=lt2021-06-01", {"itest-e1"}),  # repeats AND
        ("date=eq2021-03-10,ge2022-01-01", {"itest-e1", "itest-e3"}),  # a comma ORs
        ("date=2021-03-10T09:30Z", set()),  # minute precision: the encounter is not within it
        ("date=ge2021-03-10T09:30Z&date=le2021-03-10T09:30Z", {"itest-e1"}),
    ],
)
def test_date_prefixes_against_the_whole_period(api: Api, query: str, expected: set[str]) -> None:
    assert set(api.ids(f"patient=itest-pat-1&{query}")) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=lt2000", {"itest-e9"}),  # no start: starts before anything
        ("date=le1999-05-01", {"itest-e9"}),
        ("date=eq1999", set()),
        ("date=ge2000", {"itest-e8"}),
        ("date=eq2020", set()),  # itest-e8 ends in 2021
        ("date=sa2020-12-30&date=eb2021-01-02", {"itest-e8"}),
    ],
)
def test_date_with_an_open_start(api: Api, query: str, expected: set[str]) -> None:
    patients = "itest-pat-2,https://ehr.example.org/fhir/Patient/itest-pat-2"  # itest-e9, itest-e8
    assert set(api.ids(f"patient={patients}&{query}")) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=eq2021-03", {"itest-e1", "itest-e5"}),
        ("date=eq2021-06-16", {"itest-e2"}),
        ("date=lt2000", {"itest-e9"}),
        ("date=ge2023-02-01", {"itest-e3", "itest-p4", "itest-p7"}),
        # itest-e3 (2022, open end) overlaps the day too; le/ge take the whole period
        ("date=ge2023-01-01&date=lt2023-01-02", {"itest-e3", "itest-p1", "itest-p2", "itest-p3", "itest-p6"}),
    ],
)
def test_date_alone_walks_the_period_start_index(api: Api, query: str, expected: set[str]) -> None:
    assert only_scenarios(api.ids(query)) == expected


@pytest.mark.parametrize(
    "query",
    [
        "patient=itest-pat-1&date=ge2021-06-16T04:00:00%2B02:00",
        "patient=itest-pat-1&date=ge2021-06-16T04:00:00+02:00",  # '+' left unencoded reads as a space
    ],
    ids=["encoded", "unencoded"],
)
def test_date_with_a_plus_offset(api: Api, query: str) -> None:
    assert api.ids(query) == ["itest-e2", "itest-e3"]
    assert api.ids(query.replace("date=ge", "date=eq")) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_id=itest-e1", ["itest-e1"]),
        ("_id=itest-e5,itest-e1,itest-none", ["itest-e5", "itest-e1"]),  # in search order
        ("_id=itest-e1&_id=itest-e5", []),
        ("_id=itest-e1&_id=itest-e1,itest-e5", ["itest-e1"]),
        ("_id=itest-e1,itest-e5&patient=itest-pat-1", ["itest-e1"]),
    ],
)
def test_id_lists(api: Api, query: str, expected: list[str]) -> None:
    assert api.ids(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=itest-pat-1&appointment=itest-appt-1", {"itest-e1"}),
        ("patient=itest-pat-2&appointment=itest-appt-1", set()),
        ("subject=Group/itest-grp-1&date=2021-03", {"itest-e5"}),
        ("patient=itest-pat-1&date=2021&appointment=itest-appt-3", {"itest-e2"}),
        ("patient=itest-pat-1&subject=itest-pat-1&_id=itest-e3,itest-e5", {"itest-e3"}),
    ],
)
def test_different_parameters_and(api: Api, query: str, expected: set[str]) -> None:
    assert set(api.ids(query)) == expected


def test_search_order_is_period_start_then_id(api: Api) -> None:
    assert api.ids("patient=itest-pager") == PAGER_ORDER


def test_unknown_parameter_is_ignored_and_left_out_of_links(api: Api) -> None:
    reply = api.search("patient=itest-pat-1&foo=bar&_tag=urgent")
    assert reply.status == 200
    assert reply.body["total"] == len(ALL_PAT1)
    assert "foo" not in link_params(reply.body, "self")
    assert "_tag" not in link_params(reply.body, "self")


def test_unknown_parameter_with_strict_handling_is_a_400(api: Api) -> None:
    reply = api.search("patient=itest-pat-1&foo=bar", headers={"Prefer": "handling=strict"})
    assert reply.status == 400
    found = issue(reply)
    assert found["severity"] == "error"
    assert "foo" in found["details"]["text"]


def test_strict_handling_accepts_known_parameters(api: Api) -> None:
    reply = api.search("patient=itest-pat-1", headers={"Prefer": "handling=strict"})
    assert reply.status == 200
    assert reply.body["total"] == len(ALL_PAT1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("date", "2021-13"),
        ("date", "2021-02-30"),
        ("date", "xx2021"),
        ("date", "2021-06-15T10"),
        ("patient", "Practitioner/1"),
        ("patient", "not a reference"),
        ("subject", "Observation/1"),
        ("appointment", "Patient/1"),
        ("_id", "bad_id"),
        ("_count", "-1"),
        ("_count", "ten"),
        ("_offset", "1.5"),
    ],
)
def test_bad_value_is_a_400_naming_the_parameter(api: Api, name: str, value: str) -> None:
    reply = api.search([(name, value)])
    assert reply.status == 400
    found = issue(reply)
    assert found["code"] == "invalid"
    assert f"'{name}'" in found["details"]["text"]


def test_search_answers_a_searchset_bundle_as_fhir_json(api: Api) -> None:
    reply = api.search("patient=itest-pat-1")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/fhir+json")
    bundle = reply.body
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{api.base_url}/Encounter/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
    assert link(bundle, "self") == f"{api.base_url}/Encounter?patient=itest-pat-1&_count=10&_offset=0"


def test_read_returns_the_encounter_with_etag_and_last_modified(api: Api) -> None:
    reply = api.read("itest-e1")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/fhir+json")
    resource = reply.body
    assert resource["resourceType"] == "Encounter"
    assert resource["id"] == "itest-e1"
    assert reply.headers["ETag"] == f'W/"{resource["meta"]["versionId"]}"'
    updated = datetime.fromisoformat(resource["meta"]["lastUpdated"]).replace(microsecond=0)
    assert parsedate_to_datetime(reply.headers["Last-Modified"]) == updated


def test_read_with_the_current_etag_is_not_modified(api: Api) -> None:
    etag = api.read("itest-e1").headers["ETag"]
    reply = api.read("itest-e1", headers={"If-None-Match": etag})
    assert reply.status == 304
    assert reply.text == ""
    assert reply.headers["ETag"] == etag


def test_read_of_an_unknown_id_is_a_404(api: Api) -> None:
    reply = api.read("itest-nope")
    assert reply.status == 404
    assert issue(reply) == {
        "severity": "error",
        "code": "not-found",
        "details": {"text": "Unknown Encounter resource 'itest-nope'"},
    }


@pytest.mark.parametrize("bad_id", ["bad_id", "x" * 65, quote("a b"), quote("é")])
def test_read_of_a_bad_id_is_a_400(api: Api, bad_id: str) -> None:
    reply = api.read(bad_id)
    assert reply.status == 400
    assert issue(reply)["code"] == "invalid"


@pytest.mark.parametrize(
    "query",
    [
        "date=sa2023&date=eb2020",
        "patient=itest-pat-1&date=sa2023&date=eb2020",
        "appointment=itest-appt-1&date=sa2023&date=lt2020",
    ],
    ids=["period-start index", "subject index", "appointment index"],
)
def test_dates_that_contradict_each_other_match_nothing(api: Api, query: str) -> None:
    """Regression: on DynamoDB (not moto) a sort-key range whose low end is above its high end
    was a ValidationException, answered 500."""
    reply = api.search(query)
    assert reply.status == 200, reply.text
    assert reply.body["total"] == 0
    assert "entry" not in reply.body
