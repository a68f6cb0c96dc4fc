"""Path validation of certificate login (trustanchor/anchors/x509_chain.py) on its own.

1. The layer below configuration: x509_settings.py already refuses to configure an issuing CA
   without the CA bit, a leaf as issuer, SHA-1 or small keys; these tests build the settings and
   then swap the profile's issuers (``dataclasses.replace``) to show that every login checks the
   same things again, through pyca's verifier and our own checks.

2. NIST PKITS (Public Key Interoperability Test Suite, the 2011 edition with RSA-2048 and
   SHA-256, as shipped by the ``cryptography-vectors`` package under
   ``x509/PKITS_data/certs``), run through the real ChainValidator with the PKITS trust anchor as
   the anchor's root, the CAs of each test path as the configured issuing CAs and PKITS
   test-policy-1 (2.16.840.1.101.3.2.1.48.1, carried by every end-entity used) as the profile's
   policy OID, at an instant inside the suite's validity (2026). The subsets are those matching
   what is checked here:

   - 4.1 signature verification (4.1.1-4.1.3; not the DSA tests 4.1.4-4.1.6: DSA keys are
     refused by our key policy, RSA and EC P-256/P-384 only);
   - 4.2 validity periods (4.2.1-4.2.8);
   - 4.3 name chaining, the invalid ones (4.3.1, 4.3.2; the valid whitespace/capitalisation
     tests 4.3.3-4.3.5 need RFC 4518 name matching, which pyca does not do: refused, fail closed,
     and not listed);
   - 4.6 basic constraints and path length (4.6.1-4.6.17);
   - 4.7 key usage of CAs (4.7.1-4.7.3; 4.7.4/4.7.5 are about CRL signing, H2's CRL tests).

   Not used: 4.4/4.14/4.15 (CRLs, delta CRLs, indirect CRLs: revocation is anchors/crl.py,
   tested there), 4.5 (self-issued key rollover with CRLs), 4.8-4.12 (certificate policies,
   policy mapping, requireExplicitPolicy, inhibitAnyPolicy: pyca does no policy processing; we
   check only the leaf's policy OIDs against the profile), 4.13 (name constraints), 4.16
   (private certificate extensions).

   Where our outcome differs from PKITS's, the table says why. Every difference is a refusal
   of a path PKITS calls valid (stricter, fail closed), never the reverse:

   - 4.2.4: pyca enforces RFC 5280's "UTCTime for dates through 2049" (the test encodes 2002
     as GeneralizedTime);
   - 4.6.4: pyca's web PKI CA policy requires basicConstraints to be critical;
   - 4.6.8, 4.6.14 (and the invalid 4.6.6/4.6.10/4.6.12 for this reason first): the end entity
     is itself a CA certificate; a card certificate never is (keyCertSign / cA in a leaf);
   - 4.6.15, 4.6.17: self-issued intermediates (CA key rollover); pyca's path builder does not
     chain through them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from support.jpki import Issued, TestPKI, make_ca

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.x509_chain import REASONS, ChainValidator
from trustanchor.anchors.x509_settings import X509Settings, parse_settings

NOW = 1_800_000_000
CRL = {"source": "crl", "crl_urls": ["https://crl.example/x.crl"]}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def with_issuers(
    settings: X509Settings, *issuers: x509.Certificate, **changes: int
) -> X509Settings:
    """The settings with the authentication profile's issuing CAs replaced, bypassing the
    configuration-time checks (as a compromised or mistaken configuration would)."""
    profile = dataclasses.replace(
        settings.authentication,
        issuers=tuple(issuers),
        issuer_ders=frozenset(_der(c) for c in issuers),
    )
    return dataclasses.replace(settings, authentication=profile, **changes)


def refused(validator: ChainValidator, certs: list[Issued], at: int = NOW) -> AnchorFailure:
    with pytest.raises(AnchorFailure) as caught:
        validator.validate([c.cert for c in certs], profile="authentication", at=at)
    assert caught.value.reason in REASONS or caught.value.reason == "certificate_chain_too_long"
    return caught.value


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=NOW, label="chain")


@pytest.fixture(scope="module")
def base(pki: TestPKI) -> X509Settings:
    return parse_settings(pki.anchor_settings(revocation=dict(CRL)))


def test_a_card_certificate_validates_and_the_chain_is_pycas(
    pki: TestPKI, base: X509Settings
) -> None:
    leaf = pki.leaf("authentication", label="chain-ok")
    result = ChainValidator(base).validate(
        [leaf.cert, pki.authentication_ca.cert], profile="authentication", at=NOW
    )
    assert result.profile == "authentication"
    assert result.issuer == pki.authentication_ca.cert
    assert result.chain == (leaf.cert, pki.authentication_ca.cert, pki.root.cert)


def test_an_unreadable_issuing_ca_in_x5c_is_refused_by_name(
    pki: TestPKI, base: X509Settings
) -> None:
    """The configured CA's readability is known, so an ``x5c`` copy of it is not read again on
    every login; a certificate that is *almost* the configured CA (same names, one extension
    OID changed so that it duplicates another) is not that CA and is still read: refused as
    unreadable, not passed on to raise DuplicateExtension later."""
    ca_der = _der(pki.authentication_ca.cert)
    # authorityKeyIdentifier (2.5.29.35) as a second subjectKeyIdentifier (2.5.29.14).
    broken = x509.load_der_x509_certificate(
        ca_der.replace(b"\x06\x03\x55\x1d\x23", b"\x06\x03\x55\x1d\x0e", 1)
    )
    assert broken.subject == pki.authentication_ca.cert.subject
    with pytest.raises(x509.DuplicateExtension):
        broken.extensions  # noqa: B018
    leaf = pki.leaf("authentication", label="chain-unreadable-ca")
    with pytest.raises(AnchorFailure) as caught:
        ChainValidator(base).validate([leaf.cert, broken], profile="authentication", at=NOW)
    assert caught.value.reason == "certificate_unreadable"
    assert "x5c[1]" in caught.value.detail


def test_intermediate_without_ca_bit_is_refused_by_the_path_check(
    pki: TestPKI, base: X509Settings
) -> None:
    no_ca = make_ca("chain no-CA", now=NOW, issuer=pki.root, ca=False, key_label="chain:noca")
    leaf = pki.leaf("authentication", label="under-no-ca", issuer=no_ca)
    failure = refused(ChainValidator(with_issuers(base, no_ca.cert)), [leaf, no_ca])
    assert failure.reason == "certificate_chain_invalid"
    assert "cA must be asserted" in failure.detail


def test_intermediate_without_basic_constraints_is_refused_by_the_path_check(
    pki: TestPKI, base: X509Settings
) -> None:
    bare = make_ca(
        "chain bare", now=NOW, issuer=pki.root, include_basic_constraints=False, key_label="c:b"
    )
    leaf = pki.leaf("authentication", label="under-bare", issuer=bare)
    assert refused(ChainValidator(with_issuers(base, bare.cert)), [leaf, bare]).reason == (
        "certificate_chain_invalid"
    )


def test_leaf_used_as_ca_is_refused_by_the_path_check(pki: TestPKI, base: X509Settings) -> None:
    card_leaf = pki.leaf("authentication", label="chain-would-be-ca")
    below = pki.leaf("authentication", label="chain-below-leaf", issuer=card_leaf)
    validator = ChainValidator(with_issuers(base, card_leaf.cert))
    failure = refused(validator, [below, card_leaf, pki.authentication_ca])
    assert failure.reason == "certificate_chain_invalid"


def test_path_length_of_an_intermediate_is_enforced(pki: TestPKI, base: X509Settings) -> None:
    sub = make_ca("chain sub", now=NOW, issuer=pki.authentication_ca, key_label="chain:sub")
    leaf = pki.leaf("authentication", label="under-sub", issuer=sub)
    validator = ChainValidator(with_issuers(base, sub.cert))
    failure = refused(validator, [leaf, sub, pki.authentication_ca])
    assert "path length" in failure.detail


def test_pycas_depth_limit_is_the_chain_length(base: X509Settings) -> None:
    """x5c longer than max_chain_length never reaches here (the parser refuses it); the depth
    given to pyca refuses a longer *built* path on its own."""
    root = make_ca("deep root", now=NOW, path_length=None, key_label="c:deep-root")
    middle = make_ca("deep middle", now=NOW, issuer=root, path_length=1, key_label="c:m")
    low = make_ca("deep low", now=NOW, issuer=middle, key_label="c:l")
    pki = TestPKI(now=NOW, root=root, authentication_ca=low, signature_ca=low)
    leaf = pki.leaf("authentication", label="deep", issuer=low)
    deep = dataclasses.replace(base, roots=(root.cert,))
    ok = ChainValidator(with_issuers(deep, low.cert))
    certs = [leaf.cert, low.cert, middle.cert]
    assert len(ok.validate(certs, profile="authentication", at=NOW).chain) == 4
    short = ChainValidator(with_issuers(deep, low.cert, max_chain_length=2))
    assert refused(short, [leaf, low, middle]).reason == "certificate_chain_too_long"


def test_the_issuer_in_the_built_chain_must_be_the_configured_one(
    pki: TestPKI, base: X509Settings
) -> None:
    """Same name and key as the configured CA but another certificate (other validity): the
    leaf's signature matches, but the path pyca builds goes through an unconfigured cert."""
    twin = make_ca(
        "chain Authentication CA",
        now=NOW,
        issuer=pki.root,
        key_label="chain:auth-ca",
        not_after=NOW + 10 * 86400,
    )
    assert _der(twin.cert) != _der(pki.authentication_ca.cert)
    leaf = pki.leaf("authentication", label="via-twin")
    failure = refused(ChainValidator(base), [leaf, twin])
    assert failure.reason == "certificate_issuer_not_accepted"


def test_sha1_and_small_keys_in_the_built_chain_are_refused(
    pki: TestPKI, base: X509Settings
) -> None:
    sha1_ca = make_ca(
        "chain sha1",
        now=NOW,
        issuer=pki.root,
        hash_alg=hashes.SHA1(),  # noqa: S303
        key_label="c:s1",
    )
    leaf = pki.leaf("authentication", label="under-sha1", issuer=sha1_ca)
    validator = ChainValidator(with_issuers(base, sha1_ca.cert))
    assert refused(validator, [leaf, sha1_ca]).reason == "weak_certificate_signature"
    small = make_ca("chain small", now=NOW, issuer=pki.root, key_bits=1024, key_label="c:sm")
    leaf = pki.leaf("authentication", label="under-small", issuer=small)
    validator = ChainValidator(with_issuers(base, small.cert))
    assert refused(validator, [leaf, small]).reason == "weak_certificate_key"


def test_the_signature_profile_requires_its_attributes(pki: TestPKI, base: X509Settings) -> None:
    bare = pki.leaf("signature", label="chain-bare", san=False)
    with pytest.raises(AnchorFailure) as caught:
        ChainValidator(base).validate(
            [bare.cert, pki.signature_ca.cert], profile="signature", at=NOW
        )
    assert caught.value.reason == "certificate_attributes_missing"


# -- NIST PKITS --------------------------------------------------------------------------------

PKITS = Path(cryptography_vectors.__file__).parent / "x509" / "PKITS_data" / "certs"
PKITS_AT = 1_780_000_000  # 2026-05-28, inside the suite's 2010-2030 validity
TEST_POLICY_1 = "2.16.840.1.101.3.2.1.48.1"
ACCEPT = "accept"

# (PKITS section, end-entity, path of CAs from the EE's issuer up, our outcome, PKITS's verdict)
PKITS_CASES: list[tuple[str, str, list[str], str, bool]] = [
    ("4.1.1", "ValidCertificatePathTest1EE", ["GoodCACert"], ACCEPT, True),
    ("4.1.2", "InvalidCASignatureTest2EE", ["BadSignedCACert"], "certificate_chain_invalid", False),
    (
        "4.1.3",
        "InvalidEESignatureTest3EE",
        ["GoodCACert"],
        "certificate_issuer_not_accepted",
        False,
    ),
    (
        "4.2.1",
        "InvalidCAnotBeforeDateTest1EE",
        ["BadnotBeforeDateCACert"],
        "certificate_not_yet_valid",
        False,
    ),
    ("4.2.2", "InvalidEEnotBeforeDateTest2EE", ["GoodCACert"], "certificate_not_yet_valid", False),
    ("4.2.3", "Validpre2000UTCnotBeforeDateTest3EE", ["GoodCACert"], ACCEPT, True),
    (
        "4.2.4",
        "ValidGeneralizedTimenotBeforeDateTest4EE",
        ["GoodCACert"],
        "certificate_chain_invalid",
        True,
    ),
    (
        "4.2.5",
        "InvalidCAnotAfterDateTest5EE",
        ["BadnotAfterDateCACert"],
        "certificate_expired",
        False,
    ),
    ("4.2.6", "InvalidEEnotAfterDateTest6EE", ["GoodCACert"], "certificate_expired", False),
    (
        "4.2.7",
        "Invalidpre2000UTCEEnotAfterDateTest7EE",
        ["GoodCACert"],
        "certificate_expired",
        False,
    ),
    ("4.2.8", "ValidGeneralizedTimenotAfterDateTest8EE", ["GoodCACert"], ACCEPT, True),
    (
        "4.3.1",
        "InvalidNameChainingTest1EE",
        ["GoodCACert"],
        "certificate_issuer_not_accepted",
        False,
    ),
    (
        "4.3.2",
        "InvalidNameChainingOrderTest2EE",
        ["NameOrderingCACert"],
        "certificate_issuer_not_accepted",
        False,
    ),
    (
        "4.6.1",
        "InvalidMissingbasicConstraintsTest1EE",
        ["MissingbasicConstraintsCACert"],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.2",
        "InvalidcAFalseTest2EE",
        ["basicConstraintsCriticalcAFalseCACert"],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.3",
        "InvalidcAFalseTest3EE",
        ["basicConstraintsNotCriticalcAFalseCACert"],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.4",
        "ValidbasicConstraintsNotCriticalTest4EE",
        ["basicConstraintsNotCriticalCACert"],
        "certificate_chain_invalid",
        True,
    ),
    (
        "4.6.5",
        "InvalidpathLenConstraintTest5EE",
        ["pathLenConstraint0subCACert", "pathLenConstraint0CACert"],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.6",
        "InvalidpathLenConstraintTest6EE",
        ["pathLenConstraint0subCACert", "pathLenConstraint0CACert"],
        "certificate_key_usage_not_accepted",
        False,
    ),
    ("4.6.7", "ValidpathLenConstraintTest7EE", ["pathLenConstraint0CACert"], ACCEPT, True),
    (
        "4.6.8",
        "ValidpathLenConstraintTest8EE",
        ["pathLenConstraint0CACert"],
        "certificate_key_usage_not_accepted",
        True,
    ),
    (
        "4.6.9",
        "InvalidpathLenConstraintTest9EE",
        [
            "pathLenConstraint6subsubCA00Cert",
            "pathLenConstraint6subCA0Cert",
            "pathLenConstraint6CACert",
        ],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.10",
        "InvalidpathLenConstraintTest10EE",
        [
            "pathLenConstraint6subsubCA00Cert",
            "pathLenConstraint6subCA0Cert",
            "pathLenConstraint6CACert",
        ],
        "certificate_key_usage_not_accepted",
        False,
    ),
    (
        "4.6.11",
        "InvalidpathLenConstraintTest11EE",
        [
            "pathLenConstraint6subsubsubCA11XCert",
            "pathLenConstraint6subsubCA11Cert",
            "pathLenConstraint6subCA1Cert",
            "pathLenConstraint6CACert",
        ],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.12",
        "InvalidpathLenConstraintTest12EE",
        [
            "pathLenConstraint6subsubsubCA11XCert",
            "pathLenConstraint6subsubCA11Cert",
            "pathLenConstraint6subCA1Cert",
            "pathLenConstraint6CACert",
        ],
        "certificate_key_usage_not_accepted",
        False,
    ),
    (
        "4.6.13",
        "ValidpathLenConstraintTest13EE",
        [
            "pathLenConstraint6subsubsubCA41XCert",
            "pathLenConstraint6subsubCA41Cert",
            "pathLenConstraint6subCA4Cert",
            "pathLenConstraint6CACert",
        ],
        ACCEPT,
        True,
    ),
    (
        "4.6.14",
        "ValidpathLenConstraintTest14EE",
        [
            "pathLenConstraint6subsubsubCA41XCert",
            "pathLenConstraint6subsubCA41Cert",
            "pathLenConstraint6subCA4Cert",
            "pathLenConstraint6CACert",
        ],
        "certificate_key_usage_not_accepted",
        True,
    ),
    (
        "4.6.15",
        "ValidSelfIssuedpathLenConstraintTest15EE",
        ["pathLenConstraint0SelfIssuedCACert", "pathLenConstraint0CACert"],
        "certificate_chain_invalid",
        True,
    ),
    (
        "4.6.16",
        "InvalidSelfIssuedpathLenConstraintTest16EE",
        [
            "pathLenConstraint0subCA2Cert",
            "pathLenConstraint0SelfIssuedCACert",
            "pathLenConstraint0CACert",
        ],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.6.17",
        "ValidSelfIssuedpathLenConstraintTest17EE",
        [
            "pathLenConstraint1SelfIssuedsubCACert",
            "pathLenConstraint1subCACert",
            "pathLenConstraint1SelfIssuedCACert",
            "pathLenConstraint1CACert",
        ],
        "certificate_chain_invalid",
        True,
    ),
    (
        "4.7.1",
        "InvalidkeyUsageCriticalkeyCertSignFalseTest1EE",
        ["keyUsageCriticalkeyCertSignFalseCACert"],
        "certificate_chain_invalid",
        False,
    ),
    (
        "4.7.2",
        "InvalidkeyUsageNotCriticalkeyCertSignFalseTest2EE",
        ["keyUsageNotCriticalkeyCertSignFalseCACert"],
        "certificate_chain_invalid",
        False,
    ),
    ("4.7.3", "ValidkeyUsageNotCriticalTest3EE", ["keyUsageNotCriticalCACert"], ACCEPT, True),
]


def _pkits(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((PKITS / f"{name}.crt").read_bytes())


@pytest.fixture(scope="module")
def pkits_base() -> X509Settings:
    if not PKITS.is_dir():  # pragma: no cover - the package is a test dependency
        pytest.skip(f"PKITS data not found at {PKITS}")
    return parse_settings(
        {
            "roots": [_pem(_pkits("TrustAnchorRootCertificate"))],
            "authentication": {
                "issuers": [_pem(_pkits("GoodCACert"))],
                "policy_oids": [TEST_POLICY_1],
            },
            "max_chain_length": 6,
            "revocation": dict(CRL),
        }
    )


@pytest.mark.parametrize(
    "section, end_entity, path, outcome, pkits_valid",
    PKITS_CASES,
    ids=[case[0] for case in PKITS_CASES],
)
def test_pkits(
    pkits_base: X509Settings,
    section: str,
    end_entity: str,
    path: list[str],
    outcome: str,
    pkits_valid: bool,
) -> None:
    ee = _pkits(end_entity)
    cas = [_pkits(name) for name in path]
    validator = ChainValidator(with_issuers(pkits_base, *cas))
    if outcome == ACCEPT:
        assert pkits_valid
        result = validator.validate([ee, *cas], profile="authentication", at=PKITS_AT)
        assert result.chain[-1] == _pkits("TrustAnchorRootCertificate")
        return
    with pytest.raises(AnchorFailure) as caught:
        validator.validate([ee, *cas], profile="authentication", at=PKITS_AT)
    assert caught.value.reason == outcome, caught.value


def test_pkits_differences_are_only_stricter() -> None:
    """Where we disagree with PKITS, we refuse a path it accepts, never the reverse."""
    for section, _, _, outcome, pkits_valid in PKITS_CASES:
        if not pkits_valid:
            assert outcome != ACCEPT, section
    differing = {case[0] for case in PKITS_CASES if (case[3] == ACCEPT) != case[4]}
    assert differing == {"4.2.4", "4.6.4", "4.6.8", "4.6.14", "4.6.15", "4.6.17"}
