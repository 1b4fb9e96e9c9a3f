"""FHIR references in one form, for stored references and search values alike: ``Type/id`` for
this server's resources (``123``, ``Patient/123``, ``Patient/123/_history/2``, or an absolute URL
under this server's base), and the whole URL for another server's (FHIR R4 3.1.1.4.8).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE_PATTERN = re.compile(r"[A-Z][A-Za-z]{0,63}")
_HISTORY = re.compile(r"/_history/[A-Za-z0-9\-.]{1,64}$")
_BASE = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?")


class ReferenceValueError(ValueError):
    """Not a literal reference of an allowed type; ``resource_type`` is the type it named, if any."""

    def __init__(self, message: str, resource_type: str | None = None) -> None:
        super().__init__(message)
        self.resource_type = resource_type


def is_fhir_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def parse_reference(value: str) -> tuple[str | None, str | None, str]:
    """``(base, type, id)``: base is None for a relative reference, type None for a bare id.

    Raises ReferenceValueError for anything else (contained ``#x`` references, URNs, empty parts).
    """
    text = _HISTORY.sub("", value.strip())
    if is_fhir_id(text):
        return None, None, text
    parts = text.rsplit("/", 2)
    if len(parts) < 2:
        raise ReferenceValueError("not a FHIR reference")
    resource_type, resource_id = parts[-2], parts[-1]
    if _TYPE_PATTERN.fullmatch(resource_type) is None or not is_fhir_id(resource_id):
        raise ReferenceValueError("not a FHIR reference")
    if len(parts) == 2:
        return None, resource_type, resource_id
    base = parts[0]
    if _BASE.fullmatch(base) is None:
        raise ReferenceValueError("not a FHIR reference")
    return base, resource_type, resource_id


def split_reference(value: str) -> tuple[str | None, str]:
    """``(type, id)`` of a relative or absolute reference, or ``(None, id)`` for a bare id."""
    _, resource_type, resource_id = parse_reference(value)
    return resource_type, resource_id


def normalize_reference(
    value: str,
    allowed: Sequence[str],
    *,
    allow_bare: bool = False,
    local_bases: Collection[str] = (),
) -> frozenset[str]:
    """Every form the value can mean: ``Type/id`` for a relative reference or one under a local
    base, the whole URL (without ``_history``) for another server's, one ``Type/id`` per allowed
    type for a bare id (when ``allow_bare``). ReferenceValueError for anything else, or another type."""
    base, resource_type, resource_id = parse_reference(value)
    if resource_type is None:
        if not allow_bare:
            raise ReferenceValueError("reference has no resource type")
        return frozenset(f"{kind}/{resource_id}" for kind in allowed)
    if resource_type not in allowed:
        raise ReferenceValueError(f"reference to {resource_type}", resource_type)
    local = f"{resource_type}/{resource_id}"
    return frozenset((local if base is None or base in local_bases else f"{base}/{local}",))


def stored_reference(value: str, allowed: Sequence[str]) -> str:
    """The form of a stored reference, which must name an allowed type: ``Type/id`` when it is
    relative, the whole URL when it is absolute (the store does not know its API's base URL)."""
    (reference,) = normalize_reference(value, allowed)
    return reference
