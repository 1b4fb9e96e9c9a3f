"""GET /Encounter/{id}: the read route's body and its request model. Apart from routes.py so that
the read function imports no search module (the registry, the query model, planning, cursors,
paging, the Bundle builder). The store it reads through never imports search/
(tests/unit/test_structure.py holds it to that). Its one input, the id, is validated by a pydantic
model, as the search's query is; with SnapStart the import is paid when a version is published."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from fhir_encounter.access import Action
from fhir_encounter.errors import InvalidRequestError, NotFoundError, TokenInUrlError
from fhir_encounter.formats import pretty_json, wants_pretty
from fhir_encounter.gateway import Request, Response, prefers_strict
from fhir_encounter.references import ID_PATTERN
from fhir_encounter.runtime import Runtime, Store, fhir_response
from fhir_encounter.store.dynamodb import ReadCost
from fhir_encounter.subsetting import subset_from_query, subset_json

# A missing Encounter and one outside the caller's compartment: the same text.
UNKNOWN_TEXT = "Unknown Encounter resource '{id}'"
BAD_ID_TEXT = "Invalid Encounter id: a FHIR id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"


class ReadRequest(BaseModel):
    """A read's request: the Encounter's logical id (FHIR R4 id: [A-Za-z0-9-.]{1,64})."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN.pattern}$", strict=True)]


def read_encounter(request: Request, runtime: Runtime, store: Store) -> Response:
    """``request.path_parameters["id"]``: API Gateway decodes it (enc%2D1 is enc-1)."""
    refuse_query_tokens(request)
    access = runtime.access(request, Action.READ)
    pretty = wants_pretty(request.query, request.headers.get("Accept"))
    try:
        encounter_id = ReadRequest.model_validate({"id": request.path_parameters.get("id", "")}).id
    except ValidationError:
        raise InvalidRequestError(BAD_ID_TEXT) from None
    subset = subset_from_query(request.query, strict=prefers_strict(request))  # before any read
    # One GetItem by key, found or not, in the compartment or not: what a read costs does not
    # depend on whether the Encounter exists or whose it is, and neither does the answer.
    cost = ReadCost()
    stored = store.repository.find(encounter_id, cost)
    if stored is not None and access.compartment and stored.subject_ref != access.compartment:
        stored = None  # as if missing: existence never leaks
    runtime.logger.info(
        "read answered",
        extra={"found": stored is not None, **cost.figures()},
    )
    if stored is None:
        raise NotFoundError(UNKNOWN_TEXT.format(id=encounter_id))
    etag = {"ETag": f'W/"{stored.version_id}"'}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match, stored.version_id):
        runtime.audit(request, 304, access, [encounter_id])
        # RFC 9110 15.4.5: with an ETag, a 304 carries no other representation metadata.
        return fhir_response(304, None, etag)
    headers = {**etag, "Last-Modified": _http_date(stored.last_updated)}
    body = stored.resource_json if subset is None else subset_json(stored.resource_json, subset)
    runtime.count("EncounterReads", 1)
    runtime.audit(request, 200, access, [encounter_id])
    return fhir_response(200, pretty_json(body) if pretty else body, headers)


def refuse_query_tokens(request: Request) -> None:
    """A bearer token in a URL ends up in logs and histories: never accepted (RFC 6750 2.3), 401
    whatever the Authorization header holds. Here, not in the authorizer: its decision is cached
    by the header alone, so it must not depend on the query string."""
    if "access_token" in request.query:
        raise TokenInUrlError("Send the access token in the Authorization header, never in the URL")


def _etag_matches(if_none_match: str, version_id: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ is ignored; * matches any."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or f'"{version_id}"' in tags


def _http_date(instant: str) -> str:
    try:
        return format_datetime(datetime.fromisoformat(instant).astimezone(UTC), usegmt=True)
    except ValueError:
        return format_datetime(datetime.now(UTC), usegmt=True)
