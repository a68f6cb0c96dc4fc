"""Counts of audit entries left out by the anonymous budget, per window and reason, until one
``omitted`` entry summarises each closed window (services/login_failures.py).

A count is one upsert in the transaction of the failure it counts, so it commits exactly when
the failure's outcome does. Summarising takes a closed window's counts with one
``DELETE … RETURNING``: of two transactions racing for the same window, one gets the rows and
writes the summary, the other gets nothing; the rows are gone only when the summary commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from trustanchor.storage.tables import audit_omissions


def count(conn: Connection, *, what: str, window_start: int, reason: str) -> None:
    """One more ``reason`` left out of the log in the window starting at ``window_start``."""
    values = {"what": what, "window_start": window_start, "reason": reason, "count": 1}
    dialect = conn.dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(audit_omissions).values(**values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(audit_omissions).values(**values)
    else:  # pragma: no cover
        raise ValueError(dialect)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["what", "window_start", "reason"],
            set_={"count": audit_omissions.c.count + 1},
        )
    )


def take_closed(conn: Connection, *, what: str, before: int) -> dict[int, dict[str, int]]:
    """Remove and return the counts of every window of ``what`` that starts before ``before``
    (the current window's start): ``{window_start: {reason: count}}``."""
    rows = conn.execute(
        delete(audit_omissions)
        .where(audit_omissions.c.what == what, audit_omissions.c.window_start < before)
        .returning(
            audit_omissions.c.window_start, audit_omissions.c.reason, audit_omissions.c.count
        )
    ).all()
    windows: dict[int, dict[str, int]] = {}
    for row in rows:  # ("count" is also a method of the row tuple: by position)
        windows.setdefault(int(row[0]), {})[str(row[1])] = int(row[2])
    return windows


def pending(conn: Connection, *, what: str) -> dict[int, dict[str, int]]:
    """The counts not yet summarised (read only; for the operator and tests)."""
    rows = conn.execute(
        select(
            audit_omissions.c.window_start, audit_omissions.c.reason, audit_omissions.c.count
        ).where(audit_omissions.c.what == what)
    ).all()
    windows: dict[int, dict[str, int]] = {}
    for row in rows:  # ("count" is also a method of the row tuple: by position)
        windows.setdefault(int(row[0]), {})[str(row[1])] = int(row[2])
    return windows
