"""PKCE (RFC 7636, S256 only): the SECURITY-CASES.md lines under "PAR, redirect URIs, PKCE"."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.digests import b64url_encode
from trustanchor.oauth import pkce
from trustanchor.oauth.errors import InvalidGrant, InvalidRequest

UNRESERVED = string.ascii_letters + string.digits + "-._~"
# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc_appendix_b_example() -> None:
    assert pkce.challenge_for(RFC_VERIFIER) == RFC_CHALLENGE
    assert pkce.validate_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE
    pkce.verify(RFC_VERIFIER, RFC_CHALLENGE)


# -- code_challenge at PAR ---------------------------------------------------------------------


def test_challenge_missing_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="code_challenge is required"):
        pkce.validate_challenge(None, "S256")


def test_challenge_method_plain_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="only code_challenge_method S256"):
        pkce.validate_challenge(RFC_CHALLENGE, "plain")


def test_challenge_method_missing_is_invalid_request() -> None:
    # RFC 7636 would default to plain; we require S256 explicitly.
    with pytest.raises(InvalidRequest, match="S256 is required"):
        pkce.validate_challenge(RFC_CHALLENGE, None)


@pytest.mark.parametrize("method", ["s256", "S512", "", ["S256"], 256])
def test_challenge_method_other_than_s256_is_invalid_request(method: object) -> None:
    with pytest.raises(InvalidRequest):
        pkce.validate_challenge(RFC_CHALLENGE, method)


@pytest.mark.parametrize("length", [43, 128])
def test_challenge_length_bounds_accepted(length: int) -> None:
    challenge = ("aZ9-._~" * 20)[:length]
    assert pkce.validate_challenge(challenge, "S256") == challenge


@pytest.mark.parametrize("length", [0, 42, 129, 4096])
def test_challenge_length_outside_43_128_is_invalid_request(length: int) -> None:
    with pytest.raises(InvalidRequest, match="43 to 128"):
        pkce.validate_challenge("a" * length, "S256")


@pytest.mark.parametrize("bad", ["=", "+", "/", " ", "%", "é", "\u0661", "\x00", "\n"], ids=repr)
def test_challenge_with_illegal_character_is_invalid_request(bad: str) -> None:
    challenge = RFC_CHALLENGE[:42] + bad
    with pytest.raises(InvalidRequest, match="43 to 128"):
        pkce.validate_challenge(challenge, "S256")


def test_challenge_with_trailing_newline_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        pkce.validate_challenge(RFC_CHALLENGE + "\n", "S256")


@pytest.mark.parametrize("challenge", [b"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", 43, ["x"]])
def test_challenge_not_a_string_is_invalid_request(challenge: object) -> None:
    with pytest.raises(InvalidRequest):
        pkce.validate_challenge(challenge, "S256")


# -- code_verifier at the token endpoint -------------------------------------------------------


def test_verifier_missing_is_invalid_grant() -> None:
    with pytest.raises(InvalidGrant, match="code_verifier is required"):
        pkce.verify(None, RFC_CHALLENGE)


def test_verifier_wrong_is_invalid_grant() -> None:
    wrong = "A" + RFC_VERIFIER[1:]
    with pytest.raises(InvalidGrant, match="does not match"):
        pkce.verify(wrong, RFC_CHALLENGE)


def test_verifier_equal_to_challenge_is_invalid_grant() -> None:
    # What a client confused into "plain" would send.
    with pytest.raises(InvalidGrant, match="does not match"):
        pkce.verify(RFC_CHALLENGE, RFC_CHALLENGE)


def test_verifier_sent_without_stored_challenge_is_invalid_grant() -> None:
    with pytest.raises(InvalidGrant, match="no code_challenge was registered"):
        pkce.verify(RFC_VERIFIER, None)


def test_no_challenge_and_no_verifier_fails_closed() -> None:
    with pytest.raises(InvalidGrant, match="no code_challenge"):
        pkce.verify(None, None)


@pytest.mark.parametrize("length", [42, 129])
def test_verifier_length_outside_43_128_is_invalid_grant(length: int) -> None:
    verifier = "a" * length
    with pytest.raises(InvalidGrant, match="43 to 128"):
        pkce.verify(verifier, pkce.challenge_for(verifier))


@pytest.mark.parametrize("length", [43, 128])
def test_verifier_length_bounds_accepted(length: int) -> None:
    verifier = ("~._-aZ9" * 20)[:length]
    pkce.verify(verifier, pkce.challenge_for(verifier))


@pytest.mark.parametrize("bad", ["=", "+", "/", " ", "é", "\u0661"], ids=repr)
def test_verifier_with_illegal_character_is_invalid_grant(bad: str) -> None:
    verifier = RFC_VERIFIER + bad
    challenge = b64url_encode(hashlib.sha256(verifier.encode("utf-8")).digest())
    with pytest.raises(InvalidGrant, match="43 to 128"):
        pkce.verify(verifier, challenge)


@pytest.mark.parametrize("verifier", [b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", 1, ["x"]])
def test_verifier_not_a_string_is_invalid_grant(verifier: object) -> None:
    with pytest.raises(InvalidGrant):
        pkce.verify(verifier, RFC_CHALLENGE)


# -- properties --------------------------------------------------------------------------------

verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


@given(verifiers)
def test_round_trip(verifier: str) -> None:
    challenge = pkce.challenge_for(verifier)
    assert len(challenge) == 43
    assert pkce.validate_challenge(challenge, "S256") == challenge
    pkce.verify(verifier, challenge)


@given(verifiers, verifiers)
def test_other_verifier_never_matches(verifier: str, other: str) -> None:
    if other == verifier:
        return
    with pytest.raises(InvalidGrant):
        pkce.verify(other, pkce.challenge_for(verifier))


@given(st.one_of(st.none(), st.text(max_size=200), st.binary(max_size=64), st.integers()))
def test_arbitrary_verifier_raises_only_invalid_grant(verifier: object) -> None:
    try:
        pkce.verify(verifier, RFC_CHALLENGE)
    except InvalidGrant:
        return
    assert verifier == RFC_VERIFIER
