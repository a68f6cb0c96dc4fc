"""Strict JSON parsing for everything that arrives from outside: no duplicate keys, no NaN or
Infinity, bounded nesting depth and size. Violations raise :class:`StrictJSONError`."""

from __future__ import annotations

import json
import re
from typing import Any

from trustanchor.echo import echoable


class StrictJSONError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"non-standard number {name}")


_DUPLICATE = "duplicate member"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() in C; a repeated member makes the dict shorter than the pairs, and only then are
    # the pairs walked to name the first repeated member (the same refusal as a walk would give).
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                # the key only when short and plain: callers repeat this text to the sender
                raise StrictJSONError(f"duplicate member {key!r}" if echoable(key) else _DUPLICATE)
            seen.add(key)
    return result


# What json.loads(data, object_pairs_hook=_object, parse_constant=_reject_constant) builds on
# every call (≈ 4 µs, more than parsing a small document), built once: the decoder keeps no
# state between documents.
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_reject_constant)
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__


def loads(data: str | bytes, *, max_depth: int = 16, max_bytes: int = 1 << 20) -> Any:
    if len(data) > max_bytes:
        raise StrictJSONError("JSON document too large")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError("JSON is not UTF-8") from exc
    _check_depth(data, max_depth)
    try:
        # The decoder's C scanner straight from the first character: for a document without
        # leading or trailing whitespace this is exactly what JSONDecoder.decode returns (it
        # skips whitespace, scans, skips whitespace, refuses anything left). Any other outcome
        # (whitespace, extra data, an error) goes through decode for its own verdict.
        value, end = _SCAN(data, 0)
        if end == len(data):
            return value
    except StrictJSONError:
        raise
    except (StopIteration, ValueError, RecursionError):
        pass
    try:
        return _DECODER.decode(data)
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StrictJSONError("malformed JSON") from exc


# A string literal, to its closing quote or to the end when unterminated; anything but a bracket.
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _check_depth(text: str, max_depth: int) -> None:
    """Reject deep nesting before the parser recurses: string contents removed and only the
    brackets kept (both by regular expressions, in C: JWS headers carry kilobytes of x5c), then
    a scan of the brackets."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # the depth never exceeds the number of opening brackets (strings included)
    depth = 0
    for ch in _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                raise StrictJSONError("JSON nested too deeply")
        else:
            depth -= 1


def dumps_canonical(value: Any) -> str:
    """Deterministic compact JSON (sorted keys, no whitespace, UTF-8 kept)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
