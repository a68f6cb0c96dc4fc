"""The kind-specific settings of an ``x509`` anchor (certificate login, the JPKI model), parsed and
validated once: at start-up from the declarations and whenever an anchor is (re)built.

Every error is a ``ValueError`` whose message starts with the field (``roots: ...``,
``signature.claims.name: ...``) so the declaration loader can prefix where it came from. The
certificates are parsed here, once; verification later trusts *only* these roots and issuing CAs.

Stored (JSON) form, ``settings`` of an Anchor with kind ``x509``:

===================  ========  =================================================================
field                required  meaning
===================  ========  =================================================================
roots                yes       list of PEM root CA certificates (the trust store of this anchor,
                               and nothing else)
authentication       yes       the user-authentication certificate profile: ``issuers`` (PEM
                               certificates of the CAs that issue it, each chaining to a root)
                               and ``policy_oids`` (the leaf must carry one of them)
signature            no        the signature certificate profile: ``issuers``, ``policy_oids``
                               and ``claims`` (OIDC claim → source, see below); without it the
                               anchor offers login only, never verified claims
algs                 no        challenge JWS algorithms, a subset of RS256, PS256, ES256
                               (default ``["RS256"]``: JPKI cards sign RSA PKCS#1 v1.5)
max_chain_length     no        certificates in ``x5c`` including the leaf (default 4, 2..6); also
                               the chain depth pyca may build
max_x5c_bytes        no        total DER bytes of the ``x5c`` certificates (default 16384, at
                               most 65536)
min_rsa_bits         no        smallest RSA modulus anywhere in the chain (default 2048; never
                               below 2048, at most 8192); the configured roots and issuing
                               CAs must meet it, and none may be signed with SHA-1 or MD5
trust_framework      no        of the verified claims (default ``jp_aml``)
revocation           yes       the revocation source (trustanchor/anchors/revocation.py:
                               ``crl`` or ``ocsp``); there is no "off": pyca checks no
                               revocation, so an anchor without a source would never notice a
                               revoked card
===================  ========  =================================================================

Claim sources (``signature.claims``): ``san_other_name:<dotted OID>``, the UTF8String value of
the leaf's subjectAltName ``otherName`` of that type id. JPKI's signature certificate carries
name, gender, birth date and address this way (see x509_claims.py for the mapping of each OIDC
claim name). Unknown OIDC claim names are refused: each has a specific conversion.

Profiles are told apart by the issuing CA (compared by DER) and the policy OIDs, never by the
subject: so the two profiles may not share an issuing CA (not even its name), and a CA may not
appear in a profile twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from trustanchor.anchors.revocation import RevocationSettings, parse_revocation_settings

Profile = Literal["authentication", "signature"]
PROFILES: tuple[Profile, ...] = ("authentication", "signature")
ALGS = ("RS256", "PS256", "ES256")
DEFAULT_ALGS = ("RS256",)
DEFAULT_MAX_CHAIN_LENGTH = 4
MAX_CHAIN_LENGTH = 6
DEFAULT_MAX_X5C_BYTES = 16384
MAX_X5C_BYTES = 65536
DEFAULT_MIN_RSA_BITS = 2048
MAX_MIN_RSA_BITS = 8192
MAX_RSA_BITS = 8192  # JPKI uses 2048; larger keys only cost verification time
DEFAULT_TRUST_FRAMEWORK = "jp_aml"
MAX_CERTIFICATES = 64  # per list: roots, a profile's issuers
SAN_OTHER_NAME = "san_other_name:"
# The OIDC claims a signature certificate can give (x509_claims.py converts each).
CLAIM_NAMES = frozenset({"name", "birthdate", "gender", "address"})
# Signature algorithms refused anywhere in a chain (x509_chain.py checks every login too).
WEAK_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA1,
        SignatureAlgorithmOID._RSA_WITH_SHA1,
        SignatureAlgorithmOID.ECDSA_WITH_SHA1,
        SignatureAlgorithmOID.DSA_WITH_SHA1,
        SignatureAlgorithmOID.RSA_WITH_MD5,
    }
)

_KNOWN = frozenset(
    {
        "roots",
        "authentication",
        "signature",
        "algs",
        "max_chain_length",
        "max_x5c_bytes",
        "min_rsa_bits",
        "trust_framework",
        "revocation",
    }
)
_PROFILE_FIELDS: dict[Profile, frozenset[str]] = {
    "authentication": frozenset({"issuers", "policy_oids"}),
    "signature": frozenset({"issuers", "policy_oids", "claims"}),
}
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


@dataclass(frozen=True, slots=True)
class ClaimSource:
    """Where one OIDC claim comes from in the signature certificate."""

    other_name: x509.ObjectIdentifier  # subjectAltName otherName type-id (UTF8String value)


@dataclass(frozen=True, slots=True)
class ProfileSettings:
    profile: Profile
    issuers: tuple[x509.Certificate, ...]
    issuer_ders: frozenset[bytes]  # the issuing CAs, compared by DER
    policy_oids: frozenset[x509.ObjectIdentifier]
    claims: Mapping[str, ClaimSource]  # read-only; empty for ``authentication``


@dataclass(frozen=True, slots=True)
class X509Settings:
    roots: tuple[x509.Certificate, ...]
    authentication: ProfileSettings
    signature: ProfileSettings | None
    revocation: RevocationSettings
    algs: tuple[str, ...] = DEFAULT_ALGS
    max_chain_length: int = DEFAULT_MAX_CHAIN_LENGTH
    max_x5c_bytes: int = DEFAULT_MAX_X5C_BYTES
    min_rsa_bits: int = DEFAULT_MIN_RSA_BITS
    trust_framework: str = DEFAULT_TRUST_FRAMEWORK

    def profile(self, name: Profile) -> ProfileSettings | None:
        return self.authentication if name == "authentication" else self.signature

    def profile_of_issuer(self, issuer_der: bytes) -> Profile | None:
        """The profile whose configured issuing CAs include this certificate (by DER)."""
        for settings in (self.authentication, self.signature):
            if settings is not None and issuer_der in settings.issuer_ders:
                return settings.profile
        return None


def parse_settings(raw: Mapping[str, Any]) -> X509Settings:
    """Validate an anchor's ``settings``; raises ValueError naming the offending field."""
    if not isinstance(raw, Mapping):
        raise ValueError("settings: must be a mapping")
    unknown = sorted(str(name) for name in set(raw) - _KNOWN)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown setting for an x509 anchor")
    algs = _algs(raw)
    max_chain_length = _int(raw, "max_chain_length", DEFAULT_MAX_CHAIN_LENGTH, 2, MAX_CHAIN_LENGTH)
    max_x5c_bytes = _int(raw, "max_x5c_bytes", DEFAULT_MAX_X5C_BYTES, 1024, MAX_X5C_BYTES)
    min_rsa_bits = _int(
        raw, "min_rsa_bits", DEFAULT_MIN_RSA_BITS, DEFAULT_MIN_RSA_BITS, MAX_MIN_RSA_BITS
    )
    trust_framework = raw.get("trust_framework", DEFAULT_TRUST_FRAMEWORK)
    if not isinstance(trust_framework, str) or not trust_framework.strip():
        raise ValueError("trust_framework: must be a non-empty string")
    roots = _certificates(raw.get("roots"), "roots")
    for index, root in enumerate(roots):
        _check_ca(root, f"roots: entry {index}")
        _check_key(root, min_rsa_bits, f"roots: entry {index}")
        if root.subject != root.issuer:
            raise ValueError(f"roots: entry {index} is not self-issued (not a root)")
    if "authentication" not in raw:
        raise ValueError("authentication: required (the user-authentication profile)")
    authentication = _profile(raw["authentication"], "authentication")
    signature = _profile(raw["signature"], "signature") if "signature" in raw else None
    intermediates = authentication.issuers + (signature.issuers if signature else ())
    for profile in (authentication, signature):
        if profile is None:
            continue
        for index, issuer in enumerate(profile.issuers):
            where = f"{profile.profile}.issuers: entry {index}"
            _check_key(issuer, min_rsa_bits, where)
            _chains_to_root(issuer, roots, intermediates, max_chain_length - 1, where)
    if signature is not None:
        shared = authentication.issuer_ders & signature.issuer_ders
        same_ca = any(_same_ca(a, s) for a in authentication.issuers for s in signature.issuers)
        if shared or same_ca:
            raise ValueError(
                "signature.issuers: an issuing CA of the authentication profile too; the "
                "profiles must be told apart by their issuing CA"
            )
        names = {a.subject for a in authentication.issuers} & {s.subject for s in signature.issuers}
        if names:
            raise ValueError(
                "signature.issuers: a CA named like one of the authentication profile "
                f"({next(iter(names)).rfc4514_string()[:120]}); the profiles' issuing CAs must "
                "have distinct names"
            )
    if "revocation" not in raw:
        raise ValueError(
            "revocation: required (crl or ocsp); certificate login never runs "
            "without a revocation source"
        )
    return X509Settings(
        roots=roots,
        authentication=authentication,
        signature=signature,
        revocation=_revocation(raw["revocation"]),
        algs=algs,
        max_chain_length=max_chain_length,
        max_x5c_bytes=max_x5c_bytes,
        min_rsa_bits=min_rsa_bits,
        trust_framework=trust_framework,
    )


def _revocation(value: Any) -> RevocationSettings:
    """Parsed by the revocation module (its messages start with the field inside the table)."""
    if not isinstance(value, Mapping):
        raise ValueError("revocation: must be a table (source = crl or ocsp, ...)")
    try:
        return parse_revocation_settings(value)
    except ValueError as exc:
        message = str(exc)
        if message.startswith("revocation"):
            raise
        raise ValueError(f"revocation.{message}") from exc


def _profile(value: Any, profile: Profile) -> ProfileSettings:
    if not isinstance(value, Mapping):
        raise ValueError(f"{profile}: must be a table with issuers and policy_oids")
    unknown = sorted(str(name) for name in set(value) - _PROFILE_FIELDS[profile])
    if unknown:
        raise ValueError(f"{profile}.{unknown[0]}: unknown setting of the {profile} profile")
    issuers = _certificates(value.get("issuers"), f"{profile}.issuers")
    ders = [issuer.public_bytes(serialization.Encoding.DER) for issuer in issuers]
    if len(set(ders)) != len(ders):
        raise ValueError(f"{profile}.issuers: the same certificate is listed twice")
    for index, issuer in enumerate(issuers):
        _check_ca(issuer, f"{profile}.issuers: entry {index}")
    policy_oids = _oids(value.get("policy_oids"), f"{profile}.policy_oids")
    claims: dict[str, ClaimSource] = {}
    if profile == "signature":
        claims = _claims(value.get("claims"), f"{profile}.claims")
    return ProfileSettings(
        profile=profile,
        issuers=issuers,
        issuer_ders=frozenset(ders),
        policy_oids=policy_oids,
        claims=MappingProxyType(claims),
    )


def _certificates(value: Any, name: str) -> tuple[x509.Certificate, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name}: must be a non-empty list of PEM certificates")
    if len(value) > MAX_CERTIFICATES:
        raise ValueError(f"{name}: at most {MAX_CERTIFICATES} certificates")
    certificates = []
    for index, pem in enumerate(value):
        if not isinstance(pem, str) or not pem.isascii():
            raise ValueError(f"{name}: entry {index} is not a PEM certificate (ASCII text)")
        blocks = _PEM.findall(pem)
        if len(blocks) != 1 or pem.strip() != blocks[0].strip():
            raise ValueError(f"{name}: entry {index} must be exactly one PEM certificate")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
            cert.subject, cert.issuer, cert.extensions, cert.public_key()  # parsed lazily
        except Exception as exc:  # pyca's lazy parts raise more than ValueError
            raise ValueError(f"{name}: entry {index} does not parse ({exc})") from exc
        certificates.append(cert)
    return tuple(certificates)


def _check_ca(cert: x509.Certificate, where: str) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise ValueError(f"{where} has no basicConstraints (not a CA certificate)") from None
    except Exception as exc:  # DuplicateExtension etc. are not ValueErrors
        raise ValueError(f"{where} has unreadable extensions ({exc})") from exc
    if not constraints.ca:
        raise ValueError(f"{where} is not a CA certificate (basicConstraints cA false)")


def _check_key(cert: x509.Certificate, min_rsa_bits: int, where: str) -> None:
    if cert.signature_algorithm_oid in WEAK_SIGNATURES:
        raise ValueError(f"{where} is signed with SHA-1 or MD5")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{where} has an unreadable public key") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if not min_rsa_bits <= key.key_size <= MAX_RSA_BITS:
            raise ValueError(f"{where} has a {key.key_size}-bit RSA key (min_rsa_bits)")
    elif not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1
    ):
        raise ValueError(f"{where} has a key that is neither RSA nor EC P-256/P-384")


def _chains_to_root(
    cert: x509.Certificate,
    roots: tuple[x509.Certificate, ...],
    intermediates: tuple[x509.Certificate, ...],
    max_depth: int,
    where: str,
) -> None:
    """Structural check (names and signatures, no validity: that is judged at each login) that
    an issuing CA reaches one of the roots within the chain length."""
    current = cert
    for _ in range(max_depth):
        for root in roots:
            if _issued_by(current, root):
                return
        parent = next(
            (c for c in intermediates if c is not current and _issued_by(current, c)), None
        )
        if parent is None:
            break
        current = parent
    raise ValueError(f"{where} does not chain to any of roots within max_chain_length")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _same_ca(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Two certificates of one CA (same name and key, e.g. a re-issued CA certificate)."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return a.subject == b.subject and a.public_key().public_bytes(
        der, spki
    ) == b.public_key().public_bytes(der, spki)


def _oids(value: Any, name: str) -> frozenset[x509.ObjectIdentifier]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name}: must be a non-empty list of dotted OIDs")
    oids = []
    for oid in value:
        if not isinstance(oid, str) or len(oid) > 200 or not _OID.match(oid):
            raise ValueError(f"{name}: {str(oid)[:60]!r} is not a dotted OID")
        if oid == "2.5.29.32.0":
            raise ValueError(f"{name}: anyPolicy would accept any certificate of the issuer")
        oids.append(x509.ObjectIdentifier(oid))
    return frozenset(oids)


def _claims(value: Any, name: str) -> dict[str, ClaimSource]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: must be a table of OIDC claim = source")
    claims: dict[str, ClaimSource] = {}
    for claim, source in value.items():
        if claim not in CLAIM_NAMES:
            raise ValueError(
                f"{name}: {str(claim)[:60]!r} is not one of {', '.join(sorted(CLAIM_NAMES))}"
            )
        if not isinstance(source, str) or not source.startswith(SAN_OTHER_NAME):
            raise ValueError(f"{name}.{claim}: must be san_other_name:<dotted OID>")
        oid = source[len(SAN_OTHER_NAME) :]
        if len(oid) > 200 or not _OID.match(oid):
            raise ValueError(f"{name}.{claim}: {oid[:60]!r} is not a dotted OID")
        claims[claim] = ClaimSource(other_name=x509.ObjectIdentifier(oid))
    return claims


def _algs(raw: Mapping[str, Any]) -> tuple[str, ...]:
    if "algs" not in raw:
        return DEFAULT_ALGS
    value = raw["algs"]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("algs: must be a non-empty list of RS256, PS256, ES256")
    for alg in value:
        if alg not in ALGS:
            raise ValueError(f"algs: {str(alg)[:40]!r} is not one of RS256, PS256, ES256")
    if len(set(value)) != len(value):
        raise ValueError("algs: listed twice")
    return tuple(value)


def _int(raw: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: must be an integer from {low} to {high}")
    return value
