"""What a caller may see, from the authorizer's context: SMART v1 and v2 scopes, the patient
compartment of a ``patient/`` scope, and the principal the audit trail names. Pure: the handlers
pass the event's request context in and enforce the answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fhir_encounter.errors import ForbiddenError
from fhir_encounter.references import is_fhir_id

RESOURCE = "Encounter"
# patient/Encounter.read, user/*.*, system/Encounter.rs, patient/Encounter.rs?status=finished
_SCOPE = re.compile(
    r"(?:[^\s?=&]+/)?"  # a resource-server prefix, as Cognito writes scopes: fhir/user/Encounter.rs
    r"(?P<context>patient|user|system)/(?P<resource>[A-Za-z]+|\*)\.(?P<permissions>read|write|\*|c?r?u?d?s?)"
    r"(?P<query>\?\S*)?"
)


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


def parse_scopes(text: str) -> list[Scope]:
    """The SMART resource scopes in a space-separated scope string; others (openid, launch) are skipped."""
    scopes = []
    for token in text.split():
        match = _SCOPE.fullmatch(token)
        if match and match["permissions"]:
            scopes.append(Scope(match["context"], match["resource"], match["permissions"], match["query"]))
    return scopes


def access_for(mode: AuthMode, request_context: Mapping[str, Any] | None, action: Action) -> Access:
    """The access a request has, or ForbiddenError naming the scope it needed.

    ``request_context`` is API Gateway's requestContext: ``authorizer`` holds what the SMART
    authorizer returned (sub, client_id, scope, patient), ``identity`` the IAM caller.
    """
    context = request_context or {}
    if mode is not AuthMode.SMART:
        return Access(principal_of(mode, context), None, None)
    claims = context.get("authorizer") or {}
    subject = principal_of(mode, context)
    if not subject:
        raise ForbiddenError("The request carries no verified token")  # API Gateway lets none through
    client_id = str(claims.get("client_id") or "") or None
    granting = [scope for scope in parse_scopes(str(claims.get("scope") or "")) if scope.grants(action)]
    if any(scope.context in ("user", "system") for scope in granting):
        return Access(subject, client_id, None)
    if granting:
        patient = str(claims.get("patient") or "")
        if not is_fhir_id(patient):
            raise ForbiddenError("A patient/ scope needs the token's patient launch context, and it has none")
        return Access(subject, client_id, patient)
    raise ForbiddenError(f"This {action.value} needs the scope {needed_scope(action)}")


def principal_of(mode: AuthMode, request_context: Mapping[str, Any]) -> str:
    """Who is asking, for the audit trail: the token's subject, the IAM caller, or "local"."""
    if mode is AuthMode.SMART:
        claims = request_context.get("authorizer") or {}
        return str(claims.get("sub") or claims.get("principalId") or "")
    if mode is AuthMode.IAM:
        identity = request_context.get("identity") or {}
        return str(identity.get("userArn") or identity.get("caller") or "iam")
    return "local"


def needed_scope(action: Action) -> str:
    letter = "r" if action is Action.READ else "s"
    return (
        f"patient/{RESOURCE}.{letter}, user/{RESOURCE}.{letter} or system/{RESOURCE}.{letter} "
        f"(SMART v2), or <context>/{RESOURCE}.read (SMART v1)"
    )
