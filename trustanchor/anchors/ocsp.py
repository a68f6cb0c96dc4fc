"""OCSP (RFC 6960) as an ``x509`` anchor's revocation source: one signed, fresh answer per check.

The request is built with pyca's ``OCSPRequestBuilder`` for the certificate and its issuer, with an
RFC 8954 nonce (32 bytes, the SHA-256 of an injected random token) unless the anchor turns nonces
off, and POSTed (``application/ocsp-request``) to the configured responder only — never to a URL
found in the certificate's AIA. Nothing is cached: a nonce makes every answer single-use.

CertID hash. The CertID names the issuer by hashes of its name and key; it is an identifier for
the responder's lookup, not a signature, and its security rests only on second-preimage
resistance (which SHA-1 still has), since the answer is trusted for its *signature* and for our
own comparison of the CertID it echoes. RFC 5019 (the profile most high-volume responders
implement) requires SHA-1 CertIDs, and many responders answer ``unknown`` or ``malformed`` to
SHA-256 ones; so ``sha1`` is the default and ``sha256`` a setting for responders known to accept
it. Signatures themselves with SHA-1 (or MD5) are refused.

An answer is accepted only when:

- it parses, its ``responseStatus`` is ``successful``;
- it is signed (allow-listed algorithm: RSA PKCS#1 v1.5 or ECDSA with SHA-256/384/512, Ed25519,
  Ed448; RSA keys of at least 2048 bits) either by the issuer itself (responder id = issuer's
  name or key hash), or by a *delegated responder*: a certificate found in the response (or among
  the configured ``responder_certificates``) matching the responder id, issued directly by the
  issuer (name and signature), carrying the id-kp-OCSPSigning extended key usage, valid at the
  instant, with ``digitalSignature`` when it has a key usage — and, when the anchor configures
  ``responder_certificates``, one of those exactly. A delegated responder certificate's own
  revocation is not checked (RFC 6960 4.2.2.2.1 leaves it to local policy; CAs mark such
  certificates id-pkix-ocsp-nocheck and keep them short-lived);
- it carries the nonce we sent, byte for byte (when we sent one);
- exactly one SingleResponse names our CertID (hash algorithm, issuer name hash, issuer key hash,
  serial);
- ``thisUpdate <= at + clock_skew`` and ``at < nextUpdate``, or ``at < thisUpdate + max_age``
  when there is no ``nextUpdate``;
- the status is ``good``. ``revoked`` is ``certificate_revoked``; ``unknown`` (the responder does
  not know the certificate) and everything above fail closed as ``revocation_unavailable``.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher, FetchError
from trustanchor.anchors.revocation import OcspSettings
from trustanchor.randomness import Randomness

REQUEST_MEDIA_TYPE = "application/ocsp-request"
RESPONSE_MEDIA_TYPE = "application/ocsp-response"
NONCE_BYTES = 32
MIN_RSA_BITS = 2048
_RSA = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)
_ECDSA = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)


def _unavailable(detail: str) -> AnchorFailure:
    return AnchorFailure("revocation_unavailable", f"OCSP: {detail}")


class OcspChecker:
    """RevocationChecker asking the anchor's configured OCSP responder."""

    def __init__(
        self, settings: OcspSettings, *, fetcher: Fetcher, randomness: Randomness | None
    ) -> None:
        if settings.nonce and randomness is None:
            raise ValueError("nonce: an OCSP nonce needs injected randomness")
        self._settings = settings
        self._fetcher = fetcher
        self._randomness = randomness
        self._pinned = frozenset(
            cert.public_bytes(serialization.Encoding.DER)
            for cert in settings.responder_certificates
        )

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, *, at: int) -> None:
        if certificate.issuer != issuer.subject:
            raise _unavailable("certificate not issued by this issuer")
        hash_alg: hashes.HashAlgorithm = (
            hashes.SHA1()  # noqa: S303 - CertID identifier hash, not a signature (see above)
            if self._settings.cert_id_hash == "sha1"
            else hashes.SHA256()
        )
        builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hash_alg)
        nonce: bytes | None = None
        if self._settings.nonce:
            assert self._randomness is not None  # checked in __init__
            nonce = hashlib.sha256(self._randomness.token(NONCE_BYTES).encode()).digest()
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build()
        try:
            body = self._fetcher.post(
                self._settings.responder_url,
                body=request.public_bytes(serialization.Encoding.DER),
                content_type=REQUEST_MEDIA_TYPE,
                accept=RESPONSE_MEDIA_TYPE,
                max_bytes=self._settings.max_response_bytes,
            )
        except FetchError as exc:
            raise _unavailable(f"responder unreachable ({exc.reason})") from exc
        try:
            status = self._judge(body, request, issuer, nonce, at)
        except AnchorFailure:
            raise
        except Exception as exc:  # pyca raises ValueError, DuplicateExtension,
            # UnsupportedAlgorithm...: whatever cannot be read is no answer (fail closed)
            raise _unavailable(f"malformed response ({exc.__class__.__name__})") from exc
        if status == ocsp.OCSPCertStatus.REVOKED:
            raise AnchorFailure("certificate_revoked", "OCSP responder says revoked")
        if status != ocsp.OCSPCertStatus.GOOD:
            raise _unavailable("responder does not know the certificate (status unknown)")

    def _judge(
        self,
        body: bytes,
        request: ocsp.OCSPRequest,
        issuer: x509.Certificate,
        nonce: bytes | None,
        at: int,
    ) -> ocsp.OCSPCertStatus:
        """The certificate's status from a verified answer; AnchorFailure on any refusal,
        any other exception (from pyca) on malformed content."""
        response = ocsp.load_der_ocsp_response(body)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _unavailable(f"response status {response.response_status.name.lower()}")
        signer = self._signer(response, issuer, at)
        _verify_signature(response, signer)
        if nonce is not None:
            try:
                echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound as exc:
                raise _unavailable("nonce not echoed") from exc
            if not hmac.compare_digest(echoed, nonce):
                raise _unavailable("nonce mismatch")
        matching = [
            single
            for single in response.responses
            if single.hash_algorithm.name == request.hash_algorithm.name
            and single.issuer_name_hash == request.issuer_name_hash
            and single.issuer_key_hash == request.issuer_key_hash
            and single.serial_number == request.serial_number
        ]
        if len(matching) != 1:
            raise _unavailable(f"{len(matching)} answers for the certificate asked about")
        single = matching[0]
        this_update = int(single.this_update_utc.timestamp())
        if this_update > at + self._settings.clock_skew:
            raise _unavailable("response not yet valid (thisUpdate in the future)")
        next_update = single.next_update_utc
        if next_update is not None:
            if at >= int(next_update.timestamp()):
                raise _unavailable("stale response (past nextUpdate)")
        elif at >= this_update + self._settings.max_age:
            raise _unavailable("stale response (older than max_age, no nextUpdate)")
        return single.certificate_status

    def _signer(
        self, response: ocsp.OCSPResponse, issuer: x509.Certificate, at: int
    ) -> x509.Certificate:
        """The certificate whose key must have signed the response: the issuer, or a delegated
        responder the issuer authorised (RFC 6960 4.2.2.2)."""
        name, key_hash = response.responder_name, response.responder_key_hash

        def named(candidate: x509.Certificate) -> bool:
            if name is not None:
                return candidate.subject == name
            return key_hash is not None and hmac.compare_digest(key_hash, _key_hash(candidate))

        if named(issuer):
            return issuer
        candidates = [c for c in (*response.certificates, *self._settings.responder_certificates)]
        problems = []
        for candidate in candidates:
            if not named(candidate):
                continue
            problem = self._delegation_problem(candidate, issuer, at)
            if problem is None:
                return candidate
            problems.append(problem)
        raise _unavailable("; ".join(problems) or "responder is neither the issuer nor delegated")

    def _delegation_problem(
        self, responder: x509.Certificate, issuer: x509.Certificate, at: int
    ) -> str | None:
        if self._pinned and responder.public_bytes(serialization.Encoding.DER) not in self._pinned:
            return "responder certificate is not one of the configured responder_certificates"
        try:
            responder.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            return "responder certificate not issued by the certificate's issuer"
        try:
            usages = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            return "responder certificate lacks the OCSP-signing extended key usage"
        not_before = int(responder.not_valid_before_utc.timestamp())
        not_after = int(responder.not_valid_after_utc.timestamp())
        if not not_before <= at <= not_after:
            return "responder certificate not valid at the instant"
        try:
            usage = responder.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return None
        return None if usage.digital_signature else "responder key usage lacks digitalSignature"


def _key_hash(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING (the ResponderID byKey form, RFC 6960 4.2.1),
    which is exactly the RFC 5280 method-1 key identifier."""
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    oid = response.signature_algorithm_oid
    key = signer.public_key()
    data, signature = response.tbs_response_bytes, response.signature
    try:
        if oid in _RSA and isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise _unavailable("responder RSA key shorter than 2048 bits")
            hash_alg = response.signature_hash_algorithm
            assert hash_alg is not None
            key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        elif oid in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            hash_alg = response.signature_hash_algorithm
            assert hash_alg is not None
            key.verify(signature, data, ec.ECDSA(hash_alg))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and oid == (
            SignatureAlgorithmOID.ED25519
            if isinstance(key, ed25519.Ed25519PublicKey)
            else SignatureAlgorithmOID.ED448
        ):
            key.verify(signature, data)
        else:
            raise _unavailable(f"signature algorithm {oid.dotted_string} not accepted for the key")
    except InvalidSignature as exc:
        raise _unavailable("response signature does not verify") from exc
