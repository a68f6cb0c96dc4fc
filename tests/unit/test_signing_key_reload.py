"""The signing key store follows its key directory while it runs (issue 14): a rotation written
by another process is seen at the next second of the injected clock, never more often; the key
that signs is chosen by time; a broken directory keeps the keys in use."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from trustanchor.clock import FixedClock
from trustanchor.keystore.signing_keys import (
    KeyStoreError,
    SigningKeyStore,
    generate_key,
    new_private_key,
    rotate,
)
from trustanchor.oauth.jwt_tokens import TokenSigner

T0 = 1_700_000_000


def open_store(tmp_path: Path, clock: FixedClock) -> SigningKeyStore:
    return SigningKeyStore.open(tmp_path, retention=3600, clock=clock)


def header_kid(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def test_a_rotation_is_seen_at_the_next_second_and_signs_from_its_activation(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    old = generate_key(tmp_path, alg="ES256", now=T0, demo=False)
    store = open_store(tmp_path, clock)
    signer = TokenSigner(store, issuer="https://as.example")
    assert header_kid(signer.access_token({"sub": "x"})) == old

    new, retired = rotate(tmp_path, alg="ES256", now=T0, demo=False, activate_at=T0 + 600)
    assert retired == [old]
    assert [k.kid for k in store.published(T0)] == [old]  # same second: not looked at yet
    clock.advance(1)
    assert {k.kid for k in store.published(clock.now())} == {old, new}
    assert store.current().kid == old
    clock.set(T0 + 599)
    assert header_kid(signer.access_token({"sub": "x"})) == old
    clock.set(T0 + 600)
    assert header_kid(signer.access_token({"sub": "x"})) == new
    assert store.current().kid == new
    assert store.verification_key(old, T0 + 600 + 3599) is not None
    assert store.verification_key(old, T0 + 600 + 3600) is None


def test_an_index_without_active_from_signs_from_creation(tmp_path: Path) -> None:
    """Key directories written before issue 14 keep working."""
    kid = generate_key(tmp_path, alg="ES256", now=T0, demo=False)
    index = tmp_path / "signing" / "keys.json"
    entries = json.loads(index.read_text())
    del entries[0]["active_from"]
    index.write_text(json.dumps(entries))
    store = open_store(tmp_path, FixedClock(T0))
    assert store.current().kid == kid and store.current().signs_from == T0


def test_a_broken_directory_keeps_the_keys_in_use(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    kid = generate_key(tmp_path, alg="ES256", now=T0, demo=False)
    store = open_store(tmp_path, clock)
    index = tmp_path / "signing" / "keys.json"
    entries = json.loads(index.read_text())
    entries.append({**entries[0], "kid": "missing-key-file"})
    index.write_text(json.dumps(entries))
    clock.advance(1)
    assert store.current().kid == kid
    assert [k.kid for k in store.all()] == [kid]


def test_a_pem_file_whose_key_is_not_its_kid_is_refused(tmp_path: Path) -> None:
    kid = generate_key(tmp_path, alg="ES256", now=T0, demo=False)
    other = generate_key(
        tmp_path, alg="ES256", now=T0 + 1, demo=False, private=new_private_key("ES256")
    )
    pem = tmp_path / "signing" / f"{kid}.pem"
    pem.write_bytes((tmp_path / "signing" / f"{other}.pem").read_bytes())
    with pytest.raises(KeyStoreError, match="thumbprint is not its kid"):
        open_store(tmp_path, FixedClock(T0))


def test_a_key_cannot_sign_before_it_is_published(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="before it is published"):
        generate_key(tmp_path, alg="ES256", now=T0, demo=False, active_from=T0 - 1)


def test_a_scheduled_demo_key_still_counts_as_demo_until_it_retires(tmp_path: Path) -> None:
    """Production refuses demo keys: one whose retirement is only scheduled still signs."""
    generate_key(tmp_path, alg="ES256", now=T0, demo=True)
    rotate(tmp_path, alg="ES256", now=T0, demo=False, activate_at=T0 + 600)
    assert open_store(tmp_path, FixedClock(T0 + 599)).has_demo_keys
    assert not open_store(tmp_path, FixedClock(T0 + 600)).has_demo_keys
