"""Audit leaves are appended inside the caller's transaction (SQLite and PostgreSQL): they commit
with the work they record, roll back with it, and a failed append is StorageUnavailable (a 503),
whatever the database's error class, with the rest of the transaction undone."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, func, select, text

from trustanchor.audit.entries import TokenIssued, parse_entry
from trustanchor.audit.merkle import leaf_hash
from trustanchor.services import audit_trail
from trustanchor.storage import grants_repo
from trustanchor.storage.database import Database, StorageUnavailable
from trustanchor.storage.tables import audit_leaves, grants

NOW = 1_800_000_000
SUB = "q8Hc0lB4d1oS7x4m0k2hXgkz0cJr0y7fJ3nH4cVdF0A"


def _issued(jti: str = "jti-1") -> TokenIssued:
    return audit_trail.token_issued(
        at=NOW,
        kind="access_token",
        jti=jti,
        client_id="bank",
        sub=SUB,
        scope=("openid", "profile"),
        authorization_details=({"type": "payment_initiation", "amount": "10.00"},),
        exp=NOW + 300,
    )


def _count(database: Database, table: Table = audit_leaves) -> int:
    with database.reader() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_committed_leaf_is_the_canonical_entry_with_its_hash_and_reference(
    database: Database,
) -> None:
    entry = _issued()
    with database.transaction() as conn:
        audit_trail.record(conn, entry)
    with database.reader() as conn:
        row = conn.execute(select(audit_leaves)).one()
    assert parse_entry(row.entry.encode("utf-8")) == entry
    assert row.leaf_hash == leaf_hash(entry.to_canonical()).hex()
    assert (row.kind, row.ref, row.created_at, row.tree_index) == (
        "token_issued",
        "jti-1",
        NOW,
        None,
    )


def test_a_leaf_rolls_back_with_the_work_it_records(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction() as conn:
        audit_trail.record(conn, _issued())
        raise RuntimeError("the issuance failed after the append")
    assert _count(database) == 0


def test_a_failed_append_is_storage_unavailable_and_undoes_the_transaction(
    database: Database,
) -> None:
    with database.transaction() as conn:
        conn.execute(text("ALTER TABLE audit_leaves RENAME TO audit_leaves_away"))
    try:
        with pytest.raises(StorageUnavailable), database.transaction() as conn:
            grants_repo.create_grant(
                conn, "grant-1", "bank", None, {}, now=NOW, expires_at=NOW + 60
            )
            audit_trail.record(conn, _issued())
    finally:
        with database.transaction() as conn:
            conn.execute(text("ALTER TABLE audit_leaves_away RENAME TO audit_leaves"))
    assert _count(database, grants) == 0
    assert _count(database) == 0


def test_holder_pseudonym_is_keyed_and_never_the_holder_id() -> None:
    one = audit_trail.holder_pseudonym(b"k" * 32, "holder-1")
    assert one != "holder-1"
    assert one != audit_trail.holder_pseudonym(b"j" * 32, "holder-1")
    assert audit_trail.login_ok(at=NOW, anchor_id="wallet", holder=one).holder == one


def test_a_reason_that_is_not_a_code_is_recorded_as_unclassified() -> None:
    entry = audit_trail.login_failed(at=NOW, anchor_id="wallet", reason="Bad Thing!")
    assert entry.reason == "unclassified"
    assert audit_trail.login_failed(at=NOW, anchor_id="wallet", reason="kb_stale").reason == (
        "kb_stale"
    )
