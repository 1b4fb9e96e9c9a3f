"""Signed paging cursors: a round trip works; anything altered, foreign or malformed is a 400."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from fhir_encounter.errors import InvalidRequestError
from fhir_encounter.search.cursor import (
    BAD_CURSOR_TEXT,
    Cursor,
    decode_cursor,
    encode_cursor,
    search_fingerprint,
)

SECRET = "unit-test-secret-0123456789abcdef"
CURSOR = Cursor("2021-06-15T10:00:00.000000Z#enc-1", 20, 57)
FINGERPRINT = search_fingerprint((("patient", "p1"), ("date", "ge2021")), 10)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: bytes, secret: str = SECRET) -> str:
    """A token in the documented format (payload.signature, HMAC-SHA256 cut to 16 bytes)."""
    return f"{b64(payload)}.{b64(hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:16])}"


def payload_of(token: str) -> dict[str, object]:
    body = token.split(".")[0]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


def rejected(token: str, *, fingerprint: str = FINGERPRINT, offset: int = 20, secret: str = SECRET) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_cursor(token, fingerprint, offset, secret)
    assert (caught.value.status, caught.value.code, caught.value.text) == (400, "invalid", BAD_CURSOR_TEXT)


def test_a_cursor_round_trips() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    assert decode_cursor(token, FINGERPRINT, 20, SECRET) == CURSOR


def test_a_token_is_url_safe_and_short() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(token) < 300


def test_the_documented_format_is_what_encode_writes() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    assert payload_of(token) == {"v": 1, "q": FINGERPRINT, "k": CURSOR.after_sort_key, "o": 20, "t": 57}
    built = signed(
        json.dumps({"v": 1, "q": FINGERPRINT, "k": CURSOR.after_sort_key, "o": 20, "t": 57}).encode()
    )
    assert decode_cursor(built, FINGERPRINT, 20, SECRET) == CURSOR


def test_a_tampered_payload_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    signature = token.split(".")[1]
    data = payload_of(token)
    data["k"] = "0000-00-00T00:00:00.000000Z#a"
    forged = b64(json.dumps(data, separators=(",", ":")).encode())
    rejected(f"{forged}.{signature}")


def test_a_flipped_payload_character_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    body, signature = token.split(".")
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    rejected(f"{flipped}.{signature}")


def test_a_tampered_signature_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    body, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    rejected(f"{body}.{flipped}")
    rejected(f"{body}.{signature[:-2]}")
    rejected(f"{body}.")


def test_a_cursor_signed_with_another_secret_is_rejected() -> None:
    rejected(encode_cursor(CURSOR, FINGERPRINT, "another-secret-0123456789abcdef"))


def test_a_cursor_made_for_another_search_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    rejected(token, fingerprint=search_fingerprint((("patient", "p2"), ("date", "ge2021")), 10))
    rejected(token, fingerprint=search_fingerprint((("patient", "p1"), ("date", "ge2021")), 20))


def test_a_cursor_for_another_offset_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    rejected(token, offset=0)
    rejected(token, offset=10)
    rejected(token, offset=21)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "abc",
        "a.b.c",
        "!!!.???",
        "\u00e9\u00e9.\u00e9\u00e9",
        "====.====",
        "a" * 2000 + "." + "b" * 20,
        "eyJ2IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_garbage_is_rejected(token: str) -> None:
    rejected(token)


def test_a_cursor_too_long_is_rejected_even_when_signed() -> None:
    data = {"v": 1, "q": FINGERPRINT, "k": "x" * 1200, "o": 20, "t": 57}
    rejected(signed(json.dumps(data).encode()))


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe\xfd",
        b"[]",
        b"null",
        b"42",
        b'"text"',
        json.dumps({"q": FINGERPRINT, "k": "k", "o": 20, "t": 5}).encode(),
        json.dumps({"v": 2, "q": FINGERPRINT, "k": "k", "o": 20, "t": 5}).encode(),
        json.dumps({"v": 1, "q": FINGERPRINT, "o": 20, "t": 5}).encode(),
        json.dumps({"v": 1, "q": FINGERPRINT, "k": "k", "o": "x", "t": 5}).encode(),
        json.dumps({"v": 1, "q": FINGERPRINT, "k": "k", "o": 20, "t": "many"}).encode(),
    ],
)
def test_a_signed_payload_of_the_wrong_shape_is_rejected(payload: bytes) -> None:
    rejected(signed(payload))


def test_fingerprint_ignores_criteria_order_but_not_criteria_count_or_total_mode() -> None:
    one = search_fingerprint((("patient", "p1"), ("date", "ge2021")), 10)
    assert one == search_fingerprint((("date", "ge2021"), ("patient", "p1")), 10)
    assert one == search_fingerprint((("patient", "p1"), ("date", "ge2021")), 10, "accurate")
    assert one != search_fingerprint((("patient", "p1"),), 10)
    assert one != search_fingerprint((("patient", "p1"), ("date", "ge2022")), 10)
    assert one != search_fingerprint((("patient", "p1"), ("date", "ge2021")), 11)
    assert one != search_fingerprint((("patient", "p1"), ("date", "ge2021")), 10, "none")


def test_a_cursor_made_for_another_total_mode_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    rejected(token, fingerprint=search_fingerprint((("patient", "p1"), ("date", "ge2021")), 10, "none"))


def test_a_cursor_without_a_total_round_trips() -> None:
    cursor = Cursor("0000-00-00T00:00:00.000000Z#e1", 10, None)
    token = encode_cursor(cursor, FINGERPRINT, SECRET)
    assert payload_of(token)["t"] is None
    assert decode_cursor(token, FINGERPRINT, 10, SECRET) == cursor


def other_spellings(text: str) -> list[str]:
    """The same bytes spelled otherwise: unused trailing bits set, padding, stray characters."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same = [
        text[:-1] + char
        for char in alphabet
        if char != text[-1] and b64(base64.urlsafe_b64decode(text[:-1] + char + "==")) == text
    ]
    return [*same, text + "==", text[:3] + "!" + text[3:], text[:3] + "\n" + text[3:]]


def test_a_signature_spelled_another_way_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    body, signature = token.split(".")
    spellings = other_spellings(signature)
    assert len(spellings) > 3  # 16 bytes leave 4 unused bits in the last character
    for spelling in spellings:
        rejected(f"{body}.{spelling}")


def test_a_payload_spelled_another_way_is_rejected() -> None:
    token = encode_cursor(CURSOR, FINGERPRINT, SECRET)
    body, signature = token.split(".")
    for spelling in other_spellings(body):
        rejected(f"{spelling}.{signature}")
