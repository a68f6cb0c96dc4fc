"""QR codes rendered on the server as an inline SVG element (no Flask here, no external assets).

Why server-side SVG: the wallet page needs no JavaScript and no image endpoint, works under a
strict Content-Security-Policy (no inline ``style``, no scripts, no external references — only
SVG presentation attributes), scales sharply on any screen, and can be tested here.

``segno`` does the encoding (error correction level M, never Micro QR, which phone wallets do
not read); we draw the module matrix ourselves as one ``<path>`` of horizontal runs on a white
background that includes the 4-module quiet zone, so the code scans even on a dark-mode page.
Accessibility: ``role="img"`` with a ``<title>`` as the first child (and the same text as
``aria-label``), all text XML-escaped.

Size: ``scale`` CSS pixels per module (default 6). The login URL (client_id + request_uri) needs a
version 6–9 symbol (41–53 modules + quiet zone), i.e. about 300–370 px: comfortably scannable from
a laptop screen by a phone camera. The page's CSS may shrink it (``max-width: 100%``) through the
``class`` attribute.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

import segno

_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_ -]{0,63}")
MAX_DATA = 2048


class QRCodeError(ValueError):
    """The data cannot be rendered as a QR code. ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def qr_svg(data: str, *, title: str, scale: int = 6, css_class: str = "qr-code") -> str:
    """An ``<svg>`` element encoding ``data``, safe to insert into HTML unescaped."""
    if not isinstance(data, str) or not data or len(data) > MAX_DATA:
        raise QRCodeError("invalid_data", f"data must be 1-{MAX_DATA} characters")
    if not isinstance(title, str) or not title.strip():
        raise QRCodeError("invalid_title", "an accessible title is required")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 32:
        raise QRCodeError("invalid_scale", "scale is 1-32 pixels per module")
    if not _CLASS.fullmatch(css_class):
        raise QRCodeError("invalid_class", "css_class must be a plain class name")
    try:
        code = segno.make(data, error="m", micro=False, boost_error=True)
    except segno.DataOverflowError as exc:
        raise QRCodeError("too_long", "data does not fit in a QR code") from exc
    rows = [[bool(m) for m in row] for row in code.matrix_iter(border=code.default_border_size)]
    size = len(rows)
    pixels = size * scale
    clean_title = _xml_text(title)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" role="img"'
        f" aria-label={quoteattr(clean_title)} class={quoteattr(css_class)}"
        f' width="{pixels}" height="{pixels}" viewBox="0 0 {size} {size}"'
        ' shape-rendering="crispEdges">'
        f"<title>{escape(clean_title)}</title>"
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{_path(rows)}"/>'
        "</svg>"
    )


def _path(rows: list[list[bool]]) -> str:
    """One sub-path per horizontal run of dark modules: ``M x y h n v1 h -n z``."""
    parts: list[str] = []
    for y, row in enumerate(rows):
        x = 0
        width = len(row)
        while x < width:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < width and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)


def _xml_text(value: str) -> str:
    """Drop characters XML 1.0 cannot carry (controls, lone surrogates, U+FFFE/FFFF)."""
    return "".join(
        ch
        for ch in value
        if ch in "\t\n\r"
        or "\x20" <= ch <= "\ud7ff"
        or "\ue000" <= ch <= "\ufffd"
        or "\U00010000" <= ch <= "\U0010ffff"
    )


__all__ = ["MAX_DATA", "QRCodeError", "qr_svg"]
