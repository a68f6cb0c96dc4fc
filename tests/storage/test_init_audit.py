"""Issue 3, operator changes at `trustanchor init`: every key it generates and every change its
declarations make is an operator_change entry; an unchanged re-run records nothing.

Runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from support.ecosystem import Ecosystem
from support.server import test_settings

from trustanchor.audit.entries import OperatorChange, digest, parse_entry
from trustanchor.bootstrap import StartupRefused, initialise
from trustanchor.cli.main import cli
from trustanchor.config import Settings
from trustanchor.keystore.audit_key import list_audit_keys
from trustanchor.keystore.signing_keys import SigningKeyStore
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database
from trustanchor.storage.tables import anchors, audit_leaves

REPO = Path(__file__).resolve().parents[2]
SET_ID = "jp-high"
SET_DECL: dict[str, Any] = {
    "id": SET_ID,
    "display_name": "Japan, high",
    "policy": {"min_assurance_transfer": "high"},
}


def changes(db: Database, *, skip: int = 0) -> list[tuple[str, str, str]]:
    """(what, id, action) of the operator_change leaves after the first ``skip`` leaves."""
    with db.reader() as conn:
        rows = conn.execute(select(audit_leaves.c.entry).order_by(audit_leaves.c.id)).all()
    entries = [parse_entry(row.entry.encode("utf-8")) for row in rows[skip:]]
    return [(e.what, e.id, e.action) for e in entries if isinstance(e, OperatorChange)]


def leaf_count(db: Database) -> int:
    with db.reader() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_leaves)).scalar_one())


def declared(
    tmp_path: Path,
    database_url: str,
    eco: Ecosystem,
    *,
    anchor: dict[str, Any] | None = None,
    anchor_set: dict[str, Any] | None = None,
    clients: list[dict[str, Any]] | None = None,
) -> Settings:
    settings = test_settings(
        tmp_path,
        database_url,
        port=8000,
        anchors=[anchor or {**eco.anchor_declaration(), "anchor_sets": [SET_ID]}],
        clients=clients if clients is not None else eco.client_declarations(),
    )
    return dataclasses.replace(settings, anchor_sets=(anchor_set or SET_DECL,))


def test_first_init_records_keys_and_declarations_and_a_rerun_records_nothing(
    tmp_path: Path, database_url: str
) -> None:
    eco = Ecosystem()
    settings = declared(tmp_path, database_url, eco)
    db = Database(database_url)
    initialise(settings, db, now=1_000, generate_keys=True)

    kid = SigningKeyStore.open(settings.service.keys_dir, retention=1).current().kid
    [audit_key] = list_audit_keys(settings.service.keys_dir)
    recorded = changes(db)
    # Keys first (the schema exists before any key is made), then declarations.
    assert recorded[:2] == [
        ("signing_key", digest(kid), "generated"),
        ("audit_key", audit_key.key_id_hex, "generated"),
    ]
    assert set(recorded[2:]) >= {
        ("anchor_set", SET_ID, "added"),
        ("anchor", eco.anchor_id, "added"),
        ("client", eco.bank.client_id, "added"),
        ("client", eco.ledger.client_id, "added"),
    }

    before = leaf_count(db)
    assert initialise(settings, db, now=2_000, generate_keys=True)[0] == (
        "database schema is up to date"
    )
    assert leaf_count(db) == before
    db.dispose()


def test_changed_declarations_record_exactly_what_changed(
    tmp_path: Path, database_url: str
) -> None:
    eco = Ecosystem()
    db = Database(database_url)
    initialise(declared(tmp_path, database_url, eco), db, now=1_000, generate_keys=True)
    skip = leaf_count(db)

    bank, ledger = eco.client_declarations()
    renamed = {**eco.anchor_declaration(), "anchor_sets": [SET_ID], "display_name": "Renamed"}
    stricter = {**SET_DECL, "policy": {"min_assurance_transfer": "substantial"}}
    settings = declared(
        tmp_path,
        database_url,
        eco,
        anchor={**renamed, "status": "suspended"},
        anchor_set=stricter,
        clients=[{**bank, "client_name": "Renamed bank"}, ledger],
    )
    initialise(settings, db, now=2_000, generate_keys=True)
    assert changes(db, skip=skip) == [
        ("anchor_set", SET_ID, "policy_changed"),
        ("anchor", eco.anchor_id, "updated"),
        ("anchor", eco.anchor_id, "suspended"),
        ("client", eco.bank.client_id, "updated"),
    ]

    # Only a status change: one entry. Declaring it active again never resumes it.
    skip = leaf_count(db)
    settings = declared(
        tmp_path,
        database_url,
        eco,
        anchor={**renamed, "status": "retired"},
        anchor_set=stricter,
        clients=[{**bank, "client_name": "Renamed bank"}, ledger],
    )
    initialise(settings, db, now=3_000, generate_keys=True)
    assert changes(db, skip=skip) == [("anchor", eco.anchor_id, "retired")]
    skip = leaf_count(db)
    settings = dataclasses.replace(settings, anchors=(renamed,))
    initialise(settings, db, now=4_000, generate_keys=True)
    assert changes(db, skip=skip) == []
    db.dispose()


def test_a_declared_id_the_log_cannot_hold_writes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    """An anchor id is a slug of up to 64 characters, but 43 or more of them have the shape of
    a raw secret, which no audit entry may hold: the declaration is refused, and neither the
    anchor nor any entry for it is written."""
    eco = Ecosystem()
    long_id = "a-very-long-anchor-identifier-for-one-wallet"
    assert len(long_id) >= 43
    anchor = {**eco.anchor_declaration(), "id": long_id}
    settings = declared(tmp_path, database_url, eco, anchor=anchor, clients=[])
    db = Database(database_url)
    with pytest.raises(ValueError, match="cannot appear in the audit log"):
        initialise(settings, db, now=1_000, generate_keys=True)
    with db.reader() as conn:
        assert conn.execute(select(func.count()).select_from(anchors)).scalar_one() == 0
    assert AnchorRepository(db).get_set(SET_ID) is None  # the same transaction rolled back
    assert not [c for c in changes(db) if c[0] in ("anchor", "anchor_set")]
    db.dispose()


def test_production_start_without_a_key_is_refused_before_the_database_is_touched(
    tmp_path: Path,
) -> None:
    settings = test_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", port=8000)
    strong = "k3v9-Wq8zP1x-L0m2N4b6V8c0X2z4A6s8D0f2G4h6"
    service = dataclasses.replace(
        settings.service,
        mode="production",
        issuer="https://as.example",
        pairwise_secret=strong,
        cookie_secret=strong,
    )
    db = Database(settings.service.database_url)
    with pytest.raises(StartupRefused, match="no signing key"):
        initialise(
            dataclasses.replace(settings, service=service), db, now=1_000, generate_keys=False
        )
    assert not (tmp_path / "db.sqlite").exists()  # refused before the schema was created
    db.dispose()


def test_cli_init_with_an_unusable_database_says_so_and_generates_no_key(tmp_path: Path) -> None:
    (tmp_path / "db.sqlite").mkdir()  # a directory where the database file should be
    config = tmp_path / "service.toml"
    config.write_text(
        '[service]\nmode = "test"\nissuer = "http://127.0.0.1:8000"\n'
        f'database_url = "sqlite:///{tmp_path / "db.sqlite"}"\nkeys_dir = "{tmp_path / "keys"}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "init"])
    assert result.exit_code == 1, result.output
    assert "cannot create or migrate the database" in result.output
    assert "no key was generated" in result.output
    assert not (tmp_path / "keys" / "signing").exists()
    assert not (tmp_path / "keys" / "audit").exists()
