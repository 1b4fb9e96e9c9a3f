"""Opaque continuation cursors, signed with HMAC-SHA256: the last sort key of a page, the next
offset and the total, bound to one search. A tampered, foreign or stale cursor is a 400."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from fhir_encounter.errors import InvalidRequestError

_VERSION = 1
_SIGNATURE_BYTES = 16
_MAX_CURSOR_LENGTH = 1024
BAD_CURSOR_TEXT = "Invalid value for search parameter '_cursor': not a cursor issued for this search"


@dataclass(frozen=True, slots=True)
class Cursor:
    after_sort_key: str
    offset: int
    total: int | None  # None: the search asked for _total=none


def search_fingerprint(
    criteria: tuple[tuple[str, str], ...], count: int, total_mode: str = "accurate"
) -> str:
    text = json.dumps([sorted(criteria), count, total_mode], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def encode_cursor(cursor: Cursor, fingerprint: str, secret: str) -> str:
    payload = json.dumps(
        {"v": _VERSION, "q": fingerprint, "k": cursor.after_sort_key, "o": cursor.offset, "t": cursor.total},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload, secret))}"


def decode_cursor(token: str, fingerprint: str, offset: int, secret: str) -> Cursor:
    try:
        if len(token) > _MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        body, signature = token.split(".")
        payload, signed = _unb64(body), _unb64(signature)
        if _b64(payload) != body or _b64(signed) != signature:
            raise ValueError("not the canonical encoding")  # one spelling per cursor
        if not hmac.compare_digest(signed, _sign(payload, secret)):
            raise ValueError("bad signature")
        data = json.loads(payload)
        cursor = Cursor(str(data["k"]), int(data["o"]), None if data["t"] is None else int(data["t"]))
        if data["v"] != _VERSION or data["q"] != fingerprint or cursor.offset != offset:
            raise ValueError("foreign cursor")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidRequestError(BAD_CURSOR_TEXT) from None
    return cursor


def _sign(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
