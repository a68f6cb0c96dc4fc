"""The demo JPKI-style CA (trustanchor.demo.jpki_ca) and the card app's signatures
(trustanchor.demo.card_app), checked by the service's own x509 anchor code exactly as
config/demo.toml declares the jp-jpki anchor: every demo card's two certificates validate for
their profile (and only for it), the signature certificate's attributes map to the claims, the
challenge JWS parses and verifies, and the CRLs list exactly the revoked cards."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.x509_chain import ChainValidator
from trustanchor.anchors.x509_challenge import parse_challenge
from trustanchor.anchors.x509_claims import map_claims
from trustanchor.anchors.x509_settings import X509Settings, parse_settings
from trustanchor.clock import FixedClock
from trustanchor.demo import jpki_ca
from trustanchor.demo.card_app import (
    PURPOSE,
    CardError,
    CertificateRequest,
    Pins,
    challenge,
    check_pins,
)
from trustanchor.demo.holder import TrustedVerifier
from trustanchor.demo.people import load_people, person

REPO = Path(__file__).resolve().parents[2]
NOW = 1_790_000_000
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo-keys")
    jpki_ca.prepare_jpki(directory, FixedClock(NOW))
    return directory


def demo_declaration() -> dict[str, Any]:
    with (REPO / "config" / "demo.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    anchor = next(a for a in raw["anchors"] if a["id"] == "jp-jpki")
    assert anchor["kind"] == "x509" and anchor["anchor_sets"] == ["jp-cbdc"]
    return dict(anchor["x509"])


def anchor_settings(keys_dir: Path) -> X509Settings:
    """The demo declaration with its PEM files read from ``keys_dir`` (as the loader does)."""
    settings = demo_declaration()
    for name in ("roots_file",):
        assert settings.pop(name) == "../keys/demo/jpki/roots.pem"
    settings["roots"] = PEM.findall(jpki_ca.bundle_path(keys_dir, "roots").read_text())
    for profile in jpki_ca.PROFILES:
        table = dict(settings[profile])
        assert table.pop("issuers_file").endswith(jpki_ca.bundle_path(keys_dir, profile).name)
        table["issuers"] = PEM.findall(jpki_ca.bundle_path(keys_dir, profile).read_text())
        settings[profile] = table
    return parse_settings(settings)


def request_for(nonce: str = "n" * 43) -> CertificateRequest:
    verifier = TrustedVerifier("https://as.example", {"en": "AS"}, "https://as.example", "")
    return CertificateRequest(
        token="",
        verifier=verifier,
        client_id="https://as.example",
        nonce=nonce,
        state="txn-1",
        response_uri="https://as.example/certificate/response",
        certificates=("authentication", "signature"),
        expires_at=NOW + 600,
        client_name={"en": "Demo Bank"},
        anchor_name={},
    )


def test_the_declared_policy_oids_are_the_cas() -> None:
    declared = demo_declaration()
    for profile in jpki_ca.PROFILES:
        assert declared[profile]["policy_oids"] == [jpki_ca.POLICY_OIDS[profile]]
        assert jpki_ca.POLICY_OIDS[profile].startswith("2.25.")
    sources = declared["signature"]["claims"]
    assert sources == {
        "name": f"san_other_name:{jpki_ca.OID_NAME}",
        "gender": f"san_other_name:{jpki_ca.OID_GENDER}",
        "birthdate": f"san_other_name:{jpki_ca.OID_BIRTHDATE}",
        "address": f"san_other_name:{jpki_ca.OID_ADDRESS}",
    }


def test_every_card_validates_for_its_profile_only(keys_dir: Path) -> None:
    validator = ChainValidator(anchor_settings(keys_dir))
    holders = [p for p in load_people() if p.card is not None]
    assert {p.id for p in holders} >= {"hanako", "ume"}
    for someone in holders:
        card = jpki_ca.load_card(keys_dir, someone)
        for profile in jpki_ca.PROFILES:
            certificate = card.certificates[profile]
            assert isinstance(certificate.key.public_key(), rsa.RSAPublicKey)
            assert certificate.key.key_size == 2048
            assert isinstance(certificate.leaf.signature_hash_algorithm, hashes.SHA256)
            validated = validator.validate(certificate.chain, profile=profile, at=NOW + 60)
            assert validated.profile == profile
            other = "signature" if profile == "authentication" else "authentication"
            with pytest.raises(AnchorFailure) as refused:
                validator.validate(certificate.chain, profile=other, at=NOW + 60)
            assert refused.value.reason == "certificate_profile_mismatch"


def test_the_authentication_certificate_carries_no_personal_attribute(keys_dir: Path) -> None:
    leaf = jpki_ca.load_card(keys_dir, person("hanako")).certificates["authentication"].leaf
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    names = {a.oid for a in leaf.subject}
    assert names == {x509.NameOID.COUNTRY_NAME, x509.NameOID.COMMON_NAME}
    assert "Hanako" not in leaf.subject.rfc4514_string()


def test_the_signature_certificate_gives_the_persons_claims(keys_dir: Path) -> None:
    settings = anchor_settings(keys_dir)
    assert settings.signature is not None
    hanako = person("hanako")
    leaf = jpki_ca.load_card(keys_dir, hanako).certificates["signature"].leaf
    claims = map_claims(leaf, settings.signature.claims)
    assert claims["name"] == "山田 花子"
    assert claims["family_name"] == hanako.family_name
    assert claims["given_name"] == hanako.given_name
    assert claims["birthdate"] == hanako.birthdate
    assert claims["gender"] == "female"
    assert claims["address"] == {"formatted": "Tokyo Chiyoda-ku 1-1 Chiyoda"}


def test_the_challenge_is_what_the_protocol_says(keys_dir: Path) -> None:
    card = jpki_ca.load_card(keys_dir, person("hanako"))
    token = challenge(request_for(), card.certificates["signature"], NOW)
    parsed = parse_challenge(
        token, algs=("RS256",), max_bytes=32768, max_chain_length=4, max_x5c_bytes=16384
    )
    assert parsed.claims.aud == "https://as.example"
    assert parsed.claims.txn == "txn-1"
    assert parsed.claims.purpose == PURPOSE
    assert parsed.claims.cert == "signature"
    assert parsed.claims.exp - parsed.claims.iat <= 300
    assert parsed.leaf == card.certificates["signature"].leaf
    public = parsed.leaf.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256())


def test_the_card_refuses_to_sign_without_its_pins() -> None:
    request = request_for()
    for pins in (Pins("0000", "DEMO2027"), Pins("1234", "WRONG123"), Pins("12345", "DEMO2027")):
        with pytest.raises(CardError) as refused:
            check_pins(request, pins)
        assert refused.value.reason in ("pin_wrong", "pin_format")
    check_pins(request, Pins("1234", "DEMO2027"))


def test_the_crls_list_the_revoked_cards_only(keys_dir: Path) -> None:
    pki = jpki_ca.load_pki(keys_dir)
    people = load_people()
    for profile, name in jpki_ca.CRL_NAMES.items():
        der = jpki_ca.crl_for(keys_dir, name, people, NOW)
        assert der is not None
        crl = x509.load_der_x509_crl(der)
        assert crl.is_signature_valid(pki.cas[profile].certificate.public_key())
        assert crl.issuer == pki.cas[profile].certificate.subject
        assert crl.next_update_utc is not None
        assert crl.next_update_utc.timestamp() == NOW + jpki_ca.CRL_LIFETIME
        taro = jpki_ca.load_card(keys_dir, person("taro")).certificates[profile].leaf
        hanako = jpki_ca.load_card(keys_dir, person("hanako")).certificates[profile].leaf
        assert crl.get_revoked_certificate_by_serial_number(taro.serial_number) is not None
        assert crl.get_revoked_certificate_by_serial_number(hanako.serial_number) is None
    assert jpki_ca.crl_for(keys_dir, "other", people, NOW) is None


def test_a_card_revoked_from_the_command_line_is_listed(tmp_path: Path) -> None:
    jpki_ca.prepare_jpki(tmp_path, FixedClock(NOW), [person("hanako")])
    assert jpki_ca.main(["--keys-dir", str(tmp_path), "--revoke", "hanako"]) == 0
    leaf = jpki_ca.load_card(tmp_path, person("hanako")).certificates["authentication"].leaf
    crl = x509.load_der_x509_crl(jpki_ca.crl_for(tmp_path, "auth", (), NOW) or b"")
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None


def test_prepared_once_kept_afterwards_and_private_keys_owner_only(keys_dir: Path) -> None:
    assert jpki_ca.prepare_jpki(keys_dir, FixedClock(NOW + 10)) == []
    private = list(jpki_ca.jpki_dir(keys_dir).rglob("*.key.pem"))
    assert len(private) == 3 + 2 * sum(1 for p in load_people() if p.card is not None)
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_card_is_reissued_when_the_persons_data_changes(tmp_path: Path) -> None:
    import dataclasses

    hanako = person("hanako")
    jpki_ca.prepare_jpki(tmp_path, FixedClock(NOW), [hanako])
    before = jpki_ca.load_card(tmp_path, hanako).certificates["signature"].leaf
    moved = dataclasses.replace(hanako, family_name="佐藤")
    messages = jpki_ca.prepare_jpki(tmp_path, FixedClock(NOW), [moved])
    assert any("hanako.sign.pem" in m for m in messages)
    assert not any("hanako.auth.pem" in m for m in messages)
    after = jpki_ca.load_card(tmp_path, moved).certificates["signature"].leaf
    assert after.serial_number != before.serial_number
