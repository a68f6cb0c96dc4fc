"""trustanchor.ledger.keys: the issuer's JWKS as the ledger obtains it — static, or fetched and
cached (rotation picked up, fetches rate-limited, stale keys trusted only for a bounded time) —
and the in-memory replay store the unit tests rely on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.ledger import AT, AUDIENCE, ISSUER, LEDGER_URL, Intermediary, ServiceIssuer

from trustanchor.clock import FixedClock
from trustanchor.jose.errors import JoseError
from trustanchor.keystore.signing_keys import SigningKeyStore, rotate
from trustanchor.ledger import (
    InMemoryReplayStore,
    JwksCache,
    LedgerRefusal,
    LedgerTokenVerifier,
    StaticJwks,
)
from trustanchor.oauth.jwt_tokens import TokenSigner


class IssuerJwksEndpoint:
    """The issuer's /jwks as the ledger's fetch callable sees it: the current published keys,
    or a failure while ``down`` is set."""

    def __init__(self, keys_dir: Path, clock: FixedClock) -> None:
        self.keys_dir = keys_dir
        self.clock = clock
        self.calls = 0
        self.down: Exception | None = None

    def __call__(self) -> bytes:
        self.calls += 1
        if self.down is not None:
            raise self.down
        store = SigningKeyStore.open(self.keys_dir, retention=3600)
        return json.dumps(store.jwks(self.clock.now())).encode()


class Setup:
    def __init__(self, tmp_path: Path, **cache_options: Any) -> None:
        self.keys_dir = tmp_path / "keys"
        self.issuer = ServiceIssuer(self.keys_dir)
        self.client = Intermediary()
        self.clock = FixedClock(AT)
        self.endpoint = IssuerJwksEndpoint(self.keys_dir, self.clock)
        self.cache = JwksCache(self.endpoint, **cache_options)
        self.verifier = LedgerTokenVerifier(
            ISSUER, AUDIENCE, self.cache, replay=InMemoryReplayStore(), clock=self.clock
        )

    def signer(self) -> TokenSigner:
        return TokenSigner(SigningKeyStore.open(self.keys_dir, retention=3600), issuer=ISSUER)

    def token(self, signer: TokenSigner | None = None) -> str:
        at = self.clock.now()
        claims = self.issuer.claims(jkt=self.client.jkt, at=at)
        return (signer or self.issuer.signer).access_token(claims)

    def present(self, token: str) -> str:
        at = self.clock.now()
        proof = self.client.proof(token, at=at)
        return self.verifier.verify(f"DPoP {token}", proof, method="POST", url=LEDGER_URL).jti

    def refused(self, reason: str, token: str) -> LedgerRefusal:
        with pytest.raises(LedgerRefusal) as caught:
            self.present(token)
        assert caught.value.reason == reason, caught.value.log_detail
        return caught.value


def test_keys_are_fetched_once_and_cached(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.present(setup.token())
    setup.present(setup.token())
    assert setup.endpoint.calls == 1


def test_a_callable_given_as_keys_is_cached(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    verifier = LedgerTokenVerifier(
        ISSUER, AUDIENCE, setup.endpoint, replay=InMemoryReplayStore(), clock=setup.clock
    )
    for _ in range(3):
        token = setup.token()
        verifier.verify(f"DPoP {token}", setup.client.proof(token), method="POST", url=LEDGER_URL)
    assert setup.endpoint.calls == 1


def test_rotated_issuer_key_is_picked_up_by_its_unknown_kid(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.present(setup.token())
    setup.clock.advance(60)  # past the refresh interval, well within max_age
    rotate(setup.keys_dir, alg="ES256", now=setup.clock.now(), demo=False)
    setup.present(setup.token(setup.signer()))
    assert setup.endpoint.calls == 2


def test_unknown_kids_do_not_trigger_more_than_one_fetch_per_interval(tmp_path: Path) -> None:
    setup = Setup(tmp_path, refresh_interval=30)
    setup.present(setup.token())
    foreign = ServiceIssuer(tmp_path / "foreign")
    setup.refused("unknown_key", foreign.signer.access_token(foreign.claims(jkt=setup.client.jkt)))
    assert setup.endpoint.calls == 1  # the first fetch was just now: no refresh yet
    setup.clock.advance(30)
    for _ in range(5):
        token = foreign.signer.access_token(foreign.claims(jkt=setup.client.jkt))
        setup.refused("unknown_key", token)
    assert setup.endpoint.calls == 2  # one refresh for five unknown kids
    setup.clock.advance(30)
    setup.refused("unknown_key", foreign.signer.access_token(foreign.claims(jkt=setup.client.jkt)))
    assert setup.endpoint.calls == 3


def test_keys_are_refetched_after_max_age(tmp_path: Path) -> None:
    setup = Setup(tmp_path, max_age=300)
    setup.present(setup.token())
    setup.clock.advance(300)
    setup.present(setup.token())
    assert setup.endpoint.calls == 2


def test_issuer_unreachable_before_any_fetch_is_keys_unavailable(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.endpoint.down = ConnectionError("refused")
    refusal = setup.refused("keys_unavailable", setup.token())
    assert (refusal.status, refusal.error) == (503, "temporarily_unavailable")
    assert setup.cache.last_failure == "JWKS fetch failed: ConnectionError"


def test_unusable_jwks_document_is_keys_unavailable(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.endpoint.down = None
    setup.cache = JwksCache(lambda: b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    verifier = LedgerTokenVerifier(
        ISSUER, AUDIENCE, setup.cache, replay=InMemoryReplayStore(), clock=setup.clock
    )
    token = setup.token()
    with pytest.raises(LedgerRefusal) as caught:
        verifier.verify(f"DPoP {token}", setup.client.proof(token), method="POST", url=LEDGER_URL)
    assert caught.value.reason == "keys_unavailable"
    assert setup.cache.last_failure is not None
    assert setup.cache.last_failure.startswith("unusable JWKS")


def test_last_good_keys_serve_while_the_issuer_is_down_but_only_until_max_stale(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, max_age=300, refresh_interval=30, max_stale=3600)
    setup.present(setup.token())
    setup.endpoint.down = TimeoutError()
    setup.clock.advance(600)  # stale: a refresh is attempted and fails
    setup.present(setup.token())
    setup.clock.advance(3000)  # 3600 s after the last good fetch
    setup.refused("keys_unavailable", setup.token())
    setup.endpoint.down = None
    setup.clock.advance(30)
    setup.present(setup.token())


def test_retired_key_removed_from_the_jwks_is_no_longer_trusted(tmp_path: Path) -> None:
    setup = Setup(tmp_path, max_age=300)
    old_token_signer = setup.issuer.signer
    rotate(setup.keys_dir, alg="ES256", now=AT, demo=False)
    setup.present(setup.token(old_token_signer))  # retired, still published (retention 3600)
    setup.clock.advance(3600)  # retention over: the issuer no longer publishes it
    setup.refused("unknown_key", setup.token(old_token_signer))


def test_static_jwks_refuses_a_broken_document_at_configuration_time() -> None:
    with pytest.raises(JoseError):
        StaticJwks({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]})


@pytest.mark.parametrize(
    "options",
    [
        {"refresh_interval": 0},
        {"max_age": 10, "refresh_interval": 30},
        {"max_age": 600, "max_stale": 300},
    ],
)
def test_inconsistent_cache_settings_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        JwksCache(lambda: {"keys": []}, **options)


def test_keys_of_unsupported_type_are_refused_as_configuration() -> None:
    with pytest.raises(TypeError):
        LedgerTokenVerifier(
            ISSUER,
            AUDIENCE,
            42,
            replay=InMemoryReplayStore(),
            clock=FixedClock(AT),  # type: ignore[arg-type]
        )


# -- the in-memory replay store ----------------------------------------------------------------


def test_in_memory_store_accepts_a_jti_once_per_namespace() -> None:
    store = InMemoryReplayStore()
    assert store.consume("t-1", 100) is True
    assert store.consume("t-1", 100) is False
    assert store.consume("t-1", 100, namespace="dpop") is True


def test_in_memory_store_purges_only_expired_entries() -> None:
    store = InMemoryReplayStore()
    store.consume("old", 10)
    store.consume("new", 1000)
    assert store.purge(500) == 1
    assert store.consume("new", 1000) is False
    assert store.consume("old", 2000) is True


def test_namespace_must_fit_the_column() -> None:
    with pytest.raises(ValueError):
        InMemoryReplayStore().consume("t", 1, namespace="n" * 33)
