"""The Status List cache (anchors/status_list.py, StatusListCache): a verified list is read
again only while it is fresh (the cache's max_age, the token's ttl and exp, whichever ends
first, at the instants the checks are given), never across anchors or key sets, bounded in
entries and bytes, and never stale: past freshness a failing fetch fails the check. Then the
SD-JWT VC verifier with an injected cache."""

from __future__ import annotations

from typing import Any

import pytest
from support.credentials import (
    InMemoryFetcher,
    Issuer,
    Wallet,
    _sign_compact,
    encode_status_list,
)

from trustanchor.anchors import status_list
from trustanchor.anchors.base import AnchorFailure, Expectation
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier
from trustanchor.anchors.status_list import (
    StatusList,
    StatusListCache,
    StatusListError,
    StatusReference,
    VerifiedStatusList,
    fetch_status,
    verification_scope,
)
from trustanchor.config.settings import LimitSettings
from trustanchor.domain.anchors import Anchor
from trustanchor.jose.jwk import PublicKey, public_key_from_jwk

AT = 1_760_000_000
URI = "https://issuer.example/statuslists/1"
NONCE = "wallet-nonce-cache-1"
AUD = "x509_san_dns:trustanchor.example"
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer.generate()


def token(
    issuer: Issuer,
    statuses: list[int],
    *,
    uri: str = URI,
    iat: int = AT - 60,
    **claims: Any,
) -> str:
    """A Status List Token with optional ``exp``/``ttl`` (signed with jwcrypto)."""
    payload: dict[str, Any] = {
        "sub": uri,
        "iat": iat,
        "status_list": {"bits": 1, "lst": encode_status_list(statuses)},
        **claims,
    }
    header = {"alg": "ES256", "typ": "statuslist+jwt", "kid": issuer.kid}
    return str(_sign_compact(issuer.jwk, header, payload))


def keys(issuer: Issuer) -> dict[str, PublicKey]:
    return {issuer.kid: public_key_from_jwk(issuer.public_jwk())}


def check(
    fetcher: InMemoryFetcher,
    issuer: Issuer,
    cache: StatusListCache | None,
    at: int,
    idx: int = 1,
    uri: str = URI,
) -> int:
    configured = keys(issuer)
    return fetch_status(
        StatusReference(uri, idx),
        fetcher=fetcher,
        keys=lambda header: tuple(configured.values()),
        allowed_algs=("ES256",),
        max_bytes=65536,
        at=at,
        clock_skew=30,
        cache=cache,
        scope=verification_scope(configured, ("ES256",), 65536),
    )


def revoke_at_source(fetcher: InMemoryFetcher, issuer: Issuer, **claims: Any) -> None:
    fetcher.serve(URI, token(issuer, [0, 1, 0, 0], **claims))


def test_a_fresh_list_is_read_again_without_fetching(issuer: Issuer) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0, 0, 0]))
    assert check(fetcher, issuer, cache, AT) == status_list.VALID
    revoke_at_source(fetcher, issuer)
    assert check(fetcher, issuer, cache, AT + 299) == status_list.VALID  # the kept list
    assert len(fetcher.requests) == 1
    assert check(fetcher, issuer, cache, AT + 300) == status_list.INVALID  # max_age over
    assert len(fetcher.requests) == 2


def test_without_a_cache_every_check_fetches(issuer: Issuer) -> None:
    fetcher = InMemoryFetcher()
    fetcher.serve(URI, token(issuer, [0, 0]))
    check(fetcher, issuer, None, AT)
    check(fetcher, issuer, None, AT)
    assert len(fetcher.requests) == 2


def test_ttl_shortens_the_stay(issuer: Issuer) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0, 0, 0], ttl=60))
    check(fetcher, issuer, cache, AT)
    revoke_at_source(fetcher, issuer)
    assert check(fetcher, issuer, cache, AT + 59) == status_list.VALID
    assert check(fetcher, issuer, cache, AT + 60) == status_list.INVALID
    assert len(fetcher.requests) == 2


def test_exp_ends_the_stay(issuer: Issuer) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0, 0, 0], exp=AT + 100, ttl=1000))
    check(fetcher, issuer, cache, AT)
    revoke_at_source(fetcher, issuer, exp=AT + 1000)
    assert check(fetcher, issuer, cache, AT + 99) == status_list.VALID
    assert check(fetcher, issuer, cache, AT + 100) == status_list.INVALID


@pytest.mark.parametrize("ttl", [0, -5, "60", True, None, 0.5, [60]])
def test_a_ttl_that_is_not_a_positive_number_is_not_cached(issuer: Issuer, ttl: Any) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0], ttl=ttl))
    check(fetcher, issuer, cache, AT)
    check(fetcher, issuer, cache, AT + 1)
    assert len(fetcher.requests) == 2
    assert len(cache) == 0


def test_a_token_expired_beyond_the_skew_is_not_served_from_the_cache(issuer: Issuer) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0], exp=AT + 10))
    check(fetcher, issuer, cache, AT)
    with pytest.raises(StatusListError) as caught:  # refetched: the same token, now expired
        check(fetcher, issuer, cache, AT + 41)
    assert caught.value.reason == "status_list_invalid"


def test_fail_closed_past_freshness(issuer: Issuer) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=60)
    fetcher.serve(URI, token(issuer, [0, 0]))
    check(fetcher, issuer, cache, AT)
    del fetcher.bodies[URI]  # the issuer's server is gone
    assert check(fetcher, issuer, cache, AT + 59) == status_list.VALID
    with pytest.raises(StatusListError) as caught:
        check(fetcher, issuer, cache, AT + 60)
    assert caught.value.reason == "status_unavailable"


def test_an_instant_before_the_fetch_is_a_miss(issuer: Issuer) -> None:
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0], iat=AT - 60))
    check(fetcher, issuer, cache, AT)
    check(fetcher, issuer, cache, AT - 10)
    assert len(fetcher.requests) == 2


def test_a_list_verified_with_other_keys_never_answers(issuer: Issuer) -> None:
    """One cache shared by two key sets (two anchors, or one anchor before and after a key
    rotation): the second set's check fetches and verifies with its own keys."""
    other = Issuer.generate()  # same kid, other key material
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0]))
    check(fetcher, issuer, cache, AT)
    with pytest.raises(StatusListError) as caught:
        check(fetcher, other, cache, AT + 1)  # would have read the cached list if keyed by URI
    assert caught.value.reason == "status_list_invalid"
    assert len(fetcher.requests) == 2


def test_the_scope_names_the_exact_keys_algorithms_and_limit(issuer: Issuer) -> None:
    other = Issuer.generate()
    scope = verification_scope(keys(issuer), ("ES256",), 65536)
    assert scope == verification_scope(keys(issuer), ("ES256",), 65536)
    assert scope != verification_scope(keys(other), ("ES256",), 65536)
    assert scope != verification_scope({"other-kid": keys(issuer)[issuer.kid]}, ("ES256",), 65536)
    assert scope != verification_scope(keys(issuer), ("ES256", "ES384"), 65536)
    assert scope != verification_scope(keys(issuer), ("ES256",), 1024)


def test_a_cache_without_a_scope_is_refused(issuer: Issuer) -> None:
    fetcher = InMemoryFetcher()
    fetcher.serve(URI, token(issuer, [0, 0]))
    with pytest.raises(ValueError):
        fetch_status(
            StatusReference(URI, 0),
            fetcher=fetcher,
            keys=lambda header: (),
            allowed_algs=("ES256",),
            max_bytes=65536,
            at=AT,
            clock_skew=30,
            cache=StatusListCache(),
        )


def _verified(size: int, **freshness: Any) -> VerifiedStatusList:
    return VerifiedStatusList(
        StatusList(1, bytes(size)), freshness.get("exp"), freshness.get("ttl")
    )


def test_entries_are_bounded_oldest_first() -> None:
    cache = StatusListCache(max_age=300, max_entries=3)
    for index in range(5):
        cache.put("scope", f"{URI}/{index}", _verified(8), at=AT)
        assert len(cache) <= 3
    assert cache.get("scope", f"{URI}/0", AT) is None
    assert cache.get("scope", f"{URI}/1", AT) is None
    assert cache.get("scope", f"{URI}/4", AT) is not None


def test_decoded_bytes_are_bounded() -> None:
    cache = StatusListCache(max_age=300, max_bytes=100)
    cache.put("scope", f"{URI}/big", _verified(101), at=AT)
    assert len(cache) == 0  # larger than the whole budget: not kept
    cache.put("scope", f"{URI}/a", _verified(60), at=AT)
    cache.put("scope", f"{URI}/b", _verified(60), at=AT)  # pushes a out
    assert cache.get("scope", f"{URI}/a", AT) is None
    assert cache.get("scope", f"{URI}/b", AT) is not None
    assert cache._bytes == 60


def test_an_expired_entry_is_dropped_when_met() -> None:
    cache = StatusListCache(max_age=10)
    cache.put("scope", URI, _verified(8), at=AT)
    assert cache.get("scope", URI, AT + 10) is None
    assert len(cache) == 0 and cache._bytes == 0


def test_bad_bounds_are_refused() -> None:
    for options in ({"max_age": 0}, {"max_entries": 0}, {"max_bytes": -1}):
        with pytest.raises(ValueError):
            StatusListCache(**options)


# -- the SD-JWT VC verifier with a cache ----------------------------------------------------


def _verifier(
    issuer: Issuer, fetcher: InMemoryFetcher, cache: StatusListCache | None
) -> SdJwtVcVerifier:
    settings = {
        "issuer": issuer.issuer,
        "jwks": issuer.jwks(),
        "vct": [issuer.vct],
        "subject_claim": "sub",
        "trust_framework": "jp_my_number_card",
        "status_check": "required",
    }
    anchor = Anchor("jp-pid", "sd_jwt_vc", {"en": "PID"}, "high", "active", settings)
    return SdJwtVcVerifier(
        anchor, fetcher=fetcher, limits=LIMITS, kb_max_age=300, status_lists=cache
    )


def test_the_verifier_reads_a_kept_list_and_still_refuses_a_revoked_credential(
    issuer: Issuer,
) -> None:
    wallet = Wallet.generate()
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=120)
    fetcher.serve(URI, token(issuer, [0, 1, 0, 0], ttl=60))
    verifier = _verifier(issuer, fetcher, cache)
    expected = Expectation(nonce=NONCE, audience=AUD, required_claims=())

    def presentation(idx: int, at: int) -> str:
        sd_jwt = issuer.issue(
            wallet, claims={"sub": "p-1"}, disclosable={"sub"}, iat=AT - 3600, status=(URI, idx)
        )
        return wallet.bind(sd_jwt, nonce=NONCE, aud=AUD, iat=at - 5)

    assert verifier.verify(presentation(0, AT), expected=expected, at=AT).subject == "p-1"
    with pytest.raises(AnchorFailure) as caught:  # from the kept list: index 1 is revoked
        verifier.verify(presentation(1, AT + 30), expected=expected, at=AT + 30)
    assert caught.value.reason == "credential_revoked"
    assert len(fetcher.requests) == 1
    fetcher.serve(URI, token(issuer, [1, 1, 0, 0], ttl=60))  # index 0 revoked at the source
    assert verifier.verify(presentation(0, AT + 59), expected=expected, at=AT + 59)
    with pytest.raises(AnchorFailure) as caught:  # ttl over: fetched again
        verifier.verify(presentation(0, AT + 60), expected=expected, at=AT + 60)
    assert caught.value.reason == "credential_revoked"
    assert len(fetcher.requests) == 2


def test_two_anchors_sharing_a_cache_never_share_a_list(issuer: Issuer) -> None:
    """Anchor B (another issuer key) names anchor A's status list: its credential's status is
    verified with B's keys (and refused), not read from A's verified list."""
    impostor, wallet = Issuer.generate(), Wallet.generate()
    fetcher, cache = InMemoryFetcher(), StatusListCache(max_age=300)
    fetcher.serve(URI, token(issuer, [0, 0]))
    expected = Expectation(nonce=NONCE, audience=AUD, required_claims=())
    a, b = _verifier(issuer, fetcher, cache), _verifier(impostor, fetcher, cache)
    mine = issuer.issue(
        wallet, claims={"sub": "p-1"}, disclosable=set(), iat=AT - 60, status=(URI, 0)
    )
    a.verify(wallet.bind(mine, nonce=NONCE, aud=AUD, iat=AT - 5), expected=expected, at=AT)
    theirs = impostor.issue(
        wallet, claims={"sub": "p-2"}, disclosable=set(), iat=AT - 60, status=(URI, 0)
    )
    with pytest.raises(AnchorFailure) as caught:
        b.verify(wallet.bind(theirs, nonce=NONCE, aud=AUD, iat=AT - 5), expected=expected, at=AT)
    assert caught.value.reason == "status_list_invalid"
