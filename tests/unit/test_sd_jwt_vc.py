"""SD-JWT VC anchor verifier: the happy path with a credential issued and presented by the
independent sd-jwt package (tests/support/credentials.py), then one named test per
SECURITY-CASES.md "Smartphone credentials" line, resource limits, and a property that mangled
presentations only ever raise AnchorFailure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from sd_jwt.verifier import SDJWTVerifier  # type: ignore[import-untyped]
from support.credentials import (
    InMemoryFetcher,
    Issuer,
    Wallet,
    b64url,
    b64url_json,
    decode_segment,
    digest,
    make_disclosure,
)

from trustanchor.anchors.base import AnchorFailure, Expectation
from trustanchor.anchors.sd_jwt_vc import REASONS, SdJwtVcVerifier
from trustanchor.anchors.sd_jwt_vc_settings import parse_settings
from trustanchor.config.settings import LimitSettings
from trustanchor.digests import sha256_hex
from trustanchor.domain.anchors import Anchor

AT = 1_760_000_000
NONCE = "wallet-nonce-8f3b2c"
AUD = "x509_san_dns:trustanchor.example"
STATUS_URI = "https://pid-issuer.example/status/1"
STATUS_IDX = 5
KB_MAX_AGE = 300
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)
PERSON = {
    "sub": "jp-person-0001",
    "given_name": "Taro",
    "family_name": "Yamada",
    "birthdate": "1990-04-01",
    "address": {"street_address": "1-1 Chiyoda", "locality": "Tokyo", "country": "JP"},
}
CLAIM_MAP = {
    "given_name": "given_name",
    "family_name": "family_name",
    "birthdate": "birthdate",
    "address": "address",
}
EXPECTED = Expectation(nonce=NONCE, audience=AUD, required_claims=("given_name", "family_name"))


@pytest.fixture
def issuer() -> Issuer:
    return Issuer.generate()


@pytest.fixture
def wallet() -> Wallet:
    return Wallet.generate()


@pytest.fixture
def fetcher(issuer: Issuer) -> InMemoryFetcher:
    """Serves a valid status list in which index STATUS_IDX is VALID."""
    served = InMemoryFetcher()
    served.serve(STATUS_URI, issuer.status_list_token(STATUS_URI, [0] * 16, iat=AT - 60))
    return served


def anchor_settings(party: Issuer, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "issuer": party.issuer,
        "jwks": party.jwks(),
        "vct": [party.vct],
        "subject_claim": "sub",
        "claims": CLAIM_MAP,
        "trust_framework": "jp_my_number_card",
        "status_check": "required",
    }
    settings.update(overrides)
    return settings


def make_verifier(
    party: Issuer,
    fetcher: InMemoryFetcher | None,
    *,
    limits: LimitSettings = LIMITS,
    **overrides: Any,
) -> SdJwtVcVerifier:
    anchor = Anchor(
        id="jp-pid",
        kind="sd_jwt_vc",
        display_name={"en": "My Number Card (smartphone)"},
        assurance_level="high",
        status="active",
        settings=anchor_settings(party, **overrides),
    )
    return SdJwtVcVerifier(anchor, fetcher=fetcher, limits=limits, kb_max_age=KB_MAX_AGE)


def issue(issuer: Issuer, wallet: Wallet, **overrides: Any) -> str:
    """The standard credential: every person claim disclosable (address recursively)."""
    options: dict[str, Any] = {
        "claims": PERSON,
        "disclosable": set(PERSON),
        "nested": {"address": {"street_address", "locality"}},
        "iat": AT - 3600,
        "exp": AT + 365 * 86400,
        "status": (STATUS_URI, STATUS_IDX),
        "decoys": True,
    }
    options.update(overrides)
    return issuer.issue(wallet, **options)


def present(wallet: Wallet, sd_jwt: str, **overrides: Any) -> str:
    options: dict[str, Any] = {"nonce": NONCE, "aud": AUD, "iat": AT - 5}
    options.update(overrides)
    return wallet.bind(sd_jwt, **options)


def refused(verifier: SdJwtVcVerifier, presentation: str, reason: str) -> AnchorFailure:
    with pytest.raises(AnchorFailure) as caught:
        verifier.verify(presentation, expected=EXPECTED, at=AT)
    assert caught.value.reason == reason, caught.value
    assert reason in REASONS
    return caught.value


# -- happy path -------------------------------------------------------------------------------


def test_happy_path_credential_from_the_sd_jwt_package(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet))
    identity = make_verifier(issuer, fetcher).verify(presentation, expected=EXPECTED, at=AT)

    assert identity.anchor_id == "jp-pid"
    assert identity.subject == "jp-person-0001"
    assert identity.claims == {name: PERSON[name] for name in CLAIM_MAP}
    assert identity.assurance_level == "high"
    assert identity.verified_at == AT
    assert identity.expires_at == AT + 365 * 86400
    assert identity.evidence_digest == sha256_hex(presentation)
    assert identity.trust_framework == "jp_my_number_card"
    assert identity.status_reference == {"uri": STATUS_URI, "idx": STATUS_IDX}
    assert identity.amr == ("pop",)
    assert identity.evidence == {
        "type": "electronic_record",
        "check_details": [{"check_method": "vcrypt"}],
        "time": "2025-10-09T07:53:20Z",
        "record": {"type": issuer.vct, "source": {"name": issuer.issuer}},
    }
    assert fetcher.requests == [(STATUS_URI, "application/statuslist+jwt", 262144)]


def test_the_sd_jwt_package_verifier_accepts_what_tests_support_produces(
    issuer: Issuer, wallet: Wallet
) -> None:
    """Cross-check with an independent implementation: the KB-JWT our Wallet signs by hand
    (see tests/support/credentials.py) verifies with sd-jwt's own SDJWTVerifier."""
    presentation = present(wallet, issue(issuer, wallet))
    checked = SDJWTVerifier(
        presentation,
        lambda iss, header: issuer.jwk,
        expected_aud=AUD,
        expected_nonce=NONCE,
    )
    payload = checked.get_verified_payload()
    assert payload["given_name"] == "Taro"
    assert payload["address"] == PERSON["address"]


def test_selective_presentation_maps_only_what_was_disclosed(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    chosen = {"sub": True, "given_name": True, "family_name": True, "address": {"locality": True}}
    presentation = present(wallet, wallet.select(issue(issuer, wallet), chosen))
    identity = make_verifier(issuer, fetcher).verify(presentation, expected=EXPECTED, at=AT)
    assert identity.claims == {
        "given_name": "Taro",
        "family_name": "Yamada",
        "address": {"locality": "Tokyo", "country": "JP"},
    }


def test_required_claim_not_disclosed_is_missing_claims(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(
        wallet, wallet.select(issue(issuer, wallet), {"sub": True, "given_name": True})
    )
    failure = refused(make_verifier(issuer, fetcher), presentation, "missing_claims")
    assert "family_name" in failure.detail


def test_subject_not_disclosed_is_missing_subject(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    selection = {"given_name": True, "family_name": True}
    presentation = present(wallet, wallet.select(issue(issuer, wallet), selection))
    refused(make_verifier(issuer, fetcher), presentation, "missing_subject")


def test_legacy_vc_sd_jwt_typ_is_accepted_unless_disabled(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet, typ="vc+sd-jwt"))
    make_verifier(issuer, fetcher).verify(presentation, expected=EXPECTED, at=AT)
    strict = make_verifier(issuer, fetcher, accept_legacy_typ=False)
    refused(strict, presentation, "wrong_credential_typ")


def test_constructor_does_no_network(issuer: Issuer) -> None:
    fetcher = InMemoryFetcher()
    make_verifier(issuer, fetcher)
    assert fetcher.requests == []


# -- key-binding JWT --------------------------------------------------------------------------


def test_kb_nonce_mismatch(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), nonce="another-login-nonce")
    refused(make_verifier(issuer, fetcher), presentation, "kb_nonce_mismatch")


def test_kb_nonce_not_a_string(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), claims={"nonce": 12345})
    refused(make_verifier(issuer, fetcher), presentation, "kb_nonce_mismatch")


def test_kb_aud_wrong(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), aud="https://other-verifier.example")
    refused(make_verifier(issuer, fetcher), presentation, "kb_wrong_audience")


def test_kb_aud_as_array_is_refused(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet), claims={"aud": [AUD, "https://x"]})
    refused(make_verifier(issuer, fetcher), presentation, "kb_wrong_audience")


def test_kb_iat_in_the_future(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), iat=AT + 31)
    refused(make_verifier(issuer, fetcher), presentation, "kb_iat_in_future")


def test_kb_iat_within_clock_skew_is_accepted(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet), iat=AT + 30)
    make_verifier(issuer, fetcher).verify(presentation, expected=EXPECTED, at=AT)


def test_kb_iat_stale(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), iat=AT - KB_MAX_AGE - 1)
    refused(make_verifier(issuer, fetcher), presentation, "kb_stale")


def test_sd_hash_mismatch_when_a_disclosure_is_dropped_after_binding(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet))
    jwt, *disclosures, kb = presentation.split("~")
    tampered = "~".join([jwt, *disclosures[1:], kb])
    refused(make_verifier(issuer, fetcher), tampered, "kb_sd_hash_mismatch")


def test_sd_hash_over_other_content(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet), sd_hash=b64url(b"\x00" * 32))
    refused(make_verifier(issuer, fetcher), presentation, "kb_sd_hash_mismatch")


def test_kb_signed_by_another_key(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), signer=Wallet.generate())
    refused(make_verifier(issuer, fetcher), presentation, "kb_signature_invalid")


def test_kb_typ_wrong(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet), typ="JWT")
    refused(make_verifier(issuer, fetcher), presentation, "kb_wrong_typ")


def test_kb_missing(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    refused(make_verifier(issuer, fetcher), issue(issuer, wallet), "key_binding_missing")


def test_kb_alg_none(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    sd_jwt = issue(issuer, wallet)
    kb = ".".join(
        [
            b64url_json({"alg": "none", "typ": "kb+jwt"}),
            b64url_json({"iat": AT, "aud": AUD, "nonce": NONCE, "sd_hash": digest(sd_jwt)}),
            "",
        ]
    )
    refused(make_verifier(issuer, fetcher), sd_jwt + kb, "kb_malformed")


def test_credential_without_cnf_is_refused(
    issuer: Issuer, fetcher: InMemoryFetcher, wallet: Wallet
) -> None:
    sd_jwt = issuer.issue(None, claims=PERSON, iat=AT - 60, status=(STATUS_URI, 1))
    refused(make_verifier(issuer, fetcher), present(wallet, sd_jwt), "invalid_holder_key")


def test_cnf_jwk_with_private_material_is_refused(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    private = dict(wallet.jwk.export_private(as_dict=True))
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p", cnf={"jwk": private})
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + "~"),
        "invalid_holder_key",
    )


# -- disclosures ------------------------------------------------------------------------------


def test_disclosure_digest_not_in_sd(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    smuggled = make_disclosure("nationality", "XX")
    presentation = present(wallet, issue(issuer, wallet) + smuggled + "~")
    refused(make_verifier(issuer, fetcher), presentation, "disclosure_not_referenced")


def test_disclosure_replacing_a_value_is_not_referenced(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    """A forged Disclosure for a claim that exists has a digest the issuer never signed."""
    sd_jwt = issue(issuer, wallet, disclosable={"sub", "given_name", "family_name"}, nested={})
    jwt, *disclosures, _ = sd_jwt.split("~")
    forged = [
        make_disclosure("given_name", "Mallory") if decode_segment(d)[1] == "given_name" else d
        for d in disclosures
    ]
    presentation = present(wallet, "~".join([jwt, *forged, ""]))
    refused(make_verifier(issuer, fetcher), presentation, "disclosure_not_referenced")


def test_same_disclosure_presented_twice(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    sd_jwt = issue(issuer, wallet)
    first = sd_jwt.split("~")[1]
    refused(
        make_verifier(issuer, fetcher),
        present(wallet, sd_jwt + first + "~"),
        "duplicate_digest",
    )


def test_same_digest_twice_in_the_signed_payload(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    name = make_disclosure("given_name", "Taro")
    sub = make_disclosure("sub", "p-1")
    payload = issuer.base_payload(
        wallet,
        iat=AT - 60,
        _sd=[digest(sub), digest(name)],
        address={"_sd": [digest(name)], "country": "JP"},
    )
    sd_jwt = issuer.sign(payload) + f"~{sub}~{name}~"
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, sd_jwt),
        "duplicate_digest",
    )


def test_same_digest_twice_in_an_array(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    element = make_disclosure(None, "JP")
    sub = make_disclosure("sub", "p-1")
    payload = issuer.base_payload(
        wallet,
        iat=AT - 60,
        _sd=[digest(sub)],
        nationalities=[{"...": digest(element)}, {"...": digest(element)}],
    )
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + f"~{sub}~{element}~"),
        "duplicate_digest",
    )


def test_array_element_disclosures_and_decoys_are_processed(issuer: Issuer, wallet: Wallet) -> None:
    element = make_disclosure(None, "JP")
    hidden = make_disclosure(None, "US")
    sub = make_disclosure("sub", "p-1")
    decoy = b64url(b"decoy-digest-value-000000000000")
    payload = issuer.base_payload(
        wallet,
        iat=AT - 60,
        _sd=[decoy, digest(sub)],
        nationalities=[{"...": digest(element)}, {"...": digest(hidden)}, {"...": decoy + "x"}],
    )
    verifier = make_verifier(
        issuer, None, status_check="off", claims={"nationalities": "nationalities"}
    )
    identity = verifier.verify(
        present(wallet, issuer.sign(payload) + f"~{sub}~{element}~"),
        expected=Expectation(nonce=NONCE, audience=AUD),
        at=AT,
    )
    assert identity.subject == "p-1"
    assert identity.claims == {"nationalities": ["JP"]}
    assert identity.status_reference is None


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_disclosed_claim_with_a_reserved_name(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher, name: str
) -> None:
    bad = make_disclosure(name, ["x"])
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1", _sd=[digest(bad)])
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + f"~{bad}~"),
        "invalid_disclosed_claim",
    )


def test_disclosed_claim_colliding_with_a_plain_claim(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    shadow = make_disclosure("sub", "someone-else")
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1", _sd=[digest(shadow)])
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + f"~{shadow}~"),
        "invalid_disclosed_claim",
    )


def test_selectively_disclosed_exp_is_forbidden(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    exp = make_disclosure("exp", AT + 10**8)
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1", _sd=[digest(exp)])
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + f"~{exp}~"),
        "forbidden_disclosure",
    )


def test_array_disclosure_referenced_from_sd_is_malformed(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    element = make_disclosure(None, "JP")
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1", _sd=[digest(element)])
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + f"~{element}~"),
        "malformed_disclosure",
    )


@pytest.mark.parametrize("sd_alg", ["sha-1", "md5", "SHA-256", "sha-512", "none", 1])
def test_sd_alg_unknown_or_weak(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher, sd_alg: Any
) -> None:
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1", _sd_alg=sd_alg)
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + "~"),
        "unsupported_sd_alg",
    )


def test_sd_alg_absent_means_sha_256(issuer: Issuer, wallet: Wallet) -> None:
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1")
    del payload["_sd_alg"]
    verifier = make_verifier(issuer, None, status_check="off")
    identity = verifier.verify(
        present(wallet, issuer.sign(payload) + "~"),
        expected=Expectation(nonce=NONCE, audience=AUD),
        at=AT,
    )
    assert identity.subject == "p-1"


# -- issuer-signed JWT ------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "example+sd-jwt", "kb+jwt", "statuslist+jwt", None])
def test_issuer_typ_wrong(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher, typ: str | None
) -> None:
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1")
    token = issuer.sign(payload, header={"typ": typ})
    refused(make_verifier(issuer, fetcher), present(wallet, token + "~"), "wrong_credential_typ")


def test_issuer_alg_none(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1")
    token = f"{b64url_json({'alg': 'none', 'typ': 'dc+sd-jwt'})}.{b64url_json(payload)}."
    refused(make_verifier(issuer, fetcher), present(wallet, token + "~"), "issuer_alg_not_allowed")


def test_issuer_alg_hs256_with_the_public_key_as_secret(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    secret = JWK(kty="oct", k=b64url(str(issuer.jwks()).encode()))
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1")
    token = issuer.sign(payload, header={"alg": "HS256"}, key=secret)
    refused(make_verifier(issuer, fetcher), present(wallet, token + "~"), "issuer_alg_not_allowed")


def test_issuer_alg_outside_the_anchor_allow_list(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    p384 = JWK.from_pyca(ec.generate_private_key(ec.SECP384R1()))
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1")
    token = issuer.sign(payload, header={"alg": "ES384"}, key=p384)
    refused(make_verifier(issuer, fetcher), present(wallet, token + "~"), "issuer_alg_not_allowed")


def test_issuer_key_not_among_anchor_keys_same_kid(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    impostor = Issuer.generate(kid=issuer.kid)
    presentation = present(wallet, issue(impostor, wallet))
    refused(make_verifier(issuer, fetcher), presentation, "issuer_signature_invalid")


@pytest.mark.parametrize("embedded", ["jwk", "x5c", "jku"])
def test_issuer_key_embedded_in_the_header_is_not_trusted(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher, embedded: str
) -> None:
    impostor = Issuer.generate()
    carried: dict[str, Any] = {
        "jwk": impostor.public_jwk(),
        "x5c": [b64url(b"not-really-a-certificate")],
        "jku": "https://attacker.example/jwks.json",
    }
    payload = impostor.base_payload(wallet, iat=AT - 60, sub="p-1")
    # No kid: the verifier tries every configured key, and none of them signed this.
    token = impostor.sign(payload, header={embedded: carried[embedded], "kid": None})
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, token + "~"),
        "issuer_signature_invalid",
    )


def test_unknown_kid(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1")
    token = issuer.sign(payload, header={"kid": "rotated-away"})
    refused(make_verifier(issuer, fetcher), present(wallet, token + "~"), "unknown_issuer_key")


def test_wrong_issuer(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet, iss="https://other-issuer.example"))
    refused(make_verifier(issuer, fetcher), presentation, "wrong_issuer")


def test_vct_not_accepted(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet, vct="urn:example:loyalty-card"))
    refused(make_verifier(issuer, fetcher), presentation, "vct_not_accepted")


def test_credential_expired(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet, iat=AT - 86400, exp=AT - 31))
    refused(make_verifier(issuer, fetcher), presentation, "credential_expired")


def test_an_expired_credential_without_its_key_fails_at_key_binding(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    """A leaked expired credential replayed by someone without the holder's key, or with a stale
    nonce, is a key-binding failure: "credential_expired" (always audited, issue 10) only ever
    names a credential whose holder proved possession for our nonce."""
    expired = issue(issuer, wallet, iat=AT - 86400, exp=AT - 31)
    verifier = make_verifier(issuer, fetcher)
    refused(verifier, present(wallet, expired, signer=Wallet.generate()), "kb_signature_invalid")
    refused(verifier, present(wallet, expired, nonce="another-login-nonce"), "kb_nonce_mismatch")


def test_credential_not_yet_valid(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    presentation = present(wallet, issue(issuer, wallet, iat=AT + 3600))
    refused(make_verifier(issuer, fetcher), presentation, "credential_not_yet_valid")


def test_credential_older_than_max_age(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet, iat=AT - 7201))
    refused(make_verifier(issuer, fetcher, max_age=7200), presentation, "credential_too_old")


# -- status list ------------------------------------------------------------------------------


def serve_status(fetcher: InMemoryFetcher, issuer: Issuer, status: int, **options: Any) -> None:
    statuses = [0] * 16
    statuses[STATUS_IDX] = status
    bits = options.pop("bits", 2)
    fetcher.serve(
        STATUS_URI,
        issuer.status_list_token(STATUS_URI, statuses, bits=bits, iat=AT - 60, **options),
    )


def test_status_list_says_revoked(issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher) -> None:
    serve_status(fetcher, issuer, 1, bits=1)
    refused(
        make_verifier(issuer, fetcher),
        present(wallet, issue(issuer, wallet)),
        "credential_revoked",
    )


def test_status_list_says_suspended(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    serve_status(fetcher, issuer, 2)
    refused(
        make_verifier(issuer, fetcher),
        present(wallet, issue(issuer, wallet)),
        "credential_suspended",
    )


def test_status_list_application_specific_value_is_not_valid(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    serve_status(fetcher, issuer, 3)
    refused(
        make_verifier(issuer, fetcher),
        present(wallet, issue(issuer, wallet)),
        "credential_status_unrecognised",
    )


@pytest.mark.parametrize("mode", ["required", "if_present"])
def test_status_list_unreachable_fails_closed(issuer: Issuer, wallet: Wallet, mode: str) -> None:
    presentation = present(wallet, issue(issuer, wallet))
    refused(
        make_verifier(issuer, InMemoryFetcher(), status_check=mode),
        presentation,
        "status_unavailable",
    )
    refused(make_verifier(issuer, None, status_check=mode), presentation, "status_unavailable")


def test_status_required_but_credential_has_no_status_reference(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet, status=None))
    refused(make_verifier(issuer, fetcher), presentation, "status_reference_missing")
    lenient = make_verifier(issuer, fetcher, status_check="if_present")
    assert lenient.verify(presentation, expected=EXPECTED, at=AT).status_reference is None


def test_status_check_off_fetches_nothing(issuer: Issuer, wallet: Wallet) -> None:
    fetcher = InMemoryFetcher()
    serve_status(fetcher, issuer, 1)
    identity = make_verifier(issuer, fetcher, status_check="off").verify(
        present(wallet, issue(issuer, wallet)), expected=EXPECTED, at=AT
    )
    assert fetcher.requests == []
    assert identity.status_reference == {"uri": STATUS_URI, "idx": STATUS_IDX}


def test_a_verified_status_list_is_reused_for_status_cache_seconds_then_fetched_again(
    issuer: Issuer, wallet: Wallet
) -> None:
    """The anchor's ``status_cache`` (default 300 s): later logins read the verified list
    again; a revocation published meanwhile refuses the first login after the list went stale."""
    fetcher = InMemoryFetcher()
    serve_status(fetcher, issuer, 0)
    verifier = make_verifier(issuer, fetcher)
    presentation = present(wallet, issue(issuer, wallet))
    verifier.verify(presentation, expected=EXPECTED, at=AT)
    serve_status(fetcher, issuer, 1, bits=1)  # revoked at the issuer from now on
    verifier.verify(
        present(wallet, issue(issuer, wallet), iat=AT + 294), expected=EXPECTED, at=AT + 299
    )
    assert len(fetcher.requests) == 1
    late = present(wallet, issue(issuer, wallet), iat=AT + 295)
    with pytest.raises(AnchorFailure) as caught:
        verifier.verify(late, expected=EXPECTED, at=AT + 300)
    assert caught.value.reason == "credential_revoked"
    assert len(fetcher.requests) == 2


def test_status_cache_zero_fetches_the_list_on_every_login(issuer: Issuer, wallet: Wallet) -> None:
    fetcher = InMemoryFetcher()
    serve_status(fetcher, issuer, 0)
    verifier = make_verifier(issuer, fetcher, status_cache=0)
    verifier.verify(present(wallet, issue(issuer, wallet)), expected=EXPECTED, at=AT)
    serve_status(fetcher, issuer, 1, bits=1)
    refused(verifier, present(wallet, issue(issuer, wallet)), "credential_revoked")
    assert len(fetcher.requests) == 2


def test_a_status_list_is_not_reused_past_its_own_ttl(issuer: Issuer, wallet: Wallet) -> None:
    fetcher = InMemoryFetcher()
    serve_status(fetcher, issuer, 0, ttl=30)
    verifier = make_verifier(issuer, fetcher)
    verifier.verify(present(wallet, issue(issuer, wallet)), expected=EXPECTED, at=AT)
    verifier.verify(
        present(wallet, issue(issuer, wallet), iat=AT + 24), expected=EXPECTED, at=AT + 29
    )
    assert len(fetcher.requests) == 1
    late = present(wallet, issue(issuer, wallet), iat=AT + 25)
    verifier.verify(late, expected=EXPECTED, at=AT + 30)
    assert len(fetcher.requests) == 2


def test_a_status_list_failure_is_not_cached(issuer: Issuer, wallet: Wallet) -> None:
    fetcher = InMemoryFetcher()
    verifier = make_verifier(issuer, fetcher)
    presentation = present(wallet, issue(issuer, wallet))
    refused(verifier, presentation, "status_unavailable")
    serve_status(fetcher, issuer, 0)
    verifier.verify(present(wallet, issue(issuer, wallet)), expected=EXPECTED, at=AT)
    assert len(fetcher.requests) == 2


def test_status_list_signed_by_another_key(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    serve_status(fetcher, issuer, 0, key=Issuer.generate().jwk)
    refused(
        make_verifier(issuer, fetcher),
        present(wallet, issue(issuer, wallet)),
        "status_list_invalid",
    )


@pytest.mark.parametrize(
    "options",
    [
        {"sub": "https://pid-issuer.example/status/2"},
        {"exp": AT - 60},
        {"typ": "JWT"},
    ],
    ids=["sub-mismatch", "expired", "typ-wrong"],
)
def test_status_list_token_not_acceptable(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher, options: dict[str, Any]
) -> None:
    serve_status(fetcher, issuer, 0, **options)
    refused(
        make_verifier(issuer, fetcher),
        present(wallet, issue(issuer, wallet)),
        "status_list_invalid",
    )


def test_status_index_beyond_the_list(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet, status=(STATUS_URI, 4096)))
    refused(make_verifier(issuer, fetcher), presentation, "status_list_invalid")


# -- sizes and robustness ---------------------------------------------------------------------


def test_thousands_of_disclosures_fail_cleanly_and_quickly(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    roomy = LimitSettings(
        max_body_bytes=1 << 22,
        max_jws_bytes=16384,
        max_json_depth=8,
        max_authorization_details=16,
        max_disclosures=128,
    )
    flood = "~".join(make_disclosure(f"c{i}", i) for i in range(5000))
    presentation = present(wallet, issue(issuer, wallet) + flood + "~")
    verifier = make_verifier(issuer, fetcher, limits=roomy)
    started = time.perf_counter()
    refused(verifier, presentation, "too_many_disclosures")
    assert time.perf_counter() - started < 0.5
    # With the default body limit the same flood is refused on size alone.
    refused(make_verifier(issuer, fetcher), presentation, "presentation_too_large")


def test_oversize_disclosure_is_refused(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    huge = make_disclosure("blob", "x" * 20000)
    presentation = present(wallet, issue(issuer, wallet) + huge + "~")
    refused(make_verifier(issuer, fetcher), presentation, "presentation_too_large")


def test_deeply_nested_disclosure_is_refused(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    deep: Any = "x"
    for _ in range(20):
        deep = [deep]
    nested = make_disclosure("deep", deep)
    payload = issuer.base_payload(wallet, iat=AT - 60, sub="p-1", _sd=[digest(nested)])
    refused(
        make_verifier(issuer, fetcher, status_check="off"),
        present(wallet, issuer.sign(payload) + f"~{nested}~"),
        "malformed_disclosure",
    )


@pytest.mark.parametrize(
    "evidence",
    ["", "~", "no-separator", "a.b.c", "~~~", "a.b.c~~", "日本~", 42, None],
    ids=repr,
)
def test_garbage_is_an_anchor_failure(issuer: Issuer, evidence: Any) -> None:
    with pytest.raises(AnchorFailure) as caught:
        make_verifier(issuer, None).verify(evidence, expected=EXPECTED, at=AT)
    assert caught.value.reason in REASONS


_SHARED: dict[str, Any] = {}


def _shared_presentation() -> tuple[SdJwtVcVerifier, str]:
    """One issuer/wallet/presentation for every hypothesis example (key generation is slow)."""
    if not _SHARED:
        issuer, wallet = Issuer.generate(), Wallet.generate()
        served = InMemoryFetcher()
        served.serve(STATUS_URI, issuer.status_list_token(STATUS_URI, [0] * 16, iat=AT - 60))
        _SHARED["verifier"] = make_verifier(issuer, served)
        _SHARED["wallet"] = wallet
        _SHARED["issuance"] = issue(issuer, wallet)
        _SHARED["presentation"] = present(wallet, _SHARED["issuance"])
    return _SHARED["verifier"], _SHARED["presentation"]


def _mutations() -> st.SearchStrategy[Callable[[str], str]]:
    position = st.integers(min_value=0, max_value=4000)
    text = st.text(alphabet="~.-_=/+ {}\"'abcAB019\x00é", max_size=8)

    def replace(i: int, t: str) -> Callable[[str], str]:
        return lambda s: s[: i % (len(s) + 1)] + t + s[i % (len(s) + 1) + len(t) :]

    def insert(i: int, t: str) -> Callable[[str], str]:
        return lambda s: s[: i % (len(s) + 1)] + t + s[i % (len(s) + 1) :]

    def delete(i: int, n: int) -> Callable[[str], str]:
        return lambda s: s[: i % (len(s) + 1)] + s[i % (len(s) + 1) + n :]

    def truncate(i: int) -> Callable[[str], str]:
        return lambda s: s[: i % (len(s) + 1)]

    def shuffle_parts(i: int) -> Callable[[str], str]:
        def apply(s: str) -> str:
            parts = s.split("~")
            k = i % len(parts)
            return "~".join(parts[k:] + parts[:k])

        return apply

    return st.one_of(
        st.builds(replace, position, text),
        st.builds(insert, position, text),
        st.builds(delete, position, st.integers(min_value=1, max_value=64)),
        st.builds(truncate, position),
        st.builds(shuffle_parts, position),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=4))
def test_mangled_presentations_only_raise_anchor_failure(
    mutations: list[Callable[[str], str]],
) -> None:
    verifier, presentation = _shared_presentation()
    for mutate in mutations:
        presentation = mutate(presentation)
    try:
        verifier.verify(presentation, expected=EXPECTED, at=AT)
    except AnchorFailure as failure:
        assert failure.reason in REASONS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=4))
def test_mangled_sd_jwt_with_a_fresh_key_binding_only_raises_anchor_failure(
    mutations: list[Callable[[str], str]],
) -> None:
    """Mutate the issuer JWT and Disclosures, then let the wallet bind the result, so that the
    sd_hash check passes and the disclosure and issuer parsers see the damage."""
    verifier, _ = _shared_presentation()
    sd_jwt = _SHARED["issuance"]
    for mutate in mutations:
        sd_jwt = mutate(sd_jwt)
    if not sd_jwt.endswith("~"):
        sd_jwt += "~"
    if not sd_jwt.isascii():
        return  # not something a wallet can sign over (sd_hash is over ASCII)
    presentation = present(_SHARED["wallet"], sd_jwt)
    try:
        verifier.verify(presentation, expected=EXPECTED, at=AT)
    except AnchorFailure as failure:
        assert failure.reason in REASONS


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"issuer": ""}, "issuer"),
        ({"jwks": None}, "jwks"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks"),
        ({"jwks_file": "issuer.jwks.json"}, "jwks_file"),
        ({"vct": []}, "vct"),
        ({"vct": "urn:x"}, "vct"),
        ({"subject_claim": None}, "subject_claim"),
        ({"claims": {"given_name": 1}}, "claims.given_name"),
        ({"trust_framework": None}, "trust_framework"),
        ({"status_check": "sometimes"}, "status_check"),
        ({"algs": ["HS256"]}, "algs"),
        ({"algs": ["none"]}, "algs"),
        ({"algs": ["ES384"]}, "jwks"),
        ({"holder_algs": ["HS256"]}, "holder_algs"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"accept_legacy_typ": "yes"}, "accept_legacy_typ"),
        ({"status_max_bytes": -1}, "status_max_bytes"),
        ({"status_cache": -1}, "status_cache"),
        ({"status_cache": 3601}, "status_cache"),
        ({"status_cache": True}, "status_cache"),
        ({"status_cache": 1.5}, "status_cache"),
        ({"jwks_uri": "https://x"}, "jwks_uri"),
        ({"transaction_data": ["account_link"]}, "transaction_data"),
        ({"transaction_data": "value_transfer"}, "transaction_data"),
    ],
)
def test_settings_errors_name_the_field(issuer: Issuer, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_settings(anchor_settings(issuer, **change))
    assert str(caught.value).startswith(f"{field}:")


def test_settings_defaults(issuer: Issuer) -> None:
    parsed = parse_settings(anchor_settings(issuer))
    assert parsed.algs == ("ES256",)
    assert parsed.evidence_type == "electronic_record"
    assert parsed.max_age is None
    assert parsed.accept_legacy_typ is True
    assert parsed.transaction_data == ()  # nothing sent unless declared or required
    assert set(parsed.keys) == {issuer.kid}
    with pytest.raises(TypeError):
        parsed.claims["x"] = "y"  # type: ignore[index]


def test_verifier_refuses_an_anchor_of_another_kind(issuer: Issuer) -> None:
    anchor = Anchor(
        id="bank",
        kind="oidc",
        display_name={},
        assurance_level="substantial",
        status="active",
        settings=anchor_settings(issuer),
    )
    with pytest.raises(ValueError, match="kind"):
        SdJwtVcVerifier(anchor, fetcher=None, limits=LIMITS, kb_max_age=KB_MAX_AGE)


# -- OpenID4VP transaction data claims of the Key Binding JWT (appendix B.3.3.1) ---------------


def test_kb_transaction_data_claims_are_returned_as_signed(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    hashes = ["fOBUSQvo46yQO-wRwXBcGqvnbKIueISEL961_Sjd4do"]
    presentation = present(
        wallet,
        issue(issuer, wallet),
        claims={"transaction_data_hashes": hashes, "transaction_data_hashes_alg": "sha-256"},
    )
    identity = make_verifier(issuer, fetcher).verify(presentation, expected=EXPECTED, at=AT)
    assert identity.transaction_data_hashes == tuple(hashes)
    assert identity.transaction_data_hashes_alg == "sha-256"
    assert identity.signed_operations == ()  # only the login method, which knows what it sent


def test_kb_without_transaction_data_claims_returns_none(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    presentation = present(wallet, issue(issuer, wallet))
    identity = make_verifier(issuer, fetcher).verify(presentation, expected=EXPECTED, at=AT)
    assert (identity.transaction_data_hashes, identity.transaction_data_hashes_alg) == (None, None)


@pytest.mark.parametrize(
    "claims",
    [
        {"transaction_data_hashes": []},
        {"transaction_data_hashes": "fOBUSQvo46yQO"},
        {"transaction_data_hashes": [1]},
        {"transaction_data_hashes": ["not base64url!"]},
        {"transaction_data_hashes": None},
        {"transaction_data_hashes": ["AAAA"] * 17},
        {"transaction_data_hashes_alg": "sha-256"},  # an algorithm without hashes
        {"transaction_data_hashes": ["AAAA"], "transaction_data_hashes_alg": ["sha-256"]},
        {"transaction_data_hashes": ["AAAA"], "transaction_data_hashes_alg": "sha 256"},
    ],
)
def test_malformed_kb_transaction_data_claims_are_refused(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher, claims: dict[str, Any]
) -> None:
    presentation = present(wallet, issue(issuer, wallet), claims=claims)
    refused(make_verifier(issuer, fetcher), presentation, "transaction_data_malformed")


def test_transaction_data_claims_count_only_under_a_valid_key_binding(
    issuer: Issuer, wallet: Wallet, fetcher: InMemoryFetcher
) -> None:
    """Claims signed by another key (or for another nonce) are never looked at."""
    claims = {"transaction_data_hashes": [1]}
    other = Wallet.generate()
    presentation = present(wallet, issue(issuer, wallet), claims=claims, signer=other)
    refused(make_verifier(issuer, fetcher), presentation, "kb_signature_invalid")
    presentation = present(wallet, issue(issuer, wallet), claims=claims, nonce="other-nonce-123")
    refused(make_verifier(issuer, fetcher), presentation, "kb_nonce_mismatch")


def test_declared_transaction_data_operations_are_kept_in_a_fixed_order(issuer: Issuer) -> None:
    both = ["funding", "value_transfer", "funding"]
    parsed = parse_settings(anchor_settings(issuer, transaction_data=both))
    assert parsed.transaction_data == ("value_transfer", "funding")
