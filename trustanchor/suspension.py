"""Synchronous code running on the event loop's own thread, able to wait without blocking it.

``trustanchor serve`` answers ``POST /token`` on the event loop's thread (issue 13: no hand-off
to a pool thread and back, no contention for the GIL between request threads). The request runs
as a :class:`LoopTask`, a greenlet whose parent is the loop's: its code is the ordinary
synchronous service code, and where that code must wait for something another thread provides
(the SQLite writer of :mod:`trustanchor.storage.group_commit`, the fsync of its batch), it calls
:func:`suspend` with an asyncio future of the loop. That switches back to :func:`run_on_loop`,
which awaits the future (the loop meanwhile serves other requests) and then switches back into
the task. Everything else in the task runs without interruption, exactly as in a thread that is
never preempted.

Only code that knows it may run in a task calls :func:`current_task`; everywhere else a task is
simply the loop's thread running synchronous code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet

T = TypeVar("T")


class LoopTask(greenlet):
    """One request's synchronous work on the loop's thread (see the module documentation)."""

    def __init__(self, run: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(run)
        self.loop = loop
        self.in_transaction = False  # inside a group-commit transaction (storage/group_commit.py)


def current_task() -> LoopTask | None:
    """The task the calling code runs in, or None in an ordinary thread."""
    current = getcurrent()
    return current if isinstance(current, LoopTask) else None


def suspend(task: LoopTask, future: asyncio.Future[Any]) -> None:
    """Wait, inside ``task``, until ``future`` is done (the loop runs on meanwhile). The
    future's result is not read: it only says when to go on."""
    if not future.done():
        parent = task.parent
        assert parent is not None  # the loop's greenlet (run_on_loop)
        parent.switch(future)


def wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
    """Let the task waiting on ``future`` go on: from any thread."""
    if _on_loop_thread(loop):
        if not future.done():
            future.set_result(None)
    else:
        loop.call_soon_threadsafe(_settle, future)


def wake_all(loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[Any]]) -> None:
    """:func:`wake` for several tasks of one loop, with one hand-over to the loop's thread."""
    if _on_loop_thread(loop):
        _settle_all(futures)
    else:
        loop.call_soon_threadsafe(_settle_all, futures)


def _settle_all(futures: list[asyncio.Future[Any]]) -> None:
    for future in futures:
        _settle(future)


def _settle(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on ``loop``'s thread (a task, or the loop itself)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # no loop runs in this thread (the committer, a request thread)
        return False


async def run_on_loop(work: Callable[[], T]) -> T:
    """Run ``work`` as a :class:`LoopTask` on the running loop's thread; its result or its
    exception. The task runs to its end even if the caller is cancelled meanwhile (a task
    waiting for the writer, abandoned, would otherwise keep it for ever)."""
    loop = asyncio.get_running_loop()
    task = LoopTask(work, loop)
    waiting = task.switch()
    while not task.dead:
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            finishing = loop.create_task(_finish(task, waiting))
            _finishing.add(finishing)  # the loop keeps only weak references to tasks
            finishing.add_done_callback(_finishing.discard)
            raise
        waiting = task.switch()
    result: T = waiting
    return result


_finishing: set[asyncio.Task[None]] = set()


async def _finish(task: LoopTask, waiting: asyncio.Future[Any]) -> None:
    """Drive an abandoned task to its end (its answer is dropped)."""
    await waiting
    waiting = task.switch()
    while not task.dead:
        await waiting
        waiting = task.switch()
