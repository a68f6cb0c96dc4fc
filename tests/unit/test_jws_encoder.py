"""The direct compact-JWS encoder (``trustanchor.jose.jws_encoder``) and ``TokenSigner`` on it.

Every token it makes must verify with two implementations that are not ours: PyJWT and joserfc,
for every algorithm the signing keystore issues keys for, with hypothesis-generated claim sets;
the header is exactly ``alg``, ``kid``, ``typ``; the payload is the claims' compact UTF-8 JSON.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws as joserfc_jws
from joserfc.jwk import JWKRegistry

from trustanchor.digests import b64url_decode
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PrivateKey, public_jwk
from trustanchor.jose.jws_encoder import SUPPORTED_ALGS, CompactSigner
from trustanchor.keystore.signing_keys import SigningKeyStore, generate_key, new_private_key, rotate
from trustanchor.oauth.jwt_tokens import AccessTokenVerifier, TokenSigner

ISSUER = "https://as.example.com"
KEYSTORE_ALGS = ("ES256", "EdDSA")  # what signing_keys.new_private_key makes
_KEYS: dict[str, PrivateKey] = {alg: new_private_key(alg) for alg in KEYSTORE_ALGS}

_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
_TEXT = st.text(max_size=40)  # any code point but surrogates: BMP, astral, controls, quotes
_SCALAR = st.none() | st.booleans() | _INT | _TEXT
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
_CLAIMS = st.dictionaries(_TEXT, _VALUE, max_size=8)


def _compact_utf8(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _verify_with_pyjwt(token: str, key: PrivateKey, alg: str) -> tuple[dict[str, Any], bytes]:
    decoded = jwt.PyJWS().decode_complete(token, key=key.public_key(), algorithms=[alg])
    return decoded["header"], decoded["payload"]


def _verify_with_joserfc(token: str, key: PrivateKey, alg: str) -> tuple[dict[str, Any], bytes]:
    jwk: dict[str, str | list[str]] = {**public_jwk(key)}
    public = JWKRegistry.import_key(jwk)
    with warnings.catch_warnings():  # joserfc flags "EdDSA" as deprecated by RFC 9864
        warnings.simplefilter("ignore")
        result = joserfc_jws.deserialize_compact(token, public, algorithms=[alg])
    assert result.payload is not None
    return dict(result.protected), result.payload


@pytest.mark.parametrize("alg", KEYSTORE_ALGS)
def test_every_keystore_alg_is_supported(alg: str) -> None:
    assert alg in SUPPORTED_ALGS


@pytest.mark.parametrize("alg", KEYSTORE_ALGS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims=_CLAIMS, typ=st.sampled_from(["at+jwt", "JWT", "kb+jwt"]))
def test_tokens_verify_with_pyjwt_and_joserfc(alg: str, claims: dict[str, Any], typ: str) -> None:
    key = _KEYS[alg]
    token = CompactSigner(key, alg=alg, kid="kid-1").sign(claims, typ=typ)
    expected_header = {"alg": alg, "kid": "kid-1", "typ": typ}
    for header, payload in (
        _verify_with_pyjwt(token, key, alg),
        _verify_with_joserfc(token, key, alg),
    ):
        assert header == expected_header
        assert payload == _compact_utf8(claims)
        assert json.loads(payload) == claims
    # and with our own verifier
    _, ours = jws.verify(token, key.public_key(), allowed_algs=(alg,), max_bytes=1 << 20, typ=typ)
    assert ours == claims


@pytest.mark.parametrize("alg", KEYSTORE_ALGS)
def test_header_and_payload_bytes(alg: str) -> None:
    claims = {"sub": "ユーザー", "emoji": "💴", "n": 2**53 - 1, "nested": {"a": [1, "é", None]}}
    signer = CompactSigner(_KEYS[alg], alg=alg, kid="k")
    header_b64, payload_b64, _ = signer.sign(claims, typ="at+jwt").split(".")
    assert b64url_decode(header_b64) == _compact_utf8({"alg": alg, "kid": "k", "typ": "at+jwt"})
    raw = b64url_decode(payload_b64)
    assert raw == _compact_utf8(claims)
    assert b"\\u" not in raw  # exact UTF-8, no ASCII escaping
    assert "=" not in header_b64 + payload_b64


def test_es256_signature_is_raw_fixed_width_r_s() -> None:
    key = _KEYS["ES256"]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signer = CompactSigner(key, alg="ES256", kid="k")
    short_halves = 0
    for i in range(2000):  # about 1 in 128 signatures has r or s below 2^248
        data, signature_b64 = signer.sign({"i": i}, typ="JWT").rsplit(".", 1)
        signature = b64url_decode(signature_b64)
        assert len(signature) == 64
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        short_halves += r < 2**248 or s < 2**248
        key.public_key().verify(
            encode_dss_signature(r, s), data.encode("ascii"), ec.ECDSA(hashes.SHA256())
        )
    assert short_halves > 0  # the zero-padded case was exercised


def test_header_is_encoded_once_per_typ() -> None:
    signer = CompactSigner(_KEYS["ES256"], alg="ES256", kid="k")
    first = signer.header_segment("at+jwt")
    assert signer.header_segment("at+jwt") is first
    assert signer.header_segment("JWT") != first
    assert signer.sign({}, typ="at+jwt").encode("ascii").startswith(first)


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("ES256", ec.generate_private_key(ec.SECP384R1())),
        ("ES256", ed25519.Ed25519PrivateKey.generate()),
        ("EdDSA", _KEYS["ES256"]),
        ("ES384", ec.generate_private_key(ec.SECP384R1())),
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("none", _KEYS["ES256"]),
        ("HS256", _KEYS["ES256"]),
    ],
)
def test_refuses_algs_and_keys_it_does_not_support(alg: str, key: PrivateKey) -> None:
    with pytest.raises(JoseError) as caught:
        CompactSigner(key, alg=alg, kid="k")
    assert caught.value.reason == "unsupported"


def test_refuses_an_empty_kid() -> None:
    with pytest.raises(JoseError) as caught:
        CompactSigner(_KEYS["ES256"], alg="ES256", kid="")
    assert caught.value.reason == "unsupported"


@pytest.mark.parametrize(
    "claims",
    [
        {"x": math.nan},
        {"x": math.inf},
        {"x": "\ud800"},  # lone surrogate: not encodable as UTF-8
        {"x": object()},
        {"x": b"bytes"},
    ],
)
def test_refuses_claims_that_are_not_json(claims: dict[str, Any]) -> None:
    with pytest.raises(JoseError) as caught:
        CompactSigner(_KEYS["ES256"], alg="ES256", kid="k").sign(claims, typ="JWT")
    assert caught.value.reason == "invalid_payload"


def test_refuses_a_payload_that_is_not_an_object() -> None:
    with pytest.raises(JoseError) as caught:
        CompactSigner(_KEYS["ES256"], alg="ES256", kid="k").sign([1, 2], typ="JWT")  # type: ignore[arg-type]
    assert caught.value.reason == "invalid_payload"


# --- TokenSigner on the direct encoder ---------------------------------------------------------


def _store(keys_dir: Path, alg: str) -> SigningKeyStore:
    generate_key(keys_dir, alg=alg, now=1_000, demo=True)
    return SigningKeyStore.open(keys_dir, retention=3600)


def _access_claims(now: int) -> dict[str, Any]:
    return {
        "sub": "client-1",
        "client_id": "client-1",
        "aud": "https://rs.example.com",
        "iat": now,
        "exp": now + 300,
        "jti": "jti-1",
        "scope": "payments",
        "cnf": {"jkt": "thumb"},
        "iss": "https://evil.example.com",  # overridden by the signer
    }


@pytest.mark.parametrize("alg", KEYSTORE_ALGS)
def test_token_signer_access_token(tmp_path: Path, alg: str) -> None:
    store = _store(tmp_path, alg)
    key = store.current()
    token = TokenSigner(store, issuer=ISSUER).access_token(_access_claims(2_000))
    for header, payload in (
        _verify_with_pyjwt(token, key.private_key, alg),
        _verify_with_joserfc(token, key.private_key, alg),
    ):
        assert header == {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
        assert json.loads(payload) == {**_access_claims(2_000), "iss": ISSUER}
    verified = AccessTokenVerifier(store, issuer=ISSUER, algs=(alg,)).verify(
        token, at=2_001, audiences=("https://rs.example.com",)
    )
    assert (verified.jti, verified.jkt, verified.raw["iss"]) == ("jti-1", "thumb", ISSUER)


@pytest.mark.parametrize("alg", KEYSTORE_ALGS)
def test_token_signer_id_token_and_sign(tmp_path: Path, alg: str) -> None:
    store = _store(tmp_path, alg)
    key = store.current()
    signer = TokenSigner(store, issuer=ISSUER)
    id_token = signer.id_token({"sub": "pairwise-1", "aud": "client-1", "nonce": "n-ü"})
    header, payload = _verify_with_joserfc(id_token, key.private_key, alg)
    assert header == {"alg": alg, "kid": key.kid, "typ": "JWT"}
    assert json.loads(payload) == {
        "sub": "pairwise-1",
        "aud": "client-1",
        "nonce": "n-ü",
        "iss": ISSUER,
    }
    other = signer.sign({"x": 1}, typ="example+jwt")
    header, payload = _verify_with_pyjwt(other, key.private_key, alg)
    assert header == {"alg": alg, "kid": key.kid, "typ": "example+jwt"}
    assert json.loads(payload) == {"x": 1}  # sign() adds nothing


def test_token_signer_follows_the_current_key(tmp_path: Path) -> None:
    store = _store(tmp_path, "ES256")
    signer = TokenSigner(store, issuer=ISSUER)
    first = store.current()
    assert jws.unverified_header(signer.access_token({}), max_bytes=4096)["kid"] == first.kid
    rotate(tmp_path, alg="EdDSA", now=1_500, demo=True)
    rotated = SigningKeyStore.open(tmp_path, retention=3600)
    signer = TokenSigner(rotated, issuer=ISSUER)
    current = rotated.current()
    token = signer.access_token({})
    header, _ = _verify_with_joserfc(token, current.private_key, "EdDSA")
    assert header["kid"] == current.kid != first.kid
