"""Database-backed replay registry (DPoP jti, client-assertion jti): one unique insert each."""

from __future__ import annotations

from sqlalchemy import delete

from trustanchor.digests import secret_digest
from trustanchor.storage.database import Database, insert_once
from trustanchor.storage.tables import used_jtis


class DatabaseJtiRegistry:
    def __init__(self, db: Database) -> None:
        self._db = db

    def first_use(self, namespace: str, jti: str, expires_at: int) -> bool:
        with self._db.transaction() as conn:
            return insert_once(
                conn,
                used_jtis,
                {
                    "namespace": namespace,
                    "jti_digest": secret_digest(jti),
                    "expires_at": expires_at,
                },
            )

    def purge(self, now: int) -> int:
        """Forget jtis whose window has passed (they would be refused as stale anyway)."""
        with self._db.transaction() as conn:
            return conn.execute(delete(used_jtis).where(used_jtis.c.expires_at < now)).rowcount
