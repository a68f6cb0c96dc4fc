"""Strict parsing of the challenge JWS of a certificate login (docs/CERTIFICATE-LOGIN.md, step 4).

The app signs our challenge with a card certificate's key; a JPKI signature-certificate signature
is legally the person's electronic signature, so the object has an exact shape that can never
read as a document: its own ``typ``, a fixed ``purpose``, and no member we did not define.

Everything is checked *before* any cryptography, in this order: the whole token's size; three
base64url segments, canonical (no padding, no stray bits that decode to the same bytes);
the protected header as strict JSON (no duplicate members) with exactly ``alg``, ``typ``,
``x5c`` (so ``crit``, ``jku``, ``x5u``, ``jwk``, ``kid``... are refused, and nothing is ever
fetched); ``alg`` in the anchor's allow-list; ``typ``; ``x5c`` count, then each entry's size,
canonical standard base64 (RFC 7515 section 4.1.6) and their total DER bytes, then each entry
parsed as one DER certificate; the payload as strict JSON with exactly ``aud``, ``nonce``,
``txn``, ``iat``, ``exp``, ``purpose``, ``cert`` of the right types, ``purpose`` the fixed
value and ``cert`` a profile name. Comparing the claims with what we expect (nonce, txn,
audience, times) and verifying the signature is x509_verifier.py's job.

The only exception this module raises is :class:`ChallengeError` (a property test holds it to
that on arbitrary input).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from trustanchor import strict_json

CHALLENGE_TYP = "trustanchor-x509-challenge+jwt"
PURPOSE = "trustanchor-login-challenge-v1"
HEADER_MEMBERS = frozenset({"alg", "typ", "x5c"})
CLAIM_MEMBERS = frozenset({"aud", "nonce", "txn", "iat", "exp", "purpose", "cert"})
CERT_VALUES = ("authentication", "signature")
MAX_TEXT = 2048  # aud, nonce, txn: ours are far shorter
MAX_INSTANT = 1 << 41  # a year around 71,700: larger numbers are nonsense, not instants
MAX_SIGNATURE_BYTES = 1024  # RSA-8192; the anchor's own limits are checked later
_JSON_DEPTH = 3
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_BASE64URL_VALUES = {char: value for value, char in enumerate(_BASE64URL_ALPHABET)}
# By length mod 4: the bits of the last character that encode no data (2: 4 bits, 3: 2 bits).
_UNUSED_BITS = {0: 0, 2: 0x0F, 3: 0x03}

REASONS: dict[str, str] = {
    "challenge_too_large": "The answer from your certificate app is too large.",
    "malformed_challenge": "The answer from your certificate app could not be read.",
    "challenge_header_not_accepted": "Your certificate app answered in a form we do not accept.",
    "challenge_alg_not_allowed": "Your certificate app signed with a method we do not accept.",
    "challenge_wrong_typ": "Your certificate app's answer is not a login challenge signature.",
    "challenge_wrong_purpose": "Your certificate app's answer was not made for logging in.",
    "certificate_chain_too_long": "Your certificate app sent more certificates than we accept.",
    "certificate_unreadable": "A certificate sent by your certificate app could not be read.",
}


class ChallengeError(Exception):
    """The challenge JWS is not acceptable; ``reason`` is a code from :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class ChallengeClaims:
    aud: str
    nonce: str
    txn: str
    iat: int
    exp: int
    purpose: str
    cert: str  # "authentication" | "signature"


@dataclass(frozen=True, slots=True)
class Challenge:
    alg: str
    certificates: tuple[x509.Certificate, ...]  # x5c: leaf first
    x5c_der: tuple[bytes, ...]
    claims: ChallengeClaims
    signing_input: bytes  # ASCII "<header>.<payload>" as received
    signature: bytes

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]


def parse_challenge(
    token: Any,
    *,
    algs: Sequence[str],
    max_bytes: int,
    max_chain_length: int,
    max_x5c_bytes: int,
) -> Challenge:
    """Parse ``token`` strictly (see the module docstring); raise ChallengeError otherwise."""
    if not isinstance(token, str):
        raise ChallengeError("malformed_challenge", "not a string")
    if len(token) > max_bytes:
        raise ChallengeError("challenge_too_large", f"{len(token)} characters")
    if not token.isascii():
        raise ChallengeError("malformed_challenge", "not ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise ChallengeError("malformed_challenge", "not a compact JWS (three segments)")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_segment(header_b64, "header"), "header")
    _check_header_members(header)
    alg = header["alg"]
    if not isinstance(alg, str) or alg not in algs:
        raise ChallengeError("challenge_alg_not_allowed", f"alg {str(alg)[:40]!r}")
    if header["typ"] != CHALLENGE_TYP:
        raise ChallengeError("challenge_wrong_typ", f"typ {str(header['typ'])[:80]!r}")
    x5c_der = _x5c(header["x5c"], max_chain_length, max_x5c_bytes)
    claims = _claims(_json_object(_segment(payload_b64, "payload"), "payload"))
    signature = _segment(signature_b64, "signature")
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise ChallengeError("malformed_challenge", "signature length")
    certificates = tuple(_certificate(der, index) for index, der in enumerate(x5c_der))
    return Challenge(
        alg=alg,
        certificates=certificates,
        x5c_der=x5c_der,
        claims=claims,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
    )


def _segment(text: str, name: str) -> bytes:
    """Strict base64url (RFC 7515: no padding, URL-safe alphabet), canonical: re-encoding would
    give the text back, so no two texts decode to the same bytes. For text of the alphabet and
    a length that is not 1 mod 4, that is exactly "the last character's bits that encode no
    data are zero", checked directly rather than by encoding kilobytes of ``x5c`` again."""
    remainder = len(text) % 4
    if not _BASE64URL.fullmatch(text) or remainder == 1:
        raise ChallengeError("malformed_challenge", f"{name} is not base64url")
    if remainder and _BASE64URL_VALUES[text[-1]] & _UNUSED_BITS[remainder]:
        raise ChallengeError("malformed_challenge", f"{name} is not canonical base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-remainder % 4))
    except (ValueError, binascii.Error):
        raise ChallengeError("malformed_challenge", f"{name} is not base64url") from None


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = strict_json.loads(data, max_depth=_JSON_DEPTH, max_bytes=len(data) + 1)
    except strict_json.StrictJSONError as exc:
        raise ChallengeError("malformed_challenge", f"{name}: {exc}") from None
    except RecursionError:
        raise ChallengeError("malformed_challenge", f"{name}: nested too deeply") from None
    if not isinstance(value, dict):
        raise ChallengeError("malformed_challenge", f"{name} is not a JSON object")
    return value


def _check_header_members(header: Mapping[str, Any]) -> None:
    members = set(header)
    if members != HEADER_MEMBERS:
        extra = sorted(members - HEADER_MEMBERS)
        missing = sorted(HEADER_MEMBERS - members)
        detail = f"unexpected {extra[0][:40]!r}" if extra else f"missing {missing[0]!r}"
        raise ChallengeError("challenge_header_not_accepted", detail)


def _x5c(value: Any, max_chain_length: int, max_x5c_bytes: int) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not value:
        raise ChallengeError("malformed_challenge", "x5c is not a non-empty list")
    if len(value) > max_chain_length:
        raise ChallengeError("certificate_chain_too_long", f"{len(value)} certificates in x5c")
    total = 0
    ders = []
    for index, entry in enumerate(value):
        if not isinstance(entry, str):
            raise ChallengeError("malformed_challenge", f"x5c[{index}] is not a string")
        # Size before decoding: 4 characters per 3 bytes.
        if (len(entry) // 4) * 3 > max_x5c_bytes - total:
            raise ChallengeError("certificate_chain_too_long", "x5c exceeds the byte limit")
        der = _standard_base64(entry, index)
        total += len(der)
        if total > max_x5c_bytes:
            raise ChallengeError("certificate_chain_too_long", "x5c exceeds the byte limit")
        ders.append(der)
    return tuple(ders)


def _standard_base64(text: str, index: int) -> bytes:
    """RFC 7515 ``x5c``: base64 (RFC 4648 section 4, with padding), not base64url."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ChallengeError("malformed_challenge", f"x5c[{index}] is not base64") from None
    if not data or base64.b64encode(data).decode("ascii") != text:
        raise ChallengeError("malformed_challenge", f"x5c[{index}] is not canonical base64")
    return data


def _certificate(der: bytes, index: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except Exception:  # pyca raises ValueError; anything else from a hostile DER is the same
        raise ChallengeError("certificate_unreadable", f"x5c[{index}]") from None


def _claims(payload: Mapping[str, Any]) -> ChallengeClaims:
    members = set(payload)
    if members != CLAIM_MEMBERS:
        extra = sorted(members - CLAIM_MEMBERS)
        missing = sorted(CLAIM_MEMBERS - members)
        detail = f"unexpected claim {extra[0][:40]!r}" if extra else f"missing {missing[0]!r}"
        raise ChallengeError("malformed_challenge", detail)
    for name in ("aud", "nonce", "txn"):
        value = payload[name]
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise ChallengeError("malformed_challenge", f"{name} is not a short string")
        try:  # JSON escapes can spell lone surrogates, which are no text (and no UTF-8)
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ChallengeError("malformed_challenge", f"{name} is not Unicode text") from None
    for name in ("iat", "exp"):
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_INSTANT:
            raise ChallengeError("malformed_challenge", f"{name} is not an instant")
    if payload["purpose"] != PURPOSE:
        raise ChallengeError("challenge_wrong_purpose", f"{str(payload['purpose'])[:80]!r}")
    if payload["cert"] not in CERT_VALUES:
        raise ChallengeError("malformed_challenge", "cert is not authentication or signature")
    return ChallengeClaims(
        aud=payload["aud"],
        nonce=payload["nonce"],
        txn=payload["txn"],
        iat=payload["iat"],
        exp=payload["exp"],
        purpose=payload["purpose"],
        cert=payload["cert"],
    )
