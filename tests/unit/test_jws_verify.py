"""The cheaper verification path gives the verdicts of the one it replaced (issue 13, credential
verification): ``jws.verify_signature`` calling pyca directly against PyJWT 2.x's algorithm
objects, on valid and mutated signatures of every accepted algorithm (high-S, zero, too
large, wrong lengths, other keys, other algorithms); ``jws.parse`` with the header read before
against ``jws.parse`` alone; ``digests.b64url_decode`` against its earlier per-character
definition; ``strict_json``'s depth check against the full bracket scan."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from trustanchor import strict_json
from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PrivateKey, PublicKey, key_fits_alg

PYJWT = get_default_algorithms()
ORDERS = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "ES512": int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}


def _keys() -> dict[str, PrivateKey]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "ES512": ec.generate_private_key(ec.SECP521R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
        "RS256": rsa_key,
        "PS256": rsa_key,
        "PS512": rsa_key,
    }


KEYS = _keys()
TOKENS = {alg: jws.sign({"sub": "s", "n": 1}, key, alg=alg) for alg, key in KEYS.items()}


def _public(alg: str) -> PublicKey:
    return KEYS[alg].public_key()


def _pyjwt_verdict(parsed: jws.ParsedJWS, key: PublicKey) -> bool:
    """The verdict of jws.verify_signature before issue 13: key_fits_alg, then PyJWT's
    algorithm object, any InvalidKeyError/ValueError/TypeError a refusal."""
    if not key_fits_alg(key, parsed.alg):
        return False
    try:
        return bool(PYJWT[parsed.alg].verify(parsed.signing_input, key, parsed.signature))
    except (ValueError, TypeError):
        return False


def _direct_verdict(parsed: jws.ParsedJWS, key: PublicKey) -> bool:
    try:
        jws.verify_signature(parsed, key)
    except JoseError as exc:
        assert exc.reason == "bad_signature"
        return False
    return True


def _parsed(token: str, signature: bytes | None = None) -> jws.ParsedJWS:
    parsed = jws.parse(token, max_bytes=1 << 16, allowed_algs=jws.ASYMMETRIC_ALGS)
    if signature is None:
        return parsed
    return jws.ParsedJWS(parsed.header, parsed.payload, parsed.signing_input, signature)


def _ec_signature(alg: str, r: int, s: int) -> bytes:
    size = SIZES[alg]
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_every_algorithm_accepts_its_own_signature_and_refuses_another_key(alg: str) -> None:
    parsed = _parsed(TOKENS[alg])
    assert _direct_verdict(parsed, _public(alg)) is True is _pyjwt_verdict(parsed, _public(alg))
    for other in KEYS:
        if KEYS[other] is KEYS[alg]:
            continue
        key = _public(other)
        assert _direct_verdict(parsed, key) is False is _pyjwt_verdict(parsed, key)


@pytest.mark.parametrize("alg", sorted(SIZES))
def test_ecdsa_edge_values_have_the_same_verdict(alg: str) -> None:
    parsed = _parsed(TOKENS[alg])
    size, order, key = SIZES[alg], ORDERS[alg], _public(alg)
    r = int.from_bytes(parsed.signature[:size], "big")
    s = int.from_bytes(parsed.signature[size:], "big")
    variants = {
        "high-S (n - s)": _ec_signature(alg, r, order - s),
        "r = 0": _ec_signature(alg, 0, s),
        "s = 0": _ec_signature(alg, r, 0),
        "r + n": _ec_signature(alg, r + order, s) if r + order < 1 << (8 * size) else b"",
        "s = n": _ec_signature(alg, r, order),
        "one byte short": parsed.signature[:-1],
        "one byte more": parsed.signature + b"\x00",
        "leading zero added": b"\x00" + parsed.signature[:-1],
        "DER instead of raw": b"\x30" + parsed.signature,
        "empty": b"",
    }
    high_s = _parsed(TOKENS[alg], variants["high-S (n - s)"])
    assert _pyjwt_verdict(high_s, key) is True  # OpenSSL accepts high S: so must we, no more
    for name, signature in variants.items():
        mutated = _parsed(TOKENS[alg], signature)
        assert _direct_verdict(mutated, key) == _pyjwt_verdict(mutated, key), name


@settings(max_examples=300, deadline=None)
@given(
    alg=st.sampled_from(sorted(KEYS)),
    key_alg=st.sampled_from(sorted(KEYS)),
    header_alg=st.sampled_from(sorted(jws.ASYMMETRIC_ALGS)),
    flips=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 7)), max_size=3),
    cut=st.integers(-3, 3),
    mutate_input=st.booleans(),
)
def test_mutated_signatures_have_the_same_verdict(
    alg: str,
    key_alg: str,
    header_alg: str,
    flips: list[tuple[int, int]],
    cut: int,
    mutate_input: bool,
) -> None:
    parsed = _parsed(TOKENS[alg])
    signature = bytearray(parsed.signature)
    for index, bit in flips:
        if signature:
            signature[index % len(signature)] ^= 1 << bit
    if cut < 0:
        del signature[cut:]
    else:
        signature.extend(b"\x01" * cut)
    signing_input = parsed.signing_input + (b"x" if mutate_input else b"")
    header: dict[str, Any] = {**parsed.header, "alg": header_alg}
    mutated = jws.ParsedJWS(header, parsed.payload, signing_input, bytes(signature))
    key = _public(key_alg)
    assert _direct_verdict(mutated, key) == _pyjwt_verdict(mutated, key)


def test_rsa_pss_and_pkcs1_are_not_interchangeable() -> None:
    key = KEYS["RS256"]
    assert isinstance(key, rsa.RSAPrivateKey)
    parsed = _parsed(TOKENS["RS256"])
    pss = key.sign(
        parsed.signing_input,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    header = {**parsed.header, "alg": "PS256"}
    as_pss = jws.ParsedJWS(header, parsed.payload, parsed.signing_input, parsed.signature)
    assert _direct_verdict(as_pss, key.public_key()) is False
    as_ps256 = jws.ParsedJWS(header, parsed.payload, parsed.signing_input, pss)
    assert _direct_verdict(as_ps256, key.public_key()) is True
    assert _pyjwt_verdict(as_ps256, key.public_key()) is True
    # PSS with another salt length than the digest size: PyJWT refuses it, so do we.
    other_salt = key.sign(
        parsed.signing_input,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20),
        hashes.SHA256(),
    )
    odd = jws.ParsedJWS(header, parsed.payload, parsed.signing_input, other_salt)
    assert _direct_verdict(odd, key.public_key()) is _pyjwt_verdict(odd, key.public_key())


def test_an_algorithm_jws_parse_never_accepts_is_refused_not_raised() -> None:
    parsed = _parsed(TOKENS["EdDSA"])
    for alg in ("Ed25519", "ES256K", "HS256", "none"):
        odd = jws.ParsedJWS({"alg": alg}, parsed.payload, parsed.signing_input, parsed.signature)
        assert _direct_verdict(odd, _public("EdDSA")) is False


# -- jws.parse with the header already read ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    alg=st.sampled_from(sorted(KEYS)),
    segment=st.integers(0, 2),
    position=st.integers(0, 2000),
    replacement=st.sampled_from(["", "=", "+", "/", ".", "A", "-", "é", "~", " "]),
)
def test_parse_with_the_header_read_first_is_parse(
    alg: str, segment: int, position: int, replacement: str
) -> None:
    parts = TOKENS[alg].split(".")
    text = parts[segment]
    index = position % (len(text) + 1)
    parts[segment] = text[:index] + replacement + text[index + 1 :]
    token = ".".join(parts)
    try:
        header = jws.unverified_header(token, max_bytes=1 << 16)
    except JoseError:
        return  # the verifier refuses before parsing: nothing to compare
    outcomes = []
    for given_header in (None, header):
        try:
            parsed = jws.parse(
                token, max_bytes=1 << 16, allowed_algs=jws.ASYMMETRIC_ALGS, header=given_header
            )
            outcomes.append(("ok", parsed))
        except JoseError as exc:
            outcomes.append(("refused", (exc.reason, exc.detail)))
    assert outcomes[0] == outcomes[1]


# -- base64url ------------------------------------------------------------------------------


def _b64url_decode_before(data: str) -> bytes:
    """digests.b64url_decode as it was written before issue 13 (the definition)."""
    if not isinstance(data, str) or "=" in data or not data.isascii():
        raise ValueError("not base64url")
    for ch in data:
        if not (ch.isalnum() or ch in "-_"):
            raise ValueError("not base64url")
    if len(data) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _outcome(decode: Any, data: Any) -> bytes | str:
    try:
        return bytes(decode(data))
    except ValueError:
        return "refused"


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=1000, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(ALPHABET + "=+/ \n\t.~\x00é٣²Ⅻａ"), max_size=40)
    | st.text(max_size=12)
)
def test_b64url_decode_keeps_its_verdicts(data: str) -> None:
    assert _outcome(b64url_decode, data) == _outcome(_b64url_decode_before, data)


def test_b64url_decode_every_last_character_of_every_length_class() -> None:
    for stem in ("", "QU", "QUJ", "QUJD"):
        for last in ALPHABET + "=+/!é":
            data = stem + last
            assert _outcome(b64url_decode, data) == _outcome(_b64url_decode_before, data), data
    assert _outcome(b64url_decode, b"QUJD") == "refused"
    assert b64url_decode(b64url_encode(bytes(range(256)))) == bytes(range(256))


# -- strict JSON nesting --------------------------------------------------------------------


def _too_deep_before(text: str, max_depth: int) -> bool:
    depth = 0
    for ch in strict_json._NOT_BRACKET.sub("", strict_json._STRING_LITERAL.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


@settings(max_examples=1000, deadline=None)
@given(
    st.text(alphabet=st.sampled_from('[]{}"\\:,1a '), max_size=30),
    st.integers(0, 6),
)
def test_depth_check_keeps_its_verdicts(text: str, max_depth: int) -> None:
    try:
        strict_json._check_depth(text, max_depth)
        refused = False
    except strict_json.StrictJSONError:
        refused = True
    assert refused == _too_deep_before(text, max_depth)
