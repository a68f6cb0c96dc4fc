"""A demo PKI in the style of JPKI (公的個人認証サービス), the My Number Card's certificates:
a root, a user-authentication CA and a signature CA (RSA-2048, SHA-256), and for every demo
person with a card (``card`` in ``trustanchor/demo/data/people.toml``) the two certificates of
their card:

- the **authentication** certificate (利用者証明用電子証明書): no personal attributes — a
  subject of ``C=JP`` and a meaningless serial-like common name, key usage
  ``digitalSignature``;
- the **signature** certificate (署名用電子証明書): the four basic attributes as
  ``subjectAltName`` otherNames (UTF8String), under the JPKI OIDs: name
  ``1.2.392.200149.8.5.5.1``, gender code ``.3``, birth date ``.4`` (``YYYYMMDD``), address
  ``.5``; key usage ``digitalSignature`` and ``nonRepudiation``.

Each profile has its own certificate-policy OID under the ``2.25`` UUID arc (constants below,
repeated in ``config/demo.toml``), marked critical as JPKI does. No AIA and no CRL distribution
point: a verifier never fetches from a URL in a certificate; the anchor declaration names the
CRLs.

Files (under ``keys/demo/jpki``; private keys 0600 and never committed, keys/ is git-ignored):
``root.key.pem``/``root.pem``, ``auth-ca.*``, ``sign-ca.*``; the bundles the anchor declaration
points to: ``roots.pem`` (the root), ``auth-issuers.pem`` and ``sign-issuers.pem`` (the CA of
each profile); the cards: ``cards/<person>.<profile>.key.pem`` and ``.pem`` (leaf, then CA).
Revocations made with the command line are listed in ``revoked.json``.

CRLs (one per CA) are made afresh whenever asked for (:func:`crl`): ``thisUpdate`` now,
``nextUpdate`` ten minutes later, listing the certificates of revoked cards (a person marked
``revoked`` in the demo data, or revoked here). The demo parties serve them at
``/jpki/crl/auth.crl`` and ``/jpki/crl/sign.crl``.

Idempotent: existing keys are kept; a card's certificate is issued again when missing, no longer
matching its key, its CA or the person's data, or expiring within 30 days.

    python -m trustanchor.demo.jpki_ca [--keys-dir keys/demo] --revoke <person>
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from trustanchor.clock import Clock

from .people import Person, load_people

Profile = Literal["authentication", "signature"]
PROFILES: tuple[Profile, ...] = ("authentication", "signature")
JPKI_DIR = "jpki"
# The certificate-policy OIDs of the demo profiles: 2.25.<UUID as an integer> (ITU-T X.667),
# the UUIDs being uuid5(NAMESPACE_URL, "https://trustanchor.invalid/demo/jpki/policy/<profile>").
POLICY_OIDS: dict[Profile, str] = {
    "authentication": "2.25.33805201880956452970376058962244601997",
    "signature": "2.25.299134837044868413064576965511565120261",
}
# The JPKI signature certificate's subjectAltName otherName type ids.
OID_NAME = "1.2.392.200149.8.5.5.1"
OID_GENDER = "1.2.392.200149.8.5.5.3"
OID_BIRTHDATE = "1.2.392.200149.8.5.5.4"
OID_ADDRESS = "1.2.392.200149.8.5.5.5"
CRL_NAMES: dict[Profile, str] = {"authentication": "auth", "signature": "sign"}
CRL_PATH = "/jpki/crl/{name}.crl"
CRL_MEDIA_TYPE = "application/pkix-crl"
# A CRL's nextUpdate: ten minutes after it is made. The service keeps a CRL until shortly before
# its nextUpdate (the anchor's refresh_before, 300 s by default), so a card revoked with the
# command line is refused within about five minutes.
CRL_LIFETIME = 600
KEY_SIZE = 2048
ROOT_YEARS = 20
CA_YEARS = 10
CARD_YEARS = 5  # JPKI card certificates: five years
RENEW_BEFORE = 30 * 86400
POLICIES_CRITICAL = True
_DAY = 86400
_FILES: dict[str, str] = {"root": "root", "authentication": "auth-ca", "signature": "sign-ca"}
_BUNDLES: dict[Profile, str] = {
    "authentication": "auth-issuers.pem",
    "signature": "sign-issuers.pem",
}
ROOTS_BUNDLE = "roots.pem"
REVOKED_FILE = "revoked.json"


class JpkiError(Exception):
    """The demo PKI's files are missing or unusable; the message says which."""


@dataclass(frozen=True)
class Authority:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class DemoPki:
    root: Authority
    cas: dict[Profile, Authority]


@dataclass(frozen=True)
class CardCertificate:
    """One certificate of a card with its private key (the key never leaves the card)."""

    profile: Profile
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]  # leaf first, then its CA (no root)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


@dataclass(frozen=True)
class Card:
    person_id: str
    certificates: dict[Profile, CardCertificate]


# -- paths ----------------------------------------------------------------------------------------


def jpki_dir(keys_dir: Path) -> Path:
    return keys_dir / JPKI_DIR


def bundle_path(keys_dir: Path, profile: Profile | Literal["roots"]) -> Path:
    """The PEM bundle of the anchor declaration: the roots, or the CA of a profile."""
    name = ROOTS_BUNDLE if profile == "roots" else _BUNDLES[profile]
    return jpki_dir(keys_dir) / name


def card_paths(keys_dir: Path, person_id: str, profile: Profile) -> tuple[Path, Path]:
    """(private key, certificate chain) of one certificate of a person's card."""
    cards = jpki_dir(keys_dir) / "cards"
    base = f"{person_id}.{CRL_NAMES[profile]}"
    return cards / f"{base}.key.pem", cards / f"{base}.pem"


# -- the authorities ------------------------------------------------------------------------------


def ensure_pki(keys_dir: Path, clock: Clock) -> tuple[DemoPki, list[str]]:
    """The root and the two CAs, made once (a CA whose files are incomplete, or that its
    issuer no longer signs, is made again, and the cards with it), and the PEM bundles."""
    directory = jpki_dir(keys_dir)
    directory.mkdir(parents=True, exist_ok=True)
    messages: list[str] = []
    root = _load_authority(directory, "root")
    if root is None:
        root = _self_signed_root(clock)
        _save_authority(directory, "root", root)
        messages.append(f"created the demo JPKI root in {directory}")
    cas: dict[Profile, Authority] = {}
    for profile in PROFILES:
        ca = _load_authority(directory, profile)
        if ca is None or not _issued_by(ca.certificate, root.certificate):
            ca = _intermediate(root, profile, clock)
            _save_authority(directory, profile, ca)
            messages.append(f"created the demo JPKI {profile} CA")
        cas[profile] = ca
    _write_public(directory / ROOTS_BUNDLE, [root.certificate])
    for profile in PROFILES:
        _write_public(directory / _BUNDLES[profile], [cas[profile].certificate])
    return DemoPki(root, cas), messages


def load_pki(keys_dir: Path) -> DemoPki:
    """The authorities prepare made. Raises :class:`JpkiError`."""
    directory = jpki_dir(keys_dir)
    root = _load_authority(directory, "root")
    cas = {profile: _load_authority(directory, profile) for profile in PROFILES}
    if root is None or any(ca is None for ca in cas.values()):
        raise JpkiError(f"{directory}: run python -m trustanchor.demo.prepare first")
    return DemoPki(root, {p: ca for p, ca in cas.items() if ca is not None})


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustanchor demo JPKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _instant(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


def _ca_extensions(
    builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey, path_length: int
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(
            x509.KeyUsage(
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
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _self_signed_root(clock: Clock) -> Authority:
    key = _new_rsa_key()
    name = _name("trustanchor demo JPKI Root CA")
    now = clock.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_instant(now - _DAY))
        .not_valid_after(_instant(now + ROOT_YEARS * 365 * _DAY))
    )
    certificate = _ca_extensions(builder, key, 1).sign(key, hashes.SHA256())
    return Authority(key, certificate)


def _intermediate(root: Authority, profile: Profile, clock: Clock) -> Authority:
    key = _new_rsa_key()
    title = "User Authentication CA" if profile == "authentication" else "Signature CA"
    now = clock.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"trustanchor demo JPKI {title}"))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_instant(now - _DAY))
        .not_valid_after(_instant(now + CA_YEARS * 365 * _DAY))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()), False
        )
    )
    certificate = _ca_extensions(builder, key, 0).sign(root.key, hashes.SHA256())
    return Authority(key, certificate)


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _save_authority(directory: Path, role: str, authority: Authority) -> None:
    _write_private_key(directory / f"{_FILES[role]}.key.pem", authority.key)
    _write_public(directory / f"{_FILES[role]}.pem", [authority.certificate])


def _load_authority(directory: Path, role: str) -> Authority | None:
    key_path = directory / f"{_FILES[role]}.key.pem"
    cert_path = directory / f"{_FILES[role]}.pem"
    if not key_path.exists() or not cert_path.exists():
        return None
    key = _load_rsa_key(key_path)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if key is None or certificate.public_key() != key.public_key():
        return None
    return Authority(key, certificate)


# -- the cards ------------------------------------------------------------------------------------


def ensure_cards(keys_dir: Path, pki: DemoPki, people: Iterable[Person], clock: Clock) -> list[str]:
    """Both certificates of the card of every person with one (kept while still fitting)."""
    messages: list[str] = []
    for person in people:
        if person.card is None:
            continue
        for profile in PROFILES:
            key_path, cert_path = card_paths(keys_dir, person.id, profile)
            key_path.parent.mkdir(parents=True, exist_ok=True)
            key = _load_rsa_key(key_path) if key_path.exists() else None
            if key is None:
                key = _new_rsa_key()
                _write_private_key(key_path, key)
                messages.append(f"created {key_path}")
            if _card_current(cert_path, key, pki.cas[profile], person, profile, clock.now()):
                continue
            leaf = _card_certificate(pki.cas[profile], key, person, profile, clock)
            _write_public(cert_path, [leaf, pki.cas[profile].certificate])
            messages.append(f"issued {cert_path}")
    return messages


def load_card(keys_dir: Path, person: Person) -> Card:
    """The person's card as prepare made it. Raises :class:`JpkiError`."""
    if person.card is None:
        raise JpkiError(f"{person.id} has no My Number Card in the demo data")
    certificates: dict[Profile, CardCertificate] = {}
    for profile in PROFILES:
        key_path, cert_path = card_paths(keys_dir, person.id, profile)
        key = _load_rsa_key(key_path) if key_path.exists() else None
        if key is None or not cert_path.exists():
            raise JpkiError(f"{person.id}'s card: run python -m trustanchor.demo.prepare first")
        chain = tuple(x509.load_pem_x509_certificates(cert_path.read_bytes()))
        certificates[profile] = CardCertificate(profile, key, chain)
    return Card(person.id, certificates)


def signature_attributes(person: Person) -> dict[str, str]:
    """The signature certificate's otherNames (OID -> text) for ``person``."""
    assert person.card is not None
    attributes = {
        OID_NAME: f"{person.family_name} {person.given_name}",
        OID_GENDER: person.card.gender,
        OID_BIRTHDATE: person.birthdate.replace("-", ""),
    }
    if person.address is not None:
        a = person.address
        attributes[OID_ADDRESS] = f"{a.region} {a.locality} {a.street_address}"
    return attributes


def _card_certificate(
    ca: Authority, key: rsa.RSAPrivateKey, person: Person, profile: Profile, clock: Clock
) -> x509.Certificate:
    now = clock.now()
    serial = x509.random_serial_number()
    # Like JPKI: the subject carries no name; the signature certificate's attributes are in
    # its subjectAltName.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{serial:040X}"[-24:]),
        ]
    )
    signing = profile == "signature"
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_instant(now - 60))
        .not_valid_after(_instant(now + CARD_YEARS * 365 * _DAY))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=signing,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(POLICY_OIDS[profile]), None)]
            ),
            POLICIES_CRITICAL,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    if signing:
        names = [
            x509.OtherName(x509.ObjectIdentifier(oid), utf8_string(value))
            for oid, value in signature_attributes(person).items()
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    return builder.sign(ca.key, hashes.SHA256())


def utf8_string(text: str) -> bytes:
    """DER of an ASN.1 UTF8String (the otherName's value, inside its explicit tag)."""
    content = text.encode("utf-8")
    if len(content) < 0x80:
        length = bytes([len(content)])
    else:
        size = (len(content).bit_length() + 7) // 8
        length = bytes([0x80 | size]) + len(content).to_bytes(size, "big")
    return b"\x0c" + length + content


def read_utf8_string(der: bytes) -> str:
    """The text of a DER UTF8String (what :func:`utf8_string` wrote)."""
    if len(der) < 2 or der[0] != 0x0C:
        raise ValueError("not a UTF8String")
    first = der[1]
    if first < 0x80:
        start, length = 2, first
    else:
        size = first & 0x7F
        start, length = 2 + size, int.from_bytes(der[2 : 2 + size], "big")
    if start + length != len(der):
        raise ValueError("bad length")
    return der[start:].decode("utf-8")


def _card_current(
    cert_path: Path,
    key: rsa.RSAPrivateKey,
    ca: Authority,
    person: Person,
    profile: Profile,
    now: int,
) -> bool:
    if not cert_path.exists():
        return False
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except ValueError:
        return False
    leaf = chain[0]
    if leaf.public_key() != key.public_key() or not _issued_by(leaf, ca.certificate):
        return False
    if leaf.not_valid_after_utc.timestamp() - now < RENEW_BEFORE:
        return False
    if profile == "signature":
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        found = {n.type_id.dotted_string: read_utf8_string(n.value) for n in san}
        if found != signature_attributes(person):
            return False
    return len(chain) == 2 and chain[1] == ca.certificate


# -- revocation -----------------------------------------------------------------------------------


def revoked_serials(keys_dir: Path, people: Iterable[Person]) -> dict[Profile, set[int]]:
    """Serial numbers on each CA's CRL: the current cards of people marked ``revoked`` in the
    demo data, and every serial revoked with the command line."""
    revoked: dict[Profile, set[int]] = {profile: set() for profile in PROFILES}
    for person in people:
        if person.card is None or not person.card.revoked:
            continue
        for profile in PROFILES:
            _key_path, cert_path = card_paths(keys_dir, person.id, profile)
            if cert_path.exists():
                leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
                revoked[profile].add(leaf.serial_number)
    for profile, serials in _revoked_file(keys_dir).items():
        revoked[profile].update(serials)
    return revoked


def revoke_card(keys_dir: Path, person: Person) -> list[int]:
    """Put both current certificates of ``person``'s card on the CRLs (the file the CRLs read);
    the serials revoked."""
    card = load_card(keys_dir, person)
    listed = _revoked_file(keys_dir)
    serials = []
    for profile, certificate in card.certificates.items():
        listed[profile].add(certificate.leaf.serial_number)
        serials.append(certificate.leaf.serial_number)
    path = jpki_dir(keys_dir) / REVOKED_FILE
    body = {profile: sorted(f"{s:X}" for s in listed[profile]) for profile in PROFILES}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return serials


def _revoked_file(keys_dir: Path) -> dict[Profile, set[int]]:
    path = jpki_dir(keys_dir) / REVOKED_FILE
    listed: dict[Profile, set[int]] = {profile: set() for profile in PROFILES}
    if not path.exists():
        return listed
    try:
        body = json.loads(path.read_text("utf-8"))
        for profile in PROFILES:
            listed[profile].update(int(value, 16) for value in body.get(profile, []))
    except (ValueError, AttributeError, TypeError) as exc:
        raise JpkiError(f"{path} is not a list of revoked serials: {exc}") from exc
    return listed


def crl(pki: DemoPki, profile: Profile, serials: Iterable[int], now: int) -> bytes:
    """A fresh CRL (DER) of the profile's CA: thisUpdate now, nextUpdate CRL_LIFETIME later."""
    ca = pki.cas[profile]
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(_instant(now))
        .next_update(_instant(now + CRL_LIFETIME))
        .add_extension(x509.CRLNumber(now), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    for serial in sorted(serials):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(_instant(now - 60))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), False)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def crl_for(keys_dir: Path, name: str, people: Sequence[Person], now: int) -> bytes | None:
    """The CRL served as ``/jpki/crl/<name>.crl`` (``auth`` or ``sign``), None for another
    name."""
    profile = next((p for p, n in CRL_NAMES.items() if n == name), None)
    if profile is None:
        return None
    return crl(load_pki(keys_dir), profile, revoked_serials(keys_dir, people)[profile], now)


# -- files ----------------------------------------------------------------------------------------


def _write_private_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)


def _load_rsa_key(path: Path) -> rsa.RSAPrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey) else None


def _write_public(path: Path, certificates: Sequence[x509.Certificate]) -> None:
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    if not path.exists() or path.read_bytes() != pem:
        path.write_bytes(pem)


def prepare_jpki(keys_dir: Path, clock: Clock, people: Iterable[Person] | None = None) -> list[str]:
    """prepare's step: the authorities, the bundles and every card."""
    pki, messages = ensure_pki(keys_dir, clock)
    return messages + ensure_cards(
        keys_dir, pki, people if people is not None else load_people(), clock
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trustanchor.demo.jpki_ca",
        description="The demo JPKI-style CA: revoke a demo person's My Number Card.",
    )
    parser.add_argument("--keys-dir", type=Path, default=Path("keys/demo"))
    parser.add_argument(
        "--revoke", metavar="PERSON", required=True, help="the demo person whose card to revoke"
    )
    args = parser.parse_args(argv)
    person = next((p for p in load_people() if p.id == args.revoke), None)
    if person is None:
        print(f"no demo person {args.revoke!r}", file=sys.stderr)
        return 2
    try:
        serials = revoke_card(args.keys_dir, person)
    except JpkiError as exc:
        print(exc, file=sys.stderr)
        return 2
    listed = ", ".join(f"{s:X}" for s in serials)
    print(
        f"revoked {person.id}'s card (serials {listed}); the CRLs served from now on list them "
        f"(the service fetches them again within {CRL_LIFETIME // 60} minutes)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
