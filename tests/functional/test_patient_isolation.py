"""SMART mode through the handlers: a patient/ token sees its own Encounters and nothing else,
not even whether others exist; a user/ token whose fhirUser is a Patient sees that Patient's;
other user/ and system/ tokens see everything their scopes allow; a string that is not a SMART
scope grants nothing; an expired token is refused whatever decision API Gateway cached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter.config import Settings
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.environment import TEST_ENVIRONMENT
from tests.support import Response, Writer, encounter, handlers_on, ids_of, invoke
from tests.support import authorizer_context as claims

SMART = Settings.from_environment({**TEST_ENVIRONMENT, "AUTH_MODE": "smart"})


def as_token(event: dict[str, Any], token: dict[str, str] | None) -> dict[str, Any]:
    if token is not None:
        event["requestContext"]["authorizer"] = token
    return event


def search(query: str, token: dict[str, str] | None, headers: dict[str, str] | None = None) -> Response:
    event = rest_api_event(
        method="GET",
        path="/Encounter",
        resource="/Encounter",
        query=parse_qs(query, keep_blank_values=True),
        headers=headers,
    )
    return invoke(as_token(event, token))


def read(
    encounter_id: str, token: dict[str, str] | None, headers: dict[str, str] | None = None, query: str = ""
) -> Response:
    event = rest_api_event(
        method="GET",
        path=f"/Encounter/{encounter_id}",
        resource="/Encounter/{id}",
        path_parameters={"id": encounter_id},
        query=parse_qs(query),
        headers=headers,
    )
    return invoke(as_token(event, token))


@pytest.fixture
def smart(table: Any, put: Writer) -> Iterator[None]:
    put(
        encounter("a-1", subject="Patient/pa", start="2021-01-01", appointments=["Appointment/ap-a"]),
        encounter("a-2", subject="Patient/pa", start="2021-02-01"),
        encounter("a-3", subject="Patient/pa", start="2021-03-01"),
        encounter("b-1", subject="Patient/pb", start="2021-01-15", appointments=["Appointment/ap-b"]),
        encounter("g-1", subject="Group/pa", start="2021-01-20"),
    )
    with handlers_on(table, SMART):
        yield


PATIENT_A = claims("patient/Encounter.rs", patient="pa")
PATIENT_B = claims("patient/Encounter.rs", patient="pb")


@pytest.mark.usefixtures("smart")
def test_a_patient_reads_its_own_encounter() -> None:
    status, _, resource = read("a-1", PATIENT_A)
    assert (status, resource["id"]) == (200, "a-1")


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize("encounter_id", ["b-1", "g-1", "missing"])
def test_another_patients_encounter_reads_exactly_like_a_missing_one(encounter_id: str) -> None:
    status, _, outcome = read(encounter_id, PATIENT_A)
    assert status == 404
    assert outcome["issue"][0]["details"]["text"] == f"Unknown Encounter resource '{encounter_id}'"


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["a-1", "a-2", "a-3"]),
        ("patient=pa", ["a-1", "a-2", "a-3"]),
        ("patient=pb", []),
        ("subject=Group/pa", []),
        ("subject=pa", ["a-1", "a-2", "a-3"]),
        ("_id=b-1", []),
        ("_id=a-2,b-1", ["a-2"]),
        ("appointment=ap-b", []),
        ("appointment=ap-a", ["a-1"]),
        ("date=lt2021-01-10", ["a-1"]),
    ],
)
def test_a_patient_search_is_narrowed_to_its_compartment(query: str, expected: list[str]) -> None:
    status, _, bundle = search(query, PATIENT_A)
    assert status == 200
    assert (ids_of(bundle), bundle["total"]) == (expected, len(expected))
    client_patients = parse_qs(query).get("patient", [])
    for link in bundle["link"]:  # the compartment is never shown in links
        assert parse_qs(urlsplit(link["url"]).query).get("patient", []) == client_patients


@pytest.mark.usefixtures("smart")
def test_a_next_link_replayed_with_another_patients_token_is_refused() -> None:
    status, _, bundle = search("_count=1", PATIENT_A)
    assert status == 200
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    status, _, outcome = search(urlsplit(url).query, PATIENT_B)
    assert status == 400
    assert outcome["issue"][0]["code"] == "invalid"
    status, _, page = search(urlsplit(url).query, PATIENT_A)
    assert (status, ids_of(page)) == (200, ["a-2"])


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize("scope", ["user/Encounter.rs", "system/Encounter.read", "user/*.*"])
def test_user_and_system_tokens_see_everything(scope: str) -> None:
    status, _, bundle = search("", claims(scope))
    assert (status, bundle["total"]) == (200, 5)
    assert read("b-1", claims(scope))[0] == 200


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize(
    ("token", "needed"),
    [
        (claims("patient/Encounter.rs"), "patient launch context"),  # no patient claim
        (claims("user/Encounter.r"), "patient/Encounter.s"),  # read only
        (claims("user/Observation.rs"), "patient/Encounter.s"),
        (claims("patient/Encounter.rs?status=finished", patient="pa"), "patient/Encounter.s"),
        (None, "no verified token"),
    ],
)
def test_a_token_that_does_not_allow_the_search_is_forbidden(
    token: dict[str, str] | None, needed: str
) -> None:
    status, _, outcome = search("", token)
    assert status == 403
    assert outcome["issue"][0]["code"] == "forbidden"
    assert needed in outcome["issue"][0]["details"]["text"]


@pytest.mark.usefixtures("smart")
def test_a_search_only_token_cannot_read() -> None:
    status, _, outcome = read("a-1", claims("patient/Encounter.s", patient="pa"))
    assert status == 403
    assert "patient/Encounter.r" in outcome["issue"][0]["details"]["text"]


@pytest.mark.usefixtures("smart")
def test_a_token_in_the_query_string_is_refused_even_past_the_authorizer() -> None:
    """A cached authorizer decision could let it through: the handlers refuse it themselves."""
    for status, headers, outcome in (
        search("access_token=abc", claims("user/Encounter.rs")),
        read("a-1", claims("user/Encounter.rs"), query="access_token=abc"),
    ):
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
        assert outcome["issue"][0]["code"] == "login"
        assert "Authorization header" in outcome["issue"][0]["details"]["text"]


def walk_ids(query: str, token: dict[str, str]) -> tuple[list[str], list[int | None]]:
    """Every id of a search with ``token``, following next links, and each page's total."""
    ids: list[str] = []
    totals: list[int | None] = []
    following: str | None = query
    while following is not None:
        status, _, bundle = search(following, token)
        assert status == 200, bundle
        ids += ids_of(bundle)
        totals.append(bundle.get("total"))
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        following = urlsplit(url).query if url else None
    return ids, totals


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize(
    "query",
    [
        "",
        "_id=a-1,a-3,b-1,g-1",
        "_id=a-1,b-1&_id=a-1,a-2,b-1",
        "appointment=ap-a,ap-b",
        "date=ge2021-01-10",
        "date=lt2021-02-15&status=finished",
        "status=planned",
        "subject=pa",
        "subject=Patient/pa,Group/pa",
        "patient=pa,pb&date=2021",
        "_id=a-2,g-1&subject=pa",
    ],
)
@pytest.mark.parametrize("paging", ["", "&_count=1", "&_count=1&_total=none", "&_count=2"])
def test_a_patient_search_answers_what_an_unrestricted_one_does_narrowed_to_its_encounters(
    query: str, paging: str
) -> None:
    everything, _ = walk_ids(query + paging, claims("user/Encounter.rs"))
    ids, totals = walk_ids(query + paging, PATIENT_A)
    assert ids == [i for i in everything if i.startswith("a-")]
    assert set(totals) == ({None} if "_total=none" in paging else {len(ids)})


# ---- what is not a SMART scope, fhirUser, the scope policy, the token's lifetime ----------

NOT_SCOPES = [
    "x/user/Encounter.rs",
    "https://other.api/system/*.read",
    "patient/Encounter.rs/user/Encounter.rs",
    "a\x1fuser/Encounter.rs",
    "openid\u00a0user/Encounter.rs",
    "patient/Encounter.rs?x=1\u2028user/Encounter.rs",
]
EVENT_BASE = "http://127.0.0.1:3000/v1"  # what rest_api_event's Host and stage make


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize("scope", NOT_SCOPES)
def test_a_string_that_is_not_a_smart_scope_reads_and_searches_nothing(scope: str) -> None:
    for status, _, outcome in (search("", claims(scope, patient="pa")), read("b-1", claims(scope))):
        assert status == 403
        assert outcome["issue"][0]["code"] == "forbidden"
        assert "b-1" not in str(outcome)


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize("fhir_user", ["Patient/pb", f"{EVENT_BASE}/Patient/pb"])
def test_a_user_token_of_a_patient_sees_only_that_patients_encounters(fhir_user: str) -> None:
    token = claims("user/*.read", fhir_user=fhir_user)  # and no patient claim
    status, _, bundle = search("", token)
    assert (status, ids_of(bundle), bundle["total"]) == (200, ["b-1"], 1)
    assert read("b-1", token)[0] == 200
    status, _, outcome = read("a-1", token)
    assert (status, outcome["issue"][0]["details"]["text"]) == (404, "Unknown Encounter resource 'a-1'")
    assert ids_of(search("patient=pa", token)[2]) == []


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize(
    "fhir_user",
    ["https://other.example.org/fhir/Patient/pb", "RelatedPerson/rp-1", "Person/pe-1", "not a reference"],
)
def test_a_user_token_whose_fhir_user_cannot_be_placed_is_forbidden(fhir_user: str) -> None:
    status, _, outcome = search("", claims("user/Encounter.rs", fhir_user=fhir_user))
    assert (status, outcome["issue"][0]["code"]) == (403, "forbidden")


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize("fhir_user", ["Practitioner/dr-1", "PractitionerRole/r-1", None])
def test_a_practitioners_user_token_sees_every_encounter(fhir_user: str | None) -> None:
    status, _, bundle = search("", claims("user/Encounter.rs", fhir_user=fhir_user))
    assert (status, bundle["total"]) == (200, 5)


def settings_with(**variables: str) -> Settings:
    return Settings.from_environment({**TEST_ENVIRONMENT, "AUTH_MODE": "smart", **variables})


@pytest.mark.usefixtures("smart")
def test_with_user_scopes_disabled_a_user_token_sees_nothing(table: Any) -> None:
    with handlers_on(table, settings_with(USER_SCOPES="disabled")):
        status, _, outcome = search("", claims("user/Encounter.rs"))
        assert (status, outcome["issue"][0]["code"]) == (403, "forbidden")
        assert read("b-1", claims("user/*.read"))[0] == 403
        assert ids_of(search("", PATIENT_A)[2]) == ["a-1", "a-2", "a-3"]
        assert search("", claims("system/Encounter.rs"))[2]["total"] == 5


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize(
    ("scope", "total"),
    [
        ("fhir/user/Encounter.rs", 5),
        ("fhir/system/Encounter.read", 5),
        ("user/Encounter.rs", None),  # unprefixed: another resource server could mint it
        ("other/user/Encounter.rs", None),  # another resource server of the same user pool
        ("fhir/user/Encounter.rs?status=finished", None),
    ],
)
def test_with_a_scope_prefix_only_scopes_of_that_resource_server_grant(
    table: Any, scope: str, total: int | None
) -> None:
    with handlers_on(table, settings_with(SCOPE_PREFIX="fhir")):
        status, _, body = search("", claims(scope))
    if total is None:
        assert (status, body["issue"][0]["code"]) == (403, "forbidden")
        assert "fhir/patient/Encounter.s" in body["issue"][0]["details"]["text"]
    else:
        assert (status, body["total"]) == (200, total)


@pytest.mark.usefixtures("smart")
@pytest.mark.parametrize(
    "token",
    [
        claims("user/Encounter.rs", expires_in=-3600),  # a decision API Gateway cached an hour ago
        claims("user/Encounter.rs", expires_in=-61),  # past the 60 s leeway
        claims("patient/Encounter.rs", patient="pa", expires_in=-120),
        claims("openid", expires_in=-120),  # refused as expired, not as lacking a scope
        {k: v for k, v in claims("user/Encounter.rs").items() if k != "exp"},  # a context without exp
    ],
    ids=["an-hour-ago", "past-leeway", "patient", "no-scope", "no-exp"],
)
def test_an_expired_token_is_401_invalid_token_even_from_a_cached_decision(token: dict[str, str]) -> None:
    for status, headers, outcome in (search("", token), read("a-1", token)):
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "login"
        assert "a-1" not in str(outcome)


@pytest.mark.usefixtures("smart")
def test_a_401_carries_the_security_headers_and_lets_a_browser_app_of_an_allowed_origin_read_why(
    table: Any,
) -> None:
    app = {"Origin": "https://app.example.org"}
    expired = claims("user/Encounter.rs", expires_in=-120)
    valid = claims("user/Encounter.rs")
    with handlers_on(table, settings_with(CORS_ALLOWED_ORIGINS=app["Origin"])):
        answers = {
            'Bearer error="invalid_token"': [search("", expired, app), read("a-1", expired, app)],
            'Bearer error="invalid_request"': [
                search("access_token=abc", valid, app),
                read("a-1", valid, app, query="access_token=abc"),
            ],
        }
    for challenge, responses in answers.items():
        for status, headers, _ in responses:
            assert (status, headers["WWW-Authenticate"]) == (401, challenge)
            assert (headers["Cache-Control"], headers["X-Content-Type-Options"]) == ("no-store", "nosniff")
            assert (headers["Access-Control-Allow-Origin"], headers["Vary"]) == (app["Origin"], "Origin")
            assert "WWW-Authenticate" in headers["Access-Control-Expose-Headers"].split(", ")


@pytest.mark.usefixtures("smart")
def test_a_token_within_the_leeway_is_still_served() -> None:
    status, _, bundle = search("", claims("user/Encounter.rs", expires_in=-30))
    assert (status, bundle["total"]) == (200, 5)
