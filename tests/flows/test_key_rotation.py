"""Signing-key rotation reaches a running service without a restart (issue 14).

`trustanchor keys rotate` runs as its own process against the configuration a running service
uses. Over HTTP: the new key is in the JWKS at once (within the store's once-a-second check);
tokens stay signed by the old key until the activation instant (tokens.key_activation_delay
after the rotation), then by the new one; the old key stays published for key_retention; and the
ledger module's JWKS cache (trustanchor.ledger.JwksCache, as a ledger configures it) verifies
tokens across the switch without fetching the JWKS again for the new kid. In process the
server's clock is shifted; against `trustanchor serve` (two workers) the delayed rotation is
seen by every worker at once, `rotate --immediately` switches every worker within a second,
and after `keys rotate-audit` the workers sign the next checkpoints with the new audit key.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.clock import ShiftableClock
from support.server import REPO, RunningServer, free_port, running_server
from support.service_process import running_service, write_config

from trustanchor.audit.checkpoint import verify_checkpoint
from trustanchor.audit.note import Ed25519Verifier, NoteError
from trustanchor.config import load_settings
from trustanchor.jose import jws
from trustanchor.keystore.signing_keys import SigningKeyStore
from trustanchor.ledger import JwksCache
from trustanchor.storage import audit_tree
from trustanchor.storage.database import Database

CLIENT, SECRET = "secret-client", "s3cret-value"
CLIENTS = [
    {
        "client_id": CLIENT,
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": SECRET,
        "grant_types": ["client_credentials"],
    }
]
DELAY = 600  # tokens.key_activation_delay's default
RETENTION = 86400  # tokens.key_retention's default


def token(base: str) -> str:
    answer = requests.post(
        base + "/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT, SECRET),
        headers={"Connection": "close"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def kid_of(jwt: str) -> str:
    header = jwt.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def published(base: str) -> list[str]:
    answer = requests.get(base + "/jwks", headers={"Connection": "close"}, timeout=10)
    assert answer.status_code == 200
    return [key["kid"] for key in answer.json()["keys"]]


def cli(config: Path, *args: str) -> str:
    """``trustanchor --config <config> keys …`` as an operator runs it, in its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "trustanchor", "--config", str(config), "keys", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def new_kid(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("new signing key ")]
    return line.split()[3]


def wait_for(check: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.1)


class LedgerSide:
    """The ledger module's JWKS cache over the service's /jwks, counting its fetches."""

    def __init__(self, base: str) -> None:
        self.fetches = 0
        self.base = base
        self.cache = JwksCache(self.fetch)  # the defaults a ledger gets: max_age 300 s

    def fetch(self) -> bytes:
        self.fetches += 1
        return requests.get(self.base + "/jwks", timeout=10).content

    def verifies(self, jwt: str, at: int) -> bool:
        key = self.cache.key(kid_of(jwt), at)
        if key is None:
            return False
        jws.verify_signature(jws.parse(jwt, max_bytes=16384, allowed_algs=("ES256",)), key)
        return True


@pytest.fixture
def served(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[RunningServer, ShiftableClock, Path]]:
    port = free_port()
    config = write_config(
        tmp_path / "config",
        port=port,
        database_url=database_url,
        keys_dir=tmp_path / "keys",
        clients=CLIENTS,
    )
    clock = ShiftableClock()
    with running_server(load_settings(config, environ={}), clock=clock) as server:
        yield server, clock, config


def test_rotation_is_published_at_once_and_signs_after_the_delay(
    served: tuple[RunningServer, ShiftableClock, Path], tmp_path: Path
) -> None:
    server, clock, config = served
    base = server.issuer
    first = token(base)
    old = kid_of(first)
    assert published(base) == [old]
    ledger = LedgerSide(base)
    assert ledger.verifies(first, clock.now()) and ledger.fetches == 1

    output = cli(config, "rotate")
    new = new_kid(output)
    assert new != old and "running workers pick the change up within a second" in output
    on_disk = SigningKeyStore.open(tmp_path / "keys", retention=RETENTION, clock=clock)
    switch = on_disk.get(new).signs_from  # type: ignore[union-attr]
    assert on_disk.get(old).retired_at == switch  # type: ignore[union-attr]
    assert DELAY - 10 <= switch - clock.now() <= DELAY  # set by the CLI's own clock

    # Published at once (the store looks at the key directory once a second), not signing yet.
    wait_for(lambda: new in published(base))
    assert set(published(base)) == {old, new}
    assert kid_of(token(base)) == old

    # Until the activation instant the old key signs; a ledger whose cache ages out meanwhile
    # refetches on its own schedule and so learns the new key before any token carries it.
    clock.shift(switch - 5 - clock.now())
    before = token(base)
    assert kid_of(before) == old
    assert ledger.verifies(before, clock.now()) and ledger.fetches == 2

    # From the activation instant on, the new key signs; the ledger's cached JWKS already has it.
    clock.shift(switch - clock.now())
    after = token(base)
    assert kid_of(after) == new
    assert ledger.verifies(after, clock.now()) and ledger.fetches == 2
    assert ledger.verifies(before, clock.now())  # tokens of the old key still verify
    assert set(published(base)) == {old, new}

    # The old key stays published for key_retention after it stopped signing, then leaves.
    clock.shift(switch + RETENTION - 2 - clock.now())
    assert set(published(base)) == {old, new}
    clock.shift(2)
    assert published(base) == [new]
    assert kid_of(token(base)) == new


def test_a_second_rotation_before_the_first_activates_replaces_the_pending_key(
    served: tuple[RunningServer, ShiftableClock, Path],
) -> None:
    server, clock, config = served
    base = server.issuer
    old = kid_of(token(base))
    pending = new_kid(cli(config, "rotate"))
    newest = new_kid(cli(config, "rotate", "--activate-after", "900"))
    wait_for(lambda: set(published(base)) == {old, pending, newest})
    # The pending key was retired at the newest key's activation: it signs from its own
    # activation until then, and the old key until the pending key's activation.
    clock.shift(DELAY + 1)
    assert kid_of(token(base)) == pending
    clock.shift(900 - DELAY)
    assert kid_of(token(base)) == newest


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_serve_workers_pick_up_a_rotation_without_restart(
    tmp_path: Path, database_url: str
) -> None:
    with running_service(
        tmp_path, database_url=database_url, clients=CLIENTS, workers=2
    ) as service:
        base = service.issuer
        pids = {w.pid for w in service.workers().values()}
        old = kid_of(token(base))

        pending = new_kid(cli(service.config_path, "rotate"))
        # Every answer (connections closed, so both workers answer some) shows the new key
        # once the workers looked at the directory, and none is signed with it yet.
        time.sleep(1.5)
        for _ in range(12):
            assert set(published(base)) == {old, pending}
            assert kid_of(token(base)) == old

        urgent = new_kid(cli(service.config_path, "rotate", "--immediately"))
        time.sleep(1.5)
        for _ in range(12):
            assert kid_of(token(base)) == urgent
            assert set(published(base)) == {old, pending, urgent}

        # The audit key too: the workers' integrators sign the next checkpoints with it.
        rotated = cli(service.config_path, "rotate-audit")
        [new_vkey] = [line.split()[1] for line in rotated.splitlines() if "vkey:" in line]
        origin = Ed25519Verifier.from_vkey(new_vkey).name
        db = Database(database_url)
        try:
            deadline = time.monotonic() + 15
            while True:
                token(base)  # an entry to integrate
                with db.reader() as conn:
                    latest = audit_tree.latest_checkpoint(conn)
                assert latest is not None
                try:
                    verify_checkpoint(
                        latest.signed_note, [Ed25519Verifier.from_vkey(new_vkey)], origin=origin
                    )
                    break
                except NoteError:
                    assert time.monotonic() < deadline, "still signed with the old audit key"
                    time.sleep(0.2)
        finally:
            db.dispose()
        assert {w.pid for w in service.workers().values()} == pids  # no worker restarted
