"""IETF Token Status List: decoding (bit order, bits 1/2/4/8, the draft's own examples), bounded
decompression, status references, and Status List Token verification."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.credentials import InMemoryFetcher, Issuer, b64url, encode_status_list

from trustanchor.anchors import status_list
from trustanchor.anchors.status_list import (
    StatusListError,
    StatusReference,
    decode_status_list,
    fetch_status,
    status_reference,
    verify_status_list_token,
)
from trustanchor.jose.jwk import PublicKey, public_key_from_jwk

AT = 1_760_000_000
URI = "https://issuer.example/statuslists/1"


def keys_of(issuer: Issuer) -> Any:
    key: PublicKey = public_key_from_jwk(issuer.public_jwk())
    return lambda header: (key,)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer.generate()


# -- decoding ---------------------------------------------------------------------------------


def test_draft_example_one_bit() -> None:
    """draft-ietf-oauth-status-list, bits = 1 example: statuses of indices 0..15."""
    decoded = decode_status_list({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})
    expected = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    assert [decoded.status(i) for i in range(16)] == expected


def test_draft_example_two_bits() -> None:
    """draft-ietf-oauth-status-list, bits = 2 example: statuses of indices 0..11."""
    decoded = decode_status_list({"bits": 2, "lst": "eNo76fITAAPfAgc"})
    expected = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    assert [decoded.status(i) for i in range(12)] == expected


@given(
    st.sampled_from([1, 2, 4, 8]).flatmap(
        lambda bits: st.tuples(
            st.just(bits),
            st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=300),
        )
    )
)
def test_round_trip_with_an_independent_encoder(case: tuple[int, list[int]]) -> None:
    bits, statuses = case
    decoded = decode_status_list({"bits": bits, "lst": encode_status_list(statuses, bits=bits)})
    assert [decoded.status(i) for i in range(len(statuses))] == statuses


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"bits": 3, "lst": "eNrbuRgAAhcBXQ"},
        {"bits": True, "lst": "eNrbuRgAAhcBXQ"},
        {"bits": 1},
        {"bits": 1, "lst": 5},
        {"bits": 1, "lst": "not base64url!"},
        {"bits": 1, "lst": b64url(b"plain bytes, not zlib")},
        {"bits": 1, "lst": b64url(zlib.compress(b"\xff" * 100)[:-6])},  # truncated
    ],
    ids=repr,
)
def test_malformed_status_list_is_refused(value: Any) -> None:
    with pytest.raises(StatusListError) as caught:
        decode_status_list(value)
    assert caught.value.reason == "status_list_invalid"


def test_raw_deflate_without_zlib_header_is_refused() -> None:
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = raw.compress(b"\x01" * 16) + raw.flush()
    with pytest.raises(StatusListError):
        decode_status_list({"bits": 1, "lst": b64url(data)})


def test_decompression_bomb_is_bounded() -> None:
    bomb = b64url(zlib.compress(b"\x00" * (64 * 1024 * 1024), 9))
    assert len(bomb) < 100_000
    with pytest.raises(StatusListError) as caught:
        decode_status_list({"bits": 1, "lst": bomb}, max_decompressed=1024 * 1024)
    assert "exceeds" in caught.value.detail


def test_index_beyond_the_list_is_not_valid() -> None:
    decoded = decode_status_list({"bits": 8, "lst": encode_status_list([0, 0, 0], bits=8)})
    assert decoded.status(2) == 0
    with pytest.raises(StatusListError):
        decoded.status(3)


# -- references -------------------------------------------------------------------------------


def test_status_reference_is_read() -> None:
    payload = {"status": {"status_list": {"idx": 7, "uri": URI}}}
    assert status_reference(payload) == StatusReference(URI, 7)
    assert status_reference({}) is None
    assert status_reference({"status": {"other_mechanism": {}}}) is None


@pytest.mark.parametrize(
    "status",
    [
        "revoked",
        {"status_list": []},
        {"status_list": {"idx": -1, "uri": URI}},
        {"status_list": {"idx": True, "uri": URI}},
        {"status_list": {"idx": "7", "uri": URI}},
        {"status_list": {"idx": 2**40, "uri": URI}},
        {"status_list": {"idx": 7}},
        {"status_list": {"idx": 7, "uri": ""}},
    ],
    ids=repr,
)
def test_malformed_status_reference(status: Any) -> None:
    with pytest.raises(StatusListError) as caught:
        status_reference({"status": status})
    assert caught.value.reason == "malformed_status_reference"


# -- tokens -----------------------------------------------------------------------------------


def verify(token: str, issuer: Issuer, **options: Any) -> status_list.StatusList:
    return verify_status_list_token(
        token,
        expected_uri=options.pop("expected_uri", URI),
        keys=options.pop("keys", keys_of(issuer)),
        allowed_algs=("ES256",),
        max_bytes=65536,
        at=AT,
        clock_skew=30,
        **options,
    )


def test_token_verifies(issuer: Issuer) -> None:
    token = issuer.status_list_token(URI, [0, 1, 2, 3], bits=2, iat=AT - 60, exp=AT + 3600)
    decoded = verify(token, issuer)
    assert [decoded.status(i) for i in range(4)] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "options",
    [
        {"typ": "JWT"},
        {"sub": "https://issuer.example/statuslists/2"},
        {"exp": AT - 31},
        {"iat": AT + 3600},
    ],
    ids=["typ", "sub", "expired", "iat-future"],
)
def test_token_claims_are_checked(issuer: Issuer, options: dict[str, Any]) -> None:
    options.setdefault("iat", AT - 60)
    token = issuer.status_list_token(URI, [0], **options)
    with pytest.raises(StatusListError) as caught:
        verify(token, issuer)
    assert caught.value.reason == "status_list_invalid"


def test_token_signed_by_an_unconfigured_key_is_refused(issuer: Issuer) -> None:
    token = issuer.status_list_token(URI, [0], iat=AT - 60, key=Issuer.generate().jwk)
    with pytest.raises(StatusListError) as caught:
        verify(token, issuer)
    assert caught.value.reason == "status_list_invalid"
    with pytest.raises(StatusListError):
        verify(issuer.status_list_token(URI, [0], iat=AT - 60), issuer, keys=lambda h: ())


def test_fetch_status_reads_one_entry(issuer: Issuer) -> None:
    fetcher = InMemoryFetcher()
    fetcher.serve(URI, issuer.status_list_token(URI, [0, 0, 2, 0], bits=2, iat=AT - 60))
    options: dict[str, Any] = {
        "fetcher": fetcher,
        "keys": keys_of(issuer),
        "allowed_algs": ("ES256",),
        "max_bytes": 65536,
        "at": AT,
        "clock_skew": 30,
    }
    assert fetch_status(StatusReference(URI, 2), **options) == status_list.SUSPENDED
    assert fetch_status(StatusReference(URI, 1), **options) == status_list.VALID
    with pytest.raises(StatusListError) as caught:
        fetch_status(StatusReference(URI + "/missing", 1), **options)
    assert caught.value.reason == "status_unavailable"
    fetcher.serve(URI, b"\xff\xfe not a token")
    with pytest.raises(StatusListError) as caught:
        fetch_status(StatusReference(URI, 1), **options)
    assert caught.value.reason == "status_list_invalid"
