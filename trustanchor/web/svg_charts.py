"""Server-rendered SVG charts: stacked columns over time and horizontal bars, nothing else.

No script, no ``style`` attribute or element (the pages' Content-Security-Policy allows neither
inline scripts nor inline styles): colours and fonts are presentation attributes, sizes come from
the ``viewBox`` and the page's stylesheet scales the drawing to the screen. Each chart is an
``<svg role="img">`` named by its ``<title>`` and ``<desc>`` (``aria-labelledby``); pages show the
same numbers in a data table next to it.

Every text comes from the caller and is escaped here; characters XML 1.0 cannot carry at all
(control characters, lone surrogates, U+FFFE/U+FFFF) become U+FFFD, so the output is always
well-formed XML whatever the labels are. No Flask here: the module is plain string building.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 360
FONT = "system-ui, -apple-system, sans-serif"
TEXT_COLOUR = "#1b1f24"
MUTED_COLOUR = "#57606a"
GRID_COLOUR = "#d0d7de"
_CHAR_WIDTH = 0.62  # average glyph width per font-size unit, for label spacing
_ID = re.compile(r"[a-z][a-z0-9-]{0,63}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_WHITESPACE_REFERENCES = str.maketrans({"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` as XML character data or attribute value (quotes escaped too). Tab, line feed
    and carriage return become character references, which XML's line-end and attribute-value
    normalisation leave alone, so a parser gives back exactly ``value``."""
    escaped = html.escape(_NOT_XML_CHAR.sub("\ufffd", value), quote=True)
    return escaped.translate(_WHITESPACE_REFERENCES)


def shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: max(1, limit - 1)] + "…"


def text_width(value: str, font_size: float) -> float:
    """A generous estimate of how wide ``value`` is drawn: wide (CJK) characters take a full
    em, others about 0.62 em. Used only to space labels apart, never to clip them."""
    ems = sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else _CHAR_WIDTH for ch in value)
    return ems * font_size


def fit(value: str, max_width: float, font_size: float) -> str:
    """``value`` cut (with an ellipsis) to about ``max_width`` when drawn at ``font_size``."""
    if text_width(value, font_size) <= max_width:
        return value
    room = max_width - text_width("…", font_size)
    kept = ""
    for ch in value:
        if text_width(kept + ch, font_size) > room:
            break
        kept += ch
    return (kept or value[:1]) + "…"


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _check_id(chart_id: str) -> None:
    if not _ID.fullmatch(chart_id):
        raise ValueError("chart_id must be a short lower-case id ([a-z][a-z0-9-]*)")


def _check_colour(colour: str) -> None:
    if not _COLOUR.fullmatch(colour):
        raise ValueError("colours are #rrggbb")


def _check_count(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("counts are non-negative integers")


def _open(chart_id: str, height: int, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="{SVG_NS}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" class="chart" '
        f'font-family="{FONT}" font-size="10" fill="{TEXT_COLOUR}">',
        f'<title id="{chart_id}-title">{xml_text(title)}</title>',
        f'<desc id="{chart_id}-desc">{xml_text(description)}</desc>',
    ]


def nice_scale(maximum: int, *, max_ticks: int = 4) -> tuple[int, int]:
    """``(top, step)``: a top of the value axis at or above ``maximum`` whose ticks are whole
    multiples of a 1-2-5 step, at most ``max_ticks`` of them above zero."""
    if maximum <= 0:
        return 1, 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            candidate = step * factor
            if math.ceil(maximum / candidate) <= max_ticks:
                return candidate * math.ceil(maximum / candidate), candidate
        step *= 10


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[int]
    colour: str


def stacked_columns(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
) -> str:
    """One column per category, the series stacked bottom-up in the order given, with a legend.
    Every series has one value per category."""
    _check_id(chart_id)
    for one in series:
        _check_colour(one.colour)
        if len(one.values) != len(categories):
            raise ValueError("every series needs one value per category")
        for value in one.values:
            _check_count(value)
    height, left, right, top, bottom = 220, 36, 8, 24, 30
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    totals = [sum(one.values[i] for one in series) for i in range(len(categories))]
    scale_top, step = nice_scale(max(totals, default=0))
    parts = _open(chart_id, height, title, description)
    # Legend.
    x = float(left)
    for one in series:
        label = fit(one.label, 120, 10)
        parts.append(
            f'<rect x="{_num(x)}" y="4" width="10" height="10" fill="{one.colour}"></rect>'
        )
        parts.append(f'<text x="{_num(x + 14)}" y="13">{xml_text(label)}</text>')
        x += 14 + text_width(label, 10) + 14
    # Value axis: grid lines and tick labels.
    for tick in range(0, scale_top + 1, step):
        y = top + plot_h - tick / scale_top * plot_h
        parts.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"></line>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{_num(y + 3.5)}" text-anchor="end" '
            f'fill="{MUTED_COLOUR}">{tick}</text>'
        )
    if not categories:
        parts.append("</svg>")
        return "".join(parts)
    slot = plot_w / len(categories)
    widest = max(text_width(shorten(c, 12), 10) for c in categories) + 6
    every = max(1, math.ceil(widest / slot))
    for i, category in enumerate(categories):
        x0 = left + i * slot + slot * 0.15
        width = slot * 0.7
        summary = ", ".join(f"{one.label} {one.values[i]}" for one in series)
        parts.append(f"<g><title>{xml_text(f'{category}: {summary}')}</title>")
        base = 0
        for one in series:
            value = one.values[i]
            if value:
                y_top = top + plot_h - (base + value) / scale_top * plot_h
                parts.append(
                    f'<rect x="{_num(x0)}" y="{_num(y_top)}" width="{_num(width)}" '
                    f'height="{_num(value / scale_top * plot_h)}" fill="{one.colour}"></rect>'
                )
            base += value
        parts.append("</g>")
        if i % every == 0:
            parts.append(
                f'<text x="{_num(x0 + width / 2)}" y="{height - bottom + 14}" '
                f'text-anchor="middle" fill="{MUTED_COLOUR}">'
                f"{xml_text(shorten(category, 12))}</text>"
            )
    parts.append(
        f'<line x1="{left}" x2="{WIDTH - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{MUTED_COLOUR}" stroke-width="1"></line>'
    )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int


def horizontal_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    colour: str,
    empty_text: str,
) -> str:
    """One labelled bar per entry, in the order given (the label above its bar, so long labels
    fit a phone screen); ``empty_text`` is drawn when there are no bars."""
    _check_id(chart_id)
    _check_colour(colour)
    for bar in bars:
        _check_count(bar.value)
    row, top = 34, 4
    height = top + max(1, len(bars)) * row + 4
    parts = _open(chart_id, height, title, description)
    if not bars:
        parts.append(
            f'<text x="0" y="{top + 16}" fill="{MUTED_COLOUR}">{xml_text(empty_text)}</text>'
        )
        parts.append("</svg>")
        return "".join(parts)
    longest = max(bar.value for bar in bars) or 1
    value_room = text_width(str(longest), 11) + 8
    span = WIDTH - value_room
    for i, bar in enumerate(bars):
        y = top + i * row
        length = bar.value / longest * span
        parts.append(f"<g><title>{xml_text(f'{bar.label}: {bar.value}')}</title>")
        parts.append(
            f'<text x="0" y="{y + 11}" font-size="11">{xml_text(fit(bar.label, WIDTH, 11))}</text>'
        )
        if bar.value:
            parts.append(
                f'<rect x="0" y="{y + 15}" width="{_num(max(length, 1))}" height="13" '
                f'fill="{colour}"></rect>'
            )
        parts.append(
            f'<text x="{_num(max(length, 1) + 4)}" y="{y + 25.5}" font-size="11">{bar.value}</text>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
