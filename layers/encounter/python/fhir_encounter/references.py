"""FHIR references in one form: ``Type/id``.

``123``, ``Patient/123``, ``https://host/base/Patient/123`` and ``Patient/123/_history/2`` all name
the same Patient. Stored references and search values are both reduced here, so that a search
matches whatever form the data used.
"""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE_PATTERN = re.compile(r"[A-Z][A-Za-z]{0,63}")
_HISTORY = re.compile(r"/_history/[A-Za-z0-9\-.]{1,64}$")


class ReferenceValueError(ValueError):
    """A text that is not a FHIR literal reference of the expected form."""


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


def typed_reference(value: str) -> str:
    """``Type/id`` of a reference that must name its type (as stored references do)."""
    resource_type, resource_id = split_reference(value)
    if resource_type is None:
        raise ReferenceValueError("reference has no resource type")
    return f"{resource_type}/{resource_id}"
