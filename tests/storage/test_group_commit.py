"""Group commit (storage/group_commit.py) on a SQLite file: many threads' transactions share one
COMMIT, each in its own savepoint; a member's failure undoes only that member; later members
see earlier ones (one winner per one-time artefact inside a batch); a failed COMMIT fails every
member of its batch and the next batch works; nobody returns before its batch is durable.

Batches are formed deterministically: a *holder* transaction keeps the writer while the other
threads queue for it (``GroupCommit.waiting``), so they all land in the holder's batch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, func, insert, select, text
from support.own_loop import run_in_own_loop

from trustanchor.storage import grants_repo
from trustanchor.storage.database import Database, StorageUnavailable, insert_once
from trustanchor.storage.migrate import upgrade
from trustanchor.storage.tables import access_tokens, anchor_set_members, used_jtis
from trustanchor.suspension import run_on_loop

NOW = 1_800_000_000


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}", group_commit=True)
    upgrade(database)
    assert database.group is not None
    yield database
    database.dispose()


def committed_rows(db: Database, table: Any) -> int:
    """Counted on a connection of its own: only what is committed."""
    engine = create_engine(db.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def record_token(jti: str) -> Callable[[Connection], object]:
    def work(conn: Connection) -> object:
        grants_repo.record_access_token(conn, jti, None, "bank", now=NOW, expires_at=NOW + 60)
        return jti

    return work


def in_one_batch(db: Database, works: list[Callable[[Connection], object]]) -> list[object]:
    """Run ``works`` in threads that all queue behind a holder transaction, so that they and
    the holder share one batch. Each result is what the work returned or the exception raised
    (by the work, or by the transaction when its batch failed)."""
    group = db.group
    assert group is not None
    results: list[object] = [None] * len(works)
    release = threading.Event()

    def member(i: int) -> None:
        try:
            with db.transaction() as conn:
                results[i] = works[i](conn)
        except BaseException as exc:
            results[i] = exc

    def holder() -> None:
        try:
            with db.transaction():
                release.wait(10)
        except StorageUnavailable:
            pass  # its batch failed: the members' results say so

    holding = threading.Thread(target=holder)
    holding.start()
    while group.waiting:  # the holder has the writer once nobody is queued before it
        time.sleep(0.001)
    time.sleep(0.01)
    threads = [threading.Thread(target=member, args=(i,)) for i in range(len(works))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while group.waiting < len(works):
        assert time.monotonic() < deadline, "members never queued"
        time.sleep(0.001)
    release.set()
    holding.join(10)
    for thread in threads:
        thread.join(10)
    return results


def test_queued_transactions_share_one_commit_and_all_are_durable(db: Database) -> None:
    group = db.group
    assert group is not None
    before = group.batches
    results = in_one_batch(db, [record_token(f"jti-{i}") for i in range(20)])
    assert results == [f"jti-{i}" for i in range(20)]
    assert group.batches == before + 1  # holder and twenty members: one COMMIT
    assert committed_rows(db, access_tokens) == 20


def on_loop(db: Database, works: list[Callable[[Connection], object]]) -> list[object]:
    """Run each work in its own transaction as a LoopTask, all started at once on one loop;
    each result is what the work returned or the exception raised."""

    def one(work: Callable[[Connection], object]) -> Callable[[], object]:
        def run() -> object:
            try:
                with db.transaction() as conn:
                    return work(conn)
            except BaseException as exc:
                return exc

        return run

    async def main() -> list[object]:
        return list(await asyncio.gather(*(run_on_loop(one(w)) for w in works)))

    return run_in_own_loop(main())


Runner = Callable[[Database, list[Callable[[Connection], object]]], list[object]]
RUNNERS = pytest.mark.parametrize("run", [in_one_batch, on_loop], ids=["threads", "loop-tasks"])


@RUNNERS
def test_a_failing_member_rolls_back_only_itself(db: Database, run: Runner) -> None:
    def fails(conn: Connection) -> object:
        record_token("doomed")(conn)
        raise ValueError("refused after writing")

    results = run(db, [record_token("a"), fails, record_token("b")])
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], ValueError)
    engine = create_engine(db.url)
    with engine.connect() as conn:
        kept = set(conn.execute(select(access_tokens.c.jti)).scalars())
    engine.dispose()
    assert kept == {"a", "b"}


@RUNNERS
def test_redemptions_of_one_code_in_one_batch_have_exactly_one_winner(
    db: Database, run: Runner
) -> None:
    with db.transaction() as conn:
        grants_repo.create_grant(conn, "g1", "bank", None, {}, now=NOW, expires_at=NOW + 3600)
        grants_repo.store_code(
            conn, "the-code", "g1", "bank", {"redirect_uri": "x"}, now=NOW, expires_at=NOW + 60
        )

    def redeem(conn: Connection) -> object:
        try:
            return grants_repo.consume_code(conn, "the-code", "bank", now=NOW)
        except grants_repo.Reused:
            return "reused"

    results = run(db, [redeem] * 4)
    assert len([r for r in results if isinstance(r, grants_repo.ConsumedCode)]) == 1
    assert results.count("reused") == 3


def test_a_replayed_jti_in_the_same_batch_is_refused(db: Database) -> None:
    def spend(conn: Connection) -> object:
        return insert_once(
            conn, used_jtis, {"namespace": "dpop", "jti_digest": "d" * 64, "expires_at": NOW + 60}
        )

    results = in_one_batch(db, [spend, spend])
    assert sorted(map(bool, results)) == [False, True]


def test_a_failed_commit_fails_every_member_and_the_next_batch_works(db: Database) -> None:
    """A real failing COMMIT: one member defers foreign-key checks to the COMMIT and inserts a
    row that breaks one, so SQLite refuses the COMMIT of the whole batch."""

    def breaks_the_commit(conn: Connection) -> object:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            insert(anchor_set_members).values(anchor_set_id="no-such-set", anchor_id="none")
        )
        return "accepted"

    works = [record_token(f"lost-{i}") for i in range(4)]
    results = in_one_batch(db, [*works[:2], breaks_the_commit, *works[2:]])
    assert all(isinstance(r, StorageUnavailable) for r in results), results
    assert committed_rows(db, access_tokens) == 0
    assert committed_rows(db, anchor_set_members) == 0

    with db.transaction() as conn:
        record_token("after")(conn)
    assert committed_rows(db, access_tokens) == 1


def test_a_transaction_inside_another_on_one_thread_is_refused_not_deadlocked(
    db: Database,
) -> None:
    with (
        db.transaction(),
        pytest.raises(RuntimeError, match="inside another"),
        db.transaction(),
    ):
        pass  # pragma: no cover
    with db.transaction() as conn:  # the writer is free again
        conn.execute(text("SELECT 1"))


def test_nothing_returns_before_its_batch_is_committed(db: Database) -> None:
    """A member that finished its work still waits while its batch is open."""
    group = db.group
    assert group is not None
    returned = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with db.transaction():
            release.wait(10)

    holding = threading.Thread(target=holder)

    def member() -> None:
        with db.transaction() as conn:
            record_token("early")(conn)
            holding.start()  # queued when this member leaves: the batch stays open
            while group.waiting < 1:
                time.sleep(0.001)
        returned.set()

    first = threading.Thread(target=member)
    first.start()
    time.sleep(0.1)  # the member is done with its work; the holder holds the batch open
    assert not returned.is_set()
    assert committed_rows(db, access_tokens) == 0
    release.set()
    holding.join(10)
    first.join(10)
    assert returned.is_set()
    assert committed_rows(db, access_tokens) == 1


def test_without_a_file_or_on_postgresql_nothing_is_batched(tmp_path: Path) -> None:
    assert Database("sqlite://", group_commit=True).group is None
    assert Database(f"sqlite:///{tmp_path / 'x.db'}").group is None


def test_with_linger_a_batch_waits_for_a_request_in_flight(tmp_path: Path) -> None:
    """Nobody queues when the first member leaves, but the server says another request is on
    its way: the batch waits for it, and both share one COMMIT."""
    database = Database(f"sqlite:///{tmp_path / 'linger.db'}", group_commit=True)
    upgrade(database)
    group = database.group
    assert group is not None
    group._linger = 2.0  # long enough that only the second member can end the wait
    in_flight = {"n": 2}
    group.in_flight = lambda: in_flight["n"]
    before = group.batches
    first = threading.Thread(target=lambda: _record(database, "first"))
    first.start()
    while group.waiting or database_blocked(group) < 1:  # the first member lingers
        time.sleep(0.001)
    assert committed_rows(database, access_tokens) == 0
    _record(database, "second")  # in flight - blocked - itself = 0: commits for both
    first.join(5)
    assert group.batches == before + 1
    assert committed_rows(database, access_tokens) == 2
    database.dispose()


def test_with_linger_a_batch_commits_alone_when_nobody_comes(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'alone.db'}", group_commit=True)
    upgrade(database)
    group = database.group
    assert group is not None
    group._linger = 0.05
    group.in_flight = lambda: 5  # the server thinks others are coming; none does
    started = time.monotonic()
    _record(database, "alone")
    assert 0.05 <= time.monotonic() - started < 2
    assert committed_rows(database, access_tokens) == 1
    database.dispose()


def _record(database: Database, jti: str) -> None:
    with database.transaction() as conn:
        record_token(jti)(conn)


def database_blocked(group: Any) -> int:
    with group._queue:
        return int(group._blocked)


def test_with_linger_a_failing_last_member_still_commits_the_batch(tmp_path: Path) -> None:
    """The failing member leaves with its exception and cannot stay to end a wait: it commits
    the batch itself, or the members before it would wait for ever (and hold SQLite's lock)."""
    database = Database(f"sqlite:///{tmp_path / 'fail.db'}", group_commit=True)
    upgrade(database)
    group = database.group
    assert group is not None
    group._linger = 30.0  # a wait nobody would end
    group.in_flight = lambda: 10
    gate = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with database.transaction() as conn:
            record_token("kept")(conn)
            gate.set()
            release.wait(5)

    first = threading.Thread(target=holder)
    first.start()
    gate.wait(5)

    def failing() -> None:
        with pytest.raises(ValueError), database.transaction() as conn:
            record_token("dropped")(conn)
            raise ValueError("refused")

    second = threading.Thread(target=failing)
    second.start()
    while group.waiting < 1:
        time.sleep(0.001)
    release.set()  # the holder leaves while the failing member queues: it lingers
    second.join(5)
    first.join(5)
    assert not first.is_alive() and not second.is_alive()
    assert committed_rows(database, access_tokens) == 1
    database.dispose()


# --- members on the event loop's thread (trustanchor.suspension: POST /token under serve) ---


def test_loop_members_share_commits_made_off_the_loop_and_are_durable(db: Database) -> None:
    group = db.group
    assert group is not None
    committed_on: set[str] = set()
    commit = group._commit

    def recording_commit(batch: Any) -> None:
        committed_on.add(threading.current_thread().name)
        commit(batch)

    group._commit = recording_commit  # type: ignore[method-assign]
    before = group.batches
    results = on_loop(db, [record_token(f"loop-{i}") for i in range(30)])
    assert results == [f"loop-{i}" for i in range(30)]
    assert committed_rows(db, access_tokens) == 30
    assert group.batches - before < 30  # shared: fewer COMMITs than transactions
    assert committed_on == {"trustanchor-committer"}


class HeldWriter:
    """A request thread inside its transaction (after recording ``jti``, if given), holding
    the writer until :meth:`release`; ``outcome`` gets None when its batch committed, else the
    exception its transaction raised."""

    def __init__(self, db: Database, jti: str | None = None) -> None:
        self._release = threading.Event()
        self.outcome: list[BaseException | None] = []
        holding = threading.Event()

        def hold() -> None:
            try:
                with db.transaction() as conn:
                    if jti is not None:
                        record_token(jti)(conn)
                    holding.set()
                    self._release.wait(10)
                self.outcome.append(None)
            except BaseException as exc:
                self.outcome.append(exc)

        self._thread = threading.Thread(target=hold)
        self._thread.start()
        assert holding.wait(5)

    def release(self, *, join: bool = True) -> None:
        """Let the transaction end; ``join=False`` on a loop whose tasks share its batch (the
        thread then waits for them, so the loop must not wait for the thread)."""
        self._release.set()
        if join:
            self._thread.join(10)


def test_a_loop_member_waits_for_a_thread_member_without_blocking_the_loop(
    db: Database,
) -> None:
    """A request thread holds the writer: the loop's members suspend, the loop goes on serving
    (a ticker keeps ticking), and nobody on the loop returns before its batch committed."""
    group = db.group
    assert group is not None
    held = HeldWriter(db, "thread")
    seen_after: list[int] = []

    def member(jti: str) -> Callable[[], object]:
        def run() -> object:
            with db.transaction() as conn:
                record_token(jti)(conn)
            seen_after.append(committed_rows(db, access_tokens))  # durable by now
            return jti

        return run

    async def main() -> tuple[list[object], int]:
        ticks = 0
        members = [asyncio.ensure_future(run_on_loop(member(f"l{i}"))) for i in range(5)]
        while group.waiting < 5:
            await asyncio.sleep(0.001)
            ticks += 1
        for _ in range(20):  # the members wait; the loop is free
            await asyncio.sleep(0.001)
            ticks += 1
        assert not any(m.done() for m in members)
        held.release(join=False)  # its batch then takes the loop's members too
        return list(await asyncio.gather(*members)), ticks

    results, ticks = run_in_own_loop(main())
    held.release()
    assert results == [f"l{i}" for i in range(5)]
    assert ticks >= 20
    assert all(count >= 2 for count in seen_after)  # the thread's row and its own, at least
    assert committed_rows(db, access_tokens) == 6


def test_another_process_holding_the_write_lock_does_not_block_the_loop(
    db: Database, tmp_path: Path
) -> None:
    """BEGIN IMMEDIATE waits for SQLite's write lock (busy_timeout); for a loop member it
    waits on the committer thread, while the loop serves on."""
    other = sqlite3.connect(
        str(tmp_path / "group.db"), isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")  # as another process's writer would

    async def main() -> tuple[object, int]:
        ticks = 0
        member = asyncio.ensure_future(run_on_loop(lambda: on_conn(db, record_token("after-lock"))))
        for _ in range(50):
            await asyncio.sleep(0.002)
            ticks += 1
        assert not member.done()
        other.execute("COMMIT")
        return await member, ticks

    result, ticks = run_in_own_loop(main())
    other.close()
    assert result == "after-lock"
    assert ticks == 50
    assert committed_rows(db, access_tokens) == 1


def on_conn(db: Database, work: Callable[[Connection], object]) -> object:
    with db.transaction() as conn:
        return work(conn)


def test_a_cancelled_loop_caller_still_finishes_its_transaction(db: Database) -> None:
    """The ASGI caller may be cancelled while its task waits; the task runs to its end, so
    the writer is never left with a member that will not come back."""
    group = db.group
    assert group is not None
    held = HeldWriter(db)

    async def main() -> None:
        waiter = asyncio.ensure_future(run_on_loop(lambda: on_conn(db, record_token("abandoned"))))
        while group.waiting < 1:
            await asyncio.sleep(0.001)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        held.release(join=False)
        for _ in range(500):  # the abandoned task finishes in the background
            await asyncio.sleep(0.002)
            if committed_rows(db, access_tokens) == 1:
                break
        assert await run_on_loop(lambda: on_conn(db, record_token("next"))) == "next"

    run_in_own_loop(main())
    held.release()
    assert committed_rows(db, access_tokens) == 2


def test_closing_does_not_wait_for_ever_for_a_member_that_keeps_the_writer(
    tmp_path: Path,
) -> None:
    """A loop task whose loop is gone never gives the writer back; closing the database (at
    shutdown) waits a bounded time, then closes anyway, and that member's batch fails."""
    database = Database(f"sqlite:///{tmp_path / 'stuck.db'}", group_commit=True)
    upgrade(database)
    group = database.group
    assert group is not None
    held = HeldWriter(database, "held")
    started = time.monotonic()
    group.close(wait=0.2)
    assert time.monotonic() - started < 2
    held.release()
    assert len(held.outcome) == 1 and isinstance(held.outcome[0], StorageUnavailable)
    assert committed_rows(database, access_tokens) == 0
    database.engine.dispose()
