"""Progress of long CLI work, on stderr (stdout keeps only the result, for scripts).

``ProgressLine`` takes ``(done, total)`` reports from work that learns its total as it goes
(``credential_checks.recheck``): on a terminal it redraws one line; elsewhere (cron, CI logs) it
writes a line at the start, every tenth of the way and at the end, so a log shows the run moved.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO


class ProgressLine:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self._interactive = self.stream.isatty()
        self._last_tenth = -1
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        if self._interactive:
            self.stream.write(f"\r{self.label}: {done}/{total}")
            self.stream.flush()
            self._drawn = True
            return
        tenth = done * 10 // total  # 0 at the start, 10 at the end: each written once
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done}/{total}\n")
            self.stream.flush()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
