"""Tables for the ``list`` commands: a header row and left-aligned columns as wide as their
widest cell (counted in terminal columns, so Japanese names line up), two spaces apart, the last
column unpadded. An empty cell is shown as ``-``; control and format characters (tabs, new
lines, bidirectional overrides) in a cell are shown as ``?`` so that a name or label cannot
break the table or disguise what an operator reads."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import click

GAP = "  "
_HIDDEN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def cell(value: object) -> str:
    """``value`` as one table cell: ``-`` when empty, hidden characters replaced by ``?``."""
    text = "" if value is None else str(value)
    if not text:
        return "-"
    return "".join("?" if unicodedata.category(ch) in _HIDDEN_CATEGORIES else ch for ch in text)


def width(text: str) -> int:
    """Terminal columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """The table's lines (no trailing spaces)."""
    cells = [[cell(h) for h in headers], *([cell(v) for v in row] for row in rows)]
    if any(len(line) != len(headers) for line in cells):
        raise ValueError("every row needs one value per column")
    widths = [max(width(line[i]) for line in cells) for i in range(len(headers))]
    lines = []
    for line in cells:
        padded = [text + " " * (widths[i] - width(text)) for i, text in enumerate(line[:-1])]
        lines.append(GAP.join([*padded, line[-1]]).rstrip())
    return lines


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    click.echo("\n".join(render(headers, rows)))
