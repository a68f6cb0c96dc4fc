"""The one normaliser for comparing verified claims across anchors (identity joining) and with
the KYC attributes an intermediary registered for an account (stored only as keyed digests).

Two anchors rarely write a name identically: one issues full-width ``ＹＡＭＡＤＡ``, another
``Yamada``; one separates family and given name with an ideographic space, another not at all;
one gives the reading in hiragana, another in katakana. The rules, applied in this order:

1. Unicode NFKC: full-width Latin letters and digits become ASCII, half-width katakana become
   full-width katakana (``ﾔﾏﾀﾞ`` → ``ヤマダ``), compatibility characters are decomposed.
2. Case: ``str.casefold`` (``Straße`` and ``STRASSE`` compare equal).
3. Kana: hiragana become katakana (``やまだ`` → ``ヤマダ``), so a reading compares equal in
   either script. The prolonged sound mark and small kana are kept as they are.
4. Space: every whitespace character (the ideographic space U+3000 included) and the middle dots
   ``・`` / ``·`` used between the parts of a foreign name are removed.
5. Kanji are compared as they are after NFKC: variant forms (異体字, such as 髙 and 高, or
   邊 and 辺) are *different*. Folding them would join people whose names differ in a way the
   family register records; an anchor that writes a simplified form does not match one that
   writes the registered form, and the person is told that the credentials do not match.

Dates (``birthdate``) go through the same rules, which leave ``YYYY-MM-DD`` unchanged; a value
that is not a string (a number, an object such as ``address``) is serialised canonically (JSON
with sorted keys) after normalising every string inside it.

The normaliser is versioned: :data:`NORMALIZER_ID` names it in rules and digests, so a later
change of rules cannot silently make old digests compare unequal.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

NORMALIZER_ID = "nfkc-casefold-kana-nospace-v1"

_HIRAGANA_START = 0x3041
_HIRAGANA_END = 0x3096
_KANA_OFFSET = 0x60  # katakana = hiragana + 0x60 in this range
_REMOVED = frozenset({"・", "·", "･"})


def normalize_text(value: str) -> str:
    """One string in the form the comparison uses (see the module docstring for the rules)."""
    text = unicodedata.normalize("NFKC", value).casefold()
    out: list[str] = []
    for char in text:
        if char.isspace() or char in _REMOVED:
            continue
        code = ord(char)
        if _HIRAGANA_START <= code <= _HIRAGANA_END:
            char = chr(code + _KANA_OFFSET)
        out.append(char)
    return "".join(out)


def normalize_value(value: Any) -> str:
    """A claim value of any JSON type as one comparable string."""
    if isinstance(value, str):
        return normalize_text(value)
    return json.dumps(_normalize_nested(value), sort_keys=True, separators=(",", ":"))


def _normalize_nested(value: Any) -> Any:
    if isinstance(value, str):
        return normalize_text(value)
    if isinstance(value, Mapping):
        return {str(k): _normalize_nested(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize_nested(v) for v in value]
    return value


def same_value(left: Any, right: Any) -> bool:
    """Whether two claim values are the same under the normaliser. ``None`` (absent) is never
    the same as anything, itself included: a missing claim proves nothing."""
    if left is None or right is None:
        return False
    return normalize_value(left) == normalize_value(right)
