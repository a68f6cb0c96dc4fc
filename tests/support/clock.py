"""A clock for flow tests that need time to pass (codes, request_uris and assertions expiring).

It is the wall clock plus an adjustable offset rather than a frozen instant: the independent RP
and wallet libraries the tests drive sign with ``time.time()``, and those signatures must stay
acceptable while the offset is zero. Shift it only once the wall-clock parts of a flow are done,
and sign hand-made assertions and proofs with :meth:`ShiftableClock.now`.
"""

from __future__ import annotations

import time


class ShiftableClock:
    """Satisfies trustanchor.clock.Clock; ``shift(61)`` makes the server live 61 s ahead."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset

    def shift(self, seconds: int) -> None:
        self.offset += seconds
