"""Injected time. Every check that depends on "now" takes a Clock, so tests can pick the instant."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Current time as whole seconds since the Unix epoch."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FixedClock:
    """A clock that only moves when told to (tests, offline verification)."""

    def __init__(self, at: int) -> None:
        self._at = at

    def now(self) -> int:
        return self._at

    def advance(self, seconds: int) -> None:
        self._at += seconds

    def set(self, at: int) -> None:
        self._at = at
