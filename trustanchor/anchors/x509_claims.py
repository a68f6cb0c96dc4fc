"""Verified claims from a JPKI-style signature certificate, as OpenID Connect claims, and the
``electronic_signature`` evidence element of OpenID Connect for Identity Assurance.

Only the *signature* certificate carries personal attributes (the authentication certificate
has none, by design), in subjectAltName ``otherName`` entries whose values are DER UTF8String.
Which type id holds which attribute is the anchor's ``signature.claims`` setting
(x509_settings.py); the conversions are fixed here:

=========  =====================================================================================
claim      from the certificate value
=========  =====================================================================================
name       as written (JPKI: the name as registered, family name first, e.g. ``山田 太郎``);
           ``family_name`` and ``given_name`` are added when the name splits at its first
           ideographic (U+3000) or ASCII space into two non-empty parts, and left out otherwise
           (a name in one piece, or a foreign name written differently, is not guessed at)
birthdate  ``YYYYMMDD`` (a real calendar date) → ``YYYY-MM-DD``
gender     JPKI / ISO 5218-style code: ``1`` → ``male``, ``2`` → ``female``; any other code
           (``3``, ``9``, not recorded) gives no ``gender`` claim rather than a guess
address    ``{"formatted": <value>}`` (OpenID Connect Core 5.1.1)
=========  =====================================================================================

A value that is not a well-formed UTF8String, an attribute present twice, or a birth date that
is no date makes the certificate unreadable (``certificate_attributes_unreadable``): claims about
a person are never half-read.

Evidence (OpenID Connect for Identity Assurance 1.0, "Evidence Type electronic_signature"):
``type`` ``electronic_signature``; ``signature_type`` ``jpki``; ``issuer`` the certification
authority that issued the signer's certificate (its distinguished name, RFC 4514); ``serial_number``
the certificate serial in lower-case hex; ``created_at`` the login instant, ISO 8601
``YYYY-MM-DDThh:mm:ssZ`` (the challenge signature was verified then; its own ``iat`` is the app's
clock).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from trustanchor.anchors.x509_settings import ClaimSource

REASONS: dict[str, str] = {
    "certificate_attributes_unreadable": "The personal details in your signature certificate "
    "could not be read.",
}
GENDERS = {"1": "male", "2": "female"}
SIGNATURE_TYPE = "jpki"
MAX_VALUE_CHARS = 512
_UTF8_STRING = 0x0C


class ClaimsError(Exception):
    def __init__(self, detail: str) -> None:
        self.reason = "certificate_attributes_unreadable"
        self.detail = detail
        super().__init__(detail)


def other_name_values(cert: x509.Certificate) -> dict[x509.ObjectIdentifier, str]:
    """Every subjectAltName otherName of ``cert`` as text; ClaimsError on anything odd."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    except Exception as exc:  # pyca's lazy parsing raises more than ValueError
        raise ClaimsError(f"subjectAltName: {exc.__class__.__name__}") from None
    values: dict[x509.ObjectIdentifier, str] = {}
    for name in san.get_values_for_type(x509.OtherName):
        if name.type_id in values:
            raise ClaimsError(f"otherName {name.type_id.dotted_string} twice")
        values[name.type_id] = _utf8_string(name.value, name.type_id.dotted_string)
    return values


def map_claims(cert: x509.Certificate, sources: Mapping[str, ClaimSource]) -> dict[str, Any]:
    """The OIDC claims the anchor maps from the signature certificate ``cert``."""
    values = other_name_values(cert)
    claims: dict[str, Any] = {}
    for claim, source in sources.items():
        value = values.get(source.other_name)
        if value is None:
            raise ClaimsError(f"no {claim}")
        if claim == "name":
            claims.update(_names(value))
        elif claim == "birthdate":
            claims["birthdate"] = _birthdate(value)
        elif claim == "gender":
            if value in GENDERS:
                claims["gender"] = GENDERS[value]
        elif claim == "address":
            claims["address"] = {"formatted": value}
    return claims


def evidence(cert: x509.Certificate, *, at: int) -> dict[str, Any]:
    """The ``electronic_signature`` evidence element for ``cert`` verified at ``at``."""
    created = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
    return {
        "type": "electronic_signature",
        "signature_type": SIGNATURE_TYPE,
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": f"{cert.serial_number:x}",
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _names(value: str) -> dict[str, str]:
    claims = {"name": value}
    cut = min((i for i in (value.find("\u3000"), value.find(" ")) if i >= 0), default=-1)
    if cut > 0:
        family, given = value[:cut], value[cut + 1 :].strip(" \u3000")
        if family and given:
            claims["family_name"] = family
            claims["given_name"] = given
    return claims


def _birthdate(value: str) -> str:
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        raise ClaimsError("birth date is not YYYYMMDD")
    try:
        date = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise ClaimsError("birth date is no calendar date") from None
    return date.isoformat()


def _utf8_string(der: bytes, oid: str) -> str:
    """Decode one DER UTF8String (definite length, nothing after it)."""
    if len(der) < 2 or der[0] != _UTF8_STRING:
        raise ClaimsError(f"otherName {oid} is not a UTF8String")
    first = der[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 2 or len(der) < 2 + count:
            raise ClaimsError(f"otherName {oid}: bad length")
        length, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
        if length < 0x80 or (count == 2 and length < 0x100):  # DER: shortest form
            raise ClaimsError(f"otherName {oid}: length not in DER form")
    if start + length != len(der):
        raise ClaimsError(f"otherName {oid}: length mismatch")
    try:
        text = der[start:].decode("utf-8")
    except UnicodeDecodeError:
        raise ClaimsError(f"otherName {oid} is not UTF-8") from None
    if not text or len(text) > MAX_VALUE_CHARS or any(ch < " " for ch in text):
        raise ClaimsError(f"otherName {oid}: empty, too long or control characters")
    return text
