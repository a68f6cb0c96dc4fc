"""Designated auditors and console sessions in storage (SQLite and PostgreSQL): designations and
removals are audited in their own transaction, every session lookup sees expiry, logout,
removal and a revoked grant at once, and the CLI group is registered under ``trustanchor``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from trustanchor.audit.entries import digest
from trustanchor.cli.main import cli
from trustanchor.digests import keyed_digest, secret_digest
from trustanchor.services import auditors as designations
from trustanchor.storage import auditors_repo, grants_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_leaves, auditor_sessions

NOW = 1_800_000_000
REFERENCE = keyed_digest(b"pairwise secret", "audit-holder", "holder-1")
OTHER = keyed_digest(b"pairwise secret", "audit-holder", "holder-2")


def operator_changes(database: Database) -> list[dict[str, object]]:
    with database.reader() as conn:
        rows = conn.execute(
            select(audit_leaves.c.entry)
            .where(audit_leaves.c.kind == "operator_change")
            .order_by(audit_leaves.c.id)
        ).all()
    return [json.loads(row.entry) for row in rows]


def session(database: Database, session_id: str, reference: str, *, grant: str = "g1") -> None:
    with database.transaction() as conn:
        if grants_repo.get_grant(conn, grant) is None:
            grants_repo.create_grant(
                conn, grant, "console", "holder-1", {}, now=NOW, expires_at=NOW + 10**6
            )
        auditors_repo.create_session(
            conn, session_id, reference, grant, now=NOW, expires_at=NOW + 100
        )


def access(
    database: Database, session_id: str, now: int = NOW
) -> auditors_repo.SessionAccess | None:
    with database.reader() as conn:
        return auditors_repo.session_access(conn, session_id, now=now)


def test_designation_is_audited_by_the_digest_of_the_reference(database: Database) -> None:
    added = designations.add(database, f"  {REFERENCE}\n", "Internal audit", now=NOW)
    assert added.outcome == "added" and added.auditor.holder_ref == REFERENCE
    assert designations.add(database, REFERENCE, "Internal audit", now=NOW + 1).outcome == (
        "unchanged"
    )
    assert designations.add(database, REFERENCE, "External", now=NOW + 2).outcome == "relabelled"
    assert [a.label for a in designations.list_auditors(database)] == ["External"]
    assert designations.remove(database, REFERENCE, now=NOW + 3)
    assert not designations.remove(database, REFERENCE, now=NOW + 4)
    changes = operator_changes(database)
    assert [(c["what"], c["id"], c["action"], c["at"]) for c in changes] == [
        ("auditor", digest(REFERENCE), "added", NOW),
        ("auditor", digest(REFERENCE), "removed", NOW + 3),
    ]
    assert REFERENCE not in json.dumps(changes) and "External" not in json.dumps(changes)


@pytest.mark.parametrize(
    "reference",
    ["", "alice@example.com", REFERENCE[:-1], REFERENCE + "A", REFERENCE[:-1] + "B", "a" * 64],
)
def test_only_reference_shaped_values_are_designated(database: Database, reference: str) -> None:
    with pytest.raises(designations.InvalidDesignation):
        designations.add(database, reference, "x", now=NOW)
    assert designations.list_auditors(database) == []
    assert operator_changes(database) == []


@pytest.mark.parametrize("label", ["", "   ", "x" * 201, "tab\there", "bidi\u202eevil"])
def test_labels_are_short_plain_text(database: Database, label: str) -> None:
    with pytest.raises(designations.InvalidDesignation):
        designations.add(database, REFERENCE, label, now=NOW)


def test_session_access_sees_expiry_logout_removal_and_revocation(database: Database) -> None:
    session(database, "s" * 43, REFERENCE)
    assert access(database, "s" * 43) == auditors_repo.SessionAccess(REFERENCE, NOW + 100, None)
    designations.add(database, REFERENCE, "Internal audit", now=NOW)
    found = access(database, "s" * 43)
    assert found is not None and found.auditor is not None
    assert found.auditor.label == "Internal audit"
    assert access(database, "s" * 43, now=NOW + 99) is not None
    assert access(database, "s" * 43, now=NOW + 100) is None  # expired
    assert access(database, "t" * 43) is None  # unknown

    with database.reader() as conn:
        stored = conn.execute(select(auditor_sessions.c.id_digest)).scalars().all()
    assert stored == [secret_digest("s" * 43)]  # never the id itself

    with database.transaction() as conn:
        assert auditors_repo.end_session(conn, "s" * 43, now=NOW + 1)
        assert not auditors_repo.end_session(conn, "s" * 43, now=NOW + 2)
    assert access(database, "s" * 43) is None

    # Removal ends that person's sessions, not anyone else's.
    session(database, "u" * 43, REFERENCE)
    session(database, "v" * 43, OTHER)
    designations.remove(database, REFERENCE, now=NOW + 3)
    assert access(database, "u" * 43) is None
    assert access(database, "v" * 43) is not None

    # A revoked grant (code reuse at the token endpoint) ends the session made from it.
    session(database, "w" * 43, OTHER, grant="g2")
    with database.transaction() as conn:
        grants_repo.revoke_grant(conn, "g2", now=NOW + 4, reason="code_reuse")
    assert access(database, "w" * 43) is None
    assert access(database, "v" * 43) is not None


def test_the_auditors_command_is_registered() -> None:
    result = CliRunner().invoke(cli, ["auditors", "--help"])
    assert result.exit_code == 0
    for command in ("list", "add", "remove"):
        assert command in result.output
