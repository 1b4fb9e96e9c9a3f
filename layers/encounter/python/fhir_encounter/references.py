"""FHIR references in one form, ``Type/id``, for stored references and search values alike.

``123``, ``Patient/123``, ``https://host/base/Patient/123`` and ``Patient/123/_history/2`` all name
the same Patient, so that a search matches whatever form the data used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE_PATTERN = re.compile(r"[A-Z][A-Za-z]{0,63}")
_HISTORY = re.compile(r"/_history/[A-Za-z0-9\-.]{1,64}$")


class ReferenceValueError(ValueError):
    """Not a literal reference of an allowed type; ``resource_type`` is the type it named, if any."""

    def __init__(self, message: str, resource_type: str | None = None) -> None:
        super().__init__(message)
        self.resource_type = resource_type


def is_fhir_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def split_reference(value: str) -> tuple[str | None, str]:
    """``(type, id)`` of a relative or absolute reference, or ``(None, id)`` for a bare id.

    Raises ReferenceValueError for anything else (contained ``#x`` references, URNs, empty parts).
    """
    text = _HISTORY.sub("", value.strip())
    if is_fhir_id(text):
        return None, text
    parts = text.rsplit("/", 2)
    if len(parts) < 2:
        raise ReferenceValueError("not a FHIR reference")
    resource_type, resource_id = parts[-2], parts[-1]
    if _TYPE_PATTERN.fullmatch(resource_type) is None or not is_fhir_id(resource_id):
        raise ReferenceValueError("not a FHIR reference")
    if len(parts) == 3 and not parts[0].startswith(("http://", "https://")):
        raise ReferenceValueError("not a FHIR reference")
    return resource_type, resource_id


def normalize_reference(value: str, allowed: Sequence[str], *, allow_bare: bool = False) -> frozenset[str]:
    """Every ``Type/id`` the value can mean: one for a typed reference, one per allowed type for a
    bare id (when ``allow_bare``). ReferenceValueError when it is neither, or names another type."""
    resource_type, resource_id = split_reference(value)
    if resource_type is None:
        if not allow_bare:
            raise ReferenceValueError("reference has no resource type")
        return frozenset(f"{kind}/{resource_id}" for kind in allowed)
    if resource_type not in allowed:
        raise ReferenceValueError(f"reference to {resource_type}", resource_type)
    return frozenset((f"{resource_type}/{resource_id}",))


def stored_reference(value: str, allowed: Sequence[str]) -> str:
    """The ``Type/id`` of a stored reference, which must name an allowed type."""
    (reference,) = normalize_reference(value, allowed)
    return reference
