"""SMART scopes and patient context as the handlers enforce them (v1 and v2, read and search)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_encounter.access import Access, Action, AuthMode, access_for, parse_scopes
from fhir_encounter.errors import ForbiddenError


def context(
    scope: str, patient: str | None = None, sub: str = "user-1", client_id: str = "app"
) -> dict[str, Any]:
    claims = {"sub": sub, "client_id": client_id, "scope": scope, "principalId": sub}
    if patient is not None:
        claims["patient"] = patient
    return {"authorizer": claims, "requestId": "r1"}


READ, SEARCH = Action.READ, Action.SEARCH

# scope -> (read allowed, search allowed)
MATRIX: dict[str, tuple[bool, bool]] = {
    "user/Encounter.read": (True, True),
    "user/*.read": (True, True),
    "user/*.*": (True, True),
    "user/Encounter.*": (True, True),
    "user/Encounter.write": (False, False),
    "user/Encounter.rs": (True, True),
    "user/Encounter.r": (True, False),
    "user/Encounter.s": (False, True),
    "user/Encounter.cruds": (True, True),
    "user/Encounter.cud": (False, False),
    "user/*.rs": (True, True),
    "user/Observation.rs": (False, False),
    "user/Observation.read": (False, False),
    "user/Encounter.sr": (False, False),  # v2 letters come in order
    "user/Encounter.rs?status=finished": (False, False),  # a query suffix grants nothing
    "system/Encounter.read": (True, True),
    "system/Encounter.s": (False, True),
    "openid fhirUser launch/patient": (False, False),
    "": (False, False),
    "user/Encounter.read user/Encounter.write": (True, True),
    "user/Encounter.r system/Encounter.s": (True, True),
    "fhir/user/Encounter.rs": (True, True),  # Cognito prefixes its resource server
    "https://api.example.org/user/Encounter.read": (True, True),
    "fhir/Encounter.rs": (False, False),
    "patient/Encounter.rs?x=user/Encounter.rs": (False, False),  # a query cannot smuggle a scope
}


@pytest.mark.parametrize(("scope", "allowed"), MATRIX.items(), ids=list(MATRIX))
def test_user_and_system_scopes_see_everything_they_allow(scope: str, allowed: tuple[bool, bool]) -> None:
    for action, ok in zip((READ, SEARCH), allowed, strict=True):
        if ok:
            assert access_for(AuthMode.SMART, context(scope), action) == Access("user-1", "app", None)
        else:
            with pytest.raises(ForbiddenError) as caught:
                access_for(AuthMode.SMART, context(scope), action)
            assert (caught.value.status, caught.value.code) == (403, "forbidden")
            letter = "r" if action is READ else "s"
            assert f"patient/Encounter.{letter}" in caught.value.text


@pytest.mark.parametrize(
    ("scope", "read", "search"),
    [
        ("patient/Encounter.read", True, True),
        ("patient/*.read", True, True),
        ("patient/Encounter.rs", True, True),
        ("patient/Encounter.r", True, False),
        ("patient/Encounter.s", False, True),
        ("patient/Encounter.rs?status=finished", False, False),
    ],
)
def test_patient_scopes_see_only_the_patients_compartment(scope: str, read: bool, search: bool) -> None:
    for action, ok in ((READ, read), (SEARCH, search)):
        if ok:
            granted = access_for(AuthMode.SMART, context(scope, patient="p1"), action)
            assert granted.compartment == "Patient/p1"
        else:
            with pytest.raises(ForbiddenError):
                access_for(AuthMode.SMART, context(scope, patient="p1"), action)


def test_a_user_scope_beside_a_patient_scope_sees_everything() -> None:
    granted = access_for(
        AuthMode.SMART, context("patient/Encounter.rs user/Encounter.rs", patient="p1"), SEARCH
    )
    assert granted.compartment is None


@pytest.mark.parametrize("patient", [None, "", "not a fhir id!", "p" * 65])
def test_a_patient_scope_without_a_usable_patient_claim_is_forbidden(patient: str | None) -> None:
    with pytest.raises(ForbiddenError) as caught:
        access_for(AuthMode.SMART, context("patient/Encounter.rs", patient=patient), SEARCH)
    assert "patient launch context" in caught.value.text


def test_a_request_without_verified_claims_is_forbidden_in_smart_mode() -> None:
    contexts: list[dict[str, Any] | None] = [
        None,
        {},
        {"authorizer": {}},
        {"authorizer": {"scope": "user/*.*"}},
    ]
    for request_context in contexts:
        with pytest.raises(ForbiddenError):
            access_for(AuthMode.SMART, request_context, READ)


def test_iam_and_local_modes_see_everything_and_name_the_caller() -> None:
    iam = {"identity": {"userArn": "arn:aws:iam::123456789012:user/ana"}}
    assert access_for(AuthMode.IAM, iam, SEARCH) == Access("arn:aws:iam::123456789012:user/ana", None, None)
    assert access_for(AuthMode.NONE, None, READ) == Access("local", None, None)


def test_parse_scopes_skips_what_is_not_a_resource_scope() -> None:
    scopes = parse_scopes("openid fhirUser launch patient/Encounter.rs user/*.read offline_access")
    assert [(s.context, s.resource, s.permissions) for s in scopes] == [
        ("patient", "Encounter", "rs"),
        ("user", "*", "read"),
    ]
