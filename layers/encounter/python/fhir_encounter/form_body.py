"""The body of ``POST /Encounter/_search`` (FHIR R4 http.html#search): search parameters as an
``application/x-www-form-urlencoded`` form in UTF-8, which join the URL's as repeated parameters.
Pure: what API Gateway passes on (its body text, or base64 when ``isBase64Encoded``) in, the
parameters out; every body it cannot use is a 4xx that says why, and never echoes the body."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace
from urllib.parse import parse_qsl

from fhir_encounter.errors import (
    ContentTooLargeError,
    InvalidRequestError,
    TokenInUrlError,
    UnsupportedMediaTypeError,
)
from fhir_encounter.gateway import Request

FORM_TYPE = "application/x-www-form-urlencoded"
# As long as the longest request line `fhir-encounter serve` takes: every parameter at its most
# values (100 a parameter) fits many times over.
MAX_FORM_BYTES = 65_536
_UTF8 = ("utf-8", "utf8")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}/[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")


def with_form_parameters(request: Request) -> Request:
    """``request`` with its form body's parameters after the URL's (a name in both is repeated:
    AND, as in a URL) and no body left. UnsupportedMediaTypeError (415) for another content type,
    charset or content coding; InvalidRequestError (400) for a body that is not UTF-8 form
    encoding; ContentTooLargeError (413) over MAX_FORM_BYTES; TokenInUrlError (401) for an
    ``access_token`` in it."""
    form = form_parameters(request)
    if any(name == "access_token" for name, _ in form):
        raise TokenInUrlError(
            "Send the access token in the Authorization header, never in the body or the URL"
        )
    merged = {name: list(values) for name, values in request.query.items()}
    for name, value in form:
        merged.setdefault(name, []).append(value)
    return replace(request, query=merged, body=None, body_base64=False)


def form_parameters(request: Request) -> list[tuple[str, str]]:
    """The form body's (name, value) pairs in order; blank values kept (the search ignores them
    as it does in a URL). No body, or an empty one, has none, whatever its Content-Type says."""
    content = _content(request)
    content_type = (request.headers.get("Content-Type") or "").strip()
    if not content and not content_type:
        return []
    _require_form(content_type, request.headers.get("Content-Encoding"))
    try:
        text = content.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequestError(
            "The form body is not valid UTF-8 form encoding (a byte, or a percent-encoded byte "
            "sequence, is not UTF-8)"
        ) from None


def form_parameter_names(request: Request) -> set[str]:
    """The names a POST's form body carries, or none when it cannot be read (or the request is
    not a POST): for the audit line of a request that failed, which names its parameters whatever
    their fate."""
    if request.method != "POST":
        return set()
    try:
        return {name for name, _ in form_parameters(request)}
    except (InvalidRequestError, UnsupportedMediaTypeError, ContentTooLargeError):
        return set()


def _content(request: Request) -> bytes:
    """The body's bytes, at most MAX_FORM_BYTES of them."""
    body = request.body or ""
    if request.body_base64:
        if len(body) > (MAX_FORM_BYTES + 2) // 3 * 4:
            raise _too_large()
        try:
            content = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("The request body is marked base64 but is not valid base64") from None
    else:
        try:
            content = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text
            raise InvalidRequestError("The form body is not valid UTF-8") from None
    if len(content) > MAX_FORM_BYTES:
        raise _too_large()
    return content


def _require_form(content_type: str, content_encoding: str | None) -> None:
    media, *parameters = content_type.split(";")
    media = media.strip().lower()
    if media != FORM_TYPE:
        shown = f"'{media}'" if _TOKEN.fullmatch(media) else "this Content-Type"
        raise UnsupportedMediaTypeError(
            f"POST /Encounter/_search takes a body of type {FORM_TYPE}, not {shown}"
            if media
            else f"A POST /Encounter/_search body needs Content-Type: {FORM_TYPE}"
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            raise UnsupportedMediaTypeError(
                f"The form body must be UTF-8 (Content-Type: {FORM_TYPE}; charset=utf-8)"
            )
    if (content_encoding or "identity").strip().lower() != "identity":
        raise UnsupportedMediaTypeError("The form body must not be compressed (no Content-Encoding)")


def _too_large() -> ContentTooLargeError:
    return ContentTooLargeError(f"The form body is over {MAX_FORM_BYTES // 1024} KB")
