"""Compact JWS: parse with hard limits, verify against one expected key with an algorithm
allow-list, and sign. Claims are returned unvalidated: each protocol module checks its own claims
with its injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

from trustanchor import strict_json
from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PrivateKey, PublicKey, key_fits_alg

ASYMMETRIC_ALGS = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
)
_ALGORITHMS = get_default_algorithms()
# Header members we understand; anything listed in "crit" must be among these.
_UNDERSTOOD_CRIT: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ParsedJWS:
    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    def claims(self, *, max_depth: int = 8) -> dict[str, Any]:
        try:
            value = strict_json.loads(self.payload, max_depth=max_depth)
        except strict_json.StrictJSONError as exc:
            raise JoseError("invalid_payload", str(exc)) from exc
        if not isinstance(value, dict):
            raise JoseError("invalid_payload", "payload is not a JSON object")
        return value


def parse(
    token: Any, *, max_bytes: int, allowed_algs: frozenset[str] | tuple[str, ...]
) -> ParsedJWS:
    """Split and decode a compact JWS, refusing anything we will not verify before any crypto."""
    if not isinstance(token, str):
        raise JoseError("malformed", "not a string")
    if len(token) > max_bytes:
        raise JoseError("too_large", "JWS exceeds the size limit")
    parts = token.split(".")
    if len(parts) == 5:
        raise JoseError("unsupported", "JWE is not accepted")
    if len(parts) != 3 or not all(parts):
        raise JoseError("malformed", "not a compact JWS")
    try:
        header_raw = b64url_decode(parts[0])
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise JoseError("malformed", "segment is not base64url") from exc
    try:
        header = strict_json.loads(header_raw, max_depth=4)
    except strict_json.StrictJSONError as exc:
        raise JoseError("malformed", f"header: {exc}") from exc
    if not isinstance(header, dict):
        raise JoseError("malformed", "header is not an object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs or alg not in ASYMMETRIC_ALGS:
        raise JoseError("alg_not_allowed", f"alg {alg!r} is not accepted")
    if "zip" in header or "enc" in header or str(alg).startswith("PBES2"):
        raise JoseError("unsupported", "compressed or encrypted content is not accepted")
    if header.get("b64", True) is not True:
        raise JoseError("unsupported", "unencoded payloads are not accepted")
    crit = header.get("crit")
    if crit is not None and (
        not isinstance(crit, list)
        or not crit
        or not all(isinstance(name, str) and name in _UNDERSTOOD_CRIT for name in crit)
    ):
        raise JoseError("unsupported", "unknown critical header")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return ParsedJWS(header, payload, signing_input, signature)


def verify_signature(parsed: ParsedJWS, key: PublicKey) -> None:
    """Check the signature with ``key``; the alg must be the one this key is meant for."""
    alg = parsed.alg
    if not key_fits_alg(key, alg):
        raise JoseError("bad_signature", "algorithm does not match the key")
    algorithm = _ALGORITHMS[alg]
    try:
        ok = algorithm.verify(parsed.signing_input, key, parsed.signature)
    except (InvalidKeyError, ValueError, TypeError) as exc:
        raise JoseError("bad_signature", "signature check failed") from exc
    if not ok:
        raise JoseError("bad_signature", "signature check failed")


def verify(
    token: Any,
    key: PublicKey,
    *,
    allowed_algs: frozenset[str] | tuple[str, ...],
    max_bytes: int,
    typ: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse, check ``typ`` (case-insensitive, RFC 7515), verify; returns (header, claims)."""
    parsed = parse(token, max_bytes=max_bytes, allowed_algs=allowed_algs)
    if typ is not None:
        check_typ(parsed.header, typ)
    verify_signature(parsed, key)
    return parsed.header, parsed.claims()


def check_typ(header: dict[str, Any], expected: str) -> None:
    actual = header.get("typ")
    if not isinstance(actual, str) or _media_type(actual) != _media_type(expected):
        raise JoseError("wrong_typ", f"typ must be {expected}")


def _media_type(value: str) -> str:
    lowered = value.lower()
    return lowered[12:] if lowered.startswith("application/") else lowered


def sign(
    claims: dict[str, Any], key: PrivateKey, *, alg: str, headers: dict[str, Any] | None = None
) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def unverified_header(token: str, *, max_bytes: int) -> dict[str, Any]:
    """The protected header without checking anything else (to pick a key by kid)."""
    if not isinstance(token, str) or len(token) > max_bytes or token.count(".") != 2:
        raise JoseError("malformed", "not a compact JWS")
    try:
        header = strict_json.loads(b64url_decode(token.split(".", 1)[0]), max_depth=4)
    except (ValueError, strict_json.StrictJSONError) as exc:
        raise JoseError("malformed", "bad header") from exc
    if not isinstance(header, dict):
        raise JoseError("malformed", "header is not an object")
    return header


__all__ = [
    "ASYMMETRIC_ALGS",
    "ParsedJWS",
    "b64url_encode",
    "check_typ",
    "parse",
    "sign",
    "unverified_header",
    "verify",
    "verify_signature",
]
