"""Compact JWS: parse with hard limits, verify against one expected key with an algorithm
allow-list, and sign. Claims are returned unvalidated: each protocol module checks its own claims
with its injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from trustanchor import strict_json
from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PrivateKey, PublicKey, key_fits_alg

ASYMMETRIC_ALGS = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
)
# The verification parameters of each algorithm, built once: the byte size of r and of s and
# the ECDSA object; the RSA padding and hash (PSS: MGF1 with the same hash, salt = digest size).
# The curve's name is the one key_fits_alg requires of an EC key for the algorithm.
_ECDSA: dict[str, tuple[int, ec.ECDSA, str]] = {
    "ES256": (32, ec.ECDSA(hashes.SHA256()), "secp256r1"),
    "ES384": (48, ec.ECDSA(hashes.SHA384()), "secp384r1"),
    "ES512": (66, ec.ECDSA(hashes.SHA512()), "secp521r1"),
}


def _pss(hash_algorithm: hashes.HashAlgorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)


_RSA: dict[str, tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]] = {
    "RS256": (padding.PKCS1v15(), hashes.SHA256()),
    "RS384": (padding.PKCS1v15(), hashes.SHA384()),
    "RS512": (padding.PKCS1v15(), hashes.SHA512()),
    "PS256": (_pss(hashes.SHA256()), hashes.SHA256()),
    "PS384": (_pss(hashes.SHA384()), hashes.SHA384()),
    "PS512": (_pss(hashes.SHA512()), hashes.SHA512()),
}
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
    token: Any,
    *,
    max_bytes: int,
    allowed_algs: frozenset[str] | tuple[str, ...],
    header: dict[str, Any] | None = None,
) -> ParsedJWS:
    """Split and decode a compact JWS, refusing anything we will not verify before any crypto.

    ``header``: what :func:`unverified_header` returned for this very token, when the caller
    read it first (to choose an error reason); its segment is then not decoded again. Every
    other check runs, in the same order."""
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
        header_raw = b64url_decode(parts[0]) if header is None else b""
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise JoseError("malformed", "segment is not base64url") from exc
    if header is None:
        try:
            header = strict_json.loads(header_raw, max_depth=4)
        except strict_json.StrictJSONError as exc:
            raise JoseError("malformed", f"header: {exc}") from exc
    if not isinstance(header, dict):
        raise JoseError("malformed", "header is not an object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs or alg not in ASYMMETRIC_ALGS:
        raise JoseError("alg_not_allowed", f"alg {repr(alg)[:40]} is not accepted")  # bounded
    if "zip" in header or "enc" in header or alg.startswith("PBES2"):
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
    signing_input = token[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")  # "head.body"
    return ParsedJWS(header, payload, signing_input, signature)


def verify_signature(parsed: ParsedJWS, key: PublicKey) -> None:
    """Check the signature with ``key``; the alg must be the one this key is meant for.

    pyca/cryptography is called directly with what PyJWT 2.x's algorithm objects would pass
    it (the same verdicts, without PyJWT's per-call work; tests/unit/test_jws_verify.py compares
    the two on mutated tokens): for ES256/384/512 the raw ``r || s`` must be exactly twice the
    curve's byte size and is turned into DER; EdDSA, RSASSA-PKCS1-v1_5 and RSASSA-PSS (MGF1
    with the same hash, salt length = digest size) verify the same bytes."""
    alg = parsed.alg
    signature, message = parsed.signature, parsed.signing_input
    ecdsa = _ECDSA.get(alg)
    if ecdsa is not None and isinstance(key, ec.EllipticCurvePublicKey):
        size, algorithm, curve_name = ecdsa
        if key.curve.name != curve_name:  # key_fits_alg for an EC key
            raise JoseError("bad_signature", "algorithm does not match the key")
        if len(signature) != 2 * size:
            raise JoseError("bad_signature", "signature check failed")
        try:
            key.verify(der_signature(signature, size), message, algorithm)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise JoseError("bad_signature", "signature check failed") from exc
        return
    if not key_fits_alg(key, alg):
        raise JoseError("bad_signature", "algorithm does not match the key")
    try:
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif alg in _RSA and isinstance(key, rsa.RSAPublicKey):
            rsa_padding, hash_algorithm = _RSA[alg]
            key.verify(signature, message, rsa_padding, hash_algorithm)
        else:
            raise JoseError("bad_signature", f"alg {alg!r} is not supported")
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise JoseError("bad_signature", "signature check failed") from exc


def der_signature(raw: bytes, size: int) -> bytes:
    """The DER ``ECDSA-Sig-Value`` of a JWS ``r || s`` of ``size`` bytes each: what
    ``encode_dss_signature(int(r), int(s))`` returns (DER is unique: each INTEGER minimal,
    with a 0x00 before a high bit; tests/unit/test_jws_der_signature.py compares the two), by
    byte operations instead of two integer conversions and an ASN.1 encoder call."""
    r = raw[:size].lstrip(b"\0") or b"\0"
    s = raw[size:].lstrip(b"\0") or b"\0"
    if r[0] & 0x80:
        r = b"\0" + r
    if s[0] & 0x80:
        s = b"\0" + s
    body = b"\x02" + bytes((len(r),)) + r + b"\x02" + bytes((len(s),)) + s
    length = len(body)  # at most 2 * (2 + 67) = 138 (P-521): one length byte after 0x81
    return (b"\x30" + bytes((length,)) if length < 0x80 else b"\x30\x81" + bytes((length,))) + body


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
        header = strict_json.loads(b64url_decode(token[: token.index(".")]), max_depth=4)
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
    "der_signature",
    "parse",
    "sign",
    "unverified_header",
    "verify",
    "verify_signature",
]
