"""trustanchor.ledger: the access token and its DPoP proof at the ledger.

Tokens are signed by the service's own signing path (tests/support/ledger.py), proofs with real
keys. Named after the SECURITY-CASES.md lines they cover ("Tokens" and "DPoP" sections, resource
side) and after the reason codes of docs/LEDGER.md.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from support.ledger import (
    ANCHOR_SET,
    AT,
    AUDIENCE,
    CLIENT_ID,
    ISSUER,
    LEDGER_URL,
    TRANSFER_LIFETIME,
    Intermediary,
    ServiceIssuer,
    make_verifier,
    transfer_entry,
)

from trustanchor.clock import FixedClock
from trustanchor.digests import b64url_encode
from trustanchor.jose import jws
from trustanchor.jose.jwk import public_jwk
from trustanchor.ledger import (
    REASONS,
    InMemoryReplayStore,
    LedgerRefusal,
    LedgerTokenVerifier,
    VerifiedAccessToken,
)
from trustanchor.ledger.token_check import proof_refusal
from trustanchor.oauth.errors import InvalidDpopProof
from trustanchor.oauth.jwt_tokens import TokenSigner

LEEWAY = 30


@pytest.fixture
def issuer(tmp_path: Path) -> ServiceIssuer:
    return ServiceIssuer(tmp_path / "keys")


@pytest.fixture
def client() -> Intermediary:
    return Intermediary()


@pytest.fixture
def replay() -> InMemoryReplayStore:
    return InMemoryReplayStore()


@pytest.fixture
def verifier(issuer: ServiceIssuer, replay: InMemoryReplayStore) -> LedgerTokenVerifier:
    return make_verifier(issuer, replay, leeway=LEEWAY)


def present(
    verifier: LedgerTokenVerifier,
    token: str,
    proof: str | list[str] | None,
    *,
    scheme: str = "DPoP",
    at: int = AT,
) -> VerifiedAccessToken:
    return verifier.verify(f"{scheme} {token}", proof, method="POST", url=LEDGER_URL, at=at)


def refused(reason: str, verifier: LedgerTokenVerifier, *args: Any, **kwargs: Any) -> LedgerRefusal:
    with pytest.raises(LedgerRefusal) as caught:
        present(verifier, *args, **kwargs)
    assert caught.value.reason == reason, caught.value.log_detail
    error, status, _ = REASONS[reason]
    assert (caught.value.error, caught.value.status) == (error, status)
    return caught.value


# -- accepted ----------------------------------------------------------------------------------


def test_transfer_token_with_matching_proof_is_accepted(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    verified = present(verifier, token, client.proof(token))
    assert verified.issuer == ISSUER
    assert verified.audience == (AUDIENCE,)
    assert verified.client_id == CLIENT_ID
    assert verified.jkt == client.jkt
    assert verified.anchor_set == ANCHOR_SET
    assert verified.exp == AT + TRANSFER_LIFETIME
    assert verified.valid_until == AT + TRANSFER_LIFETIME + LEEWAY
    assert [dict(d) for d in verified.authorization_details] == [transfer_entry()]
    assert verified.proof.jkt == client.jkt
    assert verified.token == token


def test_eddsa_service_key_and_eddsa_proof_are_accepted(
    tmp_path: Path, replay: InMemoryReplayStore
) -> None:
    issuer = ServiceIssuer(tmp_path / "ed", alg="EdDSA")
    client = Intermediary(key=ed25519.Ed25519PrivateKey.generate(), alg="EdDSA")
    token = issuer.transfer_token(jkt=client.jkt)
    verified = present(make_verifier(issuer, replay), token, client.proof(token))
    assert verified.jkt == client.jkt


def test_audience_list_containing_the_ledger_is_accepted(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt, aud=["https://other.example", AUDIENCE])
    assert present(verifier, token, client.proof(token)).audience == (
        "https://other.example",
        AUDIENCE,
    )


def test_authorization_scheme_is_case_insensitive(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    present(verifier, token, client.proof(token), scheme="dpop")


def test_static_jwks_as_json_text_is_accepted(
    issuer: ServiceIssuer, client: Intermediary, replay: InMemoryReplayStore
) -> None:
    verifier = LedgerTokenVerifier(
        ISSUER, AUDIENCE, json.dumps(issuer.jwks()), replay=replay, clock=FixedClock(AT)
    )
    token = issuer.transfer_token(jkt=client.jkt)
    assert present(verifier, token, client.proof(token)).jkt == client.jkt


def test_verify_reads_the_clock_when_no_instant_is_given(
    issuer: ServiceIssuer, client: Intermediary, replay: InMemoryReplayStore
) -> None:
    clock = FixedClock(AT + TRANSFER_LIFETIME + LEEWAY)
    verifier = make_verifier(issuer, replay, clock, leeway=LEEWAY)
    token = issuer.transfer_token(jkt=client.jkt)
    with pytest.raises(LedgerRefusal) as caught:
        verifier.verify(f"DPoP {token}", client.proof(token), method="POST", url=LEDGER_URL)
    assert caught.value.reason == "token_expired"


# -- the Authorization header ------------------------------------------------------------------


def test_no_authorization_header_is_token_missing(
    verifier: LedgerTokenVerifier, client: Intermediary
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        verifier.verify(None, client.proof(None), method="POST", url=LEDGER_URL, at=AT)
    assert caught.value.reason == "token_missing"
    assert caught.value.status == 401


def test_dpop_scheme_without_a_token_is_token_missing(
    verifier: LedgerTokenVerifier, client: Intermediary
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        verifier.verify("DPoP ", client.proof(None), method="POST", url=LEDGER_URL, at=AT)
    assert caught.value.reason == "token_missing"


def test_two_authorization_headers_are_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    with pytest.raises(LedgerRefusal) as caught:
        verifier.verify(
            [f"DPoP {token}", f"DPoP {token}"],
            client.proof(token),
            method="POST",
            url=LEDGER_URL,
            at=AT,
        )
    assert (caught.value.reason, caught.value.status) == ("multiple_authorization_headers", 400)


def test_dpop_bound_token_presented_as_bearer_is_refused_401(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_scheme_required", verifier, token, client.proof(token), scheme="Bearer")
    refused("dpop_scheme_required", verifier, token, None, scheme="Bearer")


# -- the access token (RFC 9068) ---------------------------------------------------------------


def test_id_token_presented_as_access_token_is_refused_401(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    id_token = issuer.id_token(
        sub="s", aud=AUDIENCE, iat=AT, exp=AT + 60, jti="id-1", client_id=CLIENT_ID
    )
    refused("wrong_typ", verifier, id_token, client.proof(id_token))


def test_foreign_token_signed_by_another_issuer_is_refused_401(
    verifier: LedgerTokenVerifier, tmp_path: Path, client: Intermediary
) -> None:
    foreign = ServiceIssuer(tmp_path / "foreign")  # same iss, same claims, another key
    token = foreign.transfer_token(jkt=client.jkt)
    refused("unknown_key", verifier, token, client.proof(token))


def test_token_with_wrong_aud_is_refused_401(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt, aud="https://other-ledger.example")
    refused("wrong_audience", verifier, token, client.proof(token))


@pytest.mark.parametrize("aud", [None, [], 7, {"aud": AUDIENCE}])
def test_token_without_usable_aud_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary, aud: object
) -> None:
    claims = issuer.claims(jkt=client.jkt)
    claims.pop("aud")
    if aud is not None:
        claims["aud"] = aud
    token = issuer.signer.access_token(claims)
    refused("wrong_audience", verifier, token, client.proof(token))


def test_token_from_another_issuer_name_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    other = TokenSigner(issuer.store, issuer="https://as.example.com/other")
    token = other.access_token(issuer.claims(jkt=client.jkt))
    refused("wrong_issuer", verifier, token, client.proof(token))


def test_token_signed_by_another_key_under_a_known_kid_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    kid = issuer.store.current().kid
    forged = jws.sign(
        {**issuer.claims(jkt=client.jkt), "iss": ISSUER},
        ec.generate_private_key(ec.SECP256R1()),
        alg="ES256",
        headers={"typ": "at+jwt", "kid": kid},
    )
    refused("bad_signature", verifier, forged, client.proof(forged))


def test_token_without_kid_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    key = issuer.store.current().private_key
    token = jws.sign(
        {**issuer.claims(jkt=client.jkt), "iss": ISSUER},
        key,
        alg="ES256",
        headers={"typ": "at+jwt"},
    )
    refused("unknown_key", verifier, token, client.proof(token))


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_token_with_alg_none_or_hs256_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary, alg: str
) -> None:
    header = {"alg": alg, "typ": "at+jwt", "kid": issuer.store.current().kid}
    claims = {**issuer.claims(jkt=client.jkt), "iss": ISSUER}
    token = (
        ".".join(b64url_encode(json.dumps(part).encode()) for part in (header, claims))
        + "."
        + b64url_encode(b"\x00" * 32)
    )
    refused("alg_not_allowed", verifier, token, client.proof(token))


def test_token_alg_outside_the_ledger_allow_list_is_refused(
    issuer: ServiceIssuer, client: Intermediary, replay: InMemoryReplayStore
) -> None:
    verifier = make_verifier(issuer, replay, algs=("EdDSA",))
    token = issuer.transfer_token(jkt=client.jkt)  # ES256
    refused("alg_not_allowed", verifier, token, client.proof(token))


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b", "a.b.c.d.e", "x" * 20000])
def test_malformed_token_is_refused(
    verifier: LedgerTokenVerifier, client: Intermediary, garbage: str
) -> None:
    refused("token_malformed", verifier, garbage, client.proof(garbage))


def test_expired_token_is_refused_after_the_leeway(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    last = AT + TRANSFER_LIFETIME + LEEWAY - 1
    present(verifier, token, client.proof(token, at=last), at=last)
    token = issuer.transfer_token(jkt=client.jkt)
    first_refused = AT + TRANSFER_LIFETIME + LEEWAY
    proof = client.proof(token, at=first_refused)
    refused("token_expired", verifier, token, proof, at=first_refused)


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_token_from_the_future_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary, claim: str
) -> None:
    token = issuer.transfer_token(jkt=client.jkt, **{claim: AT + LEEWAY + 1})
    refused("token_not_yet_valid", verifier, token, client.proof(token))


@pytest.mark.parametrize("claim", ["jti", "sub", "client_id", "exp", "iat"])
def test_token_without_a_required_claim_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary, claim: str
) -> None:
    claims = issuer.claims(jkt=client.jkt)
    claims.pop(claim)
    token = issuer.signer.access_token(claims)
    refused("missing_claim", verifier, token, client.proof(token))


@pytest.mark.parametrize(
    ("claim", "value"), [("exp", "1700000060"), ("iat", True), ("jti", ""), ("sub", 7)]
)
def test_token_with_a_claim_of_the_wrong_type_is_refused(
    verifier: LedgerTokenVerifier,
    issuer: ServiceIssuer,
    client: Intermediary,
    claim: str,
    value: object,
) -> None:
    token = issuer.transfer_token(jkt=client.jkt, **{claim: value})
    refused("missing_claim", verifier, token, client.proof(token))


@pytest.mark.parametrize("cnf", [None, {}, {"jkt": ""}, {"jwk": {}}, "jkt"])
def test_token_not_dpop_bound_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary, cnf: object
) -> None:
    claims = issuer.claims(jkt=None)
    if cnf is not None:
        claims["cnf"] = cnf
    token = issuer.signer.access_token(claims)
    refused("not_dpop_bound", verifier, token, client.proof(token))


# -- the DPoP proof (RFC 9449) -----------------------------------------------------------------


def test_no_dpop_header_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_proof_missing", verifier, token, None)
    refused("dpop_proof_missing", verifier, token, [])


def test_two_dpop_headers_are_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_proof_repeated", verifier, token, [client.proof(token), client.proof(token)])


def test_two_dpop_proofs_folded_into_one_header_are_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_proof_repeated", verifier, token, f"{client.proof(token)}, {client.proof(token)}")


def test_ath_missing_is_refused_401(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_ath_missing", verifier, token, client.proof(None))


def test_ath_wrong_is_refused_401(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    other = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_ath_mismatch", verifier, token, client.proof(other))


def test_proof_key_thumbprint_not_cnf_jkt_is_refused_401(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    thief = Intermediary()
    refused("dpop_key_mismatch", verifier, token, thief.proof(token))


def test_htm_differs_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_htm_mismatch", verifier, token, client.proof(token, method="GET"))


@pytest.mark.parametrize(
    "htu",
    [
        "https://evil.example.com/transfers",
        "https://ledger.example.com/other",
        "http://ledger.example.com/transfers",
        "https://ledger.example.com:8443/transfers",
    ],
)
def test_htu_names_another_host_or_path_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary, htu: str
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_htu_mismatch", verifier, token, client.proof(token, url=htu))


def test_htu_differing_only_in_case_and_default_port_is_accepted(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    present(verifier, token, client.proof(token, url="HTTPS://Ledger.Example.com:443/transfers"))


def test_iat_an_hour_off_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_iat_window", verifier, token, client.proof(token, at=AT - 3600))
    refused("dpop_iat_window", verifier, token, client.proof(token, at=AT + 3600))


def test_iat_a_few_seconds_off_is_accepted(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    present(verifier, token, client.proof(token, at=AT - 5))


def test_jti_reused_inside_the_window_is_refused(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    proof = client.proof(token)
    present(verifier, token, proof)
    refused("dpop_jti_replay", verifier, token, proof)


def test_proof_jti_is_recorded_in_the_dpop_namespace(
    verifier: LedgerTokenVerifier,
    issuer: ServiceIssuer,
    client: Intermediary,
    replay: InMemoryReplayStore,
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    proof = client.proof(token, jti="proof-jti")
    present(verifier, token, proof)
    assert replay.consume(f"{client.jkt}:proof-jti", AT + 120, namespace="dpop") is False
    assert replay.consume(token_jti(token), AT + 120) is True  # token not spent


def token_jti(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


@pytest.mark.parametrize(
    ("header", "drop", "reason"),
    [
        ({"typ": "JWT"}, (), "dpop_proof_invalid"),
        ({"typ": "at+jwt"}, (), "dpop_proof_invalid"),
        ({}, ("jwk",), "dpop_jwk_missing"),
        ({}, ("jti",), "dpop_claim_missing"),
        ({}, ("htm",), "dpop_claim_missing"),
        ({}, ("htu",), "dpop_claim_missing"),
        ({}, ("iat",), "dpop_iat_missing"),
    ],
)
def test_typ_wrong_or_member_missing_is_rejected(
    verifier: LedgerTokenVerifier,
    issuer: ServiceIssuer,
    client: Intermediary,
    header: dict[str, Any],
    drop: tuple[str, ...],
    reason: str,
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    body: dict[str, Any] = {
        "jti": "p-1",
        "htm": "POST",
        "htu": LEDGER_URL,
        "iat": AT,
        "ath": b64url_encode(hashlib.sha256(token.encode()).digest()),
    }
    hdr: dict[str, Any] = {"typ": "dpop+jwt", "jwk": public_jwk(client.key), **header}
    for name in drop:
        body.pop(name, None)
        hdr.pop(name, None)
    proof = jwt.encode(body, client.key, algorithm="ES256", headers=hdr)
    refused(reason, verifier, token, proof)


def test_jwk_with_private_material_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    private = client.key.private_numbers().private_value  # type: ignore[union-attr]
    jwk = {**public_jwk(client.key), "d": b64url_encode(private.to_bytes(32, "big"))}
    proof = client.proof(token)
    header = {"typ": "dpop+jwt", "jwk": jwk}
    body = jwt.decode(proof, options={"verify_signature": False})
    refused("dpop_proof_invalid", verifier, token, jwt.encode(body, client.key, "ES256", header))


def test_symmetric_dpop_proof_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    body = {"jti": "p", "htm": "POST", "htu": LEDGER_URL, "iat": AT}
    proof = (
        ".".join(b64url_encode(json.dumps(part).encode()) for part in (header, body))
        + "."
        + b64url_encode(b"\x01" * 32)
    )
    refused("dpop_proof_invalid", verifier, token, proof)


# -- DPoP nonces (a choice of the ledger) ------------------------------------------------------


def test_nonce_required_when_configured_and_accepted_on_retry(
    issuer: ServiceIssuer, client: Intermediary, replay: InMemoryReplayStore
) -> None:
    verifier = make_verifier(issuer, replay, dpop_nonce_key=b"n" * 32)
    token = issuer.transfer_token(jkt=client.jkt)
    refusal = refused("dpop_nonce_required", verifier, token, client.proof(token))
    assert refusal.nonce is not None
    assert refusal.response_headers(dpop_algs=verifier.dpop_algs)["DPoP-Nonce"] == refusal.nonce
    verified = present(verifier, token, client.proof(token, nonce=refusal.nonce))
    assert verified.jkt == client.jkt


def test_forged_nonce_is_refused(
    issuer: ServiceIssuer, client: Intermediary, replay: InMemoryReplayStore
) -> None:
    verifier = make_verifier(issuer, replay, dpop_nonce_key=b"n" * 32)
    token = issuer.transfer_token(jkt=client.jkt)
    forged = f"{AT}.{'A' * 43}"
    refused("dpop_nonce_required", verifier, token, client.proof(token, nonce=forged))


def test_without_nonce_key_no_nonce_is_needed_or_issued(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    present(verifier, token, client.proof(token))
    with pytest.raises(ValueError, match="without DPoP nonces"):
        verifier.issue_dpop_nonce()


# -- configuration and the refusal type --------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"algs": ("HS256",)},
        {"algs": ("ES256", "none")},
        {"algs": "ES256"},
        {"algs": ()},
        {"dpop_algs": ("ES256", "HS256")},
        {"dpop_iat_leeway": -1},
        {"dpop_nonce_key": b"short"},
        {"leeway": -1},
        {"leeway": 301},
    ],
)
def test_unsafe_configuration_is_refused(
    issuer: ServiceIssuer, replay: InMemoryReplayStore, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        make_verifier(issuer, replay, **options)


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown ledger refusal reason"):
        LedgerRefusal("looks_fine_to_me")


def test_refusal_answers_with_a_dpop_challenge() -> None:
    refusal = LedgerRefusal("dpop_key_mismatch")
    headers = refusal.response_headers(dpop_algs=("ES256", "EdDSA"))
    assert headers == {
        "WWW-Authenticate": 'DPoP error="invalid_dpop_proof", '
        'error_description="DPoP proof key is not the token\'s key", algs="ES256 EdDSA"'
    }
    assert refusal.body() == {
        "error": "invalid_dpop_proof",
        "error_description": "DPoP proof key is not the token's key",
        "reason": "dpop_key_mismatch",
    }
    assert LedgerRefusal("invalid_instruction").response_headers(dpop_algs=("ES256",)) == {}


def test_ledger_module_imports_no_framework_and_no_service_code() -> None:
    code = (
        "import sys, trustanchor.ledger\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug') or "
        "m.startswith(('trustanchor.services', 'trustanchor.storage', 'trustanchor.web', "
        "'trustanchor.keystore', 'trustanchor.policy'))]\n"
        "print(','.join(sorted(bad)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_proof_jwk_not_fitting_its_alg_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    body = jwt.decode(client.proof(token), options={"verify_signature": False})
    header = {"typ": "dpop+jwt", "jwk": public_jwk(client.key)}  # an EC key, signed EdDSA
    refused("dpop_jwk_alg", verifier, token, jwt.encode(body, ed_key, "EdDSA", header))


def test_proof_jti_too_long_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_jti_too_long", verifier, token, client.proof(token, jti="j" * 257))


def test_proof_iat_not_an_integer_is_rejected(
    verifier: LedgerTokenVerifier, issuer: ServiceIssuer, client: Intermediary
) -> None:
    token = issuer.transfer_token(jkt=client.jkt)
    refused("dpop_iat_malformed", verifier, token, client.proof(token, iat=str(AT)))


def test_proof_refusal_code_unknown_to_the_ledger_is_still_a_refused_proof() -> None:
    refusal = proof_refusal(InvalidDpopProof("DPoP proof refused", reason="dpop_new_check"))
    assert (refusal.reason, refusal.error, refusal.status) == (
        "dpop_proof_invalid",
        "invalid_dpop_proof",
        401,
    )
    assert refusal.log_detail.startswith("dpop_new_check: ")


def test_every_reason_code_has_a_test() -> None:
    """docs/LEDGER.md promises each code below; each must be asserted by some ledger test."""
    sources = "".join(
        path.read_text(encoding="utf-8")
        for directory in (Path(__file__).parent, Path(__file__).parents[1] / "storage")
        for path in directory.glob("test_ledger_*.py")
    )
    assert [reason for reason in REASONS if f'"{reason}"' not in sources] == []
