"""Progress of long CLI work (trustanchor/cli/progress.py): on a terminal one redrawn line, in a
log (cron, CI) a line at the start, at every tenth of the way and at the end."""

from __future__ import annotations

import io

from trustanchor.cli.progress import ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_a_line_per_tenth_of_the_way() -> None:
    stream = io.StringIO()
    with ProgressLine("checking", stream) as progress:
        for done in range(0, 41):
            progress(done, 40)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "checking: 0/40" and lines[-1] == "checking: 40/40"
    assert lines == [f"checking: {4 * tenth}/40" for tenth in range(11)]


def test_on_a_terminal_one_line_redrawn_then_ended() -> None:
    stream = Terminal()
    with ProgressLine("checking", stream) as progress:
        for done in range(3):
            progress(done, 2)
    assert stream.getvalue() == "\rchecking: 0/2\rchecking: 1/2\rchecking: 2/2\n"


def test_nothing_to_do_writes_nothing() -> None:
    stream = Terminal()
    with ProgressLine("checking", stream) as progress:
        progress(0, 0)
    assert stream.getvalue() == ""
