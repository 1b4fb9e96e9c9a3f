"""Content negotiation: this server speaks FHIR JSON only. ``_format`` and ``Accept`` that rule
JSON out are a 406; ``_pretty=true`` asks for indented JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from fhir_encounter.errors import FHIR_JSON, InvalidRequestError, NotAcceptableError

GENERAL_PARAMETERS = ("_format", "_pretty")  # FHIR's general parameters, valid on every interaction
_JSON_FORMATS = frozenset({"json", "application/json", FHIR_JSON, "text/json"})
_JSON_RANGES = frozenset({"*/*", "application/*", "application/json", FHIR_JSON, "text/json"})
NOT_ACCEPTABLE_TEXT = "This server answers only in FHIR JSON (application/fhir+json)"


def wants_pretty(query: Mapping[str, Sequence[str]] | None, accept: str | None) -> bool:
    """Whether to indent the answer; NotAcceptableError when the client rules JSON out."""
    values = query or {}
    # A space is a '+' sent raw, which the query string decodes (as for dates: +01:00)
    formats = [value.strip().replace(" ", "+") for value in values.get("_format", ()) if value.strip()]
    if any(_media_type(value) not in _JSON_FORMATS for value in formats):
        raise NotAcceptableError(f"{NOT_ACCEPTABLE_TEXT}: use _format=json")
    if not formats and accept and not _accepts_json(accept):
        raise NotAcceptableError(f"{NOT_ACCEPTABLE_TEXT}: send Accept: {FHIR_JSON}")
    pretty = [value.strip().lower() for value in values.get("_pretty", ()) if value.strip()]
    if any(value not in ("true", "false") for value in pretty):
        raise InvalidRequestError("Invalid value for parameter '_pretty': must be true or false")
    return bool(pretty) and pretty[-1] == "true"


def pretty_json(text: str) -> str:
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False)


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(accept: str) -> bool:
    """Any media range that covers JSON with a q above zero (RFC 9110 12.5.1)."""
    for part in accept.split(","):
        media, *params = part.split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if _media_type(media) in _JSON_RANGES and quality > 0:
            return True
    return False
