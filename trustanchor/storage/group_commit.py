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

Members of two kinds share the writer. A request thread's member waits for the writer and for
its batch by blocking its thread, as above. A member running on the event loop's thread
(:class:`~trustanchor.suspension.LoopTask`: ``POST /token`` under ``trustanchor serve``) must
never block that thread, so it suspends its task instead, and the loop serves other requests
meanwhile; when it leaves the writer with nobody queued, it does not commit at once but on the
loop's next turn (``call_soon``), after the requests the loop already has in hand joined the
batch, and the COMMIT itself runs on the *committer* thread, so that the loop goes on with the
next requests while the disk works. The committer then hands the writer to the first queued
member, which opens the next batch.

Reads outside a transaction (``Database.reader``) use other connections and see committed data
only, as before. A transaction opened while the same thread is already inside one would wait
for itself: that is refused with an error instead. Only the service's own process batches: the
CLI, other worker processes and the audit integrator of another process are separate SQLite
writers as before (``busy_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from trustanchor.storage.unavailable import StorageUnavailable
from trustanchor.suspension import LoopTask, current_task, suspend, wake, wake_all

log = logging.getLogger("trustanchor.storage")

MAX_MEMBERS = 64
"""Most request transactions one COMMIT carries (bounds the wait of a batch's first member)."""


class _Wait:
    """One member waiting for something: a blocked thread, or a suspended loop task."""

    __slots__ = ("_event", "_future", "_task")

    def __init__(self, task: LoopTask | None) -> None:
        self._task = task
        if task is None:
            self._event: threading.Event | None = threading.Event()
            self._future: Any = None
        else:
            self._event = None
            self._future = task.loop.create_future()

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()
        else:
            assert self._task is not None
            wake(self._task.loop, self._future)

    def loop_future(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]:
        """The loop and future of a loop task's wait."""
        assert self._task is not None
        return self._task.loop, self._future

    def wait(self, timeout: float | None = None) -> bool:
        """Until woken (True), or ``timeout`` seconds (threads only) passed (False)."""
        if self._event is not None:
            return self._event.wait(timeout)
        assert self._task is not None
        suspend(self._task, self._future)
        return True


class _Begin:
    """A loop task's request that the committer open the batch (its error, if it could not)."""

    __slots__ = ("done", "error")

    def __init__(self, task: LoopTask) -> None:
        self.done = _Wait(task)
        self.error: BaseException | None = None


class _Batch:
    """One shared transaction: who is in it, and how its COMMIT ended."""

    __slots__ = ("_waits", "done", "error", "members", "scheduled")

    def __init__(self) -> None:
        self.members = 0
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.scheduled = False  # a commit on the loop's next turn is scheduled
        self._waits: list[_Wait] = []  # loop tasks waiting for the end (under GroupCommit._queue)

    def wait(self, group_lock: threading.Lock, task: LoopTask | None) -> None:
        if task is None:
            self.done.wait()
            return
        waiting = _Wait(task)
        with group_lock:
            if self.done.is_set():
                return
            self._waits.append(waiting)
        waiting.wait()

    def finish(self, group_lock: threading.Lock, error: BaseException | None) -> None:
        self.error = error
        with group_lock:
            self.done.set()
            waits, self._waits = self._waits, []
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Any]]] = {}
        for waiting in waits:
            loop, future = waiting.loop_future()
            by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():  # one hand-over per loop, not per member
            wake_all(loop, futures)


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
        self._queue = threading.Lock()  # guards _held, _turns, _blocked and batches' waits
        self._held = False  # a member (or the committer) has the connection
        self._turns: deque[_Wait] = deque()  # members waiting for the connection, in order
        self._blocked = 0  # members done with their work, waiting for their COMMIT
        self._inside = threading.local()
        self._conn: Connection | None = None
        self._raw: Any = None  # the driver connection of _conn
        self._batch: _Batch | None = None
        self._committer: threading.Thread | None = None
        # the committer's work: a batch to COMMIT, a loop task's BEGIN, or None to stop
        self._to_commit: queue.SimpleQueue[_Batch | _Begin | None] = queue.SimpleQueue()
        self.batches = 0  # committed batches (for measurements)
        self.committed_members = 0

    @property
    def waiting(self) -> int:
        """Transactions waiting for the writer right now."""
        with self._queue:
            return len(self._turns)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One member's work in its own savepoint of the shared transaction; returns only
        after the batch holding it committed (raises StorageUnavailable if it did not)."""
        task = current_task()
        # a loop task is "inside" on its own (several of them share the loop's thread)
        inside: Any = task if task is not None else self._inside
        if getattr(inside, "in_transaction", False):
            raise RuntimeError("a transaction was opened inside another one on the same thread")
        self._take(task)
        inside.in_transaction = True
        batch: _Batch | None = None
        failed = False
        try:
            batch, conn = self._join_from(task)
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
            inside.in_transaction = False
            linger = self._leave(batch, task, failed)
        if batch is None:
            return
        with self._queue:
            self._blocked += 1
        try:
            if linger:
                self._linger_for(batch)
            batch.wait(self._queue, task)
        finally:
            with self._queue:
                self._blocked -= 1
        if batch.error is not None:
            raise StorageUnavailable("the batch's commit failed") from batch.error

    # --- the connection ---------------------------------------------------------------------

    def _take(self, task: LoopTask | None) -> None:
        """Wait for the connection (in order of arrival); on return the caller has it."""
        with self._queue:
            if not self._held:
                self._held = True
                return
            waiting = _Wait(task)
            self._turns.append(waiting)
        waiting.wait()

    def _give(self) -> None:
        """Hand the connection to the first queued member, or free it."""
        with self._queue:
            if not self._turns:
                self._held = False
                return
            waiting = self._turns.popleft()
        waiting.wake()

    def _leave(self, batch: _Batch | None, task: LoopTask | None, failed: bool) -> bool:
        """After a member's work, with the connection: hand it on, or end the batch. True when
        the member (a thread) is to linger for requests in flight before its batch commits."""
        if batch is None or self._batch is not batch:  # no batch began, or it already failed
            self._give()
            return False
        full = batch.members >= self._max_members
        with self._queue:
            queued, blocked = bool(self._turns), self._blocked
        if queued and not full:
            self._give()  # a queued member decides next
            return False
        if task is not None:
            if full:
                self._committer_work(batch)  # the committer gives the connection on
            else:
                self._give()
                if not batch.scheduled:
                    # No linger here: the requests already in the loop's hands join first, and
                    # waiting longer for more cost throughput (3 ms: -30 %; 0.5 ms: no gain;
                    # bench/results/2026-12-07-token-on-loop.md).
                    batch.scheduled = True
                    task.loop.call_soon(self._commit_soon, batch)
            return False
        # In flight: the requests the server is working on; of those, the blocked members and
        # this one are done with the writer. A failed member leaves with its exception and
        # waits for nobody: it cannot stay to end the wait, so it commits the others' work now.
        if (
            not full
            and not failed
            and self._linger > 0
            and self.in_flight is not None
            and self.in_flight() - blocked > 1
        ):
            self._give()
            return True
        try:
            self._commit(batch)
        finally:
            self._give()
        return False

    def _linger_for(self, batch: _Batch) -> None:
        if not batch.done.wait(self._linger):
            self._take(None)
            try:
                if self._batch is batch:  # nobody came in time: commit what there is
                    self._commit(batch)
            finally:
                self._give()

    def _commit_soon(self, batch: _Batch) -> None:
        """On the loop, a turn after a loop member left a batch nobody queued for: commit it
        unless someone has the connection (they decide when they leave)."""
        batch.scheduled = False
        with self._queue:
            if self._held or self._batch is not batch:
                return
            self._held = True
        self._committer_work(batch)

    def _committer_work(self, work: _Batch | _Begin) -> None:
        """Hand ``work`` to the committer thread: a batch to COMMIT (the caller has the
        connection; the committer gives it on), or a loop task's BEGIN."""
        if self._committer is None or not self._committer.is_alive():
            self._committer = threading.Thread(
                target=self._commit_loop, name="trustanchor-committer", daemon=True
            )
            self._committer.start()
        self._to_commit.put(work)

    def _commit_loop(self) -> None:
        while True:
            work = self._to_commit.get()
            if work is None:
                return
            if isinstance(work, _Begin):
                # A loop task's BEGIN IMMEDIATE, which may wait for another process's write
                # lock (busy_timeout): here, not on the loop's thread.
                try:
                    self._join()
                except BaseException as exc:
                    work.error = exc
                work.done.wake()
                continue
            try:
                if self._batch is work:
                    self._commit(work)
                    with self._queue:
                        queued = bool(self._turns)
                    if queued:  # open the next batch now, for the member it goes to
                        try:
                            self._join()
                        except StorageUnavailable as exc:  # that member will try again
                            log.warning("could not open the next batch: %s", exc)
            except BaseException:  # _commit fails the batch itself; never lose the writer
                log.exception("the committer failed")
            finally:
                self._give()

    # --- with the connection ----------------------------------------------------------------

    def _join_from(self, task: LoopTask | None) -> tuple[_Batch, Connection]:
        """:meth:`_join`, by the committer when the caller is a loop task that would have to
        open the batch (and perhaps wait for SQLite's write lock)."""
        if task is None or self._batch is not None:
            return self._join()
        begin = _Begin(task)
        self._committer_work(begin)
        begin.done.wait()
        if begin.error is not None:
            raise begin.error
        assert self._batch is not None and self._conn is not None
        return self._batch, self._conn

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
            self._batch = None
            batch.finish(self._queue, error)

    def _discard_connection(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            try:
                conn.invalidate()  # closes the driver connection: nothing is sent on it
                conn.close()
            except BaseException:
                log.debug("closing the discarded writer connection failed", exc_info=True)

    def close(self, wait: float = 5.0) -> None:
        """Close the writer connection; an open batch fails (nothing of it is committed). A
        member that keeps the writer longer than ``wait`` seconds (a loop task whose loop is
        gone will never give it back) is not waited for."""
        waiting: _Wait | None = None
        with self._queue:
            if not self._held:
                self._held = True
            else:
                waiting = _Wait(None)
                self._turns.append(waiting)
        if waiting is not None and not waiting.wait(wait):
            with self._queue:
                if waiting in self._turns:
                    self._turns.remove(waiting)
            log.warning("closing the database while a transaction still holds its writer")
        try:
            batch = self._batch
            if batch is not None:
                self._fail(batch, StorageUnavailable("the database was closed"))
            self._discard_connection()
        finally:
            self._give()
        if self._committer is not None:
            self._to_commit.put(None)
            self._committer.join(5)
            self._committer = None
