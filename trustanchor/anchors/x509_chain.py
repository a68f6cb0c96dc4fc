"""Certificate path validation of a certificate login: pyca/cryptography's X.509 verifier against
*one anchor's* roots at the login instant, plus what pyca does not do for us.

pyca (``PolicyBuilder().store(roots).time(at).max_chain_depth(n).extension_policies(...)
.build_client_verifier()``) builds the path from the leaf through the ``x5c`` intermediates to a
configured root, and checks every certificate's validity at ``at``, signatures (refusing SHA-1
and RSA keys under 2048 bits *for the keys that verify a signature*), the CA bit and path length
of every CA, unknown critical extensions, and the depth. CA certificates keep pyca's own web PKI
defaults (``ExtensionPolicy.webpki_defaults_ca()``).

The end-entity policy is ours, one per certificate profile: pyca's default client profile
demands a subjectAltName (the authentication certificate has none) and refuses a critical
certificatePolicies, and a custom end-entity policy drops pyca's built-in key-usage checks. So it
starts from ``ExtensionPolicy.permit_all()`` (which still refuses any *critical* extension it was
not told about) and declares, with validators run inside pyca's path building:

- keyUsage: required; ``digitalSignature``, and ``nonRepudiation`` (contentCommitment) for the
  signature profile; never ``keyCertSign``;
- basicConstraints: may be present, never with cA true (a CA certificate is not a card);
- certificatePolicies: required, critical or not, with one of the profile's OIDs;
- subjectAltName: required for the signature profile (it carries the person's attributes, with
  an otherName for each configured claim source); may be present for authentication.

Our own checks, where pyca gives no hook or for a precise reason code:

- before pyca: every ``x5c`` certificate's validity at ``at`` (certificate_expired /
  certificate_not_yet_valid name which one), no SHA-1 or MD5 signature, RSA ≥ ``min_rsa_bits``
  (pyca checks the sizes of *issuer* keys only; the leaf's key signs our challenge), and the
  profile of the leaf from its **issuing CA**: a configured CA of the asked profile named as the
  leaf's issuer goes on to pyca (which verifies the leaf's signature with it); one of the other
  profile's CAs that signed the leaf → ``certificate_profile_mismatch``; none →
  ``certificate_issuer_not_accepted`` (also when pyca refuses a leaf named like our CA but not
  signed by it). The end-entity checks above also run once here, so a refusal carries its own
  reason rather than pyca's text;
- after pyca, on the chain it built (root included): RSA sizes and no SHA-1 again, the length,
  and the certificate that issued the leaf equal (DER) to a configured issuer of the profile.

Subject attributes never decide the profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.x509_settings import (
    MAX_RSA_BITS,
    WEAK_SIGNATURES,
    Profile,
    ProfileSettings,
    X509Settings,
)

REASONS: dict[str, str] = {
    "certificate_expired": "Your certificate (or a certificate above it) has expired.",
    "certificate_not_yet_valid": "Your certificate (or a certificate above it) is not valid yet.",
    "certificate_chain_invalid": "Your certificate could not be traced to a trusted authority.",
    "certificate_issuer_not_accepted": "Your certificate was issued by an authority not accepted "
    "for this login.",
    "certificate_profile_mismatch": "This is not the kind of certificate asked for: use your "
    "user-authentication certificate to log in and your signature certificate where asked.",
    "certificate_policy_not_accepted": "Your certificate was issued under a policy not accepted "
    "here.",
    "certificate_key_usage_not_accepted": "Your certificate may not be used for this kind of "
    "signature.",
    "certificate_attributes_missing": "Your signature certificate does not carry the personal "
    "details expected.",
    "weak_certificate_key": "Your certificate (or one above it) uses a key that is too weak "
    "or of a kind not accepted.",
    "weak_certificate_signature": "Your certificate (or one above it) is signed with an "
    "outdated method.",
    "certificate_unreadable": "A certificate sent by your certificate app could not be read.",
}

_ACCEPTED_CURVES = (ec.SECP256R1, ec.SECP384R1)


@dataclass(frozen=True, slots=True)
class ValidatedChain:
    profile: Profile
    leaf: x509.Certificate
    issuer: x509.Certificate  # the configured CA that issued the leaf (DER-equal to chain[1])
    chain: tuple[x509.Certificate, ...]  # as pyca built it: leaf first, root last
    issuer_der: bytes  # the issuer's DER, as compared with the configured ones


class ChainValidator:
    """Validates a leaf (and the ``x5c`` intermediates) for one profile of one anchor."""

    def __init__(self, settings: X509Settings) -> None:
        self._settings = settings
        self._store = Store(list(settings.roots))
        self._ca_policy = ExtensionPolicy.webpki_defaults_ca()
        # Configured issuing CAs by subject name (pyca builds a Name object at every access).
        self._by_name: dict[Profile, dict[x509.Name, list[x509.Certificate]]] = {}
        # The configured issuing CAs by DER: the issuer a validation returns is the configured
        # object itself (its names, extensions and key already parsed, cached by pyca).
        self._by_der: dict[Profile, dict[bytes, x509.Certificate]] = {}
        # Configured CAs known readable: an x5c certificate equal to one (pyca compares the
        # parsed structure) reads the same, so it need not be read again on every login.
        self._readable: set[x509.Certificate] = set()
        for configured in (settings.authentication, settings.signature):
            if configured is not None:
                names = self._by_name.setdefault(configured.profile, {})
                ders = self._by_der.setdefault(configured.profile, {})
                for ca in configured.issuers:
                    names.setdefault(ca.subject, []).append(ca)
                    ders[_der(ca)] = ca
                    try:
                        _check_readable(ca, 0)
                    except AnchorFailure:
                        continue  # read on every login then (and refused there)
                    self._readable.add(ca)
        self._ee_policies = {
            profile.profile: _ee_policy(profile)
            for profile in (settings.authentication, settings.signature)
            if profile is not None
        }

    def validate(
        self, certificates: Sequence[x509.Certificate], *, profile: Profile, at: int
    ) -> ValidatedChain:
        settings = self._settings
        wanted = settings.profile(profile)
        if wanted is None or not certificates:
            raise AnchorFailure("certificate_profile_mismatch", f"no {profile} profile")
        leaf = certificates[0]
        instant = datetime.fromtimestamp(at, tz=UTC)
        for index, cert in enumerate(certificates):
            if index == 0 or cert not in self._readable:
                _check_readable(cert, index)
            _check_validity(cert, instant, "leaf" if index == 0 else f"x5c[{index}]")
            _check_strength(cert, settings.min_rsa_bits, f"x5c[{index}]")
        issuer = self._issuing_ca(leaf, wanted)
        _check_end_entity(leaf, wanted)
        try:
            chain = self._pyca(leaf, list(certificates[1:]), profile, at)
        except AnchorFailure as failure:
            # Named like our CA but not signed by it: say so rather than pyca's words (only on
            # this path: verifying the leaf twice on every login would cost an RSA operation).
            if failure.reason == "certificate_chain_invalid" and not _issued_by(leaf, issuer):
                raise AnchorFailure("certificate_issuer_not_accepted", "not signed by it") from None
            raise
        if len(chain) > settings.max_chain_length + 1:
            raise AnchorFailure("certificate_chain_too_long", f"{len(chain)} certificates")
        for index, cert in enumerate(chain):
            _check_strength(cert, settings.min_rsa_bits, f"chain[{index}]")
        issuer_der = _der(chain[1]) if len(chain) >= 2 else b""
        if not issuer_der or issuer_der not in wanted.issuer_ders:
            raise AnchorFailure(
                "certificate_issuer_not_accepted", "the built chain avoids the configured CA"
            )
        configured = self._by_der[profile].get(issuer_der, chain[1])
        return ValidatedChain(
            profile=profile,
            leaf=leaf,
            issuer=configured,
            chain=tuple(chain),
            issuer_der=issuer_der,
        )

    def _issuing_ca(self, leaf: x509.Certificate, wanted: ProfileSettings) -> x509.Certificate:
        """The configured issuing CA of the leaf, for the reason codes before pyca runs: a CA of
        the wanted profile named as the leaf's issuer (pyca then verifies the signature, and
        the built chain must go through exactly that certificate); otherwise a CA of the other
        profile that really signed the leaf (profile mismatch), or none."""
        named = self._by_name[wanted.profile].get(leaf.issuer, [])
        for ca in named:
            if len(named) == 1 or _issued_by(leaf, ca):
                return ca
        other = (
            self._settings.signature
            if wanted.profile == "authentication"
            else (self._settings.authentication)
        )
        if other is not None and any(_issued_by(leaf, ca) for ca in other.issuers):
            raise AnchorFailure(
                "certificate_profile_mismatch",
                f"a {other.profile} certificate where {wanted.profile} is asked",
            )
        raise AnchorFailure("certificate_issuer_not_accepted", "issuer is no configured CA")

    def _pyca(
        self,
        leaf: x509.Certificate,
        intermediates: list[x509.Certificate],
        profile: Profile,
        at: int,
    ) -> list[x509.Certificate]:
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(datetime.fromtimestamp(at, tz=UTC))
            .max_chain_depth(self._settings.max_chain_length - 1)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policies[profile])
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            message = str(exc)
            if "exceeds max depth" in message:
                raise AnchorFailure("certificate_chain_too_long", message[:300]) from None
            raise AnchorFailure("certificate_chain_invalid", message[:300]) from None
        return list(verified.chain)


# -- end-entity extension policy (run by pyca during path building, and by us first) -----------


class _EndEntityRefused(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def _ee_policy(profile: ProfileSettings) -> ExtensionPolicy:
    def key_usage(_policy: Any, _cert: x509.Certificate, ext: x509.KeyUsage) -> None:
        _key_usage(ext, profile)

    def basic_constraints(
        _policy: Any, _cert: x509.Certificate, ext: x509.BasicConstraints | None
    ) -> None:
        _basic_constraints(ext)

    def policies(_policy: Any, _cert: x509.Certificate, ext: x509.CertificatePolicies) -> None:
        _policies(ext, profile)

    def san(_policy: Any, _cert: x509.Certificate, ext: x509.SubjectAlternativeName) -> None:
        _san(ext, profile)

    policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, key_usage)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, basic_constraints)
        .require_present(x509.CertificatePolicies, Criticality.AGNOSTIC, policies)
    )
    if profile.profile == "signature":
        return policy.require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, san)
    return policy.may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)


def _check_end_entity(leaf: x509.Certificate, profile: ProfileSettings) -> None:
    """The end-entity policy's checks, run by us so a refusal has its own reason code."""
    extensions = leaf.extensions
    try:
        _key_usage(extensions.get_extension_for_class(x509.KeyUsage).value, profile)
    except x509.ExtensionNotFound:
        raise AnchorFailure("certificate_key_usage_not_accepted", "no keyUsage") from None
    except _EndEntityRefused as exc:
        raise AnchorFailure(exc.reason, str(exc)) from None
    try:
        _basic_constraints(extensions.get_extension_for_class(x509.BasicConstraints).value)
    except x509.ExtensionNotFound:
        pass
    except _EndEntityRefused as exc:
        raise AnchorFailure(exc.reason, str(exc)) from None
    try:
        _policies(extensions.get_extension_for_class(x509.CertificatePolicies).value, profile)
    except x509.ExtensionNotFound:
        raise AnchorFailure("certificate_policy_not_accepted", "no certificatePolicies") from None
    except _EndEntityRefused as exc:
        raise AnchorFailure(exc.reason, str(exc)) from None
    if profile.profile == "signature":
        try:
            _san(extensions.get_extension_for_class(x509.SubjectAlternativeName).value, profile)
        except x509.ExtensionNotFound:
            raise AnchorFailure("certificate_attributes_missing", "no subjectAltName") from None
        except _EndEntityRefused as exc:
            raise AnchorFailure(exc.reason, str(exc)) from None


def _key_usage(ext: x509.KeyUsage, profile: ProfileSettings) -> None:
    if not ext.digital_signature:
        raise _EndEntityRefused("certificate_key_usage_not_accepted", "no digitalSignature")
    if profile.profile == "signature" and not ext.content_commitment:
        raise _EndEntityRefused("certificate_key_usage_not_accepted", "no nonRepudiation")
    if ext.key_cert_sign:
        raise _EndEntityRefused("certificate_key_usage_not_accepted", "keyCertSign on a card")


def _basic_constraints(ext: x509.BasicConstraints | None) -> None:
    if ext is not None and ext.ca:
        raise _EndEntityRefused("certificate_key_usage_not_accepted", "a CA certificate")


def _policies(ext: x509.CertificatePolicies, profile: ProfileSettings) -> None:
    if not any(info.policy_identifier in profile.policy_oids for info in ext):
        raise _EndEntityRefused("certificate_policy_not_accepted", "no policy OID of the profile")


def _san(ext: x509.SubjectAlternativeName, profile: ProfileSettings) -> None:
    present = {name.type_id for name in ext.get_values_for_type(x509.OtherName)}
    for claim, source in profile.claims.items():
        if source.other_name not in present:
            raise _EndEntityRefused("certificate_attributes_missing", f"no {claim}")


# -- our own per-certificate checks ------------------------------------------------------------


def _check_readable(cert: x509.Certificate, index: int) -> None:
    """pyca parses names, extensions and keys lazily; whatever it cannot read surfaces here,
    named, whatever it raises (DuplicateExtension and UnsupportedGeneralNameType are not
    ValueErrors)."""
    try:
        cert.subject  # noqa: B018 (parsing is the point)
        cert.issuer  # noqa: B018
        cert.extensions  # noqa: B018
        cert.public_key()
        cert.signature_algorithm_oid  # noqa: B018
    except Exception as exc:  # hostile DER: any failure means unreadable
        detail = f"x5c[{index}]: {exc.__class__.__name__}: {exc}"
        raise AnchorFailure("certificate_unreadable", detail[:300]) from None


def _check_validity(cert: x509.Certificate, instant: datetime, where: str) -> None:
    if instant > cert.not_valid_after_utc:
        raise AnchorFailure("certificate_expired", where)
    if instant < cert.not_valid_before_utc:
        raise AnchorFailure("certificate_not_yet_valid", where)


def _check_strength(cert: x509.Certificate, min_rsa_bits: int, where: str) -> None:
    if cert.signature_algorithm_oid in WEAK_SIGNATURES:
        raise AnchorFailure("weak_certificate_signature", f"{where}: SHA-1 or MD5")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise AnchorFailure("certificate_unreadable", f"{where}: public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if not min_rsa_bits <= key.key_size <= MAX_RSA_BITS:
            raise AnchorFailure("weak_certificate_key", f"{where}: RSA-{key.key_size}")
    elif not (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _ACCEPTED_CURVES)
    ):
        raise AnchorFailure("weak_certificate_key", f"{where}: key type not accepted")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
