"""Settings of an ``x509`` anchor (trustanchor/anchors/x509_settings.py): the stored form made by
the test JPKI is accepted as is; every refusal names its field first."""

from __future__ import annotations

from typing import Any

import pytest
from support.jpki import AUTHENTICATION_POLICY, SIGNATURE_POLICY, TestPKI, make_ca

from trustanchor.anchors.revocation import CrlSettings
from trustanchor.anchors.x509_settings import (
    DEFAULT_ALGS,
    DEFAULT_MAX_CHAIN_LENGTH,
    DEFAULT_MAX_X5C_BYTES,
    DEFAULT_MIN_RSA_BITS,
    parse_settings,
)

NOW = 1_800_000_000
CRL = {"source": "crl", "crl_urls": ["https://crl.jpki.example/auth.crl"]}


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=NOW, label="settings")


def good(pki: TestPKI, **overrides: Any) -> dict[str, Any]:
    return pki.anchor_settings(**{"revocation": dict(CRL), **overrides})


def refused(raw: Any, starts_with: str) -> str:
    with pytest.raises(ValueError) as caught:
        parse_settings(raw)
    message = str(caught.value)
    assert message.startswith(starts_with), message
    return message


def test_the_stored_form_of_the_test_jpki_parses_with_defaults(pki: TestPKI) -> None:
    settings = parse_settings(good(pki))
    assert settings.roots == (pki.root.cert,)
    assert settings.authentication.issuers == (pki.authentication_ca.cert,)
    assert settings.authentication.policy_oids == {AUTHENTICATION_POLICY}
    assert settings.signature is not None
    assert settings.signature.policy_oids == {SIGNATURE_POLICY}
    assert set(settings.signature.claims) == {"name", "gender", "birthdate", "address"}
    assert settings.algs == DEFAULT_ALGS == ("RS256",)
    assert settings.max_chain_length == DEFAULT_MAX_CHAIN_LENGTH == 4
    assert settings.max_x5c_bytes == DEFAULT_MAX_X5C_BYTES == 16384
    assert settings.min_rsa_bits == DEFAULT_MIN_RSA_BITS == 2048
    assert settings.trust_framework == "jp_aml"
    assert isinstance(settings.revocation, CrlSettings)
    assert settings.profile_of_issuer(pki.authentication_ca.der) == "authentication"
    assert settings.profile_of_issuer(pki.signature_ca.der) == "signature"
    assert settings.profile_of_issuer(pki.root.der) is None


def test_the_signature_profile_is_optional(pki: TestPKI) -> None:
    raw = good(pki)
    del raw["signature"]
    assert parse_settings(raw).signature is None


def test_unknown_fields_are_refused(pki: TestPKI) -> None:
    refused(good(pki, trust_everything=True), "trust_everything: unknown setting")
    raw = good(pki)
    raw["authentication"]["claims"] = {}
    refused(raw, "authentication.claims: unknown setting")
    raw = good(pki)
    raw["signature"]["roots"] = []
    refused(raw, "signature.roots: unknown setting")


def test_required_fields(pki: TestPKI) -> None:
    for name in ("roots", "authentication", "revocation"):
        raw = good(pki)
        del raw[name]
        refused(raw, f"{name}: ")
    refused("roots = []", "settings: must be a mapping")


def test_pem_problems_are_named(pki: TestPKI) -> None:
    refused(good(pki, roots=[]), "roots: must be a non-empty list")
    refused(good(pki, roots=["not a pem"]), "roots: entry 0 must be exactly one PEM")
    refused(good(pki, roots=[pki.root.pem + pki.root.pem]), "roots: entry 0 must be exactly one")
    broken = pki.root.pem.replace("MII", "MIX", 1)
    refused(good(pki, roots=[broken]), "roots: entry 0 does not parse")
    refused(good(pki, roots=[pki.root.pem, 7]), "roots: entry 1 is not a PEM certificate")
    raw = good(pki)
    raw["signature"]["issuers"] = ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]
    refused(raw, "signature.issuers: entry 0 does not parse")


def test_a_root_must_be_a_self_issued_ca(pki: TestPKI) -> None:
    refused(good(pki, roots=[pki.authentication_ca.pem]), "roots: entry 0 is not self-issued")
    leafish = make_ca("not a ca", now=NOW, ca=False, key_label="settings:not-ca")
    refused(good(pki, roots=[leafish.pem]), "roots: entry 0 is not a CA certificate")


def test_profile_issuers_must_chain_to_a_root(pki: TestPKI) -> None:
    stranger = TestPKI.generate(now=NOW, label="settings-stranger")
    raw = good(pki)
    raw["authentication"]["issuers"] = [stranger.authentication_ca.pem]
    refused(raw, "authentication.issuers: entry 0 does not chain to any of roots")


def test_the_profiles_may_not_share_an_issuing_ca(pki: TestPKI) -> None:
    raw = good(pki)
    raw["signature"]["issuers"] = [pki.authentication_ca.pem]
    refused(raw, "signature.issuers: an issuing CA of the authentication profile too")
    # The same CA (name and key) in a re-issued certificate is the same CA.
    again = make_ca(
        "settings Authentication CA",
        now=NOW,
        issuer=pki.root,
        key_label="settings:auth-ca",
        not_after=NOW + 99 * 86400,
    )
    assert again.der != pki.authentication_ca.der
    raw = good(pki)
    raw["signature"]["issuers"] = [again.pem]
    refused(raw, "signature.issuers: an issuing CA of the authentication profile too")


def test_the_profiles_issuing_cas_have_distinct_names(pki: TestPKI) -> None:
    namesake = make_ca(
        "settings Authentication CA", now=NOW, issuer=pki.root, key_label="settings:namesake"
    )
    raw = good(pki)
    raw["signature"]["issuers"] = [namesake.pem]
    refused(raw, "signature.issuers: a CA named like one of the authentication profile")


def test_policy_oids(pki: TestPKI) -> None:
    raw = good(pki)
    raw["authentication"]["policy_oids"] = []
    refused(raw, "authentication.policy_oids: must be a non-empty list")
    raw["authentication"]["policy_oids"] = ["1.2.3.x"]
    refused(raw, "authentication.policy_oids: '1.2.3.x' is not a dotted OID")
    raw["authentication"]["policy_oids"] = ["2.5.29.32.0"]
    refused(raw, "authentication.policy_oids: anyPolicy")


def test_claims_sources(pki: TestPKI) -> None:
    raw = good(pki)
    raw["signature"]["claims"] = {"email": "san_other_name:1.2.3"}
    refused(raw, "signature.claims: 'email' is not one of")
    raw["signature"]["claims"] = {"name": "subject:CN"}
    refused(raw, "signature.claims.name: must be san_other_name:")
    raw["signature"]["claims"] = {"name": "san_other_name:1..2"}
    refused(raw, "signature.claims.name: '1..2' is not a dotted OID")


def test_algs_and_limits(pki: TestPKI) -> None:
    assert parse_settings(good(pki, algs=["RS256", "PS256", "ES256"])).algs == (
        "RS256",
        "PS256",
        "ES256",
    )
    refused(good(pki, algs=["none"]), "algs: 'none' is not one of")
    refused(good(pki, algs=["HS256"]), "algs: 'HS256' is not one of")
    refused(good(pki, algs=["RS256", "RS256"]), "algs: listed twice")
    refused(good(pki, algs=[]), "algs: must be a non-empty list")
    refused(good(pki, max_chain_length=7), "max_chain_length: must be an integer from 2 to 6")
    refused(good(pki, max_chain_length=True), "max_chain_length: ")
    refused(good(pki, max_x5c_bytes=10), "max_x5c_bytes: ")
    refused(good(pki, min_rsa_bits=1024), "min_rsa_bits: must be an integer from 2048")
    refused(good(pki, trust_framework=""), "trust_framework: ")
    assert parse_settings(good(pki, max_chain_length=6)).max_chain_length == 6


def test_min_rsa_bits_applies_to_the_configured_cas(pki: TestPKI) -> None:
    refused(good(pki, min_rsa_bits=3072), "roots: entry 0 has a 2048-bit RSA key")


def test_revocation_table_is_parsed_by_the_revocation_module(pki: TestPKI) -> None:
    refused(good(pki, revocation="crl"), "revocation: must be a table")
    message = refused(good(pki, revocation={"source": "off"}), "revocation.")
    assert "source" in message
    raw = good(pki, revocation={"source": "crl", "crl_urls": ["ftp://x"]})
    refused(raw, "revocation.crl_urls: ")
