"""The storage-backed audit tree: batch integration, signed checkpoints, proofs from storage and
the stored log's self-check (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from trustanchor.audit import merkle
from trustanchor.audit.checkpoint import verify_checkpoint
from trustanchor.audit.entries import TokenIssued
from trustanchor.clock import FixedClock
from trustanchor.keystore.audit_key import AuditKey, generate_audit_key, load_audit_key
from trustanchor.services.audit_log import MAX_PAGE, AuditLog, AuditLogError
from trustanchor.storage import audit_repo, audit_tree
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_checkpoints, audit_leaves, audit_nodes

NOW = 1_800_000_000
ORIGIN = "as.example/trustanchor-audit"


def issued(i: int) -> TokenIssued:
    return TokenIssued(
        at=NOW + i,
        jti=f"jti-{i}",
        token_kind="access_token",
        client_id="bank",
        sub=None,
        scope="openid accounts",
        authorization_details=None,
        anchor_id="wallet",
        anchor_set_id=None,
        acr=None,
        exp=NOW + i + 300,
    )


def append(database: Database, first: int, count: int) -> None:
    with database.transaction() as conn:
        for i in range(first, first + count):
            audit_repo.append(conn, issued(i))


@pytest.fixture
def key(tmp_path: Path) -> AuditKey:
    generate_audit_key(tmp_path / "keys", name=ORIGIN, now=NOW)
    return load_audit_key(tmp_path / "keys")


@pytest.fixture
def log(database: Database, key: AuditKey) -> AuditLog:
    return AuditLog(database, key, FixedClock(NOW + 1000), batch_size=10)


def tree_leaves(database: Database) -> list[bytes]:
    with database.reader() as conn:
        rows = conn.execute(
            select(audit_leaves.c.leaf_hash)
            .where(audit_leaves.c.tree_index.is_not(None))
            .order_by(audit_leaves.c.tree_index)
        )
        return [bytes.fromhex(h) for h in rows.scalars()]


def integrate_all(log: AuditLog) -> list[tuple[str, int]]:
    """Every batch's (signed note, size)."""
    signed = []
    while (done := log.integrate()) is not None:
        signed.append((done.signed_note, done.checkpoint.size))
    return signed


def test_batches_are_integrated_under_signed_checkpoints(
    database: Database, log: AuditLog, key: AuditKey
) -> None:
    append(database, 0, 23)
    append(database, 23, 14)
    signed = integrate_all(log)
    assert [size for _note, size in signed] == [10, 20, 30, 37]
    leaves = tree_leaves(database)
    assert len(leaves) == 37
    for note, size in signed:
        checkpoint = verify_checkpoint(note, key.verifier(), origin=ORIGIN)
        assert checkpoint.size == size
        assert checkpoint.root_hash == merkle.root(leaves[:size])
        assert checkpoint.time == NOW + 1000
    latest = log.latest_checkpoint()
    assert latest.note == signed[-1][0]
    assert latest.checkpoint.size == 37
    assert log.verify_stored_log().size == 37


def test_stored_nodes_are_exactly_the_perfect_subtrees(database: Database, log: AuditLog) -> None:
    append(database, 0, 37)
    integrate_all(log)
    reference = merkle.MemoryTree(tree_leaves(database))
    with database.reader() as conn:
        rows = conn.execute(select(audit_nodes)).all()
    expected = {
        (level, pos): reference.hash_range(pos << level, (pos + 1) << level).hex()
        for level in range(1, 6)
        for pos in range(37 >> level)
    }
    assert {(r.level, r.position): r.hash for r in rows} == expected


def test_every_inclusion_proof_verifies_against_its_checkpoint(
    database: Database, log: AuditLog, key: AuditKey
) -> None:
    append(database, 0, 37)
    signed = integrate_all(log)
    leaves = tree_leaves(database)
    for note, size in signed:
        checkpoint = verify_checkpoint(note, key.verifier(), origin=ORIGIN)
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            assert proof == merkle.inclusion_proof(leaves, index, size)
            merkle.verify_inclusion(leaves[index], index, size, proof, checkpoint.root_hash)
    # any size up to the latest checkpoint, not only checkpointed ones
    for size in (1, 2, 3, 7, 13, 33):
        root = merkle.root(leaves[:size])
        merkle.verify_inclusion(
            leaves[size - 1], size - 1, size, log.inclusion_proof(size - 1, size), root
        )


def test_consistency_proofs_between_checkpoints_verify(
    database: Database, log: AuditLog, key: AuditKey
) -> None:
    append(database, 0, 37)
    signed = integrate_all(log)
    checkpoints = [verify_checkpoint(note, key.verifier()) for note, _size in signed]
    for old in checkpoints:
        for new in checkpoints:
            if old.size <= new.size:
                proof = log.consistency_proof(old.size, new.size)
                merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    leaves = tree_leaves(database)
    for old_size in range(0, 38):
        proof = log.consistency_proof(old_size, 37)
        assert proof == merkle.consistency_proof(leaves, old_size, 37)


def test_nothing_pending_signs_nothing(database: Database, log: AuditLog, key: AuditKey) -> None:
    assert log.integrate() is None
    assert audit_tree.integrate_once(database, key, now=NOW, batch_size=10) is None
    empty = log.latest_checkpoint()
    checkpoint = verify_checkpoint(empty.note, key.verifier(), origin=ORIGIN)
    assert (checkpoint.size, checkpoint.root_hash) == (0, merkle.EMPTY_ROOT)
    with database.reader() as conn:
        assert conn.execute(select(func.count()).select_from(audit_checkpoints)).scalar() == 0


def test_a_rolled_back_append_leaves_no_leaf(database: Database, log: AuditLog) -> None:
    with pytest.raises(RuntimeError), database.transaction() as conn:
        audit_repo.append(conn, issued(1))
        raise RuntimeError("the issuance failed after the append")
    assert log.integrate() is None
    with database.reader() as conn:
        assert conn.execute(select(func.count()).select_from(audit_leaves)).scalar() == 0


def test_checkpoint_time_never_decreases(database: Database, key: AuditKey) -> None:
    append(database, 0, 2)
    first = audit_tree.integrate_once(database, key, now=NOW + 50, batch_size=1)
    second = audit_tree.integrate_once(database, key, now=NOW + 10, batch_size=1)  # clock behind
    assert first is not None and second is not None
    assert (first.time, second.time) == (NOW + 50, NOW + 50)


def test_one_byte_changed_in_a_stored_entry_names_the_index(
    database: Database, log: AuditLog
) -> None:
    append(database, 0, 25)
    integrate_all(log)
    with database.transaction() as conn:
        entry = conn.execute(
            select(audit_leaves.c.entry).where(audit_leaves.c.tree_index == 17)
        ).scalar_one()
        conn.execute(
            update(audit_leaves)
            .where(audit_leaves.c.tree_index == 17)
            .values(entry=entry.replace("bank", "bqnk"))
        )
    with pytest.raises(AuditLogError) as caught:
        log.verify_stored_log()
    assert (caught.value.reason, caught.value.index) == ("entry_mismatch", 17)
    assert "entry 17" in str(caught.value)


def test_an_entry_rewritten_with_its_leaf_hash_breaks_the_signed_root(
    database: Database, log: AuditLog
) -> None:
    append(database, 0, 25)
    integrate_all(log)
    forged = issued(99).to_canonical()
    with database.transaction() as conn:
        conn.execute(
            update(audit_leaves)
            .where(audit_leaves.c.tree_index == 3)
            .values(entry=forged.decode(), leaf_hash=merkle.leaf_hash(forged).hex())
        )
    with pytest.raises(AuditLogError) as caught:
        log.verify_stored_log()
    assert caught.value.reason == "root_mismatch"
    assert "checkpoint 10" in str(caught.value)


def test_a_deleted_leaf_is_named(database: Database, log: AuditLog) -> None:
    append(database, 0, 12)
    integrate_all(log)
    with database.transaction() as conn:
        conn.execute(audit_leaves.delete().where(audit_leaves.c.tree_index == 4))
    with pytest.raises(AuditLogError) as caught:
        log.verify_stored_log()
    assert (caught.value.reason, caught.value.index) == ("missing_leaf", 4)


def test_entries_and_lookups_stay_under_the_latest_checkpoint(
    database: Database, log: AuditLog
) -> None:
    append(database, 0, 12)
    integrate_all(log)
    append(database, 12, 1)  # pending, not yet covered
    page = log.entries(3, 12)
    assert [e.index for e in page] == list(range(3, 12))
    assert page[0].parsed() == issued(3)
    assert page[0].leaf_hash == merkle.leaf_hash(issued(3).to_canonical())
    found = log.entry_by_ref("jti-7")
    assert (found.index, found.parsed()) == (7, issued(7))
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: log.entries(0, 13), "beyond_checkpoint"),
        (lambda: log.entries(5, 4), "bad_range"),
        (lambda: log.entries(0, MAX_PAGE + 1), "page_too_large"),
        (lambda: log.entry_by_ref("jti-12"), "not_integrated"),
        (lambda: log.entry_by_ref("nobody"), "not_found"),
        (lambda: log.inclusion_proof(12, 13), "beyond_checkpoint"),
        (lambda: log.inclusion_proof(12, 12), "bad_range"),
        (lambda: log.consistency_proof(5, 13), "beyond_checkpoint"),
        (lambda: log.consistency_proof(6, 5), "bad_range"),
        (lambda: log.checkpoint(11), "no_checkpoint"),
    ]
    for call, reason in cases:
        with pytest.raises(AuditLogError) as caught:
            call()
        assert caught.value.reason == reason
    assert log.checkpoint(10).checkpoint.size == 10


def test_a_missing_node_is_reported_not_guessed(database: Database, log: AuditLog) -> None:
    append(database, 0, 8)
    integrate_all(log)
    with database.transaction() as conn:
        conn.execute(audit_nodes.delete().where(audit_nodes.c.level == 2))
    with pytest.raises(audit_tree.AuditTreeError) as caught:
        log.inclusion_proof(0, 8)
    assert caught.value.reason == "missing_hash"


def test_a_second_checkpoint_of_one_size_is_refused(database: Database, key: AuditKey) -> None:
    """The tree cannot fork: one checkpoint row per size."""
    append(database, 0, 3)
    audit_tree.integrate_once(database, key, now=NOW, batch_size=10)
    with pytest.raises(IntegrityError), database.transaction() as conn:
        conn.execute(
            audit_checkpoints.insert(),
            {
                "size": 3,
                "root_hash": "00" * 32,
                "signed_note": "x",
                "frontier": [],
                "created_at": 0,
            },
        )
