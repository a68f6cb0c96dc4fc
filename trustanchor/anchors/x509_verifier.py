"""Verifier for anchors of kind ``x509``: certificate login in the JPKI model (My Number Card).

The card app answers our challenge (docs/CERTIFICATE-LOGIN.md) with one challenge JWS per
certificate asked for: ``authentication`` always, ``signature`` at enrolment. For each, in this
order (each refusal an :class:`AnchorFailure` with a code from :data:`REASONS`):

1. strict parse (x509_challenge.py): size, exact header and claims, ``alg`` allow-list, ``x5c``
   count and bytes; the leaf's key type and size (before any cryptography with it);
2. the JWS signature with the leaf's public key (RS256: RSASSA-PKCS1-v1_5 SHA-256; PS256:
   RSASSA-PSS SHA-256, MGF1 SHA-256, 32-byte salt; ES256: P-256, raw ``r || s``);
3. the claims against the consumed login transaction: ``aud`` our verifier id, ``nonce`` and
   ``txn`` (constant-time), ``cert`` the profile of this slot, ``iat`` not in the future and
   ``exp`` not past (both with ``clock_skew``), ``exp`` ≤ the transaction's expiry,
   ``exp − iat`` ≤ 300 seconds;
4. the certificate path for that profile at ``at`` (x509_chain.py: pyca's verifier with the
   anchor's roots, plus the profile decided by the issuing CA and policy OIDs);
5. revocation of the leaf through the anchor's checker (revocation.py), failing closed.

Why this order: a certificate is public. Only someone holding the card's key (and its PIN) can
sign our nonce, so anything that names the certificate (expired, revoked, wrong profile) is said
only after step 2-3 proved possession for *this* login; a replayed or forged answer without the
key gets ``challenge_signature_invalid`` (and one of another login ``challenge_nonce_mismatch``).

Identity: JPKI has no stable subject identifier; the subject is the authentication
certificate's issuer and serial, ``<first 32 hex of SHA-256(issuer name DER)>:<serial hex>``
(the anchor is the other half of the key). Claims come only from the signature certificate
(x509_claims.py), with an ``electronic_signature`` evidence element; a login with the
authentication certificate alone carries no claims. The two certificates of an enrolment are
not cryptographically linked in JPKI (no shared attribute): both signatures over the same
challenge, each verified, is what binds them; the residual risk (two people's cards used
together at one enrolment) is the holder's own doing and is named in the docs.

``amr``: ``sc`` (smart card), ``pin`` (the card unlocks its key with a PIN), ``hwk`` (the key is
in hardware): RFC 8176 values for what a My Number Card login is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from trustanchor import digests
from trustanchor.anchors import revocation, x509_chain, x509_challenge, x509_claims
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.revocation import RevocationChecker
from trustanchor.anchors.x509_chain import ChainValidator, ValidatedChain
from trustanchor.anchors.x509_challenge import Challenge, ChallengeError, parse_challenge
from trustanchor.anchors.x509_settings import MAX_RSA_BITS, Profile, X509Settings, parse_settings
from trustanchor.config.settings import LimitSettings
from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import VerifiedIdentity

AMR = ("sc", "pin", "hwk")
MAX_CHALLENGE_LIFETIME = 300

REASONS: dict[str, str] = {
    **x509_challenge.REASONS,
    **x509_chain.REASONS,
    **x509_claims.REASONS,
    **revocation.REASONS,
    "challenge_signature_invalid": "The signature from your certificate app is not valid for "
    "the certificate it sent.",
    "challenge_wrong_audience": "Your certificate app signed a challenge meant for another "
    "service.",
    "challenge_nonce_mismatch": "Your certificate app signed a challenge of another login attempt.",
    "challenge_txn_mismatch": "Your certificate app signed a challenge of another login attempt.",
    "challenge_wrong_certificate": "Your certificate app signed with another certificate than "
    "the one asked for.",
    "challenge_issued_in_future": "The signature from your certificate app is dated in the "
    "future; check your phone's clock.",
    "challenge_expired": "The signature from your certificate app has expired; please try again.",
    "challenge_lifetime_too_long": "The signature from your certificate app is valid for too long.",
    "signature_certificate_missing": "Your signature certificate is needed as well this time.",
    "signature_profile_not_configured": "This login does not accept signature certificates.",
    "certificate_chain_too_long": "Your certificate app sent more certificates than we accept.",
}


@dataclass(frozen=True, slots=True)
class ChallengeExpectation:
    """What the consumed login transaction expects of every challenge JWS."""

    audience: str  # our verifier id
    nonce: str
    txn: str
    not_after: int  # the transaction's (and the request object's) expiry


@dataclass(frozen=True, slots=True)
class CertificateAnswer:
    """The challenge JWS of each certificate, as posted by the card app."""

    authentication: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class _Verified:
    challenge: Challenge
    chain: ValidatedChain


class X509Verifier:
    """Certificate-login verifier for one ``x509`` anchor. Construction parses the settings
    (ValueError on bad configuration) and prepares pyca's trust store; no network."""

    def __init__(
        self,
        anchor: Anchor,
        *,
        revocation: RevocationChecker,
        limits: LimitSettings,
        clock_skew: int,
    ) -> None:
        if anchor.kind != "x509":
            raise ValueError(f"anchor {anchor.id}: kind {anchor.kind!r} is not x509")
        self.anchor = anchor
        self.settings: X509Settings = parse_settings(anchor.settings)
        self._revocation = revocation
        self._limits = limits
        self._skew = clock_skew
        self._chains = ChainValidator(self.settings)

    def verify(
        self,
        answer: CertificateAnswer,
        *,
        expected: ChallengeExpectation,
        at: int,
        require_signature: bool,
    ) -> VerifiedIdentity:
        if require_signature and answer.signature is None:
            raise AnchorFailure("signature_certificate_missing")
        if answer.signature is not None and self.settings.signature is None:
            raise AnchorFailure("signature_profile_not_configured")
        authentication = self._verify_one(answer.authentication, "authentication", expected, at)
        signature = None
        if answer.signature is not None:
            signature = self._verify_one(answer.signature, "signature", expected, at)
            # Both equal the transaction's already; said once more, as the rule it is.
            if not (
                digests.equal(
                    authentication.challenge.claims.nonce, signature.challenge.claims.nonce
                )
                and digests.equal(
                    authentication.challenge.claims.txn, signature.challenge.claims.txn
                )
            ):
                raise AnchorFailure("challenge_nonce_mismatch", "the two signatures differ")
        for verified in (authentication, signature):
            if verified is not None:
                self._revocation.check(verified.chain.leaf, verified.chain.issuer, at=at)
        return self._identity(answer, authentication, signature, at)

    # -- one challenge JWS ---------------------------------------------------------------------

    def _verify_one(
        self, token: str, profile: Profile, expected: ChallengeExpectation, at: int
    ) -> _Verified:
        settings = self.settings
        try:
            challenge = parse_challenge(
                token,
                algs=settings.algs,
                max_bytes=self._limits.max_jws_bytes,
                max_chain_length=settings.max_chain_length,
                max_x5c_bytes=settings.max_x5c_bytes,
            )
        except ChallengeError as exc:
            raise AnchorFailure(exc.reason, f"{profile}: {exc.detail}") from None
        _verify_signature(challenge, settings.min_rsa_bits)
        self._check_claims(challenge, profile, expected, at)
        chain = self._chains.validate(challenge.certificates, profile=profile, at=at)
        return _Verified(challenge=challenge, chain=chain)

    def _check_claims(
        self, challenge: Challenge, profile: Profile, expected: ChallengeExpectation, at: int
    ) -> None:
        claims = challenge.claims
        if not digests.equal(claims.aud, expected.audience):
            raise AnchorFailure("challenge_wrong_audience", f"{profile}: aud {claims.aud[:200]!r}")
        if not expected.nonce or not digests.equal(claims.nonce, expected.nonce):
            raise AnchorFailure("challenge_nonce_mismatch", profile)
        if not expected.txn or not digests.equal(claims.txn, expected.txn):
            raise AnchorFailure("challenge_txn_mismatch", profile)
        if claims.cert != profile:
            raise AnchorFailure("challenge_wrong_certificate", f"cert {claims.cert} as {profile}")
        if claims.iat > at + self._skew:
            raise AnchorFailure(
                "challenge_issued_in_future", f"{profile}: iat {claims.iat - at}s ahead"
            )
        if at > claims.exp + self._skew:
            raise AnchorFailure("challenge_expired", f"{profile}: {at - claims.exp}s ago")
        if claims.exp > expected.not_after:
            raise AnchorFailure("challenge_lifetime_too_long", f"{profile}: exp after the request")
        if not 0 <= claims.exp - claims.iat <= MAX_CHALLENGE_LIFETIME:
            raise AnchorFailure("challenge_lifetime_too_long", f"{profile}: exp - iat")

    # -- the identity --------------------------------------------------------------------------

    def _identity(
        self,
        answer: CertificateAnswer,
        authentication: _Verified,
        signature: _Verified | None,
        at: int,
    ) -> VerifiedIdentity:
        leaf = authentication.chain.leaf
        claims: dict[str, object] = {}
        evidence: dict[str, object] = {}
        if signature is not None:
            sources = self.settings.signature.claims if self.settings.signature else {}
            try:
                claims = x509_claims.map_claims(signature.chain.leaf, sources)
            except x509_claims.ClaimsError as exc:
                raise AnchorFailure(exc.reason, exc.detail) from None
            evidence = x509_claims.evidence(signature.chain.leaf, at=at)
        presented = answer.authentication + (f"\n{answer.signature}" if answer.signature else "")
        return VerifiedIdentity(
            anchor_id=self.anchor.id,
            subject=subject_of(leaf),
            claims=claims,
            assurance_level=self.anchor.assurance_level,
            verified_at=at,
            expires_at=int(leaf.not_valid_after_utc.timestamp()),
            evidence_digest=digests.sha256_hex(presented),
            trust_framework=self.settings.trust_framework,
            evidence=evidence,
            amr=AMR,
            # The DER as received (the leaf was parsed from it) and as compared with the
            # configured issuers: no re-encoding of either certificate.
            status_reference=_status_reference(
                authentication.challenge.x5c_der[0], authentication.chain.issuer_der
            ),
        )


STATUS_REFERENCE_KEY = "x509"


def status_reference(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, Any]:
    """What a later revocation check of the identity needs (``services/credential_checks.py``):
    the authentication certificate and its issuer, DER in base64url. The authentication
    certificate carries no personal attributes (that is its profile), so it may be stored."""
    return _status_reference(
        certificate.public_bytes(serialization.Encoding.DER),
        issuer.public_bytes(serialization.Encoding.DER),
    )


def _status_reference(certificate_der: bytes, issuer_der: bytes) -> dict[str, Any]:
    return {
        STATUS_REFERENCE_KEY: {
            "certificate": b64url_encode(certificate_der),
            "issuer": b64url_encode(issuer_der),
        }
    }


def certificates_of(reference: Mapping[str, Any]) -> tuple[x509.Certificate, x509.Certificate]:
    """The (certificate, issuer) of a stored :func:`status_reference`; ValueError when it is not
    one."""
    inner = reference.get(STATUS_REFERENCE_KEY)
    if not isinstance(inner, Mapping):
        raise ValueError("not an x509 status reference")
    try:
        certificate = x509.load_der_x509_certificate(b64url_decode(str(inner["certificate"])))
        issuer = x509.load_der_x509_certificate(b64url_decode(str(inner["issuer"])))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"malformed x509 status reference ({exc.__class__.__name__})") from None
    return certificate, issuer


def subject_of(authentication_certificate: x509.Certificate) -> str:
    """The stable subject of a holder at an ``x509`` anchor: issuer and serial of the
    authentication certificate (the issuer as the digest of its DER name)."""
    issuer = digests.sha256_hex(authentication_certificate.issuer.public_bytes())[:32]
    return f"{issuer}:{authentication_certificate.serial_number:x}"


def _verify_signature(challenge: Challenge, min_rsa_bits: int) -> None:
    """The challenge JWS signature with the leaf's key; the key is sized first."""
    try:
        key = challenge.leaf.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise AnchorFailure("certificate_unreadable", "leaf public key") from None
    alg, data, signature = challenge.alg, challenge.signing_input, challenge.signature
    try:
        if alg in ("RS256", "PS256"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise AnchorFailure("challenge_signature_invalid", f"{alg} with a non-RSA key")
            if not min_rsa_bits <= key.key_size <= MAX_RSA_BITS:
                raise AnchorFailure("weak_certificate_key", f"leaf: RSA-{key.key_size}")
            if len(signature) != (key.key_size + 7) // 8:
                raise AnchorFailure("challenge_signature_invalid", "signature length")
            if alg == "RS256":
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                key.verify(signature, data, pss, hashes.SHA256())
        elif alg == "ES256":
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
                key.curve, ec.SECP256R1
            ):
                raise AnchorFailure("challenge_signature_invalid", "ES256 with a non-P-256 key")
            if len(signature) != 64:
                raise AnchorFailure("challenge_signature_invalid", "signature length")
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:  # parse_challenge admits only the anchor's algs, all handled above
            raise AnchorFailure("challenge_alg_not_allowed", alg)
    except InvalidSignature:
        raise AnchorFailure("challenge_signature_invalid") from None
