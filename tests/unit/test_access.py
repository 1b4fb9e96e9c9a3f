"""SMART scopes and patient context as the handlers enforce them (v1 and v2, read and search):
the scope grammar (RFC 6749 3.3, U+0020 between tokens, the configured resource-server prefix),
user/ scopes narrowed by a Patient fhirUser, and the token's exp however the decision was cached."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_encounter.access import (
    DEFAULT_POLICY,
    LEEWAY_SECONDS,
    Access,
    Action,
    AuthMode,
    ScopePolicy,
    access_for,
    needed_scope,
    parse_scopes,
)
from fhir_encounter.errors import ForbiddenError, InvalidTokenError

NOW = 1_800_000_000.0
BASE = "https://fhir.example.org/v1"
EXP: Any = str(int(NOW) + 300)  # as API Gateway passes a context number on: a string


def context(
    scope: str,
    patient: str | None = None,
    sub: str = "user-1",
    client_id: str = "app",
    fhir_user: str | None = None,
    exp: Any = EXP,
) -> dict[str, Any]:
    claims = {"sub": sub, "client_id": client_id, "scope": scope, "principalId": sub}
    if patient is not None:
        claims["patient"] = patient
    if fhir_user is not None:
        claims["fhirUser"] = fhir_user
    if exp is not None:
        claims["exp"] = exp
    return {"authorizer": claims, "requestId": "r1"}


def decide(
    request_context: dict[str, Any] | None,
    action: Action,
    policy: ScopePolicy = DEFAULT_POLICY,
    mode: AuthMode = AuthMode.SMART,
) -> Access:
    return access_for(mode, request_context, action, now=NOW, policy=policy, bases=(BASE,))


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
    "fhir/user/Encounter.rs": (False, False),  # a prefix counts only when it is configured
    "https://api.example.org/user/Encounter.read": (False, False),
    "fhir/Encounter.rs": (False, False),
    "openid  user/Encounter.rs": (True, True),  # an empty token between two spaces is nothing
    "patient/Encounter.rs?x=user/Encounter.rs": (False, False),  # a query cannot smuggle a scope
}


@pytest.mark.parametrize(("scope", "allowed"), MATRIX.items(), ids=list(MATRIX))
def test_user_and_system_scopes_see_everything_they_allow(scope: str, allowed: tuple[bool, bool]) -> None:
    for action, ok in zip((READ, SEARCH), allowed, strict=True):
        if ok:
            assert decide(context(scope), action) == Access("user-1", "app", None)
        else:
            with pytest.raises(ForbiddenError) as caught:
                decide(context(scope), action)
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
            granted = decide(context(scope, patient="p1"), action)
            assert granted.compartment == "Patient/p1"
        else:
            with pytest.raises(ForbiddenError):
                decide(context(scope, patient="p1"), action)


def test_a_user_scope_beside_a_patient_scope_sees_everything() -> None:
    granted = decide(context("patient/Encounter.rs user/Encounter.rs", patient="p1"), SEARCH)
    assert granted.compartment is None


@pytest.mark.parametrize("patient", [None, "", "not a fhir id!", "p" * 65])
def test_a_patient_scope_without_a_usable_patient_claim_is_forbidden(patient: str | None) -> None:
    with pytest.raises(ForbiddenError) as caught:
        decide(context("patient/Encounter.rs", patient=patient), SEARCH)
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
            decide(request_context, READ)


def test_iam_and_local_modes_see_everything_and_name_the_caller() -> None:
    iam = {"identity": {"userArn": "arn:aws:iam::123456789012:user/ana"}}
    assert decide(iam, SEARCH, mode=AuthMode.IAM) == Access("arn:aws:iam::123456789012:user/ana", None, None)
    assert decide(None, READ, mode=AuthMode.NONE) == Access("local", None, None)


def test_parse_scopes_skips_what_is_not_a_resource_scope() -> None:
    scopes = parse_scopes("openid fhirUser launch patient/Encounter.rs user/*.read offline_access")
    assert [(s.context, s.resource, s.permissions) for s in scopes] == [
        ("patient", "Encounter", "rs"),
        ("user", "*", "read"),
    ]


# ---- the scope grammar: what is not a SMART scope grants nothing ------------------------------------

# Strings that only look like SMART scopes: none of them may read or search anything.
NOT_SCOPES = [
    "x/user/Encounter.rs",  # another resource server's prefix
    "https://other.api/system/*.read",
    "patient/Encounter.rs/user/Encounter.rs",  # a scope as the "prefix" of another
    "a\x1fuser/Encounter.rs",  # split on a control character
    "openid\u00a0user/Encounter.rs",  # split on a no-break space
    "patient/Encounter.rs?x=1\u2028user/Encounter.rs",  # split on a line separator
]


@pytest.mark.parametrize("scope", NOT_SCOPES)
@pytest.mark.parametrize("action", [READ, SEARCH])
def test_a_string_that_is_not_a_smart_scope_grants_nothing(scope: str, action: Action) -> None:
    assert parse_scopes(scope) == []
    with pytest.raises(ForbiddenError):
        decide(context(scope, patient="p1"), action)


@pytest.mark.parametrize("scope", NOT_SCOPES)
def test_a_configured_prefix_does_not_make_them_scopes(scope: str) -> None:
    for prefix in ("x", "fhir", "https://other.api"):
        granted = [s for s in parse_scopes(scope, prefix) if s.grants(READ)]
        if scope == "x/user/Encounter.rs" and prefix == "x":
            assert [(s.context, s.permissions) for s in granted] == [("user", "rs")]
        elif scope == "https://other.api/system/*.read" and prefix == "https://other.api":
            assert [(s.context, s.resource) for s in granted] == [("system", "*")]
        else:
            assert granted == []


# Every separator but U+0020: C0 controls, DEL, C1 controls, and Unicode's other spaces and breaks.
SEPARATORS = [
    *(chr(code) for code in range(0x00, 0x20)),
    "\x7f",
    "\x85",
    "\u00a0",
    "\u1680",
    *(chr(code) for code in range(0x2000, 0x200B)),
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
    "\ufeff",
]


@pytest.mark.parametrize("separator", SEPARATORS, ids=lambda c: f"U+{ord(c):04X}")
def test_scopes_are_separated_by_u0020_alone(separator: str) -> None:
    assert parse_scopes(f"openid{separator}user/Encounter.rs") == []
    assert parse_scopes(f"user/Encounter.rs{separator}openid") == []
    assert [s.context for s in parse_scopes("openid user/Encounter.rs")] == ["user"]


@pytest.mark.parametrize(
    "token",
    ['user/Encounter.rs"', "user/Encounter.rs\\", 'patient/Encounter.rs?"x"', "user/Encounter.rsé"],
    ids=["quote", "backslash", "quoted-query", "non-ascii"],
)
def test_a_token_with_a_character_outside_scope_token_is_ignored(token: str) -> None:
    assert parse_scopes(token) == []
    assert parse_scopes(f"{token} system/Encounter.r") == parse_scopes("system/Encounter.r")


@pytest.mark.parametrize(
    ("prefix", "scope", "read"),
    [
        ("fhir", "fhir/user/Encounter.rs", True),
        ("fhir", "fhir/patient/Encounter.read", True),
        ("fhir", "fhir/system/*.rs", True),
        ("fhir", "user/Encounter.rs", False),  # without the prefix: not ours once one is configured
        ("fhir", "other/user/Encounter.rs", False),  # another resource server of the same user pool
        ("fhir", "fhirx/user/Encounter.rs", False),
        ("fhir", "fhir/fhir/user/Encounter.rs", False),
        ("fhir", "x/fhir/user/Encounter.rs", False),
        ("fhir", "fhir/user/Encounter.rs?status=finished", False),  # v2 query suffix: nothing
        ("fhir", "fhir/patient/Encounter.rs/user/Encounter.rs", False),
        ("https://api.example.org", "https://api.example.org/user/Encounter.read", True),
        ("https://api.example.org", "https://api.example.org/x/user/Encounter.read", False),
        ("https://api.example.org", "https://api.example.org.evil/user/Encounter.read", False),
        ("", "fhir/user/Encounter.rs", False),
        ("", "user/Encounter.rs", True),
    ],
)
def test_a_resource_server_prefix_counts_only_when_it_is_the_configured_one(
    prefix: str, scope: str, read: bool
) -> None:
    policy = ScopePolicy(prefix=prefix)
    if read:
        assert decide(context(scope, patient="p1"), READ, policy).principal == "user-1"
    else:
        with pytest.raises(ForbiddenError):
            decide(context(scope, patient="p1"), READ, policy)


def test_the_refusal_names_the_scopes_with_the_configured_prefix() -> None:
    with pytest.raises(ForbiddenError) as caught:
        decide(context("user/Encounter.rs"), SEARCH, ScopePolicy(prefix="fhir"))
    assert "fhir/patient/Encounter.s, fhir/user/Encounter.s or fhir/system/Encounter.s" in caught.value.text


# ---- user/ scopes and fhirUser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fhir_user", "patient"),
    [
        ("Patient/patient-0012", "patient-0012"),
        (f"{BASE}/Patient/patient-0012", "patient-0012"),
        (f"{BASE}/Patient/patient-0012/_history/3", "patient-0012"),
        ("Practitioner/dr-1", None),
        ("PractitionerRole/role-1", None),
        ("https://ehr.example.org/fhir/Practitioner/dr-1", None),
        (None, None),
        ("", None),
    ],
)
@pytest.mark.parametrize("action", [READ, SEARCH])
def test_a_patient_fhir_user_narrows_user_scopes_to_its_compartment(
    fhir_user: str | None, patient: str | None, action: Action
) -> None:
    granted = decide(context("user/*.read", fhir_user=fhir_user), action)
    assert granted == Access("user-1", "app", patient)


@pytest.mark.parametrize(
    ("fhir_user", "text"),
    [
        ("https://other.example.org/fhir/Patient/patient-0012", "a Patient of another server"),
        ("RelatedPerson/rp-1", "RelatedPerson fhirUser"),
        ("Person/pe-1", "Person fhirUser"),
        ("Device/d-1", "Device fhirUser"),
        ("patient-0012", "bare id fhirUser"),
        ("Patient/", "not a FHIR reference"),
        ("Patient/a b", "not a FHIR reference"),
        ("urn:uuid:1234", "not a FHIR reference"),
    ],
)
def test_a_fhir_user_that_is_no_patient_here_nor_a_practitioner_is_refused(fhir_user: str, text: str) -> None:
    with pytest.raises(ForbiddenError) as caught:
        decide(context("user/Encounter.rs", fhir_user=fhir_user), SEARCH)
    assert text in caught.value.text
    assert fhir_user not in caught.value.text  # ids are named by type only


def test_a_system_scope_is_not_narrowed_by_fhir_user() -> None:
    granted = decide(context("system/Encounter.rs user/Encounter.rs", fhir_user="Patient/p9"), SEARCH)
    assert granted.compartment is None


def test_a_patient_scope_still_serves_when_the_user_scope_cannot() -> None:
    token = context("user/Encounter.rs patient/Encounter.rs", patient="p1", fhir_user="RelatedPerson/r")
    assert decide(token, SEARCH).compartment == "Patient/p1"


def test_a_patient_fhir_user_wins_over_the_launch_context_for_a_user_scope() -> None:
    token = context("user/Encounter.rs patient/Encounter.rs", patient="p1", fhir_user="Patient/p2")
    assert decide(token, READ).compartment == "Patient/p2"


DISABLED = ScopePolicy(user_scopes=False)


@pytest.mark.parametrize("scope", ["user/Encounter.rs", "user/*.read", "user/*.*"])
@pytest.mark.parametrize("fhir_user", [None, "Patient/p1", "Practitioner/d1"])
def test_with_user_scopes_disabled_a_user_scope_grants_nothing(scope: str, fhir_user: str | None) -> None:
    with pytest.raises(ForbiddenError) as caught:
        decide(context(scope, fhir_user=fhir_user), SEARCH, DISABLED)
    assert "user/" not in caught.value.text
    assert caught.value.text.endswith(needed_scope(SEARCH, DISABLED))


def test_with_user_scopes_disabled_patient_and_system_scopes_still_serve() -> None:
    assert decide(context("patient/Encounter.rs", patient="p1"), READ, DISABLED).patient == "p1"
    assert decide(context("system/Encounter.rs"), READ, DISABLED).patient is None


# ---- the token's lifetime, from the authorizer's context -----------------------------------------


@pytest.mark.parametrize(
    "exp",
    [
        int(NOW) - LEEWAY_SECONDS,  # expired: past the leeway
        str(int(NOW) - 3600),
        NOW - LEEWAY_SECONDS - 0.5,
        None,  # a context from before exp was passed (an old cached decision)
        "",
        "soon",
        "-1",
        "1e12",
        True,
        float("nan"),
        float("inf"),
        [int(NOW) + 300],
    ],
    ids=[
        "past-leeway",
        "an-hour-ago-as-text",
        "float",
        "missing",
        "empty",
        "word",
        "negative",
        "exponent",
        "bool",
        "nan",
        "inf",
        "list",
    ],
)
def test_an_expired_or_unknown_exp_is_401_invalid_token_before_scopes(exp: Any) -> None:
    for scope in ("user/Encounter.rs", "openid"):  # even when the scopes would be a 403
        with pytest.raises(InvalidTokenError) as caught:
            decide(context(scope, exp=exp), READ)
        assert (caught.value.status, caught.value.code) == (401, "login")
        assert caught.value.headers() == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@pytest.mark.parametrize(
    "exp",
    [int(NOW) + 300, str(int(NOW) + 1), int(NOW), int(NOW) - LEEWAY_SECONDS + 1, NOW + 0.5],
    ids=["int", "text", "now", "within-leeway", "float"],
)
def test_an_exp_ahead_or_within_the_leeway_is_served(exp: Any) -> None:
    assert decide(context("user/Encounter.rs", exp=exp), READ).principal == "user-1"


def test_iam_and_local_modes_need_no_exp() -> None:
    assert decide({"authorizer": {}}, READ, mode=AuthMode.IAM).principal == "iam"
    assert decide(None, READ, mode=AuthMode.NONE).principal == "local"
