"""The Alembic migrations build exactly the schema ``storage/tables.py`` declares: no table,
column, index or constraint that one has and the other lacks (on SQLite and PostgreSQL). Without
this, a column added to tables.py but forgotten in a migration works in tests that create the
schema one way and fails in production, which upgrades the other way."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from trustanchor.storage.database import Database
from trustanchor.storage.tables import metadata


def test_migrated_schema_equals_the_declared_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        differences = [
            diff
            for diff in compare_metadata(context, metadata)
            if not (
                isinstance(diff, tuple)
                and diff[0] in ("add_table", "remove_table")
                and getattr(diff[1], "name", "") == "alembic_version"
            )
        ]
    assert differences == []
