"""Certificate login verifier (trustanchor/anchors/x509_verifier.py), end to end on certificates
made by the test JPKI with pyca's builders (tests/support/jpki.py), challenge JWS signed as a card
app would, and revocation by the real CRL checker (anchors/crl.py) over the InMemoryFetcher.

One named test per line of SECURITY-CASES.md "Certificates (X.509 anchors, JPKI model)":

- leaf, intermediate or root outside its validity → reject
  (test_expired_leaf…, test_not_yet_valid_leaf…, test_expired_intermediate…,
  test_not_yet_valid_intermediate…, test_expired_root…, test_not_yet_valid_root…)
- intermediate without CA bit, path length exceeded, leaf used as CA, unknown critical extension
  → reject (test_intermediate_without_ca_bit…, test_path_length_exceeded…,
  test_leaf_used_as_ca…, test_unknown_critical_extension_in_leaf…/…_in_intermediate…; the
  layer below configuration in test_x509_chain.py)
- a signature certificate where the user-authentication certificate is required, or the reverse
  → reject (test_signature_certificate_where_authentication_is_required…,
  test_authentication_certificate_where_signature_is_required…)
- a challenge signature over another interaction's nonce, or a chain deeper than the limit →
  reject (test_challenge_over_another_interactions_nonce…, test_chain_deeper_than_the_limit…)
- serial on the CRL → reject; CRL stale, badly signed or unreachable → fail closed
  (test_serial_on_the_crl…, test_stale_crl…, test_badly_signed_crl…, test_unreachable_crl…)
- challenge signature not over our nonce, SHA-1, RSA below 2048 bits → reject
  (test_challenge_signature_not_over_our_nonce…, test_sha1_…, test_rsa_1024_…)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.credentials import InMemoryFetcher
from support.jpki import (
    OID_NAME,
    Card,
    Issued,
    TestPKI,
    b64url,
    challenge_jws,
    ec_key,
    leaf_key_usage,
    make_ca,
    other_names,
    rsa_key,
    uuid_oid,
)

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.revocation import build_checker, parse_revocation_settings
from trustanchor.anchors.x509_verifier import (
    AMR,
    REASONS,
    CertificateAnswer,
    ChallengeExpectation,
    X509Verifier,
    subject_of,
)
from trustanchor.config.settings import LimitSettings
from trustanchor.digests import sha256_hex
from trustanchor.domain.anchors import Anchor

NOW = 1_800_000_000
AUD = "https://trustanchor.example"
NONCE = "q2V0c3R1Zmb4bm9uY2UtMjU2LWJpdHMtb2YtcmFuZG9t"
TXN = "txn-7f3a"
SKEW = 60
AUTH_CRL = "https://crl.jpki.example/authentication.crl"
SIGN_CRL = "https://crl.jpki.example/signature.crl"
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)
EXPECTED = ChallengeExpectation(audience=AUD, nonce=NONCE, txn=TXN, not_after=NOW + 600)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=NOW, label="verifier")


@pytest.fixture(scope="module")
def card(pki: TestPKI) -> Card:
    return pki.person(label="hanako", name="佐藤\u3000花子", gender="2", birthdate="19910315")


def serve_crls(pki: TestPKI, fetcher: InMemoryFetcher, *, revoked: tuple[int, ...] = ()) -> None:
    fetcher.serve(AUTH_CRL, pki.crl(pki.authentication_ca, revoked=revoked))
    fetcher.serve(SIGN_CRL, pki.crl(pki.signature_ca, revoked=revoked))


def verifier(
    pki: TestPKI,
    fetcher: InMemoryFetcher | None = None,
    *,
    revoked: tuple[int, ...] = (),
    **overrides: Any,
) -> X509Verifier:
    if fetcher is None:
        fetcher = InMemoryFetcher()
        serve_crls(pki, fetcher, revoked=revoked)
    revocation = {"source": "crl", "crl_urls": [AUTH_CRL, SIGN_CRL]}
    settings = pki.anchor_settings(**{"revocation": revocation, **overrides})
    anchor = Anchor(
        id="jpki",
        kind="x509",
        display_name={"en": "My Number Card"},
        assurance_level="high",
        status="active",
        settings=settings,
    )
    checker = build_checker(parse_revocation_settings(revocation), fetcher=fetcher, randomness=None)
    return X509Verifier(anchor, revocation=checker, limits=LIMITS, clock_skew=SKEW)


def jws(leaf: Issued, cert: str = "authentication", **kw: Any) -> str:
    claims: dict[str, Any] = {"aud": AUD, "nonce": NONCE, "txn": TXN, "iat": NOW, "exp": NOW + 120}
    claims.update(kw)
    return challenge_jws(leaf, cert=cert, **claims)


def login(
    v: X509Verifier,
    authentication: str,
    signature: str | None = None,
    *,
    at: int = NOW,
    expected: ChallengeExpectation = EXPECTED,
    require_signature: bool = False,
) -> Any:
    return v.verify(
        CertificateAnswer(authentication=authentication, signature=signature),
        expected=expected,
        at=at,
        require_signature=require_signature,
    )


def refused(v: X509Verifier, authentication: str, signature: str | None = None, **kw: Any) -> str:
    with pytest.raises(AnchorFailure) as caught:
        login(v, authentication, signature, **kw)
    assert caught.value.reason in REASONS, caught.value
    return caught.value.reason


# -- the happy paths ---------------------------------------------------------------------------


def test_login_with_the_authentication_certificate(pki: TestPKI, card: Card) -> None:
    token = jws(card.authentication)
    identity = login(verifier(pki), token)
    issuer_digest = sha256_hex(card.authentication.cert.issuer.public_bytes())[:32]
    assert identity.subject == f"{issuer_digest}:{card.authentication.serial:x}"
    assert identity.subject == subject_of(card.authentication.cert)
    assert identity.anchor_id == "jpki"
    assert identity.claims == {} and identity.evidence == {}
    assert identity.amr == AMR == ("sc", "pin", "hwk")
    assert identity.assurance_level == "high"
    assert identity.trust_framework == "jp_aml"
    assert identity.verified_at == NOW
    assert identity.expires_at == int(card.authentication.cert.not_valid_after_utc.timestamp())
    assert identity.evidence_digest == sha256_hex(token)


def test_enrolment_with_both_certificates_gives_verified_claims(pki: TestPKI, card: Card) -> None:
    identity = login(
        verifier(pki),
        jws(card.authentication),
        jws(card.signature, "signature"),
        require_signature=True,
    )
    assert identity.subject == subject_of(card.authentication.cert)  # the same holder key
    assert identity.claims == {
        "name": "佐藤\u3000花子",
        "family_name": "佐藤",
        "given_name": "花子",
        "gender": "female",
        "birthdate": "1991-03-15",
        "address": {"formatted": "東京都千代田区霞が関1-1-1"},
    }
    assert identity.evidence == {
        "type": "electronic_signature",
        "signature_type": "jpki",
        "issuer": card.signature.cert.issuer.rfc4514_string(),
        "serial_number": f"{card.signature.serial:x}",
        "created_at": "2027-01-15T08:00:00Z",
    }


def test_the_subject_is_the_same_at_every_login_and_differs_per_card(pki: TestPKI) -> None:
    v = verifier(pki)
    one, other = pki.person(label="p-one"), pki.person(label="p-two")
    first = login(v, jws(one.authentication)).subject
    again = login(v, jws(one.authentication, iat=NOW + 5, exp=NOW + 65), at=NOW + 5).subject
    assert first == again != login(v, jws(other.authentication)).subject


def test_ps256_and_es256_only_where_the_anchor_declares_them(pki: TestPKI) -> None:
    rsa_leaf = pki.leaf("authentication", label="pss")
    ec_leaf = pki.leaf("authentication", label="ec", key=ec_key("verifier-ec-leaf"))
    assert refused(verifier(pki), jws(rsa_leaf, alg="PS256")) == "challenge_alg_not_allowed"
    assert refused(verifier(pki), jws(ec_leaf, alg="ES256")) == "challenge_alg_not_allowed"
    v = verifier(pki, algs=["RS256", "PS256", "ES256"])
    assert login(v, jws(rsa_leaf, alg="PS256")).subject == subject_of(rsa_leaf.cert)
    assert login(v, jws(ec_leaf, alg="ES256")).subject == subject_of(ec_leaf.cert)
    # An alg that does not fit the certificate's key.
    assert refused(v, jws(ec_leaf, alg="RS256", signing_key=rsa_key("x"))) == (
        "challenge_signature_invalid"
    )


# -- validity ----------------------------------------------------------------------------------


def test_expired_leaf_is_refused(pki: TestPKI) -> None:
    leaf = pki.leaf("authentication", label="expired", not_after=NOW - 1)
    assert refused(verifier(pki), jws(leaf)) == "certificate_expired"


def test_not_yet_valid_leaf_is_refused(pki: TestPKI) -> None:
    leaf = pki.leaf("authentication", label="early", not_before=NOW + 3600)
    assert refused(verifier(pki), jws(leaf)) == "certificate_not_yet_valid"


def _pki_with(
    label: str, *, root: dict[str, Any] | None = None, ca: dict[str, Any] | None = None
) -> TestPKI:
    """A test JPKI whose root or authentication CA has the given knobs."""
    root_knobs = {"path_length": 1, **(root or {})}
    the_root = make_ca(f"{label} Root", now=NOW, key_label=f"{label}:root", **root_knobs)
    auth = make_ca(
        f"{label} Auth CA", now=NOW, issuer=the_root, key_label=f"{label}:auth", **(ca or {})
    )
    sign = make_ca(f"{label} Sign CA", now=NOW, issuer=the_root, key_label=f"{label}:sign")
    return TestPKI(now=NOW, root=the_root, authentication_ca=auth, signature_ca=sign)


@pytest.mark.parametrize(
    "knobs, reason",
    [
        ({"not_after": NOW - 1}, "certificate_expired"),
        ({"not_before": NOW + 3600}, "certificate_not_yet_valid"),
    ],
    ids=["expired", "not_yet_valid"],
)
def test_expired_intermediate_or_not_yet_valid_intermediate_is_refused(
    knobs: dict[str, Any], reason: str
) -> None:
    other = _pki_with(f"intermediate-{reason}", ca=knobs)
    leaf = other.leaf("authentication", label="under-bad-ca", not_before=NOW - 60)
    with pytest.raises(AnchorFailure) as caught:
        login(verifier(other), jws(leaf))
    assert caught.value.reason == reason
    assert "x5c[1]" in caught.value.detail


def test_expired_root_is_refused() -> None:
    other = _pki_with("root-expired", root={"not_after": NOW - 1})
    leaf = other.leaf("authentication", label="under-expired-root")
    assert refused(verifier(other), jws(leaf)) == "certificate_chain_invalid"


def test_not_yet_valid_root_is_refused() -> None:
    other = _pki_with("root-early", root={"not_before": NOW + 3600})
    leaf = other.leaf("authentication", label="under-early-root")
    assert refused(verifier(other), jws(leaf)) == "certificate_chain_invalid"


# -- CA bit, path length, leaf as CA, critical extensions ---------------------------------------


def test_intermediate_without_ca_bit_is_refused(pki: TestPKI) -> None:
    """An intermediate without the CA bit cannot even be configured as an issuing CA, and one
    that is not configured issues nothing we accept (pyca's own refusal: test_x509_chain.py)."""
    no_ca = make_ca("verifier no-CA", now=NOW, issuer=pki.root, ca=False, key_label="v:noca")
    leaf = pki.leaf("authentication", label="under-no-ca", issuer=no_ca)
    chain = [leaf, no_ca]
    assert refused(verifier(pki), jws(leaf, chain=chain)) == "certificate_issuer_not_accepted"
    settings = pki.anchor_settings(revocation={"source": "crl", "crl_urls": [AUTH_CRL]})
    settings["authentication"]["issuers"] = [no_ca.pem]
    with pytest.raises(ValueError, match=r"authentication\.issuers: entry 0 is not a CA"):
        verifier(pki, authentication=settings["authentication"])


def test_path_length_exceeded_is_refused() -> None:
    other = _pki_with("pathlen", root={"path_length": 0})
    leaf = other.leaf("authentication", label="too-deep")
    with pytest.raises(AnchorFailure) as caught:
        login(verifier(other), jws(leaf))
    assert caught.value.reason == "certificate_chain_invalid"
    assert "path length" in caught.value.detail


def test_leaf_used_as_ca_is_refused(pki: TestPKI) -> None:
    card_leaf = pki.leaf("authentication", label="would-be-ca")
    issued_by_leaf = pki.leaf("authentication", label="issued-by-leaf", issuer=card_leaf)
    chain = [issued_by_leaf, card_leaf, pki.authentication_ca]
    assert refused(verifier(pki), jws(issued_by_leaf, chain=chain)) == (
        "certificate_issuer_not_accepted"
    )
    # A card certificate claiming to be a CA is not a card certificate either.
    ca_leaf = pki.leaf("authentication", label="ca-leaf", ca=True, path_length=0)
    assert refused(verifier(pki), jws(ca_leaf)) == "certificate_key_usage_not_accepted"


def test_unknown_critical_extension_in_leaf_is_refused(pki: TestPKI) -> None:
    leaf = pki.leaf("authentication", label="critical", critical_unknown=True)
    with pytest.raises(AnchorFailure) as caught:
        login(verifier(pki), jws(leaf))
    assert caught.value.reason == "certificate_chain_invalid"
    assert "critical" in caught.value.detail


def test_unknown_critical_extension_in_intermediate_is_refused() -> None:
    other = _pki_with("critical-ca", ca={"critical_unknown": True})
    leaf = other.leaf("authentication", label="under-critical-ca")
    with pytest.raises(AnchorFailure) as caught:
        login(verifier(other), jws(leaf))
    assert caught.value.reason == "certificate_chain_invalid"
    assert "critical" in caught.value.detail


def test_critical_certificate_policies_of_a_card_are_accepted(pki: TestPKI) -> None:
    """pyca's default client profile would refuse this; JPKI-style profiles must not."""
    leaf = pki.leaf("authentication", label="critical-policies", policies_critical=True)
    assert login(verifier(pki), jws(leaf)).subject == subject_of(leaf.cert)


def test_nothing_is_fetched_from_the_certificate(pki: TestPKI) -> None:
    """AIA and CRL distribution points in a certificate are never followed: the intermediate
    missing from x5c is not looked for, and only the configured CRL URLs are asked."""
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier("http://attacker.example/ca.cer"),
            )
        ]
    )
    cdp = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://attacker.example/x.crl")], None, None, None
            )
        ]
    )
    leaf = pki.leaf("authentication", label="aia", extra_extensions=[(aia, False), (cdp, False)])
    fetcher = InMemoryFetcher()
    serve_crls(pki, fetcher)
    v = verifier(pki, fetcher)
    assert refused(v, jws(leaf, chain=[leaf])) == "certificate_chain_invalid"
    login(v, jws(leaf))
    assert {url for url, _, _ in fetcher.requests} <= {AUTH_CRL, SIGN_CRL}


# -- profiles ----------------------------------------------------------------------------------


def test_signature_certificate_where_authentication_is_required_is_refused(
    pki: TestPKI, card: Card
) -> None:
    token = jws(card.signature, "authentication")
    assert refused(verifier(pki), token) == "certificate_profile_mismatch"


def test_authentication_certificate_where_signature_is_required_is_refused(
    pki: TestPKI, card: Card
) -> None:
    token = jws(card.authentication, "signature")
    assert refused(verifier(pki), jws(card.authentication), token) == (
        "certificate_profile_mismatch"
    )


def test_the_cert_claim_must_name_the_slot(pki: TestPKI, card: Card) -> None:
    token = jws(card.authentication, "signature")
    assert refused(verifier(pki), token) == "challenge_wrong_certificate"


def test_subject_attributes_never_decide_the_profile(pki: TestPKI) -> None:
    """A certificate of the authentication CA carrying personal attributes is an authentication
    certificate (and gives no claims); one of the signature CA without them is a signature
    certificate lacking its attributes, not an authentication certificate."""
    attrs = {OID_NAME: "偽 名前"}
    chatty = pki.leaf("authentication", label="chatty", san=other_names(attrs))
    identity = login(verifier(pki), jws(chatty))
    assert identity.claims == {}
    bare = pki.leaf("signature", label="bare", san=False)
    assert refused(verifier(pki), jws(bare)) == "certificate_profile_mismatch"
    auth = pki.leaf("authentication", label="bare-auth")
    assert refused(verifier(pki), jws(auth), jws(bare, "signature")) == (
        "certificate_attributes_missing"
    )


def test_wrong_policy_oid_is_refused(pki: TestPKI) -> None:
    leaf = pki.leaf("authentication", label="policy", policy_oid=uuid_oid("another policy"))
    assert refused(verifier(pki), jws(leaf)) == "certificate_policy_not_accepted"
    none = pki.leaf("authentication", label="no-policy", policy_oid=None)
    assert refused(verifier(pki), jws(none)) == "certificate_policy_not_accepted"
    # The other profile's policy under this profile's CA is not this profile either.
    crossed = pki.leaf("authentication", label="crossed", policy_oid=pki.signature_policy)
    assert refused(verifier(pki), jws(crossed)) == "certificate_policy_not_accepted"


def test_key_usage_is_checked_per_profile(pki: TestPKI) -> None:
    no_ds = x509.KeyUsage(False, True, False, False, False, False, False, False, False)
    leaf = pki.leaf("authentication", label="no-ds", key_usage=no_ds)
    assert refused(verifier(pki), jws(leaf)) == "certificate_key_usage_not_accepted"
    no_ku = pki.leaf("authentication", label="no-ku", key_usage=None)
    assert refused(verifier(pki), jws(no_ku)) == "certificate_key_usage_not_accepted"
    auth = pki.leaf("authentication", label="nr-auth")
    no_nr = pki.leaf("signature", label="no-nr", key_usage=leaf_key_usage(non_repudiation=False))
    assert refused(verifier(pki), jws(auth), jws(no_nr, "signature")) == (
        "certificate_key_usage_not_accepted"
    )


def test_certificate_of_an_unknown_issuer_is_refused(pki: TestPKI) -> None:
    """Same names as our CAs, other keys: the issuing CA is decided by signature, not name."""
    impostor = TestPKI.generate(now=NOW, label="verifier-impostor")
    assert impostor.authentication_ca.cert.subject != pki.authentication_ca.cert.subject
    twin = make_ca("verifier Authentication CA", now=NOW, issuer=impostor.root, key_label="v:twin")
    assert twin.cert.subject == pki.authentication_ca.cert.subject
    leaf = pki.leaf("authentication", label="twin", issuer=twin)
    assert refused(verifier(pki), jws(leaf)) == "certificate_issuer_not_accepted"
    stranger = impostor.leaf("authentication", label="stranger")
    assert refused(verifier(pki), jws(stranger)) == "certificate_issuer_not_accepted"


# -- the challenge -----------------------------------------------------------------------------


def test_challenge_over_another_interactions_nonce_is_refused(pki: TestPKI, card: Card) -> None:
    other = jws(card.authentication, nonce="another-interactions-nonce")
    assert refused(verifier(pki), other) == "challenge_nonce_mismatch"
    other_txn = jws(card.authentication, txn="txn-other")
    assert refused(verifier(pki), other_txn) == "challenge_txn_mismatch"


def test_chain_deeper_than_the_limit_is_refused(pki: TestPKI, card: Card) -> None:
    chain = TestPKI.chain_of(card.authentication, include_root=True)  # 3 certificates
    assert login(verifier(pki), jws(card.authentication, chain=chain))
    assert refused(verifier(pki, max_chain_length=2), jws(card.authentication, chain=chain)) == (
        "certificate_chain_too_long"
    )
    padded = [*chain, pki.signature_ca, pki.root]
    assert refused(verifier(pki), jws(card.authentication, chain=padded)) == (
        "certificate_chain_too_long"
    )


def test_challenge_signature_not_over_our_nonce_is_refused(pki: TestPKI, card: Card) -> None:
    genuine = jws(card.authentication, nonce="nonce-the-card-signed")
    header, _, signature = genuine.split(".")
    ours = {
        "aud": AUD,
        "nonce": NONCE,
        "txn": TXN,
        "iat": NOW,
        "exp": NOW + 120,
        "purpose": "trustanchor-login-challenge-v1",
        "cert": "authentication",
    }
    swapped = f"{header}.{b64url(json.dumps(ours).encode())}.{signature}"
    assert refused(verifier(pki), swapped) == "challenge_signature_invalid"
    other_key = jws(card.authentication, signing_key=rsa_key("not-the-card"))
    assert refused(verifier(pki), other_key) == "challenge_signature_invalid"


def test_possession_is_proven_before_the_certificate_is_judged(pki: TestPKI) -> None:
    """Certificates are public: an expired (or revoked) card's certificate sent without its key
    is refused for the signature, not reported as expired."""
    leaf = pki.leaf("authentication", label="expired-nokey", not_after=NOW - 1)
    assert refused(verifier(pki), jws(leaf, signing_key=rsa_key("thief"))) == (
        "challenge_signature_invalid"
    )


def test_sha1_signed_leaf_is_refused(pki: TestPKI) -> None:
    leaf = pki.leaf("authentication", label="sha1", hash_alg=hashes.SHA1())  # noqa: S303
    assert refused(verifier(pki), jws(leaf)) == "weak_certificate_signature"


def test_sha1_signed_intermediate_is_refused() -> None:
    """Refused at configuration; sent in x5c under a configured CA's name it is not ours."""
    other = _pki_with("sha1-ca", ca={"hash_alg": hashes.SHA1()})  # noqa: S303
    with pytest.raises(ValueError, match="signed with SHA-1"):
        verifier(other)
    good = _pki_with("sha1-ca-good")
    sha1_twin = make_ca(
        "sha1-ca-good Auth CA",
        now=NOW,
        issuer=good.root,
        key_label="sha1-ca-good:auth",
        hash_alg=hashes.SHA1(),  # noqa: S303
    )
    leaf = good.leaf("authentication", label="under-sha1-twin")
    assert refused(verifier(good), jws(leaf, chain=[leaf, sha1_twin])) == (
        "weak_certificate_signature"
    )


def test_rsa_1024_leaf_is_refused(pki: TestPKI) -> None:
    leaf = pki.leaf("authentication", label="rsa1024", key_bits=1024)
    assert refused(verifier(pki), jws(leaf)) == "weak_certificate_key"


def test_rsa_1024_intermediate_is_refused() -> None:
    with pytest.raises(ValueError, match="1024-bit RSA key"):
        verifier(_pki_with("rsa1024-ca", ca={"key_bits": 1024}))
    good = _pki_with("rsa1024-good")
    weak = make_ca("rsa1024-good Other", now=NOW, issuer=good.root, key_bits=1024)
    leaf = good.leaf("authentication", label="under-weak", issuer=weak)
    assert refused(verifier(good), jws(leaf, chain=[leaf, weak])) == "weak_certificate_key"


@pytest.mark.parametrize(
    "claims, at, reason",
    [
        ({"aud": "https://other-verifier.example"}, NOW, "challenge_wrong_audience"),
        ({"iat": NOW + SKEW + 1, "exp": NOW + SKEW + 60}, NOW, "challenge_issued_in_future"),
        ({"iat": NOW - 200, "exp": NOW - SKEW - 1}, NOW, "challenge_expired"),
        ({"iat": NOW + 400, "exp": NOW + 601}, NOW + 400, "challenge_lifetime_too_long"),
        ({"iat": NOW, "exp": NOW + 301}, NOW, "challenge_lifetime_too_long"),
        ({"iat": NOW, "exp": NOW - 1}, NOW, "challenge_lifetime_too_long"),
    ],
    ids=["aud", "iat_future", "expired", "beyond_request", "too_long", "exp_before_iat"],
)
def test_challenge_claims(
    pki: TestPKI, card: Card, claims: dict[str, Any], at: int, reason: str
) -> None:
    assert refused(verifier(pki), jws(card.authentication, **claims), at=at) == reason


def test_clock_skew_is_allowed_both_ways(pki: TestPKI, card: Card) -> None:
    v = verifier(pki)
    login(v, jws(card.authentication, iat=NOW + SKEW, exp=NOW + SKEW + 60))
    login(v, jws(card.authentication, iat=NOW - 200, exp=NOW - SKEW))


# -- both certificates -------------------------------------------------------------------------


def test_signature_required_but_missing_is_refused(pki: TestPKI, card: Card) -> None:
    token = jws(card.authentication)
    assert refused(verifier(pki), token, require_signature=True) == (
        "signature_certificate_missing"
    )


def test_signature_offered_where_the_anchor_has_no_signature_profile(
    pki: TestPKI, card: Card
) -> None:
    v = verifier(pki)  # with the profile: accepted
    login(v, jws(card.authentication), jws(card.signature, "signature"))
    no_profile = _without_signature_profile(pki)
    assert refused(no_profile, jws(card.authentication), jws(card.signature, "signature")) == (
        "signature_profile_not_configured"
    )


def _without_signature_profile(pki: TestPKI) -> X509Verifier:
    fetcher = InMemoryFetcher()
    serve_crls(pki, fetcher)
    revocation = {"source": "crl", "crl_urls": [AUTH_CRL]}
    settings = pki.anchor_settings(revocation=revocation)
    del settings["signature"]
    anchor = Anchor("jpki", "x509", {"en": "x"}, "high", "active", settings)
    checker = build_checker(parse_revocation_settings(revocation), fetcher=fetcher, randomness=None)
    return X509Verifier(anchor, revocation=checker, limits=LIMITS, clock_skew=SKEW)


def test_both_signatures_must_verify_and_match_the_transaction(pki: TestPKI, card: Card) -> None:
    v = verifier(pki)
    auth = jws(card.authentication)
    forged = jws(card.signature, "signature", signing_key=rsa_key("forger"))
    assert refused(v, auth, forged) == "challenge_signature_invalid"
    other_nonce = jws(card.signature, "signature", nonce="other-nonce")
    assert refused(v, auth, other_nonce) == "challenge_nonce_mismatch"


# -- revocation --------------------------------------------------------------------------------


def test_serial_on_the_crl_is_refused(pki: TestPKI) -> None:
    revoked = pki.person(label="revoked")
    v = verifier(pki, revoked=(revoked.authentication.serial,))
    assert refused(v, jws(revoked.authentication)) == "certificate_revoked"


def test_revoked_signature_certificate_is_refused(pki: TestPKI) -> None:
    person = pki.person(label="moved-house")
    v = verifier(pki, revoked=(person.signature.serial,))
    login(v, jws(person.authentication))  # the authentication certificate still logs in
    assert refused(v, jws(person.authentication), jws(person.signature, "signature")) == (
        "certificate_revoked"
    )


def test_stale_crl_fails_closed(pki: TestPKI, card: Card) -> None:
    fetcher = InMemoryFetcher()
    fetcher.serve(
        AUTH_CRL, pki.crl(pki.authentication_ca, this_update=NOW - 7200, next_update=NOW - 1)
    )
    fetcher.serve(SIGN_CRL, pki.crl(pki.signature_ca))
    assert refused(verifier(pki, fetcher), jws(card.authentication)) == "revocation_unavailable"


def test_badly_signed_crl_fails_closed(pki: TestPKI, card: Card) -> None:
    fetcher = InMemoryFetcher()
    fetcher.serve(AUTH_CRL, pki.crl(pki.authentication_ca, signing_key=rsa_key("not-the-ca")))
    fetcher.serve(SIGN_CRL, pki.crl(pki.signature_ca))
    assert refused(verifier(pki, fetcher), jws(card.authentication)) == "revocation_unavailable"


def test_unreachable_crl_fails_closed(pki: TestPKI, card: Card) -> None:
    fetcher = InMemoryFetcher()  # serves nothing: every URL is unreachable
    assert refused(verifier(pki, fetcher), jws(card.authentication)) == "revocation_unavailable"


def test_crl_is_cached_between_logins(pki: TestPKI, card: Card) -> None:
    fetcher = InMemoryFetcher()
    serve_crls(pki, fetcher)
    v = verifier(pki, fetcher)
    login(v, jws(card.authentication))
    asked = len(fetcher.requests)
    login(v, jws(card.authentication, iat=NOW + 10, exp=NOW + 70), at=NOW + 10)
    assert len(fetcher.requests) == asked


def test_every_reason_has_words() -> None:
    for reason, words in REASONS.items():
        assert words.endswith((".", "。")), reason


# -- property ----------------------------------------------------------------------------------

_PROPERTY_PKI = TestPKI.generate(now=NOW, label="verifier-property")
_PROPERTY_CARD = _PROPERTY_PKI.person(label="property")
_PROPERTY_VERIFIER = verifier(_PROPERTY_PKI)
_PROPERTY_TOKEN = jws(_PROPERTY_CARD.authentication)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), min_size=1, max_size=3),
    insert=st.text(max_size=8),
)
def test_mangled_answers_only_raise_anchor_failure(cuts: list[int], insert: str) -> None:
    token = _PROPERTY_TOKEN
    for cut in cuts:
        index = cut % (len(token) + 1)
        token = token[:index] + insert + token[index + 1 :]
    try:
        login(_PROPERTY_VERIFIER, token, token if cuts[0] % 2 else None)
    except AnchorFailure as failure:
        assert failure.reason in REASONS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    claims=st.dictionaries(
        st.sampled_from(["aud", "nonce", "txn", "iat", "exp"]),
        st.one_of(st.text(max_size=10), st.integers(min_value=-(2**62), max_value=2**62)),
    )
)
def test_signed_challenges_with_arbitrary_claims_only_raise_anchor_failure(
    claims: dict[str, Any],
) -> None:
    token = jws(_PROPERTY_CARD.authentication, **claims)
    try:
        login(_PROPERTY_VERIFIER, token)
    except AnchorFailure as failure:
        assert failure.reason in REASONS


def test_a_certificate_pyca_cannot_read_is_refused_not_a_crash(pki: TestPKI) -> None:
    """A duplicated extension (made by hand: the builder refuses it) raises DuplicateExtension,
    which is not a ValueError, when pyca parses the extensions lazily."""
    placeholder = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.99"), b"\x04\x00")
    leaf = pki.leaf("authentication", label="duplicate", extra_extensions=[(placeholder, False)])
    # 2.5.29.99 and 2.5.29.14 (subjectKeyIdentifier) encode to the same length.
    der = leaf.der.replace(b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x0e", 1)
    broken = x509.load_der_x509_certificate(der)
    with pytest.raises(x509.DuplicateExtension):
        broken.extensions  # noqa: B018
    duplicated = Issued(cert=broken, key=leaf.key, issuer=leaf.issuer)
    assert refused(verifier(pki), jws(duplicated)) == "certificate_unreadable"
