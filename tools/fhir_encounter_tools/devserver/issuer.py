"""The local token issuer of ``serve --auth smart`` and ``fhir-encounter token``: one RSA key in a
PEM file (PKCS#8, unencrypted, mode 0600, created on first use) signs RS256 access tokens whose
``kid`` is the key's RFC 7638 thumbprint; its public half is the JWKS that serve publishes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_ISSUER = "urn:fhir-encounter:dev-issuer"
DEV_AUDIENCE = "urn:fhir-encounter:api"
DEFAULT_KEY_FILE = ".dev-issuer-key.pem"  # what the startup hints suggest (git ignores it)
DEFAULT_CLIENT_ID = "fhir-encounter-dev"
DEFAULT_SUBJECT = "dev-user"
DEFAULT_EXPIRES_IN = 3600
KEY_BITS = 2048


class IssuerKeyError(RuntimeError):
    """The key file cannot be created or read, is not an RSA private key, or others may read it."""


@dataclass(frozen=True, slots=True)
class DevIssuer:
    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def from_key_file(cls, path: Path) -> DevIssuer:
        """The issuer whose key ``path`` holds; a new key is written there first when it is missing
        (whole or not at all: written beside it, then linked into place unless one appeared)."""
        if path.exists():
            return cls.from_private_key(_read_key(path))
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        try:
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
            os.link(draft, path)
        except FileExistsError:  # another process wrote it meanwhile: use that one
            return cls.from_private_key(_read_key(path))
        except OSError as error:
            raise IssuerKeyError(f"cannot create the dev issuer key {path}: {error.strerror}") from None
        finally:
            draft.unlink(missing_ok=True)
        return cls.from_private_key(key)

    @classmethod
    def from_private_key(cls, private_key: rsa.RSAPrivateKey) -> DevIssuer:
        return cls(private_key, thumbprint(public_jwk(private_key)))

    def jwks(self) -> dict[str, Any]:
        """The JWK set that verifies this issuer's tokens."""
        jwk = public_jwk(self.private_key)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(
        self,
        *,
        scope: str,
        patient: str | None = None,
        expires_in: int = DEFAULT_EXPIRES_IN,
        client_id: str = DEFAULT_CLIENT_ID,
        subject: str = DEFAULT_SUBJECT,
        fhir_user: str | None = None,
        now: float | None = None,
    ) -> str:
        """A signed access token for ``scope`` (and the SMART ``patient`` launch context and
        ``fhirUser`` claim)."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": subject,
            "client_id": client_id,
            "scope": scope,
            "iat": issued,
            "nbf": issued,
            "exp": issued + expires_in,
            "jti": str(uuid.uuid4()),
        }
        if patient is not None:
            claims["patient"] = patient
        if fhir_user is not None:
            claims["fhirUser"] = fhir_user
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    return {"kty": "RSA", "n": _b64_integer(numbers.n), "e": _b64_integer(numbers.e)}


def thumbprint(jwk: dict[str, str]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an RSA JWK (its e, kty and n, in that order)."""
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _read_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise IssuerKeyError(
                f"the dev issuer key {path} may be read by others (mode {stat.S_IMODE(mode):04o}); "
                f"chmod 600 {path}"
            )
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise IssuerKeyError(f"cannot read the dev issuer key {path}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise IssuerKeyError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise IssuerKeyError(f"{path} holds a {type(key).__name__}, not an RSA private key")
    return key


def _b64_integer(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
