"""The challenge-JWS parser of certificate login (trustanchor/anchors/x509_challenge.py): exact
header and claims, limits before any cryptography, strict base64; properties with hypothesis:
arbitrary input only ever raises ChallengeError, and valid input round-trips."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.jpki import CHALLENGE_TYP, PURPOSE, Issued, TestPKI, b64url, challenge_jws

from trustanchor.anchors.x509_challenge import (
    REASONS,
    Challenge,
    ChallengeError,
    parse_challenge,
)

NOW = 1_800_000_000
AUD = "https://trustanchor.example"
LIMITS: dict[str, Any] = {
    "algs": ("RS256",),
    "max_bytes": 16384,
    "max_chain_length": 4,
    "max_x5c_bytes": 16384,
}

_PKI = TestPKI.generate(now=NOW, label="challenge")
_LEAF = _PKI.leaf("authentication", label="challenge")


@pytest.fixture(scope="module")
def leaf() -> Issued:
    return _LEAF


def token(leaf: Issued, **kw: Any) -> str:
    claims: dict[str, Any] = {
        "aud": AUD,
        "nonce": "n-" + "a" * 40,
        "txn": "txn-1",
        "iat": NOW,
        "exp": NOW + 120,
        "cert": "authentication",
    }
    claims.update(kw)
    return challenge_jws(leaf, **claims)


def parse(text: Any, **overrides: Any) -> Challenge:
    return parse_challenge(text, **{**LIMITS, **overrides})


def refused(text: Any, reason: str, **overrides: Any) -> ChallengeError:
    with pytest.raises(ChallengeError) as caught:
        parse(text, **overrides)
    assert caught.value.reason == reason, caught.value
    assert reason in REASONS
    return caught.value


def forge(header: Any, payload: Any, signature: bytes = b"\x01" * 256) -> str:
    """A compact JWS with arbitrary header and payload values (no real signature)."""

    def enc(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return b64url(raw)

    return f"{enc(header)}.{enc(payload)}.{b64url(signature)}"


def header_of(leaf: Issued, **extra: Any) -> dict[str, Any]:
    return {"alg": "RS256", "typ": CHALLENGE_TYP, "x5c": [leaf.x5c], **extra}


def payload(**extra: Any) -> dict[str, Any]:
    return {
        "aud": AUD,
        "nonce": "n",
        "txn": "t",
        "iat": NOW,
        "exp": NOW + 60,
        "purpose": PURPOSE,
        "cert": "authentication",
        **extra,
    }


def test_a_challenge_made_by_the_test_app_parses(leaf: Issued) -> None:
    chain = _PKI.chain_of(leaf)
    parsed = parse(token(leaf))
    assert parsed.alg == "RS256"
    assert parsed.x5c_der == tuple(c.der for c in chain)
    assert parsed.leaf == leaf.cert
    assert parsed.claims.aud == AUD and parsed.claims.cert == "authentication"
    assert parsed.claims.purpose == PURPOSE
    assert len(parsed.signature) == 256


def test_size_limit_before_anything_else(leaf: Issued) -> None:
    text = token(leaf)
    refused(text, "challenge_too_large", max_bytes=len(text) - 1)
    refused("x" * 20000, "challenge_too_large")


@pytest.mark.parametrize(
    "member", ["crit", "jku", "x5u", "jwk", "kid", "x5t#S256", "cty", "b64", "zip", "enc"]
)
def test_any_header_member_beyond_alg_typ_x5c_is_refused(leaf: Issued, member: str) -> None:
    refused(forge(header_of(leaf, **{member: "x"}), payload()), "challenge_header_not_accepted")


def test_header_members_are_all_required(leaf: Issued) -> None:
    for member in ("alg", "typ", "x5c"):
        header = header_of(leaf)
        del header[member]
        refused(forge(header, payload()), "challenge_header_not_accepted")


@pytest.mark.parametrize("alg", ["none", "HS256", "RS1", "ES256", "PS256", "rs256", ""])
def test_alg_outside_the_anchors_allow_list_is_refused(leaf: Issued, alg: str) -> None:
    refused(forge(header_of(leaf, alg=alg), payload()), "challenge_alg_not_allowed")


def test_declared_algs_are_accepted(leaf: Issued) -> None:
    text = forge(header_of(leaf, alg="PS256"), payload())
    assert parse(text, algs=("RS256", "PS256")).alg == "PS256"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "kb+jwt", "trustanchor-x509-request+jwt", None])
def test_typ_must_be_the_challenge_typ(leaf: Issued, typ: Any) -> None:
    refused(forge(header_of(leaf, typ=typ), payload()), "challenge_wrong_typ")


def test_x5c_count_and_byte_limits(leaf: Issued) -> None:
    five = header_of(leaf, x5c=[leaf.x5c] * 5)
    refused(forge(five, payload()), "certificate_chain_too_long")
    two = header_of(leaf, x5c=[leaf.x5c] * 2)
    refused(forge(two, payload()), "certificate_chain_too_long", max_x5c_bytes=len(leaf.der) + 10)
    assert len(parse(forge(two, payload())).certificates) == 2


@pytest.mark.parametrize(
    "x5c",
    [
        [],
        "MIIB",
        [7],
        ["not base64!"],
        ["QUJD"],  # base64 of "ABC": not a certificate
    ],
)
def test_x5c_entries_must_be_standard_base64_certificates(x5c: Any, leaf: Issued) -> None:
    with pytest.raises(ChallengeError) as caught:
        parse(forge(header_of(leaf, x5c=x5c), payload()))
    assert caught.value.reason in ("malformed_challenge", "certificate_unreadable")


def test_x5c_base64url_or_unpadded_is_refused(leaf: Issued) -> None:
    urlsafe = base64.urlsafe_b64encode(leaf.der).decode()
    if urlsafe != leaf.x5c:
        refused(forge(header_of(leaf, x5c=[urlsafe]), payload()), "malformed_challenge")
    unpadded = leaf.x5c.rstrip("=")
    if unpadded != leaf.x5c:
        refused(forge(header_of(leaf, x5c=[unpadded]), payload()), "malformed_challenge")
    refused(
        forge(header_of(leaf, x5c=[leaf.x5c[:-4] + "\n" + leaf.x5c[-4:]]), payload()),
        "malformed_challenge",
    )


def test_certificate_with_trailing_bytes_is_refused(leaf: Issued) -> None:
    padded = base64.b64encode(leaf.der + b"\x00").decode()
    refused(forge(header_of(leaf, x5c=[padded]), payload()), "certificate_unreadable")


def test_payload_members_exactly(leaf: Issued) -> None:
    refused(forge(header_of(leaf), payload(document="I agree to pay")), "malformed_challenge")
    for member in ("aud", "nonce", "txn", "iat", "exp", "purpose", "cert"):
        body = payload()
        del body[member]
        refused(forge(header_of(leaf), body), "malformed_challenge")


@pytest.mark.parametrize(
    "member, value",
    [
        ("aud", ["a"]),
        ("aud", ""),
        ("nonce", 5),
        ("txn", None),
        ("iat", "1800000000"),
        ("iat", True),
        ("exp", 1.5),
        ("exp", -1),
        ("iat", 1 << 60),
        ("cert", "both"),
        ("cert", ["authentication"]),
    ],
)
def test_payload_types(leaf: Issued, member: str, value: Any) -> None:
    refused(forge(header_of(leaf), payload(**{member: value})), "malformed_challenge")


def test_lone_surrogates_are_refused(leaf: Issued) -> None:
    body = json.dumps(payload(nonce="x")).replace('"x"', '"\\ud800"').encode()
    refused(forge(header_of(leaf), body), "malformed_challenge")


def test_purpose_is_fixed(leaf: Issued) -> None:
    refused(forge(header_of(leaf), payload(purpose="sign-contract")), "challenge_wrong_purpose")


def test_duplicate_json_members_are_refused(leaf: Issued) -> None:
    header = json.dumps(header_of(leaf))[:-1] + ', "alg": "RS256"}'
    refused(forge(header.encode(), payload()), "malformed_challenge")
    body = json.dumps(payload())[:-1] + ', "nonce": "other"}'
    refused(forge(header_of(leaf), body.encode()), "malformed_challenge")


def test_segments_must_be_canonical_base64url(leaf: Issued) -> None:
    text = token(leaf)
    head, body, sig = text.split(".")
    refused(f"{head}=.{body}.{sig}", "malformed_challenge")
    refused(f"{head}.{body}.{sig}.", "malformed_challenge")
    refused(f"{head}.{body}", "malformed_challenge")
    refused(f"{head}.{body}.", "malformed_challenge")
    refused(f"{head}.{body}.{sig.replace('-', '+').replace('_', '/')}x", "malformed_challenge")
    # Same bytes, other text: the last character's unused bits set.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(sig) % 4 in (2, 3):
        last = alphabet.index(sig[-1])
        mask = 0x0F if len(sig) % 4 == 2 else 0x03
        if last & mask != mask:
            tweaked = sig[:-1] + alphabet[last | mask]
            refused(f"{head}.{body}.{tweaked}", "malformed_challenge")
    refused(text.replace(".", "\u3002", 1), "malformed_challenge")  # not ASCII


def test_canonical_base64url_is_exactly_what_re_encodes_to_itself(leaf: Issued) -> None:
    """The parser checks canonical form by the last character's unused bits; every text of
    every length class (each possible last character) must get the same verdict as the
    definition, "decodes to bytes that encode back to the same text"."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    head, body, _ = token(leaf).split(".")
    for prefix in ("", "QUJD", "QUJDREVG"):
        for extra in ("", "Q", "QU", "QUJ"):
            for last in alphabet:
                text = prefix + extra + last
                if len(text) % 4 == 1:
                    continue
                decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
                canonical = b64url(decoded) == text
                forged = f"{head}.{body}.{text}"
                if canonical:
                    # Same verdict as before: only the signature's validity (later) is wrong.
                    assert parse(forged).signature == decoded
                else:
                    refused(forged, "malformed_challenge")


def test_not_a_string_is_refused() -> None:
    refused(None, "malformed_challenge")
    refused(b"a.b.c", "malformed_challenge")


def test_deep_nesting_is_refused_as_malformed(leaf: Issued) -> None:
    deep = payload(aud=[[[[["x"]]]]])
    refused(forge(header_of(leaf), deep), "malformed_challenge")


# -- properties --------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), st.integers(), st.none()))
def test_arbitrary_input_only_raises_challenge_error(value: Any) -> None:
    try:
        parse(value)
    except ChallengeError as exc:
        assert exc.reason in REASONS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.dictionaries(st.sampled_from(["alg", "typ", "x5c", "kid", "crit"]), _json_values),
    body=st.dictionaries(
        st.sampled_from(["aud", "nonce", "txn", "iat", "exp", "purpose", "cert", "x"]),
        _json_values,
    ),
    sig=st.binary(max_size=40),
)
def test_arbitrary_json_segments_only_raise_challenge_error(
    header: dict[str, Any], body: dict[str, Any], sig: bytes
) -> None:
    try:
        parse(forge(header, body, sig))
    except ChallengeError as exc:
        assert exc.reason in REASONS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=10_000),
    replacement=st.characters(codec="ascii"),
)
def test_one_character_changed_only_raises_challenge_error_or_parses(
    position: int, replacement: str
) -> None:
    text = token(_LEAF)
    index = position % len(text)
    mangled = text[:index] + replacement + text[index + 1 :]
    try:
        parsed = parse(mangled)
    except ChallengeError as exc:
        assert exc.reason in REASONS
    else:  # a change that still parses kept every member well-formed
        assert parsed.claims.purpose == PURPOSE


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=64
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    aud=_text,
    nonce=_text,
    txn=_text,
    iat=st.integers(min_value=0, max_value=(1 << 41) - 1),
    exp=st.integers(min_value=0, max_value=(1 << 41) - 1),
    cert=st.sampled_from(["authentication", "signature"]),
    alg=st.sampled_from(["RS256", "PS256", "ES256"]),
    sig=st.binary(min_size=1, max_size=512),
    chain_length=st.integers(min_value=1, max_value=4),
)
def test_valid_input_round_trips(
    aud: str,
    nonce: str,
    txn: str,
    iat: int,
    exp: int,
    cert: str,
    alg: str,
    sig: bytes,
    chain_length: int,
) -> None:
    certs = [_LEAF.x5c] * chain_length
    header = {"alg": alg, "typ": CHALLENGE_TYP, "x5c": certs}
    body = {"aud": aud, "nonce": nonce, "txn": txn, "iat": iat, "exp": exp}
    body |= {"purpose": PURPOSE, "cert": cert}
    text = forge(header, body, sig)
    parsed = parse(text, algs=("RS256", "PS256", "ES256"))
    assert parsed.alg == alg
    assert parsed.x5c_der == (_LEAF.der,) * chain_length
    assert (parsed.claims.aud, parsed.claims.nonce, parsed.claims.txn) == (aud, nonce, txn)
    assert (parsed.claims.iat, parsed.claims.exp, parsed.claims.cert) == (iat, exp, cert)
    assert parsed.signature == sig
    assert parsed.signing_input == text.rsplit(".", 1)[0].encode("ascii")
