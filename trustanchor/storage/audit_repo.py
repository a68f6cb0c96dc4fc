"""Appending audit entries, inside the caller's transaction.

An issuance and its audit leaf commit together: if the append fails, the transaction rolls back
and nothing is issued. Leaves get their tree index later, from the integrator, in batches — so
appending is one INSERT and never waits for a global lock.
"""

from __future__ import annotations

from sqlalchemy import Connection

from trustanchor.audit.entries import Entry
from trustanchor.audit.merkle import leaf_hash
from trustanchor.storage.prepared import PreparedInsert
from trustanchor.storage.tables import audit_leaves

_INSERT = PreparedInsert(audit_leaves, ("entry", "leaf_hash", "kind", "ref", "created_at"))


def reference(entry: Entry) -> str | None:
    """What an auditor looks an entry up by: a token's jti or a decision's id."""
    for name in ("jti", "decision_id"):
        value = getattr(entry, name, None)
        if isinstance(value, str):
            return value
    return None


def append(conn: Connection, entry: Entry) -> None:
    canonical = entry.to_canonical()
    _INSERT.run(
        conn,
        {
            "entry": canonical.decode("utf-8"),
            "leaf_hash": leaf_hash(canonical).hex(),
            "kind": entry.KIND,
            "ref": reference(entry),
            "created_at": entry.at,
        },
    )
