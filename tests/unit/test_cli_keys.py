"""`trustanchor keys generate | rotate | list` against a real key directory and a migrated SQLite
database (key changes are recorded in the audit log before they are made)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from trustanchor.audit.entries import OperatorChange, digest, parse_entry
from trustanchor.cli.context import CliContext
from trustanchor.cli.keys import keys
from trustanchor.clock import FixedClock
from trustanchor.keystore.signing_keys import SigningKeyStore
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade
from trustanchor.storage.tables import audit_leaves

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
RETENTION = 86400


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'trustanchor.db'}"


def write_config(tmp_path: Path, service: str, *, migrate: bool = True) -> Path:
    config = tmp_path / "test.toml"
    config.write_text(
        f"""
[service]
database_url = "{db_url(tmp_path)}"
keys_dir = "{tmp_path / "keys"}"
{service}
"""
    )
    if migrate:
        db = Database(db_url(tmp_path))
        upgrade(db)
        db.dispose()
    return config


def key_entries(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(what, id, action) of every operator_change leaf, in append order."""
    db = Database(db_url(tmp_path))
    with db.reader() as conn:
        rows = conn.execute(select(audit_leaves.c.entry).order_by(audit_leaves.c.id)).all()
    db.dispose()
    entries = [parse_entry(row.entry.encode("utf-8")) for row in rows]
    return [(e.what, e.id, e.action) for e in entries if isinstance(e, OperatorChange)]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, 'mode = "test"\nissuer = "http://127.0.0.1:8000"')


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def run(config: Path, clock: FixedClock, *args: str) -> Result:
    return CliRunner().invoke(keys, list(args), obj=CliContext(config_path=config, clock=clock))


def store(tmp_path: Path, clock: FixedClock | None = None) -> SigningKeyStore:
    return SigningKeyStore.open(
        tmp_path / "keys", retention=RETENTION, clock=clock or FixedClock(T0)
    )


def assert_no_private_material(output: str, tmp_path: Path) -> None:
    assert "PRIVATE KEY" not in output
    for pem in (tmp_path / "keys" / "signing").glob("*.pem"):
        body = "".join(pem.read_text().splitlines()[1:-1])
        assert body[:40] not in output.replace("\n", "")


def test_generate_creates_a_demo_key_readable_only_by_its_owner(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    result = run(config, clock, "generate")
    assert result.exit_code == 0, result.output
    [key] = store(tmp_path).all()
    assert key.alg == "ES256" and key.demo and key.retired_at is None and key.created_at == T0
    assert f"created signing key {key.kid} (ES256)" in result.output
    assert "marked demo: service.mode is 'test'" in result.output
    pem = tmp_path / "keys" / "signing" / f"{key.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert_no_private_material(result.output, tmp_path)


def test_second_generate_is_refused_and_suggests_rotate(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    run(config, clock, "generate")
    result = run(config, clock, "generate")
    assert result.exit_code == 1
    assert "a signing key is already active" in result.output
    assert "trustanchor keys rotate" in result.output
    assert len(store(tmp_path).all()) == 1


def test_generate_with_force_adds_a_second_active_key(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    run(config, clock, "generate")
    clock.advance(1)
    result = run(config, clock, "generate", "--force")
    assert result.exit_code == 0
    assert "published now; signs from 2023-11-14T22:23:21Z (in 600 s)" in result.output
    keys_ = store(tmp_path).all()
    assert len(keys_) == 2 and all(k.retired_at is None for k in keys_)
    assert store(tmp_path, clock).current().kid == keys_[0].kid  # published ahead
    clock.advance(600)
    assert store(tmp_path, clock).current().kid == keys_[-1].kid


def test_production_keys_are_not_marked_demo(tmp_path: Path, clock: FixedClock) -> None:
    config = write_config(
        tmp_path,
        'mode = "production"\nissuer = "https://as.bank.example"\n'
        'pairwise_secret = "Qm9vZ2llV29vZ2llWm9vbWJhNzc1MjQxOTg-9fT3kL"\n'
        'cookie_secret = "UmFuZG9tbHlQaWNrZWRDb29raWVLZXk5OTE_x7Rp2W"\n',
    )
    result = run(config, clock, "generate")
    assert result.exit_code == 0, result.output
    assert "demo" not in result.output
    assert not store(tmp_path).current().demo


def test_rotate_retires_the_old_key_but_keeps_it_published(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    """The new key is published at once and signs after tokens.key_activation_delay (600 s),
    the instant the old key retires; the old key stays published for key_retention after."""
    run(config, clock, "generate")
    old = store(tmp_path).current().kid
    clock.advance(3600)
    result = run(config, clock, "rotate")
    assert result.exit_code == 0, result.output
    switch = T0 + 3600 + 600
    ks = store(tmp_path, clock)
    new = ks.all()[-1].kid
    assert new != old and ks.get(old).retired_at == switch  # type: ignore[union-attr]
    assert ks.get(new).signs_from == switch  # type: ignore[union-attr]
    assert {k.kid for k in ks.published(T0 + 3600)} == {old, new}
    assert ks.current().kid == old
    clock.set(switch - 1)
    assert ks.current().kid == old
    clock.set(switch)
    assert ks.current().kid == new
    assert f"new signing key {new} (ES256): published now" in result.output
    assert "signs from 2023-11-14T23:23:20Z (in 600 s)" in result.output
    assert (
        f"retired {old}: signs until 2023-11-14T23:23:20Z, published until "
        "2023-11-15T23:23:20Z" in result.output
    )
    assert "running workers pick the change up within a second (no restart)" in result.output
    assert {k.kid for k in ks.published(switch + RETENTION - 1)} == {old, new}
    assert {k.kid for k in ks.published(switch + RETENTION)} == {new}
    assert_no_private_material(result.output, tmp_path)


def test_rotate_immediately_switches_at_once(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    run(config, clock, "generate")
    old = store(tmp_path).current().kid
    clock.advance(10)
    result = run(config, clock, "rotate", "--immediately")
    assert result.exit_code == 0, result.output
    assert "signs now (--immediately)" in result.output
    ks = store(tmp_path, clock)
    assert ks.current().kid != old and ks.get(old).retired_at == T0 + 10  # type: ignore[union-attr]


def test_rotate_activate_after_is_at_least_the_ledger_cache_lifetime(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    run(config, clock, "generate")
    refused = run(config, clock, "rotate", "--activate-after", "299")
    assert refused.exit_code == 2 and "299 is not in the range x>=300" in refused.output
    both = run(config, clock, "rotate", "--activate-after", "900", "--immediately")
    assert both.exit_code == 2 and "exclude each other" in both.output
    assert len(store(tmp_path).all()) == 1
    result = run(config, clock, "rotate", "--activate-after", "900")
    assert result.exit_code == 0, result.output
    [new] = [k for k in store(tmp_path).all() if k.retired_at is None]
    assert new.signs_from == T0 + 900


def test_rotate_without_a_key_creates_the_first(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    result = run(config, clock, "rotate")
    assert result.exit_code == 0
    assert "no previous key was active" in result.output
    assert len(store(tmp_path).all()) == 1


def test_list_shows_retired_key_as_published_until_retention_ends(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    run(config, clock, "generate")
    old = store(tmp_path).current().kid
    run(config, clock, "rotate")
    [new] = [k.kid for k in store(tmp_path).all() if k.retired_at is None]

    def rows() -> dict[str, list[str]]:
        listing = run(config, clock, "list")
        assert listing.exit_code == 0
        assert_no_private_material(listing.output, tmp_path)
        return {line.split()[0]: line.split()[2:] for line in listing.output.splitlines()[1:]}

    t0, switch, gone = "2023-11-14T22:13:20Z", "2023-11-14T22:23:20Z", "2023-11-15T22:23:20Z"
    lines = rows()
    assert lines[new] == [t0, switch, "-", "-", "next,", "demo"]
    assert lines[old] == [t0, t0, switch, gone, "current,", "retiring,", "demo"]
    clock.advance(600)
    lines = rows()
    assert lines[new] == [t0, switch, "-", "-", "current,", "demo"]
    assert lines[old] == [t0, t0, switch, gone, "retired,", "demo"]
    clock.advance(RETENTION)
    assert rows()[old][-2:] == ["expired,", "demo"]


def test_list_without_keys_says_what_to_do(config: Path, clock: FixedClock) -> None:
    result = run(config, clock, "list")
    assert result.exit_code == 0
    assert "run `trustanchor keys generate`" in result.output


def test_corrupt_key_index_is_a_friendly_error(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    (tmp_path / "keys" / "signing").mkdir(parents=True)
    (tmp_path / "keys" / "signing" / "keys.json").write_text(json.dumps({"not": "a list"}))
    result = run(config, clock, "list")
    assert result.exit_code == 1
    assert "cannot read the signing keys" in result.output
    assert "malformed key index" in result.output


def test_invalid_configuration_is_a_friendly_error(tmp_path: Path, clock: FixedClock) -> None:
    config = write_config(tmp_path, 'mode = "sometimes"')
    result = run(config, clock, "list")
    assert result.exit_code == 1
    assert "service.mode: must be one of" in result.output


# -- issue 3: every key change is an operator_change entry, recorded before the change ----------


def test_generate_records_the_key_by_the_digest_of_its_kid(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    result = run(config, clock, "generate")
    assert result.exit_code == 0, result.output
    kid = store(tmp_path).current().kid
    # An auditor finds the entry by hashing the kid of a published key.
    assert key_entries(tmp_path) == [("signing_key", digest(kid), "generated")]
    assert f"audit log: operator_change signing_key {digest(kid)} generated" in result.output


def test_rotate_records_the_new_key_and_every_key_it_retires(
    tmp_path: Path, config: Path, clock: FixedClock
) -> None:
    run(config, clock, "generate")
    clock.advance(1)
    run(config, clock, "generate", "--force")
    first, second = (k.kid for k in store(tmp_path).all())
    clock.advance(60)
    result = run(config, clock, "rotate")
    assert result.exit_code == 0, result.output
    new = store(tmp_path).all()[-1].kid
    assert key_entries(tmp_path)[2:] == [
        ("signing_key", digest(new), "generated"),
        ("signing_key", digest(first), "retired"),
        ("signing_key", digest(second), "retired"),
    ]


def test_refused_generate_records_nothing(tmp_path: Path, config: Path, clock: FixedClock) -> None:
    run(config, clock, "generate")
    assert run(config, clock, "generate").exit_code == 1  # already active, no --force
    assert len(key_entries(tmp_path)) == 1


def test_key_change_without_a_database_is_refused_and_changes_nothing(
    tmp_path: Path, clock: FixedClock
) -> None:
    config = write_config(
        tmp_path, 'mode = "test"\nissuer = "http://127.0.0.1:8000"', migrate=False
    )
    for command in ("generate", "rotate"):
        result = run(config, clock, command)
        assert result.exit_code == 1
        assert "no key was created or retired" in result.output
        assert "run `trustanchor init` first" in result.output
        assert store(tmp_path).all() == []
        assert not (tmp_path / "keys" / "signing").exists()


def test_a_key_that_cannot_be_written_after_recording_is_reported(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Recorded first, so the only gap is an entry naming a key that never existed; the
    command says so and fails."""
    config = write_config(tmp_path, 'mode = "test"\nissuer = "http://127.0.0.1:8000"')
    (tmp_path / "keys").write_text("not a directory")
    result = run(config, clock, "generate")
    assert result.exit_code == 1
    assert "the audit log records signing key" in result.output
    assert "could not be fully updated" in result.output
    [(what, _ref, action)] = key_entries(tmp_path)
    assert (what, action) == ("signing_key", "generated")
