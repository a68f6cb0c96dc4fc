"""ID tokens of an upstream OpenID Provider (anchor kind ``oidc``), made with joserfc and real
keys: the happy paths, one named test per SECURITY-CASES.md "Upstream OpenID Provider" line
(iss / aud / azp / nonce / exp mismatch, alg none or HS*, at_hash with an unknown alg), the
other checks of anchors/id_token.py, and a property: whatever arrives, only AnchorFailure."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey, RSAKey
from support.upstream_tokens import (
    ACCESS_TOKEN,
    AT,
    CLIENT_ID,
    DROP,
    ISSUER,
    NONCE,
    UpstreamOP,
    at_hash,
    b64url,
    b64url_json,
    hs256,
    provider,
    sign,
    unsigned,
)

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.id_token import REASONS, IdTokenClaims, validate_id_token
from trustanchor.anchors.oidc_provider import UpstreamProvider
from trustanchor.anchors.oidc_settings import parse_settings
from trustanchor.jose.jwk import PublicKey, public_key_from_jwk


@pytest.fixture(scope="module")
def op() -> UpstreamOP:
    return UpstreamOP()


@pytest.fixture
def rp(op: UpstreamOP) -> UpstreamProvider:
    return provider(op)


def validate(rp: UpstreamProvider, token: Any, **kw: Any) -> IdTokenClaims:
    options: dict[str, Any] = {"nonce": NONCE, "at": AT, "access_token": ACCESS_TOKEN, **kw}
    return rp.validate_id_token(token, **options)


def refused(reason: str, rp: UpstreamProvider, token: Any, **kw: Any) -> AnchorFailure:
    with pytest.raises(AnchorFailure) as caught:
        validate(rp, token, **kw)
    assert caught.value.reason == reason, caught.value
    assert reason in REASONS or reason.startswith("provider_")
    return caught.value


# -- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_a_token_signed_with_a_published_key_is_accepted(
    op: UpstreamOP, rp: UpstreamProvider, alg: str
) -> None:
    claims = validate(rp, op.id_token(alg=alg))
    assert (claims.issuer, claims.subject, claims.audience) == (
        ISSUER,
        "pairwise-7f3a",
        (CLIENT_ID,),
    )
    assert (claims.acr, claims.amr, claims.auth_time) == ("aal3", ("hwk", "pin"), AT - 10)
    assert claims.at_hash == at_hash(ACCESS_TOKEN)


def test_several_audiences_are_accepted_when_azp_is_our_client_id(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    claims = validate(rp, op.id_token(aud=[CLIENT_ID, "other-rp"], azp=CLIENT_ID))
    assert claims.audience == (CLIENT_ID, "other-rp") and claims.azp == CLIENT_ID


def test_exp_and_iat_get_the_clock_skew(op: UpstreamOP, rp: UpstreamProvider) -> None:
    validate(rp, op.id_token(exp=AT - 29, iat=AT + 29))


def test_a_token_without_at_hash_is_accepted_unless_the_provider_requires_it(
    op: UpstreamOP,
) -> None:
    token = op.id_token(at_hash=DROP)
    assert validate(provider(op), token).at_hash is None
    refused("at_hash_missing", provider(op, require_at_hash=True), token)


# -- SECURITY-CASES.md: Upstream OpenID Provider -----------------------------------------------


def test_iss_mismatch_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_wrong_issuer", rp, op.id_token(iss="https://evil-op.example"))


def test_iss_is_compared_exactly_not_up_to_a_trailing_slash(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    refused("id_token_wrong_issuer", rp, op.id_token(iss=ISSUER + "/"))


def test_aud_mismatch_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_wrong_audience", rp, op.id_token(aud="another-rp"))
    refused("id_token_wrong_audience", rp, op.id_token(aud=["another-rp", "third-rp"]))


def test_aud_of_the_wrong_type_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_wrong_audience", rp, op.id_token(aud={"client": CLIENT_ID}))
    refused("id_token_wrong_audience", rp, op.id_token(aud=[]))


def test_azp_mismatch_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_wrong_azp", rp, op.id_token(azp="another-rp"))


def test_several_audiences_without_azp_are_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_wrong_azp", rp, op.id_token(aud=[CLIENT_ID, "another-rp"]))


def test_nonce_mismatch_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_nonce_mismatch", rp, op.id_token(nonce="an-older-login-attempt"))
    refused("id_token_nonce_mismatch", rp, op.id_token(nonce=DROP))
    refused("id_token_nonce_mismatch", rp, op.id_token(nonce=["n"]))


def test_a_nonce_with_a_lone_surrogate_is_a_mismatch_not_a_crash(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    payload = json.dumps(op.claims(nonce="\ud800")).encode("ascii")  # the JSON escape \ud800
    token = jws.serialize_compact({"alg": "RS256", "kid": "rsa-1"}, payload, op.rsa)
    refused("id_token_nonce_mismatch", rp, token)


def test_exp_mismatch_expired_token_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_expired", rp, op.id_token(exp=AT - 30))
    refused("id_token_malformed", rp, op.id_token(exp=DROP))
    refused("id_token_malformed", rp, op.id_token(exp=float(AT + 300)))
    refused("id_token_malformed", rp, op.id_token(exp=True))


def test_iat_in_the_future_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_iat_in_future", rp, op.id_token(iat=AT + 31))
    refused("id_token_malformed", rp, op.id_token(iat=DROP))


def test_alg_none_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_malformed", rp, unsigned({"kid": "rsa-1"}, op.claims()))
    # With a dummy signature segment the alg itself is what is refused.
    refused("id_token_alg_not_allowed", rp, unsigned({"kid": "rsa-1"}, op.claims()) + "AA")


def test_hs256_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("id_token_alg_not_allowed", rp, hs256({}, op.claims(), b"shared-client-secret"))


def test_hs256_keyed_with_the_providers_public_rsa_key_is_refused(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    """The classic key confusion: the attacker HMACs with the published RSA key (its PEM and
    its JWK) as the secret and names the RSA key's kid; a verifier that lets the token's alg pick
    the algorithm for the RSA key would accept it."""
    for secret in (op.rsa.as_pem(private=False), op.rsa.as_bytes(private=False)):
        token = hs256({"kid": "rsa-1"}, op.claims(), secret)
        refused("id_token_alg_not_allowed", rp, token)


def test_hmac_is_refused_even_if_a_caller_lists_it(op: UpstreamOP) -> None:
    """HMAC can be neither configured (the settings parser) nor slipped in by a caller of the
    validation function (the JWS parser accepts asymmetric algorithms only)."""
    with pytest.raises(ValueError, match="algs: 'HS256'"):
        parse_settings(
            {
                "issuer": ISSUER,
                "client_id": CLIENT_ID,
                "trust_framework": "jp_aml",
                "algs": ["HS256"],
            },
            anchor_level="high",
        )
    rsa_public = public_key_from_jwk(op.published[0])
    token = hs256({"kid": "rsa-1"}, op.claims(), op.rsa.as_pem(private=False))
    with pytest.raises(AnchorFailure) as caught:
        validate_id_token(
            token,
            keys=lambda header: (rsa_public,),
            issuer=ISSUER,
            client_id=CLIENT_ID,
            nonce=NONCE,
            at=AT,
            algs=("HS256", "RS256"),
        )
    assert caught.value.reason == "id_token_alg_not_allowed"


def test_at_hash_with_an_unknown_alg_fails_closed(op: UpstreamOP) -> None:
    """An EdDSA ID token (OpenID Connect Core defines no at_hash hash for it) carrying a
    SHA-256 at_hash of the right access token: guessing the hash would accept it."""
    ed = OKPKey.generate_key("Ed25519", private=True)
    ed_public = public_key_from_jwk(dict(ed.as_dict(private=False)))
    token = sign({"kid": "ed-1"}, op.claims(), ed, alg="EdDSA")

    def check(**kw: Any) -> IdTokenClaims:
        return validate_id_token(
            token,
            keys=lambda header: (ed_public,),
            issuer=ISSUER,
            client_id=CLIENT_ID,
            nonce=NONCE,
            at=AT,
            algs=("EdDSA",),
            **kw,
        )

    with pytest.raises(AnchorFailure) as caught:
        check(access_token=ACCESS_TOKEN)
    assert caught.value.reason == "at_hash_alg_unknown"
    with pytest.raises(AnchorFailure) as caught:
        check()  # even before any access token is at hand
    assert caught.value.reason == "at_hash_alg_unknown"
    without = sign({"kid": "ed-1"}, op.claims(at_hash=DROP), ed, alg="EdDSA")
    with pytest.raises(AnchorFailure) as caught:
        validate_id_token(
            without,
            keys=lambda header: (ed_public,),
            issuer=ISSUER,
            client_id=CLIENT_ID,
            nonce=NONCE,
            at=AT,
            algs=("EdDSA",),
            at_hash_required=True,
        )
    assert caught.value.reason == "at_hash_missing"


def test_at_hash_of_another_access_token_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    refused("at_hash_mismatch", rp, op.id_token(at_hash=at_hash("another-access-token")))
    # the full hash instead of its left half
    full = b64url(hashlib.sha256(ACCESS_TOKEN.encode()).digest())
    refused("at_hash_mismatch", rp, op.id_token(at_hash=full))
    refused("id_token_malformed", rp, op.id_token(at_hash=12))


def test_at_hash_uses_the_hash_of_the_alg(op: UpstreamOP) -> None:
    rp = provider(op, algs=["RS384", "RS256"])
    good = sign(
        {"kid": "rsa-1"}, op.claims(at_hash=at_hash(ACCESS_TOKEN, "sha384")), op.rsa, alg="RS384"
    )
    validate(rp, good)
    sha256_one = sign({"kid": "rsa-1"}, op.claims(), op.rsa, alg="RS384")
    refused("at_hash_mismatch", rp, sha256_one)


# -- keys and signatures ------------------------------------------------------------------------


def test_a_token_signed_by_an_unpublished_key_is_refused(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    stranger = RSAKey.generate_key(2048, private=True)
    token = sign({"kid": "rsa-1"}, op.claims(), stranger, alg="RS256")
    refused("id_token_signature_invalid", rp, token)


def test_a_key_carried_in_the_header_is_never_trusted(op: UpstreamOP, rp: UpstreamProvider) -> None:
    stranger = RSAKey.generate_key(2048, private=True)
    jwk = dict(stranger.as_dict(private=False))
    token = sign(
        {"kid": "attacker", "jwk": jwk, "jku": "https://evil.example/jwks"},
        op.claims(),
        stranger,
        alg="RS256",
    )
    refused("unknown_provider_key", rp, token)
    token = sign({"jwk": jwk}, op.claims(), stranger, alg="RS256")  # no kid: every published key
    refused("id_token_signature_invalid", rp, token)


def test_a_signature_relabelled_with_another_alg_is_refused(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    token = op.id_token(alg="RS256")
    _header, payload, signature = token.split(".")
    relabelled = b64url_json({"alg": "PS256", "kid": "rsa-1"})
    refused("id_token_signature_invalid", rp, f"{relabelled}.{payload}.{signature}")
    ec_labelled = b64url_json({"alg": "ES256", "kid": "rsa-1"})  # the RSA key for ES256
    refused(
        "unknown_provider_key",
        provider(op, jwks_refetch_limit=1),
        f"{ec_labelled}.{payload}.{signature}",
    )


def test_an_alg_outside_the_anchors_allow_list_is_refused(op: UpstreamOP) -> None:
    rp = provider(op, algs=["ES256"])
    refused("id_token_alg_not_allowed", rp, op.id_token(alg="RS256"))


def test_a_changed_payload_breaks_the_signature(op: UpstreamOP, rp: UpstreamProvider) -> None:
    header, _, signature = op.id_token().split(".")
    forged = b64url_json(op.claims(sub="someone-else"))
    refused("id_token_signature_invalid", rp, f"{header}.{forged}.{signature}")


# -- shape and other claims ---------------------------------------------------------------------


def test_a_jwe_is_refused(rp: UpstreamProvider) -> None:
    jwe = ".".join([b64url_json({"alg": "RSA-OAEP", "enc": "A256GCM"}), "AA", "AA", "AA", "AA"])
    refused("id_token_encrypted", rp, jwe)


def test_an_oversized_token_is_refused_before_any_key_is_looked_up(op: UpstreamOP) -> None:
    looked_up: list[Mapping[str, Any]] = []

    def keys(header: Mapping[str, Any]) -> Sequence[PublicKey]:
        looked_up.append(header)
        return ()

    token = op.id_token(padding="x" * 20000)
    with pytest.raises(AnchorFailure) as caught:
        validate_id_token(
            token,
            keys=keys,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            nonce=NONCE,
            at=AT,
            algs=("RS256",),
        )
    assert caught.value.reason == "id_token_too_large" and looked_up == []


def test_a_token_that_is_not_an_id_token_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    token = sign({"kid": "rsa-1", "typ": "logout+jwt"}, op.claims(), op.rsa, alg="RS256")
    refused("id_token_wrong_typ", rp, token)
    token = sign({"kid": "rsa-1", "typ": "at+jwt"}, op.claims(), op.rsa, alg="RS256")
    refused("id_token_wrong_typ", rp, token)


def test_a_missing_or_unusable_sub_is_refused(op: UpstreamOP, rp: UpstreamProvider) -> None:
    for sub in (DROP, "", "x" * 256, 42, "line\nbreak"):
        refused("id_token_missing_subject", rp, op.id_token(sub=sub))


def test_with_max_age_auth_time_is_required_and_checked(
    op: UpstreamOP, rp: UpstreamProvider
) -> None:
    assert validate(rp, op.id_token(auth_time=AT - 60), max_age=60).auth_time == AT - 60
    refused("login_too_old", rp, op.id_token(auth_time=AT - 120), max_age=60)
    refused("auth_time_missing", rp, op.id_token(auth_time=DROP), max_age=600)
    refused("auth_time_in_future", rp, op.id_token(auth_time=AT + 120))
    refused("id_token_malformed", rp, op.id_token(auth_time="yesterday"))
    # without max_age, no auth_time is needed
    assert validate(rp, op.id_token(auth_time=DROP)).auth_time is None


def test_malformed_amr_is_dropped_and_odd_acr_ignored(op: UpstreamOP, rp: UpstreamProvider) -> None:
    claims = validate(rp, op.id_token(amr="pin", acr=3))
    assert claims.amr == () and claims.acr is None


# -- property: nothing but AnchorFailure ----------------------------------------------------------

_SEGMENT = st.one_of(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60
    ),
    st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    st.text(max_size=20),
    st.builds(
        b64url_json,
        st.dictionaries(
            st.sampled_from(["alg", "kid", "typ", "crit", "zip", "b64", "jwk", "enc"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(max_size=8),
                st.sampled_from(["RS256", "ES256", "none", "HS256", "PS256"]),
                st.lists(st.text(max_size=4), max_size=2),
            ),
            max_size=4,
        ),
    ),
    st.builds(
        b64url_json,
        st.dictionaries(
            st.sampled_from(
                [
                    "iss",
                    "sub",
                    "aud",
                    "azp",
                    "nonce",
                    "exp",
                    "iat",
                    "auth_time",
                    "at_hash",
                    "amr",
                    "acr",
                ]
            ),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False),
                st.text(max_size=8),
                st.lists(st.text(max_size=4), max_size=3),
                st.just(NONCE),
                st.just(ISSUER),
                st.just(CLIENT_ID),
            ),
            max_size=11,
        ),
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    segments=st.lists(_SEGMENT, min_size=0, max_size=6),
    separator=st.sampled_from([".", ".", "..", " ", "~"]),
)
def test_property_anything_arriving_raises_only_anchor_failure(
    rp: UpstreamProvider, segments: list[str], separator: str
) -> None:
    token = separator.join(segments)
    with pytest.raises(AnchorFailure):
        validate(rp, token)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_property_a_mangled_valid_token_raises_only_anchor_failure(
    op: UpstreamOP, rp: UpstreamProvider, data: st.DataObject
) -> None:
    token = op.id_token()
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.text(max_size=3))
    mangled = token[:position] + replacement + token[position + 1 :]
    if mangled == token:
        return
    try:
        validate(rp, mangled)
    except AnchorFailure:
        return
    # A change that still verifies can only be a base64url no-op (unused trailing bits).
    assert [_decoded(part) for part in mangled.split(".")] == [
        _decoded(part) for part in token.split(".")
    ]


def _decoded(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("value", [None, 42, b"bytes", ["a.b.c"], "a.b.c", "", "..", "." * 5])
def test_non_tokens_raise_anchor_failure(rp: UpstreamProvider, value: Any) -> None:
    with pytest.raises(AnchorFailure):
        validate(rp, value)
