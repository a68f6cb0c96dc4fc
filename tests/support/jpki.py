"""A test PKI in the JPKI model (My Number Card), built only with pyca/cryptography's builders.

Independent of the code under test: nothing here imports ``trustanchor``. The JWS helper encodes
and signs by hand (RFC 7515 compact serialization) with pyca primitives, so what the verifier
accepts is what a plain implementation of docs/CERTIFICATE-LOGIN.md produces.

Shape (as J-LIS runs it, with made-up names)::

    root CA (RSA-2048, CA, pathlen 1)
      ├── authentication issuing CA (pathlen 0) ── authentication certificate of each card
      └── signature issuing CA (pathlen 0)      ── signature certificate of each card

Typical use::

    pki = TestPKI.generate(now=1_800_000_000)
    card = pki.person(name="山田 太郎", birthdate="19800102", gender="1", address="東京都…")
    settings = pki.anchor_settings()           # stored form of an x509 anchor's settings
    token = challenge_jws(card.authentication, pki.chain_of(card.authentication),
                          aud="https://ta.example", nonce=n, txn=t, iat=now, exp=now + 120,
                          cert="authentication")
    crl = pki.crl(pki.authentication_ca, revoked=[card.authentication.serial], now=now)

Knobs for bad cases (keyword arguments of :meth:`TestPKI.person`, :meth:`TestPKI.leaf` and
:func:`make_ca`): ``not_before``/``not_after`` (expired, not yet valid), ``ca`` (leaf used as CA /
intermediate without the CA bit), ``path_length``, ``critical_unknown`` (an unknown critical
extension), ``hash_alg=hashes.SHA1()``, ``key_bits=1024``, ``policy_oid`` (wrong policy),
``issuer`` (wrong issuer), ``key_usage``, ``san`` (False: no subjectAltName).

Keys are RSA and cached per label for the process (RSA-2048 generation costs ~50 ms): distinct
labels give distinct keys, so a "wrong issuer" CA never shares a key with the real one.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

# JPKI-like otherName type ids of the signature certificate's subjectAltName (UTF8String values).
OID_NAME = x509.ObjectIdentifier("1.2.392.200149.8.5.5.1")
OID_GENDER = x509.ObjectIdentifier("1.2.392.200149.8.5.5.3")
OID_BIRTHDATE = x509.ObjectIdentifier("1.2.392.200149.8.5.5.4")
OID_ADDRESS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.5")
# An extension nobody understands (for the "unknown critical extension" case).
OID_UNKNOWN_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")

CHALLENGE_TYP = "trustanchor-x509-challenge+jwt"
PURPOSE = "trustanchor-login-challenge-v1"

# Default claims mapping of the signature profile (stored form).
SIGNATURE_CLAIMS = {
    "name": f"san_other_name:{OID_NAME.dotted_string}",
    "gender": f"san_other_name:{OID_GENDER.dotted_string}",
    "birthdate": f"san_other_name:{OID_BIRTHDATE.dotted_string}",
    "address": f"san_other_name:{OID_ADDRESS.dotted_string}",
}


def uuid_oid(label: str) -> x509.ObjectIdentifier:
    """A policy OID under the ``2.25`` arc (ITU-T X.667: the UUID as one decimal integer),
    deterministic per label so tests can name it."""
    return x509.ObjectIdentifier(f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, label).int}")


AUTHENTICATION_POLICY = uuid_oid("trustanchor-test-jpki-authentication")
SIGNATURE_POLICY = uuid_oid("trustanchor-test-jpki-signature")


@functools.cache
def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """One RSA key per (label, size) for the whole test process."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _instant(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key (and the certificate that issued it, if any)."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    issuer: Issued | None = None

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def x5c(self) -> str:
        """Standard (not URL-safe) base64 DER, as RFC 7515 ``x5c`` entries are."""
        return base64.b64encode(self.der).decode("ascii")


@dataclass(frozen=True)
class Card:
    """The two certificates of one My Number Card."""

    authentication: Issued
    signature: Issued
    attributes: Mapping[str, str] = field(default_factory=dict)


def _name(common_name: str, org: str = "Trustanchor Test JPKI") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_serials = iter(range(0x1000, 1 << 62))


def next_serial() -> int:
    return next(_serials) * 7919 + 1


def make_ca(
    common_name: str,
    *,
    now: int,
    issuer: Issued | None = None,
    path_length: int | None = 0,
    ca: bool = True,
    not_before: int | None = None,
    not_after: int | None = None,
    key_bits: int = 2048,
    hash_alg: hashes.HashAlgorithm | None = None,
    critical_unknown: bool = False,
    key_label: str | None = None,
    key_usage: x509.KeyUsage | None = None,
    include_basic_constraints: bool = True,
    subject: x509.Name | None = None,
) -> Issued:
    """A CA certificate (self-signed when ``issuer`` is None). ``ca=False`` or
    ``include_basic_constraints=False`` make the "intermediate without the CA bit" case."""
    key = rsa_key(key_label or f"ca:{common_name}", key_bits)
    name = subject or _name(common_name)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else name
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(next_serial())
        .not_valid_before(_instant(not_before if not_before is not None else now - 3 * 86400))
        .not_valid_after(_instant(not_after if not_after is not None else now + 3650 * 86400))
    )
    if include_basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    builder = builder.add_extension(
        key_usage
        or x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if critical_unknown:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(OID_UNKNOWN_EXTENSION, b"\x05\x00"), critical=True
        )
    cert = _sign(builder, signer_key, hash_alg)
    return Issued(cert=cert, key=key, issuer=issuer)


_SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
_SHA1_WITH_RSA = bytes.fromhex("06092a864886f70d010105")


def _sign(
    builder: x509.CertificateBuilder,
    key: CertificateIssuerPrivateKeyTypes,
    hash_alg: hashes.HashAlgorithm | None,
) -> x509.Certificate:
    """Sign with SHA-256, or with SHA-1 by hand: the OpenSSL under pyca refuses SHA-1 for
    certificate signatures, so the SHA-256 certificate's two AlgorithmIdentifiers are rewritten to
    sha1WithRSAEncryption (same encoded length) and the TBS re-signed with PKCS#1 v1.5 SHA-1."""
    if hash_alg is None or isinstance(hash_alg, hashes.SHA256):
        return builder.sign(key, hashes.SHA256())
    if not isinstance(hash_alg, hashes.SHA1) or not isinstance(key, rsa.RSAPrivateKey):
        return builder.sign(key, hash_alg)
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    _, body = _tlv(der, 0)
    tbs_end = _tlv(der, body)[1] + _tlv_length(der, body)
    tbs = der[body:tbs_end].replace(_SHA256_WITH_RSA, _SHA1_WITH_RSA, 1)
    algorithm = b"\x30\x0d" + _SHA1_WITH_RSA + b"\x05\x00"
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 (the bad case)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    content = tbs + algorithm + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(content)) + content)


def _tlv(data: bytes, offset: int) -> tuple[int, int]:
    """(tag offset, content offset) of the DER element at ``offset``."""
    first = data[offset + 1]
    if first < 0x80:
        return offset, offset + 2
    return offset, offset + 2 + (first & 0x7F)


def _tlv_length(data: bytes, offset: int) -> int:
    first = data[offset + 1]
    if first < 0x80:
        return first
    count = first & 0x7F
    return int.from_bytes(data[offset + 2 : offset + 2 + count], "big")


def leaf_key_usage(*, non_repudiation: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def other_names(attributes: Mapping[x509.ObjectIdentifier, str]) -> list[x509.GeneralName]:
    """subjectAltName otherName entries whose values are DER UTF8String."""
    names: list[x509.GeneralName] = []
    for oid, text in attributes.items():
        names.append(x509.OtherName(oid, _der_utf8(text)))
    return names


def _der_utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"\x0c" + _der_length(len(data)) + data


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


@dataclass
class TestPKI:
    """Root, authentication issuing CA and signature issuing CA of one test JPKI."""

    __test__ = False  # not a pytest test class

    now: int
    root: Issued
    authentication_ca: Issued
    signature_ca: Issued
    authentication_policy: x509.ObjectIdentifier = AUTHENTICATION_POLICY
    signature_policy: x509.ObjectIdentifier = SIGNATURE_POLICY

    @classmethod
    def generate(cls, *, now: int, label: str = "jpki") -> TestPKI:
        root = make_ca(f"{label} Root CA", now=now, path_length=1, key_label=f"{label}:root")
        auth = make_ca(
            f"{label} Authentication CA", now=now, issuer=root, key_label=f"{label}:auth-ca"
        )
        sign = make_ca(f"{label} Signature CA", now=now, issuer=root, key_label=f"{label}:sign-ca")
        return cls(now=now, root=root, authentication_ca=auth, signature_ca=sign)

    def profile_ca(self, profile: str) -> Issued:
        return self.authentication_ca if profile == "authentication" else self.signature_ca

    def leaf(
        self,
        profile: str,
        *,
        label: str = "person",
        issuer: Issued | None = None,
        not_before: int | None = None,
        not_after: int | None = None,
        key_bits: int = 2048,
        key: CertificateIssuerPrivateKeyTypes | None = None,
        hash_alg: hashes.HashAlgorithm | None = None,
        policy_oid: x509.ObjectIdentifier | bool | None = True,
        policies_critical: bool = False,
        key_usage: x509.KeyUsage | bool | None = True,
        critical_unknown: bool = False,
        ca: bool = False,
        path_length: int | None = None,
        san: bool | Sequence[x509.GeneralName] = True,
        attributes: Mapping[x509.ObjectIdentifier, str] | None = None,
        serial: int | None = None,
        subject: x509.Name | None = None,
        extra_extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
    ) -> Issued:
        """One card certificate of ``profile`` (``authentication`` | ``signature``).

        ``policy_oid=True`` means the profile's OID, ``None``/``False`` no certificatePolicies;
        ``key_usage=True`` the profile's, ``None``/``False`` none; ``san=True`` the signature
        certificate's otherNames (``attributes``) and nothing for the authentication one."""
        signature = profile == "signature"
        the_issuer = issuer or self.profile_ca(profile)
        leaf_key = key or rsa_key(f"leaf:{profile}:{label}", key_bits)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject or _name(f"{profile} {label}", "Trustanchor Test JPKI Users"))
            .issuer_name(the_issuer.cert.subject)
            .public_key(leaf_key.public_key())  # type: ignore[arg-type]
            .serial_number(serial if serial is not None else next_serial())
            .not_valid_before(_instant(not_before if not_before is not None else self.now - 86400))
            .not_valid_after(
                _instant(not_after if not_after is not None else self.now + 5 * 365 * 86400)
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    the_issuer.key.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=True, path_length=path_length), critical=True
            )
        if key_usage is True:
            key_usage = leaf_key_usage(non_repudiation=signature)
        if key_usage:
            builder = builder.add_extension(key_usage, critical=True)  # type: ignore[arg-type]
        if policy_oid is True:
            policy_oid = self.signature_policy if signature else self.authentication_policy
        if policy_oid:
            builder = builder.add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(policy_oid, None)]),  # type: ignore[arg-type]
                critical=policies_critical,
            )
        if san is True:
            if signature:
                names = other_names(attributes or default_attributes(label))
                builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        elif san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
        if critical_unknown:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_UNKNOWN_EXTENSION, b"\x05\x00"), critical=True
            )
        for extension, critical in extra_extensions:
            builder = builder.add_extension(extension, critical=critical)
        cert = _sign(builder, the_issuer.key, hash_alg)
        return Issued(cert=cert, key=leaf_key, issuer=the_issuer)

    def person(
        self,
        *,
        label: str = "person",
        name: str = "山田 太郎",
        birthdate: str = "19800102",
        gender: str = "1",
        address: str = "東京都千代田区霞が関1-1-1",
        **knobs: Any,
    ) -> Card:
        """The two certificates of one card; ``knobs`` (see :meth:`leaf`) apply to both."""
        attributes = {
            OID_NAME: name,
            OID_GENDER: gender,
            OID_BIRTHDATE: birthdate,
            OID_ADDRESS: address,
        }
        return Card(
            authentication=self.leaf("authentication", label=label, **knobs),
            signature=self.leaf("signature", label=label, attributes=attributes, **knobs),
            attributes={
                "name": name,
                "gender": gender,
                "birthdate": birthdate,
                "address": address,
            },
        )

    @staticmethod
    def chain_of(leaf: Issued, *, include_root: bool = False) -> list[Issued]:
        """``leaf`` then its issuers (the x5c order), without the self-signed root by default."""
        chain = [leaf]
        current = leaf.issuer
        while current is not None:
            if current.issuer is None and not include_root:
                break
            chain.append(current)
            current = current.issuer
        return chain

    def anchor_settings(self, **overrides: Any) -> dict[str, Any]:
        """The stored (JSON) settings of an ``x509`` anchor trusting this PKI."""
        settings: dict[str, Any] = {
            "roots": [self.root.pem],
            "authentication": {
                "issuers": [self.authentication_ca.pem],
                "policy_oids": [self.authentication_policy.dotted_string],
            },
            "signature": {
                "issuers": [self.signature_ca.pem],
                "policy_oids": [self.signature_policy.dotted_string],
                "claims": dict(SIGNATURE_CLAIMS),
            },
        }
        settings.update(overrides)
        return settings

    def crl(
        self,
        issuer: Issued,
        *,
        revoked: Iterable[int] = (),
        now: int | None = None,
        this_update: int | None = None,
        next_update: int | None = None,
        signing_key: CertificateIssuerPrivateKeyTypes | None = None,
        hash_alg: hashes.HashAlgorithm | None = None,
        crl_number: int = 1,
        revoked_at: int | None = None,
        extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
        issuer_name: x509.Name | None = None,
    ) -> bytes:
        """A DER CRL of ``issuer`` listing ``revoked`` serials. ``signing_key`` another key
        makes a badly signed CRL; ``next_update`` in the past a stale one."""
        instant = self.now if now is None else now
        this = this_update if this_update is not None else instant - 3600
        nxt = next_update if next_update is not None else instant + 86400
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer_name or issuer.cert.subject)
            .last_update(_instant(this))
            .next_update(_instant(nxt))
            .add_extension(x509.CRLNumber(crl_number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer.key.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(_instant(revoked_at if revoked_at is not None else this))
                .build()
            )
        crl = builder.sign(signing_key or issuer.key, hash_alg or hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)


def default_attributes(label: str) -> dict[x509.ObjectIdentifier, str]:
    return {
        OID_NAME: "山田 太郎",
        OID_GENDER: "1",
        OID_BIRTHDATE: "19800102",
        OID_ADDRESS: "東京都千代田区霞が関1-1-1",
    }


# -- challenge JWS -----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_compact(
    header: Mapping[str, Any] | bytes,
    payload: Mapping[str, Any] | bytes,
    key: Any,
    alg: str,
) -> str:
    """RFC 7515 compact JWS; ``header``/``payload`` bytes are used as given (malformed cases)."""
    h = header if isinstance(header, bytes) else json.dumps(dict(header)).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(dict(payload)).encode()
    signing_input = f"{b64url(h)}.{b64url(p)}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(raw_signature(key, alg, signing_input))}"


def raw_signature(key: Any, alg: str, data: bytes) -> bytes:
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[no-any-return]
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(data, pss, hashes.SHA256())  # type: ignore[no-any-return]
    if alg == "ES256":
        der = key.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "RS1":  # deliberately unsupported: PKCS#1 v1.5 over SHA-1
        return key.sign(data, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[no-any-return]  # noqa: S303
    raise ValueError(f"unsupported alg {alg}")


def challenge_claims(
    *,
    aud: str,
    nonce: str,
    txn: str,
    iat: int,
    exp: int,
    cert: str,
    purpose: str = PURPOSE,
) -> dict[str, Any]:
    return {
        "aud": aud,
        "nonce": nonce,
        "txn": txn,
        "iat": iat,
        "exp": exp,
        "purpose": purpose,
        "cert": cert,
    }


def challenge_jws(
    leaf: Issued,
    chain: Sequence[Issued] | None = None,
    *,
    aud: str,
    nonce: str,
    txn: str,
    iat: int,
    exp: int,
    cert: str,
    purpose: str = PURPOSE,
    alg: str = "RS256",
    typ: str = CHALLENGE_TYP,
    signing_key: Any = None,
    header_extra: Mapping[str, Any] | None = None,
    payload_extra: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
) -> str:
    """A challenge JWS as the card app makes it: signed with ``leaf``'s key (or
    ``signing_key``), ``x5c`` = ``chain`` (default: leaf and its issuing CAs, no root).
    ``drop`` removes named header or payload members; the extras add or override members."""
    certs = list(chain) if chain is not None else TestPKI.chain_of(leaf)
    header: dict[str, Any] = {"alg": alg, "typ": typ, "x5c": [c.x5c for c in certs]}
    payload = challenge_claims(
        aud=aud, nonce=nonce, txn=txn, iat=iat, exp=exp, cert=cert, purpose=purpose
    )
    header.update(header_extra or {})
    payload.update(payload_extra or {})
    for name in drop:
        header.pop(name, None)
        payload.pop(name, None)
    return sign_compact(header, payload, signing_key or leaf.key, alg)
