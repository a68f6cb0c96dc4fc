"""INSERTs compiled once per dialect and sent straight to the driver cursor, for the statements
every token issuance runs (the access token's row and its audit leaf).

SQLAlchemy's own path for one cached INSERT (execution context, events, result set-up) cost
about as much CPU as SQLite took to run it and the driver together (issue 13: around 240 µs of a
token's CPU went to SQLAlchemy's work around two INSERTs and a commit, 80 through sqlite3). A
:class:`PreparedInsert` keeps the statement text the dialect compiled and the parameter order,
and only for columns of plain types (strings, integers, text), whose values go to the driver
unchanged. Driver errors are wrapped into SQLAlchemy's exception classes exactly as a
``Connection.execute`` would wrap them, so callers and ``Database.transaction`` tell a unique
violation from a lost connection as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Connection, Integer, String, Table, Text, insert
from sqlalchemy.exc import DBAPIError

_PLAIN = (String, Text, Integer, BigInteger)


class PreparedInsert:
    """``INSERT INTO table (columns…) VALUES (…)`` for ``columns`` of ``table``."""

    def __init__(self, table: Table, columns: tuple[str, ...]) -> None:
        for name in columns:
            column = table.c[name]
            if not isinstance(column.type, _PLAIN):
                raise TypeError(f"{table.name}.{name}: only plain column types are prepared")
        self._statement = insert(table)
        self._columns = columns
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def _for(self, conn: Connection) -> tuple[str, tuple[str, ...] | None]:
        name = conn.dialect.name
        compiled = self._compiled.get(name)
        if compiled is None:
            done = self._statement.compile(dialect=conn.dialect, column_keys=list(self._columns))
            order = tuple(done.positiontup) if done.positional and done.positiontup else None
            compiled = (str(done), order)
            self._compiled[name] = compiled
        return compiled

    def run(self, conn: Connection, values: Mapping[str, Any]) -> None:
        """Insert one row inside ``conn``'s transaction."""
        sql, order = self._for(conn)
        params: Any = tuple(values[key] for key in order) if order is not None else values
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
        except Exception as exc:
            dbapi = conn.dialect.loaded_dbapi
            if isinstance(exc, dbapi.Error):
                raise DBAPIError.instance(
                    sql,
                    params,
                    exc,
                    dbapi.Error,
                    hide_parameters=conn.engine.hide_parameters,  # as the engine's own errors
                    dialect=conn.dialect,
                ) from exc
            raise
        finally:
            cursor.close()
