"""Run a coroutine to completion on an event loop of its own, in a thread of its own.

``asyncio.run`` refuses to start while the calling thread already runs a loop, and in the full
suite it does: the browser tests' Playwright (sync API) keeps an event loop running in the main
thread for the rest of the session. Tests that drive an ASGI app directly use this instead."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed back to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="own-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
