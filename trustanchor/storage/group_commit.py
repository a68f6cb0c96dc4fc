"""Group commit for SQLite: the write transactions of concurrent requests in one process share
one database transaction and one COMMIT, so one fsync makes many requests durable.

SQLite serialises writers, and with ``synchronous=FULL`` every COMMIT waits for an fsync: one
commit per token spends a third of a worker's wall time waiting on the disk (issue 13). Here one
connection per process, *the writer*, carries every write transaction of that process:

1. A request's :meth:`GroupCommit.transaction` takes the writer (a lock), opens the shared
   transaction if none is open (``BEGIN IMMEDIATE``), and runs the request's work in its own
   ``SAVEPOINT``. Work that raises is rolled back to its savepoint and its exception goes back to
   its caller at once: one request's failure (a replayed DPoP ``jti``, a code already consumed)
   undoes only that request. Work that succeeds is released into the shared transaction.
   Statements see what earlier members wrote: two redemptions of one code in one batch still
   give exactly one winner, through the same conditional UPDATE as without batching.
2. The member that leaves the writer when no other request is waiting for it (or when the batch
   holds :data:`MAX_MEMBERS` members) COMMITs the batch; every other member waits until then.
   Nobody is answered before the COMMIT of its batch returned, so no client ever holds a token
   that is not durably stored (and its audit leaf with it). While the COMMIT waits on the disk,
   the next requests queue for the writer, and they form the next batch.
3. A COMMIT that fails fails every member of its batch with :class:`StorageUnavailable` (503):
   none of their work is stored, none of them is answered as if it were. The writer connection
   is then discarded and the next batch starts on a fresh one.

The transaction control (``BEGIN IMMEDIATE``, ``SAVEPOINT``, ``RELEASE``, ``ROLLBACK TO``,
``COMMIT``) is sent to the driver connection directly: the writer's SQLAlchemy connection is in
autocommit mode, so SQLAlchemy never begins, commits or rolls back anything on it, and the
members' statements run inside the transaction opened here. (SQLAlchemy's savepoint objects
compiled two statements per request, about a sixth of a token's CPU.)

Reads outside a transaction (``Database.reader``) use other connections and see committed data
only, as before. A transaction opened while the same thread is already inside one would wait
for itself: that is refused with an error instead. Only the service's own process batches: the
CLI, other worker processes and the audit integrator of another process are separate SQLite
writers as before (``busy_timeout``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from trustanchor.storage.unavailable import StorageUnavailable

log = logging.getLogger("trustanchor.storage")

MAX_MEMBERS = 64
"""Most request transactions one COMMIT carries (bounds the wait of a batch's first member)."""


class _Batch:
    """One shared transaction: who is in it, and how its COMMIT ended."""

    __slots__ = ("done", "error", "members")

    def __init__(self) -> None:
        self.members = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    """The writer of one process over ``engine`` (a SQLite engine whose ``begin`` event issues
    ``BEGIN IMMEDIATE``). Thread-safe; see the module documentation."""

    def __init__(
        self, engine: Engine, *, max_members: int = MAX_MEMBERS, linger: float = 0.0
    ) -> None:
        if max_members < 1:
            raise ValueError("max_members must be at least 1")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self._engine = engine
        self._max_members = max_members
        self._linger = linger
        # How many requests the process is working on (set by the server, web/serving.py); with
        # ``linger``, a batch nobody queues for waits up to ``linger`` seconds for those still
        # on their way to the writer, instead of committing a batch of one or two.
        self.in_flight: Callable[[], int] | None = None
        self._blocked = 0  # members done with their work, waiting for their batch's COMMIT
        self._writer = threading.Lock()  # held while a member uses the connection
        self._queue = threading.Lock()  # guards _waiting
        self._waiting = 0  # members blocked on _writer
        self._inside = threading.local()
        self._conn: Connection | None = None
        self._raw: Any = None  # the driver connection of _conn
        self._batch: _Batch | None = None
        self.batches = 0  # committed batches (for measurements)
        self.committed_members = 0

    @property
    def waiting(self) -> int:
        """Transactions waiting for the writer right now."""
        with self._queue:
            return self._waiting

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One member's work in its own savepoint of the shared transaction; returns only
        after the batch holding it committed (raises StorageUnavailable if it did not)."""
        if getattr(self._inside, "active", False):
            raise RuntimeError("a transaction was opened inside another one on the same thread")
        with self._queue:
            self._waiting += 1
        self._writer.acquire()
        with self._queue:
            self._waiting -= 1
        self._inside.active = True
        batch: _Batch | None = None
        committed_here = False
        failed = False
        try:
            batch, conn = self._join()
            self._control("SAVEPOINT member")
            try:
                yield conn
            except BaseException:
                failed = True
                self._roll_back_member(batch)
                raise
            try:
                self._control("RELEASE member")  # the work becomes part of the batch
            except BaseException as exc:
                self._fail(batch, exc)
                raise StorageUnavailable("the batch could not take this transaction") from exc
            batch.members += 1
        finally:
            self._inside.active = False
            linger = False
            try:
                if batch is not None and self._batch is batch:
                    decision = self._decide(batch)
                    if decision == "linger" and failed:
                        # A failed member leaves with its exception and waits for nobody: it
                        # cannot stay to end the wait, so it commits the others' work now.
                        decision = "commit"
                    if decision == "commit":
                        committed_here = True
                        self._commit(batch)
                    linger = decision == "linger"
            finally:
                self._writer.release()
        if committed_here or batch is None:
            if batch is not None and batch.error is not None:
                raise StorageUnavailable("the batch's commit failed") from batch.error
            return
        with self._queue:
            self._blocked += 1
        try:
            if linger and not batch.done.wait(self._linger):
                with self._writer:
                    if self._batch is batch:  # nobody came in time: commit what there is
                        self._commit(batch)
            batch.done.wait()
        finally:
            with self._queue:
                self._blocked -= 1
        if batch.error is not None:
            raise StorageUnavailable("the batch's commit failed") from batch.error

    # --- under the writer lock --------------------------------------------------------------

    def _join(self) -> tuple[_Batch, Connection]:
        if self._batch is None:
            if self._conn is None:
                conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self._conn, self._raw = conn, conn.connection.dbapi_connection
            try:
                self._control("BEGIN IMMEDIATE")
            except StorageUnavailable:
                self._discard_connection()
                raise
            self._batch = _Batch()
        assert self._conn is not None
        return self._batch, self._conn

    def _control(self, statement: str) -> None:
        """One transaction-control statement on the driver connection."""
        try:
            self._raw.execute(statement)
        except Exception as exc:
            raise StorageUnavailable(f"{statement} failed: {exc.__class__.__name__}") from exc

    def _decide(self, batch: _Batch) -> str:
        """After a member: ``commit`` (nobody queues, or the batch is full), ``leave`` (a
        queued member decides next) or ``linger`` (nobody queues, but requests in flight that
        are not yet members may come: wait for them, at most ``linger`` seconds)."""
        if batch.members >= self._max_members:
            return "commit"
        with self._queue:
            waiting, blocked = self._waiting, self._blocked
        if waiting > 0:
            return "leave"
        # In flight: the requests the server is working on; of those, the blocked members and
        # this one are done with the writer.
        if self._linger > 0 and self.in_flight is not None and self.in_flight() - blocked > 1:
            return "linger"
        return "commit"

    def _roll_back_member(self, batch: _Batch) -> None:
        try:
            self._control("ROLLBACK TO member")
            self._control("RELEASE member")
        except StorageUnavailable as exc:
            # The shared transaction is in an unknown state: no member of it may be answered.
            log.error("a savepoint could not be rolled back; the whole batch fails: %s", exc)
            self._fail(batch, exc)

    def _commit(self, batch: _Batch) -> None:
        if batch.members == 0:
            # Only failed members: nothing to keep, and no fsync for nothing.
            self._end(batch, None, statement="ROLLBACK")
            return
        try:
            self._control("COMMIT")
        except StorageUnavailable as exc:
            log.error("group commit of %d transactions failed: %s", batch.members, exc)
            self._fail(batch, exc)
            return
        self.batches += 1
        self.committed_members += batch.members
        self._end(batch, None, statement=None)

    def _fail(self, batch: _Batch, exc: BaseException) -> None:
        if self._batch is not batch:
            return
        try:
            self._control("ROLLBACK")
        except StorageUnavailable:  # the connection is discarded below anyway
            log.debug("rollback after a failed batch also failed", exc_info=True)
        self._discard_connection()
        self._end(batch, exc, statement=None)

    def _end(self, batch: _Batch, error: BaseException | None, *, statement: str | None) -> None:
        try:
            if statement is not None:
                self._control(statement)
        finally:
            batch.error = error
            self._batch = None
            batch.done.set()

    def _discard_connection(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            try:
                conn.invalidate()  # closes the driver connection: nothing is sent on it
                conn.close()
            except BaseException:
                log.debug("closing the discarded writer connection failed", exc_info=True)

    def close(self) -> None:
        """Close the writer connection; an open batch fails (nothing of it is committed)."""
        with self._writer:
            batch = self._batch
            if batch is not None:
                self._fail(batch, StorageUnavailable("the database was closed"))
            self._discard_connection()
