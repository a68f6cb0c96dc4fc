"""The client registry on SQLite and PostgreSQL: idempotent upserts, declarations, the parse
cache and its invalidation, and the ``trustanchor clients`` commands against a real config."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import event, text, update

from trustanchor.cli.clients import clients
from trustanchor.cli.context import CliContext
from trustanchor.clock import FixedClock
from trustanchor.digests import secret_digest
from trustanchor.domain.clients import Client
from trustanchor.oauth.client_metadata import client_from_declaration, client_to_metadata
from trustanchor.services import client_registry
from trustanchor.services.client_registry import ClientRegistry, apply_client_declarations
from trustanchor.storage import clients_repo
from trustanchor.storage.database import Database, StorageUnavailable
from trustanchor.storage.tables import clients as clients_table

NOW = 1_750_000_000


def _jwk(kid: str) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}


KEY_1 = _jwk("k1")
KEY_2 = _jwk("k2")


def _decl(client_id: str = "bank", **changes: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "client_id": client_id,
        "client_name": {"en": "Bank", "ja": "銀行"},
        "client_type": "confidential",
        "jwks": {"keys": [KEY_1]},
        "redirect_uris": [f"https://{client_id}.example/cb"],
        "scope": "openid",
    }
    decl.update(changes)
    return decl


def _client(client_id: str = "bank", **changes: Any) -> Client:
    client, _ = client_from_declaration(
        _decl(client_id, **changes), mode="production", base_dir=Path()
    )
    return client


def test_upsert_is_idempotent_and_round_trips(database: Database) -> None:
    repo = ClientRegistry(database, clock=FixedClock(NOW))
    client = _client()
    assert repo.upsert(client, None, NOW) is True
    assert repo.upsert(client, None, NOW + 5) is False
    stored = repo.get("bank")
    assert stored is not None
    assert stored.updated_at == NOW
    assert stored == Client(**{**_fields(client), "updated_at": NOW})


def test_every_change_moves_updated_at_forward(database: Database) -> None:
    repo = ClientRegistry(database, clock=FixedClock(NOW))
    repo.upsert(_client(), None, NOW)
    assert repo.upsert(_client(scope="openid account_link"), None, NOW) is True
    stored = repo.get("bank")
    assert stored is not None and stored.updated_at == NOW + 1
    assert stored.scopes == frozenset({"openid", "account_link"})
    assert repo.upsert(stored, secret_digest("changed secret"), NOW) is True
    assert repo.secret_digest("bank") == secret_digest("changed secret")


def test_cache_serves_within_ttl_and_notices_updated_at(database: Database) -> None:
    clock = FixedClock(NOW)
    reader = ClientRegistry(database, cache_ttl=30, clock=clock)
    writer = ClientRegistry(database, clock=clock)
    writer.upsert(_client(), None, NOW)
    first = reader.get("bank")
    assert first is not None and first.scopes == frozenset({"openid"})

    clock.advance(31)
    # Nothing changed: the parsed client (and its keys) are reused, not re-parsed.
    assert reader.get("bank") is first

    writer.upsert(_client(scope="openid extra"), None, clock.now())
    assert reader.get("bank") is first  # still within the new TTL window
    clock.advance(31)
    refreshed = reader.get("bank")
    assert refreshed is not None and refreshed is not first
    assert refreshed.scopes == frozenset({"openid", "extra"})


def test_own_writes_invalidate_the_cache_at_once(database: Database) -> None:
    repo = ClientRegistry(database, cache_ttl=3600, clock=FixedClock(NOW))
    repo.upsert(_client(), None, NOW)
    assert repo.get("bank") is not None
    repo.upsert(_client(scope="openid more"), None, NOW)
    updated = repo.get("bank")
    assert updated is not None and "more" in updated.scopes
    assert repo.remove("bank") is True
    assert repo.get("bank") is None


def test_removed_elsewhere_is_noticed_after_ttl(database: Database) -> None:
    clock = FixedClock(NOW)
    reader = ClientRegistry(database, cache_ttl=30, clock=clock)
    writer = ClientRegistry(database, clock=clock)
    writer.upsert(_client(), None, NOW)
    assert reader.get("bank") is not None
    assert writer.remove("bank") is True
    assert writer.remove("bank") is False
    clock.advance(31)
    assert reader.get("bank") is None


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement sent on the real engine while the block runs."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def test_changes_by_another_process_are_seen_within_the_ttl(database: Database) -> None:
    """Issue 14: another process (its own Database and registry on the same database) adds,
    changes and removes clients; this registry sees each within cache_ttl, and its own writes
    at once."""
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    elsewhere = Database(database.url)
    try:
        other = ClientRegistry(elsewhere, clock=clock)
        other.upsert(_client("gone"), None, NOW)
        assert repo.get("later") is None and repo.get("gone") is not None  # snapshot loaded
        other.upsert(_client("later"), None, NOW)
        other.upsert(_client("gone", scope="openid changed"), None, NOW)
        assert repo.get("later") is None  # within the TTL: the snapshot as loaded
        clock.advance(29)
        assert repo.get("later") is None
        clock.advance(1)
        later, changed = repo.get("later"), repo.get("gone")
        assert later is not None and later.client_id == "later"
        assert changed is not None and "changed" in changed.scopes
        assert set(repo.verification_keys(later)) == {"k1"}
        assert other.remove("gone") is True
        clock.advance(30)
        assert repo.get("gone") is None and repo.get("later") is not None
        # Through this registry: at once, however long the TTL.
        assert repo.get("mine") is None
        repo.upsert(_client("mine"), None, clock.now())
        assert repo.get("mine") is not None
        assert repo.remove("later") is True
        assert repo.get("later") is None
    finally:
        elsewhere.dispose()


def test_no_lookup_reaches_the_database_registered_or_not(database: Database) -> None:
    """Issue 14: after the snapshot is loaded neither a registered nor an unknown client_id
    costs a query (counted on the real engine); a refresh after the TTL is one query of ids and
    times whatever id triggers it, plus one read of the rows that changed."""
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    repo.upsert(_client(), None, NOW)
    repo.upsert(_client("other"), secret_digest("s3cret"), NOW)
    with _statements(database) as statements:
        for _ in range(5):
            assert repo.get("bank") is not None and repo.get("ghost") is None
            assert repo.secret_digest("other") == secret_digest("s3cret")
            assert repo.secret_digest("ghost") is None
        assert statements == []
        clock.advance(30)
        assert repo.get("ghost") is None  # an unknown id triggers the refresh ...
        assert len(statements) == 1 and "metadata" not in statements[0]  # ids and times only
        assert repo.get("bank") is not None and repo.get("ghost") is None
        assert len(statements) == 1
        clock.advance(30)
        assert repo.get("bank") is not None  # ... or a registered one: the same query
        assert len(statements) == 2 and statements[1] == statements[0]
        ClientRegistry(database, clock=clock).upsert(_client(scope="openid x"), None, NOW)
        statements.clear()
        clock.advance(30)
        refreshed = repo.get("ghost")
        assert refreshed is None and len(statements) == 2  # ids and times, then the changed row
        bank = repo.get("bank")
        assert bank is not None and "x" in bank.scopes and len(statements) == 2


def test_a_flood_of_unknown_ids_costs_no_query_and_no_memory(database: Database) -> None:
    """Issue 14: the attack emptied a bounded memory of unknown ids with a flood of made-up ids;
    there is no such memory now. 10,000 unknown ids: no query, nothing kept."""
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    repo.upsert(_client(), None, NOW)
    assert repo.get("bank") is not None
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        with _statements(database) as statements:
            for index in range(10_000):
                assert repo.get(f"made-up-{index:05d}") is None
                assert repo.secret_digest(f"made-up-{index:05d}") is None
            assert repo.get("bank") is not None
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert statements == []
    own = [tracemalloc.Filter(True, client_registry.__file__)]
    grown = sum(
        stat.size_diff
        for stat in after.filter_traces(own).compare_to(before.filter_traces(own), "filename")
    )
    assert grown < 4096  # nothing per id: at most a few small objects
    snapshot = repo._snapshot
    assert snapshot is not None and set(snapshot.entries) == {"bank"}


def test_the_snapshot_is_bounded(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """More registered clients than the registry holds: a new one is refused when written
    (``clients add`` says so), and one written past it is refused when read (fail closed)
    instead of answering some ids from memory and others from the database."""
    monkeypatch.setattr(client_registry, "MAX_CLIENTS", 3)
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    for client_id in ("a", "b", "c"):
        repo.upsert(_client(client_id), None, NOW)
    assert repo.get("a") is not None
    with pytest.raises(client_registry.TooManyClients):  # a fourth is refused when written
        repo.upsert(_client("d"), None, NOW)
    assert repo.upsert(_client("a", scope="openid profile"), None, NOW + 1)  # not a new one
    # ... but a row written past the registry (another tool, an older version) is refused
    # when read
    with database.transaction() as conn:
        clients_repo.upsert_row(conn, "d", client_to_metadata(_client("d")), None, NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)  # a worker starting now
    with pytest.raises(client_registry.TooManyClients):
        repo.get("a")
    with pytest.raises(client_registry.TooManyClients):
        repo.get("ghost")
    assert repo.remove("d") is True
    assert repo.get("a") is not None and repo.get("d") is None


def test_a_failed_refresh_is_not_answered_from_the_old_snapshot(database: Database) -> None:
    """The refresh fails (here: the table is out of reach): lookups fail, registered or not,
    instead of serving a snapshot older than the TTL; the next lookup tries again."""
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    repo.upsert(_client(), None, NOW)
    assert repo.get("bank") is not None
    with database.transaction() as conn:
        conn.execute(text("ALTER TABLE clients RENAME TO clients_away"))
    clock.advance(30)
    for client_id in ("bank", "ghost", "bank"):
        with pytest.raises(Exception) as info:
            repo.get(client_id)
        assert not isinstance(info.value, AssertionError)
    with database.transaction() as conn:
        conn.execute(text("ALTER TABLE clients_away RENAME TO clients"))
    assert repo.get("bank") is not None and repo.get("ghost") is None


def test_while_another_thread_refreshes(database: Database) -> None:
    """One thread refreshes at a time (here the test holds the refresh lock as that thread
    would): the others answer from the previous snapshot without a query, unless the last
    refresh failed; then they fail at once rather than queue behind the database."""
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    repo.upsert(_client(), None, NOW)
    assert repo.get("bank") is not None
    clock.advance(30)
    with repo._refresh_lock, _statements(database) as statements:
        assert repo.get("bank") is not None and repo.get("ghost") is None
    assert statements == []
    with database.transaction() as conn:
        conn.execute(text("ALTER TABLE clients RENAME TO clients_away"))
    with pytest.raises(Exception):  # noqa: B017 - the database's own error, whichever it is
        repo.get("ghost")
    with database.transaction() as conn:
        conn.execute(text("ALTER TABLE clients_away RENAME TO clients"))
    with repo._refresh_lock, pytest.raises(StorageUnavailable):
        repo.get("bank")
    assert repo.get("bank") is not None


def test_a_stored_row_that_no_longer_validates_affects_that_id_only(database: Database) -> None:
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=30, clock=clock)
    repo.upsert(_client(), None, NOW)
    repo.upsert(_client("broken"), None, NOW)
    with database.transaction() as conn:
        conn.execute(
            update(clients_table)
            .where(clients_table.c.client_id == "broken")
            .values(metadata={"client_id": "broken"}, updated_at=NOW + 1)
        )
    clock.advance(30)
    with pytest.raises(ValueError):
        repo.get("broken")
    assert repo.get("bank") is not None and repo.get("ghost") is None


def test_verification_keys_follow_the_client_version(database: Database) -> None:
    clock = FixedClock(NOW)
    repo = ClientRegistry(database, cache_ttl=0, clock=clock)
    repo.upsert(_client(), None, NOW)
    client = repo.get("bank")
    assert client is not None
    assert set(repo.verification_keys(client)) == {"k1"}
    repo.upsert(_client(jwks={"keys": [KEY_1, KEY_2]}), None, NOW)
    rotated = repo.get("bank")
    assert rotated is not None
    assert set(repo.verification_keys(rotated)) == {"k1", "k2"}
    # An old copy still resolves to its own keys, never to a newer version's.
    assert set(repo.verification_keys(client)) == {"k1"}


def test_list_is_sorted_by_client_id(database: Database) -> None:
    repo = ClientRegistry(database, clock=FixedClock(NOW))
    for client_id in ("zeta", "alpha", "mid"):
        repo.upsert(_client(client_id), None, NOW)
    assert [c.client_id for c in repo.list()] == ["alpha", "mid", "zeta"]


def test_apply_declarations_is_idempotent(database: Database) -> None:
    decls = [_decl("bank"), _decl("other")]
    assert apply_client_declarations(
        database, decls, mode="production", base_dir=Path(), now=NOW
    ) == ["bank", "other"]
    assert (
        apply_client_declarations(database, decls, mode="production", base_dir=Path(), now=NOW + 10)
        == []
    )
    changed = [_decl("bank", scope="openid account_link"), _decl("other")]
    assert apply_client_declarations(
        database, changed, mode="production", base_dir=Path(), now=NOW + 20
    ) == ["bank"]
    stored = ClientRegistry(database, clock=FixedClock(NOW)).get("other")
    assert stored is not None and stored.updated_at == NOW


def test_apply_declarations_stores_demo_secret_digest(database: Database) -> None:
    decl = _decl(
        "demo",
        token_endpoint_auth_method="client_secret_basic",
        jwks=None,
        client_secret="demo-secret-123",
    )
    apply_client_declarations(database, [decl], mode="demo", base_dir=Path(), now=NOW)
    repo = ClientRegistry(database, clock=FixedClock(NOW))
    assert repo.secret_digest("demo") == secret_digest("demo-secret-123")
    client = repo.get("demo")
    assert client is not None and client.auth_method == "client_secret_basic"


def test_invalid_declarations_write_nothing(database: Database) -> None:
    bad = [_decl("good"), _decl("bad", redirect_uris=["http://bad.example/cb"]), _decl("good")]
    with pytest.raises(ValueError) as info:
        apply_client_declarations(database, bad, mode="production", base_dir=Path(), now=NOW)
    message = str(info.value)
    assert "'bad': redirect_uris" in message
    assert "'good': declared more than once" in message
    assert ClientRegistry(database, clock=FixedClock(NOW)).list() == []


def _fields(client: Client) -> dict[str, Any]:
    return {name: getattr(client, name) for name in Client.__dataclass_fields__}


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli_config(database: Database, tmp_path: Path) -> Path:
    """A config directory like an operator's: one settings file over the packaged defaults."""
    config = tmp_path / "test.toml"
    config.write_text(
        "[service]\n"
        'mode = "test"\n'
        'issuer = "https://as.example"\n'
        f"database_url = {json.dumps(database.url)}\n"
        "\n[[clients]]\n"
        'client_id = "declared"\n'
        'client_type = "public"\n'
        'redirect_uris = ["https://declared.example/cb"]\n',
        encoding="utf-8",
    )
    return config


def _run(config: Path, *args: str) -> Any:
    context = CliContext(config_path=config, clock=FixedClock(NOW))
    try:
        return CliRunner().invoke(clients, list(args), obj=context)
    finally:
        if context._db is not None:
            context._db.dispose()


def test_cli_add_show_list_remove(cli_config: Path, tmp_path: Path) -> None:
    (tmp_path / "bank.jwks").write_text(json.dumps({"keys": [KEY_1]}), encoding="utf-8")
    decl = tmp_path / "bank.toml"
    decl.write_text(
        "[[clients]]\n"
        'client_id = "bank"\n'
        'client_name = { en = "Bank", ja = "銀行" }\n'
        'client_type = "confidential"\n'
        'jwks_file = "bank.jwks"\n'
        'redirect_uris = ["https://bank.example/cb"]\n'
        'scope = "openid account_link"\n',
        encoding="utf-8",
    )
    empty = _run(cli_config, "list")
    assert empty.exit_code == 0 and "No clients registered" in empty.output

    added = _run(cli_config, "add", "--file", str(decl))
    assert added.exit_code == 0, added.output
    assert "Client bank added." in added.output
    again = _run(cli_config, "add", "--file", str(decl))
    assert again.exit_code == 0 and "already registered" in again.output

    shown = _run(cli_config, "show", "bank")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["client_id"] == "bank"
    assert document["jwks"] == {"keys": [KEY_1]}
    assert document["scope"] == "account_link openid"
    assert document["updated_at"] == NOW

    listed = _run(cli_config, "list")
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [  # a table like the other list commands
        "client_id  type          auth method      branch  name",
        "bank       confidential  private_key_jwt  -       Bank",
    ]

    removed = _run(cli_config, "remove", "bank")
    assert removed.exit_code == 0 and "Client bank removed." in removed.output
    gone = _run(cli_config, "remove", "bank")
    assert gone.exit_code == 1 and "clients list" in gone.output


def test_cli_show_never_prints_secrets(cli_config: Path, tmp_path: Path) -> None:
    decl = tmp_path / "demo.toml"
    decl.write_text(
        'client_id = "demo"\n'
        'client_type = "confidential"\n'
        'token_endpoint_auth_method = "client_secret_basic"\n'
        'client_secret = "demo-secret-xyz"\n'
        'redirect_uris = ["http://127.0.0.1:9000/cb"]\n',
        encoding="utf-8",
    )
    assert _run(cli_config, "add", "--file", str(decl)).exit_code == 0
    shown = _run(cli_config, "show", "demo")
    assert shown.exit_code == 0
    assert "demo-secret-xyz" not in shown.output
    assert secret_digest("demo-secret-xyz") not in shown.output


def test_cli_refuses_invalid_declarations_with_advice(cli_config: Path, tmp_path: Path) -> None:
    decl = tmp_path / "bad.toml"
    decl.write_text(
        'client_id = "bad"\nclient_type = "public"\nredirect_uris = ["https://x.example/cb#f"]\n',
        encoding="utf-8",
    )
    result = _run(cli_config, "add", "--file", str(decl))
    assert result.exit_code == 1
    assert "redirect_uris" in result.output and "fragment" in result.output
    assert "Fix the declaration" in result.output

    two = tmp_path / "two.toml"
    two.write_text('[[clients]]\nclient_id = "a"\n[[clients]]\nclient_id = "b"\n', encoding="utf-8")
    result = _run(cli_config, "add", "--file", str(two))
    assert result.exit_code == 1 and "exactly one [[clients]]" in result.output


def test_cli_show_unknown_client(cli_config: Path) -> None:
    result = _run(cli_config, "show", "ghost")
    assert result.exit_code == 1
    assert "no client 'ghost'" in result.output


def test_cli_warns_when_the_client_is_declared_in_config(cli_config: Path, tmp_path: Path) -> None:
    decl = tmp_path / "declared.toml"
    decl.write_text(
        'client_id = "declared"\nclient_type = "public"\n'
        'redirect_uris = ["https://declared.example/cb"]\n',
        encoding="utf-8",
    )
    added = _run(cli_config, "add", "--file", str(decl))
    assert added.exit_code == 0
    assert "also declared in the configuration" in added.output


def test_cli_explains_an_uninitialised_database(tmp_path: Path) -> None:
    config = tmp_path / "test.toml"
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    config.write_text(
        f'[service]\nmode = "test"\nissuer = "https://as.example"\ndatabase_url = "{url}"\n',
        encoding="utf-8",
    )
    result = _run(config, "list")
    assert result.exit_code == 1
    assert "trustanchor init" in result.output


def test_cli_add_refuses_a_client_beyond_what_the_registry_holds(
    cli_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the registry full, ``clients add`` of a new client says so and writes nothing (the
    service would otherwise refuse every client at its next refresh); updating one still works."""
    monkeypatch.setattr(client_registry, "MAX_CLIENTS", 1)
    files = []
    for client_id in ("one", "two"):
        decl = tmp_path / f"{client_id}.toml"
        decl.write_text(
            f'client_id = "{client_id}"\nclient_type = "public"\n'
            f'redirect_uris = ["https://{client_id}.example/cb"]\n',
            encoding="utf-8",
        )
        files.append(decl)
    assert _run(cli_config, "add", "--file", str(files[0])).exit_code == 0
    refused = _run(cli_config, "add", "--file", str(files[1]))
    assert refused.exit_code == 1, refused.output
    assert "1 clients are registered already" in refused.output and "remove one" in refused.output
    assert "two" not in _run(cli_config, "list").output
    files[0].write_text(files[0].read_text() + 'scope = "openid"\n', encoding="utf-8")
    assert _run(cli_config, "add", "--file", str(files[0])).exit_code == 0
