"""What a caller may see, from the authorizer's context: SMART v1 and v2 scopes, the patient
compartment of a ``patient/`` scope or of a Patient's ``user/`` scope, the token's lifetime, and
the principal the audit trail names. Pure: the handlers pass the event's request context, the
time and this deployment's scope policy in, and enforce the answer."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_encounter.errors import ForbiddenError, InvalidTokenError
from fhir_encounter.references import ReferenceValueError, is_fhir_id, parse_reference

RESOURCE = "Encounter"
# The authorizer's clock-skew leeway (functions/authorizer/app.py LEEWAY_SECONDS; a test holds
# them equal): a token is expired from exp + this on, there and here alike.
LEEWAY_SECONDS = 60
# RFC 6749 3.3: scope = scope-token *( SP scope-token ), scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# patient/Encounter.read, user/*.*, system/Encounter.rs, patient/Encounter.rs?status=finished
_SCOPE = re.compile(
    r"(?P<context>patient|user|system)/(?P<resource>[A-Za-z]+|\*)\.(?P<permissions>read|write|\*|c?r?u?d?s?)"
    r"(?P<query>\?.*)?"
)
# fhirUser types whose user/ scopes see every Encounter (the practitioner trust model); a Patient
# sees its own compartment; any other type (RelatedPerson, Person, ...) is refused.
PRACTITIONER_TYPES = frozenset({"Practitioner", "PractitionerRole"})


class Action(StrEnum):
    READ = "read"
    SEARCH = "search"


class AuthMode(StrEnum):
    NONE = "none"  # local development: everything is allowed
    IAM = "iam"  # API Gateway checked a SigV4 signature: the caller may read everything
    SMART = "smart"  # a Lambda authorizer checked a bearer token: its scopes decide


@dataclass(frozen=True, slots=True)
class Access:
    """What one request may see: everything, or one Patient's compartment."""

    principal: str
    client_id: str | None
    patient: str | None  # a Patient id: only Encounters whose subject is Patient/<id>

    @property
    def compartment(self) -> str | None:
        return f"Patient/{self.patient}" if self.patient else None


PUBLIC = Access("anonymous", None, None)  # /metadata and SMART discovery need no token


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """How this deployment reads scopes. ``prefix``: the resource-server prefix its identity
    provider writes before each scope (Cognito: the resource server identifier, ``fhir`` for
    ``fhir/user/Encounter.rs``); when set, only scopes with exactly that prefix count, when empty
    only scopes without one. ``user_scopes``: whether ``user/`` scopes grant anything."""

    prefix: str = ""
    user_scopes: bool = True


DEFAULT_POLICY = ScopePolicy()


@dataclass(frozen=True, slots=True)
class Scope:
    context: str
    resource: str
    permissions: str
    query: str | None

    def grants(self, action: Action) -> bool:
        if self.resource not in (RESOURCE, "*") or self.query:  # a query suffix grants nothing
            return False
        if self.permissions in ("read", "write", "*"):  # SMART v1
            return self.permissions != "write"
        return ("r" if action is Action.READ else "s") in self.permissions  # SMART v2


def parse_scopes(text: str, prefix: str = "") -> list[Scope]:
    """The SMART resource scopes of a scope string: tokens separated by U+0020 alone, each an
    RFC 6749 scope-token carrying ``prefix`` and a slash (or no prefix when it is empty); other
    tokens (openid, launch, another resource server's, anything malformed) are skipped."""
    scopes = []
    lead = f"{prefix}/" if prefix else ""
    for token in text.split(" "):
        if SCOPE_TOKEN.fullmatch(token) is None or not token.startswith(lead):
            continue
        match = _SCOPE.fullmatch(token[len(lead) :])
        if match and match["permissions"]:
            scopes.append(Scope(match["context"], match["resource"], match["permissions"], match["query"]))
    return scopes


def access_for(
    mode: AuthMode,
    request_context: Mapping[str, Any] | None,
    action: Action,
    *,
    now: float,
    policy: ScopePolicy = DEFAULT_POLICY,
    bases: Collection[str] = (),
) -> Access:
    """The access a request has; InvalidTokenError (401) for a token past its ``exp``, however
    the authorizer's decision was cached; ForbiddenError naming the scope it needed.

    ``request_context`` is API Gateway's requestContext: ``authorizer`` holds what the SMART
    authorizer returned (sub, client_id, scope, exp, and patient, fhirUser when the token has
    them), ``identity`` the IAM caller. ``now``: seconds since the epoch. ``bases``: this API's
    base URLs, under which an absolute fhirUser names one of its Patients.
    """
    context = request_context or {}
    if mode is not AuthMode.SMART:
        return Access(principal_of(mode, context), None, None)
    claims = context.get("authorizer") or {}
    subject = principal_of(mode, context)
    if not subject:
        raise ForbiddenError("The request carries no verified token")  # API Gateway lets none through
    check_lifetime(claims.get("exp"), now)
    client_id = str(claims.get("client_id") or "") or None
    granting = [
        scope
        for scope in parse_scopes(str(claims.get("scope") or ""), policy.prefix)
        if scope.grants(action) and (scope.context != "user" or policy.user_scopes)
    ]
    contexts = {scope.context for scope in granting}
    if "system" in contexts:
        return Access(subject, client_id, None)
    if "user" in contexts:
        try:
            return Access(subject, client_id, user_patient(claims.get("fhirUser"), bases))
        except ForbiddenError:
            if "patient" not in contexts:
                raise
    if granting:  # patient/ scopes
        patient = str(claims.get("patient") or "")
        if not is_fhir_id(patient):
            raise ForbiddenError("A patient/ scope needs the token's patient launch context, and it has none")
        return Access(subject, client_id, patient)
    raise ForbiddenError(f"This {action.value} needs the scope {needed_scope(action, policy)}")


def check_lifetime(exp: Any, now: float) -> None:
    """InvalidTokenError unless ``exp`` (a number, or the digits API Gateway passes it on as) is
    later than ``now`` less the leeway."""
    if isinstance(exp, str) and exp.isascii() and exp.isdigit():
        exp = int(exp)
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise InvalidTokenError("The bearer token's lifetime (exp) is unknown")
    if now >= exp + LEEWAY_SECONDS:
        raise InvalidTokenError("The bearer token has expired")


def user_patient(fhir_user: Any, bases: Collection[str]) -> str | None:
    """The Patient a ``user/`` scope is narrowed to: the id of a fhirUser that is one of this
    API's Patients (``Patient/x``, or a URL under one of ``bases``); None (every Encounter) without
    a fhirUser or for a Practitioner or PractitionerRole; ForbiddenError for anything else."""
    if fhir_user is None or fhir_user == "":
        return None
    try:
        base, resource_type, resource_id = parse_reference(str(fhir_user))
    except ReferenceValueError:
        raise ForbiddenError("The token's fhirUser is not a FHIR reference") from None
    if resource_type in PRACTITIONER_TYPES:
        return None
    if resource_type != "Patient":
        kind = resource_type or "bare id"
        raise ForbiddenError(f"user/ scopes of a {kind} fhirUser are not supported on this server")
    if base is not None and base.rstrip("/") not in {known.rstrip("/") for known in bases}:
        raise ForbiddenError("The token's fhirUser is a Patient of another server")
    return resource_id


def principal_of(mode: AuthMode, request_context: Mapping[str, Any]) -> str:
    """Who is asking, for the audit trail: the token's subject, the IAM caller, or "local"."""
    if mode is AuthMode.SMART:
        claims = request_context.get("authorizer") or {}
        return str(claims.get("sub") or claims.get("principalId") or "")
    if mode is AuthMode.IAM:
        identity = request_context.get("identity") or {}
        return str(identity.get("userArn") or identity.get("caller") or "iam")
    return "local"


def needed_scope(action: Action, policy: ScopePolicy = DEFAULT_POLICY) -> str:
    letter = "r" if action is Action.READ else "s"
    lead = f"{policy.prefix}/" if policy.prefix else ""
    contexts = ("patient", "user", "system") if policy.user_scopes else ("patient", "system")
    named = [f"{lead}{context}/{RESOURCE}.{letter}" for context in contexts]
    return f"{', '.join(named[:-1])} or {named[-1]} (SMART v2), or {lead}<context>/{RESOURCE}.read (SMART v1)"
