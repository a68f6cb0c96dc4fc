"""The ASCII fast path of audit.entries.identifier accepts and refuses exactly what the
character-by-character rule does (no '@', nothing of the categories C and Z)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from trustanchor.audit.entries import _ASCII_IDENTIFIER, EntryError, identifier


def reference_allows(text: str) -> bool:
    return all(ch != "@" and unicodedata.category(ch)[0] not in "CZ" for ch in text)


def test_every_ascii_character_is_judged_as_the_reference_judges_it() -> None:
    for code in range(128):
        ch = chr(code)
        assert bool(_ASCII_IDENTIFIER.fullmatch(ch)) == reference_allows(ch), hex(code)


@given(st.text(min_size=1, max_size=40))
def test_identifier_refuses_a_character_exactly_when_the_reference_does(text: str) -> None:
    if not unicodedata.is_normalized("NFC", text):
        return  # refused earlier, as not NFC
    try:
        identifier("jti", text)
    except EntryError as exc:
        if "not allowed" in str(exc):
            assert not reference_allows(text)
        return
    assert reference_allows(text)


@given(st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=40))
def test_ascii_text_follows_the_reference(text: str) -> None:
    refused = False
    try:
        identifier("jti", text)
    except EntryError as exc:
        refused = "not allowed" in str(exc)
    assert refused == (not reference_allows(text))
