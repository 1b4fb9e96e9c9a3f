"""Cross-origin resource sharing (the Fetch standard's CORS protocol) for browser SMART apps: which
origins may read the API's answers, and the preflight a browser sends before a request with an
``Authorization`` header. Pure: the functions (through the Router) and the dev server use it, and
template.yaml's gateway responses follow the same policy (CorsAllowedOrigins)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANY_ORIGIN = "*"
# The method each path takes (and HEAD with GET, which a browser never preflights): GET, but for the
# search by POST. The preflights of every path are answered by one function, so this lives here.
GET = ("GET",)
METHODS_BY_RESOURCE = {"/Encounter/_search": ("POST",)}
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Prefer", "If-None-Match")
# What a browser app may read besides the safelisted headers: WWW-Authenticate says why a 401 came.
EXPOSED_HEADERS = ("ETag", "Last-Modified", "Location", "Content-Location", "WWW-Authenticate", "Retry-After")
MAX_AGE_SECONDS = 600  # Chromium caps a preflight's cache at 2 hours, Firefox at 24
ALLOW = "GET, HEAD, OPTIONS"  # the Allow header of an OPTIONS answer (RFC 9110 9.3.7)
ALLOW_POST = "POST, OPTIONS"  # ... on a path that takes POST


class CorsOriginError(ValueError):
    """An entry of the allowed origins is not ``*`` or an origin (scheme://host[:port])."""


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """``origins``: empty (no CORS: browsers of other origins cannot read an answer), ``("*",)``
    (any origin: the API carries no cookies, callers authenticate with bearer tokens or SigV4), or
    the exact origins allowed."""

    origins: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> CorsPolicy:
        """From ``*`` or comma-separated origins (lower-cased, a trailing slash dropped, as a
        browser serialises an origin); CorsOriginError for anything else."""
        parts = text.split(",") if isinstance(text, str) else [p for item in text for p in item.split(",")]
        origins = tuple(dict.fromkeys(part.strip().rstrip("/").lower() for part in parts if part.strip()))
        if ANY_ORIGIN in origins and len(origins) > 1:
            raise CorsOriginError("'*' allows every origin: list no others with it")
        for origin in origins:
            if origin != ANY_ORIGIN and not _is_origin(origin):
                raise CorsOriginError(f"not an origin (scheme://host[:port]): {origin[:100]!r}")
        return cls(origins)

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    @property
    def any_origin(self) -> bool:
        return self.origins == (ANY_ORIGIN,)

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """What an actual (not preflight) answer carries for a request from ``origin``."""
        if not self.enabled:
            return {}
        vary = {} if self.any_origin else {"Vary": "Origin"}  # the answer depends on Origin
        if not self.allows(origin):
            return vary
        return {
            "Access-Control-Allow-Origin": ANY_ORIGIN if self.any_origin else str(origin),
            "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
            **vary,
        }

    def preflight_headers(self, origin: str | None, method: str | None, resource: str = "") -> dict[str, str]:
        """What the answer to an OPTIONS preflight of ``resource`` (the route template) carries:
        the grant when ``origin`` is allowed and asks for a ``method`` (Access-Control-Request-Method)
        that the path takes, else no grant (the browser then refuses the request it wanted to send)."""
        allowed = allowed_methods(resource)
        headers = {"Allow": ALLOW_POST if "POST" in allowed else ALLOW}
        if not self.enabled:
            return headers
        if not self.any_origin:
            headers["Vary"] = "Origin"
        if not self.allows(origin) or (method or "").upper() not in allowed:
            return headers
        return {
            **headers,
            "Access-Control-Allow-Origin": ANY_ORIGIN if self.any_origin else str(origin),
            "Access-Control-Allow-Methods": ", ".join(allowed),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        }


def allowed_methods(resource: str) -> tuple[str, ...]:
    """The methods a browser may be granted on the path of route template ``resource``."""
    return METHODS_BY_RESOURCE.get(resource, GET)


def _is_origin(text: str) -> bool:
    """``scheme://host[:port]`` and nothing more (an origin as a browser serialises it)."""
    scheme, separator, rest = text.partition("://")
    host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    return (
        scheme in ("http", "https")
        and bool(separator)
        and bool(host)
        and not any(c in rest for c in "/?#@ \t,")
        and (not port or (port.isdigit() and 0 < int(port) < 65536))
    )
